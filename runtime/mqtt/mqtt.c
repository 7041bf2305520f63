/* mqtt.c: the MQTT session of mqtt.h on the owner node's loop: a connection
 * (runtime/net/tcpconn.h, TLS on GnuTLS, optionally WebSocket framing),
 * packets from mqtt_codec.h.
 *
 * States: DISCONNECTED -> connect() -> CONNECTING (socket, TLS and
 * WebSocket handshakes, CONNECT sent) -> CONNACK accepted -> CONNECTED. A
 * lost connection or a failed attempt arms the reconnect timer (unless
 * disconnect() was asked for); each attempt reports CONNECTING again, as
 * MQTT.js's "reconnect" event does.
 *
 * Output: packets are appended to one buffer and written at the end of the
 * loop turn (a job posted to the own loop), so a burst of publishes and
 * acks costs one write. Input: whatever one read returns is cut into packets at once.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mqtt.h"
#include "mqtt_codec.h"
#include "net/tcpconn.h"
#include "net/websocket.h"

#define MAX_PACKET (256u << 20)
#define CONNECT_TIMEOUT_MS 30000 /* MQTT.js's connectTimeout */

/* A QoS 1/2 publish of ours: in flight (id given, waiting for its ack) or
 * waiting for room under the server's Receive Maximum. */
enum { OUT_FREE, OUT_PUBACK, OUT_PUBREC, OUT_PUBCOMP };
typedef struct outmsg {
    int state;
    uint16_t id;
    size_t id_off; /* where the packet id sits in pkt */
    unsigned char *pkt;
    size_t len;
} outmsg;

/* A QoS 2 message received, delivered at its PUBREL. */
typedef struct inmsg {
    struct inmsg *next;
    uint16_t id;
    char *topic;
    unsigned char *payload;
    size_t len;
    bool retain;
    json_t *props;
    uint32_t subids[16];
    int nsubids;
} inmsg;

struct crm_mqtt {
    crm_node *owner;
    crm_mqtt_handlers h;
    void *arg;
    /* options */
    char *host, *client_id, *username, *password, *ws_path;
    int port, keepalive, version;
    bool clean, tls_on, verify;
    crm_tls *tls;
    char *will_topic;
    unsigned char *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
    json_t *will_props, *connect_props;
    double reconnect_ms;
    /* connection */
    crm_mqtt_state state;
    bool want;       /* connect() asked for and not disconnect() */
    bool connecting; /* an attempt is under way */
    bool never_up;   /* no CONNACK since connect(): failed attempts are reported (connect_failed) */
    crm_conn *conn;
    bool ws_open;     /* the WebSocket handshake is done */
    strbuf ws_head;   /* the handshake's answer so far */
    char ws_key[25];
    crm_ws_parser wsp;
    strbuf in; /* bytes of a packet not whole yet */
    strbuf out;
    struct flush_token *flush_tok; /* a turn-end write is posted */
    crm_timer *tick, *retry;
    double last_out, ping_sent, attempt_start;
    /* session */
    uint16_t next_id;
    unsigned char *ids; /* bitmap of packet ids in use */
    outmsg *q;          /* in flight first, then waiting; ordered */
    size_t qhead, qlen, qcap;
    size_t qsent;       /* the first qsent entries from qhead have had an id */
    size_t inflight;    /* entries of q with an id */
    unsigned recv_max;  /* the server's Receive Maximum */
    int alias_max;      /* the server's Topic Alias Maximum */
    inmsg *in2;         /* QoS 2 received, waiting for PUBREL */
    char *topic_buf;
    size_t topic_cap;
};

static void start_attempt(crm_mqtt *c);

/* Output ------------------------------------------------------------------ */

static void flush_now(crm_mqtt *c)
{
    if (!c->out.len || !c->conn) return;
    if (c->ws_path) {
        strbuf f = SB_INIT;
        crm_ws_frame(&f, WS_OP_BINARY, c->out.data, c->out.len, true);
        crm_conn_write(c->conn, f.data, f.len);
        sb_free(&f);
    } else
        crm_conn_write(c->conn, c->out.data, c->out.len);
    c->out.len = 0;
    c->last_out = crm_loop_now();
}

/* The turn-end write is a job posted to our own loop (it runs after the
 * jobs of this turn, without a system call, where a zero-delay timer would
 * cost three). The token outlives the client when the job is still
 * pending at crm_mqtt_free: two references, the job's and the client's. */
typedef struct flush_token {
    crm_mqtt *c;
    atomic_int refs;
} flush_token;

static void token_unref(flush_token *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1) free(t);
}

static void flush_job(crm_node *n, void *arg)
{
    (void)n;
    flush_token *t = arg;
    crm_mqtt *c = t->c;
    if (c) {
        c->flush_tok = NULL;
        token_unref(t); /* the client's */
        flush_now(c);
    }
    token_unref(t);
}

static void flush_drop(void *arg) { token_unref(arg); }

/* Called after appending to c->out: written at the end of this turn. */
static void want_flush(crm_mqtt *c)
{
    if (c->flush_tok || !c->conn) return;
    flush_token *t = malloc(sizeof *t);
    t->c = c;
    atomic_init(&t->refs, 2);
    c->flush_tok = t;
    crm_node_post_ex(c->owner, flush_job, flush_drop, t);
}

/* Forgets a pending turn-end write (the job finds no client). */
static void forget_flush(crm_mqtt *c)
{
    if (!c->flush_tok) return;
    c->flush_tok->c = NULL;
    token_unref(c->flush_tok);
    c->flush_tok = NULL;
}

/* Packet ids and the outgoing queue ----------------------------------------- */

static bool id_used(const crm_mqtt *c, uint16_t id) { return c->ids[id >> 3] & (1u << (id & 7)); }
static void id_set(crm_mqtt *c, uint16_t id, bool on)
{
    if (on) c->ids[id >> 3] |= (unsigned char)(1u << (id & 7));
    else c->ids[id >> 3] &= (unsigned char)~(1u << (id & 7));
}

static uint16_t new_id(crm_mqtt *c)
{
    for (int i = 0; i < 65536; i++) {
        uint16_t id = ++c->next_id;
        if (!id) id = c->next_id = 1;
        if (!id_used(c, id)) {
            id_set(c, id, true);
            return id;
        }
    }
    return 0;
}

static void out_free(outmsg *m)
{
    free(m->pkt);
    m->pkt = NULL;
    m->state = OUT_FREE;
}

static void q_push(crm_mqtt *c, outmsg m)
{
    if (c->qhead && c->qhead + c->qlen == c->qcap) { /* slide to the start */
        memmove(c->q, c->q + c->qhead, c->qlen * sizeof *c->q);
        c->qhead = 0;
    }
    if (c->qlen == c->qcap) {
        c->qcap = c->qcap ? c->qcap * 2 : 64;
        c->q = realloc(c->q, c->qcap * sizeof *c->q);
    }
    c->q[c->qhead + c->qlen++] = m;
}

static void q_trim(crm_mqtt *c)
{
    while (c->qlen && c->q[c->qhead].state == OUT_FREE) {
        c->qhead++, c->qlen--;
        if (c->qsent) c->qsent--;
    }
    if (!c->qlen) c->qhead = 0;
}

/* Sends waiting publishes while the server's Receive Maximum allows. */
static void send_waiting(crm_mqtt *c)
{
    if (c->state != CRM_MQTT_CONNECTED) return;
    /* ids are given in order: the waiting ones follow those sent */
    for (size_t i = c->qsent; i < c->qlen && c->inflight < c->recv_max; i++) {
        outmsg *m = &c->q[c->qhead + i];
        c->qsent = i + 1;
        if (m->state == OUT_FREE || m->id) continue;
        m->id = new_id(c);
        m->pkt[m->id_off] = (unsigned char)(m->id >> 8);
        m->pkt[m->id_off + 1] = (unsigned char)m->id;
        c->inflight++;
        sb_putn(&c->out, (const char *)m->pkt, m->len);
        want_flush(c);
    }
}

static outmsg *find_out(crm_mqtt *c, uint16_t id)
{
    for (size_t i = 0; i < c->qlen; i++) {
        outmsg *m = &c->q[c->qhead + i];
        if (m->state != OUT_FREE && m->id == id) return m;
    }
    return NULL;
}

static void out_done(crm_mqtt *c, outmsg *m)
{
    id_set(c, m->id, false);
    out_free(m);
    c->inflight--;
    q_trim(c);
    send_waiting(c);
}

/* Received QoS 2 messages --------------------------------------------------------- */

static void inmsg_free(inmsg *m)
{
    free(m->topic);
    free(m->payload);
    json_decref(m->props);
    free(m);
}

static inmsg *take_in2(crm_mqtt *c, uint16_t id)
{
    for (inmsg **p = &c->in2; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            inmsg *m = *p;
            *p = m->next;
            return m;
        }
    return NULL;
}

/* Connection ---------------------------------------------------------------------- */

static void drop_conn(crm_mqtt *c)
{
    if (c->conn) {
        crm_conn_set_arg(c->conn, NULL);
        crm_conn_destroy(c->conn);
    }
    c->conn = NULL;
    forget_flush(c);
    c->out.len = 0;
    c->in.len = 0;
    c->ws_head.len = 0;
    c->ws_open = false;
    crm_ws_parser_free(&c->wsp);
    c->ping_sent = 0;
    /* the queue's in-flight messages are sent again on the next connection;
     * ids of subscriptions never acknowledged are free again */
    memset(c->ids, 0, 65536 / 8);
    for (size_t i = 0; i < c->qlen; i++)
        if (c->q[c->qhead + i].state != OUT_FREE && c->q[c->qhead + i].id) id_set(c, c->q[c->qhead + i].id, true);
}

static void retry_fired(crm_node *n, void *arg)
{
    (void)n;
    crm_mqtt *c = arg;
    c->retry = NULL;
    if (c->want && c->state != CRM_MQTT_CONNECTED && !c->connecting) start_attempt(c);
}

static void schedule_retry(crm_mqtt *c)
{
    if (!c->want || c->retry) return;
    c->retry = crm_timer_start(c->owner, c->reconnect_ms, 0, retry_fired, c);
}

/* The connection is gone (lost, refused, or closed by us). */
static void connection_gone(crm_mqtt *c, int rc)
{
    bool was_connected = c->state == CRM_MQTT_CONNECTED;
    drop_conn(c);
    c->connecting = false;
    if (was_connected || !c->want) c->state = CRM_MQTT_DISCONNECTED;
    if (was_connected && c->h.state) c->h.state(c->arg, CRM_MQTT_DISCONNECTED, rc);
    if (!was_connected && c->want && c->never_up && c->h.connect_failed) c->h.connect_failed(c->arg);
    schedule_retry(c);
}

static void fail(crm_mqtt *c, int rc, const char *why)
{
    crm_node_log(c->owner, CRM_LOG_DEBUG, "mqtt %s:%d: %s", c->host, c->port, why);
    connection_gone(c, rc);
}

static void send_connect(crm_mqtt *c)
{
    mqtt_connect k = {.version = c->version, .client_id = c->client_id, .keepalive = c->keepalive, .clean = c->clean,
                      .username = c->username, .password = c->password, .props = c->connect_props,
                      .will_topic = c->will_topic, .will_payload = c->will_payload, .will_len = c->will_len,
                      .will_qos = c->will_qos, .will_retain = c->will_retain, .will_props = c->will_props};
    /* MQTT.js sends a password only with a user name */
    if (!k.username && k.password) k.username = "";
    mqtt_enc_connect(&c->out, &k);
    flush_now(c);
}

/* A message for the handler; topic copied to be NUL-terminated. */
static void deliver(crm_mqtt *c, const char *topic, size_t tlen, const unsigned char *payload, size_t len, int qos,
                    bool retain, const json_t *props, const uint32_t *subids, int nsubids)
{
    if (!c->h.message) return;
    if (tlen + 1 > c->topic_cap) {
        c->topic_cap = tlen + 64;
        c->topic_buf = realloc(c->topic_buf, c->topic_cap);
    }
    memcpy(c->topic_buf, topic, tlen);
    c->topic_buf[tlen] = 0;
    crm_mqtt_message m = {.topic = c->topic_buf, .payload = payload, .len = len, .qos = qos, .retain = retain,
                          .props = props, .subids = subids, .nsubids = nsubids};
    c->h.message(c->arg, &m);
}

/* A received PUBLISH's properties as Node-RED's subscriptionHandler copies
 * them: strings only when not empty, user properties repeated under one
 * name as the JSON text of their array (setUserProperties stringifies
 * MQTT.js's array). */
static json_t *publish_props(const unsigned char *p, size_t len, uint32_t *subids, int *nsubids, bool *bad)
{
    json_t *o = mqtt_props_decode(p, len, subids, nsubids, 16, bad);
    if (!o) return NULL;
    static const char *const keep[] = {"responseTopic", "contentType", "reasonString", "correlationData",
                                       "messageExpiryInterval", "payloadFormatIndicator", "userProperties"};
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) ok = ok || !strcmp(k, keep[i]);
        if (!ok || (json_is_string(v) && !json_string_length(v))) json_object_del(o, k);
    }
    json_t *up = json_object_get(o, "userProperties");
    json_object_foreach(up, k, v) {
        if (json_is_array(v)) {
            char *t = crm_stringify(v, 0);
            json_object_set_new(up, k, json_string(t));
            free(t);
        }
    }
    if (!json_object_size(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void on_connack(crm_mqtt *c, const mqtt_packet *p)
{
    bool session;
    int rc;
    const unsigned char *props;
    size_t plen;
    if (mqtt_dec_connack(p, c->version, &session, &rc, &props, &plen) < 0) {
        fail(c, CRM_MQTT_ERR_PROTOCOL, "malformed CONNACK");
        return;
    }
    if (rc != 0) {
        char why[160];
        snprintf(why, sizeof why, "connection refused: %s", mqtt_reason_text(rc));
        fail(c, rc, why);
        return;
    }
    c->recv_max = 65535;
    c->alias_max = 0;
    if (plen) {
        bool bad;
        json_t *o = mqtt_props_decode(props, plen, NULL, NULL, 0, &bad);
        const json_t *v;
        if (crm_is_num(v = json_object_get(o, "receiveMaximum")) && crm_num_value(v) > 0)
            c->recv_max = (unsigned)crm_num_value(v);
        if (crm_is_num(v = json_object_get(o, "serverKeepAlive"))) c->keepalive = (int)crm_num_value(v);
        if (crm_is_num(v = json_object_get(o, "topicAliasMaximum"))) c->alias_max = (int)crm_num_value(v);
        json_decref(o);
    }
    c->connecting = false;
    c->state = CRM_MQTT_CONNECTED;
    /* what was in flight goes again (DUP), then what waited */
    size_t n = 0;
    for (size_t i = 0; i < c->qlen; i++) {
        outmsg *m = &c->q[c->qhead + i];
        if (m->state == OUT_FREE || !m->id) continue;
        if (m->state == OUT_PUBCOMP) mqtt_enc_ack(&c->out, MQTT_PUBREL, m->id);
        else {
            m->pkt[0] |= 0x08;
            sb_putn(&c->out, (const char *)m->pkt, m->len);
        }
        n++;
    }
    if (n) want_flush(c);
    c->never_up = false;
    if (c->h.state) c->h.state(c->arg, CRM_MQTT_CONNECTED, 0);
    send_waiting(c);
}

static void on_publish(crm_mqtt *c, const mqtt_packet *p)
{
    mqtt_publish m;
    if (mqtt_dec_publish(p, c->version, &m) < 0) {
        fail(c, CRM_MQTT_ERR_PROTOCOL, "malformed PUBLISH");
        return;
    }
    uint32_t subids[16];
    int nsubids = 0;
    bool bad = false;
    json_t *props = m.plen ? publish_props(m.props, m.plen, subids, &nsubids, &bad) : NULL;
    if (bad) {
        fail(c, CRM_MQTT_ERR_PROTOCOL, "malformed PUBLISH properties");
        return;
    }
    if (m.qos == 2) {
        inmsg *old = take_in2(c, m.id);
        if (old) inmsg_free(old); /* sent again (DUP): the newer copy counts */
        inmsg *q = calloc(1, sizeof *q);
        q->id = m.id;
        q->topic = strndup(m.topic, m.tlen);
        q->payload = malloc(m.len ? m.len : 1);
        memcpy(q->payload, m.payload, m.len);
        q->len = m.len;
        q->retain = m.retain;
        q->props = props;
        memcpy(q->subids, subids, sizeof subids);
        q->nsubids = nsubids;
        q->next = c->in2;
        c->in2 = q;
        mqtt_enc_ack(&c->out, MQTT_PUBREC, m.id);
        want_flush(c);
        return;
    }
    deliver(c, m.topic, m.tlen, m.payload, m.len, m.qos, m.retain, props, subids, nsubids);
    json_decref(props);
    if (m.qos == 1 && c->conn) {
        mqtt_enc_ack(&c->out, MQTT_PUBACK, m.id);
        want_flush(c);
    }
}

static void on_packet(crm_mqtt *c, const mqtt_packet *p)
{
    uint16_t id;
    int reason;
    if (c->state != CRM_MQTT_CONNECTED && p->type != MQTT_CONNACK) {
        fail(c, CRM_MQTT_ERR_PROTOCOL, "packet before CONNACK");
        return;
    }
    switch (p->type) {
    case MQTT_CONNACK: on_connack(c, p); break;
    case MQTT_PUBLISH: on_publish(c, p); break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP: {
        if (mqtt_dec_ack(p, c->version, &id, &reason) < 0) break;
        outmsg *m = find_out(c, id);
        if (p->type == MQTT_PUBREC) {
            if (m && m->state == OUT_PUBREC && reason < 0x80) {
                m->state = OUT_PUBCOMP;
                free(m->pkt); /* PUBREL from now on */
                m->pkt = NULL;
            } else if (m && reason >= 0x80) {
                out_done(c, m);
                break;
            }
            mqtt_enc_ack(&c->out, MQTT_PUBREL, id);
            want_flush(c);
        } else if (m && (p->type == MQTT_PUBACK ? m->state == OUT_PUBACK : m->state == OUT_PUBCOMP))
            out_done(c, m);
        break;
    }
    case MQTT_PUBREL: {
        if (mqtt_dec_ack(p, c->version, &id, &reason) < 0) break;
        inmsg *m = take_in2(c, id);
        if (m) {
            deliver(c, m->topic, strlen(m->topic), m->payload, m->len, 2, m->retain, m->props, m->subids, m->nsubids);
            inmsg_free(m);
        }
        if (c->conn) {
            mqtt_enc_ack(&c->out, MQTT_PUBCOMP, id);
            want_flush(c);
        }
        break;
    }
    case MQTT_SUBACK:
        if (mqtt_dec_ack(p, c->version, &id, &reason) == 0) id_set(c, id, false);
        break;
    case MQTT_UNSUBACK:
        if (mqtt_dec_ack(p, c->version, &id, &reason) == 0) id_set(c, id, false);
        break;
    case MQTT_PINGRESP: c->ping_sent = 0; break;
    case MQTT_DISCONNECT: {
        mqtt_dec_disconnect(p, &reason);
        char why[160];
        snprintf(why, sizeof why, "disconnected by the server: %s", mqtt_reason_text(reason));
        fail(c, reason ? reason : CRM_MQTT_ERR_LOST, why);
        break;
    }
    default: fail(c, CRM_MQTT_ERR_PROTOCOL, "unexpected packet"); break;
    }
}

/* MQTT bytes received: every whole packet handled, the rest kept. */
static void mqtt_bytes(crm_mqtt *c, const unsigned char *data, size_t len)
{
    crm_conn *conn = c->conn;
    const unsigned char *p = data;
    size_t n = len;
    if (c->in.len) {
        sb_putn(&c->in, (const char *)data, len);
        p = (const unsigned char *)c->in.data;
        n = c->in.len;
    }
    size_t off = 0;
    bool any = false;
    while (c->conn == conn) {
        mqtt_packet pk;
        long k = mqtt_frame(p + off, n - off, MAX_PACKET, &pk);
        if (k < 0) {
            fail(c, CRM_MQTT_ERR_PROTOCOL, "malformed packet");
            break;
        }
        if (k == 0) break;
        off += (size_t)k;
        on_packet(c, &pk);
        any = true;
    }
    if (c->conn == conn) {
        if (c->in.len) {
            memmove(c->in.data, c->in.data + off, c->in.len - off);
            c->in.len -= off;
        } else if (off < n)
            sb_putn(&c->in, (const char *)p + off, n - off);
    }
    if (any && c->h.burst_end) c->h.burst_end(c->arg);
}

/* WebSocket ------------------------------------------------------------------------ */

static void ws_bytes(crm_mqtt *c, const unsigned char *data, size_t len)
{
    crm_conn *conn = c->conn;
    if (!c->ws_open) {
        sb_putn(&c->ws_head, (const char *)data, len);
        char *end = memmem(c->ws_head.data, c->ws_head.len, "\r\n\r\n", 4);
        if (!end) {
            if (c->ws_head.len > 65536) fail(c, CRM_MQTT_ERR_PROTOCOL, "WebSocket handshake too long");
            return;
        }
        size_t hl = (size_t)(end - c->ws_head.data) + 4;
        char want[29];
        crm_ws_accept_key(c->ws_key, want);
        bool ok = c->ws_head.len > 12 && !strncmp(c->ws_head.data, "HTTP/1.1 101", 12);
        bool accepted = false;
        for (char *l = memchr(c->ws_head.data, '\n', hl); ok && l && l < end; l = memchr(l + 1, '\n', (size_t)(end - l))) {
            if (!strncasecmp(l + 1, "Sec-WebSocket-Accept:", 21)) {
                const char *v = l + 22;
                while (*v == ' ') v++;
                accepted = !strncmp(v, want, 28);
            }
        }
        if (!ok || !accepted) {
            int st = c->ws_head.len > 12 ? atoi(c->ws_head.data + 9) : 0;
            char why[96];
            snprintf(why, sizeof why, "WebSocket handshake refused (HTTP %d)", st);
            fail(c, CRM_MQTT_ERR_PROTOCOL, why);
            return;
        }
        c->ws_open = true;
        crm_ws_parser_init(&c->wsp, false, MAX_PACKET);
        size_t rest = c->ws_head.len - hl;
        if (rest) crm_ws_feed(&c->wsp, c->ws_head.data + hl, rest);
        c->ws_head.len = 0;
        send_connect(c);
    } else
        crm_ws_feed(&c->wsp, data, len);
    for (;;) {
        const unsigned char *d;
        size_t dl;
        int code;
        crm_ws_event ev = crm_ws_next(&c->wsp, &d, &dl, &code);
        if (ev == WS_NONE) break;
        if (ev == WS_BINARY || ev == WS_TEXT) mqtt_bytes(c, d, dl);
        else if (ev == WS_PING) {
            strbuf f = SB_INIT;
            crm_ws_frame(&f, WS_OP_PONG, d, dl, true);
            crm_conn_write(c->conn, f.data, f.len);
            sb_free(&f);
        } else if (ev == WS_CLOSE || ev == WS_ERROR) {
            fail(c, CRM_MQTT_ERR_LOST, ev == WS_CLOSE ? "WebSocket closed" : "WebSocket protocol error");
        }
        if (c->conn != conn) break;
    }
}

/* The connection's callbacks ------------------------------------------------------------ */

static void cb_connect(crm_conn *conn, void *arg)
{
    crm_mqtt *c = arg;
    if (!c || c->conn != conn) return;
    if (c->ws_path) {
        crm_ws_new_key(c->ws_key);
        strbuf r = SB_INIT;
        bool v6 = strchr(c->host, ':') != NULL;
        sb_printf(&r,
                  "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                  *c->ws_path ? c->ws_path : "/", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port, c->ws_key,
                  c->version == 3 ? "mqttv3.1" : "mqtt");
        crm_conn_write(conn, r.data, r.len);
        sb_free(&r);
        return;
    }
    send_connect(c);
}

static void cb_data(crm_conn *conn, const unsigned char *data, size_t len, void *arg)
{
    crm_mqtt *c = arg;
    if (!c || c->conn != conn) return;
    if (c->ws_path) ws_bytes(c, data, len);
    else mqtt_bytes(c, data, len);
}

static void cb_close(crm_conn *conn, int err, void *arg)
{
    crm_mqtt *c = arg;
    if (!c || c->conn != conn) return;
    c->conn = NULL; /* freed by tcpconn after this */
    const char *tls = crm_conn_error(conn);
    fail(c, CRM_MQTT_ERR_LOST, tls ? tls : err ? strerror(err) : "connection closed");
}

static void tick(crm_node *n, void *arg)
{
    (void)n;
    crm_mqtt *c = arg;
    double now = crm_loop_now();
    if (c->connecting && c->conn && now - c->attempt_start > CONNECT_TIMEOUT_MS) {
        fail(c, CRM_MQTT_ERR_LOST, "connack timeout");
        return;
    }
    if (c->state != CRM_MQTT_CONNECTED || c->keepalive <= 0) return;
    double ka = c->keepalive * 1000.0;
    if (c->ping_sent && now - c->ping_sent >= ka) {
        fail(c, CRM_MQTT_ERR_KEEPALIVE, "Keepalive timeout");
        return;
    }
    if (!c->ping_sent && now - c->last_out >= ka - 500) {
        mqtt_enc_simple(&c->out, MQTT_PINGREQ);
        flush_now(c);
        c->ping_sent = now;
    }
}

static void start_attempt(crm_mqtt *c)
{
    crm_timer_cancel(c->retry);
    c->retry = NULL;
    drop_conn(c);
    c->connecting = true;
    c->state = CRM_MQTT_CONNECTING;
    c->attempt_start = crm_loop_now();
    if (c->h.state) c->h.state(c->arg, CRM_MQTT_CONNECTING, 0);
    if (c->state != CRM_MQTT_CONNECTING || !c->want) return;
    crm_conn_cbs cbs = {.on_connect = cb_connect, .on_data = cb_data, .on_close = cb_close};
    c->conn = crm_conn_connect(c->owner, c->host, c->port, &cbs, c);
    if (!c->conn) {
        c->connecting = false;
        if (c->never_up && c->h.connect_failed) c->h.connect_failed(c->arg);
        schedule_retry(c);
        return;
    }
    if (c->tls_on && c->tls) crm_conn_start_tls(c->conn, c->tls, c->host, c->verify);
}

/* Public ------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

crm_mqtt *crm_mqtt_new(crm_node *owner, const crm_mqtt_options *o, const crm_mqtt_handlers *h, void *arg, char **err)
{
    *err = NULL;
    crm_mqtt *c = calloc(1, sizeof *c);
    c->owner = owner;
    c->h = *h;
    c->arg = arg;
    c->host = strdup(o->host && *o->host ? o->host : "localhost");
    c->port = o->port > 0 ? o->port : o->ws_path ? (o->tls ? 443 : 80) : o->tls ? 8883 : 1883;
    c->client_id = strdup(o->client_id ? o->client_id : "");
    c->keepalive = o->keepalive;
    c->version = o->version == 3 || o->version == 5 ? o->version : 4;
    c->clean = o->clean;
    c->username = dup_or_null(o->username);
    c->password = dup_or_null(o->password);
    c->ws_path = dup_or_null(o->ws_path);
    c->reconnect_ms = o->reconnect_ms > 0 ? o->reconnect_ms : 5000;
    if (o->will_topic) {
        c->will_topic = strdup(o->will_topic);
        c->will_payload = malloc(o->will_len ? o->will_len : 1);
        if (o->will_len) memcpy(c->will_payload, o->will_payload, o->will_len);
        c->will_len = o->will_len;
        c->will_qos = o->will_qos;
        c->will_retain = o->will_retain;
        c->will_props = o->will_props ? json_deep_copy(o->will_props) : NULL;
    }
    c->connect_props = o->connect_props ? json_deep_copy(o->connect_props) : NULL;
    c->ids = calloc(65536 / 8, 1);
    c->recv_max = 65535;
    c->tls_on = o->tls;
    c->verify = o->verify;
    if (o->tls) {
        crm_tls_options none = {.verify = o->verify};
        c->tls = crm_tls_new(o->tls_opts ? o->tls_opts : &none, false, err);
        if (!c->tls) {
            char *e = *err;
            if (asprintf(err, "TLS setup failed: %s", e ? e : "?") < 0) *err = NULL;
            free(e);
            crm_mqtt_free(c, 0);
            return NULL;
        }
    }
    return c;
}

void crm_mqtt_connect(crm_mqtt *c)
{
    if (c->state == CRM_MQTT_CONNECTED || c->connecting) return;
    c->want = true;
    c->never_up = true;
    if (!c->tick) c->tick = crm_timer_start(c->owner, 1000, 1000, tick, c);
    start_attempt(c);
}

void crm_mqtt_disconnect(crm_mqtt *c)
{
    c->want = false;
    crm_timer_cancel(c->retry);
    c->retry = NULL;
    bool was = c->state == CRM_MQTT_CONNECTED;
    if (c->conn && was) {
        mqtt_enc_simple(&c->out, MQTT_DISCONNECT);
        flush_now(c);
        crm_conn_set_arg(c->conn, NULL);
        crm_conn_end(c->conn); /* closes once written */
        c->conn = NULL;
    }
    drop_conn(c);
    c->connecting = false;
    c->state = CRM_MQTT_DISCONNECTED;
    if (was && c->h.state) c->h.state(c->arg, CRM_MQTT_DISCONNECTED, 0);
}

crm_mqtt_state crm_mqtt_get_state(const crm_mqtt *c) { return c->state; }
bool crm_mqtt_v5(const crm_mqtt *c) { return c->version == 5; }
int crm_mqtt_topic_alias_max(const crm_mqtt *c) { return c->version == 5 ? c->alias_max : 0; }

const char *crm_mqtt_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case CRM_MQTT_ERR_NO_CONN: return "not connected";
    case CRM_MQTT_ERR_INVAL: return "invalid arguments";
    case CRM_MQTT_ERR_LOST: return "connection lost";
    case CRM_MQTT_ERR_PROTOCOL: return "protocol error";
    case CRM_MQTT_ERR_KEEPALIVE: return "keepalive timeout";
    default: return mqtt_reason_text(rc);
    }
}

int crm_mqtt_publish(crm_mqtt *c, const char *topic, const void *payload, size_t len, int qos, bool retain,
                     const json_t *props)
{
    if (c->state != CRM_MQTT_CONNECTED) return CRM_MQTT_ERR_NO_CONN;
    size_t tlen = strlen(topic);
    if (qos < 0 || qos > 2 || tlen > 65535 || (!tlen && !(c->version == 5 && json_object_get(props, "topicAlias"))))
        return CRM_MQTT_ERR_INVAL;
    strbuf pb = SB_INIT;
    if (c->version == 5 && props) mqtt_props_encode(&pb, props, MQTT_PROPS_PUBLISH);
    if (!qos) {
        mqtt_enc_publish(&c->out, c->version, topic, tlen, payload, len, 0, retain, false, 0, &pb);
        sb_free(&pb);
        want_flush(c);
        return 0;
    }
    strbuf b = SB_INIT;
    sb_reserve(&b, 5 + 2 + tlen + 2 + pb.len + 1 + len); /* the packet in one allocation */
    mqtt_enc_publish(&b, c->version, topic, tlen, payload, len, qos, retain, false, 0, &pb);
    sb_free(&pb);
    size_t hl = 1;
    while ((unsigned char)b.data[hl] & 0x80) hl++;
    outmsg m = {.state = qos == 1 ? OUT_PUBACK : OUT_PUBREC, .id_off = hl + 1 + 2 + tlen,
                .pkt = (unsigned char *)b.data, .len = b.len};
    q_push(c, m);
    send_waiting(c);
    return 0;
}

int crm_mqtt_subscribe(crm_mqtt *c, const char *filter, int qos, bool nl, bool rap, int rh, uint32_t subid)
{
    if (c->state != CRM_MQTT_CONNECTED) return CRM_MQTT_ERR_NO_CONN;
    if (qos < 0 || qos > 2 || strlen(filter) > 65535) return CRM_MQTT_ERR_INVAL;
    int opts = qos | (nl ? 4 : 0) | (rap ? 8 : 0) | ((rh & 3) << 4);
    mqtt_enc_subscribe(&c->out, c->version, new_id(c), filter, opts, c->version == 5 ? subid : 0);
    want_flush(c);
    return 0;
}

int crm_mqtt_unsubscribe(crm_mqtt *c, const char *filter)
{
    if (c->state != CRM_MQTT_CONNECTED) return CRM_MQTT_ERR_NO_CONN;
    mqtt_enc_unsubscribe(&c->out, c->version, new_id(c), filter);
    want_flush(c);
    return 0;
}

void crm_mqtt_free(crm_mqtt *c, double wait_ms)
{
    if (!c) return;
    (void)wait_ms; /* what is queued is handed to the kernel now, DISCONNECT last */
    c->want = false;
    if (c->conn && c->state == CRM_MQTT_CONNECTED) {
        mqtt_enc_simple(&c->out, MQTT_DISCONNECT);
        flush_now(c);
    }
    if (c->conn) crm_conn_free(c->conn);
    c->conn = NULL;
    forget_flush(c);
    crm_timer_cancel(c->retry);
    crm_timer_cancel(c->tick);
    crm_ws_parser_free(&c->wsp);
    sb_free(&c->ws_head);
    sb_free(&c->in);
    sb_free(&c->out);
    for (size_t i = 0; i < c->qlen; i++) free(c->q[c->qhead + i].pkt);
    free(c->q);
    for (inmsg *m = c->in2, *next; m; m = next) {
        next = m->next;
        inmsg_free(m);
    }
    crm_tls_unref(c->tls);
    free(c->ids);
    free(c->topic_buf);
    free(c->host);
    free(c->client_id);
    free(c->username);
    free(c->password);
    free(c->ws_path);
    free(c->will_topic);
    free(c->will_payload);
    json_decref(c->will_props);
    json_decref(c->connect_props);
    free(c);
}

/* Topics ------------------------------------------------------------------------------ */

/* Node-RED turns a filter into a regular expression: + is [^/]+ (one or
 * more characters), a trailing /# is (/.*)?, anything else is literal. */
static bool match_from(const char *f, const char *t)
{
    for (;;) {
        if (f[0] == '/' && f[1] == '#' && !f[2]) return !*t || *t == '/';
        if (!*f) return !*t;
        if (*f == '+') {
            if (!*t || *t == '/') return false;
            f++, t++;
            for (;;) {
                if (match_from(f, t)) return true;
                if (!*t || *t == '/') return false;
                t++;
            }
        }
        if (*f != *t) return false;
        f++, t++;
    }
}

bool crm_mqtt_topic_match(const char *filter, const char *topic)
{
    if (!strcmp(filter, "#")) return true;
    if (!strncmp(filter, "$share/", 7)) {
        const char *p = filter + 7;
        size_t n = strcspn(p, "#+/");
        if (n && p[n] == '/') filter = p + n + 1;
    }
    return match_from(filter, topic);
}

bool crm_mqtt_valid_filter(const char *f)
{
    if (!strcmp(f, "#")) return true;
    for (;;) {
        size_t n = strcspn(f, "/");
        bool last = !f[n];
        if (!(n == 1 && (*f == '+' || (last && *f == '#'))))
            for (size_t i = 0; i < n; i++)
                if (f[i] == '+' || f[i] == '#') return false;
        if (last) return true;
        f += n + 1;
    }
}

bool crm_mqtt_valid_topic(const char *t)
{
    if (!*t) return false;
    return !strpbrk(t, "+#\b\f\n\r\t\v");
}
