/* mqtt.c: the MQTT client of mqtt.h: libmosquitto without a thread of its
 * own, its socket on the owner node's loop.
 *
 * States: DISCONNECTED -> connect() -> CONNECTING (socket connecting, then
 * CONNECT sent) -> CONNACK accepted -> CONNECTED. A lost connection or a
 * failed attempt arms the reconnect timer (unless disconnect() was asked
 * for); each attempt reports CONNECTING again, as MQTT.js's "reconnect"
 * event does. libmosquitto calls our callbacks from inside loop_read /
 * loop_write / loop_misc, always on this loop.
 */
#include <errno.h>
#include <math.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqtt.h"

struct crm_mqtt {
    crm_node *owner;
    struct mosquitto *mosq;
    crm_mqtt_handlers h;
    void *arg;
    char *host;
    int port, keepalive, version;
    double reconnect_ms;
    crm_mqtt_state state;
    bool want;       /* connect() asked for and not disconnect() */
    bool connecting; /* an attempt is under way (socket or CONNACK pending) */
    int fd;          /* the watched socket, -1 */
    crm_watch *watch;
    unsigned events;
    crm_timer *misc, *retry;
    char *tmpfiles[3]; /* PEM data written out for mosquitto_tls_set */
    char *passphrase;  /* of the key, for pw_callback */
};

/* Properties ------------------------------------------------------------ */

/* v5 properties (Node-RED names) to a libmosquitto list; NULL when none. */
static mosquitto_property *props_from_json(const json_t *p, bool will)
{
    mosquitto_property *list = NULL;
    if (!json_is_object(p)) return NULL;
    const json_t *v;
    if (json_is_string(v = json_object_get(p, "responseTopic")) && json_string_length(v))
        mosquitto_property_add_string(&list, MQTT_PROP_RESPONSE_TOPIC, json_string_value(v));
    if ((v = json_object_get(p, "correlationData"))) {
        size_t len = 0;
        const unsigned char *d = crm_is_buf(v) ? crm_buf_data(v, &len) : NULL;
        if (!d && json_is_string(v)) d = (const unsigned char *)json_string_value(v), len = json_string_length(v);
        if (d && len <= 65535) mosquitto_property_add_binary(&list, MQTT_PROP_CORRELATION_DATA, d, (uint16_t)len);
    }
    if (json_is_string(v = json_object_get(p, "contentType")) && json_string_length(v))
        mosquitto_property_add_string(&list, MQTT_PROP_CONTENT_TYPE, json_string_value(v));
    if (crm_is_num(v = json_object_get(p, "messageExpiryInterval"))) {
        double d = crm_num_value(v);
        if (d >= 0 && d <= 4294967295.0) mosquitto_property_add_int32(&list, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, (uint32_t)d);
    }
    if (json_is_boolean(v = json_object_get(p, "payloadFormatIndicator")))
        mosquitto_property_add_byte(&list, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, json_is_true(v) ? 1 : 0);
    if (will && crm_is_num(v = json_object_get(p, "willDelayInterval"))) {
        double d = crm_num_value(v);
        if (d >= 0 && d <= 4294967295.0) mosquitto_property_add_int32(&list, MQTT_PROP_WILL_DELAY_INTERVAL, (uint32_t)d);
    }
    const json_t *up = json_object_get(p, "userProperties");
    if (json_is_object(up)) {
        const char *k;
        json_t *s;
        json_object_foreach((json_t *)up, k, s)
            if (json_is_string(s)) mosquitto_property_add_string_pair(&list, MQTT_PROP_USER_PROPERTY, k, json_string_value(s));
    }
    return list;
}

/* A received message's properties as Node-RED's subscriptionHandler copies
 * them (user properties repeated under one name become a JSON array text,
 * as setUserProperties stringifies MQTT.js's array). */
static json_t *props_to_json(const mosquitto_property *list, uint32_t *subids, int *nsubids, int max)
{
    json_t *o = NULL, *up = NULL;
    *nsubids = 0;
    for (const mosquitto_property *p = list; p; p = mosquitto_property_next(p)) {
        int id = mosquitto_property_identifier(p);
        char *s = NULL, *k = NULL;
        void *bin = NULL;
        uint16_t blen = 0;
        uint32_t u = 0;
        uint8_t b = 0;
        if (!o) o = json_object();
        switch (id) {
        case MQTT_PROP_RESPONSE_TOPIC:
        case MQTT_PROP_CONTENT_TYPE:
        case MQTT_PROP_REASON_STRING:
            if (mosquitto_property_read_string(p, id, &s, false) && s && *s)
                json_object_set_new(o, id == MQTT_PROP_RESPONSE_TOPIC ? "responseTopic"
                                       : id == MQTT_PROP_CONTENT_TYPE ? "contentType"
                                                                      : "reasonString",
                                    json_string(s));
            free(s);
            break;
        case MQTT_PROP_CORRELATION_DATA:
            if (mosquitto_property_read_binary(p, id, &bin, &blen, false))
                json_object_set_new(o, "correlationData", crm_buf_new(bin, blen));
            free(bin);
            break;
        case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
            if (mosquitto_property_read_int32(p, id, &u, false)) json_object_set_new(o, "messageExpiryInterval", crm_num(u));
            break;
        case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
            if (mosquitto_property_read_byte(p, id, &b, false)) json_object_set_new(o, "payloadFormatIndicator", json_boolean(b));
            break;
        case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
            if (mosquitto_property_read_varint(p, id, &u, false) && *nsubids < max) subids[(*nsubids)++] = u;
            break;
        case MQTT_PROP_USER_PROPERTY:
            if (mosquitto_property_read_string_pair(p, id, &k, &s, false) && k && s) {
                if (!up) up = json_object();
                json_t *old = json_object_get(up, k);
                if (!old) json_object_set_new(up, k, json_string(s));
                else {
                    json_t *arr = json_is_array(old) ? json_incref(old) : json_pack("[O]", old);
                    json_array_append_new(arr, json_string(s));
                    json_object_set_new(up, k, arr);
                }
            }
            free(k);
            free(s);
            break;
        default:
            break;
        }
    }
    if (up) {
        const char *k;
        json_t *v;
        json_object_foreach(up, k, v) {
            if (json_is_array(v)) {
                char *t = crm_stringify(v, 0);
                json_object_set_new(up, k, json_string(t));
                free(t);
            }
        }
        json_object_set_new(o, "userProperties", up);
    }
    if (o && !json_object_size(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* Socket and timers --------------------------------------------------------- */

static void on_io(crm_node *n, int fd, unsigned revents, void *arg);
static void start_attempt(crm_mqtt *c);

static void update_events(crm_mqtt *c)
{
    if (!c->watch) return;
    unsigned ev = POLLIN | (mosquitto_want_write(c->mosq) ? POLLOUT : 0);
    if (ev != c->events) {
        c->events = ev;
        crm_watch_events(c->watch, ev);
    }
}

static void drop_socket(crm_mqtt *c)
{
    crm_watch_cancel(c->watch);
    c->watch = NULL;
    c->fd = -1;
}

static void watch_socket(crm_mqtt *c)
{
    int fd = mosquitto_socket(c->mosq);
    if (fd == c->fd && c->watch) return;
    drop_socket(c);
    if (fd < 0) return;
    c->fd = fd;
    c->events = POLLIN | POLLOUT;
    c->watch = crm_watch_fd(c->owner, fd, c->events, on_io, c);
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

static void misc_tick(crm_node *n, void *arg)
{
    (void)n;
    crm_mqtt *c = arg;
    if (c->fd < 0) return;
    mosquitto_loop_misc(c->mosq);
    update_events(c);
}

/* The connection is gone (lost, refused, or closed by us). */
static void connection_gone(crm_mqtt *c, int rc)
{
    bool was_connected = c->state == CRM_MQTT_CONNECTED;
    drop_socket(c);
    c->connecting = false;
    if (was_connected || !c->want) c->state = CRM_MQTT_DISCONNECTED;
    if (was_connected && c->h.state) c->h.state(c->arg, CRM_MQTT_DISCONNECTED, rc);
    schedule_retry(c);
}

static void start_attempt(crm_mqtt *c)
{
    c->connecting = true;
    c->state = CRM_MQTT_CONNECTING;
    if (c->h.state) c->h.state(c->arg, CRM_MQTT_CONNECTING, 0);
    int rc = mosquitto_reconnect_async(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        crm_node_log(c->owner, CRM_LOG_DEBUG, "mqtt connect to %s:%d: %s", c->host, c->port,
                     rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        drop_socket(c);
        c->connecting = false;
        schedule_retry(c);
        return;
    }
    watch_socket(c);
    update_events(c);
}

static void on_io(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)fd;
    crm_mqtt *c = arg;
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        /* read up to 256 packets in one burst: libmosquitto reads one (or as
         * many as are in flight) per call and leaves errno at EAGAIN when
         * the socket is drained */
        for (int i = 0; i < 256 && c->fd >= 0; i++) {
            errno = 0;
            int rc = mosquitto_loop_read(c->mosq, 1);
            if (rc != MOSQ_ERR_SUCCESS) {
                if (c->fd >= 0) connection_gone(c, rc); /* not reported by a callback */
                break;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        }
        if (c->h.burst_end) c->h.burst_end(c->arg);
    }
    if (c->fd >= 0 && (revents & POLLOUT)) {
        int rc = mosquitto_loop_write(c->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS && c->fd >= 0) connection_gone(c, rc);
    }
    if (c->fd >= 0) update_events(c);
}

/* libmosquitto callbacks -------------------------------------------------------- */

static void cb_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
    (void)m;
    (void)flags;
    (void)props;
    crm_mqtt *c = obj;
    if (rc != 0) {
        crm_node_log(c->owner, CRM_LOG_DEBUG, "mqtt connection refused by %s:%d: %s", c->host, c->port,
                     mosquitto_reason_string(rc));
        return; /* the broker closes the socket: cb_disconnect follows */
    }
    c->connecting = false;
    c->state = CRM_MQTT_CONNECTED;
    if (c->h.state) c->h.state(c->arg, CRM_MQTT_CONNECTED, 0);
}

static void cb_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    (void)m;
    (void)props;
    connection_gone(obj, rc);
}

static void cb_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg, const mosquitto_property *props)
{
    (void)m;
    crm_mqtt *c = obj;
    if (!c->h.message) return;
    uint32_t subids[16];
    crm_mqtt_message mm = {.topic = msg->topic, .payload = msg->payload, .len = (size_t)msg->payloadlen,
                           .qos = msg->qos, .retain = msg->retain, .subids = subids};
    json_t *pj = props ? props_to_json(props, subids, &mm.nsubids, 16) : NULL;
    mm.props = pj;
    c->h.message(c->arg, &mm);
    json_decref(pj);
}

/* TLS ------------------------------------------------------------------------------- */

static char *pem_file(crm_mqtt *c, int slot, const char *pem)
{
    char tmpl[] = "/tmp/carmine-mqtt-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) return NULL;
    size_t len = strlen(pem), off = 0;
    while (off < len) {
        ssize_t w = write(fd, pem + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    c->tmpfiles[slot] = strdup(tmpl);
    return c->tmpfiles[slot];
}

/* libmosquitto passes the client's userdata (c) when OpenSSL asks. */
static int pw_callback(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    const crm_mqtt *c = userdata;
    if (!c || !c->passphrase) return 0;
    snprintf(buf, (size_t)size, "%s", c->passphrase);
    return (int)strlen(buf);
}

static int setup_tls(crm_mqtt *c, const crm_mqtt_options *o, char **err)
{
    const crm_tls_options *t = o->tls_opts;
    const char *ca = NULL, *cert = NULL, *key = NULL;
    if (t) {
        ca = t->ca_pem ? pem_file(c, 0, t->ca_pem) : t->ca_file;
        cert = t->cert_pem ? pem_file(c, 1, t->cert_pem) : t->cert_file;
        key = t->key_pem ? pem_file(c, 2, t->key_pem) : t->key_file;
        c->passphrase = t->passphrase ? strdup(t->passphrase) : NULL;
        if (t->alpn) mosquitto_string_option(c->mosq, MOSQ_OPT_TLS_ALPN, t->alpn);
    }
    int rc;
    if (!ca) {
        mosquitto_int_option(c->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        rc = mosquitto_tls_set(c->mosq, NULL, "/etc/ssl/certs", cert, key, pw_callback);
    } else {
        rc = mosquitto_tls_set(c->mosq, ca, NULL, cert, key, pw_callback);
    }
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_opts_set(c->mosq, o->verify ? 1 : 0, NULL, NULL);
    if (rc == MOSQ_ERR_SUCCESS && !o->verify) rc = mosquitto_tls_insecure_set(c->mosq, true);
    if (rc != MOSQ_ERR_SUCCESS) {
        if (asprintf(err, "TLS setup failed: %s", mosquitto_strerror(rc)) < 0) *err = NULL;
        return -1;
    }
    return 0;
}

/* Public ------------------------------------------------------------------------------ */

crm_mqtt *crm_mqtt_new(crm_node *owner, const crm_mqtt_options *o, const crm_mqtt_handlers *h, void *arg, char **err)
{
    *err = NULL;
    if (!crm_mqtt_available()) {
        *err = strdup("libmosquitto.so.1 is not installed");
        return NULL;
    }
    crm_mqtt *c = calloc(1, sizeof *c);
    c->owner = owner;
    c->h = *h;
    c->arg = arg;
    c->fd = -1;
    c->host = strdup(o->host && *o->host ? o->host : "localhost");
    c->port = o->port > 0 ? o->port : 1883;
    c->keepalive = o->keepalive;
    c->version = o->version;
    c->reconnect_ms = o->reconnect_ms > 0 ? o->reconnect_ms : 5000;
    c->mosq = mosquitto_new(o->client_id, o->clean, c);
    if (!c->mosq) {
        if (asprintf(err, "cannot create the MQTT client: %s", strerror(errno)) < 0) *err = NULL;
        free(c->host);
        free(c);
        return NULL;
    }
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         o->version == 5 ? MQTT_PROTOCOL_V5 : o->version == 3 ? MQTT_PROTOCOL_V31 : MQTT_PROTOCOL_V311);
    mosquitto_connect_v5_callback_set(c->mosq, cb_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, cb_disconnect);
    mosquitto_message_v5_callback_set(c->mosq, cb_message);
    if (o->username || o->password) mosquitto_username_pw_set(c->mosq, o->username ? o->username : "", o->password);
    if (o->will_topic) {
        mosquitto_property *wp = o->version == 5 ? props_from_json(o->will_props, true) : NULL;
        int rc = mosquitto_will_set_v5(c->mosq, o->will_topic, (int)o->will_len, o->will_payload, o->will_qos,
                                       o->will_retain, wp);
        if (rc != MOSQ_ERR_SUCCESS) mosquitto_property_free_all(&wp); /* taken over on success */
    }
    if (o->tls && setup_tls(c, o, err) < 0) {
        crm_mqtt_free(c, 0);
        return NULL;
    }
    return c;
}

void crm_mqtt_connect(crm_mqtt *c)
{
    if (c->state == CRM_MQTT_CONNECTED || c->connecting) return;
    c->want = true;
    if (!c->misc) c->misc = crm_timer_start(c->owner, 1000, 1000, misc_tick, c);
    crm_timer_cancel(c->retry);
    c->retry = NULL;
    c->connecting = true;
    c->state = CRM_MQTT_CONNECTING;
    if (c->h.state) c->h.state(c->arg, CRM_MQTT_CONNECTING, 0);
    int rc = mosquitto_connect_bind_async(c->mosq, c->host, c->port, c->keepalive, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        crm_node_log(c->owner, CRM_LOG_DEBUG, "mqtt connect to %s:%d: %s", c->host, c->port,
                     rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        c->connecting = false;
        drop_socket(c);
        schedule_retry(c);
        return;
    }
    watch_socket(c);
    update_events(c);
}

/* Writes what is queued, waiting at most ms (at shutdown). */
static void flush(crm_mqtt *c, double ms)
{
    double end = crm_now_ms() + ms;
    while (c->fd >= 0 && mosquitto_want_write(c->mosq)) {
        double left = end - crm_now_ms();
        if (left <= 0) break;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (poll(&p, 1, (int)ceil(left)) <= 0) break;
        if (mosquitto_loop_write(c->mosq, 1) != MOSQ_ERR_SUCCESS) break;
    }
}

void crm_mqtt_disconnect(crm_mqtt *c)
{
    c->want = false;
    crm_timer_cancel(c->retry);
    c->retry = NULL;
    if (c->fd >= 0) {
        mosquitto_disconnect_v5(c->mosq, 0, NULL); /* cb_disconnect reports it once written */
        if (c->fd >= 0) flush(c, 2000);
    }
    if (c->fd >= 0) connection_gone(c, 0);
    c->connecting = false;
    c->state = CRM_MQTT_DISCONNECTED;
}

crm_mqtt_state crm_mqtt_get_state(const crm_mqtt *c) { return c->state; }
bool crm_mqtt_v5(const crm_mqtt *c) { return c->version == 5; }
const char *crm_mqtt_strerror(int rc) { return mosquitto_strerror(rc); }

int crm_mqtt_publish(crm_mqtt *c, const char *topic, const void *payload, size_t len, int qos, bool retain,
                     const json_t *props)
{
    if (c->state != CRM_MQTT_CONNECTED) return MOSQ_ERR_NO_CONN;
    mosquitto_property *p = c->version == 5 ? props_from_json(props, false) : NULL;
    int rc = mosquitto_publish_v5(c->mosq, NULL, topic, (int)len, len ? payload : NULL, qos, retain, p);
    mosquitto_property_free_all(&p);
    update_events(c);
    return rc;
}

int crm_mqtt_subscribe(crm_mqtt *c, const char *filter, int qos, bool nl, bool rap, int rh, uint32_t subid)
{
    if (c->state != CRM_MQTT_CONNECTED) return MOSQ_ERR_NO_CONN;
    mosquitto_property *p = NULL;
    int opts = 0;
    if (c->version == 5) {
        if (subid) mosquitto_property_add_varint(&p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, subid);
        opts = (nl ? MQTT_SUB_OPT_NO_LOCAL : 0) | (rap ? MQTT_SUB_OPT_RETAIN_AS_PUBLISHED : 0) |
               (rh == 1 ? MQTT_SUB_OPT_SEND_RETAIN_NEW : rh == 2 ? MQTT_SUB_OPT_SEND_RETAIN_NEVER : 0);
    }
    int rc = mosquitto_subscribe_v5(c->mosq, NULL, filter, qos, opts, p);
    mosquitto_property_free_all(&p);
    update_events(c);
    return rc;
}

int crm_mqtt_unsubscribe(crm_mqtt *c, const char *filter)
{
    if (c->state != CRM_MQTT_CONNECTED) return MOSQ_ERR_NO_CONN;
    int rc = mosquitto_unsubscribe_v5(c->mosq, NULL, filter, NULL);
    update_events(c);
    return rc;
}

void crm_mqtt_free(crm_mqtt *c, double wait_ms)
{
    if (!c) return;
    c->want = false;
    if (c->fd >= 0) {
        mosquitto_disconnect_v5(c->mosq, 0, NULL);
        if (c->fd >= 0) flush(c, wait_ms);
    }
    drop_socket(c);
    crm_timer_cancel(c->retry);
    crm_timer_cancel(c->misc);
    mosquitto_destroy(c->mosq);
    for (int i = 0; i < 3; i++) {
        if (c->tmpfiles[i]) unlink(c->tmpfiles[i]);
        free(c->tmpfiles[i]);
    }
    free(c->passphrase);
    free(c->host);
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
