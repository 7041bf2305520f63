/* ws_load.c: the load generator of the websocket echo benchmark
 * (tests/net/bench.py ws): N WebSocket clients on one thread (epoll), each
 * sending its next masked text message when the last one came back, for
 * a number of seconds. Prints {"count": messages echoed, "open": clients
 * upgraded, "seconds": elapsed}. Written in C so that the generator costs
 * less CPU than the runtimes it measures (Node's ws client, used before,
 * took a core of the two by itself). The receives of one epoll wake-up go
 * in one io_uring call, and so do the sends they answer (runtime/net/uring.c,
 * as Carmine's loop does, each socket a registered file of the thread's ring;
 * CARMINE_NO_URING=1: one recv and send each), so
 * that the generator costs each runtime the same and less than either.
 * The clients are shared among WS_LOAD_THREADS threads (default 2), each
 * with its own epoll: with one thread, the generator's turn over the 100
 * answers and the runtime's turn over the 100 messages took turns (each
 * waited for the other's whole batch, both at half a core), so the
 * generator's own work was part of what was measured; with two, one
 * thread's clients are answered while the other's are being read.
 *   ws_load PORT PATH CLIENTS SECONDS [PAYLOAD_BYTES] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/uring.h"

typedef struct {
    int fd;
    crm_uring_file uf;    /* fd in its thread's ring (a fixed file), when it could be */
    bool open;
    size_t len;           /* bytes in buf */
    unsigned char buf[8192];
    size_t olen;          /* bytes in out: frames to send */
    unsigned char out[4 * (4096 + 16)];
} client;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned char payload[4096];
static size_t plen = 16;

/* One masked text frame with the payload, queued in c->out. */
static void send_msg(client *c)
{
    if (c->olen + plen + 16 > sizeof c->out) return; /* never: one message in flight */
    unsigned char *f = c->out + c->olen;
    size_t h = 0;
    f[h++] = 0x81;
    if (plen < 126) f[h++] = (unsigned char)(0x80 | plen);
    else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(plen >> 8);
        f[h++] = (unsigned char)plen;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < plen; i++) f[h + i] = payload[i] ^ mask[i & 3];
    c->olen += h + plen;
}

/* Sends what the clients queued: one io_uring call for up to
 * CRM_URING_MAX of them, else send(2) each. */
static void flush_sends(client **cs, int n)
{
    crm_uring_op ops[CRM_URING_MAX];
    for (int b = 0; b < n; b += CRM_URING_MAX) {
        int m = 0;
        client *which[CRM_URING_MAX];
        for (int i = b; i < n && i < b + CRM_URING_MAX; i++)
            if (cs[i]->olen) {
                which[m] = cs[i];
                ops[m++] = (crm_uring_op){cs[i]->fd, CRM_URING_SEND, cs[i]->out, cs[i]->olen, 0, crm_uring_fixed(&cs[i]->uf)};
            }
        if (!crm_uring_run(ops, m))
            for (int i = 0; i < m; i++) {
                ssize_t k = send(which[i]->fd, which[i]->out, which[i]->olen, MSG_NOSIGNAL | MSG_DONTWAIT);
                ops[i].res = k < 0 ? -errno : k;
            }
        for (int i = 0; i < m; i++) {
            client *c = which[i];
            /* a short send would tear a frame: the loopback socket's buffer
             * always takes one small message */
            if (ops[i].res != (long)c->olen && ops[i].res != -EAGAIN) c->open = false;
            c->olen = 0;
        }
    }
}

typedef struct {
    client *cs;
    int n, gen_batch;
    double end;
    long count;
    int open;
    int fail;
} worker;

static const char *req_text;
static int req_len;

static void *run(void *arg)
{
    worker *wk = arg;
    int n = wk->n, gen_batch = wk->gen_batch;
    client *cs = wk->cs;
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        client *c = &cs[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        crm_uring_register(c->fd, &c->uf); /* as Carmine's busy connections are; let go with the ring */
        if (send(c->fd, req_text, (size_t)req_len, 0) != req_len) {
            wk->fail = 1;
            return NULL;
        }
    }
    long count = 0;
    int open = 0;
    double end = wk->end;
    struct epoll_event evs[CRM_URING_MAX];
    crm_uring_op ops[CRM_URING_MAX];
    client *ready[CRM_URING_MAX];
    while (now() < end) {
        int k = epoll_wait(ep, evs, CRM_URING_MAX, 100);
        for (int e = 0; e < k; e++) {
            client *c = evs[e].data.ptr;
            ops[e] = (crm_uring_op){c->fd, CRM_URING_RECV, c->buf + c->len, sizeof c->buf - c->len, 0, crm_uring_fixed(&c->uf)};
        }
        if (k > 0 && !crm_uring_run(ops, k))
            for (int e = 0; e < k; e++) {
                ssize_t r = recv(ops[e].fd, ops[e].buf, ops[e].len, MSG_DONTWAIT);
                ops[e].res = r < 0 ? -errno : r;
            }
        int flushed = 0; /* answers leave in groups, so that the server starts on them sooner */
        for (int e = 0; e < k; e++) {
            if (e - flushed == gen_batch) {
                flush_sends(ready + flushed, e - flushed);
                flushed = e;
            }
            client *c = evs[e].data.ptr;
            ready[e] = c;
            long r = ops[e].res;
            if (r <= 0) {
                if (r == -EAGAIN) continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->len += (size_t)r;
            if (!c->open) {
                unsigned char *hend = memmem(c->buf, c->len, "\r\n\r\n", 4);
                if (!hend) continue;
                if (memcmp(c->buf, "HTTP/1.1 101", 12)) {
                    fprintf(stderr, "no upgrade: %.*s\n", (int)c->len, c->buf);
                    wk->fail = 1;
                    return NULL;
                }
                size_t used = (size_t)(hend + 4 - c->buf);
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
                c->open = true;
                open++;
                send_msg(c);
            }
            /* whole frames (server frames are not masked) */
            size_t off = 0;
            int got = 0;
            for (;;) {
                if (c->len - off < 2) break;
                size_t pl = c->buf[off + 1] & 127, h = 2;
                if (pl == 126) {
                    if (c->len - off < 4) break;
                    pl = (size_t)c->buf[off + 2] << 8 | c->buf[off + 3];
                    h = 4;
                } else if (pl == 127) {
                    fprintf(stderr, "frame too big\n");
                    wk->fail = 1;
                    return NULL;
                }
                if (c->len - off < h + pl) break;
                off += h + pl;
                got++;
            }
            memmove(c->buf, c->buf + off, c->len - off);
            c->len -= off;
            count += got;
            for (int g = 0; g < got; g++) send_msg(c);
        }
        if (k > flushed) flush_sends(ready + flushed, k - flushed);
    }
    close(ep);
    for (int i = 0; i < n; i++) crm_uring_unregister(&cs[i].uf);
    wk->count = count;
    wk->open = open;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: ws_load PORT PATH CLIENTS SECONDS [PAYLOAD_BYTES]\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[3]);
    int gen_batch = getenv("WS_LOAD_BATCH") ? atoi(getenv("WS_LOAD_BATCH")) : CRM_URING_MAX;
    if (gen_batch < 1 || gen_batch > CRM_URING_MAX) gen_batch = CRM_URING_MAX;
    int nthreads = getenv("WS_LOAD_THREADS") ? atoi(getenv("WS_LOAD_THREADS")) : 2;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > n) nthreads = n > 0 ? n : 1;
    double seconds = atof(argv[4]);
    if (argc > 5) plen = (size_t)atoi(argv[5]);
    if (plen > sizeof payload) plen = sizeof payload;
    memset(payload, 'x', sizeof payload);
    static char req[512];
    req_len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                       argv[2], port);
    req_text = req;
    client *cs = calloc((size_t)n, sizeof *cs);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        client *c = &cs[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    double t0 = now();
    worker *wk = calloc((size_t)nthreads, sizeof *wk);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    for (int t = 0, first = 0; t < nthreads; t++) {
        int m = n / nthreads + (t < n % nthreads);
        wk[t] = (worker){.cs = cs + first, .n = m, .gen_batch = gen_batch, .end = t0 + seconds};
        first += m;
        pthread_create(&th[t], NULL, run, &wk[t]);
    }
    long count = 0;
    int open = 0, fail = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        count += wk[t].count;
        open += wk[t].open;
        fail |= wk[t].fail;
    }
    if (fail) return 1;
    double dt = now() - t0;
    printf("{\"count\": %ld, \"open\": %d, \"seconds\": %.3f, \"threads\": %d}\n", count, open, dt, nthreads);
    for (int i = 0; i < n; i++) close(cs[i].fd);
    free(cs);
    free(wk);
    free(th);
    return 0;
}
