/* unit_http.h: a runtime started on flows, and plain HTTP/1.1 over loopback
 * to its server (one request per connection, Connection: close), for the
 * unit tests that talk to it. */
#ifndef CRM_UNIT_HTTP_H
#define CRM_UNIT_HTTP_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "runtime.h"
#include "strbuf.h"

/* A connected socket to 127.0.0.1:port whose reads give up after
 * timeout_s seconds, or -1. */
static inline int unit_connect(int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends request (raw text) and returns the whole answer, malloc'd ("" when
 * the connection failed). */
static inline char *unit_request(int port, const char *request, int timeout_s)
{
    int fd = unit_connect(port, timeout_s);
    if (fd < 0) return strdup("");
    if (write(fd, request, strlen(request)) < 0) {
        close(fd);
        return strdup("");
    }
    strbuf sb = SB_INIT;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) sb_putn(&sb, buf, (size_t)n);
    close(fd);
    return sb.data ? sb_take(&sb) : strdup("");
}

/* GET path; the whole answer, malloc'd. */
static inline char *unit_get(int port, const char *path)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    return unit_request(port, req, 10);
}

/* A runtime on a free port running flows (JSON text); NULL when they do not
 * load or start. */
static inline crm_runtime *unit_start_flows(const char *flows)
{
    json_t *settings = json_pack("{s:i}", "port", 0);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *f = json_loads(flows, 0, NULL);
    bool ok = rt && f && crm_runtime_load(rt, f, 0, NULL) == 0 && crm_runtime_start(rt) == 0;
    json_decref(f);
    if (!ok && rt) crm_runtime_free(rt);
    return ok ? rt : NULL;
}
#endif
