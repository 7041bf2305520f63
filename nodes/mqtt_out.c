/* mqtt_out.c: the `mqtt out` node, as Node-RED 4.1.15's doPublish and the
 * broker's publish(): topic / qos / retain from the node's config override
 * the msg's; the payload goes as is (a Buffer), as text (a string, number,
 * boolean), as JSON text (an object or array), or empty (null/undefined); a
 * msg without a payload property publishes nothing. With MQTT v5 the
 * properties come from the node's config over the msg's (responseTopic,
 * correlationData, contentType, messageExpiryInterval, userProperties,
 * payloadFormatIndicator); a msg without a topic but with a responseTopic
 * publishes to it. The publish is handed to the broker node's loop through
 * a mailbox; it is dropped there when the broker is not connected, as
 * Node-RED drops it. msg.action connect / disconnect drive the connection.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"
#include "mqtt_broker.h"

typedef struct out_state {
    mqtt_conn *conn;
    mqtt_box *outbox;
    char *topic;
    json_t *qos;    /* node.qos: n.qos || null */
    json_t *retain; /* n.retain */
    char *resp_topic, *correl, *content_type;
    json_t *expiry;
    json_t *user_props; /* object of strings, or NULL */
} out_state;

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

/* setUserProperties: strings kept, other non-null values as JSON text. */
static json_t *user_props(const json_t *src)
{
    if (!json_is_object(src) || crm_is_buf(src) || !json_object_size(src)) return NULL;
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) {
        if (json_is_string(v)) json_object_set(o, k, v);
        else if (!json_is_null(v)) {
            char *t = crm_stringify(v, 0);
            if (t) json_object_set_new(o, k, json_string(t));
            free(t);
        }
    }
    if (!json_object_size(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static char *dup_nonempty(const char *s) { return s && *s ? strdup(s) : NULL; }

static int out_create(crm_node *n, const json_t *cfg)
{
    out_state *st = calloc(1, sizeof *st);
    crm_node_set_data(n, st);
    st->topic = dup_nonempty(crm_cfg_str(cfg, "topic", ""));
    json_t *q = json_object_get(cfg, "qos");
    st->qos = q && crm_truthy(q) ? json_incref(q) : NULL;
    json_t *r = json_object_get(cfg, "retain");
    st->retain = r ? json_incref(r) : NULL;
    st->resp_topic = dup_nonempty(crm_cfg_str(cfg, "respTopic", ""));
    st->correl = dup_nonempty(crm_cfg_str(cfg, "correl", ""));
    st->content_type = dup_nonempty(crm_cfg_str(cfg, "contentType", ""));
    json_t *e = json_object_get(cfg, "expiry");
    st->expiry = e && crm_truthy(e) ? json_incref(e) : NULL;
    const char *up = crm_cfg_str(cfg, "userProps", "");
    const char *s = up;
    while (*s == ' ') s++;
    if (*s == '{') {
        json_t *o = crm_parse(up, strlen(up), NULL, 0);
        st->user_props = user_props(o);
        json_decref(o);
    }
    st->conn = mqtt_conn_find(n, crm_cfg_str(cfg, "broker", ""));
    if (!st->conn) {
        crm_node_log(n, CRM_LOG_ERROR, "missing broker configuration");
        return 0;
    }
    mqtt_conn_register(st->conn, n, NULL);
    st->outbox = mqtt_conn_outbox(st->conn, n);
    return 0;
}

static bool is_true_str(const json_t *v) { return json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), "true")); }

static void publish(crm_node *n, out_state *st, json_t *msg)
{
    bool v5 = mqtt_conn_v5(st->conn);
    /* msg.qos sanitised, then node.qos || msg.qos || 0 */
    json_t *mq = json_object_get(msg, "qos");
    double qos = 0;
    if (mq && crm_truthy(mq)) {
        double d = parse_int(mq);
        qos = d == 0 || d == 1 || d == 2 ? d : 0;
    }
    if (st->qos) qos = crm_to_number(st->qos);
    if (!(qos == 1 || qos == 2)) qos = 0;
    const json_t *rv = st->retain && crm_truthy(st->retain) ? st->retain : json_object_get(msg, "retain");
    bool retain = is_true_str(rv);
    if (st->topic) json_object_set_new(msg, "topic", json_string(st->topic));
    if (!json_object_get(msg, "payload")) return; /* nothing to send */

    json_t *props = NULL;
    const char *topic = json_string_value(json_object_get(msg, "topic"));
    bool topic_ok = topic && crm_mqtt_valid_topic(topic);
    if (v5) {
        props = json_object();
        const json_t *v;
        const char *rt = st->resp_topic;
        if (!rt && json_is_string(v = json_object_get(msg, "responseTopic")) && json_string_length(v)) rt = json_string_value(v);
        if (rt) json_object_set_new(props, "responseTopic", json_string(rt));
        if (st->correl) json_object_set_new(props, "correlationData", crm_buf_new(st->correl, strlen(st->correl)));
        else if ((v = json_object_get(msg, "correlationData")) && (crm_is_buf(v) || json_is_string(v)))
            json_object_set(props, "correlationData", (json_t *)v);
        const char *ct = st->content_type;
        if (!ct && json_is_string(v = json_object_get(msg, "contentType")) && json_string_length(v)) ct = json_string_value(v);
        if (ct) json_object_set_new(props, "contentType", json_string(ct));
        double e = parse_int(st->expiry ? st->expiry : json_object_get(msg, "messageExpiryInterval"));
        if (e >= 0) json_object_set_new(props, "messageExpiryInterval", crm_num(e));
        json_t *up = user_props(st->user_props ? st->user_props : json_object_get(msg, "userProperties"));
        if (up) json_object_set_new(props, "userProperties", up);
        v = json_object_get(msg, "payloadFormatIndicator");
        if (json_is_boolean(v) || (json_is_string(v) && (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false"))))
            json_object_set_new(props, "payloadFormatIndicator", json_boolean(is_true_str(v)));
        /* msg.topicAlias: parseInt, kept when 1 ..the server's Topic Alias Maximum
         * (else the message goes without an alias) */
        double alias = parse_int(json_object_get(msg, "topicAlias"));
        int amax = mqtt_conn_alias_max(st->conn);
        bool aliased = alias >= 1 && alias <= amax;
        if (aliased) json_object_set_new(props, "topicAlias", crm_num(alias));
        if (topic_ok && aliased) {
            /* the broker node sends "" when the alias already stands for this topic */
        } else if ((!topic || !*topic) && rt) {
            topic = rt;
            topic_ok = crm_mqtt_valid_topic(topic);
        }
    }
    if (!topic_ok) {
        crm_node_warn(n, "Error: Invalid topic specified");
        json_decref(props);
        return;
    }
    /* the payload's bytes: a Buffer's, a string's, JSON text, or String(v) */
    const json_t *p = json_object_get(msg, "payload");
    const void *data = NULL;
    size_t len = 0;
    char *text = NULL;
    if (crm_is_buf(p)) data = crm_buf_data(p, &len);
    else if (json_is_null(p)) len = 0;
    else if (json_is_object(p) || json_is_array(p)) text = crm_stringify(p, 0);
    else if (json_is_string(p)) data = json_string_value(p), len = json_string_length(p);
    else text = crm_to_string(p);
    if (text) data = text, len = strlen(text);
    mqtt_tx *t = mqtt_tx_new(topic, data, len);
    free(text);
    t->qos = (int)qos;
    t->retain = retain;
    t->props = props;
    mqtt_box_put(st->outbox, &t->hdr);
}

static void out_input(crm_node *n, json_t *msg)
{
    out_state *st = crm_node_data(n);
    if (!st->conn) {
        json_decref(msg);
        return;
    }
    const json_t *a = json_object_get(msg, "action");
    if (a && crm_truthy(a)) {
        const char *action = json_string_value(a);
        if (action && !strcmp(action, "connect")) {
            const json_t *b = json_object_get(msg, "broker");
            bool can = mqtt_conn_state(st->conn) == CRM_MQTT_DISCONNECTED;
            if (!can && json_is_object(b) && !crm_truthy(json_object_get(b, "force"))) {
                crm_node_error(n, msg, "Error: Disconnect from broker before connecting");
                json_decref(msg);
                return;
            }
            if (!can && json_is_object(b)) mqtt_conn_action(st->conn, n, false, NULL);
            mqtt_conn_action(st->conn, n, true, json_is_object(b) ? b : NULL);
        } else if (action && !strcmp(action, "disconnect")) {
            mqtt_conn_action(st->conn, n, false, NULL);
        } else {
            crm_node_error(n, msg, "Error: Invalid action specified");
            json_decref(msg);
            return;
        }
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    publish(n, st, msg);
    crm_node_done(n, msg);
    json_decref(msg);
}

static void out_close(crm_node *n)
{
    out_state *st = crm_node_data(n);
    if (!st) return;
    mqtt_box_unref(st->outbox);
    free(st->topic);
    json_decref(st->qos);
    json_decref(st->retain);
    free(st->resp_topic);
    free(st->correl);
    free(st->content_type);
    json_decref(st->expiry);
    json_decref(st->user_props);
    free(st);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_mqtt_out = {
    .abi = CRM_ABI_VERSION, .type = "mqtt out", .create = out_create, .input = out_input, .close = out_close};
