/* split.c: the Node-RED "split" node (core/sequence/17-split.js, spec §3.13).
 *
 * One input message becomes a sequence of messages carrying msg.parts, one
 * per piece of a string, Buffer, array or object. Node-RED clones the whole
 * (mutated) input for every part; here each part is built from the input
 * instead: scalars are shared (jansson scalars are never mutated in place),
 * containers are deep-copied, and the last part takes the input itself. That
 * is what a clone per part can be told apart by, and it keeps a 1M-element
 * array split from copying the array per part. Array and object elements are
 * handed over without a copy when nothing else can reach them (refcount 1 all
 * the way up), since the input is dropped once it has been split.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "strbuf.h"

typedef enum { SPLT_STR, SPLT_BIN, SPLT_LEN } splt_type;

typedef struct {
    bool broken;       /* bad config: Node-RED registers no input handler */
    splt_type type;
    char *delim;       /* str/bin delimiter bytes */
    size_t delim_len;
    json_t *delim_ch;  /* parts.ch: the delimiter string, or the bin byte array */
    long chunk;        /* len mode */
    long array_chunk;  /* arraySplt */
    bool stream;
    char *addname;     /* "" when unset */
    char *prop;        /* property expression, "payload" by default */
    crm_path *path;
    char *path_err;    /* a bad property expression fails per message */
    bool simple;       /* prop is one top-level key */
    /* stream state */
    double c;          /* running parts.index */
    strbuf rem_str;    /* string remainder */
    strbuf rem_buf;    /* Buffer remainder */
    json_t **pending;  /* messages whose done waits for their remainder */
    size_t npending, cappending;
} split_state;

/* One input being split: the mutated input and the parts fields shared by
 * every part. The handler owns one reference to tmpl; the function that
 * splits a kind of value consumes it (sends it as the last part, keeps it for
 * a later done, or drops it), and calls done while it is still valid. */
typedef struct {
    crm_node *n;
    split_state *s;
    json_t *tmpl;      /* the input: no _msgid, placeholders at parts and the property */
    json_t *base;      /* parts without index/count/key */
    const json_t *value; /* the value being split (borrowed) */
    bool own;          /* nothing but tmpl reaches the split value */
} split_job;

/* ---- config helpers ------------------------------------------------------ */

/* JavaScript parseInt(String(v)); NAN when no digits. */
static double js_parse_int(const json_t *v)
{
    char *s = crm_to_string(v);
    if (!s) return NAN;
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    int sign = 1;
    if (*p == '+' || *p == '-') sign = (*p++ == '-') ? -1 : 1;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) { base = 16; p += 2; }
    double r = 0;
    int ndig = 0;
    for (;; p++, ndig++) {
        int d;
        if (isdigit((unsigned char)*p)) d = *p - '0';
        else if (base == 16 && isxdigit((unsigned char)*p)) d = tolower((unsigned char)*p) - 'a' + 10;
        else break;
        r = r * base + d;
    }
    free(s);
    return ndig ? sign * r : NAN;
}

/* The editor's escapes, replaced in the same order as Node-RED (so "\\e"
 * becomes "e": JavaScript's "\e" is just "e"). */
static char *unescape_delim(const char *in, size_t *out_len)
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
    }
    *out_len = len;
    return cur;
}

static bool is_simple_key(const char *p)
{
    if (!(isalpha((unsigned char)*p) || *p == '_' || *p == '$')) return false;
    for (; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '$')) return false;
    return true;
}

static void split_free(split_state *s)
{
    if (!s) return;
    free(s->delim);
    json_decref(s->delim_ch);
    free(s->addname);
    free(s->prop);
    crm_path_free(s->path);
    free(s->path_err);
    sb_free(&s->rem_str);
    sb_free(&s->rem_buf);
    for (size_t i = 0; i < s->npending; i++) json_decref(s->pending[i]);
    free(s->pending);
    free(s);
}

/* bin: a JSON array of byte values. Returns an error text or NULL. */
static char *read_bin_delim(split_state *s, const json_t *cfgv)
{
    const char *txt = json_is_string(cfgv) ? json_string_value(cfgv) : NULL;
    char *owned = NULL;
    if (!txt) txt = owned = crm_to_string(cfgv);
    char perr[160];
    json_t *arr = crm_parse(txt, strlen(txt), perr, sizeof perr);
    strbuf e = SB_INIT;
    if (!arr) sb_printf(&e, "SyntaxError: \"%s\" is not valid JSON", txt);
    else if (!json_is_array(arr)) sb_puts(&e, "Error: not an array");
    free(owned);
    if (e.len) {
        json_decref(arr);
        return sb_take(&e);
    }
    s->delim_len = json_array_size(arr);
    s->delim = malloc(s->delim_len + 1);
    for (size_t i = 0; s->delim && i < s->delim_len; i++) {
        double d = crm_num_value(json_array_get(arr, i));
        if (json_is_string(json_array_get(arr, i))) d = crm_str_to_number(json_string_value(json_array_get(arr, i)));
        s->delim[i] = isfinite(d) ? (char)((int64_t)d & 0xff) : 0;
    }
    s->delim_ch = arr;
    return NULL;
}

/* Reads splt/spltType/arraySplt; returns Node-RED's error text or NULL. */
static char *read_split_cfg(split_state *s, const json_t *cfg)
{
    const char *st = crm_cfg_str(cfg, "spltType", "");
    const json_t *splt = json_object_get(cfg, "splt");
    strbuf e = SB_INIT;
    if (!strcmp(st, "bin")) {
        s->type = SPLT_BIN;
        char *err = read_bin_delim(s, splt);
        if (err) return err;
    } else if (!strcmp(st, "len")) {
        s->type = SPLT_LEN;
        double l = js_parse_int(splt);
        if (isnan(l) || l < 1) {
            char *raw = crm_to_string(splt);
            sb_printf(&e, "Error: invalid split length: %s", raw ? raw : "undefined");
            free(raw);
            return sb_take(&e);
        }
        s->chunk = l > 1e12 ? (long)1e12 : (long)l;
    } else {
        s->type = SPLT_STR;
        const char *txt = crm_truthy(splt) ? json_string_value(splt) : "\\n";
        if (!txt) return strdup("TypeError: (n.splt || \"\\\\n\").replace is not a function");
        s->delim = unescape_delim(txt, &s->delim_len);
        if (!s->delim) return strdup("Error: out of memory");
        s->delim_ch = json_stringn(s->delim, s->delim_len);
        if (!s->delim_ch) s->delim_ch = json_stringn_nocheck(s->delim, s->delim_len);
    }
    const json_t *as = json_object_get(cfg, "arraySplt");
    double a = as ? js_parse_int(as) : 1;
    if (isnan(a) || a < 1) {
        char *raw = crm_to_string(as);
        sb_printf(&e, "Error: invalid array split length: %s", raw ? raw : "undefined");
        free(raw);
        return sb_take(&e);
    }
    s->array_chunk = a > 1e12 ? (long)1e12 : (long)a;
    return NULL;
}

static int split_create(crm_node *n, const json_t *cfg)
{
    split_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    crm_node_set_data(n, s);
    s->stream = json_is_true(json_object_get(cfg, "stream"));
    s->addname = strdup(crm_cfg_str(cfg, "addname", ""));
    const char *prop = crm_cfg_str(cfg, "property", "");
    if (!*prop) prop = "payload";
    if (!strncmp(prop, "msg.", 4)) prop += 4;
    s->prop = strdup(prop);
    if (!s->addname || !s->prop) return -1;
    s->simple = is_simple_key(s->prop);
    s->path = crm_path_parse(s->prop, &s->path_err);
    char *err = read_split_cfg(s, cfg);
    if (err) {
        /* Node-RED logs this (not catchable) and the node ignores its input;
         * the flows still start. */
        crm_node_log(n, CRM_LOG_ERROR, "Invalid split property: %s", err);
        free(err);
        s->broken = true;
    }
    return 0;
}

static void split_close(crm_node *n)
{
    split_free(crm_node_data(n));
    crm_node_set_data(n, NULL);
}

/* ---- building parts ---------------------------------------------------- */

static json_t *share_or_copy(json_t *v)
{
    if (json_is_object(v) || json_is_array(v)) return crm_deep_copy(v);
    return json_incref(v);
}

/* An element of the split value for a part: moved when only we can reach
 * it, copied otherwise. Returns a new reference. */
static json_t *take_elem(const split_job *j, json_t *v)
{
    if ((json_is_object(v) || json_is_array(v)) && !(j->own && v->refcount == 1)) return crm_deep_copy(v);
    return json_incref(v);
}

/* parts = base + index (+ count) (+ key). The base is copied unless steal. */
static json_t *make_parts(json_t *base, bool steal, double index, double count, const char *key)
{
    json_t *p;
    if (steal) {
        p = json_incref(base);
    } else {
        p = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(base, k, v) json_object_set_new(p, k, share_or_copy(v));
    }
    if (key) json_object_set_new(p, "key", json_string(key));
    json_object_set_new(p, "index", crm_num(index));
    if (count >= 0) json_object_set_new(p, "count", crm_num(count));
    return p;
}

/* Sets the split property of part to piece (stolen; NULL deletes it). */
static void set_prop(split_job *j, json_t *part, json_t *piece)
{
    split_state *s = j->s;
    if (s->simple) {
        if (piece) json_object_set_new(part, s->prop, piece);
        else json_object_del(part, s->prop);
    } else if (crm_path_set(s->path, part, part, piece, piece != NULL) < 0) {
        json_decref(piece);
    }
}

/* Sends one part (piece stolen). With steal the input itself becomes the
 * part: only for the last part of an input nobody keeps. */
static void emit(split_job *j, json_t *piece, double index, double count, const char *key, bool steal)
{
    json_t *part;
    if (steal) {
        part = j->tmpl;
        json_object_set_new(part, "parts", make_parts(j->base, true, index, count, key));
        set_prop(j, part, piece);
        crm_node_send(j->n, 0, part);
        return;
    }
    part = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(j->tmpl, k, v) {
        if (!strcmp(k, "parts")) json_object_set_new(part, k, make_parts(j->base, false, index, count, key));
        else if (j->s->simple && !strcmp(k, j->s->prop)) json_object_set(part, k, json_null());
        else json_object_set_new(part, k, share_or_copy(v));
    }
    set_prop(j, part, piece);
    crm_node_send(j->n, 0, part);
}

/* The last piece: sent by moving the input. Our reference stays, so the
 * input can still be passed to crm_node_done (Node-RED's done gets the same
 * mutated object). */
static void emit_last(split_job *j, json_t *piece, double index, double count, const char *key)
{
    json_incref(j->tmpl);
    emit(j, piece, index, count, key, true);
}

/* ---- done bookkeeping ------------------------------------------------------ */

static void flush_pending(split_state *s, crm_node *n)
{
    for (size_t i = 0; i < s->npending; i++) {
        crm_node_done(n, s->pending[i]);
        json_decref(s->pending[i]);
    }
    s->npending = 0;
}

/* Keeps msg (a new reference taken) until its remainder has been sent. */
static void push_pending(split_state *s, json_t *msg)
{
    if (!msg) return;
    if (s->npending == s->cappending) {
        size_t cap = s->cappending ? s->cappending * 2 : 4;
        json_t **p = realloc(s->pending, cap * sizeof *p);
        if (!p) return;
        s->pending = p;
        s->cappending = cap;
    }
    s->pending[s->npending++] = json_incref(msg);
}

/* ---- strings --------------------------------------------------------------- */

/* Byte length of the UTF-8 char starting at s. */
static size_t u8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* JavaScript length (UTF-16 units) of UTF-8 text. */
static size_t u16_count(const char *s, size_t len)
{
    size_t u = 0;
    for (size_t i = 0; i < len;) {
        size_t l = u8_len((unsigned char)s[i]);
        u += l == 4 ? 2 : 1;
        i += l;
    }
    return u;
}

/* Advances byte offset *pos by up to units UTF-16 units (a surrogate pair
 * cut in half stays whole, in the earlier piece). */
static size_t u16_advance(const char *s, size_t len, size_t pos, size_t units)
{
    size_t u = 0;
    while (pos < len && u < units) {
        size_t l = u8_len((unsigned char)s[pos]);
        u += l == 4 ? 2 : 1;
        pos += l;
    }
    return pos > len ? len : pos;
}

static json_t *str_piece(const char *p, size_t l)
{
    json_t *v = json_stringn(p, l);
    return v ? v : json_stringn_nocheck(p, l);
}

/* Fixed-length chunks of a string (len mode). */
static void split_string_len(split_job *j, const char *data, size_t dlen)
{
    split_state *s = j->s;
    json_object_set_new(j->base, "ch", json_string(""));
    json_object_set_new(j->base, "len", crm_num((double)s->chunk));
    size_t units = u16_count(data, dlen);
    size_t count = (units + s->chunk - 1) / s->chunk;
    if (!s->stream) s->c = 0;
    double cnt = s->stream ? -1 : (double)count;
    size_t pos = 0;
    for (size_t i = 0; i + 1 < count; i++) {
        size_t end = u16_advance(data, dlen, pos, s->chunk);
        emit(j, str_piece(data + pos, end - pos), s->c++, cnt, NULL, false);
        pos = end;
    }
    if (count > 1) flush_pending(s, j->n);
    size_t rlen = dlen - pos;
    if (!s->stream || u16_count(data + pos, rlen) == (size_t)s->chunk) {
        emit_last(j, str_piece(data + pos, rlen), s->c++, cnt, NULL);
        flush_pending(s, j->n);
        crm_node_done(j->n, j->tmpl);
        s->rem_str.len = 0;
    } else {
        s->rem_str.len = 0;
        sb_putn(&s->rem_str, data + pos, rlen);
        set_prop(j, j->tmpl, str_piece(data, dlen));
        push_pending(s, j->tmpl);
    }
    json_decref(j->tmpl);
}

/* Node-RED's sendArray: pieces[0..n-1] (stolen); n == 0 sends one part with
 * the property undefined, as JavaScript's array[0] gives. */
static void send_pieces(split_job *j, json_t **pieces, size_t n)
{
    split_state *s = j->s;
    double cnt = s->stream ? -1 : (double)n;
    size_t i = 0;
    for (; n > 0 && i < n - 1; i++) emit(j, pieces[i], s->c++, cnt, NULL, false);
    json_t *last = n ? pieces[i] : NULL;
    if (!s->stream) {
        json_incref(j->tmpl);
        emit(j, last, s->c++, (double)n, NULL, true);
        s->c = 0;
        return;
    }
    s->rem_str.len = 0;
    if (last) {
        sb_putn(&s->rem_str, json_string_value(last), json_string_length(last));
        set_prop(j, j->tmpl, last);
    }
}

/* Splits data on the delimiter (JavaScript String.prototype.split). */
static void split_string_delim(split_job *j, const char *data, size_t dlen)
{
    split_state *s = j->s;
    json_object_set(j->base, "ch", s->delim_ch);
    size_t cap = 16, n = 0;
    json_t **pieces = malloc(cap * sizeof *pieces);
    if (!pieces) return;
    const char *d = s->delim;
    size_t dl = s->delim_len, p = 0;
    for (;;) {
        const char *hit;
        if (dl == 0) hit = p < dlen ? data + u16_advance(data, dlen, p, 1) : NULL;
        else hit = memmem(data + p, dlen - p, d, dl);
        if (dl == 0 && !hit) break; /* "abc".split("") has no trailing piece */
        if (n == cap) {
            json_t **np = realloc(pieces, (cap *= 2) * sizeof *np);
            if (!np) break;
            pieces = np;
        }
        if (dl == 0) {
            size_t e = (size_t)(hit - data);
            pieces[n++] = str_piece(data + p, e - p);
            p = e;
            continue;
        }
        if (!hit) {
            pieces[n++] = str_piece(data + p, dlen - p);
            break;
        }
        pieces[n++] = str_piece(data + p, (size_t)(hit - data) - p);
        p = (size_t)(hit - data) + dl;
    }
    send_pieces(j, pieces, n);
    free(pieces);
    crm_node_done(j->n, j->tmpl);
    json_decref(j->tmpl);
}

static void split_string(split_job *j, const json_t *v)
{
    split_state *s = j->s;
    json_object_set_new(j->base, "type", json_string("string"));
    strbuf data = SB_INIT;
    if (s->rem_str.len) sb_putn(&data, s->rem_str.data, s->rem_str.len);
    sb_putn(&data, json_string_value(v), json_string_length(v));
    if (!data.data) sb_putn(&data, "", 0);
    if (s->type == SPLT_LEN) split_string_len(j, data.data, data.len);
    else split_string_delim(j, data.data, data.len);
    sb_free(&data);
}

/* ---- arrays and objects ----------------------------------------------------- */

static void split_array(split_job *j, json_t *arr)
{
    split_state *s = j->s;
    size_t len = json_array_size(arr), k = (size_t)s->array_chunk;
    size_t count = (len + k - 1) / k;
    json_object_set_new(j->base, "type", json_string("array"));
    json_object_set_new(j->base, "len", crm_num((double)k));
    for (size_t i = 0, pos = 0; i < count; i++, pos += k) {
        json_t *piece;
        if (k == 1) {
            piece = take_elem(j, json_array_get(arr, pos));
        } else {
            piece = json_array();
            for (size_t x = pos; x < pos + k && x < len; x++)
                json_array_append_new(piece, take_elem(j, json_array_get(arr, x)));
        }
        if (i + 1 == count) emit_last(j, piece, (double)i, (double)count, NULL);
        else emit(j, piece, (double)i, (double)count, NULL, false);
    }
    crm_node_done(j->n, j->tmpl);
    json_decref(j->tmpl);
}

/* JavaScript array-index keys ("0".."4294967294") come first, ascending. */
static bool index_key(const char *k, double *out)
{
    if (!*k || (k[0] == '0' && k[1])) return false;
    double v = 0;
    for (const char *p = k; *p; p++) {
        if (!isdigit((unsigned char)*p)) return false;
        v = v * 10 + (*p - '0');
        if (v > 4294967294.0) return false;
    }
    *out = v;
    return true;
}

typedef struct {
    const char *key;
    double idx;
    size_t order;
    bool is_index;
} okey;

static int okey_cmp(const void *a, const void *b)
{
    const okey *x = a, *y = b;
    if (x->is_index != y->is_index) return x->is_index ? -1 : 1;
    if (x->is_index) return x->idx < y->idx ? -1 : x->idx > y->idx;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void split_object(split_job *j, json_t *obj)
{
    split_state *s = j->s;
    size_t l = json_object_size(obj), i = 0;
    okey *keys = calloc(l ? l : 1, sizeof *keys);
    if (!keys) return;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        keys[i].key = k;
        keys[i].order = i;
        keys[i].is_index = index_key(k, &keys[i].idx);
        i++;
    }
    qsort(keys, l, sizeof *keys, okey_cmp);
    json_object_set_new(j->base, "type", json_string("object"));
    for (i = 0; i < l; i++) {
        if (*s->addname) json_object_set_new(j->tmpl, s->addname, json_string(keys[i].key));
        json_t *piece = take_elem(j, json_object_get(obj, keys[i].key));
        if (i + 1 == l) emit_last(j, piece, (double)i, (double)l, keys[i].key);
        else emit(j, piece, (double)i, (double)l, keys[i].key, false);
    }
    free(keys);
    crm_node_done(j->n, j->tmpl);
    json_decref(j->tmpl);
}

/* ---- Buffers ------------------------------------------------------------------- */

static void split_buffer_len(split_job *j, const unsigned char *b, size_t blen)
{
    split_state *s = j->s;
    size_t L = (size_t)s->chunk, count = (blen + L - 1) / L;
    if (!s->stream) s->c = 0;
    double cnt = s->stream ? -1 : (double)count;
    json_object_set_new(j->base, "len", crm_num((double)L));
    size_t pos = 0;
    for (size_t i = 0; i + 1 < count; i++, pos += L) emit(j, crm_buf_new(b + pos, L), s->c++, cnt, NULL, false);
    if (count > 1) flush_pending(s, j->n);
    size_t rlen = blen - pos;
    if (!s->stream || rlen == L) {
        emit_last(j, crm_buf_new(b + pos, rlen), s->c++, cnt, NULL);
        flush_pending(s, j->n);
        crm_node_done(j->n, j->tmpl);
        json_decref(j->tmpl);
        s->rem_buf.len = 0;
    } else {
        s->rem_buf.len = 0;
        sb_putn(&s->rem_buf, (const char *)b + pos, rlen);
        set_prop(j, j->tmpl, json_incref((json_t *)j->value));
        push_pending(s, j->tmpl);
        json_decref(j->tmpl);
    }
}

static const unsigned char *find_bytes(const unsigned char *b, size_t blen, size_t from, const char *d, size_t dl)
{
    if (dl == 0 || from > blen) return NULL; /* Node-RED would loop forever on an empty delimiter */
    return memmem(b + from, blen - from, d, dl);
}

static void split_buffer_delim(split_job *j, const unsigned char *b, size_t blen)
{
    split_state *s = j->s;
    const char *d = s->delim;
    size_t dl = s->delim_len;
    json_object_set(j->base, "ch", s->delim_ch);
    size_t count = 1;
    for (const unsigned char *h = find_bytes(b, blen, 0, d, dl); h; h = find_bytes(b, blen, (size_t)(h - b) + dl, d, dl))
        count++;
    if (!s->stream) s->c = 0;
    double cnt = s->stream ? -1 : (double)count;
    size_t p = 0;
    for (const unsigned char *h = find_bytes(b, blen, 0, d, dl); h; h = find_bytes(b, blen, p, d, dl)) {
        emit(j, crm_buf_new(b + p, (size_t)(h - b) - p), s->c++, cnt, NULL, false);
        p = (size_t)(h - b) + dl;
    }
    if (count > 1) flush_pending(s, j->n);
    bool rest_empty;
    if (!s->stream && p < blen) {
        double idx = s->c++;
        double c2 = s->c++;
        emit_last(j, crm_buf_new(b + p, blen - p), idx, c2, NULL);
        flush_pending(s, j->n);
        rest_empty = s->rem_buf.len == 0;
    } else {
        s->rem_buf.len = 0;
        sb_putn(&s->rem_buf, (const char *)b + p, blen - p);
        /* Node-RED keeps this done even when it also calls it below: it
         * fires again with the next flush. */
        set_prop(j, j->tmpl, json_incref((json_t *)j->value));
        push_pending(s, j->tmpl);
        rest_empty = s->rem_buf.len == 0;
    }
    if (rest_empty) crm_node_done(j->n, j->tmpl);
    json_decref(j->tmpl);
}

static void split_buffer(split_job *j, const json_t *v)
{
    split_state *s = j->s;
    size_t vlen;
    const unsigned char *vb = crm_buf_data(v, &vlen);
    strbuf all = SB_INIT;
    if (s->rem_buf.len) sb_putn(&all, s->rem_buf.data, s->rem_buf.len);
    sb_putn(&all, (const char *)vb, vlen);
    json_object_set_new(j->base, "type", json_string("buffer"));
    if (s->type == SPLT_LEN) split_buffer_len(j, (const unsigned char *)(all.data ? all.data : ""), all.len);
    else split_buffer_delim(j, (const unsigned char *)(all.data ? all.data : ""), all.len);
    sb_free(&all);
}

/* ---- input ------------------------------------------------------------------------ */

/* Mutates msg as Node-RED does before splitting: parts stacked, a new parts
 * id, _msgid removed. Fills j->base. */
static void prepare(split_job *j, json_t *msg)
{
    split_state *s = j->s;
    char id[17];
    j->base = json_object();
    json_t *old = json_object_get(msg, "parts");
    if (old) json_object_set(j->base, "parts", old);
    json_object_set_new(j->base, "id", json_string(crm_make_id(id)));
    if (strcmp(s->prop, "payload")) json_object_set_new(j->base, "property", json_string(s->prop));
    json_object_set(msg, "parts", json_null()); /* placeholder, keeps the key's place */
    json_object_del(msg, "_msgid");
    j->tmpl = msg;
}

static void split_input(crm_node *n, json_t *msg)
{
    split_state *s = crm_node_data(n);
    if (!s || s->broken) {
        json_decref(msg);
        return;
    }
    if (!s->path) {
        crm_node_error(n, msg, "%s", s->path_err ? s->path_err : "Invalid property expression");
        json_decref(msg);
        return;
    }
    bool throws = false;
    json_t *v = crm_path_get(s->path, msg, msg, &throws);
    if (throws) {
        crm_node_error(n, msg, "TypeError: Cannot read properties of undefined (reading '%s')", s->prop);
        json_decref(msg);
        return;
    }
    if (!v) { /* Node-RED does nothing at all, not even done */
        json_decref(msg);
        return;
    }
    split_job j = {.n = n, .s = s, .value = v};
    /* Whether the elements can move: only this message holds the value. */
    j.own = s->simple && msg->refcount == 1 && v->refcount == 1;
    json_incref(v);
    prepare(&j, msg);
    set_prop(&j, msg, json_incref(json_null()));
    if (json_is_string(v)) split_string(&j, v);
    else if (json_is_array(v)) split_array(&j, v);
    else if (crm_is_buf(v)) split_buffer(&j, v);
    else if (json_is_object(v) && !crm_is_handle(v)) split_object(&j, v);
    else {
        json_object_set(msg, "parts", j.base);
        set_prop(&j, msg, json_incref(v));
        crm_node_done(n, msg);
        json_decref(msg);
    }
    json_decref(j.base);
    json_decref(v);
}

const crm_node_type crm_type_split = {
    .abi = CRM_ABI_VERSION,
    .type = "split",
    .create = split_create,
    .input = split_input,
    .close = split_close,
};
