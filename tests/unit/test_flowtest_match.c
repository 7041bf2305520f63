/* test_flowtest_match.c: the flow test matchers (cli/flowtest_match.c):
 * each matcher, deep equality rules, message-level rules, reviving. */
#include <math.h>
#include <stdlib.h>

/* tests/meson.build links unit tests against the engine library only, which
 * does not hold cli/: the matchers are compiled in here. */
#include "../../cli/flowtest_match.c"
#include "unit.h"
#include "value.h"

static json_t *J(const char *text)
{
    char err[128];
    json_t *v = crm_parse(text, strlen(text), err, sizeof err);
    if (!v) fprintf(stderr, "bad test JSON %s: %s\n", text, err);
    return v;
}

/* match(expected JSON, actual value stolen) */
static bool m(const char *exp_text, json_t *act)
{
    json_t *exp = J(exp_text);
    strbuf why = SB_INIT;
    bool ok = ftm_match(exp, act, "msg.payload", &why);
    if (!ok && !why.len) fprintf(stderr, "no reason given for %s\n", exp_text);
    sb_free(&why);
    json_decref(exp);
    json_decref(act);
    return ok;
}

static char *reason_of(const char *exp_text, json_t *act)
{
    json_t *exp = J(exp_text);
    strbuf why = SB_INIT;
    ftm_match(exp, act, "msg.payload", &why);
    json_decref(exp);
    json_decref(act);
    return sb_take(&why);
}

static void test_plain(void)
{
    CHECK(m("1", crm_num(1)));
    CHECK(m("1", json_integer(1)));
    CHECK(!m("1", crm_num(2)));
    CHECK(!m("1", json_string("1")));
    CHECK(m("\"a\"", json_string("a")));
    CHECK(m("null", json_null()));
    CHECK(!m("null", NULL));
    CHECK(m("[1,{\"a\":true}]", J("[1,{\"a\":true}]")));
    CHECK(!m("[1]", J("[1,2]")));
    CHECK(!m("{\"a\":1}", J("{\"a\":1,\"b\":2}"))); /* nested objects compare whole */
    CHECK(!m("{\"a\":1}", J("[1]")));
    CHECK(!m("{}", crm_buf_new("x", 1)));
    char *r = reason_of("{\"a\":1}", J("{\"a\":2}"));
    CHECK_STR(r, "msg.payload.a: expected 1, got 2");
    free(r);
    r = reason_of("{\"a\":1}", J("{\"a\":1,\"b\":[2]}"));
    CHECK_STR(r, "msg.payload: unexpected key b ([2])");
    free(r);
    r = reason_of("[1,2]", J("[1,3]"));
    CHECK_STR(r, "msg.payload[1]: expected 2, got 3");
    free(r);
}

static void test_type(void)
{
    CHECK(m("{\"$type\":\"number\"}", crm_num(3)));
    CHECK(m("{\"$type\":\"number\"}", crm_num(NAN)));
    CHECK(m("{\"$type\":\"number\"}", crm_num(-INFINITY)));
    CHECK(!m("{\"$type\":\"number\"}", json_string("3")));
    CHECK(m("{\"$type\":\"string\"}", json_string("")));
    CHECK(m("{\"$type\":\"boolean\"}", json_false()));
    CHECK(m("{\"$type\":\"object\"}", J("{}")));
    CHECK(!m("{\"$type\":\"object\"}", J("[]")));
    CHECK(!m("{\"$type\":\"object\"}", json_null()));
    CHECK(!m("{\"$type\":\"object\"}", crm_buf_new("a", 1)));
    CHECK(m("{\"$type\":\"array\"}", J("[]")));
    CHECK(m("{\"$type\":\"null\"}", json_null()));
    CHECK(!m("{\"$type\":\"string\"}", NULL));
}

static void test_regex(void)
{
    CHECK(m("{\"$regex\":\"^\\\\d{13}$\"}", json_string("1700000000000")));
    CHECK(!m("{\"$regex\":\"^\\\\d{13}$\"}", json_string("1700000000000\n")));
    CHECK(m("{\"$regex\":\"b\"}", json_string("abc"))); /* unanchored */
    CHECK(!m("{\"$regex\":\"b\"}", crm_num(1)));
    CHECK(m("{\"$regex\":\"^http:\\\\/\\\\/127\"}", json_string("http://127.0.0.1")));
    CHECK(m("{\"$regex\":\"\\\\u0041\"}", json_string("A")));
    CHECK(!m("{\"$regex\":\"(\"}", json_string("(")));
    CHECK(ftm_regex_test("^Invalid 'to' JSON", "Invalid 'to' JSON property", 26, NULL) == 1);
    char *err = NULL;
    CHECK(ftm_regex_test("[", "x", 1, &err) == -1);
    CHECK(err != NULL);
    free(err);
}

static void test_approx_absent_buffer(void)
{
    CHECK(m("{\"$approx\":10,\"$tol\":0.5}", crm_num(10.4)));
    CHECK(!m("{\"$approx\":10,\"$tol\":0.5}", crm_num(10.6)));
    CHECK(!m("{\"$approx\":10,\"$tol\":0.5}", crm_num(NAN)));
    CHECK(m("{\"$approx\":1.5}", crm_num(1.5)));
    CHECK(m("{\"$absent\":true}", NULL));
    CHECK(!m("{\"$absent\":true}", json_null()));
    CHECK(m("{\"a\":{\"$absent\":true}}", J("{}")));
    CHECK(!m("{\"a\":{\"$absent\":true}}", J("{\"a\":0}")));
    CHECK(m("{\"$buffer\":\"6869\"}", crm_buf_new("hi", 2)));
    CHECK(m("{\"$buffer\":\"6A\"}", crm_buf_new("j", 1)));
    CHECK(m("{\"$buffer\":\"\"}", crm_buf_new("", 0)));
    CHECK(!m("{\"$buffer\":\"6869\"}", json_string("hi")));
    CHECK(!m("{\"$buffer\":\"6869\"}", crm_buf_new("ho", 2)));
    char *r = reason_of("{\"$buffer\":\"6869\"}", crm_buf_new("ho", 2));
    CHECK_STR(r, "msg.payload: expected buffer 6869, got {\"$buffer\":\"686f\"}");
    free(r);
}

static void test_msg(void)
{
    json_t *exp = J("{\"payload\":1,\"_msgid\":\"x\",\"$t_ms\":[100,200]}");
    json_t *act = J("{\"payload\":1,\"_msgid\":\"y\",\"topic\":\"extra is fine\"}");
    strbuf why = SB_INIT;
    CHECK(ftm_match_msg(exp, act, 150, &why));
    CHECK(!ftm_match_msg(exp, act, 99, &why));
    CHECK_STR(why.data, "arrived at 99 ms, expected within [100, 200]");
    sb_free(&why);
    json_decref(exp);
    exp = J("{\"topic\":{\"$absent\":true}}");
    CHECK(!ftm_match_msg(exp, act, 0, &why));
    CHECK_STR(why.data, "msg.topic: expected absent, got \"extra is fine\"");
    sb_free(&why);
    json_decref(exp);
    json_decref(act);
}

static void test_revive_subst_text(void)
{
    json_t *src = J("{\"a\":{\"$buffer\":\"00ff\"},\"b\":[{\"$buffer\":\"zz\"}],\"n\":1}");
    json_t *v = ftm_revive(src);
    size_t n;
    const unsigned char *d = crm_buf_data(json_object_get(v, "a"), &n);
    CHECK(crm_is_buf(json_object_get(v, "a")) && n == 2 && d[0] == 0 && d[1] == 0xff);
    CHECK(!crm_is_buf(json_array_get(json_object_get(v, "b"), 0)));
    json_decref(v);
    json_decref(src);

    src = J("{\"url\":\"http://127.0.0.1:${FLOWTEST_PORT}/x${FLOWTEST_PORT}\",\"k\":[\"${FLOWTEST_PORT}\"]}");
    v = ftm_subst(src, "${FLOWTEST_PORT}", "1880");
    CHECK_STR(json_string_value(json_object_get(v, "url")), "http://127.0.0.1:1880/x1880");
    CHECK_STR(json_string_value(json_array_get(json_object_get(v, "k"), 0)), "1880");
    json_decref(v);
    json_decref(src);
    src = J("{\"filename\":\"${FLOWTEST_TMP}/a.txt\",\"n\":2,\"other\":\"${FLOWTEST_PORT}\"}");
    v = ftm_subst(src, "${FLOWTEST_TMP}", "/tmp/case-1");
    CHECK_STR(json_string_value(json_object_get(v, "filename")), "/tmp/case-1/a.txt");
    CHECK_STR(json_string_value(json_object_get(v, "other")), "${FLOWTEST_PORT}");
    CHECK(json_integer_value(json_object_get(v, "n")) == 2 || json_number_value(json_object_get(v, "n")) == 2);
    json_decref(v);
    json_decref(src);

    v = ftm_text("a\xff" "b\xe2\x82", 5);
    CHECK_STR(json_string_value(v), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    json_decref(v);
    v = ftm_text("\x01\x02" "abc\xc3\xa9", 7);
    CHECK_STR(json_string_value(v), "\x01\x02" "abc\xc3\xa9");
    json_decref(v);

    strbuf sb = SB_INIT;
    json_t *o = json_object();
    json_object_set_new(o, "n", crm_num(NAN));
    json_object_set_new(o, "s", json_string("q\""));
    ftm_show(&sb, o, 0);
    CHECK_STR(sb.data, "{\"n\":NaN,\"s\":\"q\\\"\"}");
    sb_free(&sb);
    ftm_show(&sb, o, 4);
    CHECK_STR(sb.data, "{\"n\"...");
    sb_free(&sb);
    json_decref(o);
}

int main(void)
{
    test_plain();
    test_type();
    test_regex();
    test_approx_absent_buffer();
    test_msg();
    test_revive_subst_text();
    UNIT_DONE();
}
