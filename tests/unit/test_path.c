/* test_path.c: property expressions (runtime/path.c) against Node-RED's
 * normalisePropertyExpression / getMessageProperty / setMessageProperty. */
#include <stdlib.h>

#include "carmine.h"
#include "unit.h"

char *crm_path_resolve_key(const char *expr, const json_t *msg, char **err);

static json_t *J(const char *text)
{
    char err[128];
    json_t *v = crm_parse(text, strlen(text), err, sizeof err);
    if (!v) fprintf(stderr, "bad test JSON %s: %s\n", text, err);
    return v;
}

static char *S(const json_t *v)
{
    return v ? crm_stringify(v, 0) : strdup("undefined");
}

static void check_err(const char *expr, const char *want)
{
    char *err = NULL;
    crm_path *p = crm_path_parse(expr, &err);
    CHECK(p == NULL);
    CHECK_STR(err, want);
    free(err);
    crm_path_free(p);
}

static void check_get(const char *msgtext, const char *expr, const char *want, bool want_throw)
{
    json_t *msg = J(msgtext);
    char *err = NULL;
    crm_path *p = crm_path_parse(expr, &err);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "  %s: %s\n", expr, err);
        free(err);
        json_decref(msg);
        return;
    }
    bool thr = false;
    json_t *v = crm_path_get(p, msg, msg, &thr);
    char *s = S(v);
    CHECK_STR(s, want);
    CHECK(thr == want_throw);
    free(s);
    crm_path_free(p);
    json_decref(msg);
}

static void check_set(const char *msgtext, const char *expr, const char *value, bool create, int want_rc,
                      const char *want_msg)
{
    json_t *msg = J(msgtext);
    crm_path *p = crm_path_parse(expr, NULL);
    CHECK(p != NULL);
    int rc = crm_path_set(p, msg, msg, value ? J(value) : NULL, create);
    CHECK(rc == want_rc);
    char *s = S(msg);
    CHECK_STR(s, want_msg);
    free(s);
    crm_path_free(p);
    json_decref(msg);
}

static void parse_errors(void)
{
    check_err("", "Invalid property expression: zero-length");
    check_err(".a", "Invalid property expression: unexpected . at position 0");
    check_err("a.", "Invalid property expression: unterminated expression");
    check_err("a.-b", "Invalid property expression: unexpected - at position 2");
    check_err("[0]", "Invalid property expression: unexpected [ at position 0");
    check_err("a[b]", "Invalid property expression: unexpected b at position 2");
    check_err("a[1b]", "Invalid property expression: unexpected array expression at position 2");
    check_err("a b", "Invalid property expression: unexpected ' ' at position 1");
    check_err("a]", "Invalid property expression: unexpected ] at position 1");
    check_err("a[\"\"]", "Invalid property expression: zero-length string at position 3");
    check_err("a[\"b\"c]", "Invalid property expression: unexpected array expression at position 3");
    check_err("a[\"b", "Invalid property expression: unterminated expression");
    check_err("a[0", "Invalid property expression: unterminated expression");
    check_err("a[", "Invalid property expression: unterminated expression");
    check_err("a\"b\"", "Invalid property expression: unexpected \" at position 1");
    check_err("\"a\"b", "Invalid property expression: unexpected b expression at position 3");
    check_err("a[msg.b", "Invalid property expression: unmatched '[' at position 1");
    check_err("a[msg.b c]", "Invalid expression started at position 2");
}

static void reads(void)
{
    check_get("{\"payload\":1}", "payload", "1", false);
    check_get("{\"payload\":1}", "msg.payload", "1", false);
    check_get("{\"a\":{\"b\":[{\"c\":1},{\"c\":\"two\"}]}}", "a.b[1].c", "\"two\"", false);
    check_get("{\"a\":{\"b c\":5}}", "a[\"b c\"]", "5", false);
    check_get("{\"a\":{\"b c\":5}}", "a['b c']", "5", false);
    check_get("{\"a\":[7,8]}", "a.1", "8", false);
    check_get("{\"a\":{\"1\":\"x\"}}", "a[1]", "\"x\"", false);
    check_get("{}", "nothere", "undefined", false);
    check_get("{}", "no.there", "undefined", true);
    check_get("{\"a\":null}", "a.b", "undefined", true);
    check_get("{\"a\":5}", "a.b", "undefined", false);
    check_get("{\"a\":5}", "a.b.c", "undefined", true);
    check_get("{\"lookup\":{\"a\":1,\"b\":2},\"topic\":\"b\"}", "lookup[msg.topic]", "2", false);
    check_get("{\"lookup\":[5,6],\"i\":1}", "lookup[msg.i]", "6", false);
    check_get("{\"lookup\":{\"a\":1}}", "lookup[msg.topic]", "undefined", true);
    check_get("{\"p\":\"héllo\"}", "p.length", "5", false);
    check_get("{\"p\":[1,2,3]}", "p.length", "3", false);
    check_get("{\"p\":\"abc\"}", "p[1]", "\"b\"", false);
    check_get("{\"a\":{\"b\":{\"c\":\"k\"}},\"t\":{\"k\":9}}", "t[msg.a.b.c]", "9", false);
    check_get("{\"a\":{\"x\":{\"y\":3}},\"k\":\"x\"}", "a[msg.k].y", "3", false);
}

static void writes(void)
{
    check_set("{\"payload\":1}", "payload", "2", true, 0, "{\"payload\":2}");
    check_set("{}", "foo.bar", "\"bar\"", true, 0, "{\"foo\":{\"bar\":\"bar\"}}");
    check_set("{}", "a[0].b", "1", true, 0, "{\"a\":[{\"b\":1}]}");
    check_set("{}", "a.b[2]", "1", true, 0, "{\"a\":{\"b\":[null,null,1]}}");
    check_set("{}", "a.b", "1", false, -1, "{}");
    check_set("{\"a\":\"str\"}", "a.b", "1", true, -1, "{\"a\":\"str\"}");
    check_set("{\"a\":null}", "a.b", "1", true, -1, "{\"a\":null}");
    check_set("{\"a\":5}", "a.b.c", "1", true, -1, "{\"a\":5}");
    check_set("{\"payload\":\"x\",\"t\":1}", "payload", NULL, false, 0, "{\"t\":1}");
    check_set("{\"p\":[1,2,3]}", "p[0]", NULL, false, 0, "{\"p\":[2,3]}");
    check_set("{\"p\":[1,2,3]}", "p.0", NULL, false, 0, "{\"p\":[null,2,3]}");
    check_set("{\"p\":{\"a\":{\"b\":1,\"c\":2}}}", "p.a.b", NULL, false, 0, "{\"p\":{\"a\":{\"c\":2}}}");
    check_set("{\"p\":1}", "no.thing", NULL, false, -1, "{\"p\":1}");
    check_set("{\"lookup\":{\"a\":1,\"b\":2},\"topic\":\"b\"}", "lookup[msg.topic]", "\"n\"", true, 0,
              "{\"lookup\":{\"a\":1,\"b\":\"n\"},\"topic\":\"b\"}");
    check_set("{\"lookup\":{}}", "lookup[msg.topic]", "1", true, -2, "{\"lookup\":{}}");
}

static void cycles(void)
{
    json_t *msg = J("{\"payload\":{\"a\":1}}");
    crm_path *p = crm_path_parse("payload.self", NULL);
    json_t *v = json_incref(json_object_get(msg, "payload"));
    CHECK(crm_path_set(p, msg, msg, v, true) == 0);
    char *s = S(msg);
    CHECK_STR(s, "{\"payload\":{\"a\":1,\"self\":{\"a\":1}}}");
    free(s);
    crm_path_free(p);
    json_decref(msg);
}

static void context_keys(void)
{
    json_t *msg = J("{\"topic\":\"b\",\"i\":2,\"q\":\"x\\\"y\"}");
    char *err = NULL;
    char *k = crm_path_resolve_key("lookup[msg.topic]", msg, &err);
    CHECK_STR(k, "lookup[\"b\"]");
    free(k);
    k = crm_path_resolve_key("a[msg.i].c", msg, &err);
    CHECK_STR(k, "a[2][\"c\"]");
    free(k);
    k = crm_path_resolve_key("a[msg.q]", msg, &err);
    CHECK_STR(k, "a['x\"y']");
    free(k);
    k = crm_path_resolve_key("a[msg.none]", msg, &err);
    CHECK(k == NULL && err != NULL);
    free(err);
    json_decref(msg);
}

int main(void)
{
    parse_errors();
    reads();
    writes();
    cycles();
    context_keys();
    UNIT_DONE();
}
