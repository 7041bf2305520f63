/* alloc.h: the allocator's upkeep (internal; runtime/alloc.c). */
#ifndef CRM_ALLOC_H
#define CRM_ALLOC_H

#include <stdbool.h>

/* Whether malloc is mimalloc (a build without sanitizers links it). */
bool crm_alloc_is_mimalloc(void);

/* Gives the memory the calling thread's heap holds free back to the system.
 * For a thread that is about to sleep after work (a loop gone idle, the main
 * thread after loading the flows): mimalloc returns freed pages only on the
 * thread that owns them, when that thread allocates or frees again, so a
 * burst's memory would stay resident on a thread that then sleeps; glibc's
 * heaps keep their free pages below the top (malloc_trim(0) here). */
void crm_alloc_idle(void);

/* Takes the pages of the executable's and its libraries' code and read-only
 * data out of the process's mapping (the page cache keeps them: the next
 * work faults back the ones it runs). For a loop gone idle; does nothing
 * when the last release was less than 10 s ago. */
void crm_idle_release_code(void);

#endif
