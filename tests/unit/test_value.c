/* test_value.c: JavaScript value semantics on jansson: number text,
 * JSON.stringify, equality, truthiness, String(), Number(). */
#include <math.h>
#include <stdlib.h>

#include "value.h"
#include "unit.h"

static void num(double d, const char *want)
{
    char buf[32];
    CHECK_STR(crm_fmt_number(d, buf), want);
}

static void stringify(const char *json, int indent, const char *want)
{
    json_t *v = crm_parse(json, strlen(json), NULL, 0);
    char *s = crm_stringify(v, indent);
    CHECK_STR(s, want);
    free(s);
    json_decref(v);
}

int main(void)
{
    num(0.1, "0.1");
    num(1.0, "1");
    num(-0.0, "0");
    num(1e21, "1e+21");
    num(123456789012345680000.0, "123456789012345680000");
    num(1.5e-7, "1.5e-7");
    num(0.000001, "0.000001");
    num(0.1 + 0.2, "0.30000000000000004");
    num(NAN, "NaN");
    num(-INFINITY, "-Infinity");
    num(2.5, "2.5");
    num(1e100, "1e+100");

    stringify("{\"b\":1,\"2\":2,\"a\":[1.0,\"x\\n\"],\"1\":null}", 0, "{\"1\":null,\"2\":2,\"b\":1,\"a\":[1,\"x\\n\"]}");
    stringify("{\"a\":[1,{}],\"b\":{}}", 2, "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": {}\n}");
    stringify("\"\\u0001\"", 0, "\"\\u0001\"");

    json_t *b = crm_buf_new("hi", 2);
    char *s = crm_stringify(b, 0);
    CHECK_STR(s, "{\"type\":\"Buffer\",\"data\":[104,105]}");
    free(s);
    CHECK(crm_is_buf(b));
    json_t *bc = crm_deep_copy(b);
    CHECK(crm_equal(b, bc));
    json_decref(bc);
    json_decref(b);

    json_t *nan = crm_num(NAN), *inf = crm_num(INFINITY);
    CHECK(!crm_equal(nan, nan));
    CHECK(crm_num_value(inf) == INFINITY);
    json_t *arr = json_pack("[o,o]", nan, inf); /* singletons survive incref/decref */
    s = crm_stringify(arr, 0);
    CHECK_STR(s, "[null,null]");
    free(s);
    json_t *copy = crm_deep_copy(arr);
    CHECK(isnan(crm_num_value(json_array_get(copy, 0))));
    json_decref(copy);
    json_decref(arr);

    json_t *one = json_integer(1), *onef = json_real(1.0);
    CHECK(crm_equal(one, onef));
    json_decref(one);
    json_decref(onef);

    CHECK(crm_str_to_number("") == 0);
    CHECK(crm_str_to_number(" 12 ") == 12);
    CHECK(crm_str_to_number("0x1f") == 31);
    CHECK(isnan(crm_str_to_number("12px")));
    CHECK(isnan(crm_str_to_number("inf")));

    json_t *o = json_pack("{s:[i,s]}", "a", 1, "x");
    s = crm_to_string(json_object_get(o, "a"));
    CHECK_STR(s, "1,x");
    free(s);
    s = crm_to_string(o);
    CHECK_STR(s, "[object Object]");
    free(s);
    json_decref(o);
    CHECK(!crm_truthy(NULL) && !crm_truthy(json_false()));
    UNIT_DONE();
}
