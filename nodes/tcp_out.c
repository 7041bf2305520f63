/* tcp_out.c: Node-RED's `tcp out` node (core/network/31-tcpin.js, "tcp
 * out"), in its three roles:
 *  - client: keeps a connection to host:port and writes each payload to it
 *    (optionally closing after each message, then reconnecting in 20 ms);
 *  - reply: writes to the connection of msg._session (a `tcp in`'s, through
 *    the process-wide pool), or to every pooled connection; msg.reset true
 *    closes instead;
 *  - server: listens and writes each payload to every connected client
 *    (optionally closing them after it).
 * A Buffer is written as is, a string as UTF-8 (or decoded from base64),
 * anything else as String(payload). */
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

typedef struct sconn {
    struct sconn *next;
    crm_conn *c;
    bool counted;         /* connected (for TLS: secure) */
} sconn;

typedef struct {
    char role;            /* 'c' client, 'r' reply, 's' server */
    char *host;
    int port;
    bool base64, doend, closing, end_fast, connected;
    double reconnect_ms;
    crm_conn *client;
    crm_timer *retry;
    int lfd;
    crm_watch *lw;
    sconn *conns;
    int nconns;
    char *tls_id;
    crm_tls *tls;
} tcpout_state;

static void payload_bytes(tcpout_state *s, const json_t *pl, strbuf *out)
{
    sb_puts(out, "");
    if (json_is_string(pl) && s->base64) crm_base64_decode(json_string_value(pl), json_string_length(pl), out);
    else crm_payload_bytes(pl, false, out);
}

/* client ---------------------------------------------------------------------- */

static void connect_client(crm_node *n, void *arg);

static void c_connect(crm_conn *c, void *arg)
{
    (void)c;
    crm_node *n = arg;
    tcpout_state *s = crm_node_data(n);
    s->connected = true;
    crm_node_log(n, CRM_LOG_INFO, "connected to %s:%d", s->host, s->port);
    crm_node_status(n, "green", "dot", "common.status.connected");
}

static void c_end(crm_conn *c, void *arg)
{
    (void)c;
    crm_node *n = arg;
    tcpout_state *s = crm_node_data(n);
    crm_node_status(n, NULL, NULL, NULL);
    s->connected = false;
}

static void c_close(crm_conn *c, int err, void *arg)
{
    crm_node *n = arg;
    tcpout_state *s = crm_node_data(n);
    if (err && crm_conn_error(c)) crm_node_log(n, CRM_LOG_INFO, "error: %s", crm_conn_error(c));
    else if (err) crm_node_log(n, CRM_LOG_INFO, "error: Error: connect %s %s:%d", crm_errno_name(err), s->host, s->port);
    s->client = NULL;
    s->connected = false;
    crm_node_status(n, "red", "ring", "common.status.disconnected");
    if (s->closing) return;
    if (s->end_fast) {
        s->end_fast = false;
        s->retry = crm_timer_start(n, 20, 0, connect_client, NULL);
    } else {
        crm_node_log(n, CRM_LOG_INFO, "connection lost to %s:%d", s->host, s->port);
        s->retry = crm_timer_start(n, s->reconnect_ms, 0, connect_client, NULL);
    }
}

static const crm_conn_cbs client_cbs = {c_connect, NULL, c_end, c_close};

static void connect_client(crm_node *n, void *arg)
{
    (void)arg;
    tcpout_state *s = crm_node_data(n);
    s->retry = NULL;
    crm_node_log(n, CRM_LOG_INFO, "connecting to %s:%d", s->host, s->port);
    crm_node_status(n, "grey", "dot", "common.status.connecting");
    s->client = crm_conn_connect(n, s->host, s->port, &client_cbs, n);
    if (s->tls) crm_conn_start_tls(s->client, s->tls, s->host, crm_tls_verify(s->tls));
}

/* server ---------------------------------------------------------------------- */

static void server_status(crm_node *n, int count)
{
    char t[48];
    snprintf(t, sizeof t, "%d connection%s", count, count == 1 ? "" : "s");
    crm_node_status(n, NULL, NULL, t);
}

static void s_close(crm_conn *c, int err, void *arg)
{
    (void)err;
    crm_node *n = arg;
    tcpout_state *s = crm_node_data(n);
    bool counted = false;
    for (sconn **pp = &s->conns; *pp; pp = &(*pp)->next)
        if ((*pp)->c == c) {
            sconn *x = *pp;
            *pp = x->next;
            counted = x->counted;
            free(x);
            break;
        }
    if (!counted) return; /* a TLS handshake that failed */
    s->nconns--;
    int port;
    const char *ip = crm_conn_remote(c, &port);
    crm_node_log(n, CRM_LOG_INFO, "connection closed from %s:%d", ip, port);
    server_status(n, s->nconns);
}

static void s_count(crm_node *n, tcpout_state *s, sconn *x)
{
    x->counted = true;
    s->nconns++;
    int port;
    const char *ip = crm_conn_remote(x->c, &port);
    crm_node_log(n, CRM_LOG_INFO, "connection from %s:%d", ip, port);
    server_status(n, s->nconns);
}

/* A TLS client's handshake is done. */
static void s_secure(crm_conn *c, void *arg)
{
    crm_node *n = arg;
    tcpout_state *s = crm_node_data(n);
    for (sconn *x = s->conns; x; x = x->next)
        if (x->c == c) s_count(n, s, x);
}

static const crm_conn_cbs server_cbs = {s_secure, NULL, NULL, s_close};

static void s_accept(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)revents, (void)arg;
    tcpout_state *s = crm_node_data(n);
    for (int i = 0; i < 64; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        sconn *x = calloc(1, sizeof *x);
        x->c = crm_conn_adopt(n, cfd, &server_cbs, n);
        x->next = s->conns;
        s->conns = x;
        if (s->tls) crm_conn_start_tls(x->c, s->tls, NULL, false);
        else s_count(n, s, x);
    }
}

/* input ----------------------------------------------------------------------- */

static void tcpout_input(crm_node *n, json_t *msg)
{
    tcpout_state *s = crm_node_data(n);
    json_t *pl = json_object_get(msg, "payload");
    if (s->role == 'c') {
        if (s->connected && s->client && pl && !json_is_null(pl)) {
            strbuf b = SB_INIT;
            payload_bytes(s, pl, &b);
            crm_conn_write(s->client, b.data, b.len);
            sb_free(&b);
            if (s->doend) {
                s->end_fast = true;
                crm_node_status(n, NULL, NULL, NULL);
                crm_conn_end(s->client); /* Node destroys at once; the write is flushed first here */
                s->connected = false;
            }
        }
    } else if (s->role == 'r') {
        json_t *sess = json_object_get(msg, "_session");
        const char *type = json_string_value(json_object_get(sess, "type"));
        bool reset = json_is_true(json_object_get(msg, "reset"));
        strbuf b = SB_INIT;
        if (!reset) payload_bytes(s, pl, &b);
        if (sess && type && !strcmp(type, "tcp")) {
            const char *id = json_string_value(json_object_get(sess, "id"));
            if (id) crm_tcp_pool_send(id, b.data, b.len, reset);
        } else crm_tcp_pool_send(NULL, b.data, b.len, reset);
        sb_free(&b);
    } else {
        if (pl && !json_is_null(pl)) {
            strbuf b = SB_INIT;
            payload_bytes(s, pl, &b);
            for (sconn *x = s->conns; x; x = x->next) {
                if (!x->counted) continue;
                crm_conn_write(x->c, b.data, b.len);
                if (s->doend) crm_conn_end(x->c);
            }
            sb_free(&b);
        }
    }
    crm_node_done(n, msg);
    json_decref(msg);
}

static int tcpout_create(crm_node *n, const json_t *cfg)
{
    tcpout_state *s = calloc(1, sizeof *s);
    s->lfd = -1;
    s->host = strdup(crm_cfg_str(cfg, "host", ""));
    s->port = (int)crm_cfg_num(cfg, "port", 0);
    s->base64 = crm_cfg_bool(cfg, "base64", false);
    s->doend = json_is_true(json_object_get(cfg, "end"));
    const char *b = crm_cfg_str(cfg, "beserver", "");
    s->role = !strcmp(b, "reply") ? 'r' : !strcmp(b, "server") ? 's' : 'c';
    const char *tls = crm_cfg_str(cfg, "tls", "");
    s->tls_id = *tls && s->role != 'r' ? strdup(tls) : NULL;
    s->reconnect_ms = crm_cfg_num(crm_node_settings(n), "socketReconnectTime", 10000);
    if (!(s->reconnect_ms > 0)) s->reconnect_ms = 10000;
    crm_node_set_data(n, s);
    return 0;
}

static void tcpout_start(crm_node *n)
{
    tcpout_state *s = crm_node_data(n);
    char *terr = NULL;
    s->tls = crm_tls_of_node(n, s->tls_id, s->role == 's', &terr);
    if (terr) {
        crm_node_error(n, NULL, "%s", terr);
        free(terr);
        return;
    }
    /* once every node has started (see tcp_in.c) */
    if (s->role == 'c') s->retry = crm_timer_start(n, 0, 0, connect_client, NULL);
    else if (s->role == 's') {
        server_status(n, 0);
        s->lfd = crm_tcp_listen(s->port, NULL);
        if (s->lfd < 0) {
            char *err = crm_sys_error(errno, "listen", NULL);
            crm_node_error(n, NULL, "unable to listen on port %d, error: Error: %s :::%d", s->port, err ? err : "", s->port);
            free(err);
            return;
        }
        crm_node_log(n, CRM_LOG_INFO, "listening on port %d", s->port);
        s->lw = crm_watch_fd(n, s->lfd, POLLIN, s_accept, NULL);
    }
}

static void tcpout_close(crm_node *n)
{
    tcpout_state *s = crm_node_data(n);
    if (!s) return;
    s->closing = true;
    crm_timer_cancel(s->retry);
    crm_conn_free(s->client);
    crm_watch_cancel(s->lw);
    if (s->lfd >= 0) {
        close(s->lfd);
        crm_node_log(n, CRM_LOG_INFO, "stopped listening on port %d", s->port);
    }
    while (s->conns) {
        sconn *x = s->conns;
        s->conns = x->next;
        crm_conn_free(x->c);
        free(x);
    }
    free(s->host);
    free(s->tls_id);
    crm_tls_unref(s->tls);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_tcp_out = {
    .abi = CRM_ABI_VERSION,
    .type = "tcp out",
    .create = tcpout_create,
    .start = tcpout_start,
    .input = tcpout_input,
    .close = tcpout_close,
};
