/* value.c: JavaScript value semantics on top of jansson (see value.h). */
#include "value.h"
#include "engine.h"
#include "runtime.h"
#include "json_text.h"

#include <unistd.h>
#include <fcntl.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Same layout as jansson's private json_real_t (stable since jansson 2.0):
 * a json_t header then the double. refcount (size_t)-1 marks a static value
 * that json_incref/json_decref never touch. */
typedef struct {
    json_t json;
    double value;
} static_real;

static static_real nan_real = {{JSON_REAL, (size_t)-1}, NAN};
static static_real pinf_real = {{JSON_REAL, (size_t)-1}, INFINITY};
static static_real ninf_real = {{JSON_REAL, (size_t)-1}, -INFINITY};

json_t *crm_num(double d)
{
    if (isnan(d)) return &nan_real.json;
    if (isinf(d)) return d > 0 ? &pinf_real.json : &ninf_real.json;
    if (d == 0) d = 0; /* keep -0 as 0: JSON.stringify(-0) is "0" */
    return json_real(d);
}

double crm_num_value(const json_t *v)
{
    if (!v) return NAN;
    if (json_is_real(v)) return json_real_value(v);
    if (json_is_integer(v)) return (double)json_integer_value(v);
    return NAN;
}

char *crm_fmt_number(double d, char *buf)
{
    if (isnan(d)) return strcpy(buf, "NaN");
    if (isinf(d)) return strcpy(buf, d > 0 ? "Infinity" : "-Infinity");
    if (d == 0) return strcpy(buf, "0");
    if (fabs(d) < 9007199254740992.0 && (double)(long long)d == d) {
        /* integers are the common case (ids, counts, timestamps): no printf
         * (below 2^53 a double is an integer exactly when truncating it
         * changes nothing) */
        char tmp[24];
        int i = sizeof tmp;
        unsigned long long u = (unsigned long long)fabs(d);
        while (u) {
            tmp[--i] = (char)('0' + u % 10);
            u /= 10;
        }
        char *o = buf;
        if (d < 0) *o++ = '-';
        while (i < (int)sizeof tmp) *o++ = tmp[i++];
        *o = 0;
        return buf;
    }
    char digits[24];
    int nd = 0, e;
    bool neg = d < 0;
    double a = fabs(d);
    if (a >= 1e-6 && a < 1e15) {
        /* at most 15 significant digits: the fewest decimals k for which
         * round(a * 10^k) / 10^k (a correctly rounded division of exact
         * values, as strtod reads it) is a again; two neighbours that close
         * cannot both read back as a, so these are printf's shortest digits */
        static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        for (int k = 1; k <= 15; k++) {
            double m = nearbyint(a * p10[k]);
            if (m >= 1e15) break;
            if (m / p10[k] != a) continue;
            char t[24];
            int i = sizeof t;
            for (unsigned long long u = (unsigned long long)m; u; u /= 10) t[--i] = (char)('0' + u % 10);
            nd = (int)sizeof t - i;
            for (int c = 0; c < nd; c++) digits[c] = t[i + c];
            digits[nd] = 0;
            e = nd - k - 1;
            goto format;
        }
    }
    /* shortest digits that round-trip */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp is [-]d[.ddd]e[+-]xx */
    const char *p = tmp;
    if (*p == '-') p++;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p)) digits[nd++] = *p;
    e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
format:;
    int n = e + 1; /* position of the decimal point */
    char *o = buf;
    if (neg) *o++ = '-';
    /* (byte loops: a few digits, where a call to memcpy costs more) */
    if (nd <= n && n <= 21) {
        for (int i = 0; i < nd; i++) *o++ = digits[i];
        for (int i = 0; i < n - nd; i++) *o++ = '0';
    } else if (0 < n && n <= 21) {
        for (int i = 0; i < n; i++) *o++ = digits[i];
        *o++ = '.';
        for (int i = n; i < nd; i++) *o++ = digits[i];
    } else if (-6 < n && n <= 0) {
        *o++ = '0'; *o++ = '.';
        for (int i = 0; i < -n; i++) *o++ = '0';
        for (int i = 0; i < nd; i++) *o++ = digits[i];
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, nd - 1); o += nd - 1;
        }
        o += sprintf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    *o = 0;
    return buf;
}

size_t crm_js_space_at(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    if (*s == ' ' || (*s >= '\t' && *s <= '\r')) return 1;
    if (s[0] == 0xC2 && s[1] == 0xA0) return 2; /* U+00A0 */
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3; /* U+1680 */
    if (s[0] == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3; /* U+2000-200A, U+2028, U+2029, U+202F */
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3; /* U+205F */
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    if (s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) return 3; /* U+FEFF */
    return 0;
}

const char *crm_js_skip_space(const char *s)
{
    for (size_t k; (k = crm_js_space_at(s)) > 0;) s += k;
    return s;
}

/* The length of s without its trailing JavaScript white space. */
static size_t trimmed_len(const char *s)
{
    size_t end = 0, i = 0;
    while (s[i]) {
        size_t k = crm_js_space_at(s + i);
        if (k) {
            i += k;
        } else {
            i++;
            end = i;
        }
    }
    return end;
}

double crm_parse_float(const char *s)
{
    s = crm_js_skip_space(s);
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!strncmp(p, "Infinity", 8)) return *s == '-' ? -INFINITY : INFINITY;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (!digits) return NAN;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-') q++;
        if (isdigit((unsigned char)*q)) {
            while (isdigit((unsigned char)*q)) q++;
            p = q;
        }
    }
    char *num = strndup(s, (size_t)(p - s));
    if (!num) return NAN;
    double d = strtod(num, NULL);
    free(num);
    return d;
}

double crm_parse_int(const char *s, int radix)
{
    s = crm_js_skip_space(s);
    double sign = 1;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    bool strip_prefix = true;
    if (radix == 0) {
        radix = 10;
    } else {
        if (radix < 2 || radix > 36) return NAN;
        strip_prefix = radix == 16;
    }
    if (strip_prefix && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        radix = 16;
    }
    double r = 0;
    size_t ndig = 0;
    for (;; s++, ndig++) {
        int c = (unsigned char)*s, d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
        else break;
        if (d >= radix) break;
        r = r * radix + d;
    }
    return ndig ? sign * r : NAN;
}

double crm_parse_float_value(const json_t *v)
{
    if (v && json_is_number(v)) {
        double d = crm_num_value(v);
        return d == 0 ? 0 : d; /* String(-0) is "0" */
    }
    char *s = crm_to_string(v);
    double d = s ? crm_parse_float(s) : NAN;
    free(s);
    return d;
}

double crm_parse_int_value(const json_t *v, int radix)
{
    char *s = crm_to_string(v);
    double d = s ? crm_parse_int(s, radix) : NAN;
    free(s);
    return d;
}

double crm_str_to_number(const char *s)
{
    {
        /* the common case at once: [-]digits[.digits], at most 15 digits, no
         * space: an exact integer over an exact power of ten, one correctly
         * rounded division, which is what strtod gives */
        static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        const char *p = s + (*s == '-');
        unsigned long long m = 0;
        int nd = 0, k = 0;
        while (*p >= '0' && *p <= '9') m = m * 10 + (unsigned)(*p++ - '0'), nd++;
        if (nd && *p == '.' && p[1] >= '0' && p[1] <= '9') {
            p++;
            while (*p >= '0' && *p <= '9') m = m * 10 + (unsigned)(*p++ - '0'), nd++, k++;
        }
        if (nd && nd <= 15 && !*p) {
            double r = (double)m / p10[k];
            return *s == '-' ? -r : r;
        }
    }
    s = crm_js_skip_space(s);
    /* a number's text starts with one of these (or is empty): a word is NaN at once */
    if (*s && !isdigit((unsigned char)*s) && *s != '+' && *s != '-' && *s != '.' && *s != 'I') return NAN;
    size_t len = trimmed_len(s);
    if (len == 0) return 0;
    char *copy = strndup(s, len);
    double r;
    char *end;
    if (len > 2 && copy[0] == '0' && (copy[1] == 'x' || copy[1] == 'X' || copy[1] == 'o' ||
                                      copy[1] == 'O' || copy[1] == 'b' || copy[1] == 'B')) {
        int base = (copy[1] | 32) == 'x' ? 16 : (copy[1] | 32) == 'o' ? 8 : 2;
        errno = 0;
        unsigned long long u = strtoull(copy + 2, &end, base);
        r = (*end || errno) ? NAN : (double)u;
    } else if (!strcmp(copy, "Infinity") || !strcmp(copy, "+Infinity")) {
        r = INFINITY;
    } else if (!strcmp(copy, "-Infinity")) {
        r = -INFINITY;
    } else {
        /* strtod accepts "inf", "nan" and hex floats; JavaScript does not */
        bool ok = true;
        for (size_t i = 0; i < len; i++) {
            char c = copy[i];
            if (!(isdigit((unsigned char)c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
                ok = false;
        }
        r = ok ? strtod(copy, &end) : NAN;
        if (ok && *end) r = NAN;
    }
    free(copy);
    return r;
}

/* Buffers and handles ---------------------------------------------------- */

json_t *crm_buf_new(const void *data, size_t len)
{
    json_t *o = json_object();
    json_object_set_new_nocheck(o, CRM_BUF_KEY, json_stringn_nocheck(data ? data : "", len));
    return o;
}

/* v is an object whose one member is named key: its first key compared,
 * no hash of the name (every deep copy asks this of every object) */
static inline bool only_key(const json_t *v, const char *key, size_t klen)
{
    if (!v || !json_is_object(v) || json_object_size(v) != 1) return false;
    void *it = json_object_iter((json_t *)v);
    return it && json_object_iter_key_len(it) == klen && !memcmp(json_object_iter_key(it), key, klen);
}

bool crm_is_buf(const json_t *v)
{
    return only_key(v, CRM_BUF_KEY, sizeof CRM_BUF_KEY - 1);
}

const unsigned char *crm_buf_data(const json_t *v, size_t *len)
{
    json_t *s = json_object_get(v, CRM_BUF_KEY);
    if (len) *len = s ? json_string_length(s) : 0;
    return s ? (const unsigned char *)json_string_value(s) : (const unsigned char *)"";
}

json_t *crm_handle_new(long long id)
{
    json_t *o = json_object();
    json_object_set_new_nocheck(o, CRM_HANDLE_KEY, json_integer(id));
    return o;
}

bool crm_is_handle(const json_t *v)
{
    return only_key(v, CRM_HANDLE_KEY, sizeof CRM_HANDLE_KEY - 1);
}

long long crm_handle_id(const json_t *v)
{
    return json_integer_value(json_object_get(v, CRM_HANDLE_KEY));
}

/* Length in UTF-16 code units of UTF-8 text (JavaScript's .length). */
long crm_utf8_decode(const char *str, size_t n, size_t *adv)
{
    const unsigned char *s = (const unsigned char *)str;
    *adv = 1;
    unsigned c = s[0];
    if (c < 0x80) return c;
    size_t len;
    long cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return -1;
    if (len > n) return -1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *adv = len;
    return cp;
}

size_t crm_utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xc0) == 0x80) continue;
        units += c >= 0xf0 ? 2 : 1;
    }
    return units;
}

size_t crm_utf16_prefix(const char *s, size_t n, size_t units)
{
    size_t used = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t w = c >= 0xf0 ? 2 : 1, len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (used + w > units) break;
        used += w;
        i += len;
    }
    return i < n ? i : n;
}

double crm_to_number(const json_t *v)
{
    if (!v) return NAN;
    if (json_is_number(v)) return crm_num_value(v);
    if (json_is_string(v)) return crm_str_to_number(json_string_value(v));
    if (json_is_true(v)) return 1;
    if (json_is_false(v) || json_is_null(v)) return 0;
    char *s = crm_to_string(v); /* arrays, objects and Buffers: Number(String(v)) */
    double d = crm_str_to_number(s);
    free(s);
    return d;
}

/* Whole values ----------------------------------------------------------- */

json_t *crm_msg_clone(const json_t *msg)
{
    if (!json_is_object(msg)) return crm_deep_copy(msg);
    json_t *o = json_object();
    const char *k;
    size_t klen;
    json_t *x;
    json_object_keylen_foreach((json_t *)msg, k, klen, x) {
        bool shared = klen == 3 && (!memcmp(k, "req", 3) || !memcmp(k, "res", 3)) && json_is_object(x);
        json_object_setn_new_nocheck(o, k, klen, shared ? json_incref(x) : crm_deep_copy(x));
    }
    return o;
}

json_t *crm_deep_copy(const json_t *v)
{
    if (!v) return NULL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (crm_is_handle(v)) return json_incref((json_t *)v);
        json_t *o = json_object();
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x)
            json_object_setn_new_nocheck(o, k, klen, crm_deep_copy(x));
        return o;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(a, crm_deep_copy(json_array_get(v, i)));
        return a;
    }
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_REAL:
        if (v->refcount == (size_t)-1) return (json_t *)v;
        return json_real(json_real_value(v));
    case JSON_INTEGER:
        return json_integer(json_integer_value(v));
    default:
        return (json_t *)v; /* true, false, null are static in jansson */
    }
}

bool crm_equal(const json_t *a, const json_t *b)
{
    if (!a || !b) return a == b;
    if (json_is_number(a) && json_is_number(b)) return crm_num_value(a) == crm_num_value(b);
    if (json_typeof(a) != json_typeof(b)) return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b)) return false;
        for (size_t i = 0; i < n; i++)
            if (!crm_equal(json_array_get(a, i), json_array_get(b, i))) return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return false;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)a, k, klen, x) {
            json_t *y = json_object_getn(b, k, klen);
            if (!y || !crm_equal(x, y)) return false;
        }
        return true;
    }
    default:
        return true; /* same singleton type: true/false/null */
    }
}

const char *crm_typeof(const json_t *v)
{
    if (!v) return "undefined";
    switch (json_typeof(v)) {
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "object";
    }
}

bool crm_truthy(const json_t *v)
{
    if (!v) return false;
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = crm_num_value(v);
        return d != 0 && !isnan(d);
    }
    case JSON_TRUE: return true;
    case JSON_FALSE:
    case JSON_NULL: return false;
    default: return true;
    }
}

/* Error.prototype.toString: "name: message", either alone when the other
 * is empty; an own name member (err.name = "X") counts first. */
static void error_string_into(strbuf *sb, const json_t *v)
{
    json_t *part = crm_error_part(v);
    json_t *name = json_object_get(v, "name"), *message = json_object_get(v, "message");
    if (!name) name = json_object_get(part, "name");
    if (!message) message = json_object_get(part, "message");
    char *n = name ? crm_to_string(name) : strdup("Error");
    char *m = message ? crm_to_string(message) : strdup("");
    sb_puts(sb, n ? n : "");
    if (n && *n && m && *m) sb_puts(sb, ": ");
    sb_puts(sb, m ? m : "");
    free(n);
    free(m);
}

static void to_string_into(strbuf *sb, const json_t *v, int depth)
{
    char nb[32];
    if (!v) { if (depth == 0) sb_puts(sb, "undefined"); return; }
    switch (json_typeof(v)) {
    case JSON_STRING: sb_putn(sb, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
    case JSON_REAL: sb_puts(sb, crm_fmt_number(crm_num_value(v), nb)); break;
    case JSON_TRUE: sb_puts(sb, "true"); break;
    case JSON_FALSE: sb_puts(sb, "false"); break;
    case JSON_NULL: if (depth == 0) sb_puts(sb, "null"); break;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_putc(sb, ',');
            to_string_into(sb, json_array_get(v, i), depth + 1);
        }
        break;
    case JSON_OBJECT:
        if (crm_is_buf(v)) {
            size_t n;
            const unsigned char *d = crm_buf_data(v, &n);
            sb_putn(sb, (const char *)d, n);
        } else if (crm_is_error(v)) {
            error_string_into(sb, v);
        } else {
            sb_puts(sb, "[object Object]");
        }
        break;
    }
}

char *crm_to_string(const json_t *v)
{
    strbuf sb = SB_INIT;
    to_string_into(&sb, v, 0);
    return sb_take(&sb);
}

json_t *crm_strings_of(const json_t *v)
{
    if (json_is_array(v)) {
        json_t *arr = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            char *s = crm_to_string(e);
            json_array_append_new(arr, json_string(s ? s : ""));
            free(s);
        }
        return arr;
    }
    char *s = crm_to_string(v);
    json_t *r = json_string(s ? s : "");
    free(s);
    return r;
}

/* JSON text -------------------------------------------------------------- */

/* The writers below fill sb->data directly (sb_reserve) and end it with the
 * NUL themselves. */
#define SJ_RESERVE(sb, n) do { if ((sb)->len + (n) + 1 > (sb)->cap) sb_reserve((sb), (n)); } while (0)

static inline void sj_putn(strbuf *sb, const char *s, size_t n)
{
    SJ_RESERVE(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

static inline void sj_putc(strbuf *sb, char c)
{
    SJ_RESERVE(sb, 1);
    sb->data[sb->len++] = c;
    sb->data[sb->len] = 0;
}

/* The bytes JSON.stringify escapes: control characters, '"' and '\\'. */
static const unsigned char sj_escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

void crm_put_json_string(strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* the quotes and every byte as it is; more room only at an escape */
    SJ_RESERVE(sb, n + 2);
    char *o = sb->data + sb->len;
    *o++ = '"';
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && !sj_escaped[(unsigned char)s[i]]) i++;
        memcpy(o, s + start, i - start);
        o += i - start;
        if (i == n) break;
        unsigned char c = (unsigned char)s[i++];
        sb->len = (size_t)(o - sb->data);
        SJ_RESERVE(sb, 6 + (n - i) + 1); /* the escape, the rest, the closing quote */
        o = sb->data + sb->len;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    sb->len = (size_t)(o - sb->data);
    *o = 0;
}

/* JavaScript enumerates integer-like keys (canonical array indexes) first, in
 * ascending order, then the other keys in insertion order. */
static bool array_index_key(const char *k, size_t n, unsigned long *out)
{
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0')) return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)k[i])) return false;
        v = v * 10 + (unsigned long)(k[i] - '0');
    }
    if (v >= 4294967295UL) return false;
    *out = v;
    return true;
}

static int cmp_idx(const void *a, const void *b)
{
    unsigned long x = ((const crm_entry *)a)->idx, y = ((const crm_entry *)b)->idx;
    return x < y ? -1 : x > y;
}

size_t crm_js_entries(const json_t *obj, crm_entry *buf, size_t cap, crm_entry **out)
{
    size_t n = json_object_size(obj), cnt = 0, nidx = 0;
    crm_entry *ents = n <= cap ? buf : malloc(n * sizeof *ents);
    const char *k;
    size_t klen;
    json_t *x;
    json_object_keylen_foreach((json_t *)obj, k, klen, x) {
        if (k[0] == '\x01' && !strcmp(k, CRM_ERR_KEY)) continue; /* not enumerable */
        crm_entry e = {k, klen, 0, x};
        if (array_index_key(k, klen, &e.idx)) {
            memmove(ents + nidx + 1, ents + nidx, (cnt - nidx) * sizeof *ents);
            ents[nidx++] = e;
        } else {
            ents[cnt] = e;
        }
        cnt++;
    }
    qsort(ents, nidx, sizeof *ents, cmp_idx);
    *out = ents;
    return cnt;
}

static void newline_indent(strbuf *sb, int indent, int level)
{
    if (!indent) return;
    size_t n = 1 + (size_t)indent * (size_t)level;
    SJ_RESERVE(sb, n);
    sb->data[sb->len] = '\n';
    memset(sb->data + sb->len + 1, ' ', n - 1);
    sb->len += n;
    sb->data[sb->len] = 0;
}

static void stringify_into(strbuf *sb, const json_t *v, int indent, int level);

/* An object's members in JavaScript's order: crm_js_entries' order, which is
 * insertion order when no key starts with a digit (the common case: no
 * array of entries to build and sort then). */
static void stringify_object(strbuf *sb, const json_t *v, int indent, int level)
{
    size_t mark = sb->len;
    sj_putc(sb, '{');
    bool first = true;
    /* jansson's iterator itself: json_object_keylen_foreach turns the key
     * back into an iterator three times per member */
    for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *x = json_object_iter_value(it);
        if (klen && k[0] >= '0' && k[0] <= '9') goto ordered;
        if (k[0] == '\x01' && !strcmp(k, CRM_ERR_KEY)) continue; /* an Error's hidden part */
        if (!first) sj_putc(sb, ',');
        first = false;
        newline_indent(sb, indent, level + 1);
        crm_put_json_string(sb, k, klen);
        if (indent) sj_putn(sb, ": ", 2);
        else sj_putc(sb, ':');
        stringify_into(sb, x, indent, level + 1);
    }
    if (!first) newline_indent(sb, indent, level);
    sj_putc(sb, '}');
    return;
ordered:
    sb->len = mark;
    crm_entry stackbuf[16], *ents;
    size_t cnt = crm_js_entries(v, stackbuf, 16, &ents);
    sj_putc(sb, '{');
    first = true;
    for (size_t i = 0; i < cnt; i++) {
        if (!first) sj_putc(sb, ',');
        first = false;
        newline_indent(sb, indent, level + 1);
        crm_put_json_string(sb, ents[i].key, ents[i].len);
        if (indent) sj_putn(sb, ": ", 2);
        else sj_putc(sb, ':');
        stringify_into(sb, ents[i].val, indent, level + 1);
    }
    if (!first) newline_indent(sb, indent, level);
    sj_putc(sb, '}');
    if (ents != stackbuf) free(ents);
}

static void stringify_into(strbuf *sb, const json_t *v, int indent, int level)
{
    char nb[32];
    switch (json_typeof(v)) {
    case JSON_STRING: crm_put_json_string(sb, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = crm_num_value(v);
        if (isfinite(d)) {
            crm_fmt_number(d, nb);
            sj_putn(sb, nb, strlen(nb));
        } else {
            sj_putn(sb, "null", 4);
        }
        break;
    }
    case JSON_TRUE: sj_putn(sb, "true", 4); break;
    case JSON_FALSE: sj_putn(sb, "false", 5); break;
    case JSON_NULL: sj_putn(sb, "null", 4); break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (!n) { sj_putn(sb, "[]", 2); break; }
        sj_putc(sb, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) sj_putc(sb, ',');
            newline_indent(sb, indent, level + 1);
            stringify_into(sb, json_array_get(v, i), indent, level + 1);
        }
        newline_indent(sb, indent, level);
        sj_putc(sb, ']');
        break;
    }
    case JSON_OBJECT: {
        if (json_object_size(v) == 1) {
            if (crm_is_buf(v)) {
                size_t n;
                const unsigned char *d = crm_buf_data(v, &n);
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_real(d[i]));
                json_t *o = json_pack("{s:s,s:o}", "type", "Buffer", "data", arr);
                stringify_into(sb, o, indent, level);
                json_decref(o);
                break;
            }
            if (crm_is_handle(v)) { sj_putn(sb, "{}", 2); break; }
        }
        stringify_object(sb, v, indent, level);
        break;
    }
    }
}

char *crm_stringify(const json_t *v, int indent)
{
    if (!v) return NULL;
    strbuf sb = SB_INIT;
    stringify_into(&sb, v, indent, 0);
    return sb_take(&sb);
}

void crm_stringify_append(strbuf *sb, const json_t *v, int indent)
{
    stringify_into(sb, v, indent, 0);
}

/* A JSON reader that builds the values directly, for the common case of
 * valid text. It accepts a subset of what json_loadb(JSON_DECODE_ANY |
 * JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL) accepts and builds the same
 * values (numbers as reals, duplicate keys replaced in place, \u0000 kept in
 * strings); anything else (an error, a lone surrogate escape, a number that
 * overflows, deep nesting) returns NULL and crm_parse asks jansson, which
 * gives the value or the error text. jansson's lexer reads a character at a
 * time through a string buffer per token: this is several times faster. */
typedef struct {
    const char *p, *end;
    strbuf tmp; /* decoded strings with escapes */
    int depth;
} fast_json;

#define FJ_MAX_DEPTH 512

static void fj_ws(fast_json *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t')) f->p++;
}

/* Length of the well-formed UTF-8 sequence at s (n > 0 bytes left), 0 when
 * it is not one (overlong, surrogate, above U+10FFFF, truncated). */
static size_t fj_utf8(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static int fj_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = crm_hexval((unsigned char)p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* The string at f->p (its opening quote): *out and *len, either in the text
 * itself or in f->tmp. false when it is not a string jansson takes as is. */
static bool fj_string(fast_json *f, const char **out, size_t *len)
{
    const char *s = ++f->p;
    while (f->p < f->end) {
        unsigned char c = (unsigned char)*f->p;
        if (c == '"') {
            *out = s;
            *len = (size_t)(f->p - s);
            f->p++;
            return true;
        }
        if (c == '\\') break;
        if (c < 0x20) return false;
        if (c < 0x80) {
            f->p++;
            continue;
        }
        size_t k = fj_utf8((const unsigned char *)f->p, (size_t)(f->end - f->p));
        if (!k) return false;
        f->p += k;
    }
    if (f->p >= f->end) return false;
    /* escapes: decode into tmp */
    f->tmp.len = 0;
    sb_putn(&f->tmp, s, (size_t)(f->p - s));
    while (f->p < f->end) {
        unsigned char c = (unsigned char)*f->p;
        if (c == '"') {
            *out = f->tmp.data;
            *len = f->tmp.len;
            f->p++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (f->end - f->p < 2) return false;
            char e = f->p[1];
            f->p += 2;
            switch (e) {
            case '"': sb_putc(&f->tmp, '"'); break;
            case '\\': sb_putc(&f->tmp, '\\'); break;
            case '/': sb_putc(&f->tmp, '/'); break;
            case 'b': sb_putc(&f->tmp, '\b'); break;
            case 'f': sb_putc(&f->tmp, '\f'); break;
            case 'n': sb_putc(&f->tmp, '\n'); break;
            case 'r': sb_putc(&f->tmp, '\r'); break;
            case 't': sb_putc(&f->tmp, '\t'); break;
            case 'u': {
                if (f->end - f->p < 4) return false;
                int u = fj_hex4(f->p);
                if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return false;
                f->p += 4;
                if (u >= 0xD800 && u <= 0xDBFF) { /* a pair, or jansson's error */
                    if (f->end - f->p < 6 || f->p[0] != '\\' || f->p[1] != 'u') return false;
                    int lo = fj_hex4(f->p + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF) return false;
                    f->p += 6;
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                }
                sb_put_utf8(&f->tmp, (unsigned)u);
                break;
            }
            default: return false;
            }
            continue;
        }
        size_t k = c < 0x80 ? 1 : fj_utf8((const unsigned char *)f->p, (size_t)(f->end - f->p));
        if (!k) return false;
        sb_putn(&f->tmp, f->p, k);
        f->p += k;
    }
    return false;
}

static json_t *fj_number(fast_json *f)
{
    const char *s = f->p, *p = s, *e = f->end;
    if (p < e && *p == '-') p++;
    if (p >= e) return NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (p < e && *p >= '0' && *p <= '9') p++;
    else return NULL;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    size_t n = (size_t)(p - s);
    {
        /* [-]digits[.digits] of at most 15 digits: an exact integer over an
         * exact power of ten, one correctly rounded division, which is what
         * strtod gives (as crm_str_to_number's short way) */
        static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        const char *q = s + (*s == '-');
        unsigned long long m = 0;
        int nd = 0, k = 0;
        while (q < p && *q >= '0' && *q <= '9') m = m * 10 + (unsigned)(*q++ - '0'), nd++;
        if (q < p && *q == '.')
            for (q++; q < p && *q >= '0' && *q <= '9'; q++) m = m * 10 + (unsigned)(*q - '0'), nd++, k++;
        if (q == p && nd <= 15) {
            double r = (double)m / p10[k];
            f->p = p;
            return json_real(*s == '-' ? -r : r);
        }
    }
    char buf[64];
    if (n >= sizeof buf) return NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *stop;
    double d = strtod(buf, &stop);
    /* jansson: "real number overflow"; a locale's decimal point: its strtod */
    if (isinf(d) || stop != buf + n) return NULL;
    f->p = p;
    return json_real(d);
}

static json_t *fj_value(fast_json *f);

static json_t *fj_object(fast_json *f)
{
    json_t *o = json_object();
    f->p++;
    fj_ws(f);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t klen;
        /* a NUL can only come from a \u0000 escape: in a key decoded into f->tmp */
        if (f->p >= f->end || *f->p != '"' || !fj_string(f, &k, &klen) || (k == f->tmp.data && memchr(k, 0, klen))) break;
        /* a key decoded into f->tmp outlives the next string's decoding only
         * when copied; one in the text itself stays where it is */
        char small[64], *key = (char *)k;
        if (k == f->tmp.data) {
            key = klen < sizeof small ? small : malloc(klen + 1);
            memcpy(key, k, klen);
        }
        fj_ws(f);
        json_t *v = NULL;
        if (f->p < f->end && *f->p == ':') {
            f->p++;
            fj_ws(f);
            v = fj_value(f);
        }
        if (v) json_object_setn_new_nocheck(o, key, klen, v);
        if (key != small && key != k) free(key);
        if (!v) break;
        fj_ws(f);
        if (f->p < f->end && *f->p == ',') {
            f->p++;
            fj_ws(f);
            continue;
        }
        if (f->p < f->end && *f->p == '}') {
            f->p++;
            return o;
        }
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *fj_array(fast_json *f)
{
    json_t *a = json_array();
    f->p++;
    fj_ws(f);
    if (f->p < f->end && *f->p == ']') {
        f->p++;
        return a;
    }
    for (;;) {
        json_t *v = fj_value(f);
        if (!v) break;
        json_array_append_new(a, v);
        fj_ws(f);
        if (f->p < f->end && *f->p == ',') {
            f->p++;
            fj_ws(f);
            continue;
        }
        if (f->p < f->end && *f->p == ']') {
            f->p++;
            return a;
        }
        break;
    }
    json_decref(a);
    return NULL;
}

static bool fj_word(fast_json *f, const char *w, size_t n)
{
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n)) return false;
    f->p += n;
    return true;
}

static json_t *fj_value(fast_json *f)
{
    if (f->p >= f->end) return NULL;
    switch (*f->p) {
    case '{':
    case '[': {
        if (++f->depth > FJ_MAX_DEPTH) return NULL;
        json_t *v = *f->p == '{' ? fj_object(f) : fj_array(f);
        f->depth--;
        return v;
    }
    case '"': {
        const char *s;
        size_t n;
        return fj_string(f, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't': return fj_word(f, "true", 4) ? json_true() : NULL;
    case 'f': return fj_word(f, "false", 5) ? json_false() : NULL;
    case 'n': return fj_word(f, "null", 4) ? json_null() : NULL;
    default: return fj_number(f);
    }
}

static json_t *fast_parse(const char *text, size_t len)
{
    fast_json f = {text, text + len, SB_INIT, 0};
    fj_ws(&f);
    json_t *v = fj_value(&f);
    fj_ws(&f);
    if (v && f.p != f.end) {
        json_decref(v);
        v = NULL;
    }
    sb_free(&f.tmp);
    return v;
}

json_t *crm_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_t *fast = text ? fast_parse(text, len) : NULL;
    if (fast) return fast;
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
    if (!v && err) snprintf(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
    return v;
}

static char *read_stream(FILE *f, size_t *len)
{
    strbuf b = SB_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_putn(&b, buf, n);
    if (!b.data) sb_puts(&b, "");
    if (len) *len = b.len;
    return sb_take(&b);
}

char *crm_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = read_stream(f, len);
    fclose(f);
    return text;
}

json_t *crm_parse_file(const char *path, char *err, size_t errlen)
{
    bool in = !strcmp(path, "-");
    size_t len;
    char *text = in ? read_stream(stdin, &len) : crm_read_file(path, &len);
    if (!text) {
        if (err) snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char perr[256];
    json_t *v = crm_parse(text, len, perr, sizeof perr);
    free(text);
    if (!v && err) snprintf(err, errlen, "%s: %s", path, perr);
    return v;
}

json_t *crm_normalize_numbers(json_t *v)
{
    if (!v) return v;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i);
            if (json_is_integer(x)) json_array_set_new(v, i, json_real((double)json_integer_value(x)));
            else crm_normalize_numbers(x);
        }
    } else if (json_is_object(v) && !crm_is_handle(v)) {
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach(v, k, klen, x) {
            if (json_is_integer(x)) json_object_setn_new_nocheck(v, k, klen, json_real((double)json_integer_value(x)));
            else crm_normalize_numbers(x);
        }
    }
    return v;
}

int crm_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *crm_userdir_file(const json_t *settings, const char *name)
{
    const char *dir = json_string_value(json_object_get(settings, "userDir"));
    strbuf p = SB_INIT;
    sb_printf(&p, "%s/%s", dir && *dir ? dir : ".", name);
    return sb_take(&p);
}

int crm_write_file(const char *path, const char *text, unsigned mode)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return -1;
    snprintf(tmp, n, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f && fd >= 0) close(fd);
    bool ok = f && fputs(text, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        errno = e;
        return -1;
    }
    free(tmp);
    return 0;
}
