/* join.c: the Node-RED "join" node (core/sequence/17-split.js, spec §3.14).
 *
 * Three modes. "auto" rebuilds what a split node took apart, guided by
 * msg.parts. "custom" (manual) collects messages into a string, Buffer,
 * array, object or merged object until a count, a timeout or msg.complete.
 * "reduce" folds each sequence through a JSONata expression ($A, $I, $N).
 *
 * Every message of a group is kept (one reference) until the group is sent
 * or reset, because Node-RED calls done for each of them only then. The
 * group's base message is the shallow merge of all its messages, as
 * Object.assign gives, and the output is a deep copy of it (Node-RED clones
 * on send), so the kept messages and an accumulating group never share
 * containers with what goes downstream.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "strbuf.h"

typedef enum { MODE_AUTO, MODE_CUSTOM, MODE_REDUCE } join_mode;
typedef enum { B_STRING, B_BUFFER, B_ARRAY, B_OBJECT, B_MERGED, B_OTHER } build_type;

typedef struct jgroup jgroup;
typedef struct join_state join_state;

/* A group being built (Node-RED's inflight[partId]). */
struct jgroup {
    jgroup *next;
    join_state *js;
    char *id;
    build_type type;     /* string, buffer, array or object (merged builds are objects) */
    json_t *payload;     /* array (string/buffer/array) or object */
    json_t *msg;         /* shallow merge of the messages */
    double target;       /* NaN when undefined */
    double current;
    json_t *join_char;   /* parts.ch or the joiner; NULL when undefined */
    double array_len;    /* parts.len, NaN when undefined */
    char *property;      /* where the result goes */
    crm_timer *timer;
    json_t **msgs;       /* kept for done */
    size_t nmsgs, capmsgs;
    bool payload_is_buffer; /* a buffer group sent while accumulating: Node-RED's payload became a Buffer */
    json_t *undefined_keys; /* object build: keys set to undefined (counted, never shown), as a set */
};

/* A reduce sequence (Node-RED's pending[gid]). */
typedef struct rgroup {
    struct rgroup *next;
    char *id;
    double count;        /* NaN until a message carries parts.count */
    json_t **msgs;
    size_t nmsgs, capmsgs;
} rgroup;

struct join_state {
    crm_node *n;
    bool broken;         /* bad config: Node-RED registers no input handler */
    join_mode mode;
    build_type build;
    char *property;
    crm_path *prop_path;
    bool full;           /* propertyType "full" */
    crm_path *key_path;
    char *key;
    double timer_ms;
    double count;
    bool count_empty;    /* config count === "" */
    json_t *joiner;      /* string or Buffer */
    bool useparts;
    bool accumulate;
    jgroup *groups;
    /* reduce */
    crm_typed *exp, *fixup, *init;
    bool init_undefined;
    bool reduce_right;
    rgroup *pending;
    size_t pending_count;
    double max_kept;     /* nodeMessageBufferMaxLength, 0 = no limit */
};

/* ---- small helpers --------------------------------------------------------- */

/* Whether crm_node_done(n, ...) has an observer (a complete node watching
 * n): only then must a group keep every message it absorbed. */
static bool done_observed(const crm_node *n)
{
    return crm_node_watched(n);
}

static char *unescape_joiner(const char *in)
{
    static const char from[] = "nrtef0";
    static const char to[] = {'\n', '\r', '\t', 'e', '\f', '\0'};
    size_t len = strlen(in);
    char *cur = malloc(len + 1);
    if (!cur) return NULL;
    memcpy(cur, in, len + 1);
    for (int r = 0; r < 6; r++) {
        size_t w = 0;
        for (size_t i = 0; i < len; i++) {
            if (cur[i] == '\\' && i + 1 < len && cur[i + 1] == from[r]) {
                cur[w++] = to[r];
                i++;
            } else {
                cur[w++] = cur[i];
            }
        }
        len = w;
        cur[len] = '\0';
    }
    return cur;
}

static void push_msg(json_t ***arr, size_t *n, size_t *cap, json_t *m)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        json_t **p = realloc(*arr, c * sizeof *p);
        if (!p) return;
        *arr = p;
        *cap = c;
    }
    (*arr)[(*n)++] = json_incref(m);
}

/* Bytes of a Buffer.from(v): Buffer, string (UTF-8) or array of bytes. */
static void put_bytes(strbuf *sb, const json_t *v)
{
    if (crm_is_buf(v)) {
        size_t l;
        const unsigned char *b = crm_buf_data(v, &l);
        sb_putn(sb, (const char *)b, l);
    } else if (json_is_string(v)) {
        sb_putn(sb, json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            double d = crm_to_number(json_array_get(v, i));
            sb_putc(sb, isfinite(d) ? (char)((int64_t)d & 0xff) : 0);
        }
    }
}

/* Array.prototype.join's view of one element: null and undefined are "". */
static void put_joined(strbuf *sb, const json_t *v)
{
    if (!v || json_is_null(v)) return;
    if (json_is_string(v)) {
        sb_putn(sb, json_string_value(v), json_string_length(v));
        return;
    }
    char *s = crm_to_string(v);
    if (s) sb_puts(sb, s);
    free(s);
}

/* ---- groups ------------------------------------------------------------------ */

static jgroup *group_find(join_state *js, const char *id)
{
    for (jgroup *g = js->groups; g; g = g->next)
        if (!strcmp(g->id, id)) return g;
    return NULL;
}

static void group_unlink(join_state *js, jgroup *g)
{
    for (jgroup **p = &js->groups; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            return;
        }
}

/* Calls done for every kept message, then frees the group. */
static void group_finish(jgroup *g, bool dones)
{
    crm_timer_cancel(g->timer);
    for (size_t i = 0; i < g->nmsgs; i++) {
        if (dones) crm_node_done(g->js->n, g->msgs[i]);
        json_decref(g->msgs[i]);
    }
    free(g->msgs);
    json_decref(g->payload);
    json_decref(g->undefined_keys);
    json_decref(g->msg);
    json_decref(g->join_char);
    free(g->property);
    free(g->id);
    free(g);
}

/* A value for the message sent: objects and arrays copied, other values
 * shared (nothing changes a string or a number in place; split.c's parts
 * share them the same way). */
static json_t *share_or_copy(json_t *v)
{
    if (json_is_object(v) || json_is_array(v)) return crm_deep_copy(v);
    return json_incref(v);
}

/* The joined value of a group, as completeSend builds it. NULL with *err set
 * when JavaScript would have thrown. */
static json_t *group_value(jgroup *g, const char **err)
{
    json_t *p = g->payload;
    size_t n = json_array_size(p);
    switch (g->type) {
    case B_ARRAY: {
        json_t *flat = json_array(); /* auto mode chunks: concat one level */
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(p, i);
            if (g->array_len > 1 && json_is_array(e))
                for (size_t k = 0; k < json_array_size(e); k++) json_array_append_new(flat, share_or_copy(json_array_get(e, k)));
            else
                json_array_append_new(flat, share_or_copy(e));
        }
        return flat;
    }
    case B_BUFFER: {
        strbuf sb = SB_INIT, sep = SB_INIT;
        if (g->join_char) put_bytes(&sep, g->join_char);
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && sep.len) sb_putn(&sb, sep.data, sep.len);
            put_bytes(&sb, json_array_get(p, i));
        }
        json_t *b = crm_buf_new(sb.data ? sb.data : "", sb.len);
        sb_free(&sb);
        sb_free(&sep);
        return b;
    }
    case B_STRING: {
        if (!g->join_char) {
            *err = "TypeError: Cannot read properties of undefined (reading 'toString')";
            return NULL;
        }
        char *sep = crm_to_string(g->join_char);
        strbuf sb = SB_INIT;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && sep) sb_puts(&sb, sep);
            put_joined(&sb, json_array_get(p, i));
        }
        free(sep);
        json_t *s = json_stringn_nocheck(sb.data ? sb.data : "", sb.len);
        sb_free(&sb);
        return s;
    }
    default:
        return crm_deep_copy(p);
    }
}

/* Node-RED's completeSend: builds, sends a clone and calls done for every
 * message of the group. The group is forgotten unless it accumulates. */
static void complete_send(join_state *js, jgroup *g)
{
    crm_node *n = js->n;
    crm_timer_cancel(g->timer);
    g->timer = NULL;
    bool keep = js->mode != MODE_AUTO && js->accumulate && !json_object_get(g->msg, "complete");
    if (keep && g->type == B_BUFFER) g->payload_is_buffer = true;
    if (!keep) group_unlink(js, g);
    const char *err = NULL;
    json_t *value = group_value(g, &err);
    if (!value) {
        crm_node_error(n, g->nmsgs ? g->msgs[g->nmsgs - 1] : NULL, "%s", err);
        if (!keep) group_finish(g, false);
        return;
    }
    /* the property set, parts made its inner parts or deleted, complete
     * deleted, on a copy of g->msg; when the property is the top-level
     * payload, the copy skips what is replaced or deleted (a placeholder
     * keeps a replaced key's place) */
    json_t *out;
    if (js->prop_path && !strcmp(g->property, "payload") && !strcmp(js->property, "payload")) {
        out = json_object();
        bool placed = false; /* the value set at payload's place (a new value: no cycle to break) */
        for (void *it = json_object_iter(g->msg); it; it = json_object_iter_next(g->msg, it)) {
            const char *k = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            json_t *x = json_object_iter_value(it), *c;
            if (klen == 8 && !memcmp(k, "complete", 8)) continue;
            if (klen == 5 && !memcmp(k, "parts", 5)) {
                json_t *inner = json_is_object(x) ? json_object_get(x, "parts") : NULL;
                if (!inner) continue;
                c = crm_deep_copy(inner);
            } else if (klen == 7 && !memcmp(k, "payload", 7)) {
                c = placed ? json_null() : value;
                placed = true;
            } else {
                c = share_or_copy(x);
            }
            json_object_setn_new_nocheck(out, k, klen, c);
        }
        if (!placed) crm_path_set(js->prop_path, out, out, value, true);
    } else {
        out = crm_deep_copy(g->msg);
        /* the node's own parsed property when it is the same text (no parse per group) */
        if (js->prop_path && !strcmp(g->property, js->property)) crm_path_set(js->prop_path, out, out, value, true);
        else if (crm_msg_set(out, g->property, value) < 0) { /* value stolen either way */ }
        json_t *parts = json_object_get(out, "parts");
        json_t *inner = json_is_object(parts) ? json_object_get(parts, "parts") : NULL;
        if (inner) json_object_set(out, "parts", inner);
        else json_object_del(out, "parts");
        json_object_del(out, "complete");
    }
    crm_node_send(n, 0, out);
    for (size_t i = 0; i < g->nmsgs; i++) {
        crm_node_done(n, g->msgs[i]);
        json_decref(g->msgs[i]);
    }
    g->nmsgs = 0;
    if (!keep) group_finish(g, false);
}

static void on_timeout(crm_node *n, void *arg)
{
    jgroup *g = arg;
    g->timer = NULL; /* a fired one-shot timer is gone */
    complete_send(crm_node_data(n), g);
}

static void start_timer(join_state *js, jgroup *g)
{
    if (js->timer_ms > 0) g->timer = crm_timer_start(js->n, js->timer_ms, 0, on_timeout, g);
}

static void drop_group(join_state *js, jgroup *g)
{
    group_unlink(js, g);
    group_finish(g, true);
}

/* ---- accumulating one message --------------------------------------------- */

/* What one message contributes (Node-RED's local variables). */
typedef struct {
    const char *part_id;
    char part_id_buf[64];
    build_type type;
    double target;
    json_t *join_char;     /* borrowed */
    json_t *key;           /* borrowed; NULL when undefined */
    double array_len;
    double index;          /* NaN when none */
    json_t *value;         /* borrowed; NULL when undefined */
    const char *property;  /* where the result goes */
} contrib;

static build_type build_of(const char *s)
{
    if (!s) return B_OTHER;
    if (!strcmp(s, "string")) return B_STRING;
    if (!strcmp(s, "buffer")) return B_BUFFER;
    if (!strcmp(s, "array")) return B_ARRAY;
    if (!strcmp(s, "object")) return B_OBJECT;
    if (!strcmp(s, "merged")) return B_MERGED;
    return B_OTHER;
}

/* Object.assign(dst, src), as json_object_update does it: the messages of a
 * group usually have the same keys in the same order, so a key found at the
 * same place in dst has its value replaced there (no hashing); from the
 * first key that differs on, the members are set by name. */
static void assign(json_t *dst, json_t *src)
{
    void *d = json_object_iter(dst);
    for (void *it = json_object_iter(src); it; it = json_object_iter_next(src, it)) {
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *v = json_incref(json_object_iter_value(it));
        if (d && json_object_iter_key_len(d) == klen && !memcmp(json_object_iter_key(d), k, klen)) {
            json_object_iter_set_new(dst, d, v);
            d = json_object_iter_next(dst, d);
        } else {
            d = NULL;
            json_object_setn_new_nocheck(dst, k, klen, v);
        }
    }
}

static jgroup *group_new(join_state *js, const contrib *c, json_t *msg)
{
    jgroup *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->js = js;
    g->id = strdup(c->part_id);
    bool obj = c->type == B_OBJECT || c->type == B_MERGED;
    g->type = obj ? B_OBJECT : c->type;
    g->payload = obj ? json_object() : json_array();
    g->msg = json_object();
    assign(g->msg, msg);
    g->target = c->target;
    g->array_len = NAN;
    if (c->type == B_STRING || c->type == B_BUFFER) g->join_char = c->join_char ? json_incref(c->join_char) : NULL;
    else if (c->type == B_ARRAY) g->array_len = c->array_len;
    g->property = strdup(c->property);
    g->next = js->groups;
    js->groups = g;
    start_timer(js, g);
    return g;
}

/* payload[index] = value, JavaScript style: holes read as undefined (null
 * here). Returns whether the slot was empty. */
static bool set_index(json_t *arr, size_t idx, json_t *value)
{
    while (json_array_size(arr) <= idx) json_array_append_new(arr, json_null());
    bool empty = json_is_null(json_array_get(arr, idx));
    json_array_set_new(arr, idx, value ? json_incref(value) : json_null());
    return empty;
}

/* Adds the value of a message to its group. Returns false when the message
 * failed (an error was raised). */
static bool accumulate_value(join_state *js, jgroup *g, const contrib *c, json_t *msg)
{
    json_t *v = c->value;
    if (c->type == B_BUFFER && v && !(crm_is_buf(v) || json_is_string(v) || json_is_array(v))) {
        crm_node_error(js->n, msg, "Cannot join %s to buffer", crm_typeof(v));
        return false;
    }
    if (c->type == B_OBJECT) {
        char *k = json_is_string(c->key) ? strdup(json_string_value(c->key)) : crm_to_string(c->key);
        if (k && json_is_object(g->payload)) {
            if (v) {
                json_object_set(g->payload, k, v);
                json_object_del(g->undefined_keys, k);
            } else {
                /* JavaScript keeps the key with undefined: Object.keys counts it, JSON drops it */
                json_object_del(g->payload, k);
                if (!g->undefined_keys) g->undefined_keys = json_object();
                json_object_set_new(g->undefined_keys, k, json_true());
            }
        }
        free(k);
        g->current = (double)(json_object_size(g->payload) + json_object_size(g->undefined_keys));
    } else if (c->type == B_MERGED) {
        if (crm_is_buf(v) && json_is_object(g->payload)) { /* for..in over a Buffer: its indices */
            size_t len;
            const unsigned char *d = crm_buf_data(v, &len);
            for (size_t i = 0; i < len; i++) {
                char k[24];
                snprintf(k, sizeof k, "%zu", i);
                json_object_set_new(g->payload, k, crm_num(d[i]));
            }
            g->current = (double)json_object_size(g->payload);
        } else if (json_is_null(v)) { /* an object to JavaScript, with no keys */
            g->current = (double)json_object_size(g->payload);
        } else if (!json_is_object(v) || crm_is_handle(v)) {
            if (!json_object_get(msg, "complete")) crm_node_warn(js->n, "Cannot merge non-object types");
        } else if (json_is_object(g->payload)) {
            const char *k;
            json_t *x;
            json_object_foreach(v, k, x)
                if (strcmp(k, "_msgid")) json_object_set(g->payload, k, x);
            g->current = (double)json_object_size(g->payload);
        }
    } else if (json_is_array(g->payload)) {
        if (!isnan(c->index)) {
            double i = c->index;
            if (i >= 0 && i < 1e8 && floor(i) == i) {
                if (set_index(g->payload, (size_t)i, v)) g->current++;
            } else {
                g->current++; /* JavaScript would store a non-index property, never joined */
            }
        } else if (v) {
            if (g->payload_is_buffer) {
                crm_node_error(js->n, msg, "TypeError: group.payload.push is not a function");
                return false;
            }
            json_array_append(g->payload, v);
            g->current++;
        }
    }
    return true;
}

/* key (of length len, NULs allowed) is the C string lit */
#define KEY_IS(key, len, lit) ((len) == sizeof lit - 1 && !memcmp(key, lit, sizeof lit - 1))

/* Reads parts.* (auto) or the config (manual) into c. Returns false when the
 * message was dealt with already. */
static bool read_contrib(join_state *js, json_t *msg, contrib *c)
{
    json_t *parts = json_object_get(msg, "parts");
    c->index = NAN;
    c->array_len = NAN;
    c->property = js->property;
    if (js->mode == MODE_AUTO) {
        c->property = "payload"; /* Node-RED reads parts.property or payload, whatever the node's property */
        /* the members read here, in one pass over the few keys of parts
         * rather than a hash of each name */
        json_t *pid = NULL, *ptype = NULL, *pcount = NULL, *pch = NULL, *pkey = NULL, *plen = NULL, *pindex = NULL,
               *pprop = NULL;
        for (void *it = json_object_iter(parts); it; it = json_object_iter_next(parts, it)) {
            const char *k = json_object_iter_key(it);
            size_t kl = json_object_iter_key_len(it);
            json_t *x = json_object_iter_value(it);
            switch (k[0]) {
            case 'i':
                if (KEY_IS(k, kl, "id")) pid = x;
                else if (KEY_IS(k, kl, "index")) pindex = x;
                break;
            case 't':
                if (KEY_IS(k, kl, "type")) ptype = x;
                break;
            case 'c':
                if (KEY_IS(k, kl, "count")) pcount = x;
                else if (KEY_IS(k, kl, "ch")) pch = x;
                break;
            case 'k':
                if (KEY_IS(k, kl, "key")) pkey = x;
                break;
            case 'l':
                if (KEY_IS(k, kl, "len")) plen = x;
                break;
            case 'p':
                if (KEY_IS(k, kl, "property")) pprop = x;
                break;
            }
        }
        char *ids = json_is_string(pid) ? NULL : crm_to_string(pid);
        /* snprintf's "%s" without its cost: cut to the buffer */
        const char *idt = ids ? ids : json_string_value(pid);
        size_t idn = idt ? strnlen(idt, sizeof c->part_id_buf - 1) : 0;
        memcpy(c->part_id_buf, idt ? idt : "", idn);
        c->part_id_buf[idn] = 0;
        free(ids);
        c->part_id = c->part_id_buf;
        c->type = build_of(json_string_value(ptype));
        c->target = crm_to_number(pcount);
        c->join_char = pch;
        c->key = pkey;
        c->array_len = crm_to_number(plen);
        c->index = crm_to_number(pindex);
        const char *pp = json_string_value(pprop);
        if (pp && *pp) c->property = pp;
        return true;
    }
    c->part_id = "_";
    c->type = js->build;
    c->target = js->count;
    c->join_char = js->joiner;
    if (js->count_empty && js->useparts && json_is_object(parts)) {
        c->target = crm_to_number(json_object_get(parts, "count"));
        if (!(c->target > 0)) c->target = 0;
        json_t *pid = json_object_get(parts, "id");
        if (json_is_string(pid)) {
            snprintf(c->part_id_buf, sizeof c->part_id_buf, "%s", json_string_value(pid));
            c->part_id = c->part_id_buf;
        }
    }
    if (js->build == B_OBJECT) c->key = crm_path_get(js->key_path, msg, msg, &(bool){false});
    return true;
}

/* Manual mode without useparts: the parts are popped before joining. */
static void pop_parts(json_t *msg)
{
    json_t *parts = json_object_get(msg, "parts");
    if (!parts) return;
    json_t *inner = json_is_object(parts) ? json_object_get(parts, "parts") : NULL;
    if (inner) json_object_set(msg, "parts", inner);
    else json_object_del(msg, "parts");
}

static void clear_all_groups(join_state *js)
{
    while (js->groups) drop_group(js, js->groups);
}

static bool key_missing(const json_t *k)
{
    return !k || json_is_null(k) || (json_is_string(k) && json_string_length(k) == 0);
}

static void join_collect(crm_node *n, join_state *js, json_t *msg)
{
    /* msg.parts, msg.reset and msg.restartTimeout in one pass over msg's keys */
    json_t *parts = NULL, *reset = NULL, *restart = NULL;
    for (void *it = json_object_iter(msg); it; it = json_object_iter_next(msg, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        json_t *x = json_object_iter_value(it);
        if (KEY_IS(k, kl, "parts")) parts = x;
        else if (KEY_IS(k, kl, "reset")) reset = x;
        else if (KEY_IS(k, kl, "restartTimeout")) restart = x;
    }
    if (js->mode == MODE_AUTO && !json_object_get(parts, "id")) {
        if (reset) clear_all_groups(js);
        else crm_node_warn(n, "Message missing msg.parts property - cannot join in 'auto' mode");
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (js->mode == MODE_CUSTOM && !js->useparts) pop_parts(msg);
    contrib c;
    memset(&c, 0, sizeof c);
    read_contrib(js, msg, &c);
    if (js->full && js->mode != MODE_AUTO) {
        c.value = msg;
    } else {
        bool throws = false;
        crm_path *tmp = NULL;
        const crm_path *p = js->prop_path;
        if (c.property != js->property && strcmp(c.property, js->property)) p = tmp = crm_path_parse(c.property, NULL);
        c.value = p ? crm_path_get(p, msg, msg, &throws) : NULL;
        crm_path_free(tmp);
        if (throws || !p) {
            crm_node_warn(n, "Message property %s not found", c.property);
            crm_node_done(n, msg);
            json_decref(msg);
            return;
        }
    }
    jgroup *g = group_find(js, c.part_id);
    if (reset) {
        if (g) drop_group(js, g);
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (g && restart && js->timer_ms > 0) {
        crm_timer_cancel(g->timer);
        start_timer(js, g);
    }
    if (c.type == B_OBJECT && key_missing(c.key)) {
        if (js->mode == MODE_AUTO) {
            crm_node_warn(n, "Message missing 'msg.parts.key' property - cannot add to object");
        } else if (json_object_get(msg, "complete")) {
            if (g) {
                json_object_set(g->msg, "complete", json_object_get(msg, "complete"));
                complete_send(js, g);
            }
        } else {
            crm_node_warn(n, "Message missing key property 'msg.%s' - cannot add to object", js->key);
        }
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (!g && !(g = group_new(js, &c, msg))) {
        json_decref(msg);
        return;
    }
    if (!done_observed(n) && g->nmsgs) {
        /* nobody sees done: keep only the latest message, for errors */
        json_decref(g->msgs[0]);
        g->nmsgs = 0;
    }
    push_msg(&g->msgs, &g->nmsgs, &g->capmsgs, msg);
    if (!accumulate_value(js, g, &c, msg)) {
        json_decref(msg);
        return;
    }
    assign(g->msg, msg);
    double tcnt = g->target;
    if (parts) tcnt = (g->target > 0 || (!isnan(g->target) && g->target != 0)) ? g->target : crm_to_number(json_object_get(parts, "count"));
    if ((tcnt > 0 && g->current >= tcnt) || json_object_get(msg, "complete")) complete_send(js, g);
    json_decref(msg);
}

/* ---- reduce ----------------------------------------------------------------------- */

static void rgroup_free(rgroup *r, bool dones, crm_node *n, const json_t *except)
{
    for (size_t i = 0; i < r->nmsgs; i++) {
        if (dones && r->msgs[i] != except) crm_node_done(n, r->msgs[i]);
        json_decref(r->msgs[i]);
    }
    free(r->msgs);
    free(r->id);
    free(r);
}

typedef struct {
    json_t *msg;
    double index;
    size_t order;
} rentry;

static int rentry_cmp_left(const void *a, const void *b)
{
    const rentry *x = a, *y = b;
    if (x->index < y->index) return -1;
    if (x->index > y->index) return 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int rentry_cmp_right(const void *a, const void *b)
{
    const rentry *x = a, *y = b;
    if (x->index < y->index) return 1;
    if (x->index > y->index) return -1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Folds one complete sequence; on success the last message processed carries
 * the result. Returns 0, or -1 with *err (malloc'd). */
static int reduce_group(join_state *js, rgroup *r, json_t **last, char **err)
{
    crm_node *n = js->n;
    size_t cnt = r->nmsgs;
    rentry *e = calloc(cnt ? cnt : 1, sizeof *e);
    if (!e) return -1;
    for (size_t i = 0; i < cnt; i++) {
        e[i].msg = r->msgs[i];
        e[i].index = crm_to_number(json_object_get(json_object_get(r->msgs[i], "parts"), "index"));
        e[i].order = i;
    }
    qsort(e, cnt, sizeof *e, js->reduce_right ? rentry_cmp_right : rentry_cmp_left);
    json_t *acc = NULL, *empty = json_object();
    if (js->init && !js->init_undefined) {
        char *ierr = NULL;
        if (crm_typed_eval(n, js->init, empty, &acc, &ierr) < 0) acc = NULL; /* Node-RED ignores it */
        free(ierr);
    }
    int rc = 0;
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        json_t *vars = json_object();
        if (acc) json_object_set(vars, "A", acc);
        json_t *idx = json_object_get(json_object_get(e[i].msg, "parts"), "index");
        if (idx) json_object_set(vars, "I", idx);
        if (!isnan(r->count)) json_object_set_new(vars, "N", crm_num(r->count));
        json_t *res = NULL;
        rc = crm_typed_eval_with(n, js->exp, e[i].msg, vars, &res, err);
        json_decref(vars);
        json_decref(acc);
        acc = res;
    }
    if (rc == 0 && js->fixup) {
        json_t *vars = json_object();
        if (acc) json_object_set(vars, "A", acc);
        if (!isnan(r->count)) json_object_set_new(vars, "N", crm_num(r->count));
        json_t *res = NULL;
        rc = crm_typed_eval_with(n, js->fixup, empty, vars, &res, err);
        json_decref(vars);
        json_decref(acc);
        acc = res;
    }
    json_decref(empty);
    if (rc == 0 && cnt) {
        *last = e[cnt - 1].msg;
        if (acc) json_object_set_new(*last, "payload", acc);
        else json_object_del(*last, "payload");
        acc = NULL;
    }
    json_decref(acc);
    free(e);
    return rc;
}

static rgroup *rgroup_get(join_state *js, const char *id)
{
    for (rgroup *r = js->pending; r; r = r->next)
        if (!strcmp(r->id, id)) return r;
    rgroup *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->id = strdup(id);
    r->count = NAN;
    r->next = js->pending;
    js->pending = r;
    return r;
}

static void rgroup_unlink(join_state *js, rgroup *r)
{
    for (rgroup **p = &js->pending; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

/* Past nodeMessageBufferMaxLength every pending sequence is dropped and the
 * current message fails. */
static bool over_limit(join_state *js, json_t *msg)
{
    if (!(js->max_kept > 0) || (double)js->pending_count <= js->max_kept) return false;
    while (js->pending) {
        rgroup *r = js->pending;
        js->pending = r->next;
        rgroup_free(r, true, js->n, msg);
    }
    js->pending_count = 0;
    crm_node_error(js->n, msg, "too many pending messages in join node");
    return true;
}

static void join_reduce(crm_node *n, join_state *js, json_t *msg)
{
    json_t *parts = json_object_get(msg, "parts");
    if (!parts) {
        json_incref(msg);
        crm_node_send(n, 0, msg);
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    json_t *pid = json_object_get(parts, "id");
    char *ids = json_is_string(pid) ? strdup(json_string_value(pid)) : crm_to_string(pid);
    rgroup *r = ids ? rgroup_get(js, ids) : NULL;
    free(ids);
    if (!r) {
        json_decref(msg);
        return;
    }
    json_t *pc = json_object_get(parts, "count");
    if (pc && isnan(r->count)) r->count = crm_to_number(pc);
    push_msg(&r->msgs, &r->nmsgs, &r->capmsgs, msg);
    js->pending_count++;
    if ((double)r->nmsgs == r->count) {
        rgroup_unlink(js, r);
        js->pending_count -= r->nmsgs;
        json_t *last = NULL;
        char *err = NULL;
        if (reduce_group(js, r, &last, &err) == 0) {
            if (last) crm_node_send(n, 0, json_incref(last));
            rgroup_free(r, true, n, NULL);
        } else {
            /* done for all but the last to arrive; that one carries the error */
            rgroup_free(r, true, n, msg);
            crm_node_error(n, msg, "%s", err ? err : "JSONata evaluation failed");
            free(err);
            json_decref(msg);
            return;
        }
        if (over_limit(js, msg)) {
            json_decref(msg);
            return;
        }
    } else if (over_limit(js, msg)) {
        json_decref(msg);
        return;
    }
    json_decref(msg);
}

/* ---- life cycle ------------------------------------------------------------------------ */

static void join_input(crm_node *n, json_t *msg)
{
    join_state *js = crm_node_data(n);
    if (!js || js->broken) {
        json_decref(msg);
        return;
    }
    if (js->mode == MODE_REDUCE) join_reduce(n, js, msg);
    else join_collect(n, js, msg);
}

static void join_free(join_state *js)
{
    if (!js) return;
    while (js->groups) {
        jgroup *g = js->groups;
        js->groups = g->next;
        group_finish(g, false);
    }
    while (js->pending) {
        rgroup *r = js->pending;
        js->pending = r->next;
        rgroup_free(r, false, js->n, NULL);
    }
    free(js->property);
    crm_path_free(js->prop_path);
    crm_path_free(js->key_path);
    free(js->key);
    json_decref(js->joiner);
    crm_typed_free(js->exp);
    crm_typed_free(js->fixup);
    crm_typed_free(js->init);
    free(js);
}

static void join_close(crm_node *n)
{
    join_state *js = crm_node_data(n);
    if (!js) return;
    /* Node-RED calls done for the messages still held */
    while (js->groups) drop_group(js, js->groups);
    join_free(js);
    crm_node_set_data(n, NULL);
}

/* Compiles reduceExp / reduceFixup / reduceInit. Returns an error text or NULL. */
static char *read_reduce(join_state *js, const json_t *cfg)
{
    char *err = NULL;
    const json_t *exp = json_object_get(cfg, "reduceExp");
    json_t *expv = exp ? json_incref((json_t *)exp) : json_string("undefined");
    js->exp = crm_typed_new(js->n, "jsonata", expv, &err);
    json_decref(expv);
    if (!js->exp) return err ? err : strdup("Invalid JSONata expression");
    const json_t *fix = json_object_get(cfg, "reduceFixup");
    if (fix && !json_is_null(fix) && !(json_is_string(fix) && !json_string_length(fix))) {
        js->fixup = crm_typed_new(js->n, "jsonata", fix, &err);
        if (!js->fixup) return err ? err : strdup("Invalid JSONata expression");
    }
    js->reduce_right = crm_truthy(json_object_get(cfg, "reduceRight"));
    const json_t *init = json_object_get(cfg, "reduceInit");
    const char *itype = crm_cfg_str(cfg, "reduceInitType", "");
    if (!*itype) {
        js->init_undefined = !init; /* an unknown type yields the raw value */
        itype = "str";
    }
    char *ierr = NULL;
    js->init = crm_typed_new(js->n, itype, init, &ierr);
    free(ierr); /* Node-RED only finds out when it evaluates: the accumulator is undefined */
    return NULL;
}

static int read_joiner(join_state *js, const json_t *cfg)
{
    const char *jt = crm_cfg_str(cfg, "joinerType", "");
    const json_t *jv = json_object_get(cfg, "joiner");
    const char *txt = crm_truthy(jv) && json_is_string(jv) ? json_string_value(jv) : "";
    if (!strcmp(jt, "bin")) {
        char perr[160];
        const char *src = *txt ? txt : "[]";
        json_t *arr = crm_parse(src, strlen(src), perr, sizeof perr);
        if (!json_is_array(arr)) {
            json_decref(arr);
            crm_node_log(js->n, CRM_LOG_ERROR, "Error: not an array");
            return -1;
        }
        strbuf sb = SB_INIT;
        put_bytes(&sb, arr);
        js->joiner = crm_buf_new(sb.data ? sb.data : "", sb.len);
        sb_free(&sb);
        json_decref(arr);
        return 0;
    }
    char *u = unescape_joiner(txt);
    if (!u) return -1;
    js->joiner = json_string(u);
    if (!js->joiner) js->joiner = json_string_nocheck(u);
    free(u);
    return 0;
}

static int join_create(crm_node *n, const json_t *cfg)
{
    join_state *js = calloc(1, sizeof *js);
    if (!js) return -1;
    js->n = n;
    crm_node_set_data(n, js);
    const char *mode = crm_cfg_str(cfg, "mode", "");
    js->mode = !strcmp(mode, "reduce") ? MODE_REDUCE : !strcmp(mode, "custom") ? MODE_CUSTOM : MODE_AUTO;
    const char *prop = crm_cfg_str(cfg, "property", "");
    js->full = !strcmp(crm_cfg_str(cfg, "propertyType", ""), "full");
    if (!*prop || js->full) prop = "payload";
    if (!strncmp(prop, "msg.", 4)) prop += 4;
    js->property = strdup(prop);
    char *perr = NULL;
    js->prop_path = crm_path_parse(js->property, &perr);
    free(perr);
    const char *key = crm_cfg_str(cfg, "key", "");
    if (!*key) key = "topic";
    if (!strncmp(key, "msg.", 4)) key += 4;
    js->key = strdup(key);
    js->key_path = crm_path_parse(js->key, &perr);
    free(perr);
    if (!js->property || !js->key) return -1;
    if (js->mode != MODE_AUTO) js->timer_ms = crm_cfg_num(cfg, "timeout", 0) * 1000;
    if (isnan(js->timer_ms)) js->timer_ms = 0;
    js->count = crm_cfg_num(cfg, "count", 0); /* NaN never completes by count, as in Node-RED */
    const json_t *cnt = json_object_get(cfg, "count");
    js->count_empty = json_is_string(cnt) && json_string_length(cnt) == 0;
    const char *build = crm_cfg_str(cfg, "build", "");
    js->build = *build ? build_of(build) : B_ARRAY;
    const json_t *up = json_object_get(cfg, "useparts");
    js->useparts = up ? crm_truthy(up) : true;
    js->accumulate = json_is_true(json_object_get(cfg, "accumulate"));
    const json_t *maxk = json_object_get(crm_node_settings(n), "nodeMessageBufferMaxLength");
    js->max_kept = json_is_number(maxk) ? crm_num_value(maxk) : 0;
    if (js->mode == MODE_REDUCE) {
        char *err = read_reduce(js, cfg);
        if (err) {
            /* logged, not catchable; the flows still start without a handler */
            if (!strncmp(err, "Invalid JSONata expression", 26)) crm_node_log(n, CRM_LOG_ERROR, "%s", err);
            else crm_node_log(n, CRM_LOG_ERROR, "Invalid JSONata expression: %s", err);
            free(err);
            js->broken = true;
            return 0;
        }
    }
    if (read_joiner(js, cfg) < 0) js->broken = true;
    return 0;
}

const crm_node_type crm_type_join = {
    .abi = CRM_ABI_VERSION,
    .type = "join",
    .create = join_create,
    .input = join_input,
    .close = join_close,
};
