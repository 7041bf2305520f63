/* test_inspect.c: crm_inspect against Node's util.inspect. Every expected
 * text below was printed by Node 20's util.inspect(value, {depth}). */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "unit.h"

static void inspect(const char *json, int depth, const char *want)
{
    json_t *v = crm_parse(json, strlen(json), NULL, 0);
    char *s = crm_inspect(v, depth);
    CHECK_STR(s, want);
    free(s);
    json_decref(v);
}

static void buffer(size_t n, const char *want)
{
    unsigned char bytes[64];
    for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)(i * 7);
    json_t *b = crm_buf_new(bytes, n), *o = json_pack("{s:o}", "b", b);
    char *s = crm_inspect(b, 2);
    CHECK_STR(s, want);
    free(s);
    json_decref(o);
}

int main(void)
{
    inspect("{\"a\":1,\"b\":\"x\"}", 2, "{ a: 1, b: 'x' }");
    inspect("{\"a\":1,\"b\":\"x\"}", 10, "{ a: 1, b: 'x' }");
    inspect("[1,2,3,4,5,6,7,8]", 2, "[\n  1, 2, 3, 4,\n  5, 6, 7, 8\n]");
    inspect("[1,2,3,4,5,6,7,8]", 10, "[\n  1, 2, 3, 4,\n  5, 6, 7, 8\n]");
    inspect("[1,\"a\",2,\"b\",3,\"c\",4]", 2, "[\n  1, 'a', 2, 'b',\n  3, 'c', 4\n]");
    inspect("[1,\"a\",2,\"b\",3,\"c\",4]", 10, "[\n  1, 'a', 2, 'b',\n  3, 'c', 4\n]");
    inspect("[-1,2.5,-300,4,5,6,7,8,9,10]", 2, "[\n  -1, 2.5, -300, 4,\n   5,   6,    7, 8,\n   9,  10\n]");
    inspect("[-1,2.5,-300,4,5,6,7,8,9,10]", 10, "[\n  -1, 2.5, -300, 4,\n   5,   6,    7, 8,\n   9,  10\n]");
    inspect("{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", 2, "{ a: { b: { c: [Object] } } }");
    inspect("{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", 10, "{\n  a: { b: { c: { d: 1 } } }\n}");
    inspect("{\"a\":{\"b\":{\"c\":{}}}}", 2, "{ a: { b: { c: {} } } }");
    inspect("{\"a\":{\"b\":{\"c\":{}}}}", 10, "{ a: { b: { c: {} } } }");
    inspect("{\"9\":3,\"a-b\":1,\"_ok\":2,\"x y\":4,\"it's\":5}", 2, "{ '9': 3, 'a-b': 1, _ok: 2, 'x y': 4, \"it's\": 5 }");
    inspect("{\"9\":3,\"a-b\":1,\"_ok\":2,\"x y\":4,\"it's\":5}", 10, "{ '9': 3, 'a-b': 1, _ok: 2, 'x y': 4, \"it's\": 5 }");
    inspect("{\"s\":\"it's\",\"t\":\"it's \\\"x\\\"\",\"u\":\"it's \\\"x\\\" `y`\",\"w\":\"it's \\\"x\\\" ${y}\"}", 2, "{ s: \"it's\", t: `it's \"x\"`, u: 'it\\'s \"x\" `y`', w: 'it\\'s \"x\" ${y}' }");
    inspect("{\"s\":\"it's\",\"t\":\"it's \\\"x\\\"\",\"u\":\"it's \\\"x\\\" `y`\",\"w\":\"it's \\\"x\\\" ${y}\"}", 10, "{ s: \"it's\", t: `it's \"x\"`, u: 'it\\'s \"x\" `y`', w: 'it\\'s \"x\" ${y}' }");
    inspect("[\"a\\nb\\tc\\\\d\",\"\\u0001\\u007f\\u0085\",\"é😀\"]", 2, "[ 'a\\nb\\tc\\\\d', '\\x01\\x7F\\x85', 'é😀' ]");
    inspect("[\"a\\nb\\tc\\\\d\",\"\\u0001\\u007f\\u0085\",\"é😀\"]", 10, "[ 'a\\nb\\tc\\\\d', '\\x01\\x7F\\x85', 'é😀' ]");
    inspect("{\"s\":\"line one is long enough\\nline two is also long\\nthree zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"}", 2, "{\n  s: 'line one is long enough\\n' +\n    'line two is also long\\n' +\n    'three zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'\n}");
    inspect("{\"s\":\"line one is long enough\\nline two is also long\\nthree zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"}", 10, "{\n  s: 'line one is long enough\\n' +\n    'line two is also long\\n' +\n    'three zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'\n}");
    inspect("{\"alpha\":\"aaaaaaaaaaaa\",\"beta\":\"bbbbbbbbbbbbbbbb\",\"gamma\":\"cccccccccccccccc\",\"delta\":1234567}", 2, "{\n  alpha: 'aaaaaaaaaaaa',\n  beta: 'bbbbbbbbbbbbbbbb',\n  gamma: 'cccccccccccccccc',\n  delta: 1234567\n}");
    inspect("{\"alpha\":\"aaaaaaaaaaaa\",\"beta\":\"bbbbbbbbbbbbbbbb\",\"gamma\":\"cccccccccccccccc\",\"delta\":1234567}", 10, "{\n  alpha: 'aaaaaaaaaaaa',\n  beta: 'bbbbbbbbbbbbbbbb',\n  gamma: 'cccccccccccccccc',\n  delta: 1234567\n}");
    inspect("[-0.0,1e+21,1e-7,0.1,123456789012345680000]", 2, "[ -0, 1e+21, 1e-7, 0.1, 123456789012345680000 ]");
    inspect("[-0.0,1e+21,1e-7,0.1,123456789012345680000]", 10, "[ -0, 1e+21, 1e-7, 0.1, 123456789012345680000 ]");
    inspect("[[1,[2,[3,[4]]]],{\"k\":[]}]", 2, "[ [ 1, [ 2, [Array] ] ], { k: [] } ]");
    inspect("[[1,[2,[3,[4]]]],{\"k\":[]}]", 10, "[\n  [\n    1,\n    [ 2, [ 3, [ 4 ] ] ]\n  ],\n  { k: [] }\n]");
    inspect("\"top\\nlevel 'string' that is quite long, longer than eighty characters in all, so it splits\"", 2, "'top\\n' +\n  \"level 'string' that is quite long, longer than eighty characters in all, so it splits\"");
    inspect("null", 2, "null");
    inspect("true", 2, "true");
    char *undef = crm_inspect(NULL, 2);
    CHECK_STR(undef, "undefined");
    free(undef);
    buffer(0, "<Buffer >");
    buffer(3, "<Buffer 00 07 0e>");
    buffer(52, "<Buffer 00 07 0e 15 1c 23 2a 31 38 3f 46 4d 54 5b 62 69 70 77 7e 85 8c 93 9a a1 a8 af b6 bd c4 cb d2 d9 "
               "e0 e7 ee f5 fc 03 0a 11 18 1f 26 2d 34 3b 42 49 50 57 ... 2 more bytes>");
    UNIT_DONE();
}
