/* tcpconn.c: see tcpconn.h. */
#include "tcpconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"
#include "httpclient.h"
#include "net/netutil.h"
#include "net/uring.h"

struct crm_tls {
    atomic_int refs;
    bool server, verify;
    gnutls_certificate_credentials_t cred;
    char *servername, *alpn;
};

struct crm_conn {
    crm_node *n;
    int fd;
    crm_conn_cbs cbs;
    void *arg;
    crm_watch *w;
    bool connecting, connected, ending, closed, paused, got_end;
    bool batched;           /* out holds writes for the end of the turn (send_batch) */
    bool read_batched;      /* to be read at the end of the turn (recv_batch) */
    unsigned char nbatched; /* io_uring batches it was in, up to REGISTER_AFTER */
    crm_uring_file uf;      /* fd registered in the loop thread's ring */
    strbuf out;
    size_t out_off;
    int close_err;
    const char *err_op;     /* the syscall close_err came from: "read", "write", "connect" */
    crm_timer *close_timer;
    char remote[64];
    int rport;
    /* TLS */
    crm_tls *tls;
    gnutls_session_t sess;
    bool handshaking, tls_inflight, tls_verify;
    char *tls_host, *err_text;
    crm_timer *pend_timer;  /* records GnuTLS holds decrypted: read them */
};

static void tls_release(crm_conn *c)
{
    if (c->sess) gnutls_deinit(c->sess);
    c->sess = NULL;
    crm_tls_unref(c->tls);
    c->tls = NULL;
    crm_timer_cancel(c->pend_timer);
    c->pend_timer = NULL;
    free(c->tls_host);
    free(c->err_text);
    c->tls_host = c->err_text = NULL;
}

static void close_fd(crm_conn *c)
{
    crm_uring_unregister(&c->uf); /* the ring's reference first, or close() would not close */
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static void update_events(crm_conn *c)
{
    if (!c->w || c->handshaking) return;
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
    tls_release(c);
    sb_free(&c->out);
    free(c);
}

static void unbatch(crm_conn *c);

static void shut(crm_conn *c, int err)
{
    if (c->closed) return;
    if (c->batched || c->read_batched) unbatch(c);
    c->closed = true;
    c->connected = false;
    c->close_err = err;
    crm_watch_cancel(c->w);
    c->w = NULL;
    crm_timer_cancel(c->pend_timer);
    c->pend_timer = NULL;
    close_fd(c);
    c->close_timer = crm_timer_start(c->n, 0, 0, fire_close, c);
}

static void tls_fail(crm_conn *c, const char *text)
{
    if (c->closed) return;
    free(c->err_text);
    /* String(err), as Node-RED logs it */
    if (!strncmp(text, "Error", 5)) c->err_text = strdup(text);
    else if (asprintf(&c->err_text, "Error: %s", text) < 0) c->err_text = NULL;
    c->handshaking = false;
    shut(c, EPROTO);
}

/* send(2) or gnutls_record_send: bytes sent, or -1 with errno (EAGAIN,
 * EINTR, or another that closes the connection). */
static ssize_t conn_send(crm_conn *c, const char *p, size_t len)
{
    if (!c->sess) return send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* a record that could not leave is sent again from GnuTLS's copy */
    ssize_t k = c->tls_inflight ? gnutls_record_send(c->sess, NULL, 0)
                                : gnutls_record_send(c->sess, p, len > 16384 ? 16384 : len);
    c->tls_inflight = k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED;
    if (k >= 0) return k;
    if (k == GNUTLS_E_AGAIN) errno = EAGAIN;
    else if (k == GNUTLS_E_INTERRUPTED) errno = EINTR;
    else {
        tls_fail(c, gnutls_strerror((int)k));
        errno = EPROTO;
    }
    return -1;
}

/* recv(2) or gnutls_record_recv: bytes, 0 at the peer's end, -1 with errno. */
static ssize_t conn_recv(crm_conn *c, unsigned char *buf, size_t len)
{
    if (!c->sess) return recv(c->fd, buf, len, MSG_DONTWAIT);
    ssize_t k = gnutls_record_recv(c->sess, buf, len);
    if (k >= 0) return k;
    switch (k) {
    case GNUTLS_E_AGAIN: errno = EAGAIN; return -1;
    case GNUTLS_E_INTERRUPTED:
    case GNUTLS_E_WARNING_ALERT_RECEIVED: errno = EINTR; return -1;
    case GNUTLS_E_PREMATURE_TERMINATION: return 0; /* closed without close_notify: Node ends too */
    default:
        tls_fail(c, gnutls_strerror((int)k));
        errno = EPROTO;
        return -1;
    }
}

static void flush(crm_conn *c)
{
    while (c->out.len > c->out_off) {
        ssize_t k = conn_send(c, c->out.data + c->out_off, c->out.len - c->out_off);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            c->err_op = "write";
            shut(c, errno);
            return;
        }
        c->out_off += (size_t)k;
    }
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
        if (c->ending) {
            if (c->sess) gnutls_bye(c->sess, GNUTLS_SHUT_WR); /* close_notify, as far as it goes now */
            shutdown(c->fd, SHUT_WR);
            if (c->got_end) {
                shut(c, 0);
                return;
            }
        }
    } else if (c->out_off > 1 << 20 && !c->tls_inflight) { /* drop what was sent */
        memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out_off = 0;
    }
    update_events(c);
}

static void read_some(crm_conn *c);

static void got_end(crm_conn *c)
{
    c->got_end = true;
    if (c->cbs.on_end) c->cbs.on_end(c, c->arg);
    if (c->closed) return;
    /* allowHalfOpen false: our side ends too once flushed */
    c->ending = true;
    if (c->out.len == c->out_off) shut(c, 0);
    else update_events(c);
}

static bool read_later(crm_conn *c);

static void read_pending(crm_node *n, void *arg)
{
    (void)n;
    crm_conn *c = arg;
    c->pend_timer = NULL;
    read_some(c);
}

static void read_some(crm_conn *c)
{
    unsigned char *buf = crm_loop_read_buffer();
    if (!buf) {
        c->err_op = "read";
        shut(c, ENOMEM);
        return;
    }
    for (int i = 0; i < 16 && !c->closed && !c->paused; i++) {
        ssize_t k = conn_recv(c, buf, CRM_LOOP_READ_BUFFER);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            c->err_op = "read";
            shut(c, errno);
            return;
        }
        if (k == 0) {
            got_end(c);
            return;
        }
        if (c->cbs.on_data) c->cbs.on_data(c, buf, (size_t)k, c->arg);
        if (!c->sess && (size_t)k < CRM_LOOP_READ_BUFFER) break;
    }
    /* records GnuTLS already decrypted do not wake the poll */
    if (c->sess && !c->closed && !c->paused && !c->pend_timer && gnutls_record_check_pending(c->sess))
        c->pend_timer = crm_timer_start(c->n, 0, 0, read_pending, c);
}

static char *verify_peer(crm_conn *c);

static void handshake_step(crm_conn *c)
{
    for (;;) {
        int r = gnutls_handshake(c->sess);
        if (r == GNUTLS_E_AGAIN) {
            crm_watch_events(c->w, gnutls_record_get_direction(c->sess) ? POLLOUT : POLLIN);
            return;
        }
        if (r == GNUTLS_E_INTERRUPTED || (r < 0 && !gnutls_error_is_fatal(r))) continue;
        if (r < 0) {
            /* the peer went away mid-handshake: Node's words for it */
            tls_fail(c, r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR
                            ? "Client network socket disconnected before secure TLS connection was established"
                            : gnutls_strerror(r));
            return;
        }
        break;
    }
    if (!c->tls->server && c->tls_verify && c->tls_host) {
        char *e = verify_peer(c);
        if (e) {
            tls_fail(c, e);
            free(e);
            return;
        }
    }
    c->handshaking = false;
    c->connected = true;
    update_events(c);
    if (c->cbs.on_connect) c->cbs.on_connect(c, c->arg);
    if (c->closed) return;
    flush(c);
    if (!c->closed) read_some(c); /* records that came with the handshake's last flight */
}

static void begin_handshake(crm_conn *c)
{
    c->handshaking = true;
    bool server = c->tls->server;
    if (gnutls_init(&c->sess, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
        c->sess = NULL;
        tls_fail(c, "out of memory");
        return;
    }
    gnutls_set_default_priority(c->sess);
    gnutls_credentials_set(c->sess, GNUTLS_CRD_CERTIFICATE, c->tls->cred);
    if (!server && c->tls_host) {
        unsigned char a[16];
        if (inet_pton(AF_INET, c->tls_host, a) != 1 && inet_pton(AF_INET6, c->tls_host, a) != 1)
            gnutls_server_name_set(c->sess, GNUTLS_NAME_DNS, c->tls_host, strlen(c->tls_host));
    }
    if (c->tls->alpn) {
        gnutls_datum_t p = {(unsigned char *)c->tls->alpn, (unsigned)strlen(c->tls->alpn)};
        gnutls_alpn_set_protocols(c->sess, &p, 1, 0);
    }
    gnutls_transport_set_int(c->sess, c->fd);
    handshake_step(c);
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
            c->err_op = "connect";
            shut(c, err);
            return;
        }
        if (!(revents & (POLLOUT | POLLERR | POLLHUP))) return;
        c->connecting = false;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) crm_addr_text((struct sockaddr *)&ss, c->remote, &c->rport);
        if (c->tls) {
            begin_handshake(c);
            return;
        }
        c->connected = true;
        update_events(c);
        if (c->cbs.on_connect) c->cbs.on_connect(c, c->arg);
        if (c->closed) return;
        flush(c);
        return;
    }
    if (c->handshaking) {
        handshake_step(c);
        return;
    }
    if (revents & POLLOUT) {
        flush(c);
        if (c->closed) return;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !read_later(c)) read_some(c);
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

/* Writes of a turn, sent together at its end --------------------------------------
 * A small write to a connection with nothing queued waits in its out buffer
 * until the loop's turn ends (crm_loop_at_turn_end); then the turn's writes
 * to every connection leave in one io_uring_enter (runtime/net/uring.c), not
 * one send(2) each: an echo server answering 60 clients in a turn makes one
 * system call for their answers instead of 60. Order on a connection stays:
 * later writes in the turn join the same buffer; an end, a destroy or a big
 * write sends what waits first. Without io_uring, each is sent as before. */
#define BATCH_BYTES 16384 /* bigger writes leave at once, from the caller's buffers */
#ifndef SEND_BATCH
#define SEND_BATCH CRM_URING_MAX
#endif

static __thread crm_conn *batch[CRM_URING_MAX], *rbatch[CRM_URING_MAX];
static __thread int nbatch, nrbatch;
static __thread bool batch_hooked, rbatch_hooked;

static void unbatch(crm_conn *c)
{
    for (int i = 0; i < nbatch; i++)
        if (batch[i] == c) batch[i] = NULL;
    for (int i = 0; i < nrbatch; i++)
        if (rbatch[i] == c) rbatch[i] = NULL;
    c->batched = c->read_batched = false;
}

/* The connection's descriptor as a batch's operation names it: registered
 * in the loop thread's ring (a fixed file) once the connection was in
 * REGISTER_AFTER batches, so that a short one (a tcp request's) costs no
 * system call more. */
#define REGISTER_AFTER 8

static int conn_fixed(crm_conn *c)
{
    if (c->nbatched < REGISTER_AFTER && ++c->nbatched == REGISTER_AFTER) crm_uring_register(c->fd, &c->uf);
    return crm_uring_fixed(&c->uf);
}

static void send_batch(void)
{
    crm_uring_op ops[CRM_URING_MAX];
    crm_conn *cs[CRM_URING_MAX];
    int n = 0;
    for (int i = 0; i < nbatch; i++) {
        crm_conn *c = batch[i];
        if (!c) continue;
        c->batched = false;
        if (c->closed || c->fd < 0 || c->out.len == c->out_off) continue;
        cs[n] = c;
        ops[n] = (crm_uring_op){c->fd, CRM_URING_SEND, c->out.data + c->out_off, c->out.len - c->out_off, 0, 0};
        n++;
    }
    nbatch = 0;
    if (n > 1)
        for (int i = 0; i < n; i++) ops[i].fixed = conn_fixed(cs[i]);
    if (n > 1 && crm_uring_run(ops, n)) {
        for (int i = 0; i < n; i++) {
            crm_conn *c = cs[i];
            if (ops[i].res >= 0) c->out_off += (size_t)ops[i].res;
            else if (ops[i].res != -EAGAIN && ops[i].res != -EINTR) {
                c->err_op = "write";
                shut(c, (int)-ops[i].res);
                continue;
            }
            flush(c); /* empties the buffer, or sends the rest / waits for POLLOUT */
        }
        return;
    }
    for (int i = 0; i < n; i++) flush(cs[i]);
}

static void turn_end(void *arg)
{
    (void)arg;
    batch_hooked = false;
    send_batch();
}

/* true when c's write (len bytes) is to wait for the end of the turn */
static bool batch_add(crm_conn *c)
{
    if (!batch_hooked) {
        if (!crm_loop_at_turn_end(turn_end, NULL)) return false;
        batch_hooked = true;
    }
    if (nbatch == SEND_BATCH) send_batch();
    batch[nbatch++] = c;
    c->batched = true;
    return true;
}

/* Reads the same way: a connection that polled readable is read at the end
 * of the turn with the others (one io_uring_enter for all their recv), its
 * data handed over in the order they polled; one alone, or what fills its
 * slot, is read with recv(2) (read_some). */
#define RECV_SLOT 4096

static bool readable_now(const crm_conn *c)
{
    return !c->closed && !c->paused && !c->connecting && !c->handshaking && !c->sess && c->fd >= 0;
}

static void got_end(crm_conn *c);

static void recv_batch(void *arg)
{
    (void)arg;
    rbatch_hooked = false;
    crm_uring_op ops[CRM_URING_MAX];
    crm_conn *cs[CRM_URING_MAX];
    int n = 0;
    for (int i = 0; i < nrbatch; i++) {
        crm_conn *c = rbatch[i];
        if (!c) continue;
        c->read_batched = false;
        if (readable_now(c)) cs[n++] = c;
    }
    nrbatch = 0;
    unsigned char *slots = n > 1 ? crm_uring_scratch((size_t)CRM_URING_MAX * RECV_SLOT) : NULL;
    if (slots) {
        for (int i = 0; i < n; i++)
            ops[i] = (crm_uring_op){cs[i]->fd, CRM_URING_RECV, slots + (size_t)i * RECV_SLOT, RECV_SLOT, 0, conn_fixed(cs[i])};
        if (!crm_uring_run(ops, n)) slots = NULL;
    }
    if (!slots) {
        for (int i = 0; i < n; i++) read_some(cs[i]);
        return;
    }
    /* a callback may end, destroy or pause any of them: each is taken
     * again through the batch list, which shut() clears */
    for (int i = 0; i < n; i++) {
        rbatch[i] = cs[i];
        cs[i]->read_batched = true;
    }
    nrbatch = n;
    for (int i = 0; i < n; i++) {
        crm_conn *c = rbatch[i];
        if (!c) continue;
        rbatch[i] = NULL;
        c->read_batched = false;
        long k = ops[i].res;
        if (k == -EAGAIN || k == -EINTR) continue; /* the poll says so again */
        if (k < 0) {
            c->err_op = "read";
            shut(c, (int)-k);
            continue;
        }
        if (k == 0) {
            got_end(c);
            continue;
        }
        if (c->cbs.on_data) c->cbs.on_data(c, slots + (size_t)i * RECV_SLOT, (size_t)k, c->arg);
        if (k == RECV_SLOT && !c->closed && !c->paused) read_some(c); /* there may be more */
    }
    nrbatch = 0;
}

/* true when c is to be read at the end of the turn */
static bool read_later(crm_conn *c)
{
    if (nrbatch == CRM_URING_MAX || !readable_now(c)) return false;
    if (!rbatch_hooked) {
        if (!crm_loop_at_turn_end(recv_batch, NULL)) return false;
        rbatch_hooked = true;
    }
    if (c->read_batched) return true;
    rbatch[nrbatch++] = c;
    c->read_batched = true;
    return true;
}

void crm_conn_write(crm_conn *c, const void *data, size_t len)
{
    struct iovec v = {(void *)data, len};
    crm_conn_writev(c, &v, 1);
}

void crm_conn_writev(crm_conn *c, const struct iovec *iov, int n)
{
    if (c->closed || c->ending) return;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    if (!total) return;
    int i = 0;
    size_t skip = 0; /* bytes of iov[i] already sent */
    bool direct = c->connected && !c->sess && !c->handshaking && c->out.len == c->out_off;
    if (c->batched || (direct && total <= BATCH_BYTES && batch_add(c))) {
        for (; i < n; i++) sb_putn(&c->out, iov[i].iov_base, iov[i].iov_len);
        return;
    }
    if (direct) {
        /* nothing queued: straight from the caller's buffers, one call */
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        ssize_t k;
        do k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        if (k < 0 && errno != EAGAIN) {
            c->err_op = "write";
            shut(c, errno);
            return;
        }
        if (k == (ssize_t)total) return;
        size_t sent = k > 0 ? (size_t)k : 0;
        while (i < n && sent >= iov[i].iov_len) sent -= iov[i++].iov_len;
        skip = sent;
    }
    for (; i < n; i++, skip = 0) sb_putn(&c->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
    if (c->connected) flush(c);
}

void crm_conn_end(crm_conn *c)
{
    if (c->closed || c->ending) return;
    c->ending = true;
    if (c->connected) flush(c);
}

void crm_conn_destroy(crm_conn *c)
{
    if (c->batched) { /* what was written this turn leaves first, as it would have at once */
        unbatch(c);
        flush(c);
    }
    shut(c, 0);
}

void crm_conn_free(crm_conn *c)
{
    if (!c) return;
    if (c->read_batched) unbatch(c);
    if (c->batched) { /* the same, best effort: one send, no callbacks */
        unbatch(c);
        if (c->fd >= 0 && c->out.len > c->out_off) {
            ssize_t k = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)k;
        }
    }
    crm_watch_cancel(c->w);
    crm_timer_cancel(c->close_timer);
    close_fd(c);
    tls_release(c);
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
    if (!paused && c->sess && !c->closed && !c->handshaking && !c->pend_timer && gnutls_record_check_pending(c->sess))
        c->pend_timer = crm_timer_start(c->n, 0, 0, read_pending, c);
}

bool crm_on_loop_of(const crm_node *n) { return n && n->loop && crm_loop_current() == n->loop; }

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

/* TLS ------------------------------------------------------------------------ */

static int load_file(const char *path, gnutls_datum_t *d, char **err)
{
    if (gnutls_load_file(path, d) >= 0) return 0;
    *err = crm_sys_error(errno ? errno : ENOENT, "open", path);
    return -1;
}

crm_tls *crm_tls_new(const crm_tls_options *o, bool server, char **err)
{
    *err = NULL;
    crm_tls *t = calloc(1, sizeof *t);
    if (!t || gnutls_certificate_allocate_credentials(&t->cred) < 0) {
        free(t);
        *err = strdup("out of memory");
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->server = server;
    t->verify = o->verify;
    t->servername = o->servername ? strdup(o->servername) : NULL;
    t->alpn = o->alpn ? strdup(o->alpn) : NULL;
    int r = 0;
    const char *what = "ca";
    gnutls_datum_t d = {0}, k = {0};
    /* ca replaces the system's roots, as Node's ca option does */
    if (o->ca_pem) {
        d.data = (unsigned char *)o->ca_pem, d.size = (unsigned)strlen(o->ca_pem);
        r = gnutls_certificate_set_x509_trust_mem(t->cred, &d, GNUTLS_X509_FMT_PEM);
        d.data = NULL;
    } else if (o->ca_file) {
        r = load_file(o->ca_file, &d, err);
        if (!r) r = gnutls_certificate_set_x509_trust_mem(t->cred, &d, GNUTLS_X509_FMT_PEM);
        gnutls_free(d.data);
        d.data = NULL;
    } else if (!server)
        gnutls_certificate_set_x509_system_trust(t->cred);
    if (r >= 0 && (o->cert_pem || o->cert_file) && (o->key_pem || o->key_file)) {
        what = "cert/key";
        bool own_c = false, own_k = false;
        if (o->cert_pem) d.data = (unsigned char *)o->cert_pem, d.size = (unsigned)strlen(o->cert_pem);
        else r = load_file(o->cert_file, &d, err), own_c = true;
        if (r >= 0) {
            if (o->key_pem) k.data = (unsigned char *)o->key_pem, k.size = (unsigned)strlen(o->key_pem);
            else r = load_file(o->key_file, &k, err), own_k = true;
        }
        if (r >= 0)
            r = gnutls_certificate_set_x509_key_mem2(t->cred, &d, &k, GNUTLS_X509_FMT_PEM, o->passphrase, 0);
        if (own_c) gnutls_free(d.data);
        if (own_k) gnutls_free(k.data);
    }
    if (r < 0) {
        if (!*err && asprintf(err, "Error: %s: %s", what, gnutls_strerror(r)) < 0) *err = NULL;
        crm_tls_unref(t);
        return NULL;
    }
    return t;
}

crm_tls *crm_tls_of_node(crm_node *n, const char *id, bool server, char **err)
{
    *err = NULL;
    if (!id || !*id) return NULL;
    crm_node *cn = crm_node_find(n, id);
    if (!cn || strcmp(crm_node_type_name(cn), "tls-config")) return NULL;
    const crm_tls_options *o = crm_node_data(cn);
    return o ? crm_tls_new(o, server, err) : NULL;
}

void crm_tls_unref(crm_tls *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
    gnutls_certificate_free_credentials(t->cred);
    free(t->servername);
    free(t->alpn);
    free(t);
}

bool crm_tls_verify(const crm_tls *t) { return t && t->verify; }

void crm_conn_start_tls(crm_conn *c, crm_tls *t, const char *host, bool verify)
{
    if (!t || c->tls || c->closed) return;
    atomic_fetch_add(&t->refs, 1);
    c->tls = t;
    c->tls_verify = verify;
    if (!t->server && host) c->tls_host = strdup(t->servername ? t->servername : *host ? host : "localhost");
    if (c->connected) { /* accepted: the handshake starts now */
        c->connected = false;
        begin_handshake(c);
    } /* else when the TCP connection is made */
}

const char *crm_conn_error(const crm_conn *c) { return c->err_text; }

const char *crm_conn_error_op(const crm_conn *c) { return c->err_op; }

static bool self_signed(gnutls_x509_crt_t crt) { return gnutls_x509_crt_check_issuer(crt, crt) != 0; }

/* Node's checkServerIdentity reason for a name the certificate is not for. */
static char *name_mismatch(gnutls_x509_crt_t crt, const char *host)
{
    strbuf alt = SB_INIT, ips = SB_INIT;
    for (unsigned i = 0;; i++) {
        char v[256];
        size_t vl = sizeof v - 1;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, v, &vl, NULL);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
        if (type < 0) continue;
        v[vl] = 0;
        if (type == GNUTLS_SAN_DNSNAME) sb_printf(&alt, "%sDNS:%s", alt.len ? ", " : "", v);
        else if (type == GNUTLS_SAN_IPADDRESS) {
            char ip[64] = "";
            inet_ntop(vl == 4 ? AF_INET : AF_INET6, v, ip, sizeof ip);
            sb_printf(&alt, "%sIP Address:%s", alt.len ? ", " : "", ip);
            sb_printf(&ips, "%s%s", ips.len ? ", " : "", ip);
        }
    }
    unsigned char a[16];
    char *r = NULL;
    int k;
    if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
        k = asprintf(&r, "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: %s is not in the cert's list: %s", host,
                     ips.len ? ips.data : "");
    else if (alt.len)
        k = asprintf(&r, "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: %s. is not in the cert's altnames: %s",
                     host, alt.data);
    else {
        char cn[256] = "";
        size_t cl = sizeof cn;
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cl);
        k = asprintf(&r, "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: %s. is not cert's CN: %s", host, cn);
    }
    if (k < 0) r = NULL;
    sb_free(&alt);
    sb_free(&ips);
    return r ? r : strdup("Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames");
}

/* The server's certificate checked as OpenSSL does for Node: NULL when it
 * is good, else Node's err.message (malloc'd). */
static char *verify_peer(crm_conn *c)
{
    unsigned n = 0, status = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(c->sess, &n);
    if (!chain || !n) return strdup("unable to get local issuer certificate");
    gnutls_x509_crt_t leaf = NULL, last = NULL;
    gnutls_x509_crt_init(&leaf);
    gnutls_x509_crt_import(leaf, &chain[0], GNUTLS_X509_FMT_DER);
    if (n > 1) {
        gnutls_x509_crt_init(&last);
        gnutls_x509_crt_import(last, &chain[n - 1], GNUTLS_X509_FMT_DER);
    }
    const char *text = NULL;
    if (gnutls_certificate_verify_peers2(c->sess, &status) < 0) status = GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNER_NOT_FOUND;
    char *r = NULL;
    if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) { /* no trusted root: what OpenSSL meets first */
        if (n == 1) text = self_signed(leaf) ? "self-signed certificate" : "unable to verify the first certificate";
        else text = self_signed(last) ? "self-signed certificate in certificate chain" : "unable to get local issuer certificate";
    } else if (status & GNUTLS_CERT_EXPIRED) text = "certificate has expired";
    else if (status & GNUTLS_CERT_NOT_ACTIVATED) text = "certificate is not yet valid";
    else if (status & GNUTLS_CERT_REVOKED) text = "certificate revoked";
    else if (status & GNUTLS_CERT_SIGNATURE_FAILURE) text = "certificate signature failure";
    else if (status & GNUTLS_CERT_INSECURE_ALGORITHM) text = "CA signature digest algorithm too weak";
    else if (status) text = "unable to verify the first certificate";
    else if (!gnutls_x509_crt_check_hostname(leaf, c->tls_host)) r = name_mismatch(leaf, c->tls_host);
    if (text) r = strdup(text);
    gnutls_x509_crt_deinit(leaf);
    if (last) gnutls_x509_crt_deinit(last);
    return r;
}
