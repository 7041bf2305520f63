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
 * burst's memory would stay resident on a thread that then sleeps. */
void crm_alloc_idle(void);

#endif
