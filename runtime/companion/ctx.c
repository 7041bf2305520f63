/* ctx.c: one context for native and hosted nodes (docs/companion.md).
 *
 * Carmine's stores (memory, localfilesystem, Redis) stay the only truth.
 * The companion's context stores are caches of the contexts its nodes can
 * reach (global, the flows of its tabs, its nodes' own contexts), so that
 * Node-RED's synchronous context API is served at once, without a round
 * trip; their writes go to Carmine, and Carmine pushes every change of those
 * contexts back:
 *   - at start, the companion's first line carries a copy of them (hello);
 *   - a change (any thread; crm_context_observer, store lock held) marks the
 *     top-level key dirty; one flush per loop turn on the owner's loop sends
 *     the current value of each dirty key ({"t":"cx"}), ahead of the messages
 *     queued for the companion (a node reading context gets the latest value,
 *     as in Node-RED, where context is shared memory);
 *   - a write in the companion ({"t":"cs","q":SEQ}) is applied here on the
 *     owner's loop; every push carries "a", the last SEQ applied, and the
 *     companion ignores a push of a key it wrote after that (its own newer
 *     write is still on the way and will win here). A whole top-level set is
 *     not echoed back; a nested one (a.b) is, as the rest of the object may
 *     have changed here. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "companion.h"
#include "companion_int.h"
#include "context_store.h"
#include "engine.h"

static struct {
    pthread_mutex_t lock;
    json_t *scopes; /* context ids the companion has: id -> true */
    json_t *dirty;  /* "store\x1fid\x1ftop" -> [store, id, top|null]; every scope: "\x1f*" */
    bool active;
    json_int_t ack; /* the companion's last write applied (owner's loop) */
} X = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local bool applying; /* the companion's own whole-key write: no echo */

static void observe(const char *store, const char *id, const char *top)
{
    if (applying) return;
    bool kick = false;
    pthread_mutex_lock(&X.lock);
    if (X.active && X.scopes && (!id || json_object_get(X.scopes, id))) {
        if (!X.dirty) X.dirty = json_object();
        kick = !json_object_size(X.dirty);
        strbuf k = SB_INIT;
        sb_printf(&k, "%s\x1f%s\x1f%s", store, id ? id : "*", top ? top : "");
        if (!json_object_get(X.dirty, k.data))
            json_object_set_new(X.dirty, k.data, json_pack("[s,s?,s?]", store, id, top));
        sb_free(&k);
    }
    pthread_mutex_unlock(&X.lock);
    if (kick) crm_companion_kick();
}

/* A hosted subflow instance's contexts, as Node-RED names them: its flow
 * context is the instance's id, the node inside it with id N has "N:INST",
 * and an instance J inside it is "INST-J" (Subflow.js createNodeInSubflow). */
static void subflow_scopes(json_t *scopes, const json_t *part, const char *def, const char *inst, int depth)
{
    if (depth > 16) return;
    json_object_set_new(scopes, inst, json_true());
    size_t i;
    json_t *o;
    json_array_foreach(part, i, o) {
        const char *id = json_string_value(json_object_get(o, "id")), *z = json_string_value(json_object_get(o, "z"));
        const char *type = json_string_value(json_object_get(o, "type"));
        if (!id || !type || !z || strcmp(z, def)) continue;
        strbuf s = SB_INIT;
        sb_printf(&s, "%s:%s", id, inst);
        json_object_set_new(scopes, s.data, json_true());
        if (!strncmp(type, "subflow:", 8)) {
            s.len = 0;
            sb_printf(&s, "%s-%s", inst, id);
            subflow_scopes(scopes, part, type + 8, s.data, depth + 1);
        }
        sb_free(&s);
    }
}

void crm_companion_ctx_scopes(const json_t *part)
{
    json_t *scopes = json_object();
    json_object_set_new(scopes, "global", json_true());
    size_t i;
    json_t *o, *tabs = json_object();
    json_array_foreach(part, i, o) {
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && !strcmp(type, "tab")) json_object_set_new(tabs, json_string_value(json_object_get(o, "id")), json_true());
    }
    json_array_foreach(part, i, o) {
        const char *id = json_string_value(json_object_get(o, "id")), *z = json_string_value(json_object_get(o, "z"));
        const char *type = json_string_value(json_object_get(o, "type"));
        if (!id || !type) continue;
        if (!strcmp(type, "tab")) {
            json_object_set_new(scopes, id, json_true());
        } else if (z && !strncmp(type, "subflow:", 8) && json_object_get(tabs, z)) {
            subflow_scopes(scopes, part, type + 8, id, 0);
        } else if (z && strncmp(id, "carmine-", 8)) {
            strbuf s = SB_INIT;
            sb_printf(&s, "%s:%s", id, z);
            json_object_set_new(scopes, s.data, json_true());
            sb_free(&s);
        }
    }
    json_decref(tabs);
    pthread_mutex_lock(&X.lock);
    json_decref(X.scopes);
    X.scopes = scopes;
    pthread_mutex_unlock(&X.lock);
}

json_t *crm_companion_ctx_hello(crm_runtime *rt)
{
    crm_context_observer = observe;
    pthread_mutex_lock(&X.lock);
    X.active = true;
    X.ack = 0;
    json_decref(X.dirty); /* the copy below has it all */
    X.dirty = NULL;
    json_t *ids = json_deep_copy(X.scopes ? X.scopes : json_object());
    pthread_mutex_unlock(&X.lock);
    json_t *stores = json_array(), *data = json_object();
    const char *name;
    for (size_t i = 0; (name = crm_context_store_name(rt, i)); i++) {
        json_array_append_new(stores, json_string(name));
        json_t *d = json_object();
        const char *id;
        json_t *v;
        json_object_foreach(ids, id, v) {
            json_t *copy = crm_context_scope_copy(rt, name, id);
            if (copy) json_object_set_new(d, id, copy);
        }
        json_object_set_new(data, name, d);
    }
    json_decref(ids);
    json_t *fgc = json_object_get(rt->settings, "functionGlobalContext");
    return json_pack("{s:o,s:s,s:o,s:O}", "stores", stores, "default", crm_context_default_store(rt), "data", data,
                     "fgc", json_is_object(fgc) ? fgc : json_null());
}

void crm_companion_ctx_stop(void)
{
    pthread_mutex_lock(&X.lock);
    X.active = false;
    json_decref(X.dirty);
    X.dirty = NULL;
    pthread_mutex_unlock(&X.lock);
}

/* One push line for a dirty entry. */
static void push_line(crm_runtime *rt, strbuf *out, const char *store, const char *id, const char *top)
{
    json_t *js = json_string(store), *jid = json_string(id), *jtop = top ? json_string(top) : NULL;
    char *s = json_dumps(js, JSON_ENCODE_ANY), *i = json_dumps(jid, JSON_ENCODE_ANY);
    char *t = jtop ? json_dumps(jtop, JSON_ENCODE_ANY) : NULL;
    char *v = crm_context_text(rt, store, id, top, crm_companion_text);
    sb_printf(out, "{\"t\":\"cx\",\"s\":%s,\"c\":%s,\"a\":%lld", s, i, (long long)X.ack);
    if (t) sb_printf(out, ",\"k\":%s", t);
    if (v) sb_printf(out, ",\"v\":%s", v);
    sb_puts(out, "}\n");
    free(s);
    free(i);
    free(t);
    free(v);
    json_decref(js);
    json_decref(jid);
    json_decref(jtop);
}

void crm_companion_ctx_take(crm_runtime *rt, strbuf *out)
{
    pthread_mutex_lock(&X.lock);
    json_t *dirty = X.dirty;
    X.dirty = NULL;
    json_t *ids = dirty ? json_deep_copy(X.scopes) : NULL;
    pthread_mutex_unlock(&X.lock);
    if (!dirty) return;
    const char *k;
    json_t *e;
    json_object_foreach(dirty, k, e) {
        const char *store = json_string_value(json_array_get(e, 0)), *id = json_string_value(json_array_get(e, 1));
        const char *top = json_string_value(json_array_get(e, 2));
        if (id) {
            push_line(rt, out, store, id, top);
            continue;
        }
        /* the whole store was replaced (a Redis resync): every scope again */
        const char *sid;
        json_t *v;
        json_object_foreach(ids, sid, v) push_line(rt, out, store, sid, NULL);
    }
    json_decref(ids);
    json_decref(dirty);
}

void crm_companion_ctx_apply(crm_runtime *rt, const json_t *m)
{
    const char *store = json_string_value(json_object_get(m, "s")), *id = json_string_value(json_object_get(m, "c"));
    const char *key = json_string_value(json_object_get(m, "k"));
    json_t *q = json_object_get(m, "q");
    if (json_is_integer(q)) X.ack = json_integer_value(q);
    else if (json_is_number(q)) X.ack = (json_int_t)json_number_value(q);
    if (!store || !id || !key) return;
    json_t *v = json_object_get(m, "v");
    /* a plain top-level key set whole: the companion has the same value */
    char *top = crm_ctx_top_key(key);
    applying = top && !strcmp(top, key);
    free(top);
    crm_context_put(rt, store, id, key, v ? crm_companion_revive(json_incref(v)) : NULL);
    applying = false;
}
