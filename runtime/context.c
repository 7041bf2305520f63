/* context.c: node, flow and global context (spec §4).
 *
 * Each configured store (settings.contextStorage; by default one "memory"
 * store) maps a context id ("global", a flow id, "<node>:<flow>") to an
 * object tree. Keys are property expressions; "#:(store)::" picks a store;
 * "$parent." climbs from a subflow's flow context to its parent's. The
 * stores sit behind one interface (context_store.h): get, set, keys and
 * delete by context id and key on the in-memory scopes, plus a backend for
 * where they also live: none (memory), Node-RED's file layout
 * (localfilesystem: global/global.json, <flow>/flow.json,
 * <flow>/<node>.json, flushed every flushInterval seconds and at stop), or
 * Redis shared by replicas (context_redis.c). A store has one lock: loops
 * share global context, and the backends' threads read and update it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "context_store.h"
#include "metrics.h"

struct crm_ctxstores {
    ctxstore *stores;
    size_t n;
    size_t def;          /* index of the default store */
    bool configured;     /* settings named stores: node context survives close */
    pthread_t flusher;
    bool flushing;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool stop;
};

/* Store selection --------------------------------------------------------------- */

static ctxstore *store_for(crm_runtime *rt, const char **key)
{
    struct crm_ctxstores *S = rt->stores;
    const char *k = *key;
    if (!strncmp(k, "#:(", 3)) {
        const char *e = strstr(k, ")::");
        if (e) {
            size_t len = (size_t)(e - k - 3);
            *key = e + 3;
            for (size_t i = 0; i < S->n; i++)
                if (strlen(S->stores[i].name) == len && !strncmp(S->stores[i].name, k + 3, len)) return &S->stores[i];
            if (!(len == 7 && !strncmp(k + 3, "default", 7)))
                crm_log(rt, CRM_LOG_WARN, NULL, "Unknown context store '%.*s' specified. Using default store.", (int)len, k + 3);
        }
    }
    return &S->stores[S->def];
}

static ctxstore *store_named(crm_runtime *rt, const char *name)
{
    struct crm_ctxstores *S = rt->stores;
    for (size_t i = 0; name && i < S->n; i++)
        if (!strcmp(S->stores[i].name, name)) return &S->stores[i];
    return &S->stores[S->def];
}

/* The context id of a scope, as Node-RED names it. */
static void context_id(crm_node *n, crm_scope scope, const char **key, char *out, size_t cap)
{
    if (scope == CRM_SCOPE_GLOBAL) {
        snprintf(out, cap, "global");
        return;
    }
    if (scope == CRM_SCOPE_NODE) {
        if (n->flow && n->z) snprintf(out, cap, "%s:%s", n->alias ? n->alias : n->id, n->z);
        else snprintf(out, cap, "%s", n->id);
        return;
    }
    crm_flow *f = n->flow;
    while (!strncmp(*key, "$parent.", 8)) {
        *key += 8;
        f = f && f->is_subflow ? f->parent : NULL;
    }
    snprintf(out, cap, "%s", f && f != n->rt->global_flow ? f->id : "global");
}

/* The scope object (borrowed), created when create is set. Store locked. */
static json_t *scope_obj(ctxstore *s, const char *id, bool create)
{
    json_t *o = json_object_get(s->scopes, id);
    if (!o && create) {
        o = json_object();
        json_object_set_new(s->scopes, id, o);
    }
    return o;
}

/* The store interface: by context id and key --------------------------------------------- */

char *crm_ctx_top_key(const char *key)
{
    /* the one key a set on an empty object creates is the top-level one */
    char *err = NULL;
    crm_path *p = crm_path_parse(key, &err);
    free(err);
    if (!p) return NULL;
    json_t *o = json_object();
    char *top = NULL;
    if (crm_path_set(p, o, NULL, json_true(), true) == 0 && json_object_size(o) == 1)
        top = strdup(json_object_iter_key(json_object_iter(o)));
    json_decref(o);
    crm_path_free(p);
    return top;
}

void (*crm_context_observer)(const char *store, const char *id, const char *top);

/* Sets (value stolen) or deletes (NULL) the key of context id, then tells
 * the backend and the observer. */
static int store_set(ctxstore *s, const char *id, const char *key, const crm_path *p, json_t *value)
{
    void (*obs)(const char *, const char *, const char *) = crm_context_observer;
    char *top = (s->backend && s->backend->changed) || obs ? crm_ctx_top_key(key) : NULL;
    pthread_mutex_lock(&s->lock);
    int rc = crm_path_set(p, scope_obj(s, id, true), NULL, value, true);
    /* Node-RED's stores use setObjectProperty, which gives up without an
     * error where the path is blocked (a string in the way, or a parent
     * missing when the value is undefined) */
    if (rc == -1) rc = 0;
    if (rc == 0 && top && s->backend && s->backend->changed) {
        json_t *now = json_object_get(scope_obj(s, id, false), top);
        s->backend->changed(s, id, top, key, now);
    }
    if (rc == 0 && top && obs) obs(s->name, id, top);
    pthread_mutex_unlock(&s->lock);
    free(top);
    return rc;
}

static void store_delete_scope(ctxstore *s, const char *id)
{
    pthread_mutex_lock(&s->lock);
    json_object_del(s->scopes, id);
    if (s->backend && s->backend->scope_deleted) s->backend->scope_deleted(s, id);
    if (crm_context_observer) crm_context_observer(s->name, id, NULL);
    pthread_mutex_unlock(&s->lock);
}

/* API ------------------------------------------------------------------------------ */

json_t *crm_context_get_msg(crm_node *n, crm_scope scope, const char *key, const json_t *msg)
{
    if (!key || !*key) return NULL;
    ctxstore *s = store_for(n->rt, &key);
    CRM_STAT_ADD(s->ops[0], 1);
    char id[512];
    context_id(n, scope, &key, id, sizeof id);
    if (!strcmp(key, "$parent")) return NULL;
    char *err = NULL;
    crm_path *p = crm_path_parse(key, &err);
    free(err);
    if (!p) return NULL;
    pthread_mutex_lock(&s->lock);
    json_t *root = scope_obj(s, id, false);
    bool throws = false;
    json_t *v = root ? json_incref(crm_path_get(p, root, msg, &throws)) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!v && scope == CRM_SCOPE_GLOBAL) {
        /* functionGlobalContext seeds answer when the store has nothing */
        json_t *seed = json_object_get(n->rt->settings, "functionGlobalContext");
        if (json_is_object(seed)) v = json_incref(crm_path_get(p, seed, msg, &throws));
    }
    crm_path_free(p);
    return v;
}

json_t *crm_context_get(crm_node *n, crm_scope scope, const char *key)
{
    return crm_context_get_msg(n, scope, key, NULL);
}

int crm_context_set(crm_node *n, crm_scope scope, const char *key, json_t *value)
{
    if (!key || !*key) {
        json_decref(value);
        return -1;
    }
    ctxstore *s = store_for(n->rt, &key);
    CRM_STAT_ADD(s->ops[1], 1);
    char id[512];
    context_id(n, scope, &key, id, sizeof id);
    char *err = NULL;
    crm_path *p = crm_path_parse(key, &err);
    free(err);
    if (!p) {
        json_decref(value);
        return -1;
    }
    int rc = store_set(s, id, key, p, value);
    crm_path_free(p);
    return rc;
}

json_t *crm_context_keys(crm_node *n, crm_scope scope, const char *store)
{
    ctxstore *s = store_named(n->rt, store);
    CRM_STAT_ADD(s->ops[2], 1);
    const char *key = "";
    char id[512];
    context_id(n, scope, &key, id, sizeof id);
    json_t *keys = json_array();
    pthread_mutex_lock(&s->lock);
    json_t *root = scope_obj(s, id, false);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) json_array_append_new(keys, json_string(k));
    pthread_mutex_unlock(&s->lock);
    return keys;
}

const char *crm_context_store_name(crm_runtime *rt, size_t i)
{
    struct crm_ctxstores *S = rt->stores;
    return S && i < S->n ? S->stores[i].name : NULL;
}

const char *crm_context_default_store(crm_runtime *rt)
{
    struct crm_ctxstores *S = rt->stores;
    return S && S->n ? S->stores[S->def].name : "memory";
}

json_t *crm_context_scope_copy(crm_runtime *rt, const char *store, const char *id)
{
    if (!rt->stores) return NULL;
    ctxstore *s = store_named(rt, store);
    pthread_mutex_lock(&s->lock);
    json_t *copy = crm_deep_copy(scope_obj(s, id, false));
    pthread_mutex_unlock(&s->lock);
    return copy;
}

json_t *crm_context_lookup(crm_runtime *rt, const char *store, const char *id, const char *key)
{
    if (!rt->stores || !key || !*key) return NULL;
    char *err = NULL;
    crm_path *p = crm_path_parse(key, &err);
    free(err);
    if (!p) return NULL;
    ctxstore *s = store_named(rt, store);
    bool throws = false;
    pthread_mutex_lock(&s->lock);
    json_t *root = scope_obj(s, id, false);
    json_t *copy = root ? crm_deep_copy(crm_path_get(p, root, root, &throws)) : NULL;
    pthread_mutex_unlock(&s->lock);
    crm_path_free(p);
    return copy;
}

int crm_context_put(crm_runtime *rt, const char *store, const char *id, const char *key, json_t *value)
{
    char *err = NULL;
    crm_path *p = rt->stores && key && *key ? crm_path_parse(key, &err) : NULL;
    free(err);
    if (!p) {
        json_decref(value);
        return -1;
    }
    ctxstore *s = store_named(rt, store);
    CRM_STAT_ADD(s->ops[value ? 1 : 3], 1);
    int rc = store_set(s, id, key, p, value);
    crm_path_free(p);
    return rc;
}

int crm_context_delete(crm_runtime *rt, const char *store, const char *id, const char *key)
{
    return crm_context_put(rt, store, id, key, NULL);
}

char *crm_context_text(crm_runtime *rt, const char *store, const char *id, const char *top,
                       char *(*text_of)(const json_t *v))
{
    if (!rt->stores) return NULL;
    ctxstore *s = store_named(rt, store);
    pthread_mutex_lock(&s->lock);
    json_t *scope = scope_obj(s, id, false), *v = top ? json_object_get(scope, top) : scope;
    char *text = v ? text_of(v) : NULL;
    pthread_mutex_unlock(&s->lock);
    return text;
}

void crm_context_metrics(crm_runtime *rt, strbuf *sb)
{
    static const char *names[] = {"get", "set", "keys", "delete"};
    struct crm_ctxstores *S = rt->stores;
    crm_prom_family(sb, "carmine_context_operations_total", "counter",
                    "Context operations by store and kind (get, set, keys; delete from the Admin API).");
    for (size_t i = 0; S && i < S->n; i++)
        for (int k = 0; k < 4; k++) {
            sb_puts(sb, "carmine_context_operations_total{");
            crm_prom_label(sb, "store", S->stores[i].name, true);
            crm_prom_label(sb, "op", names[k], false);
            sb_printf(sb, "} %llu\n", (unsigned long long)CRM_STAT_GET(S->stores[i].ops[k]));
        }
}

void crm_context_node_id(crm_node *n, char *out, size_t cap)
{
    const char *key = "";
    context_id(n, CRM_SCOPE_NODE, &key, out, cap);
}

void crm_context_node_closed(crm_node *n)
{
    struct crm_ctxstores *S = n->rt->stores;
    if (!S || S->configured) return;
    char id[512];
    crm_context_node_id(n, id, sizeof id);
    store_delete_scope(&S->stores[S->def], id);
}

void crm_context_clean(crm_runtime *rt)
{
    struct crm_ctxstores *S = rt->stores;
    if (!S) return;
    json_t *active = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(rt->flows_json, i, o) {
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id) json_object_set_new(active, id, json_true());
    }
    for (size_t k = 0; k < S->n; k++) {
        ctxstore *s = &S->stores[k];
        json_t *gone = json_array();
        const char *id;
        json_t *v;
        pthread_mutex_lock(&s->lock);
        json_object_foreach(s->scopes, id, v) {
            if (!strcmp(id, "global")) continue;
            size_t n = strcspn(id, ":");
            char head[512];
            snprintf(head, sizeof head, "%.*s", (int)(n < sizeof head ? n : sizeof head - 1), id);
            if (!json_object_get(active, head) && !json_object_get(rt->node_index, head))
                json_array_append_new(gone, json_string(id));
        }
        pthread_mutex_unlock(&s->lock);
        json_array_foreach(gone, i, v) store_delete_scope(s, json_string_value(v));
        json_decref(gone);
    }
    json_decref(active);
}

int crm_runtime_context_init(crm_runtime *rt, const char *scope, const char *flow_id, const json_t *value)
{
    if (!json_is_object(value)) return -1;
    const char *id = NULL;
    if (!strcmp(scope, "global")) {
        id = "global";
    } else if (!strcmp(scope, "flow")) {
        for (size_t i = 0; i < rt->nflows && !id; i++) {
            crm_flow *f = rt->flows[i];
            if (f->is_subflow || f == rt->global_flow) continue;
            if (!flow_id || !strcmp(f->id, flow_id)) id = f->id;
        }
    }
    if (!id) return -1;
    ctxstore *s = &rt->stores->stores[rt->stores->def];
    const char *k;
    json_t *v;
    json_t *copy = crm_deep_copy(value);
    pthread_mutex_lock(&s->lock);
    json_t *obj = scope_obj(s, id, true);
    json_object_foreach(copy, k, v) {
        json_object_set(obj, k, v);
        /* each top-level key as a whole-key set, so shared stores get it too */
        if (s->backend && s->backend->changed) s->backend->changed(s, id, k, NULL, v);
        if (crm_context_observer) crm_context_observer(s->name, id, k);
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(copy);
    return 0;
}

/* localfilesystem ------------------------------------------------------------------------ */

#define STOP_RETRIES 3     /* writes tried again at stop */
#define STOP_RETRY_MS 200

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* context id -> file path: global/global.json, <flow>/flow.json, <flow>/<node>.json */
static void file_of(const ctxstore *s, const char *id, char *out, size_t cap)
{
    const char *colon = strchr(id, ':');
    if (!strcmp(id, "global")) snprintf(out, cap, "%s/global/global.json", s->dir);
    else if (colon) snprintf(out, cap, "%s/%s/%.*s.json", s->dir, colon + 1, (int)(colon - id), id);
    else snprintf(out, cap, "%s/%s/flow.json", s->dir, id);
}

static int load_store(crm_runtime *rt, ctxstore *s)
{
    if (mkdirs(s->dir) < 0) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "context store %s: cannot create %s: %s", s->name, s->dir, strerror(errno));
        return -1;
    }
    DIR *d = opendir(s->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        if (snprintf(sub, sizeof sub, "%s/%s", s->dir, e->d_name) >= (int)sizeof sub) continue;
        DIR *d2 = opendir(sub);
        struct dirent *f;
        while (d2 && (f = readdir(d2))) {
            size_t len = strlen(f->d_name);
            if (f->d_name[0] == '.' || len < 6 || strcmp(f->d_name + len - 5, ".json")) continue;
            char path[8192];
            if (snprintf(path, sizeof path, "%s/%s", sub, f->d_name) >= (int)sizeof path) continue;
            FILE *fp = fopen(path, "rb");
            if (!fp) continue;
            json_error_t je;
            json_t *v = json_loadf(fp, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
            fclose(fp);
            if (!json_is_object(v)) {
                crm_log(rt, CRM_LOG_ERROR, NULL, "Invalid JSON in context file '%s'", path);
                json_decref(v);
                continue;
            }
            char id[1024];
            if (!strcmp(e->d_name, "global") && !strcmp(f->d_name, "global.json")) snprintf(id, sizeof id, "global");
            else if (!strcmp(f->d_name, "flow.json")) snprintf(id, sizeof id, "%s", e->d_name);
            else snprintf(id, sizeof id, "%.*s:%s", (int)(len - 5), f->d_name, e->d_name);
            json_object_set_new(s->scopes, id, v);
        }
        if (d2) closedir(d2);
    }
    if (d) closedir(d);
    return 0;
}

/* Writes one scope's file (NULL or empty: removes it). 0, or -1 with the
 * reason in err. */
static int write_scope(ctxstore *s, const char *id, json_t *obj, char *err, size_t cap)
{
    char path[4096];
    file_of(s, id, path, sizeof path);
    char *slash = strrchr(path, '/');
    *slash = 0;
    int rc = mkdirs(path);
    *slash = '/';
    if (!obj || !json_object_size(obj)) {
        if (unlink(path) < 0 && errno != ENOENT) rc = -1;
        else rc = 0;
    } else if (rc == 0) {
        char *text = crm_stringify(obj, 4);
        rc = crm_write_file(path, text, 0644);
        free(text);
    }
    if (rc < 0) snprintf(err, cap, "cannot write %.900s: %s", path, strerror(errno));
    return rc;
}

/* Writes the dirty scopes. A scope whose write fails stays dirty: its
 * values are kept in memory and written at the next flush (Node-RED's
 * store loses them: it unmarks the scope before the write). The first
 * failure is logged as an error, each later one at debug level, and the
 * recovery as a warning; crm_context_write_status() shows the state. Returns
 * the number of scopes not written. */
static size_t flush_store_once(crm_runtime *rt, ctxstore *s)
{
    pthread_mutex_lock(&s->lock);
    json_t *dirty = s->dirty;
    s->dirty = json_object();
    json_t *snap = json_object();
    const char *id;
    json_t *v;
    json_object_foreach(dirty, id, v) {
        json_t *o = json_object_get(s->scopes, id);
        json_object_set_new(snap, id, o ? crm_deep_copy(o) : json_null());
    }
    pthread_mutex_unlock(&s->lock);
    json_t *failed = json_array();
    char err[1024] = "";
    json_object_foreach(snap, id, v) {
        char e[1024];
        if (write_scope(s, id, json_is_null(v) ? NULL : v, e, sizeof e) < 0) {
            json_array_append_new(failed, json_string(id));
            if (!err[0]) snprintf(err, sizeof err, "%s", e);
        }
    }
    size_t nfailed = json_array_size(failed);
    pthread_mutex_lock(&s->lock);
    size_t i;
    json_array_foreach(failed, i, v) json_object_set_new(s->dirty, json_string_value(v), json_true());
    unsigned before = s->failed_flushes;
    if (nfailed) {
        s->failed_flushes++;
        s->unwritten = nfailed;
        snprintf(s->write_error, sizeof s->write_error, "%s", err);
    } else if (json_object_size(snap)) {
        s->failed_flushes = 0;
        s->unwritten = 0;
        s->write_error[0] = 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (nfailed && !before)
        crm_log(rt, CRM_LOG_ERROR, NULL,
                "context store %s: %s; %zu scope%s kept in memory, written again every %.0f ms until it works", s->name,
                err, nfailed, nfailed == 1 ? "" : "s", s->flush_ms);
    else if (nfailed)
        crm_log(rt, CRM_LOG_DEBUG, NULL, "context store %s: write %u failed: %s", s->name, before + 1, err);
    else if (before && json_object_size(snap))
        crm_log(rt, CRM_LOG_WARN, NULL, "context store %s: written again after %u failed attempt%s", s->name, before,
                before == 1 ? "" : "s");
    json_decref(failed);
    json_decref(snap);
    json_decref(dirty);
    return nfailed;
}

static void flush_store(crm_runtime *rt, ctxstore *s)
{
    flush_store_once(rt, s);
}

static void *flusher(void *arg)
{
    crm_runtime *rt = arg;
    struct crm_ctxstores *S = rt->stores;
    double period = 30000;
    for (size_t i = 0; i < S->n; i++)
        if (S->stores[i].backend && S->stores[i].backend->flush && S->stores[i].flush_ms < period)
            period = S->stores[i].flush_ms;
    pthread_mutex_lock(&S->m);
    while (!S->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)(period * 1e6);
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&S->c, &S->m, &ts);
        pthread_mutex_unlock(&S->m);
        for (size_t i = 0; i < S->n; i++)
            if (S->stores[i].backend && S->stores[i].backend->flush) S->stores[i].backend->flush(rt, &S->stores[i]);
        pthread_mutex_lock(&S->m);
    }
    pthread_mutex_unlock(&S->m);
    return NULL;
}

static void file_changed(ctxstore *s, const char *id, const char *top, const char *key, const json_t *value)
{
    (void)top;
    (void)key;
    (void)value;
    json_object_set_new(s->dirty, id, json_true());
}

static void file_scope_deleted(ctxstore *s, const char *id)
{
    json_object_set_new(s->dirty, id, json_true());
}

static int file_open(crm_runtime *rt, ctxstore *s, const json_t *c)
{
    const char *dir = crm_cfg_str(c, "dir", rt->userdir ? rt->userdir : ".");
    const char *base = crm_cfg_str(c, "base", "context");
    if (asprintf(&s->dir, "%s/%s", dir, base) < 0) return -1;
    s->flush_ms = crm_cfg_num(c, "flushInterval", 30) * 1000;
    if (load_store(rt, s) < 0) return -1;
    /* a directory that cannot be written (read-only, full): a warning now
     * rather than an error at the first flush; the values are kept */
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.carmine-write-test.%d", s->dir, (int)getpid());
    if (crm_write_file(probe, "", 0600) < 0)
        crm_log(rt, CRM_LOG_WARN, NULL,
                "context store %s: %s is not writable (%s): context is kept in memory and written once it is",
                s->name, s->dir, strerror(errno));
    else
        unlink(probe);
    return 0;
}

/* The last write at stop: tried again a few times (a moment of disk
 * pressure), then what could not be written is logged by scope. */
static void file_close(crm_runtime *rt, ctxstore *s)
{
    size_t left = flush_store_once(rt, s);
    for (int attempt = 1; left && attempt <= STOP_RETRIES; attempt++) {
        struct timespec ts = {0, STOP_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
        left = flush_store_once(rt, s);
    }
    if (!left) return;
    strbuf ids = SB_INIT;
    const char *id;
    json_t *v;
    json_object_foreach(s->dirty, id, v) sb_printf(&ids, "%s%s", ids.len ? ", " : "", id);
    crm_log(rt, CRM_LOG_ERROR, NULL, "context store %s: stopping with %zu scope%s not written (%s) after %d attempts: %s",
            s->name, left, left == 1 ? "" : "s", ids.data, STOP_RETRIES + 1, s->write_error);
    sb_free(&ids);
}

static const ctx_backend file_backend = {
    .module = "localfilesystem",
    .open = file_open,
    .changed = file_changed,
    .scope_deleted = file_scope_deleted,
    .flush = flush_store,
    .close = file_close,
};

static const ctx_backend *backend_named(const char *module)
{
    if (!strcmp(module, "memory")) return NULL;
    if (!strcmp(module, "localfilesystem")) return &file_backend;
    if (!strcmp(module, "redis")) return &crm_ctx_redis;
    return (const ctx_backend *)-1;
}

/* stores is allocated once for every entry: backends keep pointers to theirs */
static ctxstore *add_store(crm_runtime *rt, const char *name, const ctx_backend *b)
{
    struct crm_ctxstores *S = rt->stores;
    ctxstore *s = &S->stores[S->n++];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->backend = b;
    s->scopes = json_object();
    s->dirty = json_object();
    s->flush_ms = 30000;
    s->rt = rt;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

int crm_context_runtime_init(crm_runtime *rt)
{
    struct crm_ctxstores *S = calloc(1, sizeof *S);
    rt->stores = S;
    pthread_mutex_init(&S->m, NULL);
    pthread_cond_init(&S->c, NULL);
    json_t *cfg = json_object_get(rt->settings, "contextStorage");
    S->stores = calloc(json_object_size(cfg) + 1, sizeof *S->stores);
    if (!json_is_object(cfg) || !json_object_size(cfg)) {
        add_store(rt, "memory", NULL);
        return 0;
    }
    S->configured = true;
    /* `carmine check` and a supervisor validating a deploy (setting
     * "_checkOnly") keep the store names but open no backend: no Redis to
     * reach, no context directory to create */
    bool check_only = json_is_true(json_object_get(rt->settings, "_checkOnly"));
    const char *name;
    json_t *v;
    const char *default_ref = NULL;
    json_object_foreach(cfg, name, v) {
        if (json_is_string(v)) {
            if (!strcmp(name, "default")) default_ref = json_string_value(v);
            continue;
        }
        const char *module = crm_cfg_str(v, "module", "memory");
        const ctx_backend *b = backend_named(module);
        if (b == (const ctx_backend *)-1) {
            crm_log(rt, CRM_LOG_ERROR, NULL, "contextStorage.%s: unknown module '%s' (memory, localfilesystem, redis)",
                    name, module);
            return -1;
        }
        ctxstore *s = add_store(rt, name, check_only ? NULL : b);
        if (s->backend && b->open(rt, s, json_object_get(v, "config")) < 0) {
            s->backend = NULL; /* nothing opened to close */
            return -1;
        }
    }
    if (!S->n) add_store(rt, "memory", NULL);
    S->def = 0;
    for (size_t i = 0; i < S->n; i++)
        if (!strcmp(S->stores[i].name, default_ref ? default_ref : "default")) S->def = i;
    bool any_flush = false;
    for (size_t i = 0; i < S->n; i++) any_flush |= S->stores[i].backend && S->stores[i].backend->flush;
    if (any_flush) S->flushing = pthread_create(&S->flusher, NULL, flusher, rt) == 0;
    return 0;
}

json_t *crm_context_write_status(crm_runtime *rt)
{
    struct crm_ctxstores *S = rt->stores;
    json_t *out = NULL;
    for (size_t i = 0; S && i < S->n; i++) {
        ctxstore *s = &S->stores[i];
        pthread_mutex_lock(&s->lock);
        if (s->failed_flushes) {
            if (!out) out = json_array();
            json_array_append_new(out, json_pack("{s:s,s:s,s:I,s:I}", "store", s->name, "error", s->write_error,
                                                 "unwritten", (json_int_t)s->unwritten, "failedWrites",
                                                 (json_int_t)s->failed_flushes));
        }
        pthread_mutex_unlock(&s->lock);
    }
    return out;
}

void crm_context_runtime_close(crm_runtime *rt)
{
    struct crm_ctxstores *S = rt->stores;
    if (!S) return;
    if (S->flushing) {
        pthread_mutex_lock(&S->m);
        S->stop = true;
        pthread_cond_signal(&S->c);
        pthread_mutex_unlock(&S->m);
        pthread_join(S->flusher, NULL);
    }
    for (size_t i = 0; i < S->n; i++) {
        ctxstore *s = &S->stores[i];
        if (s->backend && s->backend->close) s->backend->close(rt, s);
        free(s->name);
        free(s->dir);
        json_decref(s->scopes);
        json_decref(s->dirty);
        pthread_mutex_destroy(&s->lock);
    }
    free(S->stores);
    pthread_mutex_destroy(&S->m);
    pthread_cond_destroy(&S->c);
    free(S);
    rt->stores = NULL;
}
