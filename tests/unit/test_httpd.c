/* test_httpd.c: the HTTP server end to end over loopback: admin routes and
 * their fall-through to node routes, 404 pages, 504 for requests no http
 * response answers (httpRequestTimeout), 503 past maxRequestsInFlight, and
 * a clean stop with a request still pending. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpd.h"
#include "runtime.h"
#include "unit.h"
#include "unit_http.h"

/* One request with Connection: close; the whole answer, malloc'd. */
static char *http(int port, const char *request) { return unit_request(port, request, 5); }

static int status_of(const char *resp)
{
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : -1;
}

static void admin(void *ctx, const char *method, const char *path, const char *query, const json_t *headers,
                  const char *body, size_t len, crm_admin_reply *reply)
{
    (void)ctx;
    (void)query;
    (void)headers;
    (void)body;
    (void)len;
    if (!strcmp(method, "GET") && !strcmp(path, "/settings")) {
        reply->status = 200;
        reply->content_type = "application/json";
        reply->body = strdup("{\"ok\":true}");
        reply->len = strlen(reply->body);
    }
}

static void test_admin(void)
{
    json_t *settings = json_pack("{s:i,s:s}", "port", 0, "httpAdminRoot", "/admin");
    crm_httpd *h = crm_httpd_new(settings);
    json_decref(settings);
    CHECK(h != NULL);
    if (!h) return;
    crm_httpd_set_admin(h, admin, NULL);
    CHECK(crm_httpd_start(h) == 0);
    int port = crm_httpd_port(h);
    CHECK(port > 0);
    char *r = http(port, "GET /admin/settings HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(status_of(r) == 200);
    CHECK(strstr(r, "{\"ok\":true}") != NULL);
    free(r);
    r = http(port, "GET /admin/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(status_of(r) == 404);
    CHECK(strstr(r, "Cannot GET /admin/nothing") != NULL);
    free(r);
    /* roots differ: the admin app's JSON parser does not see node requests */
    r = http(port, "POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\n\r\n{x");
    CHECK(status_of(r) == 404);
    free(r);
    r = http(port, "POST /admin/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\n\r\n{x");
    CHECK(status_of(r) == 400);
    free(r);
    crm_httpd_stop(h);
    crm_httpd_free(h);
}

static const char *flow =
    "[{\"id\":\"t\",\"type\":\"tab\"},"
    "{\"id\":\"in\",\"type\":\"http in\",\"z\":\"t\",\"url\":\"/hang\",\"method\":\"get\",\"x\":1,\"y\":1,\"wires\":[[\"seen\"]]},"
    "{\"id\":\"seen\",\"type\":\"debug\",\"z\":\"t\",\"tosidebar\":false,\"console\":true,\"complete\":\"req.url\",\"x\":1,\"y\":1,\"wires\":[]},"
    "{\"id\":\"in2\",\"type\":\"http in\",\"z\":\"t\",\"url\":\"/ok\",\"method\":\"get\",\"x\":1,\"y\":1,\"wires\":[[\"r\"]]},"
    "{\"id\":\"r\",\"type\":\"http response\",\"z\":\"t\",\"statusCode\":\"\",\"headers\":{},\"x\":1,\"y\":1,\"wires\":[]}]";

/* requests to /hang that reached the flow (its debug node logs each one) */
static int hung;

static void count_hung(void *ctx, crm_log_level lvl, const char *node_id, const char *node_type, const char *text)
{
    (void)ctx;
    (void)lvl;
    (void)node_type;
    (void)text;
    if (node_id && !strcmp(node_id, "seen")) __atomic_add_fetch(&hung, 1, __ATOMIC_SEQ_CST);
}

/* until the flow has seen n requests to /hang (at most 5 s) */
static bool wait_hung(int n)
{
    for (int i = 0; i < 5000 && __atomic_load_n(&hung, __ATOMIC_SEQ_CST) < n; i++) usleep(1000);
    return __atomic_load_n(&hung, __ATOMIC_SEQ_CST) >= n;
}

static void test_limits(void)
{
    /* the timeout is long enough that a loaded machine still sends the
     * second request while the first one is in flight */
    json_t *settings = json_pack("{s:i,s:i,s:i}", "port", 0, "httpRequestTimeout", 1000, "maxRequestsInFlight", 1);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    crm_runtime_set_log_hook(rt, count_hung, NULL);
    json_error_t e;
    json_t *flows = json_loads(flow, 0, &e);
    strbuf problems = SB_INIT;
    CHECK(crm_runtime_load(rt, flows, 0, &problems) == 0);
    sb_free(&problems);
    json_decref(flows);
    CHECK(crm_runtime_start(rt) == 0);
    int port = crm_runtime_http_port(rt);
    char *r = http(port, "GET /ok?a=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(status_of(r) == 200);
    CHECK(strstr(r, "{\"a\":\"1\"}") != NULL);
    free(r);
    /* nothing answers /hang: 504 after httpRequestTimeout */
    double t0 = crm_now_ms();
    r = http(port, "GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    double took = crm_now_ms() - t0;
    CHECK(status_of(r) == 504);
    CHECK(took >= 950 && took < 5000);
    free(r);
    /* one request in flight at most: a second one meanwhile gets 503 */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    const char *hang = "GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(write(fd, hang, strlen(hang)) == (ssize_t)strlen(hang));
    /* in flight once the flow has it (not after a fixed sleep: under load the
     * server may not have read it yet, and /ok would take the one slot) */
    CHECK(wait_hung(2));
    r = http(port, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(status_of(r) == 503);
    free(r);
    /* stopping answers what is still pending */
    crm_runtime_stop(rt);
    char buf[256] = "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    CHECK(n > 0 && (status_of(buf) == 503 || status_of(buf) == 504));
    close(fd);
    crm_runtime_free(rt);
}

/* Numeric settings out of an integer's range (found by fuzz_settings under
 * UBSan: the casts were undefined): a bad port refuses the server, the
 * others fall back to their defaults. */
static void test_setting_ranges(void)
{
    const char *refused[] = {"{\"port\": \"1e309\"}", "{\"uiPort\": \" r\"}", "{\"port\": 70000}", "{\"port\": -1}"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        json_t *s = json_loads(refused[i], 0, NULL);
        crm_httpd *h = crm_httpd_new(s);
        CHECK(h == NULL);
        if (h) crm_httpd_free(h);
        json_decref(s);
    }
    json_t *s = json_loads("{\"port\": 0, \"httpThreads\": \"1e309\", \"apiMaxLength\": \"1e309b\"}", 0, NULL);
    crm_httpd *h = crm_httpd_new(s);
    CHECK(h != NULL);
    if (h) crm_httpd_free(h);
    json_decref(s);
}

int main(void)
{
    test_setting_ranges();
    test_admin();
    test_limits();
    UNIT_DONE();
}
