/* test_http_request.c: the http request node's JavaScript-compatible helpers
 * (mustache.js, hash-sum, querystring, cookie.parse, URL clean-up; expected
 * values produced with the npm packages Node-RED 4.1.15 uses) and the shared
 * curl-multi client against a throw-away local server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpclient.h"
#include "unit.h"
#include "value.h"

static json_t *J(const char *text)
{
    char err[128];
    json_t *v = crm_parse(text, strlen(text), err, sizeof err);
    if (!v) fprintf(stderr, "bad test JSON: %s\n", err);
    return v;
}

static void check_render(const char *tmpl, const json_t *view, const char *want)
{
    char *err = NULL;
    char *got = crm_mustache_render(tmpl, view, &err);
    CHECK_STR(got, want);
    free(got);
    free(err);
}

static void test_mustache(void)
{
    json_t *v = J("{\"payload\":\"a/b&c\",\"a\":{\"b\":\"x<y\"},\"n\":5,\"arr\":[{\"v\":1},{\"v\":2}],\"e\":[],"
                  "\"t\":true,\"f\":false,\"z\":0,\"s\":\"str\",\"o\":{\"k\":1},\"nul\":null}");
    check_render("http://h/{{payload}}", v, "http://h/a&#x2F;b&amp;c");
    check_render("{{{payload}}}", v, "a/b&c");
    check_render("{{& payload}}", v, "a/b&c");
    check_render("{{a.b}}|{{{a.b}}}", v, "x&lt;y|x<y");
    check_render("{{n}}", v, "5");
    check_render("{{#arr}}[{{v}}]{{/arr}}", v, "[1][2]");
    check_render("{{^e}}empty{{/e}}", v, "empty");
    check_render("{{#t}}T{{n}}{{/t}}", v, "T5");
    check_render("{{#f}}F{{/f}}{{^f}}nf{{/f}}", v, "nf");
    check_render("{{z}}{{#z}}Z{{/z}}", v, "0");
    check_render("{{#s}}{{.}}{{/s}}", v, "str");
    check_render("{{o}}", v, "[object Object]");
    check_render("{{arr}}", v, "[object Object],[object Object]");
    check_render("{{nul}}x{{missing}}", v, "x");
    check_render("{{! c }}a{{=<% %>=}}<% n %>{{n}}", v, "a5{{n}}");
    check_render("{{s.length}}", v, "3");
    check_render("{{#o}}{{k}}{{n}}{{/o}}", v, "15");
    check_render("a{{ payload }}b", v, "aa&#x2F;b&amp;cb");
    char *err = NULL;
    CHECK(crm_mustache_render("{{#x}}", v, &err) == NULL && err && strstr(err, "Unclosed section"));
    free(err);
    CHECK(crm_mustache_render("{{x", v, &err) == NULL && err && strstr(err, "Unclosed tag"));
    free(err);
    CHECK(crm_mustache_render("{{/y}}", v, &err) == NULL && err && strstr(err, "Unopened section"));
    free(err);
    json_decref(v);
}

static void check_hash(const char *json, const char *want)
{
    json_t *v = J(json);
    char buf[17];
    CHECK_STR(crm_hash_sum(v, buf), want);
    json_decref(v);
}

static void test_hash_sum(void)
{
    check_hash("{\"content-type\":\"text/html; charset=utf-8\",\"content-length\":\"5\",\"date\":\"Mon, 01 Jan 2024 "
               "00:00:00 GMT\",\"connection\":\"keep-alive\",\"set-cookie\":[\"a=1; Path=/\",\"b=2\"]}",
               "2a9bc3a4");
    check_hash("{}", "59322f29");
    check_hash("\"\"", "bba68bf6");
    check_hash("\"abc\"", "1a3ae0ac");
    check_hash("1.5", "64a5715c");
    check_hash("null", "9b7df12e");
    check_hash("[1,2,3,4,5,6,7,8,9,10,11,12]", "66591e08");
    check_hash("{\"x\":\"\xC2\xB0\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"}", "3bf99754");
    check_hash("true", "01e34ba8");
}

static void test_querystring_cookies(void)
{
    json_t *v = J("{\"a\":1,\"b\":\"x y\",\"c\":[1,\"2\"],\"d\":[],\"e\":null,\"f\":{\"g\":1},\"h\":true,"
                  "\"i\":\"\xC3\xA9&=/\"}");
    char *qs = crm_querystring(v);
    CHECK_STR(qs, "a=1&b=x%20y&c=1&c=2&e=&f=&h=true&i=%C3%A9%26%3D%2F");
    free(qs);
    json_decref(v);

    json_t *c = crm_cookie_parse("a=1; Path=/; HttpOnly; b=\"q%20x\"; a=2; c=%ZZ");
    char *s = crm_stringify(c, 0);
    CHECK_STR(s, "{\"a\":\"1\",\"Path\":\"/\",\"b\":\"q x\",\"c\":\"%ZZ\"}");
    free(s);
    json_decref(c);

    json_t *sc = J("[\"sid=abc; Path=/; HttpOnly\",\"x=1\"]");
    json_t *ex = crm_extract_cookies(sc);
    s = crm_stringify(ex, 0);
    CHECK_STR(s, "{\"sid\":{\"Path\":\"/\",\"value\":\"abc\"},\"x\":{\"value\":\"1\"}}");
    free(s);
    json_decref(ex);
    json_decref(sc);
}

static void check_url(const char *in, const char *want)
{
    char *u = crm_url_clean(in, false);
    CHECK_STR(u, want);
    free(u);
}

static void test_url_clean(void)
{
    check_url("http://127.0.0.1:1880/text", "http://127.0.0.1:1880/text");
    check_url("HTTP://Example.COM", "http://example.com/");
    check_url("http://example.com:80/a b", "http://example.com/a%20b");
    check_url("https://example.com:443/x?y=1#frag", "https://example.com/x?y=1");
    check_url("http://h/p?c[0].Text=T24,0\xC2\xB0|H80%|W%20S8,3m/s", "http://h/p?c[0].Text=T24,0%C2%B0|H80%25|W%20S8,3m/s");
    check_url("http://u:p@h:8080/{x}", "http://u:p@h:8080/%7Bx%7D");
    char *u = crm_url_clean("http://h/e/a&#x2F;b c", true);
    CHECK_STR(u, "http://h/e/a&#x2F;b%20c");
    free(u);
}

/* A tiny HTTP server: answers every request with a fixed response. */
static int listen_fd;
static const char *canned;

static void *server(void *unused)
{
    (void)unused;
    for (;;) {
        int c = accept(listen_fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[4096];
        ssize_t r = read(c, buf, sizeof buf);
        (void)r;
        ssize_t w = write(c, canned, strlen(canned));
        (void)w;
        close(c);
    }
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static crm_http_result *got;

static void on_done(crm_http_result *res, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    got = res;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static crm_http_result *wait_result(void)
{
    pthread_mutex_lock(&mu);
    while (!got) pthread_cond_wait(&cv, &mu);
    crm_http_result *r = got;
    got = NULL;
    pthread_mutex_unlock(&mu);
    return r;
}

static void test_client(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(listen_fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(listen_fd, (struct sockaddr *)&a, &al);
    listen(listen_fd, 16);
    canned = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-A: 1\r\n"
             "X-A: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    pthread_t th;
    pthread_create(&th, NULL, server, NULL);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));

    crm_http_group *g = crm_http_group_new();
    CHECK(g != NULL);
    crm_http_spec spec = {.method = "GET", .url = url, .timeout_ms = 2000, .follow_redirects = true};
    char *err = NULL;
    CHECK(crm_http_submit(g, &spec, on_done, NULL, &err) == 0);
    crm_http_result *r = wait_result();
    CHECK(r->err_code == NULL);
    CHECK(r->status == 200);
    CHECK(r->body_len == 5 && !memcmp(r->body, "hello", 5));
    CHECK_STR(r->url, url);
    char *h = crm_stringify(r->headers, 0);
    CHECK_STR(h, "{\"content-type\":\"text/plain\",\"set-cookie\":[\"a=1\",\"b=2\"],\"x-a\":\"1, 2\","
                 "\"content-length\":\"5\",\"connection\":\"close\"}");
    free(h);
    crm_http_result_free(r);

    spec.url = "http://127.0.0.1:1/x";
    CHECK(crm_http_submit(g, &spec, on_done, NULL, &err) == 0);
    r = wait_result();
    CHECK_STR(r->err_code, "ECONNREFUSED");
    CHECK_STR(r->err_text, "RequestError: connect ECONNREFUSED 127.0.0.1:1");
    crm_http_result_free(r);
    crm_http_group_close(g, NULL);
    CHECK(crm_http_in_flight() == 0);
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(th, NULL);
}

int main(void)
{
    test_mustache();
    test_hash_sum();
    test_querystring_cookies();
    test_url_clean();
    test_client();
    UNIT_DONE();
}
