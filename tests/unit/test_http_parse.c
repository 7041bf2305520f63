/* test_http_parse.c: the request-side parsers of the HTTP server: qs query
 * strings, cookies, Express route patterns, request bodies, content types
 * and ETags, checked against what Node-RED's modules give. */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "unit.h"

static char *js(const json_t *v) { return crm_stringify(v, 0); }

static void check_qs(const char *qs, const char *expect)
{
    json_t *v = crm_http_parse_query(qs, strlen(qs));
    char *s = js(v);
    CHECK_STR(s, expect);
    free(s);
    json_decref(v);
}

static void check_route(const char *pattern, const char *path, bool match, const char *params)
{
    http_pattern *p = http_pattern_new(pattern);
    CHECK(p != NULL);
    if (!p) return;
    json_t *pr = NULL;
    bool m = http_pattern_match(p, path, strlen(path), &pr);
    CHECK(m == match);
    if (m && params) {
        char *s = js(pr);
        CHECK_STR(s, params);
        free(s);
    }
    json_decref(pr);
    http_pattern_free(p);
}

static void check_body(const char *ct, const char *body, const char *expect)
{
    http_body_error err;
    json_t *files = NULL;
    json_t *v = http_parse_body(ct, body, strlen(body), false, &files, &err);
    char *s = v ? js(v) : strdup("ERR");
    if (v && crm_is_buf(v)) {
        free(s);
        s = strdup("BUFFER");
    }
    CHECK_STR(s, expect);
    free(s);
    json_decref(v);
    json_decref(files);
}

int main(void)
{
    /* qs */
    check_qs("a=1&b=x", "{\"a\":\"1\",\"b\":\"x\"}");
    check_qs("a=1&a=2&b=", "{\"a\":[\"1\",\"2\"],\"b\":\"\"}");
    check_qs("a[b]=1&c[]=x", "{\"a\":{\"b\":\"1\"},\"c\":[\"x\"]}");
    check_qs("", "{}");
    check_qs("x", "{\"x\":\"\"}");
    check_qs("a+b=c%20d&e=%ZZ", "{\"a b\":\"c d\",\"e\":\"%ZZ\"}");
    check_qs("a[1]=b&a[0]=c", "{\"a\":[\"c\",\"b\"]}");
    check_qs("a[]=1&a[]=2", "{\"a\":[\"1\",\"2\"]}");
    check_qs("a[b][c]=1&a[b][d]=2", "{\"a\":{\"b\":{\"c\":\"1\",\"d\":\"2\"}}}");
    /* express 4.22.2: qs 6.15.4 with arrayLimit 1000; values checked on node */
    check_qs("a[25]=x", "{\"a\":[\"x\"]}");
    check_qs("x[100]=1&x[0]=2", "{\"x\":[\"2\",\"1\"]}");
    check_qs("a[1000]=x&a=y", "{\"a\":{\"1000\":\"x\",\"1001\":\"y\"}}");
    check_qs("a[b]=1&a=x", "{\"a\":[{\"b\":\"1\"},\"x\"]}");
    check_qs("a[=1", "{\"a\":{\"[\":\"1\"}}");
    check_qs("a[b[c]]=1", "{\"a\":{\"b[c]\":\"1\"}}");
    check_qs("b=1&0=x", "{\"0\":\"x\",\"b\":\"1\"}");
    check_qs("a=1&a[b]=2", "{\"a\":[\"1\",{\"b\":\"2\"}]}");
    check_qs("callback=cb", "{\"callback\":\"cb\"}");

    /* cookies */
    json_t *c = http_cookies_parse("a=1; b=\"two\"; c=%41; a=9; j=j:{\"x\":1}");
    char *s = js(c);
    CHECK_STR(s, "{\"a\":\"1\",\"b\":\"two\",\"c\":\"A\",\"j\":{\"x\":1}}");
    free(s);
    json_decref(c);

    /* routes */
    check_route("/hello", "/hello", true, "{}");
    check_route("/post", "/POST/", true, "{}");
    check_route("/post", "/post//", false, NULL);
    check_route("/item/:id", "/item/7", true, "{\"id\":\"7\"}");
    check_route("/item/:id", "/ITEM/a%20b/", true, "{\"id\":\"a b\"}");
    check_route("/item/:id", "/item/", false, NULL);
    check_route("/item/:id?", "/item", true, "{}");
    check_route("/a/:x/b/:y", "/a/1/b/2", true, "{\"x\":\"1\",\"y\":\"2\"}");
    check_route("/files/*", "/files/a/b.txt", true, "{\"0\":\"a/b.txt\"}");
    check_route("/f/:name.:ext", "/f/pic.png", true, "{\"name\":\"pic\",\"ext\":\"png\"}");
    check_route("/api/x", "/api/y", false, NULL);
    check_route("/", "/", true, "{}");

    /* bodies */
    check_body("application/json", "{\"x\":1}", "{\"x\":1}");
    check_body("application/json", "{x", "ERR");
    check_body("application/json", "", "\"\"");
    check_body(NULL, "", "\"\"");
    check_body(NULL, "hi", "\"hi\"");
    check_body("text/plain", "hi", "\"hi\"");
    check_body("application/x-custom", "hi", "\"hi\"");
    check_body("application/vnd.api+json", "{\"x\":1}", "\"{\\\"x\\\":1}\"");
    check_body("application/octet-stream", "hi", "BUFFER");
    check_body("image/png", "hi", "BUFFER");
    check_body("application/x-www-form-urlencoded", "a=1&a=2&b[c]=3", "{\"a\":[\"1\",\"2\"],\"b\":{\"c\":\"3\"}}");
    check_body("application/xml", "<a/>", "\"<a/>\"");

    /* multipart */
    const char *mp = "--XX\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\r\n"
                     "--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
                     "Content-Type: text/plain\r\n\r\nfile body\r\n--XX--\r\n";
    http_body_error err;
    json_t *files = NULL;
    json_t *b = http_parse_body("multipart/form-data; boundary=XX", mp, strlen(mp), true, &files, &err);
    s = js(b);
    CHECK_STR(s, "{\"t\":\"hello\"}");
    free(s);
    CHECK(json_array_size(files) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(files, 0), "originalname")), "a.txt");
    CHECK(json_number_value(json_object_get(json_array_get(files, 0), "size")) == 9);
    json_decref(b);
    json_decref(files);

    /* content types */
    char *t = crm_http_set_charset("text/plain");
    CHECK_STR(t, "text/plain; charset=utf-8");
    free(t);
    t = crm_http_set_charset("Application/JSON; charset=latin1");
    CHECK_STR(t, "application/json; charset=utf-8");
    free(t);
    t = crm_http_type_for_set("application/json");
    CHECK_STR(t, "application/json; charset=utf-8");
    free(t);
    t = crm_http_type_for_set("image/png");
    CHECK_STR(t, "image/png");
    free(t);

    /* ETags as the etag module makes them */
    char tag[64];
    http_etag("", 0, tag);
    CHECK_STR(tag, "W/\"0-2jmj7l5rSw0yVb/vlWAYkK/YBwk\"");
    http_etag("hello", 5, tag);
    CHECK_STR(tag, "W/\"5-qvTGHdzF6KLavt4PO0gs2a6pQ00\"");
    CHECK(http_etag_fresh("W/\"5-qvTGHdzF6KLavt4PO0gs2a6pQ00\"", tag));
    CHECK(!http_etag_fresh("\"other\"", tag));

    CHECK(http_password_ok("secret", "secret"));
    CHECK(!http_password_ok("nope", "secret"));
    UNIT_DONE();
}
