/* context_store.h: the store interface behind node, flow and global context
 * (context.c). Every store keeps its scopes in memory (context id -> object
 * tree): reads are synchronous and never leave the process, as Node-RED's
 * synchronous context API needs, and no loop thread waits on I/O. A backend
 * adds where the scopes also live and how changes travel:
 *   memory           nothing more;
 *   localfilesystem  loaded at open, dirty scopes flushed periodically and
 *                    at close, in Node-RED's file layout;
 *   redis            (context_redis.c) loaded at open, every set applied in
 *                    Redis as an atomic read-modify-write of the top-level
 *                    key and published, so the other replicas' caches follow.
 */
#ifndef CRM_CONTEXT_STORE_H
#define CRM_CONTEXT_STORE_H

#include <pthread.h>

#include "engine.h"

typedef struct ctxstore ctxstore;

typedef struct {
    const char *module;
    /* Loads the scopes into s->scopes (store not yet shared). 0 or -1 (logged). */
    int (*open)(crm_runtime *rt, ctxstore *s, const json_t *config);
    /* After a set (lock held): id, the top-level key it changed, the key
     * expression as given (NULL: the whole top-level key was set) and the
     * top-level value now (borrowed; NULL = deleted). */
    void (*changed)(ctxstore *s, const char *id, const char *top, const char *key, const json_t *value);
    /* After a whole scope was deleted (lock held). */
    void (*scope_deleted)(ctxstore *s, const char *id);
    /* Periodic, from the flusher thread (NULL: none needed). */
    void (*flush)(crm_runtime *rt, ctxstore *s);
    /* Last writes out, threads stopped, backend data freed. */
    void (*close)(crm_runtime *rt, ctxstore *s);
} ctx_backend;

struct ctxstore {
    char *name;
    const ctx_backend *backend;
    void *data;          /* the backend's */
    char *dir;           /* localfilesystem: <dir>/<base> */
    double flush_ms;
    json_t *scopes;      /* context id -> object */
    json_t *dirty;       /* localfilesystem: context id -> true */
    /* localfilesystem writes that failed: the scopes stay dirty (in memory)
     * and are written again at every flush until one succeeds */
    unsigned failed_flushes; /* in a row; 0: the last flush wrote everything */
    size_t unwritten;        /* scopes the last flush could not write */
    char write_error[1024];  /* the last failure, "" when none */
    pthread_mutex_t lock;
    crm_runtime *rt;
    _Atomic uint64_t ops[4]; /* for /metrics: get, set, keys, delete (relaxed adds) */
};

extern const ctx_backend crm_ctx_redis;

/* Parsing helpers shared by the backends. */
/* The top-level key a key expression changes (malloc'd), or NULL. */
char *crm_ctx_top_key(const char *key);

#endif
