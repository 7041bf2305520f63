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

#define HOLE json_null()

static bool is_hole(const json_t *v) { return json_is_null(v); }

/* target[i] = v (stolen) on an array with holes. */
static void array_set(json_t *arr, size_t i, json_t *v)
{
    while (json_array_size(arr) < i) json_array_append_new(arr, HOLE);
    if (i < json_array_size(arr)) json_array_set_new(arr, i, v);
    else json_array_append_new(arr, v);
}

/* [].concat(a, b): elements of arrays, the value itself otherwise. Steals both. */
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

static json_t *array_to_object(json_t *arr)
{
    json_t *o = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (is_hole(v)) continue;
        char key[24];
        snprintf(key, sizeof key, "%zu", i);
        json_object_set(o, key, v);
    }
    return o;
}

/* qs utils.merge: steals target and source, returns the result. */
static json_t *merge(json_t *target, json_t *source)
{
    if (json_is_string(source) && json_string_length(source) == 0) { /* !source */
        json_decref(source);
        return target;
    }
    if (json_is_string(source)) {
        if (json_is_array(target)) json_array_append_new(target, source);
        else if (json_is_object(target)) {
            json_object_set_new(target, json_string_value(source), json_true());
            json_decref(source);
        } else {
            json_t *r = json_array();
            json_array_append_new(r, target);
            json_array_append_new(r, source);
            return r;
        }
        return target;
    }
    if (!json_is_object(target) && !json_is_array(target)) return concat(target, source);
    if (json_is_array(target) && json_is_array(source)) {
        size_t i;
        json_t *item;
        json_array_foreach(source, i, item) {
            if (is_hole(item)) continue;
            json_t *t = i < json_array_size(target) ? json_array_get(target, i) : NULL;
            if (t && !is_hole(t)) {
                if ((json_is_object(t) || json_is_array(t)) && (json_is_object(item) || json_is_array(item)))
                    json_array_set_new(target, i, merge(json_incref(t), json_incref(item)));
                else
                    json_array_append(target, item);
            } else {
                array_set(target, i, json_incref(item));
            }
        }
        json_decref(source);
        return target;
    }
    if (json_is_array(target)) { /* array target, object source */
        json_t *o = array_to_object(target);
        json_decref(target);
        target = o;
    }
    if (json_is_array(source)) { /* object target, array source: keys are indexes */
        json_t *o = array_to_object(source);
        json_decref(source);
        source = o;
    }
    const char *key;
    json_t *value;
    json_object_foreach(source, key, value) {
        json_t *cur = json_object_get(target, key);
        if (cur) json_object_set_new(target, key, merge(json_incref(cur), json_incref(value)));
        else json_object_set(target, key, value);
    }
    json_decref(source);
    return target;
}

/* A canonical non-negative integer ("0", "12", not "01"), else -1. */
static long canonical_index(const char *s, size_t n)
{
    if (n == 0 || n > 9) return -1;
    if (n > 1 && s[0] == '0') return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

typedef struct {
    const char *s;
    size_t n;
} seg;

/* qs parseObject: builds the nested value for a key chain, leaf stolen. */
static json_t *parse_object(const seg *chain, int count, json_t *leaf, int array_limit)
{
    for (int i = count - 1; i >= 0; i--) {
        const char *root = chain[i].s;
        size_t rn = chain[i].n;
        json_t *obj;
        if (rn == 2 && root[0] == '[' && root[1] == ']') {
            obj = concat(json_array(), leaf);
        } else {
            bool bracketed = rn >= 2 && root[0] == '[' && root[rn - 1] == ']';
            const char *clean = bracketed ? root + 1 : root;
            size_t cn = bracketed ? rn - 2 : rn;
            long idx = canonical_index(clean, cn);
            if (bracketed && idx >= 0 && idx <= array_limit) {
                obj = json_array();
                array_set(obj, (size_t)idx, leaf);
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

/* The next "[...]" group without inner brackets at or after from, or NULL. */
static const char *next_group(const char *key, size_t n, size_t from, size_t *glen)
{
    for (size_t i = from; i < n; i++) {
        if (key[i] != '[') continue;
        size_t j = i + 1;
        while (j < n && key[j] != '[' && key[j] != ']') j++;
        if (j < n && key[j] == ']') {
            *glen = j - i + 1;
            return key + i;
        }
    }
    return NULL;
}

/* qs parseKeys: the value for one decoded key (val stolen), or NULL. */
static json_t *parse_keys(const char *key, size_t n, json_t *val, int depth, int array_limit)
{
    if (n == 0) {
        json_decref(val);
        return NULL;
    }
    seg chain[64];
    int count = 0;
    size_t glen = 0;
    const char *g = depth > 0 ? next_group(key, n, 0, &glen) : NULL;
    size_t parent = g ? (size_t)(g - key) : n;
    if (parent) chain[count++] = (seg){key, parent};
    int i = 0;
    size_t from = g ? (size_t)(g - key) : n;
    const char *cur = NULL;
    char *rest = NULL;
    while (depth > 0 && (cur = next_group(key, n, from, &glen)) != NULL && i < depth && count < 62) {
        i++;
        chain[count++] = (seg){cur, glen};
        from = (size_t)(cur - key) + glen;
    }
    if (cur) {
        size_t off = (size_t)(cur - key);
        rest = malloc(n - off + 3);
        if (rest) {
            rest[0] = '[';
            memcpy(rest + 1, key + off, n - off);
            rest[n - off + 1] = ']';
            rest[n - off + 2] = 0;
            chain[count++] = (seg){rest, n - off + 2};
        }
    }
    json_t *r = parse_object(chain, count, val, array_limit);
    free(rest);
    return r;
}

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
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) json_object_set_new(v, k, compact(json_incref(e)));
    }
    return v;
}

json_t *http_qs_parse(const char *s, size_t n, int depth, int array_limit)
{
    json_t *temp = json_object();
    size_t start = 0;
    int params = 0;
    while (start <= n && params < QS_PARAMETER_LIMIT) {
        const char *amp = memchr(s + start, '&', n - start);
        size_t end = amp ? (size_t)(amp - s) : n;
        const char *part = s + start;
        size_t plen = end - start;
        params++;
        if (plen) {
            const char *be = NULL;
            for (size_t i = 0; i + 1 < plen; i++)
                if (part[i] == ']' && part[i + 1] == '=') { be = part + i; break; }
            const char *eq = be ? be + 1 : memchr(part, '=', plen);
            json_t *key, *val;
            if (!eq) {
                key = http_decode_component(part, plen, true);
                val = json_string("");
            } else {
                key = http_decode_component(part, (size_t)(eq - part), true);
                val = http_decode_component(eq + 1, plen - (size_t)(eq - part) - 1, true);
            }
            const char *k = json_string_value(key);
            json_t *old = json_object_get(temp, k);
            if (old) json_object_set_new(temp, k, concat(json_incref(old), val));
            else json_object_set_new(temp, k, val);
            json_decref(key);
        }
        if (!amp) break;
        start = end + 1;
    }
    json_t *obj = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(temp, k, v) {
        json_t *part = parse_keys(k, strlen(k), json_incref(v), depth, array_limit);
        if (part) obj = merge(obj, part);
    }
    json_decref(temp);
    return compact(obj);
}

json_t *crm_http_parse_query(const char *qs, size_t len) { return http_qs_parse(qs, len, 5, 20); }

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
