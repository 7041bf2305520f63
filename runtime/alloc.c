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
 * Sanitizer builds (ASan, TSan, the fuzzers) keep their own malloc: there
 * crm_alloc_idle does nothing.
 */
#include "alloc.h"

#ifdef CRM_MIMALLOC
#include <mimalloc.h>

bool crm_alloc_is_mimalloc(void) { return true; }

void crm_alloc_idle(void)
{
    /* the delays make mi_collect leave the pages that emptied last waiting:
     * without them it gives back all it can (the options are global: another
     * thread that frees meanwhile gives back at once too, for that moment) */
    long page = mi_option_get(mi_option_decommit_delay), seg = mi_option_get(mi_option_segment_decommit_delay);
    mi_option_set(mi_option_decommit_delay, 0);
    mi_option_set(mi_option_segment_decommit_delay, 0);
    mi_collect(true);
    mi_option_set(mi_option_decommit_delay, page);
    mi_option_set(mi_option_segment_decommit_delay, seg);
}
#else
bool crm_alloc_is_mimalloc(void) { return false; }

void crm_alloc_idle(void) {}
#endif
