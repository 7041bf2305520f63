/* lease.h: the run-once lease (docs/ha.md). Of several replicas of the same
 * flows, only the holder fires inject nodes on their repeat interval or
 * crontab; when it dies another one takes over.
 *   one machine:    a lock file (flock) whose path the supervisor passes in
 *                   CARMINE_LEASE_FILE (or settings lease.file); the kernel
 *                   frees it the moment the holder dies.
 *   several:        settings lease.redis {host, port, prefix}: a Redis key
 *                   set with NX and a TTL (lease.ttl ms, default 5000),
 *                   renewed by the holder; taken over once it expires.
 * Without either (or with settings "lease": false) every process holds it.
 */
#ifndef CRM_LEASE_H
#define CRM_LEASE_H

#include <stdbool.h>

#include "runtime.h"

/* Cheap and non-blocking: callable from a loop thread on every fire. */
bool crm_lease_held(crm_runtime *rt);

#endif
