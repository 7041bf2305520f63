/* tcp_request.c: Node-RED's `tcp request` node (core/network/31-tcpin.js,
 * "tcp request"): connects to host:port (config, or msg.host / msg.port),
 * writes the payload and sends back the answer, which ends
 *  - "time": a fixed time after its first byte (or "immed": at once, no
 *    answer awaited: the connection closes after the write),
 *  - "char": at a delimiter byte (kept), "count": after N bytes;
 *    the connection is closed after each answer;
 *  - "sit": never: every chunk that arrives is sent (or, as a string with a
 *    delimiter, every delimited part), the connection stays open; msg.reset
 *    closes one (host:port) or all of them.
 * Answers are clones of the last message sent to that host:port with the
 * payload replaced (a Buffer, or a string when ret is "string"). Messages
 * that arrive while the connection is being made are queued (at most
 * settings.tcpMsgQueueSize, 1000) and written once it is up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "carmine.h"
#include "net/netutil.h"
#include "net/tcpconn.h"

#define ANSWER_MAX 65536

typedef struct qmsg {
    struct qmsg *next;
    json_t *msg;
} qmsg;

typedef struct rclient {
    struct rclient *next;
    crm_node *n;
    char *id;           /* host:port */
    crm_conn *c;
    bool connected, connecting;
    qmsg *qh, *qt;
    size_t qlen;
    json_t *last;
    unsigned char *buf;
    size_t i;           /* bytes in buf */
    crm_timer *timeout;
    strbuf chunk;       /* sit + string + newline: text after the last delimiter */
} rclient;

typedef struct {
    char *server;
    double port;
    char out;           /* 't' time, 'c' char, 'n' count, 's' sit */
    double splitc;
    bool ret_string, trim;
    char *newline;
    size_t queue_max;
    rclient *clients;
    char *last_id;
    char *tls_id;       /* a tls-config node: TLS without checking the server, as Node-RED's TLSSocket */
    crm_tls *tls;
    bool tls_loaded;
} tcpreq_state;

static int nclients(tcpreq_state *s)
{
    int k = 0;
    for (rclient *r = s->clients; r; r = r->next) k++;
    return k;
}

static void connections_status(crm_node *n, tcpreq_state *s, const char *fill, bool ring_when_none)
{
    int k = nclients(s);
    char t[48];
    snprintf(t, sizeof t, "%d connection%s", k, k == 1 ? "" : "s");
    crm_node_status(n, fill, ring_when_none && k == 0 ? "ring" : "dot", t);
}

static void client_free(tcpreq_state *s, rclient *r, bool free_conn)
{
    for (rclient **pp = &s->clients; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    if (free_conn && r->c) crm_conn_free(r->c);
    else if (r->c) {
        crm_conn_set_arg(r->c, NULL); /* its close callback finds no client */
        crm_conn_destroy(r->c);
    }
    crm_timer_cancel(r->timeout);
    while (r->qh) {
        qmsg *q = r->qh;
        r->qh = q->next;
        json_decref(q->msg);
        free(q);
    }
    json_decref(r->last);
    free(r->buf);
    free(r->id);
    sb_free(&r->chunk);
    free(r);
}

static json_t *answer(tcpreq_state *s, rclient *r, const unsigned char *d, size_t len)
{
    json_t *m = r->last ? crm_deep_copy(r->last) : json_object();
    json_object_set_new(m, "payload", s->ret_string ? crm_text_of(d, len) : crm_buf_new(d, len));
    return m;
}

static void write_msg(rclient *r, json_t *msg)
{
    json_t *pl = json_object_get(msg, "payload");
    if (pl) {
        strbuf b = SB_INIT;
        crm_payload_bytes(pl, false, &b);
        crm_conn_write(r->c, b.data, b.len);
        sb_free(&b);
    }
}

static void time_up(crm_node *n, void *arg)
{
    rclient *r = arg;
    tcpreq_state *s = crm_node_data(n);
    r->timeout = NULL;
    crm_node_send(n, 0, answer(s, r, r->buf, r->i));
    crm_node_status(n, NULL, NULL, NULL);
    client_free(s, r, false);
}

static void on_data(crm_conn *c, const unsigned char *d, size_t len, void *arg)
{
    (void)c;
    rclient *r = arg;
    if (!r) return;
    crm_node *n = r->n;
    tcpreq_state *s = crm_node_data(n);
    if (s->out == 's') {
        if (s->ret_string && *s->newline) {
            json_t *t = crm_text_of(d, len);
            sb_putn(&r->chunk, json_string_value(t), json_string_length(t));
            json_decref(t);
            size_t nl = strlen(s->newline);
            char *p = r->chunk.data, *end = p + r->chunk.len, *hit;
            while ((hit = memmem(p, (size_t)(end - p), s->newline, nl))) {
                json_t *m = r->last ? crm_deep_copy(r->last) : json_object();
                strbuf x = SB_INIT;
                sb_putn(&x, p, (size_t)(hit - p));
                if (s->trim) sb_puts(&x, s->newline);
                json_object_set_new(m, "payload", json_stringn(x.data ? x.data : "", x.len));
                sb_free(&x);
                crm_node_send(n, 0, m);
                p = hit + nl;
            }
            size_t left = (size_t)(end - p);
            memmove(r->chunk.data, p, left);
            r->chunk.len = left;
        } else crm_node_send(n, 0, answer(s, r, d, len));
        return;
    }
    for (size_t j = 0; j < len; j++) {
        if (s->out == 't') {
            if (r->i < ANSWER_MAX) r->buf[r->i++] = d[j];
            if (!r->timeout) r->timeout = crm_timer_start(n, s->splitc, 0, time_up, r);
        } else {
            if (r->i < ANSWER_MAX) r->buf[r->i++] = d[j];
            bool full = s->out == 'n' ? r->i >= (size_t)(s->splitc > 0 ? s->splitc : 1) : d[j] == (unsigned char)s->splitc;
            if (full) {
                crm_node_send(n, 0, answer(s, r, r->buf, r->i));
                crm_node_status(n, NULL, NULL, NULL);
                client_free(s, r, false);
                return;
            }
        }
    }
}

static void on_connect(crm_conn *c, void *arg)
{
    (void)c;
    rclient *r = arg;
    if (!r) return;
    crm_node *n = r->n;
    tcpreq_state *s = crm_node_data(n);
    connections_status(n, s, "green", false);
    r->connected = true;
    r->connecting = false;
    while (r->qh) {
        qmsg *q = r->qh;
        r->qh = q->next;
        r->qlen--;
        write_msg(r, q->msg);
        crm_node_done(n, q->msg);
        json_decref(q->msg);
        free(q);
    }
    r->qt = NULL;
    if (s->out == 't' && s->splitc < 0) { /* immediately: no answer awaited */
        crm_conn_end(r->c);
        crm_conn_set_arg(r->c, NULL);
        r->c = NULL;
        client_free(s, r, false);
        crm_node_status(n, NULL, NULL, NULL);
    }
}

static void on_end(crm_conn *c, void *arg)
{
    (void)c;
    rclient *r = arg;
    if (!r) return;
    crm_node_status(r->n, "grey", "ring", "common.status.disconnected");
    r->connected = r->connecting = false;
}

static void on_close(crm_conn *c, int err, void *arg)
{
    (void)c;
    rclient *r = arg;
    if (!r) return;
    crm_node *n = r->n;
    tcpreq_state *s = crm_node_data(n);
    r->c = NULL;
    if (err) {
        crm_node_status(n, "red", "ring", "common.status.error");
        crm_node_error(n, r->last, "connect failed %s", r->id);
        client_free(s, r, false);
        return;
    }
    r->connected = r->connecting = false;
    /* a time answer still pending is sent when its timer fires; the client
     * stays known (as in Node-RED) and reconnects on the next message */
}

static const crm_conn_cbs cbs = {on_connect, on_data, on_end, on_close};

static void tcpreq_input(crm_node *n, json_t *msg)
{
    tcpreq_state *s = crm_node_data(n);
    if (s->tls_id && !s->tls_loaded) {
        char *terr = NULL;
        s->tls_loaded = true;
        s->tls = crm_tls_of_node(n, s->tls_id, false, &terr);
        if (terr) crm_node_error(n, NULL, "%s", terr);
        free(terr);
    }
    json_t *pl = json_object_get(msg, "payload");
    if (pl && !crm_is_buf(pl) && !json_is_string(pl)) {
        char *t = crm_to_string(pl);
        json_object_set_new(msg, "payload", json_string(t ? t : ""));
        free(t);
    }
    char *host = NULL;
    if (*s->server) host = strdup(s->server);
    else {
        json_t *h = json_object_get(msg, "host");
        host = h ? crm_to_string(h) : NULL;
    }
    char *port = NULL;
    if (s->port && s->port == s->port) {
        char b[32];
        port = strdup(crm_fmt_number(s->port, b));
    } else {
        json_t *p = json_object_get(msg, "port");
        port = p ? crm_to_string(p) : NULL;
    }
    json_t *reset = json_object_get(msg, "reset");
    if (s->out == 's' && crm_truthy(reset)) {
        if (json_is_true(reset)) {
            while (s->clients) client_free(s, s->clients, false);
        }
        if (json_is_string(reset) && strchr(json_string_value(reset), ':')) {
            for (rclient *r = s->clients; r; r = r->next)
                if (!strcmp(r->id, json_string_value(reset))) {
                    client_free(s, r, false);
                    break;
                }
        }
        connections_status(n, s, "green", true);
        if (!json_object_get(msg, "payload")) {
            free(host), free(port);
            json_decref(msg);
            return;
        }
    }
    char *id = NULL;
    if (asprintf(&id, "%s:%s", host ? host : "undefined", port ? port : "undefined") < 0) id = NULL;
    if (!s->last_id || strcmp(s->last_id, id)) {
        crm_node_status(n, NULL, NULL, NULL);
        free(s->last_id);
        s->last_id = strdup(id);
    }
    rclient *r = s->clients;
    while (r && strcmp(r->id, id)) r = r->next;
    if (!r) {
        r = calloc(1, sizeof *r);
        r->n = n;
        r->id = strdup(id);
        r->next = s->clients;
        s->clients = r;
    }
    free(id);
    /* the queue drops its oldest message when full */
    if (r->qlen == s->queue_max && r->qh) {
        qmsg *q = r->qh;
        r->qh = q->next;
        if (!r->qh) r->qt = NULL;
        json_decref(q->msg);
        free(q);
        r->qlen--;
    }
    qmsg *q = calloc(1, sizeof *q);
    q->msg = msg;
    if (r->qt) r->qt->next = q;
    else r->qh = q;
    r->qt = q;
    r->qlen++;
    json_decref(r->last);
    r->last = json_incref(msg);
    if (!r->connecting && !r->connected) {
        free(r->buf);
        r->buf = malloc(ANSWER_MAX);
        r->i = 0;
        double pn = port ? crm_str_to_number(port) : 0;
        if (host && *host && port && *port && pn == pn) {
            r->connecting = true;
            r->c = crm_conn_connect(n, host, (int)pn, &cbs, r);
            if (s->tls) crm_conn_start_tls(r->c, s->tls, NULL, false);
        } else crm_node_warn(n, "Host and/or port not set");
    } else if (r->connected) {
        qmsg *x = r->qh;
        r->qh = x->next;
        if (!r->qh) r->qt = NULL;
        r->qlen--;
        write_msg(r, x->msg);
        crm_node_done(n, x->msg);
        json_decref(x->msg);
        free(x);
    }
    free(host);
    free(port);
}

static int tcpreq_create(crm_node *n, const json_t *cfg)
{
    tcpreq_state *s = calloc(1, sizeof *s);
    s->server = strdup(crm_cfg_str(cfg, "server", ""));
    s->port = crm_cfg_num(cfg, "port", 0);
    const char *out = crm_cfg_str(cfg, "out", "time");
    const char *ret = crm_cfg_str(cfg, "ret", "buffer");
    s->ret_string = !strcmp(ret, "string");
    s->trim = crm_cfg_bool(cfg, "trim", false);
    /* Node-RED replaces only the first \n, \r and \t of the delimiter */
    const char *nl = crm_cfg_str(cfg, "newline", "");
    strbuf b = SB_INIT;
    sb_puts(&b, "");
    bool dn = false, dr = false, dt = false;
    for (const char *p = nl; *p; p++) {
        if (p[0] == '\\' && ((p[1] == 'n' && !dn) || (p[1] == 'r' && !dr) || (p[1] == 't' && !dt))) {
            if (p[1] == 'n') dn = true, sb_putc(&b, '\n');
            else if (p[1] == 'r') dr = true, sb_putc(&b, '\r');
            else dt = true, sb_putc(&b, '\t');
            p++;
        } else sb_putc(&b, *p);
    }
    s->newline = sb_take(&b);
    json_t *sc = json_object_get(cfg, "splitc");
    if (!strcmp(out, "immed")) {
        s->out = 't';
        s->splitc = -1;
    } else if (!strcmp(out, "char")) {
        s->out = 'c';
        const char *c = json_string_value(sc);
        if (!c) c = "";
        if (c[0] == '\\') {
            int v = c[1] == 'n' ? 10 : c[1] == 'r' ? 13 : c[1] == 't' ? 9 : c[1] == 'e' ? 27 : c[1] == 'f' ? 12 : c[1] == '0' ? 0 : -1;
            s->splitc = v >= 0 ? v : NAN;
        } else if (!strncmp(c, "0x", 2)) s->splitc = (double)strtol(c, NULL, 16);
        else s->splitc = (unsigned char)c[0];
    } else {
        s->out = !strcmp(out, "count") ? 'n' : !strcmp(out, "sit") ? 's' : 't';
        s->splitc = sc ? crm_to_number(sc) : NAN;
    }
    const char *tls = crm_cfg_str(cfg, "tls", "");
    s->tls_id = *tls ? strdup(tls) : NULL;
    s->queue_max = (size_t)crm_cfg_num(crm_node_settings(n), "tcpMsgQueueSize", 1000);
    if (!s->queue_max) s->queue_max = 1000;
    crm_node_set_data(n, s);
    return 0;
}

static void tcpreq_close(crm_node *n)
{
    tcpreq_state *s = crm_node_data(n);
    if (!s) return;
    while (s->clients) client_free(s, s->clients, true);
    crm_node_status(n, NULL, NULL, NULL);
    free(s->server);
    free(s->newline);
    free(s->last_id);
    free(s->tls_id);
    crm_tls_unref(s->tls);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_tcp_request = {
    .abi = CRM_ABI_VERSION,
    .type = "tcp request",
    .create = tcpreq_create,
    .input = tcpreq_input,
    .close = tcpreq_close,
};
