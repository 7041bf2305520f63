/* mqtt_broker.c: the `mqtt-broker` config node, and the mailboxes its mqtt in
 * / mqtt out nodes talk to it through (mqtt_broker.h).
 *
 * One connection per broker node, on the broker node's loop; users register
 * from their create(). Node-RED's behaviour kept: client id "nodered" + a
 * generated id when empty; a non-clean session without a client id is made
 * clean (with a warning); status connecting / connected / disconnected on
 * every user; a birth message 1 ms after each connect, a close message
 * before a deliberate disconnect, a will; a publish while not connected is
 * dropped (node.publish only publishes when node.connected); every
 * subscription of every user receives each arriving message its filter
 * matches (with v5, only when the subscription identifier agrees).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"
#include "mqtt_broker.h"

/* Mailboxes -------------------------------------------------------------------- */

struct mqtt_box {
    crm_node *target;
    mqtt_box_fn fn;
    void (*free_item)(mqtt_item *);
    void *ctx;
    pthread_mutex_t mu;
    mqtt_item *head, *tail;
    bool posted; /* a drain is pending on the target's loop */
    bool dirty;  /* items wait for a kick */
    atomic_int refs;
    atomic_bool closed;
};

mqtt_box *mqtt_box_new(crm_node *target, mqtt_box_fn fn, void (*free_item)(mqtt_item *), void *ctx)
{
    mqtt_box *b = calloc(1, sizeof *b);
    b->target = target;
    b->fn = fn;
    b->free_item = free_item;
    b->ctx = ctx;
    pthread_mutex_init(&b->mu, NULL);
    atomic_init(&b->refs, 1);
    return b;
}

void mqtt_box_ref(mqtt_box *b) { atomic_fetch_add(&b->refs, 1); }

void mqtt_box_unref(mqtt_box *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
    for (mqtt_item *it = b->head, *next; it; it = next) {
        next = it->next;
        b->free_item(it);
    }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void mqtt_box_close(mqtt_box *b)
{
    if (b) atomic_store(&b->closed, true);
}

static void box_drain(crm_node *n, void *arg)
{
    mqtt_box *b = arg;
    pthread_mutex_lock(&b->mu);
    mqtt_item *it = b->head;
    b->head = b->tail = NULL;
    b->posted = false;
    pthread_mutex_unlock(&b->mu);
    while (it) {
        mqtt_item *next = it->next;
        if (atomic_load(&b->closed)) b->free_item(it);
        else b->fn(n, it, b->ctx);
        it = next;
    }
    mqtt_box_unref(b);
}

static void box_drop(void *arg) { mqtt_box_unref(arg); }

/* Posts a drain unless one is pending; called with b->mu held. */
static bool need_post(mqtt_box *b)
{
    if (b->posted || !b->head) return false;
    b->posted = true;
    return true;
}

static void post(mqtt_box *b)
{
    mqtt_box_ref(b);
    crm_node_post_ex(b->target, box_drain, box_drop, b);
}

static void append(mqtt_box *b, mqtt_item *it)
{
    it->next = NULL;
    if (b->tail) b->tail->next = it;
    else b->head = it;
    b->tail = it;
}

void mqtt_box_put(mqtt_box *b, mqtt_item *it)
{
    if (atomic_load(&b->closed)) {
        b->free_item(it);
        return;
    }
    pthread_mutex_lock(&b->mu);
    append(b, it);
    bool p = need_post(b);
    pthread_mutex_unlock(&b->mu);
    if (p) post(b);
}

bool mqtt_box_put_quiet(mqtt_box *b, mqtt_item *it)
{
    if (atomic_load(&b->closed)) {
        b->free_item(it);
        return false;
    }
    pthread_mutex_lock(&b->mu);
    append(b, it);
    bool was = b->dirty;
    b->dirty = true;
    pthread_mutex_unlock(&b->mu);
    return !was;
}

void mqtt_box_kick(mqtt_box *b)
{
    pthread_mutex_lock(&b->mu);
    b->dirty = false;
    bool p = need_post(b);
    pthread_mutex_unlock(&b->mu);
    if (p) post(b);
}

/* Items ----------------------------------------------------------------------------- */

void mqtt_rx_free(mqtt_item *it)
{
    mqtt_rx *r = (mqtt_rx *)it;
    json_decref(r->props);
    free(r);
}

mqtt_tx *mqtt_tx_new(const char *topic, const void *payload, size_t len)
{
    size_t tl = strlen(topic);
    mqtt_tx *t = malloc(sizeof *t + tl + 1 + len);
    *t = (mqtt_tx){.topic = (char *)t->data, .payload = t->data + tl + 1, .len = len};
    memcpy(t->data, topic, tl + 1);
    if (len) memcpy(t->payload, payload, len);
    return t;
}

void mqtt_tx_free(mqtt_item *it)
{
    mqtt_tx *t = (mqtt_tx *)it;
    json_decref(t->props);
    free(t);
}

mqtt_datatype mqtt_datatype_of(const char *s)
{
    if (!s || !*s) return MQTT_DT_UTF8; /* n.datatype || "utf8" */
    if (!strcmp(s, "buffer")) return MQTT_DT_BUFFER;
    if (!strcmp(s, "base64")) return MQTT_DT_BASE64;
    if (!strcmp(s, "utf8")) return MQTT_DT_UTF8;
    if (!strcmp(s, "json")) return MQTT_DT_JSON;
    if (!strcmp(s, "auto-detect")) return MQTT_DT_AUTO_DETECT;
    return MQTT_DT_AUTO;
}

/* The connection's state -------------------------------------------------------------- */

typedef struct user {
    crm_node *node;
    mqtt_box *inbox; /* mqtt in: its mailbox (a reference) */
} user;

typedef struct sub {
    char *filter;
    crm_node *ref; /* the user */
    mqtt_box *inbox;
    int qos;
    bool nl, rap;
    int rh;
    mqtt_datatype dt;
} sub;

/* A message to publish later (birth, close): topic, payload, qos, retain, props. */
typedef struct lwt {
    char *topic;
    char *payload;
    int qos;
    bool retain;
    json_t *props;
} lwt;

/* Control jobs from users (subscribe, unsubscribe, actions). */
enum { JOB_SUB, JOB_UNSUB, JOB_CONNECT, JOB_DISCONNECT };
typedef struct job {
    mqtt_item hdr;
    int kind;
    crm_node *user;
    char *filter;
    mqtt_sub_req req;
    json_t *opts; /* connect: msg.broker */
} job;

struct mqtt_conn {
    crm_node *node;
    /* config */
    char *host;
    int port;
    char *client_id;
    int keepalive;
    bool clean, usetls, verify, auto_connect, local, id_given;
    int version;
    char *username, *password;
    char *tls_id;
    char *broker; /* the config's broker text */
    char *ws_path; /* ws:// or wss:// broker: the path ("/" at least); NULL: MQTT over TCP */
    json_t *connect_props; /* v5 CONNECT properties */
    json_t *user_props, *session_expiry; /* the config's userProps and sessionExpiry (or NULL) */
    lwt birth, close, will;
    double reconnect_ms;
    /* runtime */
    crm_mqtt *client;
    atomic_int state;
    atomic_int alias_max; /* the server's Topic Alias Maximum */
    json_t *aliases;      /* topic alias -> topic, since the last connect */
    user *users;
    size_t nusers;
    sub *subs;
    size_t nsubs;
    json_t *subids; /* filter -> identifier */
    uint32_t next_subid;
    mqtt_box *ctl;
    mqtt_box **dirty; /* inboxes with messages waiting for the burst's end */
    size_t ndirty, capdirty;
    crm_timer *birth_timer;
};

static void ctl_handle(crm_node *n, mqtt_item *it, void *ctx);
static void job_free(mqtt_item *it);

static void free_lwt(lwt *l)
{
    free(l->topic);
    free(l->payload);
    json_decref(l->props);
    memset(l, 0, sizeof *l);
}

static char *dup_nonempty(const char *s) { return s && *s ? strdup(s) : NULL; }

/* Node-RED's createLWT: topic, payload || "", Number(qos||0), retain, and
 * the v5 properties of the editor's birthMsg/closeMsg/willMsg object. */
static void make_lwt(lwt *l, const json_t *cfg, const char *prefix)
{
    char k[32];
    snprintf(k, sizeof k, "%sTopic", prefix);
    const char *topic = crm_cfg_str(cfg, k, "");
    if (!*topic) return;
    l->topic = strdup(topic);
    snprintf(k, sizeof k, "%sPayload", prefix);
    json_t *p = json_object_get(cfg, k);
    l->payload = p && crm_truthy(p) ? crm_to_string(p) : strdup("");
    snprintf(k, sizeof k, "%sQos", prefix);
    double q = crm_cfg_num(cfg, k, 0);
    l->qos = q == 1 || q == 2 ? (int)q : 0;
    snprintf(k, sizeof k, "%sRetain", prefix);
    json_t *r = json_object_get(cfg, k);
    l->retain = json_is_true(r) || (json_is_string(r) && !strcmp(json_string_value(r), "true"));
    snprintf(k, sizeof k, "%sMsg", prefix);
    const json_t *v5 = json_object_get(cfg, k);
    if (!json_is_object(v5)) return;
    json_t *props = json_object();
    const json_t *v;
    const char *us = crm_cfg_str(v5, "userProps", NULL);
    if (us) {
        const char *s = us;
        while (*s == ' ') s++;
        if (*s == '{') {
            json_t *o = crm_parse(us, strlen(us), NULL, 0);
            if (json_is_object(o)) {
                json_t *up = json_object();
                const char *key;
                json_t *val;
                json_object_foreach(o, key, val) {
                    if (json_is_string(val)) json_object_set(up, key, val);
                    else if (!json_is_null(val)) {
                        char *t = crm_stringify(val, 0);
                        json_object_set_new(up, key, json_string(t));
                        free(t);
                    }
                }
                if (json_object_size(up)) json_object_set(props, "userProperties", up);
                json_decref(up);
            }
            json_decref(o);
        }
    }
    if (json_is_string(v = json_object_get(v5, "contentType")) && json_string_length(v))
        json_object_set(props, "contentType", (json_t *)v);
    if (json_is_string(v = json_object_get(v5, "respTopic")) && json_string_length(v))
        json_object_set(props, "responseTopic", (json_t *)v);
    if (json_is_string(v = json_object_get(v5, "correl")) && json_string_length(v))
        json_object_set_new(props, "correlationData", crm_buf_new(json_string_value(v), json_string_length(v)));
    double e = crm_cfg_num(v5, "expiry", NAN);
    if (e == e) json_object_set_new(props, "messageExpiryInterval", crm_num(trunc(e)));
    double d = crm_cfg_num(v5, "delay", NAN);
    if (d == d) json_object_set_new(props, "willDelayInterval", crm_num(trunc(d)));
    if (json_object_size(props)) l->props = props;
    else json_decref(props);
}

/* "mqtt://host:port", "mqtts://host", "ws://host:port/path", "wss://...",
 * or a plain host. */
static void parse_broker(mqtt_conn *c, const char *broker, int port)
{
    const char *sep = strstr(broker, "://");
    c->port = port;
    free(c->ws_path);
    c->ws_path = NULL;
    if (!sep) {
        c->host = strdup(*broker ? broker : "localhost");
        if (!*broker) c->port = 1883;
        return;
    }
    bool ws = !strncmp(broker, "ws://", 5) || !strncmp(broker, "wss://", 6);
    if (!strncmp(broker, "mqtts", 5) || !strncmp(broker, "ssl", 3) || !strncmp(broker, "tls", 3) ||
        !strncmp(broker, "wss", 3))
        c->usetls = true;
    else if (ws)
        c->usetls = false;
    const char *h = sep + 3, *end = h + strcspn(h, "/?");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb) {
            c->host = strndup(h + 1, (size_t)(rb - h - 1));
            colon = rb[1] == ':' ? rb + 1 : NULL;
        }
    }
    if (!c->host) {
        colon = memchr(h, ':', (size_t)(end - h));
        c->host = strndup(h, (size_t)((colon ? colon : end) - h));
    }
    if (ws) {
        /* MQTT.js: the URL's path, "/" when none; ports 80 / 443 */
        c->ws_path = *end == '/' ? strdup(end) : *end ? (char *)calloc(1, strlen(end) + 2) : strdup("/");
        if (*end && *end != '/') {
            c->ws_path[0] = '/';
            strcpy(c->ws_path + 1, end);
        }
        c->port = colon ? atoi(colon + 1) : c->usetls ? 443 : 80;
        return;
    }
    c->port = colon ? atoi(colon + 1) : c->usetls ? 8883 : 1883;
}

/* The v5 CONNECT properties Node-RED's broker node gives MQTT.js:
 * requestResponseInformation and requestProblemInformation true, the
 * config's userProps (a JSON object text) and sessionExpiry (when not 0). */
static void make_connect_props(mqtt_conn *c)
{
    json_decref(c->connect_props);
    json_t *p = json_pack("{sbsb}", "requestResponseInformation", 1, "requestProblemInformation", 1);
    const char *us = json_string_value(c->user_props);
    if (us) {
        const char *s = us;
        while (*s == ' ') s++;
        json_t *o = *s == '{' ? crm_parse(us, strlen(us), NULL, 0) : NULL;
        if (json_is_object(o)) {
            json_t *clone = json_object();
            const char *key;
            json_t *val;
            json_object_foreach(o, key, val) {
                if (json_is_string(val)) json_object_set(clone, key, val);
                else if (!json_is_null(val)) {
                    char *t = crm_stringify(val, 0);
                    json_object_set_new(clone, key, json_string(t));
                    free(t);
                }
            }
            if (json_object_size(clone)) json_object_set(p, "userProperties", clone);
            json_decref(clone);
        }
        json_decref(o);
    }
    const json_t *se = c->session_expiry;
    /* node.sessionExpiryInterval && !== "0": setIntProp (parseInt, no bounds) */
    if (se && crm_truthy(se) && !(json_is_string(se) && !strcmp(json_string_value(se), "0")))
        json_object_set(p, "sessionExpiryInterval", (json_t *)se);
    c->connect_props = p;
}

/* setOptions: userProperties (else userProps) and sessionExpiry (else
 * sessionExpiryInterval) replace the node's when present. */
static void take_connect_options(mqtt_conn *c, const json_t *o)
{
    const json_t *v;
    if ((v = json_object_get(o, "userProperties")) || (v = json_object_get(o, "userProps"))) {
        json_decref(c->user_props);
        c->user_props = json_deep_copy(v);
    }
    if ((v = json_object_get(o, "sessionExpiry")) || (v = json_object_get(o, "sessionExpiryInterval"))) {
        json_decref(c->session_expiry);
        c->session_expiry = json_deep_copy(v);
    }
    make_connect_props(c);
}

static int broker_create(crm_node *n, const json_t *cfg)
{
    mqtt_conn *c = calloc(1, sizeof *c);
    c->node = n;
    double port = crm_cfg_num(cfg, "port", 1883);
    c->usetls = crm_cfg_bool(cfg, "usetls", false);
    c->broker = strdup(crm_cfg_str(cfg, "broker", ""));
    parse_broker(c, c->broker, port > 0 && port < 65536 ? (int)port : 1883);
    c->local = !strcmp(crm_cfg_str(cfg, "broker", ""), "localhost") || !strcmp(crm_cfg_str(cfg, "broker", ""), "127.0.0.1");
    c->verify = crm_cfg_bool(cfg, "verifyservercert", false);
    c->tls_id = dup_nonempty(crm_cfg_str(cfg, "tls", ""));
    c->keepalive = (int)crm_cfg_num(cfg, "keepalive", 60);
    if (c->keepalive < 0) c->keepalive = 60;
    c->clean = crm_cfg_bool(cfg, "cleansession", true);
    c->client_id = dup_nonempty(crm_cfg_str(cfg, "clientid", ""));
    if (!c->clean && !c->client_id) {
        c->clean = true;
        crm_node_warn(n, "No client ID set, using clean session");
    }
    c->id_given = c->client_id != NULL;
    if (!c->client_id) {
        char id[17];
        c->client_id = malloc(24);
        snprintf(c->client_id, 24, "nodered%s", crm_make_id(id));
    }
    double pvn = crm_cfg_num(cfg, "protocolVersion", 4);
    c->version = crm_cfg_bool(cfg, "compatmode", false) || pvn == 3 ? 3 : pvn == 5 ? 5 : 4;
    json_t *ac = json_object_get(cfg, "autoConnect");
    c->auto_connect = !(json_is_false(ac) || (json_is_string(ac) && !strcmp(json_string_value(ac), "false")));
    const json_t *cred = json_object_get(cfg, "credentials");
    c->username = dup_nonempty(json_string_value(json_object_get(cred, "user")));
    c->password = dup_nonempty(json_string_value(json_object_get(cred, "password")));
    make_lwt(&c->birth, cfg, "birth");
    make_lwt(&c->close, cfg, "close");
    make_lwt(&c->will, cfg, "will");
    take_connect_options(c, cfg);
    c->reconnect_ms = crm_cfg_num(crm_node_settings(n), "mqttReconnectTime", 5000);
    c->subids = json_object();
    c->aliases = json_object();
    c->next_subid = 1;
    atomic_init(&c->state, CRM_MQTT_DISCONNECTED);
    atomic_init(&c->alias_max, 0);
    c->ctl = mqtt_box_new(n, ctl_handle, job_free, c);
    crm_node_set_data(n, c);
    return 0;
}

/* Users' status ------------------------------------------------------------------------- */

static void set_status(crm_node *n, void *arg)
{
    switch ((int)(intptr_t)arg) {
    case CRM_MQTT_CONNECTED: crm_node_status(n, "green", "dot", "node-red:common.status.connected"); break;
    case CRM_MQTT_CONNECTING: crm_node_status(n, "yellow", "ring", "node-red:common.status.connecting"); break;
    default: crm_node_status(n, "red", "ring", "node-red:common.status.disconnected"); break;
    }
}

static void status_all(mqtt_conn *c, int st)
{
    for (size_t i = 0; i < c->nusers; i++) crm_node_post(c->users[i].node, set_status, (void *)(intptr_t)st);
}

/* Subscriptions ------------------------------------------------------------------------------ */

static uint32_t subid_of(mqtt_conn *c, const char *filter, bool create)
{
    json_t *v = json_object_get(c->subids, filter);
    if (v) return (uint32_t)crm_num_value(v);
    if (!create) return 0;
    uint32_t id = c->next_subid++;
    json_object_set_new(c->subids, filter, crm_num(id));
    return id;
}

static void send_subscribe(mqtt_conn *c, const sub *s)
{
    if (!c->client || crm_mqtt_get_state(c->client) != CRM_MQTT_CONNECTED) return;
    int rc = crm_mqtt_subscribe(c->client, s->filter, s->qos < 0 ? 0 : s->qos, s->nl, s->rap, s->rh,
                                subid_of(c, s->filter, true));
    if (rc) crm_node_log(c->node, CRM_LOG_WARN, "subscribe %s: %s", s->filter, crm_mqtt_strerror(rc));
}

static void remove_sub(mqtt_conn *c, crm_node *ref, const char *filter)
{
    bool others = false;
    for (size_t i = 0; i < c->nsubs;) {
        sub *s = &c->subs[i];
        if (strcmp(s->filter, filter)) {
            i++;
            continue;
        }
        if (s->ref != ref) {
            others = true;
            i++;
            continue;
        }
        free(s->filter);
        mqtt_box_unref(s->inbox);
        memmove(s, s + 1, (c->nsubs - i - 1) * sizeof *s);
        c->nsubs--;
    }
    if (!others && json_object_get(c->subids, filter)) {
        if (c->client && crm_mqtt_get_state(c->client) == CRM_MQTT_CONNECTED) crm_mqtt_unsubscribe(c->client, filter);
        json_object_del(c->subids, filter);
    }
}

static mqtt_box *inbox_of(mqtt_conn *c, crm_node *u)
{
    for (size_t i = 0; i < c->nusers; i++)
        if (c->users[i].node == u) return c->users[i].inbox;
    return NULL;
}

static void add_sub(mqtt_conn *c, crm_node *user, const mqtt_sub_req *r)
{
    mqtt_box *inbox = inbox_of(c, user);
    if (!inbox) return;
    /* the same user and filter again: replace it */
    for (size_t i = 0; i < c->nsubs; i++)
        if (c->subs[i].ref == user && !strcmp(c->subs[i].filter, r->filter)) {
            free(c->subs[i].filter);
            mqtt_box_unref(c->subs[i].inbox);
            memmove(&c->subs[i], &c->subs[i + 1], (c->nsubs - i - 1) * sizeof *c->subs);
            c->nsubs--;
            break;
        }
    c->subs = realloc(c->subs, (c->nsubs + 1) * sizeof *c->subs);
    sub *s = &c->subs[c->nsubs++];
    *s = (sub){.filter = strdup(r->filter), .ref = user, .inbox = inbox, .qos = r->qos, .nl = r->nl, .rap = r->rap,
               .rh = r->rh, .dt = r->dt};
    mqtt_box_ref(inbox);
    subid_of(c, r->filter, true);
    send_subscribe(c, s);
}

/* The connection's handlers ----------------------------------------------------------------------- */

static void publish_lwt(mqtt_conn *c, const lwt *l)
{
    if (!l->topic) return;
    crm_mqtt_publish(c->client, l->topic, l->payload, strlen(l->payload), l->qos, l->retain, l->props);
}

static void birth_fired(crm_node *n, void *arg)
{
    (void)n;
    mqtt_conn *c = arg;
    c->birth_timer = NULL;
    publish_lwt(c, &c->birth);
}

/* The broker as Node-RED names it in its log lines: [clientid@]brokerurl. */
static void broker_name(const mqtt_conn *c, char *who, size_t size)
{
    if (c->ws_path)
        snprintf(who, size, "%s%s%s", c->id_given ? c->client_id : "", c->id_given ? "@" : "", c->broker);
    else
        snprintf(who, size, "%s%s%s://%s:%d", c->id_given ? c->client_id : "", c->id_given ? "@" : "",
                 c->usetls ? "mqtts" : "mqtt", c->host, c->port);
}

/* Node-RED logs each failed attempt at info level until the first connection
 * (node.connecting), with the reconnect period between them. */
static void on_connect_failed(void *arg)
{
    mqtt_conn *c = arg;
    char who[512];
    broker_name(c, who, sizeof who);
    crm_node_log(c->node, CRM_LOG_INFO, "Connection failed to broker: %s", who);
}

static void on_state(void *arg, crm_mqtt_state st, int rc)
{
    mqtt_conn *c = arg;
    (void)rc;
    int old = atomic_exchange(&c->state, (int)st);
    char who[512];
    broker_name(c, who, sizeof who);
    if (st == CRM_MQTT_CONNECTED) {
        crm_node_log(c->node, CRM_LOG_INFO, "Connected to broker: %s", who);
        atomic_store(&c->alias_max, crm_mqtt_topic_alias_max(c->client));
        json_object_clear(c->aliases);
        status_all(c, st);
        for (size_t i = 0; i < c->nsubs; i++) send_subscribe(c, &c->subs[i]);
        if (c->birth.topic && !c->birth_timer) c->birth_timer = crm_timer_start(c->node, 1, 0, birth_fired, c);
    } else if (st == CRM_MQTT_DISCONNECTED) {
        if (old == CRM_MQTT_CONNECTED) crm_node_log(c->node, CRM_LOG_INFO, "Disconnected from broker: %s", who);
        status_all(c, st);
    } else {
        status_all(c, st);
    }
}

static void on_message(void *arg, const crm_mqtt_message *m)
{
    mqtt_conn *c = arg;
    bool v5 = c->version == 5;
    for (size_t i = 0; i < c->nsubs; i++) {
        sub *s = &c->subs[i];
        if (v5 && m->nsubids) {
            uint32_t id = subid_of(c, s->filter, false);
            bool found = false;
            for (int k = 0; k < m->nsubids; k++) found = found || m->subids[k] == id;
            if (id && !found) continue;
        }
        if (!crm_mqtt_topic_match(s->filter, m->topic)) continue;
        size_t tl = strlen(m->topic);
        mqtt_rx *r = malloc(sizeof *r + tl + 1 + m->len);
        r->topic = (char *)r->data;
        memcpy(r->topic, m->topic, tl + 1);
        r->payload = r->data + tl + 1;
        if (m->len) memcpy(r->payload, m->payload, m->len);
        r->len = m->len;
        r->qos = m->qos;
        r->retain = m->retain;
        r->dt = s->dt;
        r->props = m->props ? json_deep_copy(m->props) : NULL;
        if (mqtt_box_put_quiet(s->inbox, &r->hdr)) {
            if (c->ndirty == c->capdirty) {
                c->capdirty = c->capdirty ? c->capdirty * 2 : 8;
                c->dirty = realloc(c->dirty, c->capdirty * sizeof *c->dirty);
            }
            mqtt_box_ref(s->inbox);
            c->dirty[c->ndirty++] = s->inbox;
        }
    }
}

static void on_burst_end(void *arg)
{
    mqtt_conn *c = arg;
    for (size_t i = 0; i < c->ndirty; i++) {
        mqtt_box_kick(c->dirty[i]);
        mqtt_box_unref(c->dirty[i]);
    }
    c->ndirty = 0;
}

static void do_connect(mqtt_conn *c)
{
    if (!c->client) {
        crm_tls_options *tls = NULL;
        if (c->usetls && c->tls_id) {
            crm_node *t = crm_node_find(c->node, c->tls_id);
            if (t && !strcmp(crm_node_type_name(t), "tls-config")) tls = crm_node_data(t);
        }
        crm_mqtt_options o = {.host = c->host, .port = c->port, .client_id = c->client_id, .keepalive = c->keepalive,
                              .clean = c->clean, .version = c->version, .username = c->username,
                              .password = c->password, .tls = c->usetls, .tls_opts = tls,
                              .verify = tls ? tls->verify : c->verify, .reconnect_ms = c->reconnect_ms,
                              .connect_props = c->version == 5 ? c->connect_props : NULL, .ws_path = c->ws_path};
        if (c->will.topic) {
            o.will_topic = c->will.topic;
            o.will_payload = c->will.payload;
            o.will_len = strlen(c->will.payload);
            o.will_qos = c->will.qos;
            o.will_retain = c->will.retain;
            o.will_props = c->will.props;
        }
        crm_mqtt_handlers h = {.state = on_state, .message = on_message, .burst_end = on_burst_end,
                                 .connect_failed = on_connect_failed};
        char *err = NULL;
        c->client = crm_mqtt_new(c->node, &o, &h, c, &err);
        if (!c->client) {
            crm_node_error(c->node, NULL, "%s", err ? err : "cannot create the MQTT client");
            free(err);
            return;
        }
    }
    crm_mqtt_connect(c->client);
}

static void do_disconnect(mqtt_conn *c)
{
    if (!c->client) return;
    crm_timer_cancel(c->birth_timer);
    c->birth_timer = NULL;
    if (crm_mqtt_get_state(c->client) == CRM_MQTT_CONNECTED) publish_lwt(c, &c->close);
    int was = crm_mqtt_get_state(c->client);
    crm_mqtt_disconnect(c->client);
    /* the client reports DISCONNECTED only for a connection that was up */
    if (was != CRM_MQTT_CONNECTED) on_state(c, CRM_MQTT_DISCONNECTED, 0);
}

/* createLWT from a {topic, payload, qos, retain} object (no topic: none). */
static void lwt_from_object(lwt *l, const json_t *o)
{
    free_lwt(l);
    const char *topic = json_is_object(o) ? crm_cfg_str(o, "topic", "") : "";
    if (!*topic) return;
    l->topic = strdup(topic);
    const json_t *p = json_object_get(o, "payload");
    if (!p || !crm_truthy(p)) l->payload = strdup("");
    else if (json_is_object(p) || json_is_array(p)) l->payload = crm_stringify(p, 0);
    else l->payload = crm_to_string(p);
    double q = crm_cfg_num(o, "qos", 0);
    l->qos = q == 1 || q == 2 ? (int)q : 0;
    const json_t *r = json_object_get(o, "retain");
    l->retain = json_is_true(r) || (json_is_string(r) && !strcmp(json_string_value(r), "true"));
}

static void set_str(char **dst, const json_t *v)
{
    free(*dst);
    *dst = json_is_string(v) && json_string_length(v) ? strdup(json_string_value(v)) : NULL;
}

/* msg.broker of a connect action, as setOptions(opts) without init: only
 * the properties present change. The client is made anew. */
static void apply_options(mqtt_conn *c, const json_t *o)
{
    const json_t *v;
    if ((v = json_object_get(o, "usetls"))) c->usetls = crm_cfg_bool(o, "usetls", false);
    if (json_object_get(o, "broker") || json_object_get(o, "port")) {
        if (json_is_string(v = json_object_get(o, "broker"))) {
            free(c->broker);
            c->broker = strdup(json_string_value(v));
        }
        double port = crm_cfg_num(o, "port", c->port);
        free(c->host);
        c->host = NULL;
        parse_broker(c, c->broker, port > 0 && port < 65536 ? (int)port : 1883);
        c->local = !strcmp(c->broker, "localhost") || !strcmp(c->broker, "127.0.0.1");
    }
    if (json_object_get(o, "clientid")) {
        set_str(&c->client_id, json_object_get(o, "clientid"));
        c->id_given = c->client_id != NULL;
    }
    if (!c->id_given) {
        char id[17];
        free(c->client_id);
        c->client_id = malloc(24);
        snprintf(c->client_id, 24, "nodered%s", crm_make_id(id));
    }
    if (json_object_get(o, "username")) set_str(&c->username, json_object_get(o, "username"));
    if (json_object_get(o, "password")) set_str(&c->password, json_object_get(o, "password"));
    if (json_object_get(o, "keepalive")) c->keepalive = (int)crm_cfg_num(o, "keepalive", 60);
    if (json_object_get(o, "cleansession")) c->clean = crm_cfg_bool(o, "cleansession", true);
    if (!c->clean && !c->id_given) c->clean = true;
    if (json_object_get(o, "protocolVersion")) {
        double pv = crm_cfg_num(o, "protocolVersion", 4);
        c->version = pv == 3 ? 3 : pv == 5 ? 5 : 4;
    }
    if (json_object_get(o, "birth")) lwt_from_object(&c->birth, json_object_get(o, "birth"));
    if (json_object_get(o, "close")) lwt_from_object(&c->close, json_object_get(o, "close"));
    if (json_object_get(o, "will")) lwt_from_object(&c->will, json_object_get(o, "will"));
    take_connect_options(c, o);
    if (c->client) {
        crm_mqtt_free(c->client, 0);
        c->client = NULL;
    }
}

static void ctl_handle(crm_node *n, mqtt_item *it, void *ctx)
{
    (void)n;
    mqtt_conn *c = ctx;
    job *j = (job *)it;
    switch (j->kind) {
    case JOB_SUB:
        j->req.filter = j->filter;
        add_sub(c, j->user, &j->req);
        break;
    case JOB_UNSUB: remove_sub(c, j->user, j->filter); break;
    case JOB_CONNECT:
        if (!c->client || (crm_mqtt_get_state(c->client) == CRM_MQTT_DISCONNECTED)) {
            if (j->opts) apply_options(c, j->opts);
            do_connect(c);
        }
        break;
    case JOB_DISCONNECT: do_disconnect(c); break;
    }
    free(j->filter);
    json_decref(j->opts);
    free(j);
}

static void job_free(mqtt_item *it)
{
    job *j = (job *)it;
    free(j->filter);
    json_decref(j->opts);
    free(j);
}

static void tx_handle(crm_node *n, mqtt_item *it, void *ctx)
{
    (void)n;
    mqtt_conn *c = ctx;
    mqtt_tx *t = (mqtt_tx *)it;
    if (c->client && crm_mqtt_get_state(c->client) == CRM_MQTT_CONNECTED) {
        const char *topic = t->topic;
        const json_t *a = c->version == 5 ? json_object_get(t->props, "topicAlias") : NULL;
        if (a) { /* node.topicAliases: the topic once, then the alias alone */
            char key[24];
            snprintf(key, sizeof key, "%d", (int)crm_num_value(a));
            const char *known = json_string_value(json_object_get(c->aliases, key));
            if (known && !strcmp(known, topic)) topic = "";
            else json_object_set_new(c->aliases, key, json_string(topic));
        }
        int rc = crm_mqtt_publish(c->client, topic, t->payload, t->len, t->qos, t->retain, t->props);
        if (rc) crm_node_log(c->node, CRM_LOG_WARN, "publish to %s: %s", t->topic, crm_mqtt_strerror(rc));
    }
    mqtt_tx_free(it);
}

/* The users' side -------------------------------------------------------------------------------------- */

mqtt_conn *mqtt_conn_find(crm_node *from, const char *id)
{
    crm_node *b = id && *id ? crm_node_find(from, id) : NULL;
    if (!b || strcmp(crm_node_type_name(b), "mqtt-broker")) return NULL;
    return crm_node_data(b);
}

bool mqtt_conn_v5(const mqtt_conn *c) { return c->version == 5; }
bool mqtt_conn_local(const mqtt_conn *c) { return c->local; }
int mqtt_conn_state(const mqtt_conn *c) { return atomic_load(&((mqtt_conn *)c)->state); }
int mqtt_conn_alias_max(const mqtt_conn *c) { return atomic_load(&((mqtt_conn *)c)->alias_max); }

void mqtt_conn_register(mqtt_conn *c, crm_node *u, mqtt_box *inbox)
{
    c->users = realloc(c->users, (c->nusers + 1) * sizeof *c->users);
    c->users[c->nusers++] = (user){.node = u, .inbox = inbox};
    if (inbox) mqtt_box_ref(inbox);
}

void mqtt_conn_subscribe_now(mqtt_conn *c, crm_node *user, const mqtt_sub_req *r) { add_sub(c, user, r); }

static job *new_job(int kind, crm_node *user, const char *filter)
{
    job *j = calloc(1, sizeof *j);
    j->kind = kind;
    j->user = user;
    j->filter = filter ? strdup(filter) : NULL;
    return j;
}

void mqtt_conn_subscribe(mqtt_conn *c, crm_node *user, const mqtt_sub_req *r)
{
    job *j = new_job(JOB_SUB, user, r->filter);
    j->req = *r;
    mqtt_box_put(c->ctl, &j->hdr);
}

void mqtt_conn_unsubscribe(mqtt_conn *c, crm_node *user, const char *filter)
{
    mqtt_box_put(c->ctl, &new_job(JOB_UNSUB, user, filter)->hdr);
}

void mqtt_conn_action(mqtt_conn *c, crm_node *user, bool connect, const json_t *opts)
{
    job *j = new_job(connect ? JOB_CONNECT : JOB_DISCONNECT, user, NULL);
    if (connect && opts) j->opts = crm_deep_copy(opts);
    mqtt_box_put(c->ctl, &j->hdr);
}

mqtt_box *mqtt_conn_outbox(mqtt_conn *c, crm_node *user)
{
    (void)user;
    return mqtt_box_new(c->node, tx_handle, mqtt_tx_free, c);
}

/* The node ------------------------------------------------------------------------------------------------ */

static void broker_start(crm_node *n)
{
    mqtt_conn *c = crm_node_data(n);
    if (c->nusers && c->auto_connect) do_connect(c);
}

static void broker_close(crm_node *n)
{
    mqtt_conn *c = crm_node_data(n);
    if (!c) return;
    if (c->client) {
        crm_timer_cancel(c->birth_timer);
        if (crm_mqtt_get_state(c->client) == CRM_MQTT_CONNECTED) publish_lwt(c, &c->close);
        crm_mqtt_free(c->client, 2000);
    }
    on_burst_end(c);
    free(c->dirty);
    for (size_t i = 0; i < c->nsubs; i++) {
        free(c->subs[i].filter);
        mqtt_box_unref(c->subs[i].inbox);
    }
    free(c->subs);
    for (size_t i = 0; i < c->nusers; i++) mqtt_box_unref(c->users[i].inbox);
    free(c->users);
    json_decref(c->subids);
    json_decref(c->aliases);
    if (c->ctl) {
        mqtt_box_close(c->ctl);
        mqtt_box_unref(c->ctl);
    }
    free_lwt(&c->birth);
    free_lwt(&c->close);
    free_lwt(&c->will);
    free(c->host);
    free(c->broker);
    free(c->ws_path);
    json_decref(c->connect_props);
    json_decref(c->user_props);
    json_decref(c->session_expiry);
    free(c->client_id);
    free(c->username);
    free(c->password);
    free(c->tls_id);
    free(c);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_mqtt_broker = {
    .abi = CRM_ABI_VERSION, .type = "mqtt-broker", .create = broker_create, .start = broker_start, .close = broker_close};
