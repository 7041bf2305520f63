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

    /* JavaScript's white space, Unicode included, as Number(), parseFloat()
     * and parseInt() skip it (values printed by Node 20) */
    CHECK(crm_str_to_number("\xc2\xa0 7\xe2\x80\xa8") == 7);   /* NBSP, LS */
    CHECK(crm_str_to_number("\xef\xbb\xbf" "3\xe3\x80\x80") == 3); /* BOM, ideographic space */
    CHECK(isnan(crm_str_to_number("\xe2\x80\x8b" "1")));        /* U+200B is not white space */
    CHECK(crm_js_space_at("\xe2\x80\x8a") == 3 && crm_js_space_at("a") == 0 && crm_js_space_at("\n") == 1);
    CHECK(crm_parse_float("  3.5e2xyz") == 350);
    CHECK(crm_parse_float("-Infinityx") == -INFINITY);
    CHECK(crm_parse_float("0x10") == 0);
    CHECK(crm_parse_float(".5") == 0.5);
    CHECK(isnan(crm_parse_float("e5")));
    CHECK(isnan(crm_parse_float("")));
    CHECK(crm_parse_float("1e") == 1);
    CHECK(crm_parse_int("0x1F", 0) == 31);
    CHECK(crm_parse_int("0x1F", 16) == 31);
    CHECK(crm_parse_int("0x1F", 10) == 0);
    CHECK(crm_parse_int("1e3", 0) == 1);
    CHECK(crm_parse_int(" -42px", 10) == -42);
    CHECK(crm_parse_int("z", 36) == 35);
    CHECK(isnan(crm_parse_int("12", 1)));
    CHECK(isnan(crm_parse_int("9", 8)));
    CHECK(isnan(crm_parse_int("", 0)));
    json_t *twelve = json_pack("[i]", 12);
    CHECK(crm_parse_int_value(twelve, 0) == 12);       /* String([12]) */
    CHECK(crm_to_number(twelve) == 12);
    json_decref(twelve);
    json_t *t = json_true();
    CHECK(isnan(crm_parse_float_value(t)));        /* parseFloat("true") */
    CHECK(isnan(crm_parse_float_value(NULL)));     /* parseFloat("undefined") */
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

    /* RED.util.cloneMessage: req and res are the original's, the rest copied */
    json_t *msg = json_pack("{s:{s:s},s:{s:i},s:{s:[i]},s:s}", "req", "body", "big", "res", "n", 1, "payload", "a", 1,
                            "topic", "t");
    json_t *c = crm_msg_clone(msg);
    CHECK(json_object_get(c, "req") == json_object_get(msg, "req"));
    CHECK(json_object_get(c, "res") == json_object_get(msg, "res"));
    CHECK(json_object_get(c, "payload") != json_object_get(msg, "payload"));
    CHECK(crm_equal(c, msg));
    json_array_append_new(json_object_get(json_object_get(c, "payload"), "a"), json_integer(2));
    CHECK(json_array_size(json_object_get(json_object_get(msg, "payload"), "a")) == 1);
    json_decref(c);
    json_decref(msg);
    json_t *three = json_integer(3);
    c = crm_msg_clone(three); /* not an object: a plain copy */
    CHECK(json_integer_value(c) == 3);
    json_decref(c);
    json_decref(three);
    UNIT_DONE();
}
