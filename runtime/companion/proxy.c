/* proxy.c: the routes hosted nodes add, served through Carmine's own port.
 *
 * Node modules add routes to Node-RED's node and admin express apps and
 * attach to its HTTP server (a dashboard's page and socket.io, an npm node's
 * endpoints). The companion serves those on a unix socket that Carmine
 * binds (in a private 0700 directory) and hands to it as fd 4, so requests
 * made while it (re)starts wait in the socket's backlog. It tells Carmine
 * which path prefixes its apps registered ({"t":"http"} lines,
 * companion_http.js); a request that no admin or node route of Carmine's
 * answers and whose path is under one of them is suspended by the HTTP
 * server (crm_httpd_set_proxy) and handed to the proxy thread here, which
 * sends it to the companion (Connection: close), reads the whole answer and
 * resumes the request with it. A WebSocket upgrade goes the same way until
 * the companion's 101: that head is given to the client as the upgrade
 * response, and once libmicrohttpd hands over the client's socket the
 * thread relays bytes both ways until either side closes. Over https the
 * client's socket is libmicrohttpd's end of a socketpair that it forwards
 * to and from the TLS connection: the upgrade handle is kept until the
 * relay ends (closing it at once closed the connection: no wss:// through
 * the proxy), and crm_httpd_upgrade_buffers gives it buffers, as
 * ws_server.c does.
 *
 * While the companion starts (until its "ready"), its prefixes are not
 * known yet: every request Carmine does not answer is held here (up to
 * HOLD_MS) instead of Carmine's 404, then goes to the companion when its
 * path is under a prefix, else gets that 404. Node-RED does not listen
 * before its flows run; a Dashboard's page asked for early is answered once
 * the companion is ready, not with a 404.
 *
 * One thread, one poll() over every exchange and relay, so no loop thread
 * and no HTTP server thread ever waits on the companion. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin_auth.h"
#include "companion_int.h"
#include "engine.h"
#include "httpd.h"
#include "net/ws_server.h"

#define RESPONSE_MAX (256u << 20) /* a bigger answer is refused (502) */
#define RELAY_BUF 65536
#define CONNECT_RETRY_MS 20
#define HOLD_MS 30000 /* a request held while the companion starts */
#define HOLD_POLL_MS 50

typedef struct xfer xfer;
struct xfer {
    xfer *next;
    bool relay;
    /* an exchange */
    crm_httpd *h;
    long long id;
    bool upgrade;
    bool held;            /* came while the companion started: no prefix known yet */
    char *method, *path;  /* a held request's, for Carmine's 404 */
    double held_until;
    int fd; /* to the companion; -1 before connecting */
    strbuf out;
    size_t out_off;
    strbuf in;
    double deadline, retry_at;
    /* a relay: cfd is the client's socket; buffers each way */
    int cfd;
    struct MHD_UpgradeResponseHandle *urh; /* https: released when the relay ends */
    crm_runtime *rt;
    char *c2b, *b2c;
    size_t c2b_len, c2b_off, b2c_len, b2c_off;
    bool c_eof, b_eof;
};

static struct {
    pthread_rwlock_t plock; /* the prefixes: read on HTTP server threads */
    char **prefix;
    size_t nprefix;
    bool holding; /* the companion starts: every path is held (under plock) */
    pthread_mutex_t mu; /* the rest */
    int lfd;            /* the listening socket handed to the companion */
    crm_runtime *rt;    /* its owner's runtime (settings.adminAuth) */
    char *dir, *sock;
    bool running, stop;
    pthread_t thread;
    int wake;
    xfer *incoming; /* handed to the thread */
} P = {.plock = PTHREAD_RWLOCK_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1, .wake = -1};

static double now_ms(void) { return crm_now_ms(); }

/* Prefixes ------------------------------------------------------------------------- */

static bool prefix_match(const char *path, bool holding_too)
{
    bool r = false;
    pthread_rwlock_rdlock(&P.plock);
    if (holding_too && P.holding) r = true;
    for (size_t i = 0; i < P.nprefix && !r; i++) {
        size_t l = strlen(P.prefix[i]);
        r = !strncmp(path, P.prefix[i], l) && (path[l] == 0 || path[l] == '/' || (l && P.prefix[i][l - 1] == '/'));
    }
    pthread_rwlock_unlock(&P.plock);
    return r;
}

static bool proxy_match(const char *path) { return prefix_match(path, true); }

static bool holding(void)
{
    pthread_rwlock_rdlock(&P.plock);
    bool h = P.holding;
    pthread_rwlock_unlock(&P.plock);
    return h;
}

static void set_holding(bool on)
{
    pthread_rwlock_wrlock(&P.plock);
    P.holding = on;
    pthread_rwlock_unlock(&P.plock);
}

void crm_companion_proxy_prefixes(const json_t *list)
{
    size_t n = 0, i;
    json_t *v;
    char **p = calloc(json_array_size(list) + 1, sizeof *p);
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        /* a whole root ("/") would take every path Carmine does not answer */
        if (s && s[0] == '/' && s[1]) p[n++] = strdup(s);
    }
    pthread_rwlock_wrlock(&P.plock);
    char **old = P.prefix;
    size_t nold = P.nprefix;
    P.prefix = p;
    P.nprefix = n;
    pthread_rwlock_unlock(&P.plock);
    for (i = 0; i < nold; i++) free(old[i]);
    free(old);
}

/* The thread ------------------------------------------------------------------------ */

static void xfer_free(xfer *x)
{
    if (x->fd >= 0) close(x->fd);
    if (x->relay && x->cfd >= 0) close(x->cfd);
    if (x->urh) crm_ws_socket_release(x->rt, x->urh);
    sb_free(&x->out);
    sb_free(&x->in);
    free(x->c2b);
    free(x->b2c);
    free(x->method);
    free(x->path);
    free(x);
}

static void answer_text(xfer *x, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r) MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    crm_httpd_proxy_answer(x->h, x->id, status, r);
}

static bool hop_by_hop(const char *name, size_t n, bool upgrade)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                                      "content-length", "te", "trailer", "upgrade", NULL};
    for (size_t i = 0; hop[i]; i++)
        if (strlen(hop[i]) == n && !strncasecmp(name, hop[i], n)) return !(upgrade && !strcmp(hop[i], "upgrade"));
    return false;
}

/* Decodes a chunked body in place; its length, or -1 when malformed. */
static long dechunk(char *b, size_t n)
{
    size_t r = 0, w = 0;
    for (;;) {
        char *end;
        if (r >= n) return -1;
        unsigned long sz = strtoul(b + r, &end, 16);
        char *eol = memmem(b + r, n - r, "\r\n", 2);
        if (!eol || end == b + r) return -1;
        r = (size_t)(eol - b) + 2;
        if (!sz) return (long)w;
        if (sz > n - r) return -1;
        memmove(b + w, b + r, sz);
        w += sz;
        r += sz + 2;
    }
}

typedef struct {
    struct MHD_Response *resp;
    xfer *x;
} upgrade_ctx;

static void hand_over(xfer *x);

static void on_upgraded(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra, size_t extra_len,
                        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)req_cls;
    xfer *x = cls;
    crm_httpd_upgrade_buffers(c, urh);
    /* our own descriptor; over plain http libmicrohttpd is done with the
     * upgrade at once, over https it forwards until the handle is released */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    x->cfd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (ci && ci->tls_session && x->cfd >= 0) {
        x->urh = urh;
        pthread_mutex_lock(&P.mu);
        x->rt = P.rt;
        pthread_mutex_unlock(&P.mu);
    } else {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    }
    x->relay = true;
    x->c2b = malloc(RELAY_BUF > extra_len ? RELAY_BUF : extra_len);
    x->b2c = malloc(RELAY_BUF > x->in.len ? RELAY_BUF : x->in.len);
    if (x->cfd < 0 || !x->c2b || !x->b2c) {
        xfer_free(x);
        return;
    }
    fcntl(x->cfd, F_SETFL, fcntl(x->cfd, F_GETFL) | O_NONBLOCK);
    memcpy(x->c2b, extra, extra_len);
    x->c2b_len = extra_len;
    /* what the companion sent after its 101 head */
    memcpy(x->b2c, x->in.data ? x->in.data : "", x->in.len);
    x->b2c_len = x->in.len;
    sb_free(&x->in);
    hand_over(x);
}

/* The companion's answer is complete (or its head, for an upgrade): true
 * when x is done with (answered), false to read on. */
static bool finish(xfer *x, bool eof)
{
    char *head_end = x->in.len ? memmem(x->in.data, x->in.len, "\r\n\r\n", 4) : NULL;
    if (!head_end) {
        if (!eof) return false;
        answer_text(x, 502, "Bad Gateway");
        return true;
    }
    unsigned status = 0;
    if (sscanf(x->in.data, "HTTP/1.%*1[01] %3u", &status) != 1 || status < 100) {
        answer_text(x, 502, "Bad Gateway");
        return true;
    }
    bool upgraded = x->upgrade && status == 101;
    if (!eof && !upgraded) return false;
    size_t hlen = (size_t)(head_end - x->in.data) + 4;
    char *line = memmem(x->in.data, hlen, "\r\n", 2) + 2;
    bool chunked = false;
    long clen = -1;
    /* headers: name\0value\0 in a block, added after the response exists */
    strbuf hs = SB_INIT;
    size_t nh = 0;
    while (line < head_end) {
        char *eol = memmem(line, (size_t)(head_end + 2 - line), "\r\n", 2);
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nl = (size_t)(colon - line);
            char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            size_t vl = (size_t)(eol - v);
            if (nl == 17 && !strncasecmp(line, "transfer-encoding", 17) && vl >= 7 && !strncasecmp(v, "chunked", 7))
                chunked = true;
            if (nl == 14 && !strncasecmp(line, "content-length", 14)) clen = strtol(v, NULL, 10);
            if (!hop_by_hop(line, nl, upgraded)) {
                sb_putn(&hs, line, nl);
                sb_putc(&hs, 0);
                sb_putn(&hs, v, vl);
                sb_putc(&hs, 0);
                nh++;
            }
        }
        line = eol + 2;
    }
    struct MHD_Response *resp;
    if (upgraded) {
        /* the rest of what was read belongs to the relay */
        size_t rest = x->in.len - hlen;
        memmove(x->in.data, x->in.data + hlen, rest);
        x->in.len = rest;
        resp = MHD_create_response_for_upgrade(on_upgraded, x);
    } else {
        char *body = x->in.data + hlen;
        size_t blen = x->in.len - hlen;
        if (chunked) {
            long l = dechunk(body, blen);
            if (l < 0) {
                sb_free(&hs);
                answer_text(x, 502, "Bad Gateway");
                return true;
            }
            blen = (size_t)l;
        } else if (clen >= 0 && (size_t)clen < blen) {
            blen = (size_t)clen;
        }
        resp = MHD_create_response_from_buffer(blen, body, MHD_RESPMEM_MUST_COPY);
    }
    const char *p = hs.data;
    for (size_t i = 0; resp && i < nh; i++) {
        const char *v = p + strlen(p) + 1;
        MHD_add_response_header(resp, p, v);
        p = v + strlen(v) + 1;
    }
    sb_free(&hs);
    if (upgraded) {
        /* x now belongs to on_upgraded (the companion's socket with it) */
        if (!resp) {
            answer_text(x, 502, "Bad Gateway");
            return true;
        }
        /* a client gone meanwhile: resp is destroyed unused, x is ours again */
        return crm_httpd_proxy_answer(x->h, x->id, 101, resp) != 0;
    }
    crm_httpd_proxy_answer(x->h, x->id, status, resp);
    return true;
}

static int connect_companion(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", P.sock);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

enum { KEEP, DONE, PARKED };

/* An exchange's turn: connect, write, read. */
static int step_exchange(xfer *x, short re)
{
    if (x->held) {
        if (holding() && now_ms() < x->held_until) {
            x->retry_at = now_ms() + HOLD_POLL_MS;
            return KEEP;
        }
        x->held = false;
        if (!prefix_match(x->path, false)) { /* not the companion's: Carmine's 404 */
            struct MHD_Response *r = crm_httpd_not_found(x->method, x->path);
            if (r) crm_httpd_proxy_answer(x->h, x->id, 404, r);
            else answer_text(x, 404, "Not Found");
            return DONE;
        }
    }
    if (x->fd < 0) {
        if (now_ms() < x->retry_at) return KEEP;
        x->fd = connect_companion();
        if (x->fd < 0) {
            if (errno == EAGAIN && now_ms() < x->deadline) { /* the backlog is full: try again */
                x->retry_at = now_ms() + CONNECT_RETRY_MS;
                return KEEP;
            }
            answer_text(x, 502, "Bad Gateway");
            return DONE;
        }
        re = POLLOUT;
    }
    if (re & POLLOUT) {
        while (x->out_off < x->out.len) {
            ssize_t w = send(x->fd, x->out.data + x->out_off, x->out.len - x->out_off, MSG_NOSIGNAL);
            if (w > 0) x->out_off += (size_t)w;
            else if (w < 0 && errno == EINTR) continue;
            else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            else {
                answer_text(x, 502, "Bad Gateway");
                return DONE;
            }
        }
    }
    if (re & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        for (;;) {
            ssize_t r = recv(x->fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (r <= 0) return finish(x, true) ? DONE : PARKED;
            sb_putn(&x->in, buf, (size_t)r);
            if (x->in.len > RESPONSE_MAX) {
                answer_text(x, 502, "Bad Gateway");
                return DONE;
            }
            if (x->upgrade && memmem(x->in.data, x->in.len, "\r\n\r\n", 4)) {
                unsigned st = 0;
                if (sscanf(x->in.data, "HTTP/1.%*1[01] %3u", &st) == 1 && st == 101)
                    return finish(x, false) ? DONE : PARKED;
                x->upgrade = false; /* refused: its answer is read whole, as any other */
            }
        }
    }
    if (now_ms() > x->deadline) {
        answer_text(x, 504, "Gateway Timeout");
        return DONE;
    }
    return KEEP;
}

/* One direction of a relay: writes what waits, reads when its buffer is
 * empty. false on an error. */
static bool relay_dir(int from, int to, char *buf, size_t *len, size_t *off, bool *eof, short rev_from, short rev_to)
{
    if ((rev_to & POLLOUT) && *off < *len) {
        ssize_t w = send(to, buf + *off, *len - *off, MSG_NOSIGNAL);
        if (w > 0) *off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        if (*off == *len) *off = *len = 0;
    }
    if ((rev_from & (POLLIN | POLLHUP | POLLERR)) && !*len && !*eof) {
        ssize_t r = recv(from, buf, RELAY_BUF, 0);
        if (r > 0) *len = (size_t)r;
        else if (r == 0) *eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        if (*len) { /* at once: usually the other side takes it all */
            ssize_t w = send(to, buf, *len, MSG_NOSIGNAL);
            if (w > 0) *off = (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
            if (*off == *len) *off = *len = 0;
        }
    }
    return true;
}

static void *proxy_main(void *arg)
{
    (void)arg;
    xfer *list = NULL;
    size_t cap = 0;
    struct pollfd *pf = NULL;
    for (;;) {
        pthread_mutex_lock(&P.mu);
        bool stop = P.stop;
        while (P.incoming) {
            xfer *x = P.incoming;
            P.incoming = x->next;
            x->next = list;
            list = x;
        }
        pthread_mutex_unlock(&P.mu);
        if (stop) break;
        size_t n = 0;
        for (xfer *x = list; x; x = x->next) n += x->relay ? 2 : 1;
        if (n + 1 > cap) {
            cap = 2 * (n + 1);
            pf = realloc(pf, cap * sizeof *pf);
        }
        pf[0] = (struct pollfd){.fd = P.wake, .events = POLLIN};
        size_t k = 1;
        double wait = 1000, now = now_ms();
        for (xfer *x = list; x; x = x->next) {
            if (x->relay) {
                pf[k] = (struct pollfd){.fd = x->cfd,
                                        .events = (short)((!x->c2b_len && !x->c_eof ? POLLIN : 0) |
                                                          (x->b2c_off < x->b2c_len ? POLLOUT : 0))};
                k++;
                pf[k] = (struct pollfd){.fd = x->fd,
                                        .events = (short)((!x->b2c_len && !x->b_eof ? POLLIN : 0) |
                                                          (x->c2b_off < x->c2b_len ? POLLOUT : 0))};
                k++;
            } else {
                pf[k] = (struct pollfd){.fd = x->fd,
                                        .events = (short)(POLLIN | (x->out_off < x->out.len ? POLLOUT : 0))};
                k++;
                double until = (x->fd < 0 ? x->retry_at : x->deadline) - now;
                if (until < wait) wait = until < 0 ? 0 : until;
            }
        }
        poll(pf, k, wait > 0 ? (int)wait + 1 : 0); /* 0: an exchange to connect now */
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            if (read(P.wake, &v, sizeof v) < 0) { /* nothing to do: a wake-up lost is harmless */
            }
        }
        /* one pass over the list, stepping each entry with its events */
        xfer **link = &list;
        size_t i = 1;
        while (*link) {
            xfer *x = *link;
            /* read now: a parked upgrade's x->next is on_upgraded's to write
             * (another thread) as soon as its answer is handed over */
            xfer *next = x->next;
            int st = KEEP;
            if (x->relay) {
                short rc = pf[i].fd == x->cfd ? pf[i].revents : 0, rb = pf[i + 1].fd == x->fd ? pf[i + 1].revents : 0;
                i += 2;
                bool ok = relay_dir(x->cfd, x->fd, x->c2b, &x->c2b_len, &x->c2b_off, &x->c_eof, rc, rb) &&
                          relay_dir(x->fd, x->cfd, x->b2c, &x->b2c_len, &x->b2c_off, &x->b_eof, rb, rc);
                /* a WebSocket needs no half-closed connection: one side's end (its
                 * last bytes passed on) ends both */
                if (!ok || (x->c_eof && !x->c2b_len) || (x->b_eof && !x->b2c_len) || ((rc | rb) & POLLERR)) st = DONE;
            } else {
                short re = pf[i].fd == x->fd && x->fd >= 0 ? pf[i].revents : 0;
                i++;
                st = step_exchange(x, re);
            }
            if (st == KEEP) {
                link = &x->next;
                continue;
            }
            *link = next;
            if (st == DONE) xfer_free(x);
            /* PARKED: on_upgraded owns it now */
        }
    }
    /* stopping: what is left is answered or closed */
    while (list) {
        xfer *x = list;
        list = x->next;
        if (!x->relay) answer_text(x, 503, "Service Unavailable");
        xfer_free(x);
    }
    free(pf);
    return NULL;
}

static void hand_over(xfer *x)
{
    pthread_mutex_lock(&P.mu);
    bool ok = P.running && !P.stop;
    if (ok) {
        x->next = P.incoming;
        P.incoming = x;
        uint64_t one = 1;
        if (write(P.wake, &one, sizeof one) < 0) { /* the counter is full: the thread is awake anyway */
        }
    }
    pthread_mutex_unlock(&P.mu);
    if (!ok) {
        if (!x->relay) answer_text(x, 503, "Service Unavailable");
        xfer_free(x);
    }
}

/* From the HTTP server: a request under a companion prefix. */
static void proxy_request(crm_httpd_proxy_req *q)
{
    xfer *x = calloc(1, sizeof *x);
    x->h = q->h;
    x->id = q->id;
    x->fd = x->cfd = -1;
    x->upgrade = q->upgrade;
    if (holding()) {
        x->path = strndup(q->uri, strcspn(q->uri, "?"));
        x->method = strdup(q->method);
        /* a path under a prefix reported already goes on (to the backlog) */
        x->held = x->path && x->method && !prefix_match(x->path, false);
        x->held_until = now_ms() + HOLD_MS;
    }
    x->deadline = now_ms() + 130000; /* past the server's own httpRequestTimeout (120 s by default) */
    strbuf *o = &x->out;
    sb_printf(o, "%s %s HTTP/1.1\r\n", q->method, q->uri);
    const char *p = q->headers, *auth = NULL;
    for (size_t i = 0; i < q->nheaders; i++) {
        const char *v = p + strlen(p) + 1;
        if (!hop_by_hop(p, strlen(p), q->upgrade) && strcmp(p, "x-forwarded-for") && strcmp(p, "x-carmine-user"))
            sb_printf(o, "%s: %s\r\n", p, v);
        if (!strcmp(p, "authorization") && !auth) auth = v;
        p = v + strlen(v) + 1;
    }
    /* adminAuth: whose token this is, for the companion's needsPermission */
    pthread_mutex_lock(&P.mu);
    crm_admin_auth *aa = P.rt ? P.rt->admin_auth : NULL;
    pthread_mutex_unlock(&P.mu);
    if (aa) {
        json_t *hj = json_object();
        if (auth) json_object_set_new(hj, "authorization", json_string(auth));
        json_t *user = crm_admin_auth_user(aa, hj);
        char *ut = user ? json_dumps(user, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        sb_printf(o, "X-Carmine-User: %s\r\n", ut ? ut : "null");
        free(ut);
        json_decref(user);
        json_decref(hj);
    }
    sb_printf(o, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n", q->ip, q->tls ? "https" : "http");
    if (q->upgrade) sb_puts(o, "Connection: Upgrade\r\n");
    else sb_puts(o, "Connection: close\r\n");
    if (q->len || (strcmp(q->method, "GET") && strcmp(q->method, "HEAD")))
        sb_printf(o, "Content-Length: %zu\r\n", q->len);
    sb_puts(o, "\r\n");
    sb_putn(o, q->body, q->len);
    free(q);
    hand_over(x);
}

/* Life cycle ------------------------------------------------------------------------- */

int crm_companion_proxy_listen_fd(struct crm_runtime *rt)
{
    pthread_mutex_lock(&P.mu);
    P.rt = rt;
    if (P.lfd < 0) {
        const char *tmp = getenv("TMPDIR");
        char *dir;
        if (asprintf(&dir, "%s/carmine-companion-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) dir = NULL;
        if (dir && mkdtemp(dir)) {
            char *path;
            if (asprintf(&path, "%s/http.sock", dir) < 0) path = NULL;
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            int fd = path && strlen(path) < sizeof a.sun_path ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
            if (fd >= 0) {
                snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
                if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 512)) {
                    close(fd);
                    fd = -1;
                }
            }
            if (fd >= 0) {
                P.lfd = fd;
                P.dir = dir;
                P.sock = path;
                dir = NULL;
            } else {
                if (path) unlink(path);
                rmdir(dir);
                free(path);
            }
        }
        free(dir);
        if (P.lfd < 0) crm_log(rt, CRM_LOG_WARN, NULL, "[companion] no socket for its HTTP routes: %s", strerror(errno));
    }
    if (P.lfd >= 0 && !P.running) {
        P.stop = false;
        P.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (P.wake >= 0 && !pthread_create(&P.thread, NULL, proxy_main, NULL)) {
            P.running = true;
            set_holding(true); /* until crm_companion_proxy_ready */
            crm_httpd_set_proxy(proxy_match, proxy_request);
        } else if (P.wake >= 0) {
            close(P.wake);
            P.wake = -1;
        }
    }
    int fd = P.lfd;
    pthread_mutex_unlock(&P.mu);
    return fd;
}

void crm_companion_proxy_ready(void)
{
    set_holding(false);
    pthread_mutex_lock(&P.mu);
    if (P.running) {
        uint64_t one = 1;
        if (write(P.wake, &one, sizeof one) < 0) { /* see hand_over */
        }
    }
    pthread_mutex_unlock(&P.mu);
}

void crm_companion_proxy_stop(void)
{
    crm_companion_proxy_prefixes(NULL);
    set_holding(false);
    pthread_mutex_lock(&P.mu);
    bool running = P.running;
    if (running) {
        P.stop = true;
        uint64_t one = 1;
        if (write(P.wake, &one, sizeof one) < 0) { /* see hand_over */
        }
    }
    pthread_mutex_unlock(&P.mu);
    if (running) pthread_join(P.thread, NULL);
    pthread_mutex_lock(&P.mu);
    P.running = false;
    P.rt = NULL;
    while (P.incoming) { /* handed over after the thread's last look */
        xfer *x = P.incoming;
        P.incoming = x->next;
        if (!x->relay) answer_text(x, 503, "Service Unavailable");
        xfer_free(x);
    }
    if (P.wake >= 0) close(P.wake);
    P.wake = -1;
    if (P.lfd >= 0) close(P.lfd);
    P.lfd = -1;
    if (P.sock) unlink(P.sock);
    if (P.dir) rmdir(P.dir);
    free(P.sock);
    free(P.dir);
    P.sock = P.dir = NULL;
    pthread_mutex_unlock(&P.mu);
}
