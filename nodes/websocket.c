/* websocket.c: Node-RED's WebSocket nodes (core/network/22-websocket.js):
 *  - websocket-listener (config): a path on Carmine's HTTP server; clients
 *    upgrade there (runtime/net/ws_server.c hands the socket over);
 *  - websocket-client (config): one outgoing connection to ws://host/path,
 *    with subprotocols, extra upgrade headers, a heartbeat (ping every hb
 *    seconds, the connection dropped when the last ping got no answer) and
 *    a new attempt 3 s after a close or an error;
 *  - websocket in: sends each message a connection receives (text as a
 *    string, binary as a Buffer, or the whole message parsed from JSON),
 *    with _session {type: "websocket", id};
 *  - websocket out: sends the payload (or the whole message as JSON) to the
 *    connection of msg._session, or to every connection.
 * The connections live on the config node's loop; in and out nodes may run
 * on other loops: messages, statuses and sends cross with crm_node_post.
 * Framing: runtime/net/websocket.c. wss:// runs TLS (runtime/net/tcpconn.c)
 * with the client's tls-config node, or checking the server's certificate
 * against the system's roots when it has none, as Node's ws does. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "carmine.h"
#include "http.h"
#include "httpclient.h"
#include "httpd.h"
#include "net/netutil.h"
#include "net/tcpconn.h"
#include "net/websocket.h"
#include "net/ws_server.h"

#define MAX_PAYLOAD (100u * 1024 * 1024) /* ws's maxPayload */
#define RECONNECT_MS 3000

typedef struct wsconn {
    struct wsconn *next;
    struct wsconn *hnext; /* in the config's index by id */
    uint64_t hash;
    crm_node *cfg;
    crm_conn *c;
    char id[17];
    crm_ws_parser p;
    bool open, closing, pending_hb;
    void *urh;          /* an https listener's connection: libmicrohttpd's handle */
    struct crm_runtime *rt;
    strbuf hs;          /* client: the handshake answer so far */
    char key[25];
} wsconn;

typedef struct {
    bool server, wholemsg, tls;
    char *tls_id;       /* client: its tls-config node */
    crm_tls *tlsc;
    char *path;         /* listener: the full path; client: the URL */
    char *host, *reqpath, *hostport;
    int port;
    char *protocols;    /* client: "a, b" */
    json_t *headers;    /* client: [{name, value}] */
    double hb_ms;
    pthread_mutex_t lock;
    crm_node **nodes;   /* websocket in and out nodes using this config */
    bool *is_in;
    size_t nnodes;
    wsconn *conns;
    wsconn **byid;      /* the connections by id (chained), for replies to msg._session */
    size_t nbyid, nindexed;
    int count;
    bool closing, listening;
    crm_timer *retry, *hb;
} wscfg;

/* Jobs crossing loops. */
typedef struct {
    char *fill, *shape, *text;
} status_job;

typedef struct {
    bool to_one;
    char id[17];
    int op;
    size_t len;
    char data[];
} send_job;

static void conn_start_client(crm_node *n, void *arg);

/* in/out side ------------------------------------------------------------------ */

static void apply_status(crm_node *n, void *arg)
{
    status_job *j = arg;
    crm_node_status(n, j->fill, j->shape, j->text);
    free(j->fill), free(j->shape), free(j->text), free(j);
}

static void drop_status(void *arg)
{
    status_job *j = arg;
    free(j->fill), free(j->shape), free(j->text), free(j);
}

static void deliver(crm_node *n, void *arg) { crm_node_send(n, 0, arg); }
static void drop_msg(void *arg) { json_decref(arg); }

/* config side ------------------------------------------------------------------ */

static void broadcast_status(crm_node *cfg, const char *fill, const char *shape, const char *text)
{
    wscfg *s = crm_node_data(cfg);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nnodes; i++) {
        status_job *j = malloc(sizeof *j);
        j->fill = strdup(fill), j->shape = strdup(shape), j->text = strdup(text);
        crm_node_post_ex(s->nodes[i], apply_status, drop_status, j);
    }
    pthread_mutex_unlock(&s->lock);
}

static void opened(crm_node *cfg)
{
    wscfg *s = crm_node_data(cfg);
    char t[48];
    if (s->server) snprintf(t, sizeof t, "connected %d", s->count);
    else snprintf(t, sizeof t, "connected ");
    broadcast_status(cfg, "green", "dot", t);
}

static void closed(crm_node *cfg)
{
    wscfg *s = crm_node_data(cfg);
    if (s->server && s->count > 0) {
        char t[48];
        snprintf(t, sizeof t, "connected %d", s->count);
        broadcast_status(cfg, "green", "dot", t);
    } else broadcast_status(cfg, "red", "ring", "common.status.disconnected");
}

/* msg._session.type, "websocket": one string for every message, immortal
 * (reference count (size_t)-1, as jansson's true/false/null), so that the
 * loops the messages travel to only read it. */
static json_t *ws_type;
static void make_type(void)
{
    ws_type = json_string_nocheck("websocket");
    if (ws_type) ws_type->refcount = (size_t)-1;
}

static json_t *session_type(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_type);
    return ws_type ? ws_type : json_string_nocheck("websocket");
}

static void to_inputs(crm_node *cfg, wsconn *w, int op, const unsigned char *d, size_t len)
{
    wscfg *s = crm_node_data(cfg);
    json_t *msg = NULL;
    if (s->wholemsg) {
        json_t *v = crm_parse((const char *)d, len, NULL, 0);
        if (v && json_is_object(v)) msg = v;
        else if (v) {
            msg = json_object();
            json_object_set_new(msg, "payload", v);
        }
    }
    if (!msg) {
        msg = json_object();
        /* text frames are valid UTF-8 (the parser checked) */
        json_object_set_new_nocheck(msg, "payload",
                                    op == WS_TEXT ? json_stringn_nocheck((const char *)d, len) : crm_buf_new(d, len));
    }
    json_t *sess = json_object();
    json_object_set_new_nocheck(sess, "type", session_type());
    json_object_set_new_nocheck(sess, "id", json_string_nocheck(w->id));
    json_object_set_new_nocheck(msg, "_session", sess);
    pthread_mutex_lock(&s->lock);
    /* a copy for each websocket in node but the last, which gets msg */
    size_t last = s->nnodes;
    for (size_t i = 0; i < s->nnodes; i++)
        if (s->is_in[i]) last = i;
    for (size_t i = 0; i < s->nnodes; i++)
        if (s->is_in[i]) crm_node_post_ex(s->nodes[i], deliver, drop_msg, i == last ? msg : crm_msg_clone(msg));
    pthread_mutex_unlock(&s->lock);
    if (last == s->nnodes) json_decref(msg);
}

static void ws_send(wsconn *w, int op, const void *d, size_t len)
{
    if (((wscfg *)crm_node_data(w->cfg))->server) {
        /* unmasked: the header and the payload leave as they are */
        unsigned char h[10];
        struct iovec iov[2] = {{h, crm_ws_frame_header(h, op, len)}, {(void *)d, len}};
        crm_conn_writev(w->c, iov, len ? 2 : 1);
        return;
    }
    strbuf f = SB_INIT;
    crm_ws_frame(&f, op, d, len, true);
    crm_conn_write(w->c, f.data, f.len);
    sb_free(&f);
}

/* The index of connections by id ------------------------------------------------ */

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

static void index_add(wscfg *s, wsconn *w)
{
    if (s->nindexed + 1 > s->nbyid) { /* grow and rehash: at most one connection per bucket on average */
        size_t nb = s->nbyid ? s->nbyid * 2 : 16;
        wsconn **b = calloc(nb, sizeof *b);
        if (!b) return;
        for (size_t i = 0; i < s->nbyid; i++)
            for (wsconn *c = s->byid[i], *nx; c; c = nx) {
                nx = c->hnext;
                c->hnext = b[c->hash & (nb - 1)];
                b[c->hash & (nb - 1)] = c;
            }
        free(s->byid);
        s->byid = b;
        s->nbyid = nb;
    }
    w->hash = id_hash(w->id);
    wsconn **head = &s->byid[w->hash & (s->nbyid - 1)];
    w->hnext = *head;
    *head = w;
    s->nindexed++;
}

static void index_del(wscfg *s, wsconn *w)
{
    if (!s->nbyid) return;
    for (wsconn **pp = &s->byid[w->hash & (s->nbyid - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == w) {
            *pp = w->hnext;
            s->nindexed--;
            return;
        }
}

static wsconn *index_find(wscfg *s, const char *id)
{
    if (!s->nbyid) return NULL;
    uint64_t h = id_hash(id);
    for (wsconn *w = s->byid[h & (s->nbyid - 1)]; w; w = w->hnext)
        if (w->hash == h && !strcmp(w->id, id)) return w;
    return NULL;
}

static void wsconn_free(wscfg *s, wsconn *w, bool now)
{
    index_del(s, w);
    for (wsconn **pp = &s->conns; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (now && w->c) crm_conn_free(w->c);
    crm_ws_socket_release(w->rt, w->urh);
    crm_ws_parser_free(&w->p);
    sb_free(&w->hs);
    free(w);
}

static void handle_frames(wsconn *w)
{
    crm_node *cfg = w->cfg;
    for (;;) {
        const unsigned char *d;
        size_t len;
        int code;
        crm_ws_event ev = crm_ws_next(&w->p, &d, &len, &code);
        if (ev == WS_NONE) return;
        if (ev == WS_TEXT || ev == WS_BINARY) to_inputs(cfg, w, ev, d, len);
        else if (ev == WS_PING) {
            w->pending_hb = false;
            ws_send(w, WS_OP_PONG, d, len);
        } else if (ev == WS_PONG) w->pending_hb = false;
        else if (ev == WS_CLOSE) {
            unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
            if (!w->closing) ws_send(w, WS_OP_CLOSE, b, code == 1005 ? 0 : 2);
            w->closing = true;
            crm_conn_end(w->c);
            return;
        } else { /* protocol error: close with its code */
            unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
            ws_send(w, WS_OP_CLOSE, b, 2);
            w->closing = true;
            crm_conn_end(w->c);
            return;
        }
    }
}

static void client_handshake_data(wsconn *w, const unsigned char *d, size_t len)
{
    wscfg *s = crm_node_data(w->cfg);
    sb_putn(&w->hs, (const char *)d, len);
    char *end = memmem(w->hs.data, w->hs.len, "\r\n\r\n", 4);
    if (!end) {
        if (w->hs.len > 16384) crm_conn_destroy(w->c);
        return;
    }
    size_t hl = (size_t)(end - w->hs.data) + 4;
    int status = 0;
    sscanf(w->hs.data, "HTTP/%*s %d", &status);
    char acc[29];
    crm_ws_accept_key(w->key, acc);
    bool ok = status == 101;
    if (ok) {
        /* Sec-WebSocket-Accept must match */
        char *h = strcasestr(w->hs.data, "\r\nsec-websocket-accept:");
        ok = h && h < end;
        if (ok) {
            h += 23;
            while (*h == ' ') h++;
            ok = !strncmp(h, acc, 28);
        }
    }
    if (!ok) {
        crm_node_log(w->cfg, CRM_LOG_DEBUG, "Unexpected server response: %d", status);
        broadcast_status(w->cfg, "red", "ring", "common.status.error");
        crm_conn_destroy(w->c);
        return;
    }
    w->open = true;
    opened(w->cfg);
    size_t rest = w->hs.len - hl;
    if (rest) crm_ws_feed(&w->p, w->hs.data + hl, rest);
    sb_free(&w->hs);
    (void)s;
    handle_frames(w);
}

static void on_data(crm_conn *c, const unsigned char *d, size_t len, void *arg)
{
    (void)c;
    wsconn *w = arg;
    if (!w) return;
    if (!w->open) {
        client_handshake_data(w, d, len);
        return;
    }
    crm_ws_feed(&w->p, d, len);
    handle_frames(w);
}

static void on_close(crm_conn *c, int err, void *arg)
{
    (void)c;
    wsconn *w = arg;
    if (!w) return;
    crm_node *cfg = w->cfg;
    wscfg *s = crm_node_data(cfg);
    bool was_open = w->open;
    w->c = NULL;
    if (s->server) s->count--;
    wsconn_free(s, w, false);
    if (!s->server) {
        crm_timer_cancel(s->hb);
        s->hb = NULL;
        if (err || !was_open) broadcast_status(cfg, "red", "ring", "common.status.error");
    }
    if (was_open || !s->server) closed(cfg);
    if (!s->server && !s->closing) {
        crm_timer_cancel(s->retry);
        s->retry = crm_timer_start(cfg, RECONNECT_MS, 0, conn_start_client, NULL);
    }
}

static void on_connect(crm_conn *c, void *arg)
{
    wsconn *w = arg;
    wscfg *s = crm_node_data(w->cfg);
    crm_ws_new_key(w->key);
    strbuf r = SB_INIT;
    sb_printf(&r, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
              s->reqpath, s->hostport, w->key);
    if (s->protocols && *s->protocols) sb_printf(&r, "Sec-WebSocket-Protocol: %s\r\n", s->protocols);
    size_t i;
    json_t *h;
    json_array_foreach(s->headers, i, h) sb_printf(&r, "%s: %s\r\n", json_string_value(json_object_get(h, "name")),
                                                   json_string_value(json_object_get(h, "value")));
    sb_puts(&r, "\r\n");
    crm_conn_write(c, r.data, r.len);
    sb_free(&r);
}

static const crm_conn_cbs cbs = {on_connect, on_data, NULL, on_close};

static void heartbeat(crm_node *cfg, void *arg)
{
    (void)arg;
    wscfg *s = crm_node_data(cfg);
    wsconn *w = s->conns;
    if (!w || !w->open) return;
    if (w->pending_hb) { /* no answer to the last ping: the connection is gone */
        crm_timer_cancel(s->hb);
        s->hb = NULL;
        crm_conn_destroy(w->c);
        return;
    }
    w->pending_hb = true;
    ws_send(w, WS_OP_PING, "", 0);
}

static void conn_start_client(crm_node *cfg, void *arg)
{
    (void)arg;
    wscfg *s = crm_node_data(cfg);
    s->retry = NULL;
    wsconn *w = calloc(1, sizeof *w);
    w->cfg = cfg;
    crm_make_id(w->id);
    crm_ws_parser_init(&w->p, false, MAX_PAYLOAD);
    w->next = s->conns;
    s->conns = w;
    index_add(s, w);
    w->c = crm_conn_connect(cfg, s->host, s->port, &cbs, w);
    if (s->tlsc) crm_conn_start_tls(w->c, s->tlsc, s->host, crm_tls_verify(s->tlsc));
    if (s->hb_ms > 0) {
        crm_timer_cancel(s->hb);
        s->hb = crm_timer_start(cfg, s->hb_ms, s->hb_ms, heartbeat, NULL);
    }
}

/* A client upgraded on the HTTP server. */
static void on_accept(crm_node *cfg, void *arg)
{
    crm_ws_socket *sock = arg;
    wscfg *s = crm_node_data(cfg);
    if (!s || s->closing) {
        close(sock->fd);
        crm_ws_socket_release(sock->rt, sock->urh);
        free(sock);
        return;
    }
    wsconn *w = calloc(1, sizeof *w);
    w->cfg = cfg;
    w->open = true;
    crm_make_id(w->id);
    crm_ws_parser_init(&w->p, true, MAX_PAYLOAD);
    w->urh = sock->urh;
    w->rt = sock->rt;
    w->c = crm_conn_adopt(cfg, sock->fd, &cbs, w);
    w->next = s->conns;
    s->conns = w;
    index_add(s, w);
    s->count++;
    opened(cfg);
    if (sock->extra_len) {
        crm_ws_feed(&w->p, sock->extra, sock->extra_len);
        handle_frames(w);
    }
    free(sock);
}

/* A send from a websocket out node, on the config's loop: to the client
 * of id (ws's reply(id): that client, if it is still there), or to all. */
static void send_frames(wscfg *s, bool to_one, const char *id, int op, const void *data, size_t len)
{
    if (to_one) {
        wsconn *w = index_find(s, id);
        if (w && w->open && !w->closing) ws_send(w, op, data, len);
        return;
    }
    for (wsconn *w = s->conns; w; w = w->next) {
        if (!w->open || w->closing) continue;
        if (s->server == false && w != s->conns) continue;
        ws_send(w, op, data, len);
    }
}

static void do_send(crm_node *cfg, void *arg)
{
    send_job *j = arg;
    send_frames(crm_node_data(cfg), j->to_one, j->id, j->op, j->data, j->len);
    free(j);
}

static int cfg_create(crm_node *n, const json_t *cfg)
{
    wscfg *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    const char *path = crm_cfg_str(cfg, "path", "");
    s->wholemsg = !strcmp(crm_cfg_str(cfg, "wholemsg", "false"), "true");
    s->server = !(strncasecmp(path, "ws://", 5) == 0 || strncasecmp(path, "wss://", 6) == 0);
    const char *hb = crm_cfg_str(cfg, "hb", "");
    if (*hb && atoi(hb) > 0) s->hb_ms = atoi(hb) * 1000.0;
    if (s->server) {
        crm_httpd *h = crm_node_httpd(n);
        const char *root = h ? crm_httpd_node_root(h) : "/";
        if (!root) root = "/";
        size_t rl = strlen(root);
        if (asprintf(&s->path, "%s%s%s", root, rl && root[rl - 1] == '/' ? "" : "/", path[0] == '/' ? path + 1 : path) < 0)
            s->path = NULL;
    } else {
        s->path = strdup(path);
        s->tls = !strncasecmp(path, "wss://", 6);
        const char *tid = crm_cfg_str(cfg, "tls", "");
        s->tls_id = *tid ? strdup(tid) : NULL;
        const char *hp = path + (s->tls ? 6 : 5);
        size_t hl = strcspn(hp, "/?#");
        s->hostport = strndup(hp, hl);
        const char *rest = hp + hl;
        s->reqpath = strdup(*rest == '/' || *rest == '?' ? rest : "/");
        char *hash = strchr(s->reqpath, '#');
        if (hash) *hash = 0;
        if (*s->reqpath == '?') {
            char *x = NULL;
            if (asprintf(&x, "/%s", s->reqpath) >= 0) free(s->reqpath), s->reqpath = x;
        }
        /* host, [v6], port */
        char *hpc = strdup(s->hostport);
        char *colon = hpc[0] == '[' ? strstr(hpc, "]:") : strrchr(hpc, ':');
        s->port = s->tls ? 443 : 80;
        if (colon) {
            s->port = atoi(colon + (hpc[0] == '[' ? 2 : 1));
            *colon = hpc[0] == '[' ? ']' : 0;
            if (hpc[0] == '[') colon[1] = 0;
        }
        if (hpc[0] == '[') {
            size_t l = strlen(hpc);
            memmove(hpc, hpc + 1, l);
            if (l >= 2 && hpc[l - 2] == ']') hpc[l - 2] = 0;
        }
        s->host = hpc;
        const char *sp = crm_cfg_str(cfg, "subprotocol", "");
        /* "a , b" -> "a, b" */
        strbuf b = SB_INIT;
        sb_puts(&b, "");
        for (const char *p = sp;;) {
            const char *c = strchr(p, ',');
            size_t l = c ? (size_t)(c - p) : strlen(p);
            while (l && *p == ' ') p++, l--;
            while (l && p[l - 1] == ' ') l--;
            if (l) {
                if (b.len) sb_puts(&b, ", ");
                sb_putn(&b, p, l);
            }
            if (!c) break;
            p = c + 1;
        }
        s->protocols = sb_take(&b);
        s->headers = json_array();
        json_t *hs = json_object_get(cfg, "headers");
        size_t i;
        json_t *h;
        json_array_foreach(hs, i, h) {
            const char *kt = json_string_value(json_object_get(h, "keyType"));
            const char *kv = json_string_value(json_object_get(h, "keyValue"));
            const char *vt = json_string_value(json_object_get(h, "valueType"));
            const char *vv = json_string_value(json_object_get(h, "valueValue"));
            const char *name = kt && !strcmp(kt, "other") ? kv : kt;
            char *value = NULL;
            if (vt && !strcmp(vt, "other")) value = vv ? strdup(vv) : NULL;
            else if (vt && !strcmp(vt, "env")) {
                json_t *e = vv ? crm_node_env(n, vv) : NULL;
                value = e ? crm_to_string(e) : NULL;
                json_decref(e);
            } else value = vt ? strdup(vt) : NULL;
            if (name && *name && value && *value)
                json_array_append_new(s->headers, json_pack("{s:s,s:s}", "name", name, "value", value));
            free(value);
        }
    }
    crm_node_set_data(n, s);
    if (s->server) {
        if (!s->path || crm_ws_listen(s->path, n, on_accept) < 0) {
            crm_node_error(n, NULL, "Cannot have two WebSocket listeners on the same path: %s", path);
            return 0;
        }
        s->listening = true;
    }
    return 0;
}

static void cfg_start(crm_node *n)
{
    wscfg *s = crm_node_data(n);
    if (s->server) return;
    if (s->tls) {
        char *terr = NULL;
        s->tlsc = crm_tls_of_node(n, s->tls_id, false, &terr);
        if (!s->tlsc && !terr) { /* no tls-config: ws's defaults */
            crm_tls_options o = {.verify = true};
            s->tlsc = crm_tls_new(&o, false, &terr);
        }
        if (terr) {
            crm_node_error(n, NULL, "%s", terr);
            free(terr);
            return;
        }
    }
    conn_start_client(n, NULL);
}

static void cfg_close(crm_node *n)
{
    wscfg *s = crm_node_data(n);
    if (!s) return;
    s->closing = true;
    if (s->listening) crm_ws_unlisten(s->path, n);
    crm_timer_cancel(s->retry);
    crm_timer_cancel(s->hb);
    while (s->conns) {
        wsconn *w = s->conns;
        if (w->open && !s->server) { /* ws.close(): a close frame, best effort */
            unsigned char b[2] = {0x03, 0xE8};
            ws_send(w, WS_OP_CLOSE, b, 2);
        }
        wsconn_free(s, w, true);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->byid);
    free(s->nodes);
    free(s->is_in);
    free(s->path);
    free(s->host);
    free(s->reqpath);
    free(s->hostport);
    free(s->protocols);
    json_decref(s->headers);
    free(s->tls_id);
    crm_tls_unref(s->tlsc);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_websocket_listener = {
    .abi = CRM_ABI_VERSION,
    .type = "websocket-listener",
    .create = cfg_create,
    .start = cfg_start,
    .close = cfg_close,
};

const crm_node_type crm_type_websocket_client = {
    .abi = CRM_ABI_VERSION,
    .type = "websocket-client",
    .create = cfg_create,
    .start = cfg_start,
    .close = cfg_close,
};

/* websocket in / out -------------------------------------------------------------- */

typedef struct {
    crm_node *cfg;
} wsnode;

static crm_node *find_cfg(crm_node *n, const json_t *cfg)
{
    const char *id = crm_cfg_str(cfg, "client", "");
    if (!*id) id = crm_cfg_str(cfg, "server", "");
    crm_node *c = *id ? crm_node_find(n, id) : NULL;
    if (c) {
        const char *t = crm_node_type_name(c);
        if (strcmp(t, "websocket-listener") && strcmp(t, "websocket-client")) c = NULL;
    }
    return c && crm_node_data(c) ? c : NULL;
}

static void attach(crm_node *n, crm_node *cfg, bool is_in)
{
    wscfg *s = crm_node_data(cfg);
    pthread_mutex_lock(&s->lock);
    s->nodes = realloc(s->nodes, (s->nnodes + 1) * sizeof *s->nodes);
    s->is_in = realloc(s->is_in, (s->nnodes + 1) * sizeof *s->is_in);
    s->nodes[s->nnodes] = n;
    s->is_in[s->nnodes++] = is_in;
    pthread_mutex_unlock(&s->lock);
}

static void detach(crm_node *n, crm_node *cfg)
{
    wscfg *s = crm_node_data(cfg);
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nnodes; i++)
        if (s->nodes[i] == n) {
            memmove(&s->nodes[i], &s->nodes[i + 1], (s->nnodes - i - 1) * sizeof *s->nodes);
            memmove(&s->is_in[i], &s->is_in[i + 1], (s->nnodes - i - 1) * sizeof *s->is_in);
            s->nnodes--;
            break;
        }
    pthread_mutex_unlock(&s->lock);
}

static int wsnode_create(crm_node *n, const json_t *config, bool is_in)
{
    crm_node *cfg = find_cfg(n, config);
    if (!cfg) {
        crm_node_error(n, NULL, "Missing server configuration");
        return 0;
    }
    wsnode *w = calloc(1, sizeof *w);
    w->cfg = cfg;
    crm_node_set_data(n, w);
    attach(n, cfg, is_in);
    return 0;
}

static int wsin_create(crm_node *n, const json_t *config) { return wsnode_create(n, config, true); }
static int wsout_create(crm_node *n, const json_t *config) { return wsnode_create(n, config, false); }

static void wsnode_close(crm_node *n)
{
    wsnode *w = crm_node_data(n);
    if (!w) return;
    detach(n, w->cfg);
    crm_node_status(n, NULL, NULL, NULL);
    free(w);
    crm_node_set_data(n, NULL);
}

static void wsout_input(crm_node *n, json_t *msg)
{
    wsnode *w = crm_node_data(n);
    if (!w) {
        json_decref(msg);
        return;
    }
    wscfg *s = crm_node_data(w->cfg);
    strbuf b = SB_INIT;
    int op = WS_OP_TEXT;
    bool have = false;
    const char *bytes = NULL; /* the payload's own bytes (a string, a Buffer), else b's */
    size_t nbytes = 0;
    json_t *pl = s->wholemsg ? NULL : json_object_get(msg, "payload");
    if (json_is_string(pl)) {
        bytes = json_string_value(pl), nbytes = json_string_length(pl), have = true;
    } else if (pl && crm_is_buf(pl)) {
        bytes = (const char *)crm_buf_data(pl, &nbytes), op = WS_OP_BINARY, have = true;
    } else if (s->wholemsg) {
        json_t *copy = json_copy(msg);
        json_object_del(copy, "_session");
        char *t = crm_stringify(copy, 0);
        json_decref(copy);
        if (t) sb_puts(&b, t), have = true;
        free(t);
    } else if (pl) {
        crm_payload_bytes(pl, true, &b);
        have = true;
    }
    if (!bytes) bytes = b.data, nbytes = b.len;
    /* `if (payload)`: an empty string is not sent (an empty Buffer is) */
    if (have && (nbytes || op == WS_OP_BINARY)) {
        json_t *sess = json_object_get(msg, "_session");
        const char *type = json_string_value(json_object_get(sess, "type"));
        const char *id = json_string_value(json_object_get(sess, "id"));
        bool to_one = type && !strcmp(type, "websocket");
        char idb[17];
        size_t il = id ? strnlen(id, sizeof idb - 1) : 0;
        if (il) memcpy(idb, id, il);
        idb[il] = 0;
        if (crm_on_loop_of(w->cfg)) {
            /* the node runs on the config's loop (the same flow): the
             * frame is written now, from the payload's own bytes, where a
             * job would have run later in the same turn, in the same order
             * (every send of this node takes this path) */
            send_frames(s, to_one, idb, op, bytes, nbytes);
        } else {
            send_job *j = malloc(sizeof *j + nbytes + 1);
            j->to_one = to_one;
            memcpy(j->id, idb, il + 1);
            j->op = op;
            j->len = nbytes;
            if (nbytes) memcpy(j->data, bytes, nbytes);
            crm_node_post_ex(w->cfg, do_send, free, j);
        }
    }
    sb_free(&b);
    crm_node_done(n, msg);
    json_decref(msg);
}

const crm_node_type crm_type_websocket_in = {
    .abi = CRM_ABI_VERSION,
    .type = "websocket in",
    .create = wsin_create,
    .close = wsnode_close,
};

const crm_node_type crm_type_websocket_out = {
    .abi = CRM_ABI_VERSION,
    .type = "websocket out",
    .create = wsout_create,
    .input = wsout_input,
    .close = wsnode_close,
};
