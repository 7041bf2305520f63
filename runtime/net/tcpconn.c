/* tcpconn.c: see tcpconn.h. */
#include "tcpconn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/netutil.h"

struct crm_conn {
    crm_node *n;
    int fd;
    crm_conn_cbs cbs;
    void *arg;
    crm_watch *w;
    bool connecting, connected, ending, closed, paused, got_end;
    strbuf out;
    size_t out_off;
    int close_err;
    crm_timer *close_timer;
    char remote[64];
    int rport;
};

static void close_fd(crm_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static void update_events(crm_conn *c)
{
    if (!c->w) return;
    unsigned ev = 0;
    if (!c->paused && !c->connecting) ev |= POLLIN;
    if (c->connecting || c->out.len > c->out_off) ev |= POLLOUT;
    crm_watch_events(c->w, ev);
}

static void fire_close(crm_node *n, void *arg)
{
    (void)n;
    crm_conn *c = arg;
    c->close_timer = NULL;
    if (c->cbs.on_close) c->cbs.on_close(c, c->close_err, c->arg);
    sb_free(&c->out);
    free(c);
}

static void shut(crm_conn *c, int err)
{
    if (c->closed) return;
    c->closed = true;
    c->connected = false;
    c->close_err = err;
    crm_watch_cancel(c->w);
    c->w = NULL;
    close_fd(c);
    c->close_timer = crm_timer_start(c->n, 0, 0, fire_close, c);
}

static void flush(crm_conn *c)
{
    while (c->out.len > c->out_off) {
        ssize_t k = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            shut(c, errno);
            return;
        }
        c->out_off += (size_t)k;
    }
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
        if (c->ending) {
            shutdown(c->fd, SHUT_WR);
            if (c->got_end) {
                shut(c, 0);
                return;
            }
        }
    } else if (c->out_off > 1 << 20) { /* drop what was sent */
        memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out_off = 0;
    }
    update_events(c);
}

static void on_ready(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    crm_conn *c = arg;
    if (c->connecting) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            shut(c, err);
            return;
        }
        if (!(revents & (POLLOUT | POLLERR | POLLHUP))) return;
        c->connecting = false;
        c->connected = true;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) crm_addr_text((struct sockaddr *)&ss, c->remote, &c->rport);
        update_events(c);
        if (c->cbs.on_connect) c->cbs.on_connect(c, c->arg);
        if (c->closed) return;
        flush(c);
        return;
    }
    if (revents & POLLOUT) {
        flush(c);
        if (c->closed) return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        static __thread unsigned char buf[65536];
        for (int i = 0; i < 16 && !c->closed && !c->paused; i++) {
            ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) break;
                shut(c, errno);
                return;
            }
            if (k == 0) {
                c->got_end = true;
                if (c->cbs.on_end) c->cbs.on_end(c, c->arg);
                if (c->closed) return;
                /* allowHalfOpen false: our side ends too once flushed */
                c->ending = true;
                if (c->out.len == c->out_off) shut(c, 0);
                else update_events(c);
                return;
            }
            if (c->cbs.on_data) c->cbs.on_data(c, buf, (size_t)k, c->arg);
            if ((size_t)k < sizeof buf) break;
        }
    }
}

static crm_conn *conn_new(crm_node *n, int fd, const crm_conn_cbs *cbs, void *arg)
{
    crm_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n = n;
    c->fd = fd;
    c->cbs = *cbs;
    c->arg = arg;
    return c;
}

crm_conn *crm_conn_connect(crm_node *n, const char *host, int port, const crm_conn_cbs *cbs, void *arg)
{
    crm_conn *c = conn_new(n, -1, cbs, arg);
    if (!c) return NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (crm_resolve(host && *host ? host : "localhost", port, AF_UNSPEC, &ss, &len) < 0) {
        shut(c, EHOSTUNREACH);
        return c;
    }
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        shut(c, errno);
        return c;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    c->connecting = true;
    if (connect(c->fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        shut(c, errno);
        return c;
    }
    c->w = crm_watch_fd(n, c->fd, POLLOUT, on_ready, c);
    return c;
}

crm_conn *crm_conn_adopt(crm_node *n, int fd, const crm_conn_cbs *cbs, void *arg)
{
    crm_conn *c = conn_new(n, fd, cbs, arg);
    if (!c) return NULL;
    crm_set_nonblock(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    c->connected = true;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) crm_addr_text((struct sockaddr *)&ss, c->remote, &c->rport);
    c->w = crm_watch_fd(n, fd, POLLIN, on_ready, c);
    return c;
}

void crm_conn_write(crm_conn *c, const void *data, size_t len)
{
    if (c->closed || c->ending || !len) return;
    sb_putn(&c->out, data, len);
    if (c->connected) flush(c);
}

void crm_conn_end(crm_conn *c)
{
    if (c->closed || c->ending) return;
    c->ending = true;
    if (c->connected) flush(c);
}

void crm_conn_destroy(crm_conn *c) { shut(c, 0); }

void crm_conn_free(crm_conn *c)
{
    if (!c) return;
    crm_watch_cancel(c->w);
    crm_timer_cancel(c->close_timer);
    close_fd(c);
    sb_free(&c->out);
    free(c);
}

bool crm_conn_connected(const crm_conn *c) { return c->connected && !c->closed; }

const char *crm_conn_remote(const crm_conn *c, int *port)
{
    if (port) *port = c->rport;
    return c->remote;
}

size_t crm_conn_pending(const crm_conn *c) { return c->out.len - c->out_off; }

void crm_conn_set_arg(crm_conn *c, void *arg) { c->arg = arg; }

void crm_conn_pause(crm_conn *c, bool paused)
{
    c->paused = paused;
    update_events(c);
}

int crm_tcp_listen(int port, const char *host)
{
    int fd = -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (host && *host) {
        if (crm_resolve(host, port, AF_UNSPEC, &ss, &len) < 0) {
            errno = EADDRNOTAVAIL;
            return -1;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    } else {
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            int zero = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6, a->sin6_port = htons((uint16_t)port), a->sin6_addr = in6addr_any;
            len = sizeof *a;
        } else {
            fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET, a->sin_port = htons((uint16_t)port), a->sin_addr.s_addr = htonl(INADDR_ANY);
            len = sizeof *a;
        }
    }
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 511) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
