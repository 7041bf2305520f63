/* alloc.c: the allocator. A build without sanitizers links Debian's
 * libmimalloc, which replaces malloc, free and the rest for the whole process
 * (its library comes before libc in the link): a message hop is mostly
 * jansson values, an allocation each (two for an object or a string), and
 * mimalloc's thread-local free lists take a third off the instructions of a
 * json or csv hop. Values cross threads (a message to another tab, an HTTP
 * body read on the server's thread); mimalloc takes a free from another thread.
 *
 * What it costs in memory is kept bounded here: mimalloc gives pages back to
 * the system some milliseconds after they empty (decommit_delay), but only on
 * the owning thread's next malloc or free, so a loop that sleeps after a burst
 * would keep the burst resident: loop.c calls crm_alloc_idle once a loop has
 * been idle for a moment after work, and the CLI once the flows have started.
 * Threads that are not loops (JavaScriptCore's, libmicrohttpd's own) are not
 * reached: after traffic through a function node the process keeps about
 * 8 MB more than with glibc (docs/benchmarks.md, 14:10 UTC section).
 * Sanitizer builds (ASan, TSan, the fuzzers) keep their own malloc: there
 * crm_alloc_idle does nothing.
 */
#include "alloc.h"

#ifdef CRM_MIMALLOC
#include <mimalloc.h>

bool crm_alloc_is_mimalloc(void) { return true; }

void crm_alloc_idle(void)
{
    mi_collect(true);
}
#else
bool crm_alloc_is_mimalloc(void) { return false; }

void crm_alloc_idle(void) {}
#endif
