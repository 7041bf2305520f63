/* test_parse.c: crm_parse's own reader against jansson's. crm_parse reads
 * valid text itself and hands anything else to jansson (for its error text);
 * both must agree on every input: the same value with the same key order
 * when jansson takes the text, NULL when jansson refuses it. Checked on
 * hand-picked texts, then on random mutations of them. */
#include <stdlib.h>
#include <string.h>

#include "value.h"
#include "unit.h"

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
};

int main(void)
{
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
