/* comms.c: the editor's /comms WebSocket (comms.h). One thread per
 * runtime does the I/O of every connection with poll(): an eventfd wakes
 * it when something is published or a connection arrives. Messages are
 * turned into JSON text once, when published, and queued per connection as
 * text; the thread sends each connection's queue as one array (at most 50
 * items a frame, as Node-RED's CommsConnection). A client that reads
 * nothing while more than 16 MB wait for it is dropped. */
#include "comms.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin_auth.h"
#include "engine.h"
#include "httpd.h"
#include "net/websocket.h"
#include "net/ws_server.h"

#define MAX_QUEUED (16u << 20)
#define BATCH 50
#define SEND_DELAY 50 /* ms: what is published meanwhile goes in the same array, as Node-RED's _queueSend */

typedef struct conn {
    int fd;
    void *urh;       /* https: libmicrohttpd's handle, released when fd closes */
    crm_runtime *rt;
    crm_ws_parser p;
    strbuf out;      /* frames not yet written */
    json_t *stack;   /* items (JSON text strings) not yet framed */
    size_t queued;   /* bytes in stack */
    double due;      /* when the stack is sent (50 ms after its first item), 0: empty */
    bool pending_auth, active, closing;
    struct conn *next;
} conn;

struct crm_comms {
    crm_runtime *rt;
    char *path;
    pthread_mutex_t mu;
    conn *conns;
    json_t *retained; /* topic -> item text */
    int efd;
    pthread_t thread;
    bool stop;
    double keepalive, started_wall;
    atomic_ulong status_gen; /* bumped after each retained node status (crm_comms_status) */
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void wake(crm_comms *c)
{
    uint64_t one = 1;
    if (write(c->efd, &one, sizeof one) < 0) { /* already signalled */ }
}

/* Called with mu held. */
static void enqueue(conn *k, const char *item)
{
    if (k->closing) return;
    size_t len = strlen(item);
    if (k->queued + k->out.len + len > MAX_QUEUED) {
        k->closing = true;
        return;
    }
    if (!json_array_size(k->stack)) k->due = mono_ms() + SEND_DELAY;
    json_array_append_new(k->stack, json_string(item));
    k->queued += len;
}

static char *item_text(const char *topic, const json_t *data)
{
    json_t *it = json_pack("{s:s,s:O}", "topic", topic, "data", data);
    char *t = crm_stringify(it, 0);
    json_decref(it);
    return t;
}

void crm_comms_publish(crm_comms *c, const char *topic, json_t *data, bool retain)
{
    if (!c) {
        json_decref(data);
        return;
    }
    char *t = data ? item_text(topic, data) : NULL;
    pthread_mutex_lock(&c->mu);
    if (retain && t) json_object_set_new(c->retained, topic, json_string(t));
    else json_object_del(c->retained, topic);
    bool any = false;
    if (t)
        for (conn *k = c->conns; k; k = k->next)
            if (k->active) {
                enqueue(k, t);
                any = true;
            }
    pthread_mutex_unlock(&c->mu);
    if (any) wake(c);
    free(t);
    json_decref(data);
}

/* Node-RED's subscribe: the topic as a regular expression where + is one
 * level and a trailing /# any number of levels (none included). */
static bool topic_matches(const char *pat, const char *topic)
{
    while (*pat) {
        if (!strcmp(pat, "/#")) return *topic == 0 || *topic == '/';
        if (*pat == '+') {
            size_t n = strcspn(topic, "/");
            if (!n) return false;
            topic += n;
            pat++;
            continue;
        }
        if (*pat != *topic) return false;
        pat++;
        topic++;
    }
    return *topic == 0;
}

/* Connections (comms thread) ------------------------------------------------------ */

static void send_text(conn *k, const char *text)
{
    crm_ws_frame(&k->out, WS_OP_TEXT, text, strlen(text), false);
}

static bool authorised(crm_comms *c, const char *token)
{
    json_t *h = json_object();
    if (token) {
        strbuf b = SB_INIT;
        sb_printf(&b, "Bearer %s", token);
        json_object_set_new(h, "authorization", json_string(b.data));
        sb_free(&b);
    }
    crm_admin_reply r = {0};
    bool ok = crm_admin_auth_allow(c->rt->admin_auth, h, "status.read", &r);
    free(r.body);
    json_decref(h);
    return ok;
}

static void activate(crm_comms *c, conn *k)
{
    pthread_mutex_lock(&c->mu);
    k->pending_auth = false;
    k->active = true;
    pthread_mutex_unlock(&c->mu);
}

static void subscribe(crm_comms *c, conn *k, const char *pat)
{
    pthread_mutex_lock(&c->mu);
    const char *topic;
    json_t *v;
    json_object_foreach(c->retained, topic, v) if (topic_matches(pat, topic)) enqueue(k, json_string_value(v));
    pthread_mutex_unlock(&c->mu);
}

static void on_text(crm_comms *c, conn *k, const char *data, size_t len)
{
    json_t *m = crm_parse(data, len, NULL, 0);
    if (!json_is_object(m)) { /* malformed: ignored, as Node-RED */
        json_decref(m);
        return;
    }
    json_t *auth = json_object_get(m, "auth");
    const char *sub = json_string_value(json_object_get(m, "subscribe"));
    if (crm_truthy(auth)) {
        if (json_is_string(auth) && authorised(c, json_string_value(auth))) {
            activate(c, k);
            send_text(k, "{\"auth\":\"ok\"}");
        } else {
            send_text(k, "{\"auth\":\"fail\"}");
            k->closing = true;
        }
    } else if (k->pending_auth) {
        /* the anonymous user of adminAuth.default, if it may read status */
        if (authorised(c, NULL)) {
            activate(c, k);
            if (sub) subscribe(c, k, sub);
        } else {
            send_text(k, "{\"auth\":\"fail\"}");
            k->closing = true;
        }
    } else if (sub) {
        subscribe(c, k, sub);
    }
    json_decref(m);
}

static void read_conn(crm_comms *c, conn *k)
{
    char buf[16384];
    ssize_t r = recv(k->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        k->closing = true;
        sb_free(&k->out); /* nobody to write to */
        return;
    }
    if (r < 0) return;
    crm_ws_feed(&k->p, buf, (size_t)r);
    for (;;) {
        const unsigned char *d;
        size_t len;
        int code;
        crm_ws_event ev = crm_ws_next(&k->p, &d, &len, &code);
        if (ev == WS_NONE) break;
        if (ev == WS_TEXT) on_text(c, k, (const char *)d, len);
        else if (ev == WS_PING) crm_ws_frame(&k->out, WS_OP_PONG, d, len, false);
        else if (ev == WS_CLOSE || ev == WS_ERROR) {
            unsigned char cc[2] = {(unsigned char)(code >> 8), (unsigned char)code};
            crm_ws_frame(&k->out, WS_OP_CLOSE, cc, ev == WS_CLOSE && code == 1005 ? 0 : 2, false);
            k->closing = true;
            break;
        }
    }
}

/* Frames what waits once due (mu held). */
static void frame_stack(conn *k, double now)
{
    if (!json_array_size(k->stack) || now < k->due) return;
    k->due = 0;
    while (json_array_size(k->stack)) {
        strbuf b = SB_INIT;
        sb_putc(&b, '[');
        size_t n = json_array_size(k->stack) < BATCH ? json_array_size(k->stack) : BATCH;
        for (size_t i = 0; i < n; i++) {
            if (i) sb_putc(&b, ',');
            const char *t = json_string_value(json_array_get(k->stack, i));
            sb_puts(&b, t);
            k->queued -= strlen(t);
        }
        sb_putc(&b, ']');
        crm_ws_frame(&k->out, WS_OP_TEXT, b.data, b.len, false);
        sb_free(&b);
        json_t *rest = json_array();
        for (size_t i = n; i < json_array_size(k->stack); i++) json_array_append(rest, json_array_get(k->stack, i));
        json_decref(k->stack);
        k->stack = rest;
    }
}

static void write_conn(conn *k)
{
    while (k->out.len) {
        ssize_t w = send(k->fd, k->out.data, k->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                k->closing = true;
                sb_free(&k->out);
            }
            return;
        }
        memmove(k->out.data, k->out.data + w, k->out.len - (size_t)w);
        k->out.len -= (size_t)w;
    }
}

/* release: not when comms goes with the runtime, after the HTTP server
 * stopped (it closed its upgraded connections, and their handles went) */
static void conn_free(conn *k, bool release)
{
    close(k->fd);
    if (release) crm_ws_socket_release(k->rt, k->urh);
    crm_ws_parser_free(&k->p);
    sb_free(&k->out);
    json_decref(k->stack);
    free(k);
}

static void *comms_thread(void *arg)
{
    crm_comms *c = arg;
    double next_hb = mono_ms() + c->keepalive;
    struct pollfd *pf = NULL;
    conn **ks = NULL;
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->stop) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        double now = mono_ms();
        if (now >= next_hb) {
            /* Node-RED sends "hb" with the time the comms started */
            json_t *d = json_real(c->started_wall);
            char *item = item_text("hb", d);
            json_decref(d);
            for (conn *k = c->conns; k; k = k->next)
                if (k->active) enqueue(k, item);
            free(item);
            next_hb = now + c->keepalive;
        }
        /* drop closed connections whose last frames went out */
        for (conn **pp = &c->conns; *pp;) {
            conn *k = *pp;
            frame_stack(k, now);
            if (k->closing && !k->out.len) {
                *pp = k->next;
                conn_free(k, true);
            } else {
                pp = &k->next;
            }
        }
        size_t n = 1;
        double wake_at = next_hb;
        for (conn *k = c->conns; k; k = k->next) {
            n++;
            if (k->due && k->due < wake_at) wake_at = k->due;
        }
        if (n > cap) {
            cap = n * 2;
            pf = realloc(pf, cap * sizeof *pf);
            ks = realloc(ks, cap * sizeof *ks);
        }
        pf[0] = (struct pollfd){c->efd, POLLIN, 0};
        size_t i = 1;
        for (conn *k = c->conns; k; k = k->next, i++) {
            ks[i] = k;
            pf[i] = (struct pollfd){k->fd, (short)((k->closing ? 0 : POLLIN) | (k->out.len ? POLLOUT : 0)), 0};
        }
        pthread_mutex_unlock(&c->mu);
        int timeout = (int)(wake_at - now) + 1;
        if (poll(pf, n, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR) break;
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            if (read(c->efd, &v, sizeof v) < 0) { /* nothing */ }
        }
        /* only this thread removes connections: ks stays valid */
        for (i = 1; i < n; i++) {
            conn *k = ks[i];
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (pf[i].revents & POLLIN) read_conn(c, k);
                else {
                    k->closing = true;
                    sb_free(&k->out);
                }
            }
            pthread_mutex_lock(&c->mu);
            frame_stack(k, mono_ms());
            pthread_mutex_unlock(&c->mu);
            if (k->out.len) write_conn(k);
        }
    }
    free(pf);
    free(ks);
    return NULL;
}

/* A handshake finished (an HTTP server thread). */
static void on_socket(void *ctx, crm_ws_socket *s)
{
    crm_comms *c = ctx;
    conn *k = calloc(1, sizeof *k);
    k->fd = s->fd;
    k->urh = s->urh;
    k->rt = c->rt;
    crm_ws_parser_init(&k->p, true, 1u << 20);
    if (s->extra_len) crm_ws_feed(&k->p, s->extra, s->extra_len);
    free(s);
    k->stack = json_array();
    k->pending_auth = c->rt->admin_auth != NULL;
    k->active = !k->pending_auth;
    pthread_mutex_lock(&c->mu);
    k->next = c->conns;
    c->conns = k;
    pthread_mutex_unlock(&c->mu);
    wake(c);
}

crm_comms *crm_comms_start(crm_runtime *rt)
{
    if (!rt->httpd || crm_truthy(json_object_get(rt->settings, "disableEditor"))) return NULL;
    const char *root = crm_httpd_admin_root(rt->httpd);
    if (!root) return NULL;
    crm_comms *c = calloc(1, sizeof *c);
    c->rt = rt;
    strbuf p = SB_INIT;
    sb_printf(&p, "%s%scomms", root, root[strlen(root) - 1] == '/' ? "" : "/");
    c->path = p.data;
    pthread_mutex_init(&c->mu, NULL);
    c->retained = json_object();
    atomic_init(&c->status_gen, 1); /* a node's 0 is "unknown" */
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->keepalive = crm_cfg_num(rt->settings, "webSocketKeepAliveTime", 15000);
    if (c->keepalive < 10) c->keepalive = 10;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->started_wall = floor(ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
    if (c->efd < 0 || pthread_create(&c->thread, NULL, comms_thread, c) != 0) {
        if (c->efd >= 0) close(c->efd);
        json_decref(c->retained);
        free(c->path);
        free(c);
        return NULL;
    }
    if (crm_ws_listen_raw(c->path, on_socket, c) < 0)
        /* another runtime of this process (the test runner) has it */
        crm_log(rt, CRM_LOG_DEBUG, NULL, "%s: another listener has this path: the editor's comms are off", c->path);
    return c;
}

void crm_comms_free(crm_comms *c)
{
    if (!c) return;
    crm_ws_unlisten_raw(c->path, c);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    wake(c);
    pthread_join(c->thread, NULL);
    while (c->conns) {
        conn *k = c->conns;
        c->conns = k->next;
        conn_free(k, false);
    }
    close(c->efd);
    json_decref(c->retained);
    pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}

/* For nodes ---------------------------------------------------------------------------- */

bool crm_comms_wanted(crm_node *n)
{
    crm_comms *c = n->rt->comms;
    if (!c) return false;
    pthread_mutex_lock(&c->mu);
    bool any = c->conns != NULL;
    pthread_mutex_unlock(&c->mu);
    return any;
}

/* The flow path Node-RED gives a node: the tab id, and for a node inside a
 * subflow instance the parent's path, "/", the instance's id. */
static void flow_path(const crm_flow *f, strbuf *out)
{
    if (!f) return;
    if (f->is_subflow && f->parent) {
        flow_path(f->parent, out);
        sb_putc(out, '/');
        sb_puts(out, f->instance && f->instance->alias ? f->instance->alias : f->instance ? f->instance->id : f->id);
    } else {
        sb_puts(out, f->id);
    }
}

/* data.code and data.cause (as cause + "") of an encoded Error, from
 * where the error keeps them. */
static void error_code_cause(json_t *data, json_t *code, const json_t *cause)
{
    if (code) json_object_set(data, "code", code);
    if (cause) {
        char *t = crm_to_string(cause);
        json_object_set_new(data, "cause", json_string(t ? t : ""));
        free(t);
    }
}

/* The JSON.stringify replacer of RED.util.encodeObject, as a copy. */
/* encodeObject's form of an Error (a function node's, value.h):
 * {__enc__, type: "error", data: {name, message, code, cause, stack}}. */
static json_t *error_enc(const json_t *v)
{
    json_t *part = crm_error_part(v), *data = json_object();
    json_t *name = json_object_get(v, "name"), *message = json_object_get(v, "message");
    if (!name) name = json_object_get(part, "name");
    if (name) json_object_set(data, "name", name);
    if (!message) message = json_object_get(part, "message");
    if (message) {
        json_object_set(data, "message", message);
    } else {
        char *t = crm_to_string(v);
        json_object_set_new(data, "message", json_string(t ? t : ""));
        free(t);
    }
    error_code_cause(data, json_object_get(v, "code"), json_object_get(part, "cause"));
    json_t *stack = json_object_get(part, "stack");
    if (stack) json_object_set(data, "stack", stack);
    return json_pack("{s:b,s:s,s:o}", "__enc__", 1, "type", "error", "data", data);
}

static json_t *enc(const json_t *v, const char *key, size_t max)
{
    if (key && (!strcmp(key, "_req") || !strcmp(key, "_res")))
        return json_pack("{s:b,s:s}", "__enc__", 1, "type", "internal");
    if (crm_is_handle(v)) return json_pack("{s:b,s:s}", "__enc__", 1, "type", "internal");
    if (crm_is_buf(v)) {
        size_t len;
        const unsigned char *d = crm_buf_data(v, &len);
        json_t *data = json_array();
        for (size_t i = 0; i < len && i < max; i++) json_array_append_new(data, json_integer(d[i]));
        return json_pack("{s:s,s:o,s:b,s:I}", "type", "Buffer", "data", data, "__enc__", 1, "length", (json_int_t)len);
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (crm_utf16_len(s, n) <= max) return json_incref((json_t *)v);
        size_t cut = crm_utf16_prefix(s, n, max);
        strbuf b = SB_INIT;
        sb_putn(&b, s, cut);
        sb_puts(&b, "...");
        json_t *r = json_stringn(b.data, b.len);
        sb_free(&b);
        return r;
    }
    if (json_is_real(v) && !isfinite(json_real_value(v))) {
        char buf[32];
        return json_pack("{s:b,s:s,s:s}", "__enc__", 1, "type", "number", "data", crm_fmt_number(json_real_value(v), buf));
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        json_t *a = json_array();
        for (size_t i = 0; i < n && i < max; i++) json_array_append_new(a, enc(json_array_get(v, i), NULL, max));
        if (n <= max) return a;
        return json_pack("{s:b,s:s,s:o,s:I}", "__enc__", 1, "type", "array", "data", a, "length", (json_int_t)n);
    }
    if (crm_is_error(v)) return error_enc(v);
    if (json_is_object(v)) {
        crm_entry buf[32], *es;
        size_t n = crm_js_entries(v, buf, 32, &es);
        json_t *o = json_object();
        for (size_t i = 0; i < n; i++) {
            char *k = strndup(es[i].key, es[i].len);
            json_object_set_new(o, k, enc(es[i].val, k, max));
            free(k);
        }
        if (es != buf) free(es);
        return o;
    }
    return json_incref((json_t *)v);
}

/* RED.util.encodeObject on the debug message's msg: sets msg and format. */
static void encode_value(json_t *out, const json_t *v, size_t max)
{
    char fmt[64];
    json_t *m;
    if (!v || json_is_null(v)) {
        json_object_set_new(out, "msg", json_string("(undefined)"));
        json_object_set_new(out, "format", json_string(v ? "null" : "undefined"));
        return;
    }
    if (crm_is_buf(v)) {
        size_t len;
        const unsigned char *d = crm_buf_data(v, &len);
        snprintf(fmt, sizeof fmt, "buffer[%zu]", len);
        size_t hex = len * 2 > max ? max : len * 2;
        char *h = malloc(hex + 2);
        for (size_t i = 0; i < hex; i++) h[i] = "0123456789abcdef"[i % 2 ? d[i / 2] & 15 : d[i / 2] >> 4];
        m = json_stringn(h, hex);
        free(h);
    } else if (json_is_string(v)) {
        snprintf(fmt, sizeof fmt, "string[%zu]", crm_utf16_len(json_string_value(v), json_string_length(v)));
        m = enc(v, NULL, max);
    } else if (json_is_number(v)) {
        snprintf(fmt, sizeof fmt, "number");
        char buf[32];
        m = json_string(crm_fmt_number(json_number_value(v), buf));
    } else if (json_is_boolean(v)) {
        snprintf(fmt, sizeof fmt, "boolean");
        m = json_string(json_is_true(v) ? "true" : "false");
    } else if (crm_is_handle(v)) {
        snprintf(fmt, sizeof fmt, "Object");
        m = json_string("{}");
    } else if (crm_is_error(v)) {
        snprintf(fmt, sizeof fmt, "error");
        json_t *e = error_enc(v);
        char *t = crm_stringify(e, 0);
        json_decref(e);
        m = json_string(t ? t : "");
        free(t);
    } else {
        json_t *e;
        if (json_is_array(v)) {
            size_t n = json_array_size(v);
            snprintf(fmt, sizeof fmt, "array[%zu]", n);
            json_t *a = json_array();
            for (size_t i = 0; i < n && i < max; i++) json_array_append_new(a, enc(json_array_get(v, i), NULL, max));
            e = n > max ? json_pack("{s:b,s:s,s:o,s:I}", "__enc__", 1, "type", "array", "data", a, "length", (json_int_t)n)
                        : a;
        } else {
            snprintf(fmt, sizeof fmt, "Object");
            e = enc(v, NULL, max);
        }
        char *t = crm_stringify(e, 0);
        json_decref(e);
        m = json_string(t ? t : "");
        free(t);
    }
    json_object_set_new(out, "msg", m);
    json_object_set_new(out, "format", json_string(fmt));
}

void crm_comms_debug(crm_node *n, const json_t *msg, const char *property, const json_t *value)
{
    crm_comms *c = n->rt->comms;
    if (!c || !crm_comms_wanted(n)) return;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(n->id));
    if (n->z) json_object_set_new(o, "z", json_string(n->z));
    if (n->alias) json_object_set_new(o, "_alias", json_string(n->alias));
    strbuf path = SB_INIT;
    flow_path(n->flow, &path);
    json_object_set_new(o, "path", json_string(path.data ? path.data : ""));
    sb_free(&path);
    json_t *name = json_object_get(n->config, "name");
    if (json_is_string(name)) json_object_set_new(o, "name", json_incref(name));
    json_t *topic = json_object_get(msg, "topic");
    if (topic) json_object_set_new(o, "topic", json_incref(topic));
    if (property) json_object_set_new(o, "property", json_string(property));
    double max = crm_cfg_num(n->rt->settings, "debugMaxLength", 1000);
    encode_value(o, value, max > 0 ? (size_t)max : 1000);
    crm_comms_publish(c, "debug", o, false);
}

void crm_comms_status(crm_node *n, const json_t *st)
{
    crm_comms *c = n->rt->comms;
    if (!c) return;
    json_t *text = NULL, *fill = NULL, *shape = NULL;
    if (json_object_size(st)) {
        text = json_object_get(st, "text");
        fill = json_object_get(st, "fill");
        shape = json_object_get(st, "shape");
    }
    bool cleared = !crm_truthy(text) && !crm_truthy(fill) && !crm_truthy(shape);
    /* a node that clears its status on every message (csv, rfc mode): when
     * no node status was kept since this node's last look, there is none to
     * clear (a status kept later bumps the generation first) */
    unsigned long gen = atomic_load(&c->status_gen);
    if (cleared && n->status_clear_gen == gen) return;
    char topic[600];
    snprintf(topic, sizeof topic, "status/%s", n->id);
    if (cleared) {
        /* a cleared status: {} to the editor when it showed one, not kept */
        pthread_mutex_lock(&c->mu);
        bool had = json_object_get(c->retained, topic) != NULL;
        pthread_mutex_unlock(&c->mu);
        if (had) crm_comms_publish(c, topic, json_object(), false);
        n->status_clear_gen = gen;
        return;
    }
    json_t *o = json_object();
    if (text) json_object_set_new(o, "text", json_incref(text));
    if (fill) json_object_set_new(o, "fill", json_incref(fill));
    if (shape) json_object_set_new(o, "shape", json_incref(shape));
    crm_comms_publish(c, topic, o, true);
    atomic_fetch_add(&c->status_gen, 1);
    n->status_clear_gen = 0;
}

/* encodeObject's text for an Error (format "error"): {__enc__, type:
 * "error", data: {name, message, code?, cause?, stack}}. Carmine holds the
 * error as its text, String(err): "Name: message". */
static json_t *error_text(const crm_node *n, const char *text, const json_t *extra)
{
    const char *colon = strstr(text, ": ");
    bool named = colon && colon > text && !memchr(text, ' ', (size_t)(colon - text));
    json_t *data = json_object();
    json_object_set_new(data, "name", named ? json_stringn(text, (size_t)(colon - text)) : json_string("Error"));
    json_object_set_new(data, "message", json_string(named ? colon + 2 : text));
    error_code_cause(data, json_object_get(extra, "code"), json_object_get(extra, "cause"));
    json_t *stack = json_object_get(extra, "stack");
    if (json_is_string(stack)) {
        json_object_set(data, "stack", stack);
    } else {
        char *t = crm_error_stack(n, text);
        json_object_set_new(data, "stack", json_string(t));
        free(t);
    }
    json_t *v = json_pack("{s:b,s:s,s:o}", "__enc__", 1, "type", "error", "data", data);
    char *t = crm_stringify(v, 0);
    json_decref(v);
    json_t *r = json_string(t ? t : "");
    free(t);
    return r;
}

static void log_entry(const crm_node *n, crm_log_level lvl, const char *text, const json_t *extra, bool error_object)
{
    crm_comms *c = n->rt->comms;
    if (!c || !crm_comms_wanted((crm_node *)n)) return;
    /* Node.js's log_helper, then Flow.log adds the path */
    json_t *o = json_pack("{s:i,s:s,s:s}", "level", lvl >= CRM_LOG_ERROR ? 20 : 30, "id", n->id, "type",
                          crm_node_type_name(n));
    json_t *value = json_string(text);
    if (n->alias) json_object_set_new(o, "_alias", json_string(n->alias));
    if (n->z) json_object_set_new(o, "z", json_string(n->z));
    if (n->name && *n->name) json_object_set_new(o, "name", json_string(n->name));
    strbuf path = SB_INIT;
    flow_path(n->flow, &path);
    json_object_set_new(o, "path", json_string(path.data ? path.data : ""));
    sb_free(&path);
    json_object_set_new(o, "timestamp", json_real(floor(crm_wall_ms()))); /* the log's Date.now() */
    /* encodeObject keeps the members' order: msg goes where log_helper put it */
    json_t *enc_o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        json_object_set(enc_o, k, v);
        if (!strcmp(k, "type")) json_object_set_new(enc_o, "msg", json_null());
    }
    if (error_object) { /* Node-RED logs the Error itself */
        json_object_set_new(enc_o, "msg", error_text(n, text, extra));
        json_object_set_new(enc_o, "format", json_string("error"));
    } else {
        double max = crm_cfg_num(n->rt->settings, "debugMaxLength", 1000);
        encode_value(enc_o, value, max > 0 ? (size_t)max : 1000);
    }
    json_decref(value);
    json_decref(o);
    crm_comms_publish(c, "debug", enc_o, false);
}

void crm_comms_log(const crm_node *n, crm_log_level lvl, const char *text) { log_entry(n, lvl, text, NULL, false); }

void crm_comms_log_error(const crm_node *n, crm_log_level lvl, const char *text, const json_t *extra)
{
    log_entry(n, lvl, text, extra, true);
}
