/* http_query.c: query strings, form bodies and cookies parsed the way
 * Express's modules do it (qs, cookie, cookie-parser), so msg.req.query and
 * msg.payload look the same as in Node-RED. qs builds JavaScript arrays that
 * may have holes while it merges; json null stands for a hole here (qs never
 * produces null values) and compact() removes them at the end. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "value.h"

#define QS_PARAMETER_LIMIT 1000

bool http_ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }
bool http_ieqn(const char *a, const char *b, size_t n) { return strncasecmp(a, b, n) == 0; }

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned min;
    if ((c & 0xE0) == 0xC0) { need = 1; min = 0x80; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { need = 2; min = 0x800; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { need = 3; min = 0x10000; c &= 0x07; }
    else return 0;
    if (need >= n) return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return need + 1;
}

bool http_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = utf8_seq(s + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

json_t *http_string_lossy(const char *s, size_t n)
{
    if (http_utf8_valid((const unsigned char *)s, n)) return json_stringn(s, n);
    strbuf sb = SB_INIT;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k) {
            sb_putn(&sb, s + i, k);
            i += k;
        } else {
            sb_puts(&sb, "\xEF\xBF\xBD");
            i++;
        }
    }
    json_t *r = json_stringn(sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return r;
}

json_t *http_decode_component(const char *s, size_t n, bool plus)
{
    char small[256] = "";
    char *out = n < sizeof small ? small : malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        char c = s[i];
        if (c == '+' && plus) {
            out[o++] = ' ';
        } else if (c == '%') {
            int hi = i + 1 < n ? crm_hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? crm_hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) ok = false;
            else {
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
            }
        } else {
            out[o++] = c;
        }
    }
    json_t *r;
    if (ok && http_utf8_valid((const unsigned char *)out, o)) {
        r = json_stringn(out, o);
    } else {
        /* decodeURIComponent threw: the text with only '+' replaced */
        o = 0;
        for (size_t i = 0; i < n; i++) out[o++] = (s[i] == '+' && plus) ? ' ' : s[i];
        r = http_string_lossy(out, o);
    }
    if (out != small) free(out);
    return r;
}

/* qs ------------------------------------------------------------------------ */

/* What qs 6.15.4 (express 4.22.2's req.query) does, step for step:
 * parseValues splits the string into a flat object of decoded keys (values
 * of a repeated key combined), parseKeys turns each key into a nested value
 * ("a[b][0]" -> {a: {b: [v]}}), merge folds those into the result in the
 * order JavaScript lists the flat object's keys (integer keys first), and
 * compact removes array holes. Two things of JavaScript it relies on are
 * kept here: arrays with holes (json null stands for a hole: qs never makes
 * a null value) and "overflow" objects, which an array past arrayLimit
 * becomes ({"0": .., "21": ..}) and which later values extend at the next
 * index (qs tracks them in a side channel; here a list of marked objects,
 * each held by a reference so an address is never reused while marked). */

typedef struct {
    json_t **obj;
    double *max; /* the highest numeric key of each marked object */
    size_t n, cap;
    int array_limit;
} qs_ctx;

#define HOLE json_null()

static bool is_hole(const json_t *v) { return json_is_null(v); }
static bool is_container(const json_t *v) { return json_is_object(v) || json_is_array(v); }

static long ov_find(const qs_ctx *c, const json_t *o)
{
    if (!json_is_object(o)) return -1;
    for (size_t i = 0; i < c->n; i++)
        if (c->obj[i] == o) return (long)i;
    return -1;
}

static bool is_overflow(const qs_ctx *c, const json_t *o) { return ov_find(c, o) >= 0; }

static json_t *mark_overflow(qs_ctx *c, json_t *o, double max)
{
    long i = ov_find(c, o);
    if (i >= 0) {
        c->max[i] = max;
        return o;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        json_t **no = realloc(c->obj, cap * sizeof *no);
        if (!no) return o;
        c->obj = no;
        double *nm = realloc(c->max, cap * sizeof *nm);
        if (!nm) return o;
        c->max = nm;
        c->cap = cap;
    }
    c->obj[c->n] = json_incref(o);
    c->max[c->n++] = max;
    return o;
}

static double ov_max(const qs_ctx *c, const json_t *o)
{
    long i = ov_find(c, o);
    return i >= 0 ? c->max[i] : 0;
}

static void index_key(double i, char key[32]) { crm_fmt_number(i, key); }

/* target[i] = v (stolen) on an array with holes. */
static void array_set(json_t *arr, size_t i, json_t *v)
{
    while (json_array_size(arr) < i) json_array_append_new(arr, HOLE);
    if (i < json_array_size(arr)) json_array_set_new(arr, i, v);
    else json_array_append_new(arr, v);
}

/* [].concat(a, b): elements of arrays (holes kept), the value itself otherwise. Steals both. */
static json_t *concat(json_t *a, json_t *b)
{
    json_t *r = json_array();
    json_t *parts[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        if (json_is_array(parts[k])) json_array_extend(r, parts[k]);
        else json_array_append(r, parts[k]);
        json_decref(parts[k]);
    }
    return r;
}

/* utils.arrayToObject: {i: v} for every element that is not a hole. Steals arr. */
static json_t *array_to_object(json_t *arr)
{
    json_t *o = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (is_hole(v)) continue;
        char key[32];
        index_key((double)i, key);
        json_object_set(o, key, v);
    }
    json_decref(arr);
    return o;
}

/* An array of len elements past arrayLimit becomes an overflow object. */
static json_t *limit_array(qs_ctx *c, json_t *arr)
{
    size_t len = json_array_size(arr);
    if (len <= (size_t)c->array_limit) return arr;
    return mark_overflow(c, array_to_object(arr), (double)len - 1);
}

/* utils.combine(a, b): steals both. */
static json_t *combine(qs_ctx *c, json_t *a, json_t *b)
{
    if (is_overflow(c, a)) {
        double next = ov_max(c, a) + 1;
        char key[32];
        index_key(next, key);
        json_object_set_new(a, key, b);
        mark_overflow(c, a, next);
        return a;
    }
    return limit_array(c, concat(a, b));
}

/* parseInt(key, 10) whose String() is the key and >= 0: a canonical
 * non-negative integer a double holds exactly; *out its value. */
static bool js_index(const char *s, size_t n, double *out)
{
    if (n == 0 || n > 21 || (n > 1 && s[0] == '0')) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    char buf[32], back[32];
    memcpy(buf, s, n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    if (n > 15 && strcmp(crm_fmt_number(v, back), buf) != 0) return false;
    *out = v;
    return true;
}

/* An array index as JavaScript orders object keys by (integer keys first). */
static bool js_array_index(const char *k, double *v)
{
    return js_index(k, strlen(k), v) && *v < 4294967295.0;
}

/* Object.keys order: integer keys ascending, then the others as inserted. */
typedef struct {
    const char *key;
    double num;
} key_ord;

static int cmp_key_ord(const void *a, const void *b)
{
    double x = ((const key_ord *)a)->num, y = ((const key_ord *)b)->num;
    return x < y ? -1 : x > y;
}

static size_t js_keys(const json_t *o, key_ord **out)
{
    size_t n = json_object_size(o), k = 0, ints = 0;
    key_ord *ks = malloc((n ? n : 1) * sizeof *ks);
    *out = ks;
    if (!ks) return 0;
    const char *key;
    json_t *v;
    double num;
    json_object_foreach((json_t *)o, key, v) {
        if (js_array_index(key, &num)) ks[ints++] = (key_ord){key, num};
    }
    qsort(ks, ints, sizeof *ks, cmp_key_ord);
    k = ints;
    json_object_foreach((json_t *)o, key, v) {
        if (!js_array_index(key, &num)) ks[k++] = (key_ord){key, 0};
    }
    return k;
}

/* utils.merge (strictMerge, allowPrototypes): steals target and source. */
static json_t *merge(qs_ctx *c, json_t *target, json_t *source)
{
    if (!source || (json_is_string(source) && json_string_length(source) == 0)) { /* !source */
        json_decref(source);
        return target;
    }
    if (!is_container(source)) {
        if (json_is_array(target)) {
            size_t next = json_array_size(target);
            if (next >= (size_t)c->array_limit)
                return mark_overflow(c, array_to_object(concat(target, source)), (double)next);
            json_array_append_new(target, source);
        } else if (json_is_object(target)) {
            if (is_overflow(c, target)) {
                double next = ov_max(c, target) + 1;
                char key[32];
                index_key(next, key);
                json_object_set_new(target, key, source);
                mark_overflow(c, target, next);
            } else {
                json_t *r = json_array();
                json_array_append_new(r, target);
                json_array_append_new(r, source);
                return r;
            }
        } else {
            json_t *r = json_array();
            json_array_append_new(r, target);
            json_array_append_new(r, source);
            return r;
        }
        return target;
    }
    if (!is_container(target) || (json_is_string(target) && !json_string_length(target))) {
        if (is_overflow(c, source)) { /* target at 0, the source's values one index up */
            json_t *r = json_object();
            json_object_set_new(r, "0", target);
            const char *key;
            json_t *v;
            json_object_foreach(source, key, v) {
                double k;
                char nk[32];
                if (!js_index(key, strlen(key), &k)) continue;
                index_key(k + 1, nk);
                json_object_set(r, nk, v);
            }
            double max = ov_max(c, source) + 1;
            json_decref(source);
            return mark_overflow(c, r, max);
        }
        json_t *wrapped = json_array();
        json_array_append_new(wrapped, target);
        return limit_array(c, concat(wrapped, source));
    }
    if (json_is_array(target) && json_is_array(source)) {
        size_t i;
        json_t *item;
        json_array_foreach(source, i, item) {
            if (is_hole(item)) continue; /* forEach skips holes */
            json_t *t = i < json_array_size(target) ? json_array_get(target, i) : NULL;
            if (t && !is_hole(t)) {
                if (is_container(t) && is_container(item))
                    json_array_set_new(target, i, merge(c, json_incref(t), json_incref(item)));
                else
                    json_array_append(target, item);
            } else {
                array_set(target, i, json_incref(item));
            }
        }
        json_decref(source);
        return limit_array(c, target);
    }
    json_t *acc = json_is_array(target) ? array_to_object(target) : target;
    json_t *src = source;
    bool src_overflow = is_overflow(c, source);
    double src_max = src_overflow ? ov_max(c, source) : 0;
    if (json_is_array(source)) src = array_to_object(json_incref(source)); /* Object.keys of an array */
    key_ord *ks;
    size_t nk = js_keys(src, &ks);
    for (size_t i = 0; i < nk; i++) {
        const char *key = ks[i].key;
        json_t *value = json_object_get(src, key);
        json_t *cur = json_object_get(acc, key);
        if (cur) json_object_set_new(acc, key, merge(c, json_incref(cur), json_incref(value)));
        else json_object_set(acc, key, value);
        if (src_overflow && !is_overflow(c, acc)) mark_overflow(c, acc, src_max);
        double num;
        if (is_overflow(c, acc) && js_index(key, strlen(key), &num) && num > ov_max(c, acc))
            mark_overflow(c, acc, num);
    }
    free(ks);
    if (src != source) json_decref(src);
    json_decref(source);
    return acc;
}

typedef struct {
    const char *s;
    size_t n;
} seg;

/* qs parseObject: the nested value for a key chain, leaf stolen. */
static json_t *parse_object(qs_ctx *c, const seg *chain, int count, json_t *leaf)
{
    for (int i = count - 1; i >= 0; i--) {
        const char *root = chain[i].s;
        size_t rn = chain[i].n;
        json_t *obj;
        if (rn == 2 && root[0] == '[' && root[1] == ']') {
            obj = is_overflow(c, leaf) ? leaf : combine(c, json_array(), leaf);
        } else {
            bool bracketed = rn >= 2 && root[0] == '[' && root[rn - 1] == ']';
            const char *clean = bracketed ? root + 1 : root;
            size_t cn = bracketed ? rn - 2 : rn;
            double idx;
            bool valid = bracketed && js_index(clean, cn, &idx);
            if (valid && idx < c->array_limit) {
                obj = json_array();
                array_set(obj, (size_t)idx, leaf);
            } else if (valid) {
                obj = json_object();
                char key[32];
                index_key(idx, key);
                json_object_set_new(obj, key, leaf);
                mark_overflow(c, obj, idx);
            } else {
                obj = json_object();
                char *k = strndup(clean, cn);
                if (k && strcmp(k, "__proto__") != 0) json_object_set_new(obj, k, leaf);
                else json_decref(leaf);
                free(k);
            }
        }
        leaf = obj;
    }
    return leaf;
}

/* qs splitKeyIntoSegments and parseKeys: the value for one decoded key
 * (val stolen), or NULL. Groups balance nested brackets; an unterminated
 * group, or what is left past depth, becomes one segment in brackets. */
static json_t *parse_keys(qs_ctx *c, const char *key, size_t n, json_t *val, int depth)
{
    if (n == 0) {
        json_decref(val);
        return NULL;
    }
    seg chain[72];
    int count = 0;
    char *rest = NULL;
    if (depth <= 0) {
        chain[count++] = (seg){key, n};
    } else {
        const char *br = memchr(key, '[', n);
        size_t open = br ? (size_t)(br - key) : n;
        if (open) chain[count++] = (seg){key, open};
        int collected = 0;
        while (open < n && collected < depth) {
            int level = 1;
            size_t i = open + 1, close = n;
            for (; i < n && close == n; i++) {
                if (key[i] == '[') level++;
                else if (key[i] == ']' && --level == 0) close = i;
            }
            if (close == n) break; /* unterminated: the rest below */
            chain[count++] = (seg){key + open, close - open + 1};
            collected++;
            br = close + 1 < n ? memchr(key + close + 1, '[', n - close - 1) : NULL;
            open = br ? (size_t)(br - key) : n;
        }
        if (open < n) {
            rest = malloc(n - open + 3);
            if (!rest) {
                json_decref(val);
                return NULL;
            }
            rest[0] = '[';
            memcpy(rest + 1, key + open, n - open);
            rest[n - open + 1] = ']';
            rest[n - open + 2] = 0;
            chain[count++] = (seg){rest, n - open + 2};
        }
    }
    json_t *r = parse_object(c, chain, count, val);
    free(rest);
    return r;
}

/* utils.compact: array holes removed, at every depth; objects in JavaScript's
 * key order (integer keys first), as JSON.stringify would list them. */
static json_t *compact(json_t *v)
{
    if (json_is_array(v)) {
        json_t *r = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!is_hole(e)) json_array_append_new(r, compact(json_incref(e)));
        }
        json_decref(v);
        return r;
    }
    if (json_is_object(v)) {
        key_ord *ks;
        size_t nk = js_keys(v, &ks);
        json_t *r = json_object();
        for (size_t i = 0; i < nk; i++)
            json_object_set_new(r, ks[i].key, compact(json_incref(json_object_get(v, ks[i].key))));
        free(ks);
        json_decref(v);
        return r;
    }
    return v;
}

/* %5B and %5D (any case) read as brackets before anything else. */
static char *unescape_brackets(const char *s, size_t n, size_t *out_n)
{
    char *r = malloc(n + 1);
    if (!r) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && s[i + 1] == '5' && (s[i + 2] == 'B' || s[i + 2] == 'b' || s[i + 2] == 'D' || s[i + 2] == 'd')) {
            r[o++] = (s[i + 2] == 'B' || s[i + 2] == 'b') ? '[' : ']';
            i += 2;
        } else {
            r[o++] = s[i];
        }
    }
    r[o] = 0;
    *out_n = o;
    return r;
}

static bool has_substr(const char *s, size_t n, const char *sub)
{
    size_t m = strlen(sub);
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, sub, m)) return true;
    return false;
}

json_t *http_qs_parse(const char *raw, size_t raw_n, int depth, int array_limit)
{
    if (raw_n == 0) return json_object();
    size_t n;
    char *s = unescape_brackets(raw, raw_n, &n);
    if (!s) return json_object();
    qs_ctx c = {.array_limit = array_limit};
    json_t *temp = json_object();
    size_t start = 0;
    int params = 0;
    while (start <= n && params < QS_PARAMETER_LIMIT) { /* split('&', parameterLimit) */
        const char *amp = memchr(s + start, '&', n - start);
        size_t end = amp ? (size_t)(amp - s) : n;
        const char *part = s + start;
        size_t plen = end - start;
        params++;
        const char *be = NULL;
        for (size_t i = 0; i + 1 < plen; i++)
            if (part[i] == ']' && part[i + 1] == '=') {
                be = part + i;
                break;
            }
        const char *eq = be ? be + 1 : memchr(part, '=', plen);
        json_t *key, *val;
        if (!eq) {
            key = http_decode_component(part, plen, true);
            val = json_string("");
        } else {
            key = http_decode_component(part, (size_t)(eq - part), true);
            val = http_decode_component(eq + 1, plen - (size_t)(eq - part) - 1, true);
        }
        if (key && val) {
            const char *k = json_string_value(key);
            json_t *old = json_object_get(temp, k);
            if (old) json_object_set_new(temp, k, combine(&c, json_incref(old), val));
            else json_object_set_new(temp, k, val);
        } else {
            json_decref(val);
        }
        json_decref(key);
        if (!amp) break;
        start = end + 1;
    }
    (void)has_substr; /* '[]=' only matters with the comma option, which Express leaves off */
    json_t *obj = json_object();
    key_ord *ks;
    size_t nk = js_keys(temp, &ks);
    for (size_t i = 0; i < nk; i++) {
        const char *k = ks[i].key;
        json_t *part = parse_keys(&c, k, strlen(k), json_incref(json_object_get(temp, k)), depth);
        if (part) obj = merge(&c, obj, part);
    }
    free(ks);
    json_decref(temp);
    free(s);
    for (size_t i = 0; i < c.n; i++) json_decref(c.obj[i]);
    free(c.obj);
    free(c.max);
    return compact(obj);
}

/* express 4.22.2 parses req.query with qs.parse(str, {allowPrototypes: true, arrayLimit: 1000}) */
json_t *crm_http_parse_query(const char *qs, size_t len) { return http_qs_parse(qs, len, 5, 1000); }

/* Cookies ------------------------------------------------------------------- */

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) { (*s)++; (*n)--; }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static json_t *cookie_value(const char *v, size_t n)
{
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') { v++; n -= 2; }
    json_t *s = memchr(v, '%', n) ? http_decode_component(v, n, false) : http_string_lossy(v, n);
    const char *t = json_string_value(s);
    if (t && strncmp(t, "j:", 2) == 0) { /* cookie-parser's JSON cookies */
        char err[64];
        json_t *j = crm_parse(t + 2, strlen(t + 2), err, sizeof err);
        if (j) {
            json_decref(s);
            return j;
        }
    }
    return s;
}

json_t *http_cookies_parse(const char *str)
{
    json_t *obj = json_object();
    if (!str) return obj;
    size_t len = strlen(str), index = 0;
    while (index < len) {
        const char *eq = memchr(str + index, '=', len - index);
        if (!eq) break;
        size_t eqi = (size_t)(eq - str);
        const char *semi = memchr(str + index, ';', len - index);
        size_t endi = semi ? (size_t)(semi - str) : len;
        if (endi < eqi) {
            /* a pair without '=': restart after the last ';' before the '=' */
            size_t k = eqi;
            while (k > index && str[k - 1] != ';') k--;
            index = k;
            continue;
        }
        const char *key = str + index;
        size_t kn = eqi - index;
        trim(&key, &kn);
        char *k = strndup(key, kn);
        if (k && http_utf8_valid((unsigned char *)k, kn) && !json_object_get(obj, k)) {
            const char *val = eq + 1;
            size_t vn = endi - eqi - 1;
            trim(&val, &vn);
            json_object_set_new(obj, k, cookie_value(val, vn));
        }
        free(k);
        index = endi + 1;
    }
    return obj;
}
