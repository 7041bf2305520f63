/* tcp_in.c: Node-RED's `tcp in` node (core/network/31-tcpin.js): listens
 * on a port (server) or connects to host:port (client) and sends what
 * arrives: each chunk (stream), each delimited part of UTF-8 text, or
 * everything a connection sent once it ends (single); as a Buffer, UTF-8 or
 * base64 text. Each message carries _session {type: "tcp", id} naming its
 * connection, registered in the process-wide pool (runtime/net/tcp_pool.c)
 * so a `tcp out` in reply mode can answer on it. A client reconnects after
 * settings.socketReconnectTime (10 s), or after 20 ms when the server ended
 * a connection that had sent something. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "carmine.h"
#include "net/netutil.h"
#include "net/tcp_pool.h"
#include "net/tcpconn.h"

typedef struct tconn {
    struct tconn *next;
    crm_node *n;
    crm_conn *c;
    char id[17];
    strbuf buf;          /* single mode bytes, or text after the last delimiter */
    char ip[64];
    int port;
    bool got_data, counted;
} tconn;

typedef struct {
    bool server, stream, trim;
    char datatype;       /* 'b' buffer, 'u' utf8, '6' base64 */
    char *newline, *topic, *host;
    int port;
    double reconnect_ms, timeout_ms;
    int lfd;
    crm_watch *lw;
    tconn *conns;
    int count;
    bool closing, end_fast;
    crm_timer *retry;
    char *tls_id;
    crm_tls *tls;
} tcpin_state;

static void setup_client(crm_node *n, void *arg);

static json_t *session_of(const char *id)
{
    return json_pack("{s:s,s:s}", "type", "tcp", "id", id);
}

static void count_status(crm_node *n, int count)
{
    char t[48];
    snprintf(t, sizeof t, "%d connection%s", count, count == 1 ? "" : "s");
    crm_node_status(n, NULL, NULL, t);
}

static json_t *text_of_chunk(tcpin_state *s, const unsigned char *d, size_t len)
{
    if (s->datatype == '6') {
        strbuf b = SB_INIT;
        crm_base64_encode(d, len, &b);
        json_t *r = json_stringn(b.data, b.len);
        sb_free(&b);
        return r;
    }
    return crm_text_of(d, len);
}

static json_t *new_msg(tcpin_state *s, tconn *t, json_t *payload, bool with_addr)
{
    json_t *m = json_object();
    if (s->topic) json_object_set_new(m, "topic", json_string(s->topic));
    json_object_set_new(m, "payload", payload);
    if (with_addr && s->server) {
        json_object_set_new(m, "ip", json_string(t->ip));
        json_object_set_new(m, "port", json_real(t->port));
    }
    json_object_set_new(m, "_session", session_of(t->id));
    return m;
}

static void on_data(crm_conn *c, const unsigned char *d, size_t len, void *arg)
{
    (void)c;
    tconn *t = arg;
    crm_node *n = t->n;
    tcpin_state *s = crm_node_data(n);
    if (s->stream) {
        if (s->datatype != 'b' && *s->newline) {
            json_t *txt = text_of_chunk(s, d, len);
            sb_putn(&t->buf, json_string_value(txt), json_string_length(txt));
            json_decref(txt);
            size_t nl = strlen(s->newline);
            char *p = t->buf.data, *end = t->buf.data + t->buf.len, *hit;
            while ((hit = memmem(p, (size_t)(end - p), s->newline, nl))) {
                json_t *pl;
                if (s->trim) {
                    strbuf x = SB_INIT;
                    sb_putn(&x, p, (size_t)(hit - p));
                    sb_puts(&x, s->newline);
                    pl = json_stringn(x.data, x.len);
                    sb_free(&x);
                } else pl = json_stringn(p, (size_t)(hit - p));
                crm_node_send(n, 0, new_msg(s, t, pl, true));
                p = hit + nl;
            }
            size_t left = (size_t)(end - p);
            memmove(t->buf.data, p, left);
            t->buf.len = left;
            t->buf.data[left] = 0;
        } else {
            json_t *pl = s->datatype == 'b' ? crm_buf_new(d, len) : text_of_chunk(s, d, len);
            crm_node_send(n, 0, new_msg(s, t, pl, true));
        }
    } else {
        if (s->datatype == 'b') sb_putn(&t->buf, (const char *)d, len);
        else {
            json_t *txt = text_of_chunk(s, d, len);
            sb_putn(&t->buf, json_string_value(txt), json_string_length(txt));
            json_decref(txt);
        }
        t->got_data = true;
    }
}

static void on_end(crm_conn *c, void *arg)
{
    (void)c;
    tconn *t = arg;
    crm_node *n = t->n;
    tcpin_state *s = crm_node_data(n);
    bool flush = !s->stream || (s->datatype == 'u' && *s->newline) || (s->server && s->datatype == '6');
    if (!flush || !t->buf.len) return;
    json_t *pl = s->datatype == 'b' ? crm_buf_new(t->buf.data, t->buf.len) : json_stringn(t->buf.data, t->buf.len);
    json_t *m = json_object();
    if (s->topic) json_object_set_new(m, "topic", json_string(s->topic));
    json_object_set_new(m, "payload", pl);
    if (s->server && t->got_data) { /* single mode remembers the peer */
        json_object_set_new(m, "ip", json_string(t->ip));
        json_object_set_new(m, "port", json_real(t->port));
    }
    json_object_set_new(m, "_session", session_of(t->id));
    if (!s->server) s->end_fast = true;
    crm_node_send(n, 0, m);
    t->buf.len = 0;
}

static void tconn_free(tcpin_state *s, tconn *t, bool now)
{
    for (tconn **pp = &s->conns; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    crm_tcp_pool_remove(t->id);
    if (now) crm_conn_free(t->c);
    sb_free(&t->buf);
    free(t);
}

static void on_close(crm_conn *c, int err, void *arg)
{
    tconn *t = arg;
    crm_node *n = t->n;
    tcpin_state *s = crm_node_data(n);
    if (s->server) {
        /* socket.on('error', err => node.log(err)): String(err) at info */
        if (err && crm_conn_error(c)) crm_node_log(n, CRM_LOG_INFO, "%s", crm_conn_error(c));
        else if (err && crm_conn_error_op(c))
            crm_node_log(n, CRM_LOG_INFO, "Error: %s %s", crm_conn_error_op(c), crm_errno_name(err));
        if (t->counted) {
            s->count--;
            count_status(n, s->count);
        }
        tconn_free(s, t, false);
        return;
    }
    if (err && crm_conn_error(c)) crm_node_log(n, CRM_LOG_INFO, "%s", crm_conn_error(c));
    else if (err && crm_conn_error_op(c) && strcmp(crm_conn_error_op(c), "connect"))
        crm_node_log(n, CRM_LOG_INFO, "Error: %s %s", crm_conn_error_op(c), crm_errno_name(err));
    else if (err) crm_node_log(n, CRM_LOG_INFO, "Error: connect %s %s:%d", crm_errno_name(err), s->host, s->port);
    crm_node_status(n, "red", "ring", "common.status.disconnected");
    tconn_free(s, t, false);
    if (s->closing) return;
    if (s->end_fast) {
        s->end_fast = false;
        s->retry = crm_timer_start(n, 20, 0, setup_client, NULL);
    } else {
        crm_node_log(n, CRM_LOG_INFO, "connection lost to %s:%d", s->host, s->port);
        s->retry = crm_timer_start(n, s->reconnect_ms, 0, setup_client, NULL);
    }
}

static void count_in(tcpin_state *s, tconn *t)
{
    t->counted = true;
    s->count++;
    count_status(t->n, s->count);
}

static void on_connect(crm_conn *c, void *arg)
{
    (void)c;
    tconn *t = arg;
    tcpin_state *s = crm_node_data(t->n);
    if (s->server) { /* a TLS client, once its handshake is done */
        count_in(s, t);
        return;
    }
    crm_node_log(t->n, CRM_LOG_INFO, "connected to %s:%d", s->host, s->port);
    crm_node_status(t->n, "green", "dot", "common.status.connected");
}

/* A reply from a tcp out node: write to (or reset) our connection. */
static void on_job(crm_node *n, void *arg)
{
    crm_tcp_job *j = arg;
    tcpin_state *s = crm_node_data(n);
    for (tconn *t = s->conns; t; t = t->next)
        if (!strcmp(t->id, j->id)) {
            if (j->reset) crm_conn_destroy(t->c);
            else crm_conn_write(t->c, j->data, j->len);
            break;
        }
    free(j);
}

static const crm_conn_cbs cbs = {on_connect, on_data, on_end, on_close};

static tconn *tconn_new(crm_node *n, tcpin_state *s)
{
    tconn *t = calloc(1, sizeof *t);
    t->n = n;
    crm_make_id(t->id);
    t->next = s->conns;
    s->conns = t;
    crm_tcp_pool_add(t->id, n, on_job);
    return t;
}

static void setup_client(crm_node *n, void *arg)
{
    (void)arg;
    tcpin_state *s = crm_node_data(n);
    s->retry = NULL;
    crm_node_log(n, CRM_LOG_INFO, "connecting to %s:%d", s->host, s->port);
    crm_node_status(n, "grey", "dot", "common.status.connecting");
    tconn *t = tconn_new(n, s);
    t->c = crm_conn_connect(n, s->host, s->port, &cbs, t);
    if (s->tls) crm_conn_start_tls(t->c, s->tls, s->host, crm_tls_verify(s->tls));
}

static void on_accept(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)revents, (void)arg;
    tcpin_state *s = crm_node_data(n);
    for (int i = 0; i < 64; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        tconn *t = tconn_new(n, s);
        t->c = crm_conn_adopt(n, cfd, &cbs, t);
        const char *ip = crm_conn_remote(t->c, &t->port);
        snprintf(t->ip, sizeof t->ip, "%s", ip);
        if (s->tls) crm_conn_start_tls(t->c, s->tls, NULL, false); /* counted once secure */
        else count_in(s, t);
    }
}

static char *unescape_newline(const char *nl, bool all)
{
    strbuf b = SB_INIT;
    sb_puts(&b, "");
    bool done_n = false, done_r = false, done_t = false;
    for (const char *p = nl; *p; p++) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 'r' || p[1] == 't')) {
            bool *d = p[1] == 'n' ? &done_n : p[1] == 'r' ? &done_r : &done_t;
            if (all || !*d) {
                *d = true;
                sb_putc(&b, p[1] == 'n' ? '\n' : p[1] == 'r' ? '\r' : '\t');
                p++;
                continue;
            }
        }
        sb_putc(&b, *p);
    }
    return sb_take(&b);
}

static int tcpin_create(crm_node *n, const json_t *cfg)
{
    tcpin_state *s = calloc(1, sizeof *s);
    s->lfd = -1;
    s->host = strdup(crm_cfg_str(cfg, "host", ""));
    s->port = (int)crm_cfg_num(cfg, "port", 0);
    const char *t = crm_cfg_str(cfg, "topic", NULL);
    s->topic = t ? strdup(t) : NULL;
    const char *dm = crm_cfg_str(cfg, "datamode", "");
    s->stream = !*dm || !strcmp(dm, "stream");
    const char *dt = crm_cfg_str(cfg, "datatype", "buffer");
    s->datatype = !strcmp(dt, "utf8") ? 'u' : !strcmp(dt, "base64") ? '6' : 'b';
    s->newline = unescape_newline(crm_cfg_str(cfg, "newline", ""), true);
    s->trim = crm_cfg_bool(cfg, "trim", false);
    const char *tls = crm_cfg_str(cfg, "tls", "");
    s->tls_id = *tls ? strdup(tls) : NULL;
    json_t *sv = json_object_get(cfg, "server");
    s->server = json_is_boolean(sv) ? json_is_true(sv) : (json_is_string(sv) && !strcmp(json_string_value(sv), "server"));
    const json_t *st = crm_node_settings(n);
    s->reconnect_ms = crm_cfg_num(st, "socketReconnectTime", 10000);
    if (!(s->reconnect_ms > 0)) s->reconnect_ms = 10000;
    crm_node_set_data(n, s);
    return 0;
}

static void tcpin_start(crm_node *n)
{
    tcpin_state *s = crm_node_data(n);
    char *terr = NULL;
    s->tls = crm_tls_of_node(n, s->tls_id, s->server, &terr);
    if (terr) {
        crm_node_error(n, NULL, "%s", terr);
        free(terr);
        return;
    }
    if (!s->server) {
        /* on the loop's first turn, once every node has started: Node's
         * connect resolves the name first, so a server on the same tab
         * is listening by then */
        s->retry = crm_timer_start(n, 0, 0, setup_client, NULL);
        return;
    }
    s->lfd = crm_tcp_listen(s->port, NULL);
    if (s->lfd < 0) {
        int e = errno;
        char *err = crm_sys_error(e, "listen", NULL);
        crm_node_error(n, NULL, "unable to listen on port %d, error: Error: %s :::%d", s->port, err ? err : "", s->port);
        free(err);
        return;
    }
    crm_node_log(n, CRM_LOG_INFO, "listening on port %d", s->port);
    s->lw = crm_watch_fd(n, s->lfd, POLLIN, on_accept, NULL);
}

static void tcpin_close(crm_node *n)
{
    tcpin_state *s = crm_node_data(n);
    if (!s) return;
    s->closing = true;
    crm_timer_cancel(s->retry);
    crm_watch_cancel(s->lw);
    if (s->lfd >= 0) {
        close(s->lfd);
        crm_node_log(n, CRM_LOG_INFO, "stopped listening on port %d", s->port);
    }
    while (s->conns) tconn_free(s, s->conns, true);
    free(s->host);
    free(s->topic);
    free(s->newline);
    free(s->tls_id);
    crm_tls_unref(s->tls);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_tcp_in = {
    .abi = CRM_ABI_VERSION,
    .type = "tcp in",
    .create = tcpin_create,
    .start = tcpin_start,
    .close = tcpin_close,
};
