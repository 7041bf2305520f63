/* flowtest_match.c: the value matchers of the flow test format (see
 * flowtest_match.h). Reasons are worded like the Node-RED side's checker
 * (../shared/tools/flowtest-record/lib/match.js) so that a failure reads the
 * same whichever runtime produced it. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "flowtest_match.h"

#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "value.h"

#define SHOW_MAX 200

static const char *const matcher_keys[] = {"$type", "$regex", "$approx", "$absent", "$buffer"};

bool ftm_is_matcher(const json_t *exp)
{
    if (!json_is_object(exp)) return false;
    for (size_t i = 0; i < sizeof matcher_keys / sizeof *matcher_keys; i++)
        if (json_object_get(exp, matcher_keys[i])) return true;
    return false;
}

/* Showing values --------------------------------------------------------- */

static void put_str(strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(sb, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            sb_putc(sb, '\\');
            sb_putc(sb, (char)c);
        } else if (c == '\n') {
            sb_puts(sb, "\\n");
        } else if (c < 0x20) {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            sb_puts(sb, u);
        } else {
            sb_putc(sb, (char)c);
        }
    }
    sb_putc(sb, '"');
}

static void put_hex(strbuf *sb, const unsigned char *d, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        sb_putc(sb, hex[d[i] >> 4]);
        sb_putc(sb, hex[d[i] & 15]);
    }
}

static void show_into(strbuf *sb, const json_t *v)
{
    char nb[32];
    if (!v) { sb_puts(sb, "(absent)"); return; }
    switch (json_typeof(v)) {
    case JSON_STRING: put_str(sb, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
    case JSON_REAL: sb_puts(sb, crm_fmt_number(crm_num_value(v), nb)); break;
    case JSON_TRUE: sb_puts(sb, "true"); break;
    case JSON_FALSE: sb_puts(sb, "false"); break;
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_ARRAY:
        sb_putc(sb, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_putc(sb, ',');
            show_into(sb, json_array_get(v, i));
        }
        sb_putc(sb, ']');
        break;
    case JSON_OBJECT: {
        if (crm_is_buf(v)) {
            size_t n;
            const unsigned char *d = crm_buf_data(v, &n);
            sb_puts(sb, "{\"$buffer\":\"");
            put_hex(sb, d, n);
            sb_puts(sb, "\"}");
            break;
        }
        if (crm_is_handle(v)) { sb_puts(sb, "\"[handle]\""); break; }
        const char *k;
        size_t klen;
        json_t *x;
        bool first = true;
        sb_putc(sb, '{');
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            if (!first) sb_putc(sb, ',');
            first = false;
            put_str(sb, k, klen);
            sb_putc(sb, ':');
            show_into(sb, x);
        }
        sb_putc(sb, '}');
        break;
    }
    }
}

void ftm_show(strbuf *out, const json_t *v, size_t max)
{
    strbuf tmp = SB_INIT;
    show_into(&tmp, v);
    if (max && tmp.len > max) {
        sb_putn(out, tmp.data, max);
        sb_puts(out, "...");
    } else {
        sb_putn(out, tmp.data ? tmp.data : "", tmp.len);
    }
    sb_free(&tmp);
}

static void reason(strbuf *why, const char *path, const char *what, const json_t *v)
{
    sb_printf(why, "%s: %s", path, what);
    ftm_show(why, v, SHOW_MAX);
}

/* Regular expressions ---------------------------------------------------- */

int ftm_regex_test(const char *pattern, const char *subject, size_t len, char **err)
{
    /* ECMAScript flavour: $ only at the very end, \uXXXX escapes, [] and [^]
     * as JavaScript reads them, unset back-references match the empty string. */
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY |
                    PCRE2_ALLOW_EMPTY_CLASS | PCRE2_MATCH_UNSET_BACKREF;
    int ec;
    PCRE2_SIZE eo;
    if (err) *err = NULL;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (!re) {
        if (err) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            strbuf sb = SB_INIT;
            sb_printf(&sb, "invalid regular expression /%s/ at offset %zu: %s", pattern, (size_t)eo, (char *)msg);
            *err = sb_take(&sb);
        }
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR)subject, len, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0 ? 1 : 0;
}

/* Matchers --------------------------------------------------------------- */

static const char *type_of(const json_t *a)
{
    switch (json_typeof(a)) {
    case JSON_NULL: return "null";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return crm_is_buf(a) ? "buffer" : "object";
    default: return crm_typeof(a); /* number (NaN and Infinity too), string, boolean */
    }
}

static bool hex_equal(const char *hex, const unsigned char *d, size_t n)
{
    size_t hl = strlen(hex);
    if (hl != 2 * n) return false;
    strbuf sb = SB_INIT;
    put_hex(&sb, d, n);
    bool eq = n == 0 || strncasecmp(sb.data, hex, hl) == 0;
    sb_free(&sb);
    return eq;
}

static bool match_matcher(const json_t *exp, const json_t *act, const char *path, strbuf *why)
{
    json_t *m;
    if ((m = json_object_get(exp, "$absent")) && json_is_true(m)) {
        if (!act) return true;
        reason(why, path, "expected absent, got ", act);
        return false;
    }
    if (!act) {
        reason(why, path, "missing, expected ", exp);
        return false;
    }
    if ((m = json_object_get(exp, "$type"))) {
        const char *want = json_string_value(m);
        if (want && !strcmp(want, type_of(act))) return true;
        sb_printf(why, "%s: expected type %s, got ", path, want ? want : "?");
        ftm_show(why, act, SHOW_MAX);
        return false;
    }
    if ((m = json_object_get(exp, "$regex"))) {
        const char *pat = json_string_value(m);
        char *err = NULL;
        int r = pat && json_is_string(act) ? ftm_regex_test(pat, json_string_value(act), json_string_length(act), &err) : 0;
        if (r == 1) return true;
        if (err) {
            sb_printf(why, "%s: %s", path, err);
            free(err);
            return false;
        }
        sb_printf(why, "%s: expected a string matching /%s/, got ", path, pat ? pat : "?");
        ftm_show(why, act, SHOW_MAX);
        return false;
    }
    if ((m = json_object_get(exp, "$approx"))) {
        double want = crm_num_value(m), tol = 0, got = crm_num_value(act);
        json_t *t = json_object_get(exp, "$tol");
        if (t) tol = crm_num_value(t);
        if (crm_is_num(act) && fabs(got - want) <= tol) return true;
        char a[32], b[32];
        sb_printf(why, "%s: expected %s +- %s, got ", path, crm_fmt_number(want, a), crm_fmt_number(tol, b));
        ftm_show(why, act, SHOW_MAX);
        return false;
    }
    if ((m = json_object_get(exp, "$buffer"))) {
        const char *hex = json_string_value(m);
        size_t n = 0;
        const unsigned char *d = crm_is_buf(act) ? crm_buf_data(act, &n) : NULL;
        if (hex && d && hex_equal(hex, d, n)) return true;
        sb_printf(why, "%s: expected buffer %s, got ", path, hex ? hex : "?");
        ftm_show(why, act, SHOW_MAX);
        return false;
    }
    return true; /* {"$absent": false} alone: present, any value */
}

static bool is_plain_object(const json_t *v)
{
    return json_is_object(v) && !crm_is_buf(v) && !crm_is_handle(v);
}

static void child_path(strbuf *sb, const char *path, const char *key, size_t klen)
{
    sb_puts(sb, path);
    sb_putc(sb, '.');
    sb_putn(sb, key, klen);
}

static bool match_object(const json_t *exp, const json_t *act, const char *path, strbuf *why)
{
    if (!is_plain_object(act)) {
        sb_printf(why, "%s: expected ", path);
        ftm_show(why, exp, SHOW_MAX);
        sb_puts(why, ", got ");
        ftm_show(why, act, SHOW_MAX);
        return false;
    }
    const char *k;
    size_t klen;
    json_t *x;
    json_object_keylen_foreach((json_t *)exp, k, klen, x) {
        strbuf p = SB_INIT;
        child_path(&p, path, k, klen);
        bool ok = ftm_match(x, json_object_getn(act, k, klen), p.data, why);
        sb_free(&p);
        if (!ok) return false;
    }
    json_object_keylen_foreach((json_t *)act, k, klen, x) {
        if (json_object_getn(exp, k, klen)) continue;
        if (!strcmp(k, CRM_ERR_KEY)) continue; /* an Error's members Node-RED's helper does not enumerate */
        sb_printf(why, "%s: unexpected key %.*s (", path, (int)klen, k);
        ftm_show(why, x, SHOW_MAX);
        sb_putc(why, ')');
        return false;
    }
    return true;
}

static bool match_array(const json_t *exp, const json_t *act, const char *path, strbuf *why)
{
    size_t n = json_array_size(exp);
    if (!json_is_array(act) || json_array_size(act) != n) {
        if (json_is_array(act)) sb_printf(why, "%s: expected an array of %zu, got ", path, n);
        else {
            sb_printf(why, "%s: expected ", path);
            ftm_show(why, exp, SHOW_MAX);
            sb_puts(why, ", got ");
        }
        ftm_show(why, act, SHOW_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        strbuf p = SB_INIT;
        sb_printf(&p, "%s[%zu]", path, i);
        bool ok = ftm_match(json_array_get(exp, i), json_array_get(act, i), p.data, why);
        sb_free(&p);
        if (!ok) return false;
    }
    return true;
}

bool ftm_match(const json_t *exp, const json_t *act, const char *path, strbuf *why)
{
    if (!exp) return true;
    if (ftm_is_matcher(exp)) return match_matcher(exp, act, path, why);
    if (!act) {
        reason(why, path, "missing, expected ", exp);
        return false;
    }
    if (json_is_array(exp)) return match_array(exp, act, path, why);
    if (json_is_object(exp)) return match_object(exp, act, path, why);
    if (crm_equal(exp, act)) return true;
    sb_printf(why, "%s: expected ", path);
    ftm_show(why, exp, SHOW_MAX);
    sb_puts(why, ", got ");
    ftm_show(why, act, SHOW_MAX);
    return false;
}

bool ftm_check_time(const json_t *bounds, double t_ms, const char *what, strbuf *why)
{
    if (!bounds) return true;
    double lo = crm_num_value(json_array_get(bounds, 0)), hi = crm_num_value(json_array_get(bounds, 1));
    if (!json_is_array(bounds) || isnan(lo) || isnan(hi)) {
        sb_puts(why, "$t_ms must be [LO, HI]");
        return false;
    }
    if (t_ms >= lo && t_ms <= hi) return true;
    char a[32], b[32];
    sb_printf(why, "%s at %.0f ms, expected within [%s, %s]", what, t_ms, crm_fmt_number(lo, a), crm_fmt_number(hi, b));
    return false;
}

bool ftm_match_msg(const json_t *exp, const json_t *act, double t_ms, strbuf *why)
{
    const char *k;
    size_t klen;
    json_t *x;
    if (!json_is_object(exp)) {
        sb_puts(why, "expected message is not an object");
        return false;
    }
    json_object_keylen_foreach((json_t *)exp, k, klen, x) {
        if ((klen == 5 && !memcmp(k, "$t_ms", 5)) || (klen == 6 && !memcmp(k, "_msgid", 6))) continue;
        strbuf p = SB_INIT;
        sb_puts(&p, "msg.");
        sb_putn(&p, k, klen);
        bool ok = ftm_match(x, json_is_object(act) ? json_object_getn(act, k, klen) : NULL, p.data, why);
        sb_free(&p);
        if (!ok) return false;
    }
    return ftm_check_time(json_object_get(exp, "$t_ms"), t_ms, "arrived", why);
}

/* Reviving and rewriting expected/sent values ----------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* {"$buffer": HEX} as a Buffer, or NULL when v is not one (or bad hex). */
static json_t *hex_buffer(const json_t *v)
{
    json_t *h = json_object_get(v, "$buffer");
    if (json_object_size(v) != 1 || !json_is_string(h)) return NULL;
    const char *s = json_string_value(h);
    size_t n = json_string_length(h);
    if (n % 2) return NULL;
    unsigned char *d = malloc(n / 2 + 1);
    if (!d) return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval((unsigned char)s[2 * i]), b = hexval((unsigned char)s[2 * i + 1]);
        if (a < 0 || b < 0) { free(d); return NULL; }
        d[i] = (unsigned char)(a << 4 | b);
    }
    json_t *buf = crm_buf_new(d, n / 2);
    free(d);
    return buf;
}

json_t *ftm_revive(const json_t *v)
{
    if (!v) return NULL;
    if (json_is_integer(v)) return json_real((double)json_integer_value(v));
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++) json_array_append_new(a, ftm_revive(json_array_get(v, i)));
        return a;
    }
    if (json_is_object(v)) {
        json_t *buf = hex_buffer(v);
        if (buf) return buf;
        json_t *o = json_object();
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) json_object_setn_new_nocheck(o, k, klen, ftm_revive(x));
        return o;
    }
    return crm_deep_copy(v);
}

json_t *ftm_subst(const json_t *v, const char *tok, const char *value)
{
    size_t toklen = strlen(tok);
    if (!v) return NULL;
    if (json_is_string(v)) {
        const char *s = json_string_value(v), *end = s + json_string_length(v), *p;
        if (!memmem(s, (size_t)(end - s), tok, toklen)) return crm_deep_copy(v);
        strbuf sb = SB_INIT;
        sb_putn(&sb, "", 0);
        while ((p = memmem(s, (size_t)(end - s), tok, toklen))) {
            sb_putn(&sb, s, (size_t)(p - s));
            sb_puts(&sb, value);
            s = p + toklen;
        }
        sb_putn(&sb, s, (size_t)(end - s));
        json_t *r = json_stringn_nocheck(sb.data ? sb.data : "", sb.len);
        sb_free(&sb);
        return r;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++) json_array_append_new(a, ftm_subst(json_array_get(v, i), tok, value));
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) json_object_setn_new_nocheck(o, k, klen, ftm_subst(x, tok, value));
        return o;
    }
    return crm_deep_copy(v);
}

/* UTF-8 text --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0 and *bad set to the bytes the
 * WHATWG decoder folds into one U+FFFD (the maximal subpart). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

json_t *ftm_text(const char *bytes, size_t len)
{
    const unsigned char *s = (const unsigned char *)bytes;
    strbuf sb = SB_INIT;
    sb_putn(&sb, "", 0);
    size_t i = 0;
    while (i < len) {
        size_t bad = 0, n = utf8_seq(s + i, len - i, &bad);
        if (n) {
            sb_putn(&sb, bytes + i, n);
            i += n;
        } else {
            sb_puts(&sb, "\xEF\xBF\xBD");
            i += bad;
        }
    }
    json_t *r = json_stringn_nocheck(sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return r;
}
