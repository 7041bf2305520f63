/* csv.c: the Node-RED "csv" node (core/parsers/70-CSV.js, 4.1.15).
 *
 * Two parsers, as in Node-RED: the RFC 4180 one (`spec: "rfc"`, the
 * default for new nodes; runtime/csv/csv.c) and the legacy character
 * loop kept for older flows, with its quirks (a separator at the very start
 * of the text is a TypeError, numbers are recognised by a regular
 * expression, column names cleaned of every quote). Both turn a string into
 * objects (one message per row with msg.parts, or one array) and objects or
 * arrays into CSV text.
 *
 * The column template is state shared by both directions, as Node-RED's
 * closure variable is: a header row read in, msg.columns or the keys of the
 * first object written out replace it until something replaces it again.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "net/netutil.h"
#include "csv/csv.h"
#include "strbuf.h"

/* A list of column names; an entry may be NULL (a null header cell). */
typedef struct {
    char **v;
    size_t n;
} names;

typedef struct {
    bool rfc;
    bool broken;       /* rfc: a bad template leaves the node without input handler */
    char *temp;        /* n.temp */
    char *sep, *ret;
    bool one;          /* multi === "one" */
    bool hdrin;        /* hdrin === true */
    bool hdrin_truthy;
    int hdrout;        /* 0 none, 1 all, 2 once */
    double skip;
    bool parsestrings; /* strings === true (undefined: true) */
    bool incl_empty, incl_null;
    names tmpl;
    bool goodtmpl;
    bool notemplate;   /* the configured template names no column */
    names cfg_tmpl;    /* rfc: the configured template, parsed */
    bool cfg_good;
    bool hdr_sent;
    bool warn_once;    /* the "no template" warning is still to be given */
    char *re_sep;      /* legacy: the separator of the last clean() */
    json_t *store;     /* mult with parts: rows gathered so far */
    strbuf hdr_text;   /* rfc: the last msg.columns text, and its string, */
    json_t *hdr;       /* shared by the messages while the columns stay the same */
    names hdr_names;   /* the names hdr was made of */
    strbuf out_text;   /* rfc: buffers reused from message to message */
    csv_flat flat;
    const char *quoteables[5]; /* rfc, object to CSV: the separator, quote, LF, CR */
    csv_quoting quoting;       /* ... prepared once */
    /* the members of the message being handled, found by one walk over a
     * message of a few members (walk_msg) instead of a hashed lookup each;
     * valid while ok and until a member of msg is deleted */
    struct {
        bool ok;
        void *payload_it, *columns_it, *parts_it;
        json_t *reset, *msgid;
    } mk;
} csv_state;

/* ---- small helpers ------------------------------------------------------- */

static void walk_msg(csv_state *s, json_t *msg)
{
    memset(&s->mk, 0, sizeof s->mk);
    if (json_object_size(msg) > 16) return;
    for (void *it = json_object_iter(msg); it; it = json_object_iter_next(msg, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        switch (kl) {
        case 5:
            if (!memcmp(k, "parts", 5)) s->mk.parts_it = it;
            else if (!memcmp(k, "reset", 5)) s->mk.reset = json_object_iter_value(it);
            break;
        case 6:
            if (!memcmp(k, "_msgid", 6)) s->mk.msgid = json_object_iter_value(it);
            break;
        case 7:
            if (!memcmp(k, "payload", 7)) s->mk.payload_it = it;
            else if (!memcmp(k, "columns", 7)) s->mk.columns_it = it;
            break;
        }
    }
    s->mk.ok = true;
}

/* msg.parts, msg.columns, msg.payload of the message walked, or by name */
static json_t *msg_member(const csv_state *s, json_t *msg, void *it, const char *key)
{
    if (s->mk.ok) return it ? json_object_iter_value(it) : NULL;
    return json_object_get(msg, key);
}
#define MSG_PARTS(s, msg) msg_member((s), (msg), (s)->mk.parts_it, "parts")
#define MSG_COLUMNS(s, msg) msg_member((s), (msg), (s)->mk.columns_it, "columns")
#define MSG_PAYLOAD(s, msg) msg_member((s), (msg), (s)->mk.payload_it, "payload")

/* msg[key] = v (stolen), at the member's place when the walk found it */
static void msg_set(csv_state *s, json_t *msg, void *it, const char *key, json_t *v)
{
    if (s->mk.ok && it) json_object_iter_set_new(msg, it, v);
    else json_object_set_new_nocheck(msg, key, v);
}

static void names_free(names *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static void names_push(names *t, char *s /* stolen */)
{
    t->v = realloc(t->v, (t->n + 1) * sizeof *t->v);
    t->v[t->n++] = s;
}

static void names_set(names *t, size_t i, const char *s)
{
    while (t->n <= i) names_push(t, NULL);
    free(t->v[i]);
    t->v[i] = strdup(s);
}

/* hasTemplate(): something other than [] or [""]. */
static bool has_template(const names *t)
{
    return t->n > 0 && !(t->n == 1 && t->v[0] && !t->v[0][0]);
}

static void names_one_empty(names *t)
{
    names_free(t);
    names_push(t, strdup(""));
}

/* "\\t", "\\n", "\\r" as typed in the editor become the characters. */
static char *unescape(const char *s, bool tab)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 'r' || (tab && p[1] == 't'))) {
            sb_putc(&sb, p[1] == 'n' ? '\n' : p[1] == 'r' ? '\r' : '\t');
            p++;
        } else {
            sb_putc(&sb, *p);
        }
    }
    return sb_take(&sb);
}

/* RED.util.ensureString: Buffers as text, objects as JSON, the rest String(). */
static char *ensure_string(const json_t *v)
{
    if (!v) return strdup("undefined");
    if (crm_is_buf(v)) return crm_to_string(v);
    if (json_is_object(v) || json_is_array(v) || json_is_null(v)) return crm_stringify(v, 0);
    return crm_to_string(v);
}

/* Whether a JavaScript value is typeof "object" (null, arrays, objects, Buffers). */
static bool js_object(const json_t *v)
{
    return v && (json_is_object(v) || json_is_array(v) || json_is_null(v));
}

static double js_num(const json_t *v)
{
    return v && json_is_number(v) ? crm_num_value(v) : NAN;
}

/* ---- config --------------------------------------------------------------- */

static void legacy_clean(csv_state *s, const char *col, const char *sep, names *out);
static int rfc_columns(csv_state *s, const char *col, const char *sep, names *out, char **err);

static int csv_create(crm_node *n, const json_t *cfg)
{
    csv_state *s = calloc(1, sizeof *s);
    crm_node_set_data(n, s);
    s->rfc = !strcmp(crm_cfg_str(cfg, "spec", ""), "rfc");
    const char *temp = crm_cfg_str(cfg, "temp", "");
    s->temp = strdup(temp);
    const char *sep = crm_cfg_str(cfg, "sep", "");
    s->sep = unescape(*sep ? sep : ",", true);
    const char *ret = crm_cfg_str(cfg, "ret", "");
    s->ret = unescape(*ret ? ret : (s->rfc ? "\r\n" : "\n"), false);
    s->quoteables[0] = s->sep;
    s->quoteables[1] = "\"";
    s->quoteables[2] = "\n";
    s->quoteables[3] = "\r";
    s->quoteables[4] = NULL;
    csv_quoting_init(&s->quoting, s->quoteables);
    const char *multi = crm_cfg_str(cfg, "multi", "");
    s->one = !*multi || !strcmp(multi, "one");
    json_t *hdrin = json_object_get(cfg, "hdrin");
    s->hdrin = json_is_true(hdrin);
    s->hdrin_truthy = crm_truthy(hdrin);
    json_t *hdrout = json_object_get(cfg, "hdrout");
    s->hdrout = 0;
    if (json_is_true(hdrout)) s->hdrout = 1;
    else if (json_is_string(hdrout) && !strcmp(json_string_value(hdrout), "all")) s->hdrout = 1;
    else if (json_is_string(hdrout) && !strcmp(json_string_value(hdrout), "once")) s->hdrout = 2;
    else if (json_is_string(hdrout) && *json_string_value(hdrout) && strcmp(json_string_value(hdrout), "none"))
        s->hdrout = 3; /* an unknown word: Node-RED's legacy mode sends headers (!== "none") */
    json_t *skip = json_object_get(cfg, "skip");
    s->skip = 0;
    if (crm_truthy(skip)) {
        char *t = crm_to_string(skip);
        const char *p = t;
        while (isspace((unsigned char)*p)) p++;
        char *end;
        double d = strtod(p, &end);
        s->skip = end == p ? NAN : trunc(d);
        free(t);
    }
    json_t *strings = json_object_get(cfg, "strings");
    s->parsestrings = !strings || json_is_true(strings);
    s->incl_empty = crm_truthy(json_object_get(cfg, "include_empty_strings"));
    s->incl_null = crm_truthy(json_object_get(cfg, "include_null_values"));
    s->goodtmpl = true;
    s->warn_once = true;
    s->store = json_array();
    if (!s->rfc) {
        s->re_sep = strdup(s->sep);
        legacy_clean(s, s->temp, ",", &s->tmpl);
        s->notemplate = s->tmpl.n == 1 && !s->tmpl.v[0][0];
    } else {
        char *err = NULL;
        if (rfc_columns(s, s->temp, ",", &s->tmpl, &err) < 0) {
            free(err);
            crm_node_warn(n, "Malformed columns template.");
            crm_node_status(n, "red", "dot", "Malformed columns template.");
            s->broken = true;
        } else if (!s->goodtmpl) {
            names_one_empty(&s->tmpl);
        }
        s->cfg_good = s->goodtmpl;
        for (size_t i = 0; i < s->tmpl.n; i++) names_push(&s->cfg_tmpl, s->tmpl.v[i] ? strdup(s->tmpl.v[i]) : NULL);
        s->notemplate = !has_template(&s->tmpl);
    }
    return 0;
}

static void csv_close(crm_node *n)
{
    csv_state *s = crm_node_data(n);
    if (!s) return;
    names_free(&s->tmpl);
    names_free(&s->cfg_tmpl);
    free(s->temp);
    free(s->sep);
    free(s->ret);
    free(s->re_sep);
    json_decref(s->store);
    sb_free(&s->hdr_text);
    names_free(&s->hdr_names);
    sb_free(&s->out_text);
    csv_flat_free(&s->flat);
    json_decref(s->hdr);
    free(s);
}

/* ---- the legacy parser --------------------------------------------------- */

/* clean(col, sep): split on the separator outside quotes (an even number of
 * quotes follows it), drop every quote, trim. */
static void legacy_clean(csv_state *s, const char *col, const char *sep, names *out)
{
    if (sep) {
        free(s->re_sep);
        s->re_sep = strdup(sep);
    }
    const char *rs = s->re_sep;
    size_t rl = strlen(rs);
    names_free(out);
    /* trim */
    const char *b = col, *e = col + strlen(col);
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    size_t quotes = 0;
    for (const char *p = b; p < e; p++) quotes += *p == '"';
    size_t seen = 0;
    const char *start = b;
    for (const char *p = b; p <= e; p++) {
        bool split = false;
        if (p < e && rl && (size_t)(e - p) >= rl && !memcmp(p, rs, rl) && (quotes - seen) % 2 == 0) split = true;
        if (p == e || split) {
            strbuf sb = SB_INIT;
            sb_puts(&sb, "");
            for (const char *q = start; q < p; q++)
                if (*q != '"') sb_putc(&sb, *q);
            char *piece = sb_take(&sb);
            char *pb = piece, *pe = piece + strlen(piece);
            while (pb < pe && isspace((unsigned char)*pb)) pb++;
            while (pe > pb && isspace((unsigned char)pe[-1])) pe--;
            names_push(out, strndup(pb, (size_t)(pe - pb)));
            free(piece);
            if (p == e) break;
            p += rl - 1;
            start = p + 1;
            continue;
        }
        if (*p == '"') seen++;
    }
    s->goodtmpl = !(out->n == 1 && !out->v[0][0]);
}

/* The legacy number test /^[-]?(?!E)(?!0\d)\d*\.?\d*(E-?\+?)?\d+$/i on the
 * trimmed text. */
static bool legacy_is_number(const char *t)
{
    const char *p = t;
    if (*p == '-') p++;
    if (*p == 'e' || *p == 'E') return false;
    if (p[0] == '0' && isdigit((unsigned char)p[1])) return false;
    /* \d*\.?\d*(E-?\+?)?\d+$ : try every split; the text is short */
    size_t n = strlen(p);
    /* simple matcher: digits, optional dot, digits, optional exponent, then
     * at least one digit must end it */
    size_t i = 0;
    while (i < n && isdigit((unsigned char)p[i])) i++;
    if (i < n && p[i] == '.') i++;
    while (i < n && isdigit((unsigned char)p[i])) i++;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && p[i] == '-') i++;
        if (i < n && p[i] == '+') i++;
        size_t d = i;
        while (i < n && isdigit((unsigned char)p[i])) i++;
        return i == n && i > d;
    }
    if (i != n || n == 0) return false;
    return isdigit((unsigned char)p[n - 1]);
}

static char *js_trim(const char *s)
{
    const char *b = s, *e = s + strlen(s);
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    return strndup(b, (size_t)(e - b));
}

static void legacy_store(csv_state *s, json_t *o, size_t j, strbuf *k, bool is_null)
{
    if (j >= s->tmpl.n || !s->tmpl.v[j] || !s->tmpl.v[j][0]) return;
    const char *key = s->tmpl.v[j];
    if (is_null) {
        if (s->incl_null) json_object_set_new(o, key, json_null());
        return;
    }
    const char *v = k->data ? k->data : "";
    if (s->parsestrings) {
        char *t = js_trim(v);
        if (legacy_is_number(t)) {
            json_object_set_new(o, key, crm_num(strtod(t, NULL)));
            free(t);
            return;
        }
        free(t);
    }
    if (!*v) {
        if (s->incl_empty) json_object_set_new(o, key, json_string(""));
        return;
    }
    json_object_set_new(o, key, json_string(v));
}

static size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

static json_t *columns_legacy(const names *t)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    bool first = true;
    for (size_t i = 0; i < t->n; i++) {
        const char *v = t->v[i];
        if (!v || !*v) continue;
        if (!first) sb_putc(&sb, ',');
        first = false;
        if (strchr(v, ',')) sb_printf(&sb, "\"%s\"", v);
        else sb_puts(&sb, v);
    }
    char *c = sb_take(&sb);
    json_t *r = json_string(c);
    free(c);
    return r;
}

static void send_rows(crm_node *n, csv_state *s, json_t *msg, json_t *rows, json_t *columns, bool has_parts,
                      bool last);

static void legacy_parse(crm_node *n, csv_state *s, json_t *msg, const char *line, size_t len)
{
    bool f = true;
    size_t j = 0;
    size_t kcap = 8;
    strbuf *k = calloc(kcap, sizeof *k);
    bool *knull = calloc(kcap, sizeof *knull);
    json_t *o = json_object();
    json_t *a = json_array();
    bool first = true, last = false;
    json_t *parts = json_object_get(msg, "parts");
    bool has_parts = parts != NULL;
    double linecount = 0;
    strbuf tmp = SB_INIT;
    sb_puts(&tmp, "");
    if (has_parts) {
        double idx = js_num(json_object_get(parts, "index"));
        linecount = idx;
        if (idx > s->skip) first = false;
        json_t *cnt = json_object_get(parts, "count");
        if (cnt && idx + 1 >= js_num(cnt)) last = true;
    }
    size_t nocr = 0;
    for (size_t i = 0; i < len; i++) nocr += line[i] == '\r' || line[i] == '\n';
    if (has_parts && !s->one && nocr > 1) first = true;
    const char *sep = s->sep;
    size_t seplen = strlen(sep);
    bool sep_char = seplen && seplen == u8len((unsigned char)sep[0]) && seplen < 4;
    const char *prev = NULL; /* line[i-1] */
    size_t prevlen = 0;
    char *error = NULL;
#define K_RESET(idx) do { while ((idx) >= kcap) { k = realloc(k, kcap * 2 * sizeof *k); knull = realloc(knull, kcap * 2 * sizeof *knull); memset(k + kcap, 0, kcap * sizeof *k); memset(knull + kcap, 0, kcap * sizeof *knull); kcap *= 2; } } while (0)
#define IS(p, pl, c) ((p) && (pl) == 1 && *(p) == (c))
#define IS_SEP(p, pl) ((p) && sep_char && (pl) == seplen && !memcmp((p), sep, seplen))
    sb_puts(&k[0], "");
    for (size_t i = 0; i < len;) {
        const char *c = line + i;
        size_t cl = u8len((unsigned char)*c);
        if (i + cl > len) cl = len - i;
        bool is_last = i + cl == len;
        if (first && linecount < s->skip) {
            if (*c == '\n') linecount += 1;
        } else if (s->hdrin && first) {
            if (*c == '\n' || *c == '\r' || is_last) {
                if (is_last) sb_putn(&tmp, c, cl);
                legacy_clean(s, tmp.data, s->sep, &s->tmpl);
                first = false;
            } else {
                sb_putn(&tmp, c, cl);
            }
        } else if (*c == '"') {
            f = !f;
            if (IS(prev, prevlen, '"') && !f) {
                if (knull[j]) { sb_puts(&k[j], "null"); knull[j] = false; }
                sb_putc(&k[j], '"');
            }
        } else if (IS_SEP(c, cl) && f) {
            if (!s->goodtmpl) {
                char nm[32];
                snprintf(nm, sizeof nm, "col%zu", j + 1);
                names_set(&s->tmpl, j, nm);
            }
            if (j < s->tmpl.n && s->tmpl.v[j] && s->tmpl.v[j][0]) {
                if (!prev) {
                    error = strdup("TypeError: Cannot read properties of undefined (reading 'includes')");
                    break;
                }
                if (IS_SEP(prev, prevlen) || IS(prev, prevlen, '\n')) knull[j] = true;
                legacy_store(s, o, j, &k[j], knull[j]);
            }
            j++;
            K_RESET(j);
            sb_free(&k[j]);
            sb_puts(&k[j], "");
            knull[j] = is_last;
        } else if ((*c == '\n' || *c == '\r') && f) {
            if (!s->goodtmpl) {
                char nm[32];
                snprintf(nm, sizeof nm, "col%zu", j + 1);
                names_set(&s->tmpl, j, nm);
            }
            if (j < s->tmpl.n && s->tmpl.v[j] && s->tmpl.v[j][0]) {
                if (IS_SEP(prev, prevlen)) knull[j] = true;
                legacy_store(s, o, j, &k[j], knull[j]);
            }
            if (json_object_size(o)) json_array_append(a, o);
            json_decref(o);
            o = json_object();
            for (size_t x = 0; x <= j && x < kcap; x++) { sb_free(&k[x]); knull[x] = false; }
            j = 0;
            sb_puts(&k[0], "");
            f = true;
        } else {
            if (knull[j]) { sb_puts(&k[j], "null"); knull[j] = false; }
            sb_putn(&k[j], c, cl);
        }
        prev = c;
        prevlen = cl;
        i += cl;
    }
    if (error) {
        crm_node_error(n, msg, "%s", error);
        free(error);
        goto out;
    }
    if (!f) crm_node_warn(n, "Malformed CSV data - output probably corrupt.");
    if (!s->goodtmpl) {
        char nm[32];
        snprintf(nm, sizeof nm, "col%zu", j + 1);
        names_set(&s->tmpl, j, nm);
    }
    if (j < s->tmpl.n && s->tmpl.v[j] && s->tmpl.v[j][0]) legacy_store(s, o, j, &k[j], knull[j]);
    if (json_object_size(o)) json_array_append(a, o);

    if (!s->one) {
        if (has_parts && nocr <= 1) {
            if (json_object_size(o)) json_array_append(s->store, o);
            double idx = js_num(json_object_get(parts, "index"));
            double cnt = js_num(json_object_get(parts, "count"));
            if (idx + 1 == cnt) {
                json_object_set(msg, "payload", s->store);
                json_decref(s->store);
                s->store = json_array();
                json_object_set_new(msg, "columns", columns_legacy(&s->tmpl));
                json_object_del(msg, "parts");
                crm_node_send(n, 0, json_incref(msg));
            }
        } else {
            json_object_set(msg, "payload", a);
            json_object_set_new(msg, "columns", columns_legacy(&s->tmpl));
            crm_node_send(n, 0, json_incref(msg));
        }
        crm_node_done(n, msg);
    } else {
        send_rows(n, s, msg, a, columns_legacy(&s->tmpl), has_parts, last);
    }
out:
    for (size_t x = 0; x < kcap; x++) sb_free(&k[x]);
    free(k);
    free(knull);
    sb_free(&tmp);
    json_decref(o);
    json_decref(a);
#undef K_RESET
#undef IS
#undef IS_SEP
}

/* One message per row (multi "one"): rows is borrowed, columns stolen. Calls done. */
static void send_rows(crm_node *n, csv_state *s, json_t *msg, json_t *rows, json_t *columns, bool has_parts,
                      bool last)
{
    size_t len = json_array_size(rows);
    const char *id = json_string_value(s->mk.ok ? s->mk.msgid : json_object_get(msg, "_msgid"));
    for (size_t i = 0; i < len; i++) {
        /* a copy of msg per row (RED.util.cloneMessage); the last row may take
         * msg itself when nothing else holds it and no complete node will
         * read it after the sends */
        json_t *m = i + 1 == len && msg->refcount == 1 && !crm_node_watched(n) ? json_incref(msg) : crm_msg_clone(msg);
        if (m == msg) { /* the members walked are msg's */
            msg_set(s, m, s->mk.columns_it, "columns", json_incref(columns));
            msg_set(s, m, s->mk.payload_it, "payload", json_incref(json_array_get(rows, i)));
        } else {
            json_object_set_nocheck(m, "columns", columns);
            json_object_set_nocheck(m, "payload", json_array_get(rows, i));
        }
        if (!has_parts) {
            json_t *p = json_object();
            if (id) json_object_set_new_nocheck(p, "id", json_string(id));
            json_object_set_new_nocheck(p, "index", crm_num((double)i));
            json_object_set_new_nocheck(p, "count", crm_num((double)len));
            json_object_set_new_nocheck(m, "parts", p);
        } else {
            json_t *p = json_object_get(m, "parts");
            if (json_is_object(p)) {
                double idx = js_num(json_object_get(p, "index")) - s->skip;
                double cnt = js_num(json_object_get(p, "count")) - s->skip;
                if (s->hdrin_truthy) {
                    idx -= 1;
                    cnt -= 1;
                }
                json_object_set_new_nocheck(p, "index", crm_num(idx));
                json_object_set_new_nocheck(p, "count", crm_num(cnt));
            }
        }
        if (last) json_object_set_new_nocheck(m, "complete", json_true());
        crm_node_send(n, 0, m);
    }
    if (has_parts && last && len == 0) {
        json_t *m = json_object();
        json_object_set_new_nocheck(m, "complete", json_true());
        crm_node_send(n, 0, m);
    }
    json_decref(columns);
    crm_node_done(n, msg);
}

/* ---- object to CSV ------------------------------------------------------------ */

/* Legacy quoting: quotes doubled and wrapped; a separator or newline wraps. */
static void legacy_cell(strbuf *sb, const char *q, const char *sep, bool nl)
{
    if (strchr(q, '"')) {
        sb_putc(sb, '"');
        for (const char *p = q; *p; p++) {
            if (*p == '"') sb_putc(sb, '"');
            sb_putc(sb, *p);
        }
        sb_putc(sb, '"');
    } else if ((*sep && strstr(q, sep)) || nl) {
        sb_printf(sb, "\"%s\"", q);
    } else {
        sb_puts(sb, q);
    }
}

static void keys_of(const json_t *v, names *out)
{
    if (json_is_object(v) && !crm_is_buf(v)) {
        crm_entry buf[32], *ents;
        size_t ne = crm_js_entries(v, buf, 32, &ents);
        /* the rows of a message usually have the names of the row before */
        bool same = ne == out->n;
        for (size_t i = 0; same && i < ne; i++)
            same = out->v[i] && strlen(out->v[i]) == ents[i].len && !memcmp(out->v[i], ents[i].key, ents[i].len);
        if (!same) {
            names_free(out);
            for (size_t i = 0; i < ne; i++) names_push(out, strndup(ents[i].key, ents[i].len));
        }
        if (ents != buf) free(ents);
        return;
    }
    names_free(out);
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            char b[32];
            snprintf(b, sizeof b, "%zu", i);
            names_push(out, strdup(b));
        }
    } else if (crm_is_buf(v)) {
        size_t bl;
        crm_buf_data(v, &bl);
        for (size_t i = 0; i < bl; i++) {
            char b[32];
            snprintf(b, sizeof b, "%zu", i);
            names_push(out, strdup(b));
        }
    }
}

/* Whether t already is what resetting it to cfg makes (cfg's names, "" for
 * a NULL one). */
static bool same_names(const names *t, const names *cfg)
{
    if (t->n != cfg->n) return false;
    for (size_t i = 0; i < t->n; i++)
        if (!t->v[i] || strcmp(t->v[i], cfg->v[i] ? cfg->v[i] : "")) return false;
    return true;
}

/* sb_putn of a few bytes (a separator) without the call */
static inline void put_few(strbuf *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

/* One cell: ensureString(v) quoted, "" for undefined; strings and numbers
 * without a copy. */
static void put_cell(strbuf *out, const json_t *v, const csv_quoting *q)
{
    char nb[32];
    if (json_is_string(v)) {
        csv_quote_cell_q(out, json_string_value(v), q);
    } else if (json_is_number(v)) {
        csv_quote_cell_q(out, crm_fmt_number(crm_num_value(v), nb), q);
    } else {
        char *c = v ? ensure_string(v) : strdup("");
        csv_quote_cell_q(out, c, q);
        free(c);
    }
}

/* The property `key` of a row as JavaScript reads it (arrays by index). */
static json_t *prop_of(const json_t *row, const char *key)
{
    if (json_is_object(row) && !crm_is_buf(row)) return json_object_get(row, key);
    if (json_is_array(row)) {
        char *end;
        unsigned long i = strtoul(key, &end, 10);
        if (*key && !*end && isdigit((unsigned char)*key)) return json_array_get(row, i);
    }
    return NULL;
}

static int legacy_to_csv(crm_node *n, csv_state *s, json_t *msg, char **err)
{
    json_t *parts = json_object_get(msg, "parts");
    bool notemplate = s->notemplate;
    if (!(notemplate && parts && json_object_get(parts, "index") && js_num(json_object_get(parts, "index")) > 0))
        legacy_clean(s, s->temp, NULL, &s->tmpl);
    json_t *pl = json_object_get(msg, "payload");
    json_t *arr;
    if (!json_is_array(pl)) {
        arr = json_array();
        json_array_append(arr, pl);
    } else {
        arr = json_incref(pl);
    }
    strbuf out = SB_INIT;
    sb_puts(&out, "");
    size_t nlines = 0;
#define NEWLINE() do { if (nlines++) sb_puts(&out, s->ret); } while (0)
    if (s->hdrout != 0 && !s->hdr_sent) {
        if (!has_template(&s->tmpl) && s->tmpl.n == 1) {
            json_t *cols = json_object_get(msg, "columns");
            if (cols) {
                char *c = crm_truthy(cols) ? crm_to_string(cols) : strdup("");
                legacy_clean(s, c, ",", &s->tmpl);
                free(c);
            } else {
                json_t *first = json_array_get(arr, 0);
                if (!first || json_is_null(first)) {
                    *err = strdup("TypeError: Cannot convert undefined or null to object");
                    json_decref(arr);
                    sb_free(&out);
                    return -1;
                }
                keys_of(first, &s->tmpl);
            }
        }
        NEWLINE();
        for (size_t i = 0; i < s->tmpl.n; i++) {
            if (i) sb_puts(&out, s->sep);
            const char *v = s->tmpl.v[i] ? s->tmpl.v[i] : "";
            if (*s->sep && strstr(v, s->sep)) sb_printf(&out, "\"%s\"", v);
            else sb_puts(&out, v);
        }
        if (s->hdrout == 2) s->hdr_sent = true;
    }
    for (size_t si = 0; si < json_array_size(arr); si++) {
        json_t *row = json_array_get(arr, si);
        if (json_is_array(row) || !js_object(row)) {
            if (!js_object(row)) {
                json_t *wrap = json_array();
                json_array_append(wrap, arr);
                json_decref(arr);
                arr = wrap;
                row = json_array_get(arr, si);
                if (!row) {
                    *err = strdup("TypeError: Cannot read properties of undefined (reading 'length')");
                    json_decref(arr);
                    sb_free(&out);
                    return -1;
                }
            }
            NEWLINE();
            for (size_t t = 0; t < json_array_size(row); t++) {
                json_t *cell = json_array_get(row, t);
                if (t) sb_puts(&out, s->sep);
                if (json_is_null(cell)) {
                    *err = strdup("TypeError: Cannot read properties of null (reading 'toString')");
                    json_object_set(msg, "payload", arr); /* Node-RED wrapped msg.payload itself */
                    json_decref(arr);
                    sb_free(&out);
                    return -1;
                }
                char *q = crm_to_string(cell);
                legacy_cell(&out, q, s->sep, strchr(q, '\n') != NULL);
                free(q);
            }
            continue;
        }
        if (!has_template(&s->tmpl) && s->tmpl.n == 1) {
            json_t *cols = json_object_get(msg, "columns");
            if (cols) {
                char *c = crm_truthy(cols) ? crm_to_string(cols) : strdup("");
                legacy_clean(s, c, ",", &s->tmpl);
                free(c);
            }
        }
        NEWLINE();
        if (s->tmpl.n == 1 && !s->tmpl.v[0][0]) {
            if (s->warn_once) {
                crm_node_warn(n, "No columns template specified for object -> CSV.");
                s->warn_once = false;
            }
            json_t *first = json_array_get(arr, 0);
            bool any = false;
            if (json_is_object(first) && !crm_is_buf(first)) {
                crm_entry buf[32], *ents;
                size_t ne = crm_js_entries(first, buf, 32, &ents);
                for (size_t i = 0; i < ne; i++) {
                    char *key = strndup(ents[i].key, ents[i].len);
                    json_t *v = json_is_object(row) && !crm_is_buf(row) ? json_object_get(row, key) : NULL;
                    if (v && !js_object(v)) {
                        if (any) sb_puts(&out, s->sep);
                        any = true;
                        char *q = crm_to_string(v);
                        legacy_cell(&out, q, s->sep, strchr(key, '\n') != NULL);
                        free(q);
                    }
                    free(key);
                }
                if (ents != buf) free(ents);
            }
        } else {
            for (size_t t = 0; t < s->tmpl.n; t++) {
                if (t) sb_puts(&out, s->sep);
                const char *key = s->tmpl.v[t];
                if (!key || !*key) continue;
                json_t *v = prop_of(row, key);
                char *p = v ? ensure_string(v) : strdup("");
                legacy_cell(&out, p, s->sep, strchr(p, '\n') != NULL);
                free(p);
            }
        }
    }
#undef NEWLINE
    json_decref(arr);
    sb_puts(&out, s->ret);
    char *text = sb_take(&out);
    json_object_set_new(msg, "payload", json_string(text));
    free(text);
    /* msg.columns: every name, those with a comma quoted */
    strbuf cs = SB_INIT;
    sb_puts(&cs, "");
    for (size_t i = 0; i < s->tmpl.n; i++) {
        if (i) sb_putc(&cs, ',');
        const char *v = s->tmpl.v[i] ? s->tmpl.v[i] : "";
        if (strchr(v, ',')) sb_printf(&cs, "\"%s\"", v);
        else sb_puts(&cs, v);
    }
    char *c = sb_take(&cs);
    json_object_set_new(msg, "columns", json_string(c));
    free(c);
    return 0;
}

/* ---- RFC 4180 mode ----------------------------------------------------------- */

/* columnStringToTemplateArray: the one row of col, or goodtmpl false. */
static int rfc_columns(csv_state *s, const char *col, const char *sep, names *out, char **err)
{
    csv_rows rows = {0};
    csv_opts o = {sep, true, false};
    size_t end;
    if (csv_parse(col, strlen(col), 0, &o, &rows, &end, err) < 0) return -1;
    s->goodtmpl = rows.n == 1;
    if (s->goodtmpl) {
        names_free(out);
        for (size_t i = 0; i < rows.rows[0].n; i++) {
            names_push(out, rows.rows[0].cells[i]);
            rows.rows[0].cells[i] = NULL;
        }
    }
    csv_rows_free(&rows);
    return 0;
}

/* templateArrayToColumnString(t): non-empty names, quoted for ',' '"' CR LF,
 * joined by ','. The same text as last time gives the same string again. */
static json_t *rfc_header(csv_state *s, const names *t)
{
    static const char *const q[] = {"\"", ",", "\r", "\n", NULL};
    static const csv_quoting quoting = {.one = {['"'] = 1, [','] = 1, ['\r'] = 1, ['\n'] = 1}, .list = q};
    /* the same names as last time: the same text */
    bool same = s->hdr && t->n == s->hdr_names.n;
    for (size_t i = 0; same && i < t->n; i++)
        same = !t->v[i] ? !s->hdr_names.v[i] : s->hdr_names.v[i] && !strcmp(t->v[i], s->hdr_names.v[i]);
    if (same) return json_incref(s->hdr);
    names_free(&s->hdr_names); /* kept again below once hdr is their text */
    strbuf *sb = &s->hdr_text;
    sb->len = 0;
    sb_puts(sb, "");
    bool first = true;
    for (size_t i = 0; i < t->n; i++) {
        if (!t->v[i] || !t->v[i][0]) continue;
        if (!first) sb_putc(sb, ',');
        first = false;
        csv_quote_cell_q(sb, t->v[i], &quoting);
    }
    json_t *r;
    if (s->hdr && json_string_length(s->hdr) == strlen(sb->data) && !strcmp(json_string_value(s->hdr), sb->data)) {
        r = json_incref(s->hdr);
    } else {
        r = json_string(sb->data);
        if (!r) return NULL;
        json_decref(s->hdr);
        s->hdr = json_incref(r);
    }
    for (size_t i = 0; i < t->n; i++) names_push(&s->hdr_names, t->v[i] ? strdup(t->v[i]) : NULL);
    return r;
}

static int rfc_msg_columns(csv_state *s, json_t *msg, char **err)
{
    json_t *cols = json_object_get(msg, "columns");
    char *c = crm_truthy(cols) ? crm_to_string(cols) : strdup("");
    int r = rfc_columns(s, c, ",", &s->tmpl, err);
    free(c);
    if (r == 0 && !s->goodtmpl) names_one_empty(&s->tmpl);
    return r;
}

static int rfc_to_csv(crm_node *n, csv_state *s, json_t *msg, char **err)
{
    size_t seplen = strlen(s->sep);
    const csv_quoting *quoting = &s->quoting;
    json_t *in = MSG_PAYLOAD(s, msg);
    /* the rows: the payload's elements, or the payload itself as the one row
     * (an object, or an array of values) */
    bool of_arrays = false, single = true;
    if (json_is_array(in) && json_array_size(in) > 0 && !js_object(json_array_get(in, 0))) {
        of_arrays = true;
    } else if (json_is_array(in)) {
        single = false;
        of_arrays = json_is_array(json_array_get(in, 0));
    }
    size_t nrows = single ? 1 : json_array_size(in);
#define ROW(i) (single ? in : json_array_get(in, (i)))
    json_t *parts = MSG_PARTS(s, msg);
    bool no_template = s->notemplate;
    if (!(no_template && parts && json_object_get(parts, "index") && js_num(json_object_get(parts, "index")) > 0) &&
        !same_names(&s->tmpl, &s->cfg_tmpl)) {
        names_free(&s->tmpl);
        for (size_t i = 0; i < s->cfg_tmpl.n; i++) names_push(&s->tmpl, strdup(s->cfg_tmpl.v[i] ? s->cfg_tmpl.v[i] : ""));
    }
    if (!(no_template && parts && json_object_get(parts, "index") && js_num(json_object_get(parts, "index")) > 0))
        s->goodtmpl = s->cfg_good;
    strbuf out = s->out_text; /* given back before returning */
    out.len = 0;
    sb_puts(&out, "");
    size_t nlines = 0;
#define NEWLINE() do { if (nlines++) sb_puts(&out, s->ret); } while (0)
    if (s->hdrout != 0 && s->hdrout != 3 && !s->hdr_sent) {
        if (!has_template(&s->tmpl)) {
            if (MSG_COLUMNS(s, msg)) {
                if (rfc_msg_columns(s, msg, err) < 0) { s->out_text = out; goto fail; }
            } else {
                json_t *first = ROW(0);
                if (!first || json_is_null(first)) {
                    *err = strdup("TypeError: Cannot convert undefined or null to object");
                    s->out_text = out;
                    goto fail;
                }
                keys_of(first, &s->tmpl);
            }
        }
        NEWLINE();
        for (size_t i = 0; i < s->tmpl.n; i++) {
            if (i) put_few(&out, s->sep, seplen);
            csv_quote_cell_q(&out, s->tmpl.v[i] ? s->tmpl.v[i] : "", quoting);
        }
        if (s->hdrout == 2) s->hdr_sent = true;
    }
    for (size_t si = 0; si < nrows; si++) {
        json_t *row = ROW(si);
        NEWLINE();
        if (of_arrays) {
            bool tmpl = has_template(&s->tmpl);
            size_t len = tmpl ? s->tmpl.n : json_array_size(row);
            for (size_t t = 0; t < len; t++) {
                if (t) put_few(&out, s->sep, seplen);
                if (tmpl && (!s->tmpl.v[t] || !s->tmpl.v[t][0])) continue;
                json_t *cell = json_is_array(row) ? json_array_get(row, t) : NULL;
                char *c = cell ? ensure_string(cell) : strdup("");
                csv_quote_cell_q(&out, c, quoting);
                free(c);
            }
            continue;
        }
        if (!has_template(&s->tmpl) && MSG_COLUMNS(s, msg)) {
            if (rfc_msg_columns(s, msg, err) < 0) { s->out_text = out; goto fail; }
        }
        if (!has_template(&s->tmpl)) {
            if (s->warn_once) {
                crm_node_warn(n, "No columns template specified for object -> CSV.");
                s->warn_once = false;
            }
            if (json_is_null(row)) {
                *err = strdup("TypeError: Cannot convert undefined or null to object");
                s->out_text = out;
                goto fail;
            }
            keys_of(row, &s->tmpl);
            json_t *first = ROW(0);
            bool any = false;
            if (json_is_object(first) && !crm_is_buf(first)) {
                crm_entry buf[32], *ents;
                size_t ne = crm_js_entries(first, buf, 32, &ents);
                bool row_obj = json_is_object(row) && !crm_is_buf(row);
                for (size_t i = 0; i < ne; i++) {
                    json_t *v;
                    bool nul = memchr(ents[i].key, 0, ents[i].len) != NULL; /* prop_of reads up to it */
                    if (row == first && !nul) {
                        v = ents[i].val; /* prop_of(first, its own key) */
                    } else if (row_obj && !nul) {
                        v = json_object_getn(row, ents[i].key, ents[i].len);
                    } else {
                        char *key = strndup(ents[i].key, ents[i].len);
                        v = prop_of(row, key);
                        free(key);
                    }
                    if (v && !js_object(v)) {
                        if (any) put_few(&out, s->sep, seplen);
                        any = true;
                        put_cell(&out, v, quoting); /* String(v) of a string, number or boolean */
                    }
                }
                if (ents != buf) free(ents);
            }
        } else {
            /* an object row's members are usually the columns in order: a
             * member found at the place of its column is taken without a
             * lookup by name (the names are unique, so it is the same value) */
            void *it = json_is_object(row) && !crm_is_buf(row) ? json_object_iter(row) : NULL;
            for (size_t t = 0; t < s->tmpl.n; t++) {
                if (t) put_few(&out, s->sep, seplen);
                const char *name = s->tmpl.v[t];
                if (!name || !name[0]) continue;
                json_t *v;
                size_t nlen;
                if (it && json_object_iter_key_len(it) == (nlen = strlen(name)) && !memcmp(json_object_iter_key(it), name, nlen)) {
                    v = json_object_iter_value(it);
                    it = json_object_iter_next(row, it);
                } else {
                    v = prop_of(row, name);
                    it = NULL;
                }
                put_cell(&out, v, quoting);
            }
        }
    }
#undef NEWLINE
#undef ROW
    sb_puts(&out, s->ret);
    /* json_string(out.data): out holds no NUL (cells end at theirs) */
    msg_set(s, msg, s->mk.payload_it, "payload",
            crm_utf8_valid(out.data, out.len) ? json_stringn_nocheck(out.data, out.len) : json_string(out.data));
    if (out.cap > (1u << 20)) sb_free(&out); /* keep no big buffer for ever */
    s->out_text = out;
    msg_set(s, msg, s->mk.columns_it, "columns", rfc_header(s, &s->tmpl));
    return 0;
fail:
    return -1;
}

static void rfc_parse(crm_node *n, csv_state *s, json_t *msg, const char *in, size_t len)
{
    bool first_line = true, last = false;
    double linecount = 0;
    json_t *parts = MSG_PARTS(s, msg);
    bool has_parts = parts != NULL;
    char *err = NULL;
    if (has_parts) {
        double idx = js_num(json_object_get(parts, "index"));
        linecount = idx;
        if (idx > s->skip) first_line = false;
        json_t *cnt = json_object_get(parts, "count");
        if (cnt && idx + 1 >= js_num(cnt)) last = true;
    }
    size_t cursor = 0;
    if (s->skip > 0 && linecount < s->skip) {
        for (; cursor < len; cursor++) {
            if (first_line && linecount < s->skip) {
                if (in[cursor] == '\r' || in[cursor] == '\n') linecount += 1;
                continue;
            }
            break;
        }
        if (cursor >= len) {
            json_decref(msg);
            return; /* Node-RED returns without done() */
        }
    }
    size_t nocr = 0;
    for (size_t i = cursor; i < len; i++) nocr += in[i] == '\r' || in[i] == '\n';
    if (has_parts && !s->one && nocr > 1) first_line = true;
    if (first_line && s->hdrin) {
        csv_rows rows = {0};
        csv_opts o = {s->sep, true, true};
        size_t end;
        if (csv_parse(in, len, cursor, &o, &rows, &end, &err) < 0) {
            crm_node_status(n, "red", "dot", "Malformed columns template.");
            goto fail;
        }
        if (rows.n >= 1) {
            names_free(&s->tmpl);
            for (size_t i = 0; i < rows.rows[0].n; i++) {
                names_push(&s->tmpl, rows.rows[0].cells[i]);
                rows.rows[0].cells[i] = NULL;
            }
        } else {
            names_free(&s->tmpl);
        }
        csv_rows_free(&rows);
        cursor = end;
    }
    csv_flat rows = s->flat; /* given back below */
    rows.text.len = rows.ncells = rows.nrows = 0;
    csv_opts o = {s->sep, false, false};
    size_t end;
    csv_parse_flat(in, len, cursor, &o, &rows, &end, &err);
    /* the column names, borrowed: the template's, or col1, col2 ... */
    names headers = {0};
    char *colnames = NULL;
    if (has_template(&s->tmpl)) {
        headers = s->tmpl;
    } else if (rows.nrows >= 1) {
        size_t nc = rows.row[1] - rows.row[0];
        headers.n = nc;
        headers.v = malloc(nc * sizeof *headers.v);
        colnames = malloc(nc * 24);
        for (size_t i = 0; i < nc; i++) {
            headers.v[i] = colnames + 24 * i;
            snprintf(headers.v[i], 24, "col%zu", i + 1);
        }
    }
    /* cells of valid UTF-8 text are valid (split at ASCII characters or a
     * whole separator): jansson need not check each again */
    bool valid = crm_utf8_valid(in, len);
    for (size_t j = 0; valid && j < headers.n; j++)
        if (headers.v[j] && !crm_utf8_valid(headers.v[j], strlen(headers.v[j]))) valid = false;
    /* the names' lengths, measured once for all the rows */
    size_t hlen_stack[32], *hlen = headers.n <= 32 ? hlen_stack : malloc(headers.n * sizeof *hlen);
    for (size_t j = 0; j < headers.n; j++) hlen[j] = headers.v[j] ? strlen(headers.v[j]) : 0;
    json_t *data = json_array();
    for (size_t i = 0; i < rows.nrows; i++) {
        size_t first = rows.row[i], ncells = rows.row[i + 1] - first;
        json_t *obj = json_object();
        bool empty = true;
        for (size_t j = 0; j < headers.n; j++) {
            if (!hlen[j]) continue;
            const char *v = j < ncells ? csv_flat_cell(&rows, first + j) : NULL;
            json_t *val;
            if (!v) {
                if (!s->incl_null) continue;
                val = json_null();
            } else if (!*v) {
                if (!s->incl_empty) continue;
                val = json_string("");
            } else {
                val = NULL;
                if (s->parsestrings) {
                    const char *p = v;
                    while (*p == ' ') p++;
                    bool skipnum = *p == '+' || (p[0] == '-' && p[1] == '0' && isdigit((unsigned char)p[2])) ||
                                   (p[0] == '0' && isdigit((unsigned char)p[1]));
                    if (!skipnum) {
                        double d = crm_str_to_number(v);
                        if (!isnan(d)) val = crm_num(d);
                    }
                }
                if (!val) val = valid ? json_string_nocheck(v) : json_string(v);
            }
            if (valid) json_object_setn_new_nocheck(obj, headers.v[j], hlen[j], val);
            else json_object_set_new(obj, headers.v[j], val);
            empty = false;
        }
        if (!empty) json_array_append_new(data, obj);
        else json_decref(obj);
    }
    if (hlen != hlen_stack) free(hlen);
    if (rows.text.cap > (1u << 20) || rows.capcells > (1u << 16)) csv_flat_free(&rows);
    s->flat = rows;
    json_t *columns = rfc_header(s, &headers);
    if (headers.v != s->tmpl.v) {
        free(headers.v);
        free(colnames);
    }
    if (!s->one) {
        if (has_parts && nocr <= 1) {
            json_array_extend(s->store, data);
            if (js_num(json_object_get(parts, "index")) + 1 == js_num(json_object_get(parts, "count"))) {
                json_object_set(msg, "payload", s->store);
                json_decref(s->store);
                s->store = json_array();
                json_object_set(msg, "columns", columns);
                json_object_del(msg, "parts");
                crm_node_send(n, 0, json_incref(msg));
            }
        } else {
            json_object_set(msg, "columns", columns);
            json_object_set(msg, "payload", data);
            crm_node_send(n, 0, json_incref(msg));
        }
        json_decref(columns);
        crm_node_done(n, msg);
    } else {
        send_rows(n, s, msg, data, columns, has_parts, last);
    }
    json_decref(data);
    json_decref(msg);
    return;
fail:
    crm_node_error(n, msg, "%s", err);
    free(err);
    json_decref(msg);
}

/* ---- input ---------------------------------------------------------------------- */

static void csv_input(crm_node *n, json_t *msg)
{
    csv_state *s = crm_node_data(n);
    if (s->broken) {
        json_decref(msg);
        return;
    }
    if (s->rfc) crm_node_status(n, NULL, NULL, NULL);
    if (s->rfc) walk_msg(s, msg); /* (the legacy code reads and sets by name) */
    else memset(&s->mk, 0, sizeof s->mk);
    bool reset = s->mk.ok ? s->mk.reset != NULL : json_object_get(msg, "reset") != NULL;
    if (reset) s->hdr_sent = false;
    json_t *pl = MSG_PAYLOAD(s, msg);
    if (!pl) {
        if (!reset) crm_node_send(n, 0, json_incref(msg));
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (js_object(pl) || crm_is_buf(pl)) {
        char *err = NULL;
        int r = s->rfc ? rfc_to_csv(n, s, msg, &err) : legacy_to_csv(n, s, msg, &err);
        if (r < 0) {
            crm_node_error(n, msg, "%s", err);
            free(err);
        } else {
            const char *p = json_string_value(MSG_PAYLOAD(s, msg));
            if (p && *p) crm_node_send(n, 0, json_incref(msg));
            crm_node_done(n, msg);
        }
        json_decref(msg);
    } else if (json_is_string(pl)) {
        const char *text = json_string_value(pl);
        size_t len = json_string_length(pl);
        json_incref(pl);
        if (s->rfc) {
            rfc_parse(n, s, msg, text, len);
        } else {
            legacy_parse(n, s, msg, text, len);
            json_decref(msg);
        }
        json_decref(pl);
    } else if (s->rfc) {
        crm_node_status(n, "red", "dot", "This node only handles CSV strings or js objects.");
        crm_node_error(n, msg, "Error: This node only handles CSV strings or js objects.");
        json_decref(msg);
    } else {
        crm_node_warn(n, "This node only handles CSV strings or js objects.");
        crm_node_done(n, msg);
        json_decref(msg);
    }
}

const crm_node_type crm_type_csv = {
    .abi = CRM_ABI_VERSION,
    .type = "csv",
    .create = csv_create,
    .input = csv_input,
    .close = csv_close,
};
