/* mqtt_in.c: the `mqtt in` node. It subscribes through its mqtt-broker
 * config node (mqtt_broker.c), which hands it the arriving messages in
 * batches through a mailbox; here, on the node's own loop, each one becomes
 * a msg as Node-RED 4.1.15's subscriptionHandler builds it: topic, payload
 * (decoded by datatype), qos, retain, the v5 properties, and _topic when the
 * broker is "localhost" or "127.0.0.1".
 *
 * With `inputs: 1` the node takes msg.action: subscribe / unsubscribe
 * (msg.topic a string, an object, or an array of them; unsubscribe with
 * msg.topic === true drops them all), connect, disconnect, getSubscriptions.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"
#include "mqtt_broker.h"

typedef struct in_state {
    crm_node *n;
    mqtt_conn *conn;
    mqtt_box *inbox;
    char *topic;
    int qos;
    mqtt_datatype dt;
    bool dynamic, active;
    json_t *dynsubs; /* topic -> subscription object, in order */
} in_state;

/* Payload decoding ---------------------------------------------------------------- */

/* The is-utf8 package: printable ASCII plus tab, LF, CR, and well-formed
 * multi-byte sequences (no overlongs, no surrogates). */
static bool is_utf8(const unsigned char *b, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = b[i];
        unsigned c1 = i + 1 < n ? b[i + 1] : 0, c2 = i + 2 < n ? b[i + 2] : 0, c3 = i + 3 < n ? b[i + 3] : 0;
#define CONT(x) ((x) >= 0x80 && (x) <= 0xBF)
        if (c == 0x09 || c == 0x0A || c == 0x0D || (c >= 0x20 && c <= 0x7E)) i += 1;
        else if (c >= 0xC2 && c <= 0xDF && CONT(c1)) i += 2;
        else if ((c == 0xE0 && c1 >= 0xA0 && c1 <= 0xBF && CONT(c2)) ||
                 (((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) && CONT(c1) && CONT(c2)) ||
                 (c == 0xED && c1 >= 0x80 && c1 <= 0x9F && CONT(c2)))
            i += 3;
        else if ((c == 0xF0 && c1 >= 0x90 && c1 <= 0xBF && CONT(c2) && CONT(c3)) ||
                 (c >= 0xF1 && c <= 0xF3 && CONT(c1) && CONT(c2) && CONT(c3)) ||
                 (c == 0xF4 && c1 >= 0x80 && c1 <= 0x8F && CONT(c2) && CONT(c3)))
            i += 4;
        else return false;
#undef CONT
    }
    return true;
}

/* buf.toString('utf8'): invalid sequences become U+FFFD. */
static json_t *utf8_string(const unsigned char *b, size_t n)
{
    if (!n) return json_string("");
    json_t *s = json_stringn((const char *)b, n);
    if (s) return s;
    unsigned char *out = malloc(n * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = b[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = len && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (b[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) ok = json_stringn((const char *)b + i, len) != NULL; /* overlong / surrogate */
        if (ok) {
            memcpy(out + o, b + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        }
    }
    json_t *r = json_stringn((const char *)out, o);
    free(out);
    return r ? r : json_string("");
}

static json_t *base64_string(const unsigned char *b, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    json_t *r = json_stringn(out, o);
    free(out);
    return r;
}

/* JSON.parse(text); NULL when it throws. */
static json_t *json_parse(const json_t *text)
{
    return crm_parse(json_string_value(text), json_string_length(text), NULL, 0);
}

static const char *media_kind(const char *ct)
{
    static const char *const types[][2] = {
        {"text/css", "string"}, {"text/html", "string"}, {"text/plain", "string"}, {"application/json", "json"},
        {"application/octet-stream", "buffer"}, {"application/pdf", "buffer"}, {"application/x-gtar", "buffer"},
        {"application/x-gzip", "buffer"}, {"application/x-tar", "buffer"}, {"application/xml", "string"},
        {"application/zip", "buffer"}, {"audio/aac", "buffer"}, {"audio/ac3", "buffer"}, {"audio/basic", "buffer"},
        {"audio/mp4", "buffer"}, {"audio/ogg", "buffer"}, {"image/bmp", "buffer"}, {"image/gif", "buffer"},
        {"image/jpeg", "buffer"}, {"image/tiff", "buffer"}, {"image/png", "buffer"}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcasecmp(types[i][0], ct)) return types[i][1];
    return "";
}

static void json_error(in_state *st, const mqtt_rx *r, const char *text)
{
    json_t *m = json_object();
    json_object_set_new(m, "payload", crm_buf_new(r->payload, r->len));
    json_object_set_new(m, "topic", json_string(r->topic));
    json_object_set_new(m, "qos", crm_num(r->qos));
    json_object_set_new(m, "retain", json_boolean(r->retain));
    crm_node_error(st->n, m, "%s", text);
    json_decref(m);
}

static void deliver(crm_node *n, mqtt_item *it, void *ctx)
{
    (void)n;
    in_state *st = ctx;
    mqtt_rx *r = (mqtt_rx *)it;
    json_t *msg = json_object();
    json_object_set_new(msg, "topic", json_string(r->topic));
    json_object_set_new(msg, "payload", json_null());
    json_object_set_new(msg, "qos", crm_num(r->qos));
    json_object_set_new(msg, "retain", json_boolean(r->retain));
    bool v5 = mqtt_conn_v5(st->conn);
    bool pfi = false, has_ct = false;
    const char *ct = "";
    if (v5 && r->props) {
        static const char *const keys[] = {"responseTopic", "correlationData", "contentType", "messageExpiryInterval",
                                           "payloadFormatIndicator", "reasonString", "userProperties"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            json_t *v = json_object_get(r->props, keys[i]);
            if (v) json_object_set(msg, keys[i], v);
        }
        pfi = json_is_true(json_object_get(r->props, "payloadFormatIndicator"));
        const json_t *c = json_object_get(r->props, "contentType");
        has_ct = json_is_string(c) && json_string_length(c);
        if (has_ct) ct = json_string_value(c);
    }
    json_t *payload = NULL;
    mqtt_datatype dt = r->dt;
    if (dt == MQTT_DT_BUFFER) payload = crm_buf_new(r->payload, r->len);
    else if (dt == MQTT_DT_BASE64) payload = base64_string(r->payload, r->len);
    else if (dt == MQTT_DT_UTF8) payload = utf8_string(r->payload, r->len);
    else if (dt == MQTT_DT_JSON) {
        if (pfi || is_utf8(r->payload, r->len)) {
            json_t *s = utf8_string(r->payload, r->len);
            payload = json_parse(s);
            json_decref(s);
            if (!payload) {
                json_error(st, r, "Failed to parse JSON string");
                goto drop;
            }
        } else {
            json_error(st, r, "Invalid JSON string");
            goto drop;
        }
    } else {
        bool detect = dt == MQTT_DT_AUTO_DETECT;
        const char *kind = pfi || has_ct ? media_kind(has_ct ? ct : "undefined") : NULL;
        if (kind && !strcmp(kind, "string")) payload = utf8_string(r->payload, r->len);
        else if (kind && !strcmp(kind, "buffer")) payload = crm_buf_new(r->payload, r->len);
        else if (kind && !strcmp(kind, "json")) {
            payload = utf8_string(r->payload, r->len);
            json_t *obj = json_parse(payload);
            if (!obj) {
                json_decref(payload);
                json_error(st, r, "Failed to parse JSON string");
                goto drop;
            }
            if (detect) {
                json_decref(payload);
                payload = obj;
            } else json_decref(obj);
        } else if (is_utf8(r->payload, r->len)) {
            /* well-formed UTF-8 is its own text: parsed as it is, the
             * string made only when it is not JSON */
            if (detect) payload = crm_parse((const char *)r->payload, r->len, NULL, 0);
            if (!payload) payload = utf8_string(r->payload, r->len);
        } else if (pfi) {
            payload = utf8_string(r->payload, r->len);
            if (detect) {
                json_t *obj = json_parse(payload);
                if (obj) {
                    json_decref(payload);
                    payload = obj;
                }
            }
        } else payload = crm_buf_new(r->payload, r->len);
    }
    json_object_set_new(msg, "payload", payload);
    if (mqtt_conn_local(st->conn)) json_object_set_new(msg, "_topic", json_string(r->topic));
    crm_node_send(st->n, 0, msg);
    mqtt_rx_free(it);
    return;
drop:
    json_decref(msg);
    mqtt_rx_free(it);
}

/* parseInt(v) for numbers and numeric strings; NAN otherwise. */
static double parse_int(const json_t *v)
{
    if (crm_is_num(v)) return trunc(crm_num_value(v));
    if (!json_is_string(v)) return NAN;
    const char *s = json_string_value(v);
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    char *end;
    long l = strtol(s, &end, 10);
    return end == s ? NAN : (double)l;
}

/* Dynamic subscriptions ------------------------------------------------------------- */

static void action_error(in_state *st, json_t *msg, const char *text)
{
    crm_node_error(st->n, msg, "Error: %s", text);
    json_decref(msg);
}

static json_t *subs_list(in_state *st)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(st->dynsubs, k, v) json_array_append_new(a, crm_deep_copy(v));
    return a;
}

static void subscribe_one(in_state *st, json_t *sub)
{
    const char *topic = json_string_value(json_object_get(sub, "topic"));
    bool v5 = mqtt_conn_v5(st->conn);
    if (json_object_get(st->dynsubs, topic)) {
        mqtt_conn_unsubscribe(st->conn, st->n, topic);
        json_object_del(st->dynsubs, topic);
    }
    mqtt_sub_req r = {.filter = topic, .qos = 2, .dt = st->dt};
    json_t *q = json_object_get(sub, "qos");
    if (q) {
        double d = parse_int(q);
        r.qos = d >= 0 && d <= 2 ? (int)d : -1;
    }
    if (r.qos >= 0) json_object_set_new(sub, "qos", crm_num(r.qos));
    else json_object_del(sub, "qos");
    if (v5) {
        json_t *rh = json_object_get(sub, "rh");
        r.rh = 0;
        if (rh) {
            double d = parse_int(rh);
            r.rh = d >= 0 && d <= 2 ? (int)d : -1;
        }
        if (r.rh >= 0) json_object_set_new(sub, "rh", crm_num(r.rh));
        else {
            json_object_del(sub, "rh");
            r.rh = 0;
        }
        json_t *rap = json_object_get(sub, "rap");
        int rv = 1;
        if (rap && !json_is_null(rap)) {
            if (json_is_true(rap) || (json_is_string(rap) && !strcmp(json_string_value(rap), "true"))) rv = 1;
            else if (json_is_false(rap) || (json_is_string(rap) && !strcmp(json_string_value(rap), "false"))) rv = 0;
            else rv = -1;
        }
        if (rv >= 0) json_object_set_new(sub, "rap", json_boolean(rv));
        else json_object_del(sub, "rap");
        r.rap = rv == 1;
        json_t *nl = json_object_get(sub, "nl");
        if (json_is_true(nl) || (json_is_string(nl) && !strcmp(json_string_value(nl), "true"))) {
            r.nl = true;
            json_object_set_new(sub, "nl", json_true());
        } else if (json_is_false(nl) || (json_is_string(nl) && !strcmp(json_string_value(nl), "false"))) {
            json_object_set_new(sub, "nl", json_false());
        } else json_object_del(sub, "nl");
    }
    const char *dts = json_string_value(json_object_get(sub, "datatype"));
    if (dts && *dts) r.dt = mqtt_datatype_of(dts);
    mqtt_conn_subscribe(st->conn, st->n, &r);
    json_object_set(st->dynsubs, topic, sub);
}

static void in_input(crm_node *n, json_t *msg)
{
    in_state *st = crm_node_data(n);
    if (!st->active) {
        json_decref(msg);
        return;
    }
    const char *action = json_string_value(json_object_get(msg, "action"));
    if (!action || (strcmp(action, "connect") && strcmp(action, "disconnect") && strcmp(action, "subscribe") &&
                    strcmp(action, "unsubscribe") && strcmp(action, "getSubscriptions"))) {
        action_error(st, msg, "Invalid action specified");
        return;
    }
    if (!strcmp(action, "connect")) {
        const json_t *b = json_object_get(msg, "broker");
        bool can = mqtt_conn_state(st->conn) == CRM_MQTT_DISCONNECTED;
        if (!can && json_is_object(b) && !crm_truthy(json_object_get(b, "force"))) {
            action_error(st, msg, "Disconnect from broker before connecting");
            return;
        }
        if (!can && json_is_object(b)) mqtt_conn_action(st->conn, n, false, NULL);
        mqtt_conn_action(st->conn, n, true, json_is_object(b) ? b : NULL);
    } else if (!strcmp(action, "disconnect")) {
        mqtt_conn_action(st->conn, n, false, NULL);
    } else if (!strcmp(action, "getSubscriptions")) {
        json_object_set_new(msg, "topic", json_string("subscriptions"));
        json_object_set_new(msg, "payload", subs_list(st));
        crm_node_send(n, 0, msg);
        crm_node_done(n, msg);
        return;
    } else {
        bool unsub = !strcmp(action, "unsubscribe");
        json_t *t = json_object_get(msg, "topic"), *data;
        if (unsub && json_is_true(t)) {
            data = json_array();
            const char *k;
            json_t *v;
            json_object_foreach(st->dynsubs, k, v) json_array_append(data, v);
        } else if (json_is_array(t)) data = json_incref(t);
        else if (json_is_string(t) || json_is_object(t) || json_is_null(t)) data = json_pack("[O]", t);
        else {
            action_error(st, msg, "msg.topic is missing or invalid");
            return;
        }
        json_t *subs = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(data, i, s) {
            json_t *sub = json_is_string(s) ? json_pack("{sO}", "topic", s) : json_is_object(s) ? json_incref(s) : NULL;
            const json_t *tt = sub ? json_object_get(sub, "topic") : NULL;
            if (!json_is_string(tt) || !json_string_length(tt) || !crm_mqtt_valid_filter(json_string_value(tt))) {
                json_decref(sub);
                json_decref(subs);
                json_decref(data);
                action_error(st, msg, "Invalid topic specified");
                return;
            }
            json_array_append_new(subs, sub);
        }
        json_decref(data);
        json_array_foreach(subs, i, s) {
            const char *topic = json_string_value(json_object_get(s, "topic"));
            if (unsub) {
                mqtt_conn_unsubscribe(st->conn, n, topic);
                json_object_del(st->dynsubs, topic);
            } else subscribe_one(st, s);
        }
        json_decref(subs);
        json_object_set_new(msg, "subscriptions", subs_list(st));
    }
    crm_node_done(n, msg);
    json_decref(msg);
}

/* The node ------------------------------------------------------------------------------------------- */

static int in_create(crm_node *n, const json_t *cfg)
{
    in_state *st = calloc(1, sizeof *st);
    st->n = n;
    st->dynsubs = json_object();
    crm_node_set_data(n, st);
    st->conn = mqtt_conn_find(n, crm_cfg_str(cfg, "broker", ""));
    json_t *inputs = json_object_get(cfg, "inputs");
    st->dynamic = inputs && crm_to_number(inputs) == 1;
    st->topic = strdup(crm_cfg_str(cfg, "topic", ""));
    double q = parse_int(json_object_get(cfg, "qos"));
    st->qos = q >= 0 && q <= 2 ? (int)q : 2;
    if (!st->dynamic && !crm_mqtt_valid_filter(st->topic)) {
        crm_node_warn(n, "Invalid topic specified");
        return 0;
    }
    st->dt = mqtt_datatype_of(crm_cfg_str(cfg, "datatype", ""));
    if (!st->conn) {
        crm_node_log(n, CRM_LOG_ERROR, "missing broker configuration");
        return 0;
    }
    st->active = true;
    if (!*st->topic && !st->dynamic) {
        crm_node_log(n, CRM_LOG_ERROR, "topic not defined");
        return 0;
    }
    st->inbox = mqtt_box_new(n, deliver, mqtt_rx_free, st);
    mqtt_conn_register(st->conn, n, st->inbox);
    if (!st->dynamic) {
        mqtt_sub_req r = {.filter = st->topic, .qos = st->qos, .dt = st->dt};
        if (mqtt_conn_v5(st->conn)) {
            double rh = parse_int(json_object_get(cfg, "rh"));
            r.rh = rh >= 0 && rh <= 2 ? (int)rh : 0;
            r.nl = crm_cfg_bool(cfg, "nl", false);
            r.rap = crm_cfg_bool(cfg, "rap", false);
        }
        mqtt_conn_subscribe_now(st->conn, n, &r);
    }
    return 0;
}

static void in_close(crm_node *n)
{
    in_state *st = crm_node_data(n);
    if (!st) return;
    if (st->inbox) {
        mqtt_box_close(st->inbox);
        mqtt_box_unref(st->inbox);
    }
    json_decref(st->dynsubs);
    free(st->topic);
    free(st);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_mqtt_in = {
    .abi = CRM_ABI_VERSION, .type = "mqtt in", .create = in_create, .input = in_input, .close = in_close};
