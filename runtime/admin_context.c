/* admin_context.c: the Admin API's context routes, as Node-RED 4.1.15
 * serves them to the editor's context sidebar: GET and DELETE on
 * /context/global[/KEY], /context/flow/ID[/KEY] and /context/node/ID[/KEY],
 * with ?store= and ?keysOnly. Values go out the way Node-RED's
 * util.encodeObject shows them: {msg: text, format: "string[5]" ...}, long
 * strings and arrays cut at 1000, Buffers as hex or as
 * {type: "Buffer", data, __enc__, length}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine.h"
#include "http.h"
#include "httpclient.h"
#include "httpd.h"
#include "strbuf.h"

#define MAX_SHOWN 1000 /* Node-RED's debugMaxLength default */

/* Encoding (util.encodeObject) ------------------------------------------------------ */

/* A string cut to MAX_SHOWN UTF-16 units, "..." marking the cut. */
static json_t *cut_string(const char *s, size_t n)
{
    if (crm_utf16_len(s, n) <= MAX_SHOWN) return json_stringn(s, n);
    size_t keep = crm_utf16_prefix(s, n, MAX_SHOWN);
    char *t = malloc(keep + 4);
    if (!t) abort();
    memcpy(t, s, keep);
    memcpy(t + keep, "...", 3);
    json_t *r = json_stringn(t, keep + 3); /* a string may hold NUL */
    free(t);
    return r;
}

/* JSON.stringify's replacer in encodeObject, applied to the whole tree. */
static json_t *shown(const char *key, const json_t *v)
{
    if (key && (!strcmp(key, "_req") || !strcmp(key, "_res"))) return json_pack("{s:b,s:s}", "__enc__", 1, "type", "internal");
    if (crm_is_handle(v)) return json_string("[internal]"); /* a live response or request */
    if (crm_is_buf(v)) {
        size_t len;
        const unsigned char *b = crm_buf_data(v, &len);
        json_t *data = json_array();
        for (size_t i = 0; i < len && i < MAX_SHOWN; i++) json_array_append_new(data, json_integer(b[i]));
        return json_pack("{s:s,s:o,s:b,s:I}", "type", "Buffer", "data", data, "__enc__", 1, "length", (json_int_t)len);
    }
    if (json_is_string(v)) return cut_string(json_string_value(v), json_string_length(v));
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        json_t *a = json_array();
        for (size_t i = 0; i < n && i < MAX_SHOWN; i++) json_array_append_new(a, shown(NULL, json_array_get(v, i)));
        if (n <= MAX_SHOWN) return a;
        return json_pack("{s:b,s:s,s:o,s:I}", "__enc__", 1, "type", "array", "data", a, "length", (json_int_t)n);
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) json_object_set_new(o, k, shown(k, x));
        return o;
    }
    return json_incref((json_t *)v);
}

static json_t *encoded(const char *text, const char *format)
{
    return json_pack("{s:s,s:s}", "msg", text, "format", format);
}

/* encodeObject({msg: v}): v NULL is undefined. */
static json_t *encode(const json_t *v)
{
    char fmt[48];
    if (!v) return encoded("(undefined)", "undefined");
    if (json_is_null(v)) return encoded("(undefined)", "null");
    if (json_is_boolean(v)) return encoded(json_is_true(v) ? "true" : "false", "boolean");
    if (json_is_number(v)) {
        char num[40];
        return encoded(crm_fmt_number(crm_num_value(v), num), "number");
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        snprintf(fmt, sizeof fmt, "string[%zu]", crm_utf16_len(s, n));
        return json_pack("{s:o,s:s}", "msg", shown(NULL, v), "format", fmt);
    }
    if (crm_is_buf(v)) {
        size_t len;
        const unsigned char *b = crm_buf_data(v, &len);
        size_t shown_bytes = len < MAX_SHOWN / 2 ? len : MAX_SHOWN / 2; /* the hex text is cut at 1000 */
        char *hex = malloc(2 * shown_bytes + 1);
        if (!hex) abort();
        for (size_t i = 0; i < shown_bytes; i++) snprintf(hex + 2 * i, 3, "%02x", b[i]);
        hex[2 * shown_bytes] = 0;
        snprintf(fmt, sizeof fmt, "buffer[%zu]", len);
        json_t *r = encoded(hex, fmt);
        free(hex);
        return r;
    }
    if (json_is_array(v)) snprintf(fmt, sizeof fmt, "array[%zu]", json_array_size(v));
    else snprintf(fmt, sizeof fmt, "Object");
    json_t *tree = shown("", v);
    char *text = crm_stringify(tree, 0);
    json_decref(tree);
    json_t *r = encoded(text ? text : "", fmt);
    free(text);
    return r;
}

/* The routes ------------------------------------------------------------------------------- */

typedef struct {
    bool global;     /* else flow or node */
    bool known;      /* scope is "global", "flow" or "node" (Express matched any case) */
    bool node;
    char *id;        /* flow or node id (decoded), NULL for global */
    char *key;       /* decoded, NULL: the whole context */
    char *bad;       /* the first parameter that does not decode, or NULL */
} context_route;

/* A route parameter, decoded as Express does; NULL (and *bad, the raw text
 * for the error, when not set yet) when decodeURIComponent throws. */
static char *decoded(const char *s, size_t n, char **bad)
{
    char *d = crm_uri_decode(s, n);
    if (!d && !*bad) *bad = strndup(s, n);
    return d;
}

/* Parses /context/SCOPE[/ID][/KEY]; false when it is not one of the routes.
 * cr->bad is set when a parameter cannot be decoded (Express: 400). */
static bool parse_route(const char *path, context_route *cr)
{
    memset(cr, 0, sizeof *cr);
    if (strncasecmp(path, "/context/", 9)) return false;
    const char *scope = path + 9, *slash = strchr(scope, '/');
    size_t slen = slash ? (size_t)(slash - scope) : strlen(scope);
    bool global = slen == 6 && !strncasecmp(scope, "global", 6);
    bool flow = slen == 4 && !strncasecmp(scope, "flow", 4), node = slen == 4 && !strncasecmp(scope, "node", 4);
    if (!global && !flow && !node) return false;
    cr->global = global;
    cr->node = node;
    cr->known = !strncmp(scope, global ? "global" : flow ? "flow" : "node", slen);
    const char *rest = slash ? slash + 1 : ""; /* after "SCOPE/" */
    if (!global) {
        const char *e = strchr(rest, '/');
        size_t ilen = e ? (size_t)(e - rest) : strlen(rest);
        if (!ilen) return false; /* /context/flow and /context/flow/ are no routes */
        cr->id = decoded(rest, ilen, &cr->bad);
        rest = e ? e + 1 : "";
    }
    if (*rest) cr->key = decoded(rest, strlen(rest), &cr->bad);
    return true;
}

static void route_free(context_route *cr)
{
    free(cr->id);
    free(cr->key);
    free(cr->bad);
}

/* The context id the route names, or NULL when Node-RED has no context for
 * it (an unknown node, a scope in the wrong case). */
static char *context_id_of(crm_runtime *rt, const context_route *cr)
{
    if (!cr->known) return NULL;
    if (cr->global) return strdup("global");
    if (!cr->node) return strdup(cr->id); /* Node-RED makes a context for any flow id */
    crm_node *n = crm_runtime_find(rt, cr->id);
    if (!n) return NULL;
    if (!strncmp(n->type->type, "subflow:", 8)) return strdup(n->id); /* the instance's flow context */
    char id[512];
    crm_context_node_id(n, id, sizeof id);
    return strdup(id);
}

static bool store_exists(crm_runtime *rt, const char *name)
{
    for (size_t i = 0; crm_context_store_name(rt, i); i++)
        if (!strcmp(crm_context_store_name(rt, i), name)) return true;
    return false;
}

/* A context's top-level keys in Node-RED's order: for global context the
 * functionGlobalContext seeds first (seed: NULL when there are none or
 * exportGlobalContextKeys is false), then the store's own. */
static json_t *context_keys(const json_t *own, const json_t *seed)
{
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)seed, k, v) json_array_append_new(keys, json_string(k));
    json_object_foreach((json_t *)own, k, v) {
        if (!json_object_get(seed, k)) json_array_append_new(keys, json_string(k));
    }
    return keys;
}

/* A global key a non-default store only shows because it is seeded: Node-RED
 * leaves it out when the value is the seed's own (===). */
static bool seed_echo(const json_t *seed, const json_t *own, const char *key)
{
    const json_t *planted = json_object_get(seed, key), *mine = json_object_get(own, key);
    if (!planted) return false;
    if (!mine) return true;
    return !json_is_object(mine) && !json_is_array(mine) && crm_equal(mine, planted);
}

static json_t *keys_only_of(const json_t *v)
{
    json_t *r = json_object();
    if (json_is_array(v)) {
        char fmt[40];
        snprintf(fmt, sizeof fmt, "array[%zu]", json_array_size(v));
        json_object_set_new(r, "format", json_string(fmt));
        return r;
    }
    json_t *keys = json_array();
    json_object_set_new(r, "keys", keys);
    if (crm_is_buf(v)) { /* Object.keys of a Buffer: its indices */
        size_t len;
        crm_buf_data(v, &len);
        for (size_t i = 0; i < len; i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            json_array_append_new(keys, json_pack("{s:s}", "key", idx));
        }
        json_object_set_new(r, "format", json_string("object"));
        return r;
    }
    if (!json_is_object(v) || crm_is_handle(v)) return r;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        if (json_is_array(x)) {
            char fmt[40];
            snprintf(fmt, sizeof fmt, "array[%zu]", json_array_size(x));
            json_array_append_new(keys, json_pack("{s:s,s:s,s:I}", "key", k, "format", fmt, "length",
                                                  (json_int_t)json_array_size(x)));
        } else if (json_is_object(x) || json_is_null(x)) {
            json_array_append_new(keys, json_pack("{s:s,s:s}", "key", k, "format", "object"));
        } else {
            json_array_append_new(keys, json_pack("{s:s}", "key", k));
        }
    }
    json_object_set_new(r, "format", json_string("object"));
    return r;
}

/* GET with a key: {msg, format[, store]}, or with keysOnly {store: {...}};
 * NULL where Node-RED's keysOnly throws (a null value). */
static json_t *get_key(crm_runtime *rt, const context_route *cr, const char *id, const char *store, bool keys_only)
{
    json_t *v = crm_context_lookup(rt, store, id, cr->key);
    const json_t *seed = json_object_get(rt->settings, "functionGlobalContext");
    if (!v && cr->global && json_is_object(seed)) { /* the seed answers where the store has nothing */
        char *err = NULL;
        crm_path *p = crm_path_parse(cr->key, &err);
        free(err);
        bool throws = false;
        if (p) v = json_incref(crm_path_get(p, seed, seed, &throws));
        crm_path_free(p);
    }
    json_t *out;
    if (keys_only && json_is_null(v)) { /* Object.keys(null) throws; the API answers it as an error */
        out = NULL;
    } else if (keys_only) {
        out = json_object();
        json_object_set_new(out, store, keys_only_of(v));
    } else {
        out = encode(v);
        if (strcmp(store, crm_context_default_store(rt)) != 0) json_object_set_new(out, "store", json_string(store));
    }
    json_decref(v);
    return out;
}

/* GET without a key: {store: {key: encoded...}} for one store or all. */
static json_t *get_all(crm_runtime *rt, const context_route *cr, const char *id, const char *only, bool keys_only)
{
    const json_t *seed = cr->global ? json_object_get(rt->settings, "functionGlobalContext") : NULL;
    if (!json_is_object(seed)) seed = NULL;
    /* exportGlobalContextKeys false hides the seeds from the key list only */
    const json_t *listed = json_is_false(json_object_get(rt->settings, "exportGlobalContextKeys")) ? NULL : seed;
    json_t *out = json_object();
    for (size_t i = 0; crm_context_store_name(rt, i); i++) {
        const char *store = crm_context_store_name(rt, i);
        if (only && strcmp(only, store)) continue;
        json_t *own = crm_context_scope_copy(rt, store, id);
        json_t *keys = context_keys(own, listed);
        bool filter = seed && strcmp(store, crm_context_default_store(rt)) != 0;
        json_t *entry = json_object(), *list = keys_only ? json_array() : NULL;
        size_t j;
        json_t *k;
        json_array_foreach(keys, j, k) {
            const char *name = json_string_value(k);
            if (keys_only) {
                json_array_append_new(list, json_pack("{s:O}", "key", k));
            } else if (!(filter && seed_echo(seed, own, name))) {
                const json_t *mine = json_object_get(own, name);
                json_object_set_new(entry, name, encode(mine ? mine : json_object_get(seed, name)));
            }
        }
        if (list) json_object_set_new(entry, "keys", list);
        json_object_set_new(out, store, entry);
        json_decref(keys);
        json_decref(own);
    }
    return out;
}

static void reply_not_found(crm_admin_reply *r)
{
    crm_admin_reply_json(r, 404, json_pack("{s:s,s:s}", "code", "not_found", "message", "Error"));
}

bool crm_admin_context(crm_runtime *rt, const char *method, const char *path, const char *query, crm_admin_reply *r)
{
    bool get = !strcmp(method, "GET"), del = !strcmp(method, "DELETE");
    context_route cr;
    if (!(get || del) || !parse_route(path, &cr)) return false;
    if (del && !cr.key && !cr.bad) { /* no DELETE route without a key */
        route_free(&cr);
        return false;
    }
    if (cr.bad) { /* Express's router refuses the request before any handler runs */
        strbuf m = SB_INIT;
        sb_printf(&m, "URIError: Failed to decode param '%s'", cr.bad);
        r->status = 400;
        r->error_page = true;
        r->body = sb_take(&m);
        r->len = strlen(r->body);
        route_free(&cr);
        return true;
    }
    json_t *q = crm_http_parse_query(query, strlen(query));
    const json_t *store_v = json_object_get(q, "store");
    const char *store = json_string_value(store_v);
    bool keys_only = json_object_get(q, "keysOnly") != NULL;
    char *id = NULL;
    if (store_v && (!store || !store_exists(rt, store))) {
        reply_not_found(r);
    } else if (!(id = context_id_of(rt, &cr))) {
        if (get) {
            crm_admin_reply_json(r, 200, json_object());
        } else {
            r->status = 204;
            r->body = strdup("");
        }
    } else if (del) {
        crm_context_delete(rt, store ? store : crm_context_default_store(rt), id, cr.key);
        r->status = 204;
        r->body = strdup("");
    } else if (cr.key) {
        json_t *out = get_key(rt, &cr, id, store ? store : crm_context_default_store(rt), keys_only);
        if (out) crm_admin_reply_json(r, 200, out);
        else
            crm_admin_reply_json(r, 400, json_pack("{s:s,s:s}", "code", "unexpected_error", "message",
                                                   "Cannot convert undefined or null to object"));
    } else {
        crm_admin_reply_json(r, 200, get_all(rt, &cr, id, store, keys_only));
    }
    free(id);
    json_decref(q);
    route_free(&cr);
    return true;
}
