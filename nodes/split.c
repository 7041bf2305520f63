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
 *
 * A large input is sent SPLIT_BATCH parts per turn of the loop, continuing in
 * a job posted behind those parts, so memory stays bounded (a 1M-element
 * array: ~48 MB peak, the input itself being ~38 MB) instead of queueing a
 * million messages at once; inputs arriving meanwhile wait their turn.
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
    size_t proplen;
    crm_path *path;
    char *path_err;    /* a bad property expression fails per message */
    bool simple;       /* prop is one top-level key */
    /* stream state */
    double c;          /* running parts.index */
    strbuf rem_str;    /* string remainder */
    strbuf rem_buf;    /* Buffer remainder */
    json_t **pending;  /* messages whose done waits for their remainder */
    size_t npending, cappending;
    struct split_job *job; /* the input being emitted, when it spans several turns */
    json_t **waiting;  /* inputs that arrived meanwhile, in order */
    size_t headwait, nwait, capwait;
} split_state;

/* Parts are sent in batches of this many per turn of the loop: a larger
 * input continues in a job posted behind the parts just sent, so the loop's
 * FIFO holds about one batch (plus what downstream makes of it) instead of
 * every part at once. Up to this size the order of deliveries is exactly
 * Node-RED's. */
#define SPLIT_BATCH 1024

typedef struct {
    size_t off, len;
} span;

typedef struct {
    const char *key;
    double idx;
    size_t order;
    bool is_index;
} okey;

typedef enum { K_STR, K_BUF, K_ARR, K_OBJ } piece_kind;

/* One input being split. The handler owns one reference to tmpl (the input,
 * mutated as Node-RED mutates it); the tail consumes it (sends it as the last
 * part, keeps it for a later done, or drops it) and calls done while it is
 * still valid. Pieces 0..npieces-1 are sent in batches; the tail does what
 * Node-RED does after its loop. */
typedef struct split_job {
    crm_node *n;
    split_state *s;
    json_t *tmpl;      /* the input: no _msgid, placeholders at parts and the property */
    json_t *base;      /* parts without index/count/key */
    json_t *value;     /* the value being split */
    bool own;          /* nothing but this job reaches the value's elements */
    piece_kind kind;
    char *data;        /* STR/BUF: the bytes being split, remainder included */
    size_t dlen;
    span *spans;       /* STR/BUF: the pieces sent by the loop */
    size_t nspans, capspans;
    size_t rest;       /* STR/BUF: offset of what the tail deals with */
    size_t count;      /* the number Node-RED computed as count */
    okey *keys;        /* OBJ: keys in JavaScript order */
    size_t npieces, next;
    bool steal_last;   /* ARR/OBJ: the last piece moves the input */
    double cnt;        /* parts.count of the pieces, -1 for none */
    void (*tail)(struct split_job *);
} split_job;

/* ---- config helpers ------------------------------------------------------ */

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
    for (size_t i = 0; i < s->nwait; i++) json_decref(s->waiting[s->headwait + i]);
    free(s->waiting);
    free(s);
}

/* bin: a JSON array of byte values. Returns an error text or NULL. */
static char *read_bin_delim(split_state *s, const json_t *cfgv)
{
    const char *txt = json_is_string(cfgv) ? json_string_value(cfgv) : NULL;
    char *owned = NULL;
    if (!txt) txt = owned = crm_to_string(cfgv);
    json_t *arr = crm_parse(txt, strlen(txt), NULL, 0);
    strbuf e = SB_INIT;
    if (!arr) {
        char *m = crm_json_syntax_error(txt, strlen(txt));
        sb_puts(&e, m);
        free(m);
    } else if (!json_is_array(arr)) sb_puts(&e, "Error: not an array");
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
        double l = crm_parse_int_value(splt, 0);
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
    double a = as ? crm_parse_int_value(as, 0) : 1;
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
    s->proplen = s->prop ? strlen(s->prop) : 0;
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
        for (void *it = json_object_iter(base); it; it = json_object_iter_next(base, it))
            json_object_setn_new_nocheck(p, json_object_iter_key(it), json_object_iter_key_len(it),
                                         share_or_copy(json_object_iter_value(it)));
    }
    if (key) json_object_setn_new_nocheck(p, "key", 3, json_string_nocheck(key));
    json_object_setn_new_nocheck(p, "index", 5, crm_num(index));
    if (count >= 0) json_object_setn_new_nocheck(p, "count", 5, crm_num(count));
    return p;
}

/* Sets the split property of part to piece (stolen; NULL deletes it). */
static void set_prop(split_job *j, json_t *part, json_t *piece)
{
    split_state *s = j->s;
    if (s->simple) {
        if (piece) json_object_set_new_nocheck(part, s->prop, piece);
        else json_object_del(part, s->prop);
    } else if (crm_path_set(s->path, part, part, piece, piece != NULL) < 0) {
        json_decref(piece);
    }
}

/* Sends one part (piece stolen). With steal the input itself becomes the
 * part (the handler's reference goes with it): only for the last part. */
static void emit(split_job *j, json_t *piece, double index, double count, const char *key, bool steal)
{
    json_t *part;
    if (steal) {
        part = j->tmpl;
        json_object_set_new_nocheck(part, "parts", make_parts(j->base, true, index, count, key));
        set_prop(j, part, piece);
        crm_node_send(j->n, 0, part);
        return;
    }
    part = json_object();
    /* the piece goes at the split property's place in the copy (set once);
     * a piece to delete, or a property that is a path, after the copy */
    bool placed = false;
    for (void *it = json_object_iter(j->tmpl); it; it = json_object_iter_next(j->tmpl, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        if (kl == 5 && !memcmp(k, "parts", 5)) {
            json_object_setn_new_nocheck(part, k, kl, make_parts(j->base, false, index, count, key));
        } else if (j->s->simple && kl == j->s->proplen && !memcmp(k, j->s->prop, kl)) {
            if (piece && !placed) {
                json_object_setn_new_nocheck(part, k, kl, piece);
                placed = true;
            } else {
                json_object_setn_new_nocheck(part, k, kl, json_null());
            }
        } else if (kl == 3 && (!memcmp(k, "req", 3) || !memcmp(k, "res", 3))) {
            json_object_setn_new_nocheck(part, k, kl, json_incref(v)); /* shared, as cloneMessage does */
        } else {
            json_object_setn_new_nocheck(part, k, kl, share_or_copy(v));
        }
    }
    if (!placed) set_prop(j, part, piece);
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
    if (s->npending == s->cappending) {
        size_t cap = s->cappending ? s->cappending * 2 : 4;
        json_t **p = realloc(s->pending, cap * sizeof *p);
        if (!p) return;
        s->pending = p;
        s->cappending = cap;
    }
    s->pending[s->npending++] = json_incref(msg);
}

/* ---- the job: pieces in batches, then the tail ----------------------------- */

static void add_span(split_job *j, size_t off, size_t len)
{
    if (j->nspans == j->capspans) {
        size_t cap = j->capspans ? j->capspans * 2 : 16;
        span *p = realloc(j->spans, cap * sizeof *p);
        if (!p) return;
        j->spans = p;
        j->capspans = cap;
    }
    j->spans[j->nspans++] = (span){off, len};
}

static json_t *str_piece(const char *p, size_t l)
{
    json_t *v = json_stringn(p, l);
    return v ? v : json_stringn_nocheck(p, l);
}

static json_t *make_piece(split_job *j, size_t i, const char **key)
{
    size_t k = (size_t)j->s->array_chunk;
    switch (j->kind) {
    case K_STR:
        return str_piece(j->data + j->spans[i].off, j->spans[i].len);
    case K_BUF:
        return crm_buf_new(j->data + j->spans[i].off, j->spans[i].len);
    case K_ARR: {
        if (k == 1) return take_elem(j, json_array_get(j->value, i));
        json_t *slice = json_array();
        size_t len = json_array_size(j->value);
        for (size_t x = i * k; x < (i + 1) * k && x < len; x++)
            json_array_append_new(slice, take_elem(j, json_array_get(j->value, x)));
        return slice;
    }
    case K_OBJ:
        *key = j->keys[i].key;
        return take_elem(j, json_object_get(j->value, *key));
    }
    return NULL;
}

static void job_free(split_job *j)
{
    json_decref(j->base);
    json_decref(j->value);
    free(j->data);
    free(j->spans);
    free(j->keys);
    free(j);
}

static void handle_input(crm_node *n, split_state *s, json_t *msg);

/* Sends the next batch of pieces; at the end runs the tail and frees the
 * job. Returns false when it continues in a later turn. */
static bool job_run(split_job *j)
{
    split_state *s = j->s;
    size_t end = j->next + SPLIT_BATCH < j->npieces ? j->next + SPLIT_BATCH : j->npieces;
    for (; j->next < end; j->next++) {
        const char *key = NULL;
        json_t *piece = make_piece(j, j->next, &key);
        double idx = (j->kind == K_STR || j->kind == K_BUF) ? s->c++ : (double)j->next;
        if (key && *s->addname) json_object_set_new_nocheck(j->tmpl, s->addname, json_string_nocheck(key));
        if (j->steal_last && j->next + 1 == j->npieces) emit_last(j, piece, idx, j->cnt, key);
        else emit(j, piece, idx, j->cnt, key, false);
    }
    if (j->next < j->npieces) return false;
    if (j->tail) j->tail(j);
    job_free(j);
    return true;
}

static void job_continue(crm_node *n, void *arg)
{
    split_state *s = crm_node_data(n);
    split_job *j = arg;
    if (!s || s->job != j) return;
    if (!job_run(j)) {
        crm_node_post(n, job_continue, j);
        return;
    }
    s->job = NULL;
    while (!s->job && s->nwait) {
        json_t *m = s->waiting[s->headwait++];
        s->nwait--;
        handle_input(n, s, m);
    }
}

/* Runs a prepared job: in this turn if it fits in one batch, otherwise
 * continuing behind the parts it sent. */
static void job_start(split_job *j)
{
    if (job_run(j)) return;
    j->s->job = j;
    crm_node_post(j->n, job_continue, j);
}

/* ---- strings and Buffers ------------------------------------------------------- */

/* Byte length of the UTF-8 char starting with c. */
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

/* Advances byte offset pos by up to units UTF-16 units (a surrogate pair
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

/* Fixed-length chunks: the loop sends all but the last; the tail sends the
 * last or keeps it as the stream remainder. */
static void tail_len(split_job *j)
{
    split_state *s = j->s;
    if (j->count > 1) flush_pending(s, j->n);
    const char *rest = j->data + j->rest;
    size_t rlen = j->dlen - j->rest;
    bool str = j->kind == K_STR;
    bool whole = str ? u16_count(rest, rlen) == (size_t)s->chunk : rlen == (size_t)s->chunk;
    strbuf *rem = str ? &s->rem_str : &s->rem_buf;
    if (!s->stream || whole) {
        emit_last(j, str ? str_piece(rest, rlen) : crm_buf_new(rest, rlen), s->c++, j->cnt, NULL);
        flush_pending(s, j->n);
        crm_node_done(j->n, j->tmpl);
        rem->len = 0;
    } else {
        rem->len = 0;
        sb_putn(rem, rest, rlen);
        set_prop(j, j->tmpl, str ? str_piece(j->data, j->dlen) : json_incref(j->value));
        push_pending(s, j->tmpl);
    }
    json_decref(j->tmpl);
}

static void setup_len(split_job *j)
{
    split_state *s = j->s;
    size_t L = (size_t)s->chunk;
    bool str = j->kind == K_STR;
    if (str) json_object_set_new_nocheck(j->base, "ch", json_string_nocheck(""));
    json_object_set_new_nocheck(j->base, "len", crm_num((double)L));
    size_t units = str ? u16_count(j->data, j->dlen) : j->dlen;
    j->count = (units + L - 1) / L;
    if (!s->stream) s->c = 0;
    j->cnt = s->stream ? -1 : (double)j->count;
    size_t pos = 0;
    for (size_t i = 0; i + 1 < j->count; i++) {
        size_t end = str ? u16_advance(j->data, j->dlen, pos, L) : pos + L;
        add_span(j, pos, end - pos);
        pos = end;
    }
    j->rest = pos;
    j->npieces = j->nspans;
    j->tail = tail_len;
}

/* Node-RED's sendArray after its loop: the last piece is sent (count and
 * index reset) or becomes the stream remainder. No piece at all ("".split
 * on an empty delimiter) sends one part with the property undefined. */
static void tail_str_delim(split_job *j)
{
    split_state *s = j->s;
    json_t *last = j->count ? str_piece(j->data + j->rest, j->dlen - j->rest) : NULL;
    if (!s->stream) {
        emit_last(j, last, s->c++, (double)j->count, NULL);
        s->c = 0;
    } else {
        s->rem_str.len = 0;
        if (last) {
            sb_putn(&s->rem_str, json_string_value(last), json_string_length(last));
            set_prop(j, j->tmpl, last);
        }
    }
    crm_node_done(j->n, j->tmpl);
    json_decref(j->tmpl);
}

/* JavaScript String.prototype.split on the delimiter. */
static void setup_str_delim(split_job *j)
{
    split_state *s = j->s;
    json_object_set_nocheck(j->base, "ch", s->delim_ch);
    const char *d = s->delim, *data = j->data;
    size_t dl = s->delim_len, dlen = j->dlen, p = 0;
    if (dl == 0) { /* one piece per character; "" gives none */
        while (p < dlen) {
            size_t e = u16_advance(data, dlen, p, 1);
            add_span(j, p, e - p);
            p = e;
        }
        j->count = j->nspans;
        if (j->nspans) j->rest = j->spans[--j->nspans].off;
    } else {
        const char *hit;
        while ((hit = memmem(data + p, dlen - p, d, dl))) {
            add_span(j, p, (size_t)(hit - data) - p);
            p = (size_t)(hit - data) + dl;
        }
        j->rest = p;
        j->count = j->nspans + 1;
    }
    j->npieces = j->nspans;
    j->cnt = s->stream ? -1 : (double)j->count;
    j->tail = tail_str_delim;
}

static const char *find_bytes(const char *b, size_t blen, size_t from, const char *d, size_t dl)
{
    if (dl == 0 || from > blen) return NULL; /* Node-RED would loop forever on an empty delimiter */
    return memmem(b + from, blen - from, d, dl);
}

/* After the pieces that end in a delimiter: what follows the last delimiter
 * is sent (non-stream; count = index + 1) or kept. A Buffer ending with the
 * delimiter sends nothing more, though count included an empty piece. */
static void tail_buf_delim(split_job *j)
{
    split_state *s = j->s;
    if (j->count > 1) flush_pending(s, j->n);
    size_t p = j->rest;
    if (!s->stream && p < j->dlen) {
        double idx = s->c++;
        double c2 = s->c++;
        emit_last(j, crm_buf_new(j->data + p, j->dlen - p), idx, c2, NULL);
        flush_pending(s, j->n);
    } else {
        s->rem_buf.len = 0;
        sb_putn(&s->rem_buf, j->data + p, j->dlen - p);
        /* Node-RED keeps this done even when it also calls it below: it
         * fires again with the next flush. */
        set_prop(j, j->tmpl, json_incref(j->value));
        push_pending(s, j->tmpl);
    }
    if (s->rem_buf.len == 0) crm_node_done(j->n, j->tmpl);
    json_decref(j->tmpl);
}

static void setup_buf_delim(split_job *j)
{
    split_state *s = j->s;
    json_object_set_nocheck(j->base, "ch", s->delim_ch);
    size_t p = 0;
    for (const char *h = find_bytes(j->data, j->dlen, 0, s->delim, s->delim_len); h;
         h = find_bytes(j->data, j->dlen, p, s->delim, s->delim_len)) {
        add_span(j, p, (size_t)(h - j->data) - p);
        p = (size_t)(h - j->data) + s->delim_len;
    }
    j->rest = p;
    j->count = j->nspans + 1;
    if (!s->stream) s->c = 0;
    j->cnt = s->stream ? -1 : (double)j->count;
    j->npieces = j->nspans;
    j->tail = tail_buf_delim;
}

/* The text or bytes to split: the stream remainder, then the value. */
static int load_data(split_job *j, strbuf *rem, const char *v, size_t vlen)
{
    j->dlen = rem->len + vlen;
    j->data = malloc(j->dlen + 1);
    if (!j->data) return -1;
    if (rem->len) memcpy(j->data, rem->data, rem->len);
    if (vlen) memcpy(j->data + rem->len, v, vlen);
    j->data[j->dlen] = '\0';
    return 0;
}

/* ---- arrays and objects ----------------------------------------------------- */

static void tail_done(split_job *j)
{
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

static int okey_cmp(const void *a, const void *b)
{
    const okey *x = a, *y = b;
    if (x->is_index != y->is_index) return x->is_index ? -1 : 1;
    if (x->is_index) return x->idx < y->idx ? -1 : x->idx > y->idx;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int setup_object(split_job *j)
{
    size_t l = json_object_size(j->value), i = 0;
    j->keys = calloc(l ? l : 1, sizeof *j->keys);
    if (!j->keys) return -1;
    const char *k;
    json_t *v;
    json_object_foreach(j->value, k, v) {
        j->keys[i].key = k;
        j->keys[i].order = i;
        j->keys[i].is_index = index_key(k, &j->keys[i].idx);
        i++;
    }
    qsort(j->keys, l, sizeof *j->keys, okey_cmp);
    json_object_set_new_nocheck(j->base, "type", json_string_nocheck("object"));
    j->npieces = l;
    j->cnt = (double)l;
    return 0;
}

/* ---- input ------------------------------------------------------------------------ */

/* Mutates msg as Node-RED does before splitting: parts stacked, a new parts
 * id, _msgid removed. */
static void prepare(split_job *j, json_t *msg)
{
    split_state *s = j->s;
    char id[17];
    j->base = json_object();
    json_t *old = json_object_get(msg, "parts");
    if (old) json_object_set_nocheck(j->base, "parts", old);
    json_object_set_new_nocheck(j->base, "id", json_string_nocheck(crm_make_id(id)));
    if (strcmp(s->prop, "payload")) json_object_set_new_nocheck(j->base, "property", json_string_nocheck(s->prop));
    json_object_set_nocheck(msg, "parts", json_null()); /* placeholder, keeps the key's place */
    json_object_del(msg, "_msgid");
    j->tmpl = msg;
    set_prop(j, msg, json_incref(json_null()));
}

/* Sets the job up for the kind of value; false for values that are not
 * split (the message is dropped, done called). */
static bool setup_kind(split_job *j)
{
    split_state *s = j->s;
    json_t *v = j->value;
    if (json_is_string(v)) {
        j->kind = K_STR;
        json_object_set_new_nocheck(j->base, "type", json_string_nocheck("string"));
        if (load_data(j, &s->rem_str, json_string_value(v), json_string_length(v)) < 0) return false;
        if (s->type == SPLT_LEN) setup_len(j);
        else setup_str_delim(j);
    } else if (json_is_array(v)) {
        size_t k = (size_t)s->array_chunk;
        j->kind = K_ARR;
        json_object_set_new_nocheck(j->base, "type", json_string_nocheck("array"));
        json_object_set_new_nocheck(j->base, "len", crm_num((double)k));
        j->npieces = (json_array_size(v) + k - 1) / k;
        j->cnt = (double)j->npieces;
        j->steal_last = true;
        j->tail = tail_done;
    } else if (crm_is_buf(v)) {
        size_t vlen;
        const unsigned char *vb = crm_buf_data(v, &vlen);
        j->kind = K_BUF;
        json_object_set_new_nocheck(j->base, "type", json_string_nocheck("buffer"));
        if (load_data(j, &s->rem_buf, (const char *)vb, vlen) < 0) return false;
        if (s->type == SPLT_LEN) setup_len(j);
        else setup_buf_delim(j);
    } else if (json_is_object(v) && !crm_is_handle(v)) {
        j->kind = K_OBJ;
        if (setup_object(j) < 0) return false;
        j->steal_last = true;
        j->tail = tail_done;
    } else {
        return false;
    }
    return true;
}

static void handle_input(crm_node *n, split_state *s, json_t *msg)
{
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
    split_job *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(msg);
        return;
    }
    j->n = n;
    j->s = s;
    /* the elements can move to the parts when only this message holds them */
    j->own = s->simple && msg->refcount == 1 && v->refcount == 1;
    j->value = json_incref(v);
    prepare(j, msg);
    if (!setup_kind(j)) {
        json_object_set_nocheck(msg, "parts", j->base);
        set_prop(j, msg, json_incref(j->value));
        /* null is an object to JavaScript: Node-RED's Object.keys throws */
        if (json_is_null(j->value)) crm_node_error(n, msg, "TypeError: Cannot convert undefined or null to object");
        else crm_node_done(n, msg);
        json_decref(msg);
        job_free(j);
        return;
    }
    job_start(j);
}

static void split_input(crm_node *n, json_t *msg)
{
    split_state *s = crm_node_data(n);
    if (!s || s->broken) {
        json_decref(msg);
        return;
    }
    if (s->job) { /* an input is still being sent: keep the order */
        if (s->headwait + s->nwait == s->capwait) {
            if (s->headwait) {
                memmove(s->waiting, s->waiting + s->headwait, s->nwait * sizeof *s->waiting);
                s->headwait = 0;
            } else {
                size_t cap = s->capwait ? s->capwait * 2 : 8;
                json_t **p = realloc(s->waiting, cap * sizeof *p);
                if (!p) {
                    json_decref(msg);
                    return;
                }
                s->waiting = p;
                s->capwait = cap;
            }
        }
        s->waiting[s->headwait + s->nwait++] = msg;
        return;
    }
    handle_input(n, s, msg);
}

static void split_close(crm_node *n)
{
    split_state *s = crm_node_data(n);
    if (s && s->job) {
        json_decref(s->job->tmpl);
        job_free(s->job);
    }
    split_free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_split = {
    .abi = CRM_ABI_VERSION,
    .type = "split",
    .create = split_create,
    .input = split_input,
    .close = split_close,
};
