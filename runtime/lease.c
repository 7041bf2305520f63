/* lease.c: the run-once lease (lease.h). One lease per process: replicas are
 * processes. The file lease is tried inline (flock with LOCK_NB never
 * waits); the Redis lease is kept by a thread, so a loop only reads a flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "lease.h"

typedef enum { LEASE_NONE, LEASE_FILE, LEASE_REDIS } lease_kind;

static pthread_mutex_t lease_mu = PTHREAD_MUTEX_INITIALIZER;
static bool configured;
static lease_kind kind;
static int lock_fd = -1;
static atomic_bool held;
static char *r_host, *r_key;
static int r_port;
static double ttl_ms;
static char me[128];

static void *redis_keeper(void *arg)
{
    crm_runtime *rt = arg;
    redisContext *c = NULL;
    bool warned = false;
    for (;;) {
        if (!c) {
            struct timeval tv = {1, 0};
            c = redisConnectWithTimeout(r_host, r_port, tv);
            if (!c || c->err) {
                if (!warned) crm_log(rt, CRM_LOG_WARN, NULL, "lease: cannot reach Redis at %s:%d: %s", r_host, r_port,
                                     c ? c->errstr : "out of memory");
                warned = true;
                if (c) redisFree(c);
                c = NULL;
                atomic_store(&held, false); /* our key may expire meanwhile: never two holders */
            }
        }
        if (c) {
            warned = false;
            redisReply *r;
            if (atomic_load(&held))
                r = redisCommand(c, "EVAL %s 1 %s %s %d",
                                 "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
                                 r_key, me, (int)ttl_ms);
            else
                r = redisCommand(c, "SET %s %s NX PX %d", r_key, me, (int)ttl_ms);
            if (!r) {
                redisFree(c);
                c = NULL;
                atomic_store(&held, false);
            } else {
                bool now = r->type == REDIS_REPLY_STATUS || (r->type == REDIS_REPLY_INTEGER && r->integer == 1);
                if (now != atomic_load(&held))
                    crm_log(rt, CRM_LOG_INFO, NULL, "lease %s: %s", r_key, now ? "taken: timed injects fire here" : "lost");
                atomic_store(&held, now);
                freeReplyObject(r);
            }
        }
        usleep((useconds_t)(ttl_ms / 3 * 1000));
    }
    return NULL;
}

static void configure(crm_runtime *rt)
{
    const json_t *cfg = json_object_get(crm_runtime_settings(rt), "lease");
    const char *file = getenv("CARMINE_LEASE_FILE");
    if (json_is_false(cfg)) return;
    const json_t *redis = json_object_get(cfg, "redis");
    if (json_is_string(json_object_get(cfg, "file"))) file = json_string_value(json_object_get(cfg, "file"));
    snprintf(me, sizeof me, "%d@", (int)getpid());
    gethostname(me + strlen(me), sizeof me - strlen(me) - 1);
    if (json_is_object(redis)) {
        kind = LEASE_REDIS;
        r_host = strdup(crm_cfg_str(redis, "host", "127.0.0.1"));
        r_port = (int)crm_cfg_num(redis, "port", 6379);
        if (asprintf(&r_key, "%s:lease", crm_cfg_str(redis, "prefix", "carmine")) < 0) r_key = NULL;
        ttl_ms = crm_cfg_num(cfg, "ttl", 5000);
        if (ttl_ms < 300) ttl_ms = 300;
        pthread_t t;
        if (r_key && pthread_create(&t, NULL, redis_keeper, rt) == 0) pthread_detach(t);
        else crm_log(rt, CRM_LOG_ERROR, NULL, "lease: cannot start the Redis lease keeper");
    } else if (file && *file) {
        kind = LEASE_FILE;
        lock_fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0) {
            crm_log(rt, CRM_LOG_ERROR, NULL, "lease: cannot open %s: %s (timed injects fire on every replica)", file,
                    strerror(errno));
            kind = LEASE_NONE;
        }
    }
}

bool crm_lease_held(crm_runtime *rt)
{
    pthread_mutex_lock(&lease_mu);
    if (!configured) {
        configured = true;
        configure(rt);
    }
    bool h = true;
    if (kind == LEASE_FILE) {
        if (!atomic_load(&held) && flock(lock_fd, LOCK_EX | LOCK_NB) == 0) {
            atomic_store(&held, true);
            crm_log(rt, CRM_LOG_INFO, NULL, "lease taken: timed injects fire on this replica");
        }
        h = atomic_load(&held);
    } else if (kind == LEASE_REDIS) {
        h = atomic_load(&held);
    }
    pthread_mutex_unlock(&lease_mu);
    return h;
}
