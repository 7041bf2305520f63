/* context_redis.c: the "redis" context store (settings.contextStorage.NAME =
 * {"module":"redis","config":{"host","port","prefix","password","db"}}),
 * context shared by replicas on one or several machines (docs/ha.md).
 *
 * Layout: one Redis hash per context id, "<prefix>:ctx:<id>", one field per
 * top-level key holding its JSON text (JSON.stringify's, as the file store
 * writes). Reads come from the store's in-memory scopes (context.c): they
 * stay synchronous, as Node-RED's context API is, and no loop thread waits
 * on the network. A set updates the scopes at once (a replica reads its own
 * writes) and queues an operation for the writer thread, which applies it
 * in Redis as a read-modify-write of the top-level key under WATCH/MULTI:
 * `flow.set("a.b", 1)` on one replica and `flow.set("a.c", 2)` on another
 * both survive. The transaction also PUBLISHes the key's new value on
 * "<prefix>:ctx-changes"; a subscriber thread applies what every replica
 * publishes, in Redis' order, so all caches converge on Redis' state. While
 * a replica has its own writes of a key in flight it skips others' news of
 * that key: its own last write comes back carrying the merged value.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "context_store.h"

typedef struct op {
    struct op *next;
    char *id, *top;
    char *key;     /* the key expression set, NULL: the whole top-level key */
    json_t *value; /* the value set at key (NULL: deleted) */
} op;

typedef struct {
    ctxstore *s;
    char *host, *prefix, *channel, *password;
    int port, db;
    char origin[40];
    redisContext *w;          /* the writer's connection (the writer thread only, after open) */
    pthread_t writer, sub;
    bool writer_running, sub_running;
    pthread_mutex_t qm;
    pthread_cond_t qc;
    op *head, **tail;
    bool stop;
    pthread_mutex_t subm;     /* guards subc, so close can cut it */
    redisContext *subc;
    atomic_bool sub_stop;
    json_t *pending;          /* "id\x1ftop" -> own writes in flight (under s->lock) */
} rstore;

static void rlog(rstore *r, crm_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rlog(rstore *r, crm_log_level lvl, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    crm_log(r->s->rt, lvl, NULL, "context store %s (redis %s:%d): %s", r->s->name, r->host, r->port, text);
}

static redisContext *connect_redis(rstore *r, char *err, size_t cap)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c || c->err) {
        snprintf(err, cap, "%s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisReply *rep = NULL;
    if (r->password) {
        rep = redisCommand(c, "AUTH %s", r->password);
        bool bad = !rep || rep->type == REDIS_REPLY_ERROR;
        snprintf(err, cap, "AUTH: %s", rep && rep->str ? rep->str : c->errstr);
        if (rep) freeReplyObject(rep);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    if (r->db) {
        rep = redisCommand(c, "SELECT %d", r->db);
        bool bad = !rep || rep->type == REDIS_REPLY_ERROR;
        snprintf(err, cap, "SELECT %d: %s", r->db, rep && rep->str ? rep->str : c->errstr);
        if (rep) freeReplyObject(rep);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static void pending_key(const char *id, const char *top, char *out, size_t cap)
{
    snprintf(out, cap, "%s\x1f%s", id, top);
}

/* Loading ------------------------------------------------------------------------------ */

static int load_hash(rstore *r, redisContext *c, const char *hkey, json_t *scopes)
{
    redisReply *rep = redisCommand(c, "HGETALL %s", hkey);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep) freeReplyObject(rep);
        return -1;
    }
    const char *id = hkey + strlen(r->prefix) + 5; /* "<prefix>:ctx:" */
    json_t *scope = json_object();
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        json_t *v = crm_parse(rep->element[i + 1]->str, rep->element[i + 1]->len, NULL, 0);
        if (v) json_object_set_new(scope, rep->element[i]->str, v);
        else rlog(r, CRM_LOG_WARN, "%s.%s: not JSON, ignored", hkey, rep->element[i]->str);
    }
    json_object_set_new(scopes, id, scope);
    freeReplyObject(rep);
    return 0;
}

/* Every scope under the prefix, as a new object (NULL on an error). */
static json_t *load_all(rstore *r, redisContext *c)
{
    json_t *scopes = json_object();
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(c, "SCAN %s MATCH %s:ctx:* COUNT 200", cursor, r->prefix);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            if (rep) freeReplyObject(rep);
            json_decref(scopes);
            return NULL;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            if (load_hash(r, c, keys->element[i]->str, scopes) < 0) {
                freeReplyObject(rep);
                json_decref(scopes);
                return NULL;
            }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0"));
    return scopes;
}

/* Writing --------------------------------------------------------------------------------- */

/* The new top-level value: op applied to what Redis holds now (cur, may be NULL). */
static json_t *apply_op(const op *o, const char *cur, size_t len)
{
    if (!o->key) return o->value ? crm_deep_copy(o->value) : NULL;
    json_t *root = json_object();
    json_t *v = cur ? crm_parse(cur, len, NULL, 0) : NULL;
    if (v) json_object_set_new(root, o->top, v);
    char *err = NULL;
    crm_path *p = crm_path_parse(o->key, &err);
    free(err);
    if (p) crm_path_set(p, root, NULL, o->value ? crm_deep_copy(o->value) : NULL, true);
    crm_path_free(p);
    json_t *top = json_incref(json_object_get(root, o->top));
    json_decref(root);
    return top;
}

/* -1 for try_op, with Redis' error text (or the connection's) in err. */
static int reply_failed(redisReply *rep, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", rep && rep->str ? rep->str : "connection lost");
    if (rep) freeReplyObject(rep);
    return -1;
}

/* One attempt: 1 done, 0 lost a race (retry), -1 connection or Redis error
 * (retry after a delay; err says which). */
static int try_op(rstore *r, const op *o, char *err, size_t errlen)
{
    redisContext *c = r->w;
    char hkey[1024];
    snprintf(hkey, sizeof hkey, "%s:ctx:%s", r->prefix, o->id);
    /* An error reply (a restarted Redis answers LOADING while it reads its
     * append-only file) is not "no value": writing on top of it would drop
     * the members the file holds. Such an attempt is retried like a lost
     * connection. */
    redisReply *rep = redisCommand(c, "WATCH %s", hkey);
    if (!rep || rep->type == REDIS_REPLY_ERROR) return reply_failed(rep, err, errlen);
    freeReplyObject(rep);
    rep = redisCommand(c, "HGET %s %s", hkey, o->top);
    if (!rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL)) return reply_failed(rep, err, errlen);
    json_t *top = apply_op(o, rep->type == REDIS_REPLY_STRING ? rep->str : NULL, rep->len);
    freeReplyObject(rep);
    json_t *news = json_pack("{s:s,s:s,s:s}", "o", r->origin, "i", o->id, "k", o->top);
    if (top) json_object_set(news, "v", top);
    char *news_text = crm_stringify(news, 0);
    char *text = top ? crm_stringify(top, 0) : NULL;
    redisAppendCommand(c, "MULTI");
    if (text) redisAppendCommand(c, "HSET %s %s %b", hkey, o->top, text, strlen(text));
    else redisAppendCommand(c, "HDEL %s %s", hkey, o->top);
    redisAppendCommand(c, "PUBLISH %s %b", r->channel, news_text, strlen(news_text));
    redisAppendCommand(c, "EXEC");
    int rc = 1;
    for (int i = 0; i < 4 && rc >= 0; i++) {
        redisReply *x = NULL;
        if (redisGetReply(c, (void **)&x) != REDIS_OK) {
            rc = reply_failed(NULL, err, errlen);
            break;
        }
        if (i < 3 || x->type == REDIS_REPLY_ARRAY) {
            freeReplyObject(x);
        } else if (x->type == REDIS_REPLY_NIL) {
            freeReplyObject(x);
            rc = 0; /* the hash changed since WATCH */
        } else {
            rc = reply_failed(x, err, errlen); /* EXECABORT: a queued command failed */
        }
    }
    free(text);
    free(news_text);
    json_decref(news);
    json_decref(top);
    return rc;
}

/* Our write of a key will not come back: stop skipping others' news of it. */
static void forget_pending(rstore *r, const op *o)
{
    char pk[1024];
    pending_key(o->id, o->top, pk, sizeof pk);
    pthread_mutex_lock(&r->s->lock);
    json_int_t n = json_integer_value(json_object_get(r->pending, pk)) - 1;
    if (n > 0) json_object_set_new(r->pending, pk, json_integer(n));
    else json_object_del(r->pending, pk);
    pthread_mutex_unlock(&r->s->lock);
}

static void free_op(op *o)
{
    free(o->id);
    free(o->top);
    free(o->key);
    json_decref(o->value);
    free(o);
}

static void run_op(rstore *r, op *o)
{
    int delay = 50;
    for (int attempt = 0;; attempt++) {
        char err[256] = "";
        if (!r->w) {
            r->w = connect_redis(r, err, sizeof err);
            if (!r->w && attempt == 1) rlog(r, CRM_LOG_ERROR, "cannot reconnect: %s (retrying)", err);
        }
        int rc = r->w ? try_op(r, o, err, sizeof err) : -1;
        if (rc < 0 && r->w && attempt == 1) rlog(r, CRM_LOG_WARN, "set of %s.%s: %s (retrying)", o->id, o->top, err);
        if (rc == 1) return;
        if (rc < 0 && r->w) {
            redisFree(r->w);
            r->w = NULL;
        }
        bool stopping;
        pthread_mutex_lock(&r->qm);
        stopping = r->stop;
        pthread_mutex_unlock(&r->qm);
        if (rc < 0 && (stopping || attempt >= 100)) {
            rlog(r, CRM_LOG_ERROR, "set of %s.%s lost: Redis unreachable", o->id, o->top);
            forget_pending(r, o);
            return;
        }
        if (rc < 0) {
            usleep((useconds_t)delay * 1000);
            if (delay < 2000) delay *= 2;
        }
    }
}

static void *writer_main(void *arg)
{
    rstore *r = arg;
    pthread_mutex_lock(&r->qm);
    for (;;) {
        while (!r->head && !r->stop) pthread_cond_wait(&r->qc, &r->qm);
        if (!r->head) break;
        op *o = r->head;
        r->head = o->next;
        if (!r->head) r->tail = &r->head;
        pthread_mutex_unlock(&r->qm);
        run_op(r, o);
        free_op(o);
        pthread_mutex_lock(&r->qm);
    }
    pthread_mutex_unlock(&r->qm);
    return NULL;
}

/* Called with the store locked, on whichever thread set the value. */
static void redis_changed(ctxstore *s, const char *id, const char *top, const char *key, const json_t *now)
{
    rstore *r = s->data;
    op *o = calloc(1, sizeof *o);
    o->id = strdup(id);
    o->top = strdup(top);
    if (key) {
        o->key = strdup(key);
        char *err = NULL;
        crm_path *p = crm_path_parse(key, &err);
        free(err);
        bool throws = false;
        json_t *scope = json_object_get(s->scopes, id);
        json_t *v = p && scope ? crm_path_get(p, scope, NULL, &throws) : NULL;
        o->value = v ? crm_deep_copy(v) : NULL;
        crm_path_free(p);
    } else {
        o->value = now ? crm_deep_copy(now) : NULL;
    }
    char pk[1024];
    pending_key(id, top, pk, sizeof pk);
    json_object_set_new(r->pending, pk, json_integer(json_integer_value(json_object_get(r->pending, pk)) + 1));
    pthread_mutex_lock(&r->qm);
    *r->tail = o;
    r->tail = &o->next;
    pthread_cond_signal(&r->qc);
    pthread_mutex_unlock(&r->qm);
}

/* Subscribing ------------------------------------------------------------------------------- */

static void apply_news(rstore *r, const char *text, size_t len)
{
    json_t *m = crm_parse(text, len, NULL, 0);
    const char *origin = json_string_value(json_object_get(m, "o"));
    const char *id = json_string_value(json_object_get(m, "i"));
    const char *top = json_string_value(json_object_get(m, "k"));
    if (!origin || !id || !top) {
        json_decref(m);
        return;
    }
    char pk[1024];
    pending_key(id, top, pk, sizeof pk);
    ctxstore *s = r->s;
    pthread_mutex_lock(&s->lock);
    json_int_t n = json_integer_value(json_object_get(r->pending, pk));
    if (!strcmp(origin, r->origin) && n > 0) {
        n--;
        if (n) json_object_set_new(r->pending, pk, json_integer(n));
        else json_object_del(r->pending, pk);
    }
    if (!n) {
        json_t *v = json_object_get(m, "v");
        json_t *scope = json_object_get(s->scopes, id);
        if (!scope && v) {
            scope = json_object();
            json_object_set_new(s->scopes, id, scope);
        }
        if (v) json_object_set(scope, top, v);
        else if (scope) json_object_del(scope, top);
        if (crm_context_observer) crm_context_observer(s->name, id, top);
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(m);
}

static redisContext *subscribe(rstore *r, char *err, size_t cap)
{
    redisContext *c = connect_redis(r, err, cap);
    if (!c) return NULL;
    redisReply *rep = redisCommand(c, "SUBSCRIBE %s", r->channel);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, cap, "SUBSCRIBE: %s", rep && rep->str ? rep->str : c->errstr);
        if (rep) freeReplyObject(rep);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(rep);
    return c;
}

/* After a lost subscription: what was missed is in Redis; take it all, but
 * keep keys with own writes still in flight. */
static void resync(rstore *r)
{
    char err[256];
    redisContext *c = connect_redis(r, err, sizeof err);
    json_t *scopes = c ? load_all(r, c) : NULL;
    if (c) redisFree(c);
    if (!scopes) return;
    ctxstore *s = r->s;
    pthread_mutex_lock(&s->lock);
    const char *pk;
    json_t *n;
    json_object_foreach(r->pending, pk, n) {
        const char *sep = strchr(pk, '\x1f');
        char id[1024];
        snprintf(id, sizeof id, "%.*s", (int)(sep - pk), pk);
        json_t *mine = json_object_get(json_object_get(s->scopes, id), sep + 1);
        json_t *scope = json_object_get(scopes, id);
        if (!scope) json_object_set_new(scopes, id, scope = json_object());
        if (mine) json_object_set(scope, sep + 1, mine);
    }
    json_decref(s->scopes);
    s->scopes = scopes;
    if (crm_context_observer) crm_context_observer(s->name, NULL, NULL);
    pthread_mutex_unlock(&s->lock);
}

static void *subscriber_main(void *arg)
{
    rstore *r = arg;
    int delay = 50;
    while (!atomic_load(&r->sub_stop)) {
        redisReply *rep = NULL;
        pthread_mutex_lock(&r->subm);
        redisContext *c = r->subc;
        pthread_mutex_unlock(&r->subm);
        if (c && redisGetReply(c, (void **)&rep) == REDIS_OK) {
            delay = 50;
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && !strcmp(rep->element[0]->str, "message"))
                apply_news(r, rep->element[2]->str, rep->element[2]->len);
            freeReplyObject(rep);
            continue;
        }
        if (atomic_load(&r->sub_stop)) break;
        if (c) rlog(r, CRM_LOG_WARN, "subscription lost: %s; reconnecting", c->errstr);
        usleep((useconds_t)delay * 1000);
        if (delay < 2000) delay *= 2;
        char err[256];
        redisContext *nc = subscribe(r, err, sizeof err);
        pthread_mutex_lock(&r->subm);
        if (r->subc) redisFree(r->subc);
        r->subc = nc;
        pthread_mutex_unlock(&r->subm);
        if (nc) {
            resync(r);
            rlog(r, CRM_LOG_INFO, "subscription restored");
        }
    }
    return NULL;
}

/* Life cycle ------------------------------------------------------------------------------------ */

static void free_rstore(rstore *r)
{
    if (r->w) redisFree(r->w);
    if (r->subc) redisFree(r->subc);
    free(r->host);
    free(r->prefix);
    free(r->channel);
    free(r->password);
    json_decref(r->pending);
    pthread_mutex_destroy(&r->qm);
    pthread_cond_destroy(&r->qc);
    pthread_mutex_destroy(&r->subm);
    free(r);
}

static int redis_open(crm_runtime *rt, ctxstore *s, const json_t *cfg)
{
    (void)rt;
    rstore *r = calloc(1, sizeof *r);
    s->data = r;
    r->s = s;
    r->host = strdup(crm_cfg_str(cfg, "host", "127.0.0.1"));
    r->port = (int)crm_cfg_num(cfg, "port", 6379);
    r->prefix = strdup(crm_cfg_str(cfg, "prefix", "carmine"));
    const char *pw = crm_cfg_str(cfg, "password", NULL);
    r->password = pw ? strdup(pw) : NULL;
    r->db = (int)crm_cfg_num(cfg, "db", 0);
    if (asprintf(&r->channel, "%s:ctx-changes", r->prefix) < 0) r->channel = NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(r->origin, sizeof r->origin, "%d-%ld-%p", (int)getpid(), (long)ts.tv_nsec, (void *)r);
    r->pending = json_object();
    r->tail = &r->head;
    pthread_mutex_init(&r->qm, NULL);
    pthread_cond_init(&r->qc, NULL);
    pthread_mutex_init(&r->subm, NULL);
    if (r->port <= 0 || r->port > 65535) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "contextStorage.%s.config.port: not a port number", s->name);
        free_rstore(r);
        s->data = NULL;
        return -1;
    }
    /* subscribed before loading: nothing published meanwhile is missed */
    char err[256];
    r->subc = subscribe(r, err, sizeof err);
    r->w = r->subc ? connect_redis(r, err, sizeof err) : NULL;
    json_t *scopes = r->w ? load_all(r, r->w) : NULL;
    if (!scopes) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "contextStorage.%s: cannot use Redis at %s:%d: %s", s->name, r->host, r->port,
                r->w ? (r->w->err ? r->w->errstr : "cannot read the context keys") : err);
        free_rstore(r);
        s->data = NULL;
        return -1;
    }
    json_decref(s->scopes);
    s->scopes = scopes;
    r->writer_running = pthread_create(&r->writer, NULL, writer_main, r) == 0;
    r->sub_running = pthread_create(&r->sub, NULL, subscriber_main, r) == 0;
    if (!r->writer_running || !r->sub_running) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "contextStorage.%s: cannot start threads", s->name);
        return -1;
    }
    return 0;
}

static void redis_close(crm_runtime *rt, ctxstore *s)
{
    (void)rt;
    rstore *r = s->data;
    if (!r) return;
    /* the writer empties its queue first: sets made before stop reach Redis */
    pthread_mutex_lock(&r->qm);
    r->stop = true;
    pthread_cond_signal(&r->qc);
    pthread_mutex_unlock(&r->qm);
    if (r->writer_running) pthread_join(r->writer, NULL);
    atomic_store(&r->sub_stop, true);
    pthread_mutex_lock(&r->subm);
    if (r->subc) shutdown(r->subc->fd, SHUT_RDWR);
    pthread_mutex_unlock(&r->subm);
    if (r->sub_running) pthread_join(r->sub, NULL);
    free_rstore(r);
    s->data = NULL;
}

const ctx_backend crm_ctx_redis = {
    .module = "redis",
    .open = redis_open,
    .changed = redis_changed,
    .close = redis_close,
};
