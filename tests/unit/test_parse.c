/* test_parse.c: crm_parse's own reader against jansson's. crm_parse reads
 * valid text itself and hands anything else to jansson (for its error text);
 * both must agree on every input: the same value with the same key order
 * when jansson takes the text, NULL when jansson refuses it. Checked on
 * hand-picked texts, then on random mutations of them. Then the short ways
 * of crm_fmt_number and crm_str_to_number against printf and strtod, and
 * crm_stringify (which writes into its buffer directly and takes objects
 * in insertion order when no key starts with a digit) against the plain
 * writer it replaced, on every value parsed here, compact and indented. */
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"
#include "unit.h"

/* crm_stringify as it was before its direct writer: a strbuf call per
 * piece, every object through crm_js_entries */
static void ref_json_string(strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(sb, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_putn(sb, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': sb_puts(sb, "\\\""); break;
        case '\\': sb_puts(sb, "\\\\"); break;
        case '\b': sb_puts(sb, "\\b"); break;
        case '\f': sb_puts(sb, "\\f"); break;
        case '\n': sb_puts(sb, "\\n"); break;
        case '\r': sb_puts(sb, "\\r"); break;
        case '\t': sb_puts(sb, "\\t"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            sb_puts(sb, u);
        }
        }
    }
    sb_putn(sb, s + start, n - start);
    sb_putc(sb, '"');
}

static void ref_indent(strbuf *sb, int indent, int level)
{
    if (!indent) return;
    sb_putc(sb, '\n');
    for (int i = 0; i < indent * level; i++) sb_putc(sb, ' ');
}

static void ref_stringify(strbuf *sb, const json_t *v, int indent, int level)
{
    char nb[32];
    switch (json_typeof(v)) {
    case JSON_STRING: ref_json_string(sb, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = crm_num_value(v);
        sb_puts(sb, isfinite(d) ? crm_fmt_number(d, nb) : "null");
        break;
    }
    case JSON_TRUE: sb_puts(sb, "true"); break;
    case JSON_FALSE: sb_puts(sb, "false"); break;
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (!n) { sb_puts(sb, "[]"); break; }
        sb_putc(sb, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) sb_putc(sb, ',');
            ref_indent(sb, indent, level + 1);
            ref_stringify(sb, json_array_get(v, i), indent, level + 1);
        }
        ref_indent(sb, indent, level);
        sb_putc(sb, ']');
        break;
    }
    case JSON_OBJECT: {
        if (crm_is_buf(v)) {
            size_t n;
            const unsigned char *d = crm_buf_data(v, &n);
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_real(d[i]));
            json_t *o = json_pack("{s:s,s:o}", "type", "Buffer", "data", arr);
            ref_stringify(sb, o, indent, level);
            json_decref(o);
            break;
        }
        if (crm_is_handle(v)) { sb_puts(sb, "{}"); break; }
        crm_entry stackbuf[16], *ents;
        size_t cnt = crm_js_entries(v, stackbuf, 16, &ents);
        sb_putc(sb, '{');
        bool first = true;
        for (size_t i = 0; i < cnt; i++) {
            if (!first) sb_putc(sb, ',');
            first = false;
            ref_indent(sb, indent, level + 1);
            ref_json_string(sb, ents[i].key, ents[i].len);
            sb_putc(sb, ':');
            if (indent) sb_putc(sb, ' ');
            ref_stringify(sb, ents[i].val, indent, level + 1);
        }
        if (!first) ref_indent(sb, indent, level);
        sb_putc(sb, '}');
        if (ents != stackbuf) free(ents);
        break;
    }
    }
}

/* crm_stringify(v) and the reference writer give the same text */
static void same_text(const json_t *v)
{
    for (int indent = 0; indent <= 4; indent += 4) {
        strbuf sb = SB_INIT;
        ref_stringify(&sb, v, indent, 0);
        char *got = crm_stringify(v, indent);
        unit_checks++;
        if (strcmp(got, sb.data ? sb.data : "")) {
            unit_failures++;
            fprintf(stderr, "crm_stringify(indent %d): %s, expected %s\n", indent, got, sb.data);
        }
        free(got);
        sb_free(&sb);
    }
}

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17) | JSON_PRESERVE_ORDER);
}

static void agree(const char *text, size_t len)
{
    json_t *want = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    char err[128];
    json_t *got = crm_parse(text, len, err, sizeof err);
    unit_checks++;
    if (!want != !got) {
        unit_failures++;
        fprintf(stderr, "disagree on %.*s: jansson %s, crm_parse %s\n", (int)len, text, want ? "ok" : "fails",
                got ? "ok" : "fails");
    } else if (want) {
        char *a = dump(want), *b = dump(got);
        /* types too: every number a real, as jansson makes them */
        if (strcmp(a, b) || json_typeof(want) != json_typeof(got)) {
            unit_failures++;
            fprintf(stderr, "differ on %.*s: jansson %s, crm_parse %s\n", (int)len, text, a, b);
        }
        free(a);
        free(b);
        same_text(got);
    }
    json_decref(want);
    json_decref(got);
}

static const char *const texts[] = {
    "{\"id\":1,\"name\":\"bench\",\"tags\":[\"a\",\"b\"],\"ok\":true}",
    " \t\r\n{ \"a\" : [ 1 , 2.5 , -0 , 1e3 , 1E-3 , -12.75e+2 ] , \"b\" : { } , \"c\" : [ ] } \n",
    "{\"a\":1,\"b\":2,\"a\":3}",
    "{\"2\":\"x\",\"1\":\"y\",\"z\":null}",
    "\"plain\"", "\"\"", "0", "-0", "1.5", "true", "false", "null", "[]", "{}",
    "123456789012345678901234567890", "1e308", "1e309", "-1e309", "1e-400", "4.9e-324",
    "0.1", "0.30000000000000004", "9007199254740993", "2.2250738585072011e-308",
    "\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20ac \\ud83d\\ude00\"",
    "\"nul \\u0000 inside\"", "{\"k\\u0000ey\":1}", "{\"\\u00e9\":\"\\u00e9\"}",
    "\"lone \\ud800\"", "\"lone \\udc00\"", "\"pair \\ud800\\u0041\"", "\"bad \\x\"", "\"bad \\u12g4\"",
    "\"utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "\"overlong \xc0\xaf\"", "\"surrogate \xed\xa0\x80\"",
    "\"high \xf4\x90\x80\x80\"", "\"cut \xe2\x82\"", "\"ctrl \x01\"", "\"tab \t\"",
    "01", "-", "1.", ".5", "1e", "1e+", "+1", "--1", "0x10", "NaN", "Infinity", "tru", "nulll",
    "[1,]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\" 1}", "{1:2}", "[1 2]", "\"unclosed", "[", "{",
    "", "   ", "1 2", "{}x", "[]]", "\xef\xbb\xbf{}", "[\"a\" , \"b\"\t]",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "{\"b\":1,\"10\":2,\"a\":{\"2\":[],\"x\":{},\"01\":\"y\",\"1a\":3,\"0\":4},\"9\":[{\"z\":\"\\u001f\\u007f\\\"\"}]}",
    "{\"ctrl\":\"\\u0000\\u0001\\b\\f\\n\\r\\t\\u000b\\u001e \\\\ \\/ \\\" end\",\"long\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\n\"}",
    "[0.5,-0.25,123.456,1e21,1.5e-7,100,-0,0.000001,12345678901234.5]",
};

/* crm_fmt_number as it was before its short way for decimals: printf's
 * shortest round-tripping digits, laid out as JavaScript does */
static char *ref_fmt(double d, char *buf)
{
    if (isnan(d)) return strcpy(buf, "NaN");
    if (isinf(d)) return strcpy(buf, d > 0 ? "Infinity" : "-Infinity");
    if (d == 0) return strcpy(buf, "0");
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        /* integers are the common case (ids, counts, timestamps): no printf */
        char tmp[24];
        int i = sizeof tmp;
        unsigned long long u = (unsigned long long)fabs(d);
        while (u) {
            tmp[--i] = (char)('0' + u % 10);
            u /= 10;
        }
        char *o = buf;
        if (d < 0) *o++ = '-';
        memcpy(o, tmp + i, sizeof tmp - (size_t)i);
        o[sizeof tmp - (size_t)i] = 0;
        return buf;
    }
    /* shortest digits that round-trip */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp is [-]d[.ddd]e[+-]xx */
    char digits[24];
    int nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') { neg = true; p++; }
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p)) digits[nd++] = *p;
    int e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int n = e + 1; /* position of the decimal point */
    char *o = buf;
    if (neg) *o++ = '-';
    if (nd <= n && n <= 21) {
        memcpy(o, digits, nd); o += nd;
        for (int i = 0; i < n - nd; i++) *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, n); o += n;
        *o++ = '.';
        memcpy(o, digits + n, nd - n); o += nd - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0'; *o++ = '.';
        for (int i = 0; i < -n; i++) *o++ = '0';
        memcpy(o, digits, nd); o += nd;
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

static unsigned long long rnd(unsigned long long *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 7;
    *st ^= *st << 17;
    return *st;
}

static void numbers(void)
{
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    unsigned long long st = 88172645463325252ull;
    int bad = 0;
    for (int i = 0; i < 200000 && bad < 10; i++) {
        double d;
        switch (i % 4) {
        case 0: { /* a short decimal: m / 10^k */
            unsigned long long m = rnd(&st) % (1ull << (1 + rnd(&st) % 53));
            d = (double)m / p10[rnd(&st) % 18];
            break;
        }
        case 1: { /* any double */
            unsigned long long b = rnd(&st);
            memcpy(&d, &b, sizeof d);
            if (!isfinite(d)) d = 1.5;
            break;
        }
        case 2: d = (double)(rnd(&st) % 100000) / 100 + (double)(rnd(&st) % 1000) / 1e6; break;
        default: d = ((double)(rnd(&st) % 1000000) - 500000) * pow(10, (double)(rnd(&st) % 30) - 15); break;
        }
        if (rnd(&st) & 1) d = -d;
        char a[32], b[32];
        crm_fmt_number(d, a);
        ref_fmt(d, b);
        unit_checks++;
        if (strcmp(a, b)) {
            unit_failures++;
            bad++;
            fprintf(stderr, "crm_fmt_number(%.17g): %s, printf's way %s\n", d, a, b);
        }
        /* and back: Number(text) as strtod reads it */
        char t[40];
        snprintf(t, sizeof t, "%.*f", (int)(rnd(&st) % 8), fabs(d) < 1e12 ? d : 1.25);
        double x = crm_str_to_number(t), y = strtod(t, NULL);
        unit_checks++;
        if (memcmp(&x, &y, sizeof x)) {
            unit_failures++;
            bad++;
            fprintf(stderr, "crm_str_to_number(%s): %.17g, strtod %.17g\n", t, x, y);
        }
    }
    const char *const texts[] = {"0", "-0", "007", "1.5", "-2.25", "123456789012345", "1234567890123456",
                                 "0.1", "9007199254740993", "1.", ".5", "1e3", " 12", "12 ", "+3", "-", "", "1.2.3",
                                 "bench", "Infinity", " -Infinity", "x1", "e5"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        double x = crm_str_to_number(texts[i]);
        char *end;
        const char *p = texts[i];
        while (*p == ' ') p++;
        double y = strtod(p, &end);
        while (*end == ' ') end++;
        if (*end || end == p) y = *p ? NAN : 0;
        unit_checks++;
        if (memcmp(&x, &y, sizeof x) && !(isnan(x) && isnan(y))) {
            unit_failures++;
            fprintf(stderr, "crm_str_to_number(\"%s\"): %.17g, expected %.17g\n", texts[i], x, y);
        }
    }
}

int main(void)
{
    numbers();
    /* values no JSON text makes: Buffers, NaN and Infinity, handles, integers */
    json_t *odd = json_pack("{s:o,s:o,s:o,s:o,s:o,s:[o,o]}", "buf", crm_buf_new("a\0\xff", 3), "nan", crm_num(NAN),
                            "inf", crm_num(INFINITY), "h", crm_handle_new(7), "i", json_integer(-42), "l",
                            crm_buf_new("", 0), json_object());
    same_text(odd);
    json_decref(odd);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) agree(texts[i], strlen(texts[i]));
    /* a text not ended by a NUL: the number at its end */
    agree("[1,2]12345", 8);
    agree("{\"a\":12}", 7);
    /* deep nesting: beyond the reader's own limit, then beyond jansson's */
    for (int depth = 500; depth <= 2100; depth += 800) {
        char *t = malloc(2 * (size_t)depth + 2);
        memset(t, '[', (size_t)depth);
        memset(t + depth, ']', (size_t)depth);
        t[2 * depth] = 0;
        agree(t, 2 * (size_t)depth);
        free(t);
    }
    /* random mutations: flip, insert or delete a byte of each text, many times */
    static const char alphabet[] = "{}[]\":,\\ 0123456789.eE+-tfnul\x01\xc3\xa9\xed\xf0\x80";
    unsigned seed = 12345;
    for (int round = 0; round < 200000; round++) {
        const char *base = texts[round % (sizeof texts / sizeof *texts)];
        size_t n = strlen(base);
        char buf[256];
        if (n + 2 > sizeof buf) continue;
        memcpy(buf, base, n);
        for (int k = 0; k < 1 + round % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = n ? (seed >> 8) % (n + 1) : 0;
            char c = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
            switch ((seed >> 4) % 3) {
            case 0: if (at < n) buf[at] = c; break;
            case 1: if (n + 1 < sizeof buf) { memmove(buf + at + 1, buf + at, n - at); buf[at] = c; n++; } break;
            default: if (at < n) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break;
            }
        }
        agree(buf, n);
    }
    UNIT_DONE();
}
