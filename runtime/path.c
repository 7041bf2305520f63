/* path.c: Node-RED property expressions (msg.a.b[0]["c d"], lookup[msg.topic]),
 * spec §2.9. Parsing follows RED.util.normalisePropertyExpression (same error
 * texts), reading follows getMessageProperty (reading through undefined/null
 * "throws"), writing follows setMessageProperty (create {} or [] by the next
 * key's kind, a primitive in the way fails, setting undefined deletes and
 * splices arrays).
 *
 * Return codes of crm_path_set beyond carmine.h's 0/-1: -2 means the walk
 * "threw" (a nested msg.x key evaluated to undefined), which callers treat as
 * JavaScript's exception rather than as a failed set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "strbuf.h"

typedef enum { SEG_KEY, SEG_INDEX, SEG_NESTED } seg_kind;

typedef struct {
    seg_kind kind;
    char *key;          /* SEG_KEY: the name (may hold any bytes but NUL) */
    size_t len;
    double index;       /* SEG_INDEX */
    crm_path *nested;   /* SEG_NESTED: evaluated against msg at use */
    bool utf8;          /* SEG_KEY: valid UTF-8, so jansson need not check it on every set */
} seg;

struct crm_path {
    size_t n, cap;
    seg *segs;
};

/* A key after nested references were evaluated. */
typedef struct {
    bool is_num;
    double num;
    const char *str;
    size_t len;
    char *owned;
    bool utf8;          /* known valid UTF-8 (a parsed key or a number) */
    char nb[32];
} rkey;

/* Parsing ------------------------------------------------------------------ */

static char *fmt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_err(const char *fmt, ...)
{
    strbuf sb = SB_INIT;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    return sb_take(&sb);
}

/* The character at s[i] as JavaScript would print str[i] (whole UTF-8 char;
 * "undefined" past the end). */
static char *char_at(const char *s, size_t len, size_t i)
{
    if (i >= len) return strdup("undefined");
    size_t n = 1;
    unsigned char c = (unsigned char)s[i];
    if (c >= 0xf0) n = 4;
    else if (c >= 0xe0) n = 3;
    else if (c >= 0xc0) n = 2;
    if (i + n > len) n = len - i;
    return strndup(s + i, n);
}

static char *err_unexpected(const char *s, size_t len, size_t i)
{
    char *c = char_at(s, len, i);
    char *e = fmt_err("Invalid property expression: unexpected %s at position %zu", c, i);
    free(c);
    return e;
}

static void push_seg(crm_path *p, seg s)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4;
        p->segs = realloc(p->segs, p->cap * sizeof(seg));
    }
    p->segs[p->n++] = s;
}

static bool valid_utf8(const char *s, size_t len)
{
    json_t *probe = json_stringn(s, len); /* NULL for invalid UTF-8 */
    json_decref(probe);
    return probe != NULL;
}

static void push_key(crm_path *p, const char *s, size_t len)
{
    seg g = {SEG_KEY, strndup(s, len), len, 0, NULL, valid_utf8(s, len)};
    push_seg(p, g);
}

static bool all_digits(const char *s, size_t len)
{
    if (!len) return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static void push_index(crm_path *p, const char *s, size_t len)
{
    char *t = strndup(s, len);
    seg g = {SEG_INDEX, NULL, 0, strtod(t, NULL), NULL, true};
    free(t);
    push_seg(p, g);
}

static void push_maybe_index(crm_path *p, const char *s, size_t len)
{
    if (all_digits(s, len)) push_index(p, s, len);
    else push_key(p, s, len);
}

static bool ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '$' || c == '_';
}

static crm_path *parse_expr(const char *s, size_t len, char **err);

/* A nested msg.x / msg[...] inside brackets starting at s[i] ('['). On
 * success *end is the index of the closing ']'. */
static int parse_nested(crm_path *p, const char *s, size_t len, size_t i, size_t *end, char **err)
{
    int depth = 1;
    bool in_str = false;
    char q = 0;
    for (size_t j = i + 1; j < len; j++) {
        char c = s[j];
        if (c == '"' || c == '\'') {
            if (in_str) {
                if (c == q) in_str = false;
            } else {
                in_str = true;
                q = c;
            }
        }
        /* brackets count even inside quotes, as Node-RED does */
        if (c == '[') depth++;
        else if (c == ']') depth--;
        if (depth == 0) {
            const char *inner = s + i + 1;
            size_t ilen = j - i - 1;
            /* getMessageProperty drops a leading "msg." (not "msg[") */
            if (ilen >= 4 && !strncmp(inner, "msg.", 4)) inner += 4, ilen -= 4;
            char *sub_err = NULL;
            crm_path *sub = parse_expr(inner, ilen, &sub_err);
            if (!sub) {
                free(sub_err);
                *err = fmt_err("Invalid expression started at position %zu", i + 1);
                return -1;
            }
            seg g = {SEG_NESTED, NULL, 0, 0, sub, false};
            push_seg(p, g);
            *end = j;
            return 0;
        }
    }
    *err = fmt_err("Invalid property expression: unmatched '[' at position %zu", i);
    return -1;
}

static bool starts_nested(const char *s, size_t len, size_t i)
{
    return i + 4 <= len && !strncmp(s + i, "msg", 3) && (s[i + 3] == '.' || s[i + 3] == '[');
}

/* The state machine of normalisePropertyExpression, position for position. */
static int parse_into(crm_path *p, const char *s, size_t len, char **err)
{
    if (len == 0) {
        *err = strdup("Invalid property expression: zero-length");
        return -1;
    }
    size_t start = 0;
    bool in_str = false, in_box = false;
    char quote = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c != quote) continue;
            if (i == start) {
                *err = fmt_err("Invalid property expression: zero-length string at position %zu", start);
                return -1;
            }
            push_key(p, s + start, i - start);
            if (in_box && (i + 1 >= len || s[i + 1] != ']')) {
                *err = fmt_err("Invalid property expression: unexpected array expression at position %zu", start);
                return -1;
            }
            if (!in_box && i + 1 != len && s[i + 1] != '[' && s[i + 1] != '.') {
                char *ch = char_at(s, len, i + 1);
                *err = fmt_err("Invalid property expression: unexpected %s expression at position %zu", ch, i + 1);
                free(ch);
                return -1;
            }
            start = i + 1;
            in_str = false;
        } else if (c == '\'' || c == '"') {
            if (i != start) {
                *err = fmt_err("Invalid property expression: unexpected %c at position %zu", c, i);
                return -1;
            }
            in_str = true;
            quote = c;
            start = i + 1;
        } else if (c == '.') {
            if (i == 0) {
                *err = strdup("Invalid property expression: unexpected . at position 0");
                return -1;
            }
            if (start != i) push_maybe_index(p, s + start, i - start);
            if (i == len - 1) {
                *err = strdup("Invalid property expression: unterminated expression");
                return -1;
            }
            if (!ident_start(s[i + 1])) {
                *err = err_unexpected(s, len, i + 1);
                return -1;
            }
            start = i + 1;
        } else if (c == '[') {
            if (i == 0) {
                *err = strdup("Invalid property expression: unexpected [ at position 0");
                return -1;
            }
            if (start != i) push_key(p, s + start, i - start);
            if (i == len - 1) {
                *err = strdup("Invalid property expression: unterminated expression");
                return -1;
            }
            if (starts_nested(s, len, i + 1)) {
                size_t end;
                if (parse_nested(p, s, len, i, &end, err)) return -1;
                in_box = false;
                i = end;
                start = end + 1;
                continue;
            }
            char nx = s[i + 1];
            if (nx != '"' && nx != '\'' && !(nx >= '0' && nx <= '9')) {
                *err = err_unexpected(s, len, i + 1);
                return -1;
            }
            start = i + 1;
            in_box = true;
        } else if (c == ']') {
            if (!in_box) {
                *err = fmt_err("Invalid property expression: unexpected ] at position %zu", i);
                return -1;
            }
            if (start != i) {
                if (!all_digits(s + start, i - start)) {
                    *err = fmt_err("Invalid property expression: unexpected array expression at position %zu", start);
                    return -1;
                }
                push_index(p, s + start, i - start);
            }
            start = i + 1;
            in_box = false;
        } else if (c == ' ') {
            *err = fmt_err("Invalid property expression: unexpected ' ' at position %zu", i);
            return -1;
        }
    }
    if (in_box || in_str) {
        *err = strdup("Invalid property expression: unterminated expression");
        return -1;
    }
    /* the trailing segment stays a string even when it is all digits */
    if (start < len) push_key(p, s + start, len - start);
    return 0;
}

static crm_path *parse_expr(const char *s, size_t len, char **err)
{
    crm_path *p = calloc(1, sizeof *p);
    char *e = NULL;
    if (parse_into(p, s, len, &e)) {
        crm_path_free(p);
        if (err) *err = e;
        else free(e);
        return NULL;
    }
    return p;
}

crm_path *crm_path_parse(const char *expr, char **err)
{
    if (err) *err = NULL;
    if (!expr) expr = "";
    if (!strncmp(expr, "msg.", 4)) expr += 4;
    return parse_expr(expr, strlen(expr), err);
}

void crm_path_free(crm_path *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->segs[i].key);
        crm_path_free(p->segs[i].nested);
    }
    free(p->segs);
    free(p);
}

/* Resolving keys ----------------------------------------------------------- */

/* Most paths are short: their keys live on the caller's stack. */
#define RKEY_STACK 8

static void rkey_free(rkey *k, size_t n, rkey *stack)
{
    for (size_t i = 0; i < n; i++)
        if (k[i].owned) free(k[i].owned);
    if (k != stack) free(k);
}

/* Evaluates nested references into stack (RKEY_STACK entries) or a malloc'd
 * array. NULL when one is undefined (a throw). */
static rkey *resolve(const crm_path *p, const json_t *msg, rkey *stack)
{
    rkey *k = p->n <= RKEY_STACK ? stack : malloc(p->n * sizeof *k);
    memset(k, 0, p->n * sizeof *k);
    for (size_t i = 0; i < p->n; i++) {
        const seg *g = &p->segs[i];
        if (g->kind == SEG_KEY) {
            k[i].str = g->key;
            k[i].len = g->len;
            k[i].utf8 = g->utf8;
        } else if (g->kind == SEG_INDEX) {
            k[i].is_num = true;
            k[i].num = g->index;
            k[i].utf8 = true;
        } else {
            bool thr = false;
            json_t *v = msg ? crm_path_get(g->nested, msg, msg, &thr) : NULL;
            if (!v || thr) {
                rkey_free(k, i, stack);
                return NULL;
            }
            if (json_is_number(v)) {
                k[i].is_num = true;
                k[i].num = crm_num_value(v);
                k[i].utf8 = true;
            } else if (json_is_string(v)) {
                k[i].owned = strndup(json_string_value(v), json_string_length(v));
                k[i].str = k[i].owned;
                k[i].len = json_string_length(v);
            } else {
                k[i].owned = crm_to_string(v);
                k[i].str = k[i].owned;
                k[i].len = strlen(k[i].owned);
            }
        }
    }
    return k;
}

/* The key as an object property name (JavaScript ToString of a number). */
static const char *key_name(rkey *k, size_t *len)
{
    if (k->is_num) {
        crm_fmt_number(k->num, k->nb);
        *len = strlen(k->nb);
        return k->nb;
    }
    *len = k->len;
    return k->str;
}

/* Whether the key names an array index; *idx gets it. */
static bool key_index(const rkey *k, size_t *idx)
{
    if (k->is_num) {
        if (k->num < 0 || k->num != floor(k->num) || k->num >= 4294967295.0) return false;
        *idx = (size_t)k->num;
        return true;
    }
    if (!all_digits(k->str, k->len) || (k->len > 1 && k->str[0] == '0') || k->len > 10) return false;
    double d = strtod(k->str, NULL);
    if (d >= 4294967295.0) return false;
    *idx = (size_t)d;
    return true;
}

static bool key_is(const rkey *k, const char *name)
{
    return !k->is_num && k->len == strlen(name) && !memcmp(k->str, name, k->len);
}

/* Buffers and live handles (crm_is_buf and crm_is_handle test the key
 * count first, so a plain message costs no hash lookup here). */
static bool is_special(const json_t *obj)
{
    if (!json_is_object(obj) || json_object_size(obj) != 1) return false; /* one size call for both */
    return json_object_get(obj, CRM_BUF_KEY) || json_object_get(obj, CRM_HANDLE_KEY);
}

/* msg.payload and its like, the common case: one plain key, nothing to
 * resolve and no intermediate to walk. */
static bool one_plain_key(const crm_path *p)
{
    return p->n == 1 && p->segs[0].kind == SEG_KEY;
}

bool crm_path_first_name(const crm_path *p, const char **name, size_t *len)
{
    if (!p || !p->n || p->segs[0].kind != SEG_KEY) return false;
    *name = p->segs[0].key;
    *len = p->segs[0].len;
    return true;
}

bool crm_path_one_name(const crm_path *p, const char **name, size_t *len)
{
    if (!p || !one_plain_key(p)) return false;
    *name = p->segs[0].key;
    *len = p->segs[0].len;
    return true;
}

static rkey plain_key(const seg *g)
{
    rkey k;
    k.is_num = false;
    k.str = g->key;
    k.len = g->len;
    k.owned = NULL;
    k.utf8 = g->utf8;
    return k;
}

/* Reading -------------------------------------------------------------------- */

/* Values made up while reading (a string's length, an array's length, a
 * Buffer's byte) are not stored anywhere; a small per-thread ring keeps them
 * alive so crm_path_get can stay "borrowed". Each lives for the next 16 such
 * values made on the thread. */
#define SYNTH_RING 16
static _Thread_local json_t *synth_ring[SYNTH_RING];
static _Thread_local unsigned synth_pos;

void crm_path_thread_done(void)
{
    for (unsigned i = 0; i < SYNTH_RING; i++) {
        json_decref(synth_ring[i]);
        synth_ring[i] = NULL;
    }
}

static json_t *synth(json_t *v)
{
    unsigned i = synth_pos++ % SYNTH_RING;
    json_decref(synth_ring[i]);
    synth_ring[i] = v;
    return v;
}

/* str[idx] for BMP text: the idx-th character. */
static json_t *string_char(const char *s, size_t n, size_t idx)
{
    size_t pos = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0xf0) cl = 4;
        else if (c >= 0xe0) cl = 3;
        else if (c >= 0xc0) cl = 2;
        if (i + cl > n) cl = n - i;
        if (pos == idx) return json_stringn_nocheck(s + i, cl);
        pos += c >= 0xf0 ? 2 : 1;
        i += cl;
    }
    return NULL;
}

/* obj[key] for a defined, non-null obj; NULL for undefined. */
static json_t *get_one(const json_t *obj, rkey *k)
{
    size_t idx, len;
    switch (json_typeof(obj)) {
    case JSON_OBJECT:
        if (crm_is_buf(obj)) {
            size_t n;
            const unsigned char *d = crm_buf_data(obj, &n);
            if (key_index(k, &idx)) return idx < n ? synth(json_real(d[idx])) : NULL;
            if (key_is(k, "length")) return synth(json_real((double)n));
            return NULL;
        }
        if (crm_is_handle(obj)) return NULL;
        {
            const char *name = key_name(k, &len);
            json_t *v = json_object_getn(obj, name, len);
            return v ? v : crm_error_member(obj, name, len);
        }
    case JSON_ARRAY:
        if (key_index(k, &idx)) return json_array_get(obj, idx);
        if (key_is(k, "length")) return synth(json_real((double)json_array_size(obj)));
        return NULL;
    case JSON_STRING: {
        const char *s = json_string_value(obj);
        size_t n = json_string_length(obj);
        if (key_index(k, &idx)) {
            json_t *c = string_char(s, n, idx);
            return c ? synth(c) : NULL;
        }
        if (key_is(k, "length")) return synth(json_real((double)crm_utf16_len(s, n)));
        return NULL;
    }
    default:
        return NULL;
    }
}

json_t *crm_path_get(const crm_path *p, const json_t *root, const json_t *msg, bool *throws)
{
    bool dummy;
    if (!throws) throws = &dummy;
    *throws = false;
    if (!p) return NULL;
    if (one_plain_key(p) && root && !json_is_null(root)) {
        rkey k = plain_key(&p->segs[0]);
        return get_one(root, &k);
    }
    rkey stack[RKEY_STACK];
    rkey *k = resolve(p, msg, stack);
    if (!k) {
        *throws = true;
        return NULL;
    }
    const json_t *cur = root;
    for (size_t i = 0; i < p->n; i++) {
        if (!cur || json_is_null(cur)) {
            *throws = true;
            cur = NULL;
            break;
        }
        cur = get_one(cur, &k[i]);
    }
    rkey_free(k, p->n, stack);
    return (json_t *)cur;
}

/* Writing ---------------------------------------------------------------------- */

static bool is_container(const json_t *v)
{
    return v && (json_is_array(v) || (json_is_object(v) && !is_special(v)));
}

static bool reaches(const json_t *from, json_t *const *targets, size_t nt)
{
    for (size_t i = 0; i < nt; i++)
        if (from == targets[i]) return true;
    if (json_is_array(from)) {
        for (size_t i = 0; i < json_array_size(from); i++)
            if (reaches(json_array_get(from, i), targets, nt)) return true;
    } else if (json_is_object(from)) {
        const char *key;
        json_t *x;
        json_object_foreach((json_t *)from, key, x)
            if (reaches(x, targets, nt)) return true;
    }
    return false;
}

/* JavaScript would happily build a cycle (msg.payload.self = msg.payload);
 * jansson values must stay trees, so such a value is copied instead. A cycle
 * needs the value to reach a container on the path: it is one of them, or
 * one of them is shared (refcount > 1) and reachable some other way. */
static json_t *break_cycle(json_t *value, json_t *const *chain, size_t nc)
{
    if (!is_container(value)) return value;
    bool shared = false;
    for (size_t i = 0; i < nc; i++) {
        if (chain[i] == value) goto copy;
        if (i > 0 && chain[i]->refcount > 1) shared = true;
    }
    if (!shared || !reaches(value, chain, nc)) return value;
copy:;
    json_t *c = crm_deep_copy(value);
    json_decref(value);
    return c;
}

static json_t *new_container_for(const rkey *next)
{
    return next->is_num ? json_array() : json_object();
}

/* arr[idx] = v (stolen), padding holes with null as JSON.stringify shows them. */
static void array_put(json_t *arr, size_t idx, json_t *v)
{
    while (json_array_size(arr) < idx) json_array_append_new(arr, json_null());
    if (idx < json_array_size(arr)) json_array_set_new(arr, idx, v);
    else json_array_append_new(arr, v);
}

/* One step down for an intermediate key. 0 with *next, -1 on failure,
 * 1 when JavaScript would carry on without any visible effect. */
static int step(json_t *obj, rkey *k, const rkey *after, bool create, json_t **next)
{
    size_t idx, len;
    if (json_is_array(obj)) {
        if (!key_index(k, &idx)) return 1; /* a named property on an array: invisible */
        json_t *child = json_array_get(obj, idx);
        if (child) {
            if (!is_container(child) && !crm_is_buf(child)) return -1;
            *next = child;
            return 0;
        }
        if (!create) return -1;
        *next = new_container_for(after);
        array_put(obj, idx, json_incref(*next));
        json_decref(*next);
        return 0;
    }
    if (!is_container(obj)) return -1;
    const char *name = key_name(k, &len);
    json_t *child = json_object_getn(obj, name, len);
    if (child) {
        /* a Buffer can only be the last step's object: buf[i] = v */
        if (!is_container(child) && !crm_is_buf(child)) return -1;
        *next = child;
        return 0;
    }
    if (!create) return -1;
    *next = new_container_for(after);
    /* a key that is not UTF-8 is refused, and the new container freed */
    return json_object_setn_new(obj, name, len, *next) ? -1 : 0;
}

static int delete_last(json_t *obj, rkey *k)
{
    size_t idx, len;
    if (json_is_array(obj)) {
        if (!key_index(k, &idx) || idx >= json_array_size(obj)) return 0;
        if (k->is_num) json_array_remove(obj, idx); /* splice */
        else json_array_set_new(obj, idx, json_null()); /* `delete arr["0"]` leaves a hole */
        return 0;
    }
    if (is_container(obj)) {
        const char *name = key_name(k, &len);
        json_object_deln(obj, name, len);
    }
    return 0;
}

/* buf[idx] = value (stolen), as a Uint8Array stores it: Number(value)
 * truncated modulo 256, NaN as 0; an index past the end is ignored. */
static void set_byte(json_t *buf, size_t idx, json_t *value)
{
    size_t n;
    const unsigned char *d = crm_buf_data(buf, &n);
    if (idx < n) {
        double x = crm_to_number(value);
        double m = isfinite(x) ? fmod(trunc(x), 256) : 0;
        unsigned char *copy = malloc(n);
        memcpy(copy, d, n);
        copy[idx] = (unsigned char)(m < 0 ? m + 256 : m);
        json_string_setn_nocheck(json_object_get(buf, CRM_BUF_KEY), (const char *)copy, n);
        free(copy);
    }
    json_decref(value);
}

static int set_last(json_t *obj, rkey *k, json_t *value, json_t *const *chain, size_t nc)
{
    size_t idx, len;
    if (json_is_array(obj)) {
        if (key_index(k, &idx)) array_put(obj, idx, break_cycle(value, chain, nc));
        else json_decref(value);
        return 0;
    }
    if (json_is_object(obj)) {
        if (is_special(obj)) {
            if (crm_is_buf(obj) && key_index(k, &idx)) set_byte(obj, idx, value);
            else json_decref(value);
            return 0;
        }
        const char *name = key_name(k, &len);
        value = break_cycle(value, chain, nc);
        int rc = k->utf8 ? json_object_setn_new_nocheck(obj, name, len, value) : json_object_setn_new(obj, name, len, value);
        return rc ? -1 : 0;
    }
    json_decref(value);
    return -1;
}

int crm_path_set(const crm_path *p, json_t *root, const json_t *msg, json_t *value, bool create_missing)
{
    if (!p || !p->n || !root) {
        json_decref(value);
        return -1;
    }
    if (one_plain_key(p)) {
        rkey k = plain_key(&p->segs[0]);
        return value ? set_last(root, &k, value, &root, 1) : delete_last(root, &k);
    }
    if (!value) create_missing = false; /* deleting never builds parents */
    rkey stack[RKEY_STACK];
    rkey *k = resolve(p, msg, stack);
    if (!k) {
        json_decref(value);
        return -2;
    }
    json_t *stack_chain[16];
    json_t **chain = p->n <= 16 ? stack_chain : malloc(p->n * sizeof *chain);
    json_t *obj = root;
    int rc = 0;
    size_t i;
    for (i = 0; i + 1 < p->n; i++) {
        chain[i] = obj;
        json_t *next = NULL;
        rc = step(obj, &k[i], &k[i + 1], create_missing, &next);
        if (rc) break;
        obj = next;
    }
    if (rc == 0) {
        chain[i] = obj;
        if (value) rc = set_last(obj, &k[p->n - 1], value, chain, i + 1);
        else rc = delete_last(obj, &k[p->n - 1]);
        value = NULL;
    } else if (rc == 1) {
        rc = 0;
    }
    json_decref(value);
    if (chain != stack_chain) free(chain);
    rkey_free(k, p->n, stack);
    return rc;
}

/* Context keys ------------------------------------------------------------------ */

/* normalisePropertyExpression(key, msg, true): nested msg references are
 * evaluated and the key rebuilt as a["b"][0]. Malloc'd, or NULL with *err
 * when a reference is undefined. Declared for other modules in carmine.h
 * (crm_path_resolve_key). */
char *crm_path_resolve_key(const char *expr, const json_t *msg, char **err)
{
    if (err) *err = NULL;
    crm_path *p = parse_expr(expr, strlen(expr), err);
    if (!p) return NULL;
    rkey stack[RKEY_STACK];
    rkey *k = resolve(p, msg, stack);
    if (!k) {
        if (err) *err = strdup("Invalid expression: undefined reference");
        crm_path_free(p);
        return NULL;
    }
    strbuf sb = SB_INIT;
    for (size_t i = 0; i < p->n; i++) {
        size_t len;
        const char *name = key_name(&k[i], &len);
        if (i == 0) {
            sb_putn(&sb, name, len);
        } else if (k[i].is_num) {
            sb_printf(&sb, "[%s]", name);
        } else {
            char q = memchr(name, '"', len) ? '\'' : '"';
            sb_putc(&sb, '[');
            sb_putc(&sb, q);
            sb_putn(&sb, name, len);
            sb_putc(&sb, q);
            sb_putc(&sb, ']');
        }
    }
    rkey_free(k, p->n, stack);
    crm_path_free(p);
    return sb_take(&sb);
}

/* Shorthands -------------------------------------------------------------------- */

json_t *crm_msg_get(const json_t *msg, const char *expr)
{
    crm_path *p = crm_path_parse(expr, NULL);
    if (!p) return NULL;
    json_t *v = crm_path_get(p, msg, msg, NULL);
    crm_path_free(p);
    return v;
}

int crm_msg_set(json_t *msg, const char *expr, json_t *value)
{
    crm_path *p = crm_path_parse(expr, NULL);
    if (!p) {
        json_decref(value);
        return -1;
    }
    int rc = crm_path_set(p, msg, msg, value, value != NULL);
    crm_path_free(p);
    return rc;
}
