/* jsonata_fn.c: JSONata's built-in function library ($sum, $string,
 * $substring, $map, $sort, $match, $replace, ...), with jsonata-js's
 * signatures and error codes. Arguments arrive validated against the
 * signature (borrowed, NULL = undefined); each returns a new reference.
 * Date/time and number-picture functions live in jsonata_datetime.c and
 * jsonata_format.c (another file set), reached through weak symbols. */
#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <wctype.h>

#include "jsonata_int.h"

#define U __attribute__((unused))
#define FN(name) static json_t *fn_##name(jeval *E U, json_t **a U, int n U, json_t *ctx U)
#define ARG(i) ((i) < n ? a[i] : NULL)
#define UNUSED_CTX (void)ctx

/* Functions of the date/number formatting file set, when linked in. */
#define WEAK __attribute__((weak))
json_t *jsonata_fn_formatNumber(void *, json_t **, size_t, jsonata_error *) WEAK;
json_t *jsonata_fn_formatBase(void *, json_t **, size_t, jsonata_error *) WEAK;
json_t *jsonata_fn_formatInteger(void *, json_t **, size_t, jsonata_error *) WEAK;
json_t *jsonata_fn_parseInteger(void *, json_t **, size_t, jsonata_error *) WEAK;
json_t *jsonata_fn_fromMillis(void *, json_t **, size_t, jsonata_error *) WEAK;
json_t *jsonata_fn_toMillis(void *, json_t **, size_t, jsonata_error *) WEAK;

static json_t *fail(jeval *E, const char *code, const json_t *value)
{
    jeval_fail(E, code, 0, NULL, value);
    return NULL;
}

static json_t *num(jeval *E, double d) { return jv_number(E, d, 0); }

static const char *sv(const json_t *v) { return json_string_value(v); }
static size_t sl(const json_t *v) { return json_string_length(v); }

/* UTF-8 code point helpers: $length/$substring count code points, like
 * jsonata-js's Array.from(str). */
static size_t cp_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static size_t cp_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i += cp_len((unsigned char)s[i])) c++;
    return c;
}

static size_t cp_offset(const char *s, size_t n, size_t idx)
{
    size_t i = 0;
    while (i < n && idx > 0) {
        i += cp_len((unsigned char)s[i]);
        idx--;
    }
    return i > n ? n : i;
}


/* Aggregates --------------------------------------------------------------- */

FN(sum)
{
    UNUSED_CTX;
    json_t *arr = ARG(0);
    if (!arr) return NULL;
    double t = 0;
    for (size_t i = 0; i < jv_len(arr); i++) t += jv_num(jv_at(arr, i));
    return num(E, t);
}

FN(count)
{
    UNUSED_CTX;
    json_t *arr = ARG(0);
    return json_real(arr ? (double)jv_len(arr) : 0);
}

static json_t *minmax(jeval *E, json_t *arr, bool max)
{
    if (!arr || jv_len(arr) == 0) return NULL;
    double r = max ? -INFINITY : INFINITY;
    for (size_t i = 0; i < jv_len(arr); i++) {
        double d = jv_num(jv_at(arr, i));
        if (max ? d > r : d < r) r = d;
    }
    return num(E, r);
}

FN(max) { UNUSED_CTX; return minmax(E, ARG(0), true); }
FN(min) { UNUSED_CTX; return minmax(E, ARG(0), false); }

FN(average)
{
    UNUSED_CTX;
    json_t *arr = ARG(0);
    if (!arr || jv_len(arr) == 0) return NULL;
    double t = 0;
    for (size_t i = 0; i < jv_len(arr); i++) t += jv_num(jv_at(arr, i));
    return num(E, t / (double)jv_len(arr));
}

/* Strings ------------------------------------------------------------------ */

FN(string)
{
    UNUSED_CTX;
    json_t *v = ARG(0);
    if (!v) return NULL;
    if (jv_is_num(v) && !isfinite(jv_num(v))) return fail(E, "D3001", v);
    char *s = jv_stringify(E, v, jv_truthy(ARG(1)));
    if (E->failed) return NULL;
    json_t *r = jv_strz(s);
    free(s);
    return r;
}

FN(length)
{
    UNUSED_CTX;
    json_t *s = ARG(0);
    if (!s) return NULL;
    return json_real((double)cp_count(sv(s), sl(s)));
}

FN(substring)
{
    UNUSED_CTX;
    json_t *s = ARG(0);
    if (!s) return NULL;
    const char *str = sv(s);
    size_t len = sl(s);
    double total = (double)cp_count(str, len);
    double start = trunc(jv_num(ARG(1)));
    if (isnan(start)) start = 0;
    if (total + start < 0) start = 0;
    double end = total;
    if (ARG(2)) {
        double l = trunc(jv_num(ARG(2)));
        if (!(l > 0)) return jv_strz("");
        end = start >= 0 ? start + l : total + start + l;
    }
    if (start < 0) start += total;
    if (end < 0) end += total;
    if (start < 0) start = 0;
    if (end > total) end = total;
    if (start >= end) return jv_strz("");
    size_t bs = cp_offset(str, len, (size_t)start), be = cp_offset(str, len, (size_t)end);
    return jv_str(str + bs, be - bs);
}

static const char *mem_find(const char *h, size_t hn, const char *nd, size_t nn)
{
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    return memmem(h, hn, nd, nn);
}

FN(substringBefore)
{
    UNUSED_CTX;
    json_t *s = ARG(0), *c = ARG(1);
    if (!s) return NULL;
    const char *p = mem_find(sv(s), sl(s), sv(c), sl(c));
    if (!p) return jv_incref(s);
    return jv_str(sv(s), (size_t)(p - sv(s)));
}

FN(substringAfter)
{
    UNUSED_CTX;
    json_t *s = ARG(0), *c = ARG(1);
    if (!s) return NULL;
    const char *p = mem_find(sv(s), sl(s), sv(c), sl(c));
    if (!p) return jv_incref(s);
    size_t off = (size_t)(p - sv(s)) + sl(c);
    return jv_str(sv(s) + off, sl(s) - off);
}

static locale_t g_utf8;
static pthread_once_t case_once = PTHREAD_ONCE_INIT;
static void case_init(void) { g_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

static unsigned decode_cp(const unsigned char *s, size_t n, size_t *adv)
{
    size_t l = cp_len(s[0]);
    if (l > n) l = n;
    *adv = l;
    if (l == 1) return s[0];
    unsigned cp = s[0] & (l == 2 ? 0x1F : l == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < l; i++) cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

static void encode_cp(strbuf *sb, unsigned cp)
{
    char b[4];
    int n;
    if (cp < 0x80) { b[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 63)); n = 2; }
    else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 63));
        b[2] = (char)(0x80 | (cp & 63)); n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 63));
        b[2] = (char)(0x80 | ((cp >> 6) & 63)); b[3] = (char)(0x80 | (cp & 63)); n = 4;
    }
    sb_putn(sb, b, n);
}

static json_t *change_case(json_t *s, bool upper)
{
    if (!s) return NULL;
    pthread_once(&case_once, case_init);
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    const unsigned char *p = (const unsigned char *)sv(s);
    size_t n = sl(s);
    for (size_t i = 0; i < n;) {
        size_t adv;
        unsigned cp = decode_cp(p + i, n - i, &adv);
        if (cp < 0x80) cp = upper ? (unsigned)toupper((int)cp) : (unsigned)tolower((int)cp);
        else if (g_utf8) cp = upper ? (unsigned)towupper_l((wint_t)cp, g_utf8) : (unsigned)towlower_l((wint_t)cp, g_utf8);
        encode_cp(&sb, cp);
        i += adv;
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

FN(lowercase) { UNUSED_CTX; (void)E; return change_case(ARG(0), false); }
FN(uppercase) { UNUSED_CTX; (void)E; return change_case(ARG(0), true); }

FN(trim)
{
    UNUSED_CTX;
    (void)E;
    json_t *s = ARG(0);
    if (!s) return NULL;
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    const char *p = sv(s);
    size_t len = sl(s);
    bool ws = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ws = true;
        } else {
            if (ws && sb.len > 0) sb_putc(&sb, ' ');
            ws = false;
            sb_putc(&sb, c);
        }
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

FN(pad)
{
    UNUSED_CTX;
    json_t *s = ARG(0);
    if (!s) return NULL;
    double width = trunc(jv_num(ARG(1)));
    const char *ch = ARG(2) && sl(ARG(2)) > 0 ? sv(ARG(2)) : " ";
    size_t chl = ARG(2) && sl(ARG(2)) > 0 ? sl(ARG(2)) : 1;
    double padlen = fabs(width) - (double)cp_count(sv(s), sl(s));
    if (!(padlen > 0)) return jv_incref(s);
    /* at least one byte per padding character: refuse before allocating */
    if (!jv_string_fits(E, padlen > (double)E->max_string ? E->max_string + 1 : sl(s) + (size_t)padlen)) return NULL;
    strbuf pad = SB_INIT;
    size_t chcount = cp_count(ch, chl);
    size_t need = (size_t)padlen;
    for (size_t i = 0; i < need; i++) {
        size_t k = i % chcount;
        size_t o = cp_offset(ch, chl, k), e = cp_offset(ch, chl, k + 1);
        sb_putn(&pad, ch + o, e - o);
    }
    strbuf sb = SB_INIT;
    if (width > 0) {
        sb_putn(&sb, sv(s), sl(s));
        sb_putn(&sb, pad.data, pad.len);
    } else {
        sb_putn(&sb, pad.data, pad.len);
        sb_putn(&sb, sv(s), sl(s));
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    sb_free(&pad);
    return r;
}

FN(join)
{
    UNUSED_CTX;
    json_t *arr = ARG(0);
    if (!arr) return NULL;
    size_t total = 0, seplen = ARG(1) ? sl(ARG(1)) : 0;
    for (size_t i = 0; i < jv_len(arr) && total <= E->max_string; i++) total += sl(jv_at(arr, i)) + (i ? seplen : 0);
    if (!jv_string_fits(E, total)) return NULL;
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (size_t i = 0; i < jv_len(arr); i++) {
        if (i && ARG(1)) sb_putn(&sb, sv(ARG(1)), sl(ARG(1)));
        json_t *x = jv_at(arr, i);
        sb_putn(&sb, sv(x), sl(x));
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

/* Regular expressions -------------------------------------------------------- */

static double u16_index(const char *s, size_t byteoff) { return (double)ju_len16(s, byteoff); }

/* One match of a regex at or after byte offset from: an object
 * {match, start, end, groups} (start/end in UTF-16 units) with the byte
 * span in bs and be; NULL when none. */
static json_t *regex_match_at(jeval *E, jfunc *re, const char *s, size_t len, size_t from, size_t *bs, size_t *be)
{
    (void)E;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->re, NULL);
    int rc = pcre2_match(re->re, (PCRE2_SPTR)s, len, from, 0, md, NULL);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return NULL;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t ng = pcre2_get_ovector_count(md);
    json_t *o = json_object();
    json_object_set_new(o, "match", jv_str(s + ov[0], ov[1] - ov[0]));
    json_object_set_new(o, "start", json_real(u16_index(s, ov[0])));
    json_object_set_new(o, "end", json_real(u16_index(s, ov[1])));
    json_t *groups = json_array();
    uint32_t cap = 0;
    pcre2_pattern_info(re->re, PCRE2_INFO_CAPTURECOUNT, &cap);
    for (uint32_t g = 1; g <= cap; g++) {
        if (g < ng && (int)g < rc && ov[2 * g] != PCRE2_UNSET)
            json_array_append_new(groups, jv_str(s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
        else
            json_array_append_new(groups, jv_strz(""));
    }
    json_object_set_new(o, "groups", groups);
    *bs = ov[0];
    *be = ov[1];
    pcre2_match_data_free(md);
    return o;
}

json_t *jfn_regex_exec(jeval *E, jfunc *re, const char *s, size_t len, size_t from)
{
    size_t bs, be;
    return regex_match_at(E, re, s, len, from, &bs, &be);
}

/* Iterates the matches of a matcher (regex or custom function). */
typedef struct {
    jeval *E;
    json_t *matcher;
    const char *s;
    size_t len;
    size_t next_from;
    json_t *custom_next; /* custom matcher: the 'next' function of the last result */
    bool first, done;
    int position;
} matcher_iter;

/* next match: object {match,start,end,groups}, byte span in bs/be; NULL at end or error */
static json_t *iter_next(matcher_iter *it, size_t *bs, size_t *be)
{
    jeval *E = it->E;
    if (it->done || !jv_is_func(it->matcher)) return NULL;
    jfunc *f = (jfunc *)it->matcher;
    if (f->kind == F_REGEX) {
        if (!it->first && it->next_from >= it->len) {
            it->done = true;
            return NULL;
        }
        json_t *m = regex_match_at(E, f, it->s, it->len, it->next_from, bs, be);
        if (!m) {
            it->done = true;
            return NULL;
        }
        if (!it->first && *bs == *be) {
            json_decref(m);
            json_t *src = jv_strz(f->re_src ? f->re_src : "");
            jeval_fail(E, "D1004", it->position, NULL, src);
            json_decref(src);
            return NULL;
        }
        it->first = false;
        it->next_from = *be;
        return m;
    }
    json_t *m;
    if (it->first) {
        json_t *str = jv_str(it->s, it->len);
        m = japply(E, it->matcher, &str, 1, NULL, it->position);
        json_decref(str);
        it->first = false;
    } else {
        if (!jv_is_func(it->custom_next)) {
            it->done = true;
            return NULL;
        }
        m = japply(E, it->custom_next, NULL, 0, NULL, it->position);
    }
    if (E->failed || !m) {
        jv_decref(m);
        it->done = true;
        return NULL;
    }
    json_t *mm = json_is_object(m) ? json_object_get(m, "match") : NULL;
    json_t *st = json_is_object(m) ? json_object_get(m, "start") : NULL;
    json_t *en = json_is_object(m) ? json_object_get(m, "end") : NULL;
    json_t *gr = json_is_object(m) ? json_object_get(m, "groups") : NULL;
    if (!jv_is_str(mm) || !jv_is_num(st) || !jv_is_num(en) || !jv_is_arr(gr)) {
        jv_decref(m);
        jeval_fail(E, "T1010", it->position, NULL, NULL);
        return NULL;
    }
    it->custom_next = json_object_get(m, "next");
    *bs = ju_off16(it->s, it->len, (size_t)jv_num(st));
    *be = ju_off16(it->s, it->len, (size_t)jv_num(en));
    json_t *o = json_object();
    json_object_set(o, "match", mm);
    json_object_set(o, "start", st);
    json_object_set(o, "end", en);
    json_object_set(o, "groups", gr);
    jv_decref(m);
    return o;
}

static void iter_init(matcher_iter *it, jeval *E, json_t *matcher, json_t *s)
{
    memset(it, 0, sizeof *it);
    it->E = E;
    it->matcher = matcher;
    it->s = sv(s);
    it->len = sl(s);
    it->first = true;
}

FN(match)
{
    UNUSED_CTX;
    json_t *s = ARG(0);
    if (!s) return NULL;
    json_t *lim = ARG(2);
    if (lim && jv_num(lim) < 0) return fail(E, "D3040", lim);
    jarr *r = (jarr *)jseq_new();
    if (!lim || jv_num(lim) > 0) {
        matcher_iter it;
        iter_init(&it, E, ARG(1), s);
        size_t count = 0, bs, be;
        while (!lim || (double)count < jv_num(lim)) {
            json_t *m = iter_next(&it, &bs, &be);
            if (!m) break;
            json_t *o = json_object();
            json_object_set(o, "match", json_object_get(m, "match"));
            json_object_set(o, "index", json_object_get(m, "start"));
            json_object_set(o, "groups", json_object_get(m, "groups"));
            json_decref(m);
            jarr_push(r, o);
            count++;
        }
        if (E->failed) {
            jv_decref(&r->h);
            return NULL;
        }
    }
    return &r->h;
}

FN(contains)
{
    UNUSED_CTX;
    json_t *s = ARG(0), *t = ARG(1);
    if (!s || !t) return NULL;
    if (jv_is_str(t)) return json_boolean(mem_find(sv(s), sl(s), sv(t), sl(t)) != NULL);
    matcher_iter it;
    iter_init(&it, E, t, s);
    size_t bs, be;
    json_t *m = iter_next(&it, &bs, &be);
    bool found = m != NULL;
    json_decref(m);
    if (E->failed) return NULL;
    return json_boolean(found);
}

static void substitute(strbuf *out, const char *rep, size_t rn, json_t *m)
{
    json_t *groups = json_object_get(m, "groups");
    size_t ng = json_array_size(groups);
    size_t pos = 0;
    while (pos < rn) {
        const char *d = memchr(rep + pos, '$', rn - pos);
        if (!d) break;
        size_t idx = (size_t)(d - rep);
        sb_putn(out, rep + pos, idx - pos);
        pos = idx + 1;
        char c = pos < rn ? rep[pos] : 0;
        if (c == '$') {
            sb_putc(out, '$');
            pos++;
        } else if (c == '0') {
            json_t *mt = json_object_get(m, "match");
            sb_putn(out, sv(mt), sl(mt));
            pos++;
        } else {
            int maxd = ng == 0 ? 1 : (int)floor(log10((double)ng)) + 1;
            int digits = 0;
            long v = 0;
            while (digits < maxd && pos + (size_t)digits < rn && isdigit((unsigned char)rep[pos + (size_t)digits])) {
                v = v * 10 + (rep[pos + (size_t)digits] - '0');
                digits++;
            }
            if (digits > 1 && (size_t)v > ng) {
                v /= 10;
                digits--;
            }
            if (digits == 0) {
                sb_putc(out, '$');
            } else {
                if (ng > 0 && v >= 1 && (size_t)v <= ng) {
                    json_t *g = json_array_get(groups, (size_t)v - 1);
                    sb_putn(out, sv(g), sl(g));
                }
                char tmp[24];
                pos += (size_t)snprintf(tmp, sizeof tmp, "%ld", v);
            }
        }
    }
    if (pos < rn) sb_putn(out, rep + pos, rn - pos);
}

FN(replace)
{
    UNUSED_CTX;
    json_t *s = ARG(0), *pat = ARG(1), *rep = ARG(2), *lim = ARG(3);
    if (!s) return NULL;
    if (jv_is_str(pat) && sl(pat) == 0) return fail(E, "D3010", pat);
    if (lim && jv_num(lim) < 0) return fail(E, "D3011", lim);
    if (lim && !(jv_num(lim) > 0)) return jv_incref(s);
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    const char *str = sv(s);
    size_t len = sl(s), pos = 0, count = 0;
    if (jv_is_str(pat)) {
        for (;;) {
            if (lim && (double)count >= jv_num(lim)) break;
            const char *p = mem_find(str + pos, len - pos, sv(pat), sl(pat));
            if (!p) break;
            size_t idx = (size_t)(p - str);
            sb_putn(&sb, str + pos, idx - pos);
            if (jv_is_str(rep)) sb_putn(&sb, sv(rep), sl(rep));
            pos = idx + sl(pat);
            count++;
            if (!jv_string_fits(E, sb.len)) {
                sb_free(&sb);
                return NULL;
            }
        }
        sb_putn(&sb, str + pos, len - pos);
    } else {
        matcher_iter it;
        iter_init(&it, E, pat, s);
        size_t bs, be;
        for (;;) {
            if (lim && (double)count >= jv_num(lim)) break;
            json_t *m = iter_next(&it, &bs, &be);
            if (!m) break;
            if (bs < pos) bs = pos;
            sb_putn(&sb, str + pos, bs - pos);
            if (jv_is_str(rep)) {
                substitute(&sb, sv(rep), sl(rep), m);
            } else {
                json_t *r = japply(E, rep, &m, 1, NULL, 0);
                if (E->failed) {
                    json_decref(m);
                    break;
                }
                if (!jv_is_str(r)) {
                    jeval_fail(E, "D3012", 0, NULL, r);
                    jv_decref(r);
                    json_decref(m);
                    break;
                }
                sb_putn(&sb, sv(r), sl(r));
                jv_decref(r);
            }
            pos = be;
            count++;
            json_decref(m);
            if (!jv_string_fits(E, sb.len)) break;
        }
        if (E->failed) {
            sb_free(&sb);
            return NULL;
        }
        sb_putn(&sb, str + pos, len - pos);
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

FN(split)
{
    UNUSED_CTX;
    json_t *s = ARG(0), *sep = ARG(1), *lim = ARG(2);
    if (!s) return NULL;
    if (lim && jv_num(lim) < 0) return fail(E, "D3020", lim);
    json_t *r = json_array();
    double limit = lim ? floor(jv_num(lim)) : INFINITY;
    if (!(limit > 0)) return r;
    const char *str = sv(s);
    size_t len = sl(s);
    if (jv_is_str(sep)) {
        size_t sn = sl(sep);
        if (sn == 0) {
            for (size_t i = 0; i < len && (double)json_array_size(r) < limit;) {
                size_t l = cp_len((unsigned char)str[i]);
                if (l > len - i) l = len - i; /* a bad lead byte near the end: never read past it */
                json_array_append_new(r, jv_str(str + i, l));
                i += l;
            }
            return r;
        }
        size_t pos = 0;
        for (;;) {
            if ((double)json_array_size(r) >= limit) break;
            const char *p = mem_find(str + pos, len - pos, sv(sep), sn);
            if (!p) {
                json_array_append_new(r, jv_str(str + pos, len - pos));
                break;
            }
            json_array_append_new(r, jv_str(str + pos, (size_t)(p - str) - pos));
            pos = (size_t)(p - str) + sn;
        }
        return r;
    }
    matcher_iter it;
    iter_init(&it, E, sep, s);
    size_t start = 0, bs, be;
    double count = 0;
    for (;;) {
        if (count >= limit) break;
        json_t *m = iter_next(&it, &bs, &be);
        if (!m) break;
        json_array_append_new(r, jv_str(str + start, bs > start ? bs - start : 0));
        start = be;
        count++;
        json_decref(m);
    }
    if (E->failed) {
        json_decref(r);
        return NULL;
    }
    if (count < limit) json_array_append_new(r, jv_str(str + start, len - start));
    return r;
}

/* Numbers ------------------------------------------------------------------ */

static bool decimal_syntax(const char *s)
{
    const char *p = s;
    if (*p == '-') p++;
    if (!isdigit((unsigned char)*p)) return false;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p)) p++;
    }
    return *p == 0;
}

FN(number)
{
    UNUSED_CTX;
    json_t *v = ARG(0);
    if (!v) return NULL;
    if (jv_is_num(v)) return jv_incref(v);
    if (json_is_true(v)) return json_real(1);
    if (json_is_false(v)) return json_real(0);
    if (jv_is_str(v)) {
        const char *s = sv(v);
        if (decimal_syntax(s)) {
            double d = strtod(s, NULL);
            if (isfinite(d)) return json_real(d);
        }
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' || s[1] == 'B')) {
            int base = (s[1] | 32) == 'x' ? 16 : (s[1] | 32) == 'o' ? 8 : 2;
            char *end;
            unsigned long long u = strtoull(s + 2, &end, base);
            if (*end == 0 && s[2]) return json_real((double)u);
        }
    }
    return fail(E, "D3030", v);
}

FN(floor) { UNUSED_CTX; return ARG(0) ? num(E, floor(jv_num(ARG(0)))) : NULL; }
FN(ceil) { UNUSED_CTX; return ARG(0) ? num(E, ceil(jv_num(ARG(0)))) : NULL; }
FN(abs) { UNUSED_CTX; return ARG(0) ? num(E, fabs(jv_num(ARG(0)))) : NULL; }

FN(sqrt)
{
    UNUSED_CTX;
    if (!ARG(0)) return NULL;
    double d = jv_num(ARG(0));
    if (d < 0) return fail(E, "D3060", ARG(0));
    return num(E, sqrt(d));
}

FN(power)
{
    UNUSED_CTX;
    if (!ARG(0)) return NULL;
    double r = pow(jv_num(ARG(0)), jv_num(ARG(1)));
    if (!isfinite(r)) {
        jeval_fail(E, "D3061", 0, NULL, ARG(0));
        char b1[32], b2[32];
        snprintf(E->err->message, sizeof E->err->message,
                 "The power function has resulted in a value that cannot be represented as a JSON number: "
                 "base=%s, exponent=%s",
                 crm_fmt_number(jv_num(ARG(0)), b1), crm_fmt_number(jv_num(ARG(1)), b2));
        return NULL;
    }
    return num(E, r);
}

/* JS Math.round with round-half-to-even and a decimal precision, done on the
 * decimal text as jsonata-js does to avoid binary drift. */
static double shift_decimal(double v, int by)
{
    char buf[48], out[64];
    crm_fmt_number(v, buf);
    char *e = strchr(buf, 'e');
    int exp = 0;
    if (e) {
        exp = atoi(e + 1);
        *e = 0;
    }
    snprintf(out, sizeof out, "%se%d", buf, exp + by);
    return strtod(out, NULL);
}

FN(round)
{
    UNUSED_CTX;
    if (!ARG(0)) return NULL;
    double x = jv_num(ARG(0));
    int prec = ARG(1) ? (int)trunc(jv_num(ARG(1))) : 0;
    if (prec) x = shift_decimal(x, prec);
    double r = floor(x + 0.5);
    double diff = r - x;
    if (fabs(diff) == 0.5 && fabs(fmod(r, 2)) == 1) r -= 1;
    if (prec) r = shift_decimal(r, -prec);
    if (r == 0) r = 0;
    return num(E, r);
}

static double rand01(void)
{
    static __thread unsigned long long s;
    if (!s) s = (unsigned long long)jnow_ms() ^ (unsigned long long)(uintptr_t)&s ^ 0x9E3779B97F4A7C15ULL;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (double)(s >> 11) / 9007199254740992.0;
}

FN(random) { UNUSED_CTX; (void)a; (void)n; (void)E; return json_real(rand01()); }

/* Booleans ------------------------------------------------------------------ */

FN(boolean) { UNUSED_CTX; (void)E; return ARG(0) ? json_boolean(jv_truthy(ARG(0))) : NULL; }
FN(not) { UNUSED_CTX; (void)E; return ARG(0) ? json_boolean(!jv_truthy(ARG(0))) : NULL; }
FN(exists) { UNUSED_CTX; (void)E; return json_boolean(ARG(0) != NULL); }

/* Higher-order functions ------------------------------------------------------ */

/* T0410 for a higher-order function called without its function argument:
 * the signatures of $sift (and of $single, $sort) make it optional, and
 * jsonata-js then fails with a TypeError when it calls it. */
static json_t *no_function(jeval *E, const char *fname, int index)
{
    if (!E->failed) {
        jerr_std(E->err, "T0410", 0, fname, NULL, index);
        E->failed = true;
    }
    return NULL;
}

static json_t *call_hof(jeval *E, json_t *fn, json_t *a1, json_t *a2, json_t *a3)
{
    if (!jv_is_func(fn)) return no_function(E, "function", 2);
    int ar = jfunc_arity(fn);
    json_t *args[3] = {a1, a2, a3};
    int na = 1;
    if (ar >= 2) na = 2;
    if (ar >= 3) na = 3;
    return japply(E, fn, args, na, NULL, 0);
}

/* call_hof over an array item: the index argument is made only when the
 * function takes it. */
static json_t *call_hof_item(jeval *E, json_t *fn, json_t *arr, size_t i)
{
    if (jfunc_arity(fn) < 2) return call_hof(E, fn, jv_at(arr, i), NULL, arr);
    json_t *idx = json_real((double)i);
    json_t *v = call_hof(E, fn, jv_at(arr, i), idx, arr);
    json_decref(idx);
    return v;
}

FN(map)
{
    UNUSED_CTX;
    json_t *arr = ARG(0), *fn = ARG(1);
    if (!arr) return NULL;
    if (!jv_is_func(fn)) return no_function(E, "map", 2);
    jarr *r = (jarr *)jseq_new();
    for (size_t i = 0; i < jv_len(arr); i++) {
        json_t *v = call_hof_item(E, fn, arr, i);
        if (E->failed) {
            jv_decref(&r->h);
            return NULL;
        }
        if (v) jarr_push(r, v);
    }
    return &r->h;
}

FN(filter)
{
    UNUSED_CTX;
    json_t *arr = ARG(0), *fn = ARG(1);
    if (!arr) return NULL;
    if (!jv_is_func(fn)) return no_function(E, "filter", 2);
    jarr *r = (jarr *)jseq_new();
    for (size_t i = 0; i < jv_len(arr); i++) {
        json_t *v = call_hof_item(E, fn, arr, i);
        if (E->failed) {
            jv_decref(&r->h);
            return NULL;
        }
        if (jv_truthy(v)) jarr_push_ref(r, jv_at(arr, i));
        jv_decref(v);
    }
    return &r->h;
}

FN(single)
{
    UNUSED_CTX;
    json_t *arr = ARG(0), *fn = ARG(1);
    if (!arr) return NULL;
    bool found = false;
    json_t *result = NULL;
    for (size_t i = 0; i < jv_len(arr); i++) {
        bool pass = true;
        if (fn) {
            json_t *v = call_hof_item(E, fn, arr, i);
            if (E->failed) {
                jv_decref(result);
                return NULL;
            }
            pass = jv_truthy(v);
            jv_decref(v);
        }
        if (pass) {
            if (found) {
                jv_decref(result);
                return fail(E, "D3138", NULL);
            }
            found = true;
            result = jv_incref(jv_at(arr, i));
        }
    }
    if (!found) return fail(E, "D3139", NULL);
    return result;
}

FN(zip)
{
    UNUSED_CTX;
    (void)E;
    json_t *r = json_array();
    if (n == 0) return r;
    size_t minlen = SIZE_MAX;
    for (int i = 0; i < n; i++) {
        if (!a[i]) return r;
        size_t l = jv_len(a[i]);
        if (l < minlen) minlen = l;
    }
    for (size_t k = 0; k < minlen; k++) {
        json_t *t = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(t, jv_to_json(jv_at(a[i], k)));
        json_array_append_new(r, t);
    }
    return r;
}

FN(reduce)
{
    UNUSED_CTX;
    json_t *arr = ARG(0), *fn = ARG(1), *init = ARG(2);
    if (!arr) return NULL;
    if (!jv_is_func(fn)) return no_function(E, "reduce", 2);
    int ar = jfunc_arity(fn);
    if (ar < 2) return fail(E, "D3050", NULL);
    json_t *result;
    size_t i;
    if (!init && jv_len(arr) > 0) {
        result = jv_incref(jv_at(arr, 0));
        i = 1;
    } else {
        result = jv_incref(init);
        i = 0;
    }
    for (; i < jv_len(arr); i++) {
        json_t *idx = json_real((double)i);
        json_t *args[4] = {result, jv_at(arr, i), idx, arr};
        int na = ar >= 4 ? 4 : ar >= 3 ? 3 : 2;
        json_t *nr = japply(E, fn, args, na, NULL, 0);
        json_decref(idx);
        jv_decref(result);
        result = nr;
        if (E->failed) {
            jv_decref(result);
            return NULL;
        }
    }
    return result;
}

FN(sift)
{
    UNUSED_CTX;
    json_t *obj = ARG(0), *fn = ARG(1);
    if (!obj) return NULL;
    if (!jv_is_func(fn)) return no_function(E, "sift", 2);
    json_t *r = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        json_t *key = jv_strz(k);
        json_t *res = call_hof(E, fn, v, key, obj);
        json_decref(key);
        if (E->failed) {
            json_decref(r);
            return NULL;
        }
        if (jv_truthy(res)) json_object_set(r, k, v);
        jv_decref(res);
    }
    if (json_object_size(r) == 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

FN(each)
{
    UNUSED_CTX;
    json_t *obj = ARG(0), *fn = ARG(1);
    if (!obj) return NULL;
    if (!jv_is_func(fn)) return no_function(E, "each", 2);
    jarr *r = (jarr *)jseq_new();
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        json_t *key = jv_strz(k);
        json_t *res = call_hof(E, fn, v, key, obj);
        json_decref(key);
        if (E->failed) {
            jv_decref(&r->h);
            return NULL;
        }
        if (res) jarr_push(r, res);
    }
    return &r->h;
}

/* Sorting --------------------------------------------------------------------- */

typedef struct {
    jeval *E;
    json_t *fn;
} fsort_ctx;

static bool fsort_gt(fsort_ctx *c, json_t *x, json_t *y)
{
    if (!c->fn) {
        if (jv_is_num(x)) return jv_num(x) > jv_num(y);
        size_t lx = sl(x), ly = sl(y);
        int m = memcmp(sv(x), sv(y), lx < ly ? lx : ly);
        return m ? m > 0 : lx > ly;
    }
    json_t *args[2] = {x, y};
    json_t *r = japply(c->E, c->fn, args, 2, NULL, 0);
    bool b = jv_truthy(r);
    jv_decref(r);
    return b;
}

static void fmsort(fsort_ctx *c, json_t **v, json_t **tmp, size_t n)
{
    if (n < 2 || c->E->failed) return;
    size_t mid = n / 2;
    fmsort(c, v, tmp, mid);
    fmsort(c, v + mid, tmp, n - mid);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        if (fsort_gt(c, v[i], v[j])) tmp[k++] = v[j++];
        else tmp[k++] = v[i++];
        if (c->E->failed) return;
    }
    while (i < mid) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(json_t *));
}

FN(sort)
{
    UNUSED_CTX;
    json_t *arr = ARG(0), *fn = ARG(1);
    if (!arr) return NULL;
    if (jv_len(arr) <= 1) return jv_incref(arr);
    if (!fn && !jv_is_arr_of_num(arr) && !jv_is_arr_of_str(arr)) return fail(E, "D3070", NULL);
    size_t len = jv_len(arr);
    jarr *r = jarr_new(len);
    for (size_t i = 0; i < len; i++) jarr_push_ref(r, jv_at(arr, i));
    json_t **tmp = malloc(len * sizeof(json_t *));
    fsort_ctx c = {E, fn};
    fmsort(&c, r->v, tmp, len);
    free(tmp);
    if (E->failed) {
        jv_decref(&r->h);
        return NULL;
    }
    return &r->h;
}

FN(shuffle)
{
    UNUSED_CTX;
    (void)E;
    json_t *arr = ARG(0);
    if (!arr) return NULL;
    if (jv_len(arr) <= 1) return jv_incref(arr);
    size_t len = jv_len(arr);
    jarr *r = jarr_new(len);
    for (size_t i = 0; i < len; i++) jarr_push_ref(r, jv_at(arr, i));
    for (size_t i = len - 1; i > 0; i--) {
        size_t j = (size_t)(rand01() * (double)(i + 1));
        json_t *t = r->v[i];
        r->v[i] = r->v[j];
        r->v[j] = t;
    }
    return &r->h;
}

FN(reverse)
{
    UNUSED_CTX;
    (void)E;
    json_t *arr = ARG(0);
    if (!arr) return NULL;
    if (jv_len(arr) <= 1) return jv_incref(arr);
    size_t len = jv_len(arr);
    jarr *r = jarr_new(len);
    for (size_t i = len; i > 0; i--) jarr_push_ref(r, jv_at(arr, i - 1));
    return &r->h;
}

FN(distinct)
{
    UNUSED_CTX;
    (void)E;
    json_t *arr = ARG(0);
    if (!arr) return NULL;
    if (!jv_is_arr(arr) || jv_len(arr) <= 1) return jv_incref(arr);
    jarr *r = (jarr *)jseq_new();
    for (size_t i = 0; i < jv_len(arr); i++) {
        json_t *x = jv_at(arr, i);
        bool dup = false;
        for (size_t j = 0; j < r->n && !dup; j++) dup = jv_deep_equal(r->v[j], x);
        if (!dup) jarr_push_ref(r, x);
    }
    return &r->h;
}

/* Objects ------------------------------------------------------------------- */

static void keys_into(json_t *seen, jarr *out, json_t *v)
{
    if (jv_is_arr(v)) {
        for (size_t i = 0; i < jv_len(v); i++) keys_into(seen, out, jv_at(v, i));
    } else if (v && json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (k[0] == '\x01' && !strcmp(k, CRM_ERR_KEY)) continue; /* an Error's hidden part */
            if (json_object_get(seen, k)) continue;
            json_object_set_new(seen, k, json_true());
            jarr_push(out, jv_strz(k));
        }
    }
}

FN(keys)
{
    UNUSED_CTX;
    (void)E;
    json_t *seen = json_object();
    jarr *r = (jarr *)jseq_new();
    keys_into(seen, r, ARG(0));
    json_decref(seen);
    return &r->h;
}

FN(lookup)
{
    UNUSED_CTX;
    (void)E;
    json_t *in = ARG(0), *key = ARG(1);
    if (!in || !key) return NULL;
    if (jv_is_arr(in)) {
        jarr *r = (jarr *)jseq_new();
        for (size_t i = 0; i < jv_len(in); i++) {
            json_t *x = jv_at(in, i);
            json_t *args[2] = {x, key};
            json_t *v = fn_lookup(E, args, 2, ctx);
            if (!v) continue;
            if (jv_is_arr(v)) {
                for (size_t j = 0; j < jv_len(v); j++) jarr_push_ref(r, jv_at(v, j));
                jv_decref(v);
            } else {
                jarr_push(r, v);
            }
        }
        return &r->h;
    }
    if (json_is_object(in)) return jv_incref(json_object_get(in, sv(key)));
    return NULL;
}

FN(append)
{
    UNUSED_CTX;
    (void)E;
    return jv_append(jv_incref(ARG(0)), jv_incref(ARG(1)));
}

static json_t *spread(json_t *v)
{
    if (jv_is_arr(v)) {
        json_t *r = jseq_new();
        for (size_t i = 0; i < jv_len(v); i++) r = jv_append(r, spread(jv_at(v, i)));
        return r;
    }
    if (v && json_is_object(v)) {
        jarr *r = (jarr *)jseq_new();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            json_t *o = json_object();
            json_object_set(o, k, x);
            jarr_push(r, o);
        }
        return &r->h;
    }
    return jv_incref(v);
}

FN(spread) { UNUSED_CTX; (void)E; return ARG(0) ? spread(ARG(0)) : NULL; }

FN(merge)
{
    UNUSED_CTX;
    (void)E;
    json_t *arr = ARG(0);
    if (!arr) return NULL;
    json_t *r = json_object();
    for (size_t i = 0; i < jv_len(arr); i++) {
        json_t *o = jv_at(arr, i);
        if (!json_is_object(o)) continue;
        const char *k;
        json_t *x;
        json_object_foreach(o, k, x) json_object_set(r, k, x);
    }
    return r;
}

FN(type)
{
    UNUSED_CTX;
    (void)E;
    json_t *v = ARG(0);
    if (!v) return NULL;
    if (jv_is_func(v)) return jv_strz("function");
    if (jv_is_arr(v)) return jv_strz("array");
    switch (json_typeof(v)) {
    case JSON_NULL: return jv_strz("null");
    case JSON_STRING: return jv_strz("string");
    case JSON_INTEGER:
    case JSON_REAL: return jv_strz("number");
    case JSON_TRUE:
    case JSON_FALSE: return jv_strz("boolean");
    default: return jv_strz("object");
    }
}

FN(clone)
{
    UNUSED_CTX;
    (void)E;
    if (!ARG(0)) return NULL;
    json_t *j = jv_to_json(ARG(0));
    json_t *r = crm_deep_copy(j);
    json_decref(j);
    return r;
}

FN(error)
{
    UNUSED_CTX;
    json_t *m = ARG(0);
    jeval_fail(E, "D3137", 0, NULL, NULL);
    snprintf(E->err->message, sizeof E->err->message, "%s", m ? sv(m) : "$error() function evaluated");
    return NULL;
}

FN(assert)
{
    UNUSED_CTX;
    if (!jv_truthy(ARG(0))) {
        jeval_fail(E, "D3141", 0, NULL, NULL);
        snprintf(E->err->message, sizeof E->err->message, "%s",
                 ARG(1) ? sv(ARG(1)) : "$assert() statement failed");
    }
    return NULL;
}

/* Encoding ------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

FN(base64encode)
{
    UNUSED_CTX;
    (void)E;
    json_t *s = ARG(0);
    if (!s) return NULL;
    const unsigned char *p = (const unsigned char *)sv(s);
    size_t len = sl(s);
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        sb_putc(&sb, b64[v >> 18 & 63]);
        sb_putc(&sb, b64[v >> 12 & 63]);
        sb_putc(&sb, i + 1 < len ? b64[v >> 6 & 63] : '=');
        sb_putc(&sb, i + 2 < len ? b64[v & 63] : '=');
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

FN(base64decode)
{
    UNUSED_CTX;
    (void)E;
    json_t *s = ARG(0);
    if (!s) return NULL;
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < sl(s); i++) {
        const char *q = strchr(b64, sv(s)[i]);
        if (!q || !sv(s)[i]) continue;
        acc = acc << 6 | (unsigned)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            sb_putc(&sb, (char)(acc >> bits & 0xFF));
        }
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

static bool valid_utf8_no_surrogates(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (p[i] == 0xED && i + 1 < n && p[i + 1] >= 0xA0) return false;
        i += cp_len(p[i]);
    }
    return true;
}

static json_t *encode_uri(jeval *E, json_t *s, const char *keep, const char *fname)
{
    if (!s) return NULL;
    const unsigned char *p = (const unsigned char *)sv(s);
    size_t len = sl(s);
    if (!valid_utf8_no_surrogates(p, len)) {
        jeval_fail(E, "D3140", 0, NULL, s);
        snprintf(E->err->message, sizeof E->err->message, "Malformed URL passed to $%s(): \"%s\"", fname, sv(s));
        return NULL;
    }
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (isalnum(c) || (c < 0x80 && strchr(keep, c) && c)) sb_putc(&sb, (char)c);
        else sb_printf(&sb, "%%%02X", c);
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

FN(encodeUrlComponent) { UNUSED_CTX; return encode_uri(E, ARG(0), "-_.!~*'()", "encodeUrlComponent"); }
FN(encodeUrl) { UNUSED_CTX; return encode_uri(E, ARG(0), "-_.!~*'();/?:@&=+$,#", "encodeUrl"); }

static int hexv(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : isxdigit((unsigned char)c) ? (tolower((unsigned char)c) - 'a' + 10) : -1;
}

static json_t *decode_uri(jeval *E, json_t *s, const char *reserved, const char *fname)
{
    if (!s) return NULL;
    const char *p = sv(s);
    size_t len = sl(s);
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '%') {
            sb_putc(&sb, p[i]);
            continue;
        }
        int h1 = i + 2 < len + 0 ? hexv(p[i + 1]) : -1, h2 = i + 2 < len ? hexv(p[i + 2]) : -1;
        if (i + 2 >= len || h1 < 0 || h2 < 0) goto bad;
        unsigned char c = (unsigned char)(h1 * 16 + h2);
        if (c < 0x80) {
            if (strchr(reserved, c) && c) sb_putn(&sb, p + i, 3);
            else sb_putc(&sb, (char)c);
            i += 2;
            continue;
        }
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (!need) goto bad;
        unsigned char bytes[4] = {c};
        size_t j = i + 3;
        for (size_t k = 1; k < need; k++) {
            if (j + 2 >= len + 0 || p[j] != '%' || hexv(p[j + 1]) < 0 || hexv(p[j + 2]) < 0) goto bad;
            bytes[k] = (unsigned char)(hexv(p[j + 1]) * 16 + hexv(p[j + 2]));
            if ((bytes[k] & 0xC0) != 0x80) goto bad;
            j += 3;
        }
        sb_putn(&sb, (const char *)bytes, need);
        i = j - 1;
    }
    json_t *r = jv_str(sb.data, sb.len);
    sb_free(&sb);
    return r;
bad:
    sb_free(&sb);
    jeval_fail(E, "D3140", 0, NULL, s);
    snprintf(E->err->message, sizeof E->err->message, "Malformed URL passed to $%s(): \"%s\"", fname, p);
    return NULL;
}

FN(decodeUrlComponent) { UNUSED_CTX; return decode_uri(E, ARG(0), "", "decodeUrlComponent"); }
FN(decodeUrl) { UNUSED_CTX; return decode_uri(E, ARG(0), ";/?:@&=+$,#", "decodeUrl"); }

/* $eval ------------------------------------------------------------------------ */

FN(eval)
{
    json_t *ex = ARG(0);
    if (!ex) return NULL;
    return jfn_eval_expr(E, sv(ex), ARG(1), ctx);
}

/* Time and formatting ---------------------------------------------------------- */

static json_t *call_ext(jeval *E, jsonata_native f, json_t **a, int n, const char *name)
{
    if (!f) {
        jeval_fail(E, "T1006", 0, name, NULL);
        snprintf(E->err->message, sizeof E->err->message, "Function $%s is not available", name);
        return NULL;
    }
    json_t **ja = calloc((size_t)n + 1, sizeof(json_t *));
    for (int i = 0; i < n; i++) ja[i] = jv_to_json(a[i]);
    jsonata_error err;
    memset(&err, 0, sizeof err);
    json_t *r = f(NULL, ja, (size_t)n, &err);
    for (int i = 0; i < n; i++) json_decref(ja[i]);
    free(ja);
    if (err.code[0]) {
        *E->err = err;
        E->failed = true;
        json_decref(r);
        return NULL;
    }
    return r ? crm_normalize_numbers(r) : NULL;
}

FN(formatNumber) { UNUSED_CTX; return call_ext(E, jsonata_fn_formatNumber, a, n, "formatNumber"); }
FN(formatBase) { UNUSED_CTX; return call_ext(E, jsonata_fn_formatBase, a, n, "formatBase"); }
FN(formatInteger) { UNUSED_CTX; return call_ext(E, jsonata_fn_formatInteger, a, n, "formatInteger"); }
FN(parseInteger) { UNUSED_CTX; return call_ext(E, jsonata_fn_parseInteger, a, n, "parseInteger"); }
FN(fromMillis) { UNUSED_CTX; return call_ext(E, jsonata_fn_fromMillis, a, n, "fromMillis"); }
FN(toMillis) { UNUSED_CTX; return call_ext(E, jsonata_fn_toMillis, a, n, "toMillis"); }

FN(millis) { UNUSED_CTX; (void)a; (void)n; return json_real(jeval_now(E)); }

FN(now)
{
    UNUSED_CTX;
    json_t *args[3] = {json_real(jeval_now(E)), ARG(0), ARG(1)};
    json_t *r;
    if (jsonata_fn_fromMillis) {
        r = call_ext(E, jsonata_fn_fromMillis, args, 3, "now");
    } else {
        time_t t = (time_t)(jeval_now(E) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char b[96];
        snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)fmod(jeval_now(E), 1000));
        r = jv_strz(b);
    }
    json_decref(args[0]);
    return r;
}

/* Registry --------------------------------------------------------------------- */

#define B(name, sig) {#name, sig, fn_##name, 0}

static jbuiltin_def defs[] = {
    B(abs, "<n-:n>"),
    B(append, "<xx:a>"),
    B(assert, "<bs?:x>"),
    B(average, "<a<n>:n>"),
    B(base64decode, "<s-:s>"),
    B(base64encode, "<s-:s>"),
    B(boolean, "<x-:b>"),
    B(ceil, "<n-:n>"),
    B(clone, "<(oa)-:o>"),
    B(contains, "<s-(sf):b>"),
    B(count, "<a:n>"),
    B(decodeUrl, "<s-:s>"),
    B(decodeUrlComponent, "<s-:s>"),
    B(distinct, "<x:x>"),
    B(each, "<o-f:a>"),
    B(encodeUrl, "<s-:s>"),
    B(encodeUrlComponent, "<s-:s>"),
    B(error, "<s?:x>"),
    B(eval, "<sx?:x>"),
    B(exists, "<x:b>"),
    B(filter, "<af>"),
    B(floor, "<n-:n>"),
    B(formatBase, "<n-n?:s>"),
    B(formatInteger, "<n-s:s>"),
    B(formatNumber, "<n-so?:s>"),
    B(fromMillis, "<n-s?s?:s>"),
    B(join, "<a<s>s?:s>"),
    B(keys, "<x-:a<s>>"),
    B(length, "<s-:n>"),
    B(lookup, "<x-s:x>"),
    B(lowercase, "<s-:s>"),
    B(map, "<af>"),
    B(match, "<s-f<s:o>n?:a<o>>"),
    B(max, "<a<n>:n>"),
    B(merge, "<a<o>:o>"),
    B(millis, "<:n>"),
    B(min, "<a<n>:n>"),
    B(not, "<x-:b>"),
    B(now, "<s?s?:s>"),
    B(number, "<(nsb)-:n>"),
    B(pad, "<s-ns?:s>"),
    B(parseInteger, "<s-s:n>"),
    B(power, "<n-n:n>"),
    B(random, "<:n>"),
    B(reduce, "<afj?:j>"),
    B(replace, "<s-(sf)(sf)n?:s>"),
    B(reverse, "<a:a>"),
    B(round, "<n-n?:n>"),
    B(shuffle, "<a:a>"),
    B(sift, "<o-f?:o>"),
    B(single, "<af?>"),
    B(sort, "<af?:a>"),
    B(split, "<s-(sf)n?:a<s>>"),
    B(spread, "<x-:a<o>>"),
    B(sqrt, "<n-:n>"),
    B(string, "<x-b?:s>"),
    B(substring, "<s-nn?:s>"),
    B(substringAfter, "<s-s:s>"),
    B(substringBefore, "<s-s:s>"),
    B(sum, "<a<n>:n>"),
    B(toMillis, "<s-s?:n>"),
    B(trim, "<s-:s>"),
    B(type, "<x:s>"),
    B(uppercase, "<s-:s>"),
    B(zip, "<a+>"),
};

#define NDEFS (sizeof defs / sizeof defs[0])

static jfunc values[NDEFS];
static void *sig_arena;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_init(void)
{
    for (size_t i = 0; i < NDEFS; i++) {
        int ep;
        jsonata_error e;
        jsig *s = jsig_parse(defs[i].sig, &sig_arena, &ep, &e);
        /* jsonata-js counts a native's declared parameters before any default */
        defs[i].arity_hint = s ? s->nparams : 1;
        if (!strcmp(defs[i].name, "string")) defs[i].arity_hint = 1;
        values[i].h.type = JT_FUNC;
        values[i].h.refcount = (size_t)-1;
        values[i].kind = F_BUILTIN;
        values[i].def = &defs[i];
        values[i].sig = s;
        values[i].name = defs[i].name;
    }
}

static int def_cmp(const void *k, const void *d) { return strcmp(k, ((const jbuiltin_def *)d)->name); }

const jbuiltin_def *jbuiltin_find(const char *name)
{
    pthread_once(&reg_once, reg_init);
    return bsearch(name, defs, NDEFS, sizeof defs[0], def_cmp);
}

json_t *jbuiltin_value(const char *name)
{
    const jbuiltin_def *d = jbuiltin_find(name);
    return d ? &values[d - defs].h : NULL;
}
