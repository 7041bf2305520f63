/* fuzz_http_head.c: libFuzzer target for the HTTP request path through
 * libmicrohttpd: the input is the bytes a client sends on one connection
 * (request line, headers, body, pipelined requests, any garbage). A runtime
 * serving a small flow (http in GET /q and POST /echo answered by http
 * response, GET /slow never answered) listens on a loopback port, started
 * once; each input is sent on a new connection whose sending side is then
 * closed, and the answer read until the server closes it or 300 ms pass
 * (httpRequestTimeout 200 ms, httpHeadersTimeout 250 ms). Exercises the
 * framing checks (smuggling), header collection, routing, query and body
 * parsing, suspend and resume. Must never crash or leak. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime.h"

static const char *FLOWS =
    "[{\"id\":\"t1\",\"type\":\"tab\",\"label\":\"T\"},"
    "{\"id\":\"h1\",\"type\":\"http in\",\"z\":\"t1\",\"url\":\"/q\",\"method\":\"get\",\"wires\":[[\"c1\"]]},"
    "{\"id\":\"c1\",\"type\":\"change\",\"z\":\"t1\",\"rules\":[{\"t\":\"set\",\"p\":\"payload\",\"pt\":\"msg\","
    "\"to\":\"req\",\"tot\":\"msg\"}],\"wires\":[[\"r1\"]]},"
    "{\"id\":\"h2\",\"type\":\"http in\",\"z\":\"t1\",\"url\":\"/echo/:p\",\"method\":\"post\",\"wires\":[[\"r1\"]]},"
    "{\"id\":\"h3\",\"type\":\"http in\",\"z\":\"t1\",\"url\":\"/slow\",\"method\":\"get\",\"wires\":[[]]},"
    "{\"id\":\"r1\",\"type\":\"http response\",\"z\":\"t1\",\"statusCode\":\"\",\"headers\":{},\"wires\":[]}]";

static int port;

static void quiet(void *ctx, crm_log_level lvl, const char *id, const char *type, const char *text)
{
    (void)ctx;
    (void)lvl;
    (void)id;
    (void)type;
    (void)text;
}

static int start(void)
{
    json_t *settings = json_pack("{s:i,s:s,s:i,s:i,s:i,s:s}", "port", 0, "host", "127.0.0.1", "httpRequestTimeout",
                                 200, "httpHeadersTimeout", 250, "httpThreads", 1, "apiMaxLength", "64kb");
    static crm_runtime *rt;
    rt = crm_runtime_new(settings);
    json_decref(settings);
    if (!rt) return -1;
    crm_runtime_set_log_hook(rt, quiet, NULL);
    json_t *flows = json_loads(FLOWS, 0, NULL);
    strbuf problems = SB_INIT;
    int rc = crm_runtime_load(rt, flows, 0, &problems);
    sb_free(&problems);
    json_decref(flows);
    if (rc != 0 || crm_runtime_start(rt) != 0) return -1;
    port = crm_runtime_http_port(rt);
    return port > 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!port && start() < 0) abort();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return 0;
    }
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char buf[16384];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 300) > 0) {
        if (recv(fd, buf, sizeof buf, 0) <= 0) break;
    }
    close(fd);
    return 0;
}
