/* tcp_pool.h: Node-RED's connectionPool, shared by every tcp node of the
 * process: the connections a `tcp in` node holds, by session id, so that a
 * `tcp out` in reply mode writes to (or resets) the connection a message
 * came from, or to all of them. Thread-safe: the reply is posted to the
 * owning node's loop, which looks its connection up by id. */
#ifndef CRM_TCP_POOL_H
#define CRM_TCP_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "carmine.h"

typedef struct {
    char id[17];
    bool reset;
    size_t len;
    unsigned char data[]; /* the bytes to write */
} crm_tcp_job;

/* handler runs on owner's loop with a job it must free(). */
typedef void (*crm_tcp_job_fn)(crm_node *owner, void *job);

void crm_tcp_pool_add(const char *id, crm_node *owner, crm_tcp_job_fn handler);
void crm_tcp_pool_remove(const char *id);
/* Writes len bytes to the connection id (or resets it); id NULL: to every
 * connection in the pool. */
void crm_tcp_pool_send(const char *id, const void *data, size_t len, bool reset);

#endif
