/* mhd_bare.c: the ceiling of the http in -> change -> http response flow on
 * this machine. libmicrohttpd alone answers every GET with the time in
 * milliseconds since the epoch (what the change node's "date" sets), as
 * text/html; charset=utf-8, with no flow engine, no messages and no
 * hand-off between threads: each answer is queued inside the access
 * handler.
 *
 *   gcc -O2 -o mhd_bare tools/bench/mhd_bare.c -lmicrohttpd
 *   ./mhd_bare PORT [THREADS]      (THREADS 1: one polling thread; N > 1: a pool of N)
 *
 * Give it as many threads as Carmine serves HTTP with in the same
 * comparison (tools/bench/bench_http.sh picks the number). Listens on
 * 127.0.0.1 only; stops on SIGINT or SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* The first call for a request only marks it seen (its head is complete,
 * a body may follow); the second answers. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)cls, (void)url, (void)version, (void)upload;
    static int seen;
    if (*state == NULL) {
        *state = &seen;
        return MHD_YES;
    }
    if (*upload_size) { /* a body: read and dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    unsigned status = strcmp(method, "GET") == 0 ? MHD_HTTP_OK : MHD_HTTP_METHOD_NOT_ALLOWED;
    char text[24];
    size_t len = 0;
    if (status == MHD_HTTP_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        len = (size_t)snprintf(text, sizeof text, "%lld", ms);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (port <= 0 || port > 65535 || threads < 1 || threads > 64) {
        fprintf(stderr, "%s: bad port or thread count\n", argv[0]);
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
                         MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d\n", argv[0], port);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!stopping)
        pause();
    MHD_stop_daemon(d);
    return 0;
}
