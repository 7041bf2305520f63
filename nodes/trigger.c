/* trigger.c: Node-RED's `trigger` node as a built-in node type
 * (core/function/89-trigger.js). examples/trigger/ keeps the same node as a plugin example.
 *
 * A message starts a timer for its topic (or for all messages): op1 is sent
 * at once, op2 when the timer ends, on the second output when the node has
 * two. While the timer runs further messages are dropped, or extend it
 * (extend), and msg.reset or a payload equal to `reset` stops it. A negative
 * duration resends op1 at that interval until reset; a zero duration blocks
 * until reset. With overrideDelay, msg.delay (ms) replaces the duration.
 * Semantics follow Node-RED 4.1's 89-trigger.js, including:
 *  - the op2 "latest message" (payl) copy per topic survives a reset;
 *  - when extended, the op2 message is a copy of the LAST message (with
 *    payload op2), not of the first;
 *  - a "str" op1/op2 containing "{{" is a mustache template over msg
 *    (runtime/mustache.c, as mustache.js renders it).
 */
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c17 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "mustache.h"
#include "strbuf.h"

/* One topic's state: Node-RED's node.topics[topic]. */
typedef struct entry {
    char *key;
    bool active;     /* Node-RED's `tout` is set (a timer, or 0 for "blocked") */
    crm_timer *tout; /* the pending timer or interval, NULL if none */
    json_t *m2;      /* the second message's payload, evaluated at trigger time */
    json_t *msg;     /* the message the pending timeout will copy */
    struct entry *next;
} entry;

typedef struct {
    crm_node *node;
    char *op1, *op2;      /* raw values (NULL for the "null" type) */
    char *op1type, *op2type;
    crm_typed *t1, *t2;   /* compiled op1/op2 for the evaluated types */
    bool tmpl1, tmpl2;    /* mustache templates */
    bool extend, loop, override_delay, second, by_topic;
    double duration;      /* ms */
    char *reset;          /* "" for none */
    crm_path *topic;      /* the property that names the topic */
    entry *topics;
    json_t *npay;         /* topic -> latest message, for op2type "payl" */
} trig;

/* Mustache -------------------------------------------------------------- */

/* mustache.render(tmpl, msg) (runtime/mustache.c): a new string value, or
 * NULL after reporting the parse error Node-RED's handler would throw. */
static json_t *render(crm_node *n, const char *tmpl, const json_t *msg)
{
    char *err = NULL;
    crm_mustache *m = crm_mustache_parse(tmpl, strlen(tmpl), &err);
    if (!m) {
        crm_node_error(n, msg, "Error: %s", err ? err : "invalid template");
        free(err);
        return NULL;
    }
    char *out = crm_mustache_write(m, msg, NULL);
    crm_mustache_free(m);
    json_t *r = json_string(out);
    if (!r) r = json_stringn(out, strlen(out));
    free(out);
    return r;
}

/* Config ------------------------------------------------------------------ */

static const char *cfg_or(const json_t *cfg, const char *key, const char *def)
{
    const char *v = crm_cfg_str(cfg, key, "");
    return *v ? v : def;
}

/* Node-RED's "val" type (old exports) is a bool, a null or a string. */
static void resolve_val(char **op, char **type)
{
    if (strcmp(*type, "val")) return;
    free(*type);
    if (!strcmp(*op, "true") || !strcmp(*op, "false")) {
        *type = strdup("bool");
    } else if (!strcmp(*op, "null")) {
        *type = strdup("null");
    } else {
        *type = strdup("str");
    }
}

/* Types evaluated through crm_typed; "pay", "payl" and "nul" are the node's own. */
static bool evaluated(const char *type)
{
    return strcmp(type, "pay") && strcmp(type, "payl") && strcmp(type, "nul");
}

static crm_typed *compile(crm_node *n, const char *field, const char *type, const char *op)
{
    json_t *raw = strcmp(type, "null") ? json_string(op) : json_null();
    char *err = NULL;
    crm_typed *t = crm_typed_new(n, type, raw, &err);
    json_decref(raw);
    if (!t) crm_node_config_error(n, field, "%s", err ? err : "invalid value");
    free(err);
    return t;
}

static void trig_free(trig *s)
{
    if (!s) return;
    free(s->op1);
    free(s->op2);
    free(s->op1type);
    free(s->op2type);
    crm_typed_free(s->t1);
    crm_typed_free(s->t2);
    free(s->reset);
    crm_path_free(s->topic);
    json_decref(s->npay);
    free(s);
}

/* The duration in ms: parseFloat(duration), 250 when not a number. */
static double parse_duration(const json_t *cfg)
{
    json_t *d = json_object_get(cfg, "duration");
    if (json_is_number(d)) return crm_num_value(d);
    const char *s = json_string_value(d);
    char *end;
    double v = s ? strtod(s, &end) : NAN;
    return s && end != s && !isnan(v) ? v : 250;
}

static int configure(crm_node *n, trig *s, const json_t *cfg)
{
    s->node = n;
    s->by_topic = strcmp(cfg_or(cfg, "bytopic", "all"), "all") != 0;
    s->op1 = strdup(cfg_or(cfg, "op1", "1"));
    s->op2 = strdup(cfg_or(cfg, "op2", "0"));
    s->op1type = strdup(cfg_or(cfg, "op1type", "str"));
    s->op2type = strdup(cfg_or(cfg, "op2type", "str"));
    resolve_val(&s->op1, &s->op1type);
    resolve_val(&s->op2, &s->op2type);
    json_t *outputs = json_object_get(cfg, "outputs");
    s->second = crm_num_value(outputs) == 2 || (json_is_string(outputs) && !strcmp(json_string_value(outputs), "2"));
    s->extend = crm_cfg_bool(cfg, "extend", false);
    s->override_delay = crm_cfg_bool(cfg, "overrideDelay", false);
    s->reset = strdup(crm_cfg_str(cfg, "reset", ""));
    s->duration = parse_duration(cfg);
    if (s->duration < 0) {
        s->loop = true;
        s->duration = -s->duration;
        s->extend = false;
    }
    const char *units = cfg_or(cfg, "units", "ms");
    if (!strcmp(units, "s")) s->duration *= 1000;
    else if (!strcmp(units, "min")) s->duration *= 60000;
    else if (!strcmp(units, "hr")) s->duration *= 3600000;
    s->tmpl1 = !strcmp(s->op1type, "str") && strstr(s->op1, "{{");
    s->tmpl2 = !strcmp(s->op2type, "str") && strstr(s->op2, "{{");
    if (evaluated(s->op1type) && !s->tmpl1 && !(s->t1 = compile(n, "op1", s->op1type, s->op1))) return -1;
    if (evaluated(s->op2type) && !s->tmpl2 && !(s->t2 = compile(n, "op2", s->op2type, s->op2))) return -1;
    char *err = NULL;
    if (!(s->topic = crm_path_parse(cfg_or(cfg, "topic", "topic"), &err))) {
        crm_node_config_error(n, "topic", "%s", err ? err : "invalid property expression");
        free(err);
        return -1;
    }
    s->npay = json_object();
    return 0;
}

static int trig_create(crm_node *n, const json_t *cfg)
{
    trig *s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (configure(n, s, cfg) < 0) {
        trig_free(s);
        return -1;
    }
    crm_node_set_data(n, s);
    return 0;
}

/* Topics -------------------------------------------------------------------- */

static entry *find(trig *s, const char *key)
{
    for (entry *e = s->topics; e; e = e->next)
        if (!strcmp(e->key, key)) return e;
    return NULL;
}

static entry *find_or_add(trig *s, const char *key)
{
    entry *e = find(s, key);
    if (e) return e;
    e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->key = strdup(key);
    e->next = s->topics;
    s->topics = e;
    return e;
}

/* Stops the entry's timer and forgets the topic. */
static void drop(trig *s, entry *e)
{
    for (entry **pp = &s->topics; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    crm_timer_cancel(e->tout);
    json_decref(e->m2);
    json_decref(e->msg);
    free(e->key);
    free(e);
}

/* Node-RED's stat(): no status when idle, a dot, or a dot and a count. */
static void show_status(trig *s)
{
    int count = 0;
    for (entry *e = s->topics; e; e = e->next) count++;
    char text[16];
    snprintf(text, sizeof text, "%d", count);
    if (!count) crm_node_status(s->node, NULL, NULL, NULL);
    else crm_node_status(s->node, "blue", "dot", count > 1 ? text : NULL);
}

/* Evaluates a typed op against msg; -1 after reporting the error. */
static int eval(trig *s, const crm_typed *t, const json_t *msg, json_t **out)
{
    char *err = NULL;
    if (crm_typed_eval(s->node, t, msg, out, &err) == 0) return 0;
    crm_node_error(s->node, msg, "%s", err ? err : "cannot evaluate the value");
    free(err);
    return -1;
}

/* Timers -------------------------------------------------------------------- */

static void send_second(trig *s, json_t *msg)
{
    crm_node_send(s->node, s->second ? 1 : 0, msg);
}

/* msg.payload = a copy of v (NULL: undefined, so no payload). */
static void set_payload(json_t *msg, const json_t *v)
{
    if (v) json_object_set_new(msg, "payload", crm_deep_copy(v));
    else json_object_del(msg, "payload");
}

/* setTimeout/setInterval's rule: a delay below 1 ms (or past 2^31-1) is 1 ms. */
static double timer_ms(double d)
{
    return d >= 1 && d <= 2147483647.0 ? d : 1;
}

/* op2 re-read from context when the timer ends; false on an error (logged). */
static bool refresh_m2(trig *s, entry *e)
{
    if (strcmp(s->op2type, "flow") && strcmp(s->op2type, "global")) return true;
    json_t *v = NULL;
    char *err = NULL;
    if (crm_typed_eval(s->node, s->t2, e->msg, &v, &err) < 0) {
        crm_node_error(s->node, NULL, "%s", err ? err : "cannot evaluate op2");
        free(err);
        return false;
    }
    json_decref(e->m2);
    e->m2 = v;
    return true;
}

/* The timeout of a first trigger: op2 (or the latest message) goes out. */
static void on_timeout(crm_node *n, void *arg)
{
    trig *s = crm_node_data(n);
    entry *e = arg;
    e->tout = NULL; /* fired: the engine already let it go */
    if (!strcmp(s->op2type, "nul")) {
        drop(s, e);
        show_status(s);
        return;
    }
    if (!refresh_m2(s, e)) return; /* as Node-RED: the topic stays blocked */
    if (!strcmp(s->op2type, "payl")) {
        json_t *latest = json_object_get(s->npay, e->key);
        if (latest) send_second(s, json_incref(latest));
        json_object_del(s->npay, e->key);
    } else {
        json_t *msg2 = e->msg;
        e->msg = NULL;
        set_payload(msg2, e->m2);
        send_second(s, msg2);
    }
    drop(s, e);
    show_status(s);
}

/* The timeout of an extended trigger: a copy of the last message with op2. */
static void on_extended(crm_node *n, void *arg)
{
    trig *s = crm_node_data(n);
    entry *e = arg;
    e->tout = NULL;
    bool nul = !strcmp(s->op2type, "nul");
    if (!nul && !refresh_m2(s, e)) return;
    json_t *msg2 = NULL;
    if (!nul) {
        msg2 = e->msg;
        e->msg = NULL;
        set_payload(msg2, e->m2);
    }
    drop(s, e);
    show_status(s);
    if (msg2) send_second(s, msg2);
}

static void on_interval(crm_node *n, void *arg)
{
    entry *e = arg;
    crm_node_send(n, 0, crm_msg_clone(e->msg));
}

/* Input ------------------------------------------------------------------------ */

static bool is_reset(trig *s, const json_t *msg)
{
    if (json_object_get(msg, "reset")) return true;
    json_t *p = json_object_get(msg, "payload");
    if (!*s->reset || !p || json_is_null(p)) return false;
    char *text = crm_to_string(p);
    bool r = text && !strcmp(text, s->reset);
    free(text);
    return r;
}

/* parseFloat(msg.delay) when overrideDelay applies, else the duration. */
static double delay_of(trig *s, const json_t *msg)
{
    json_t *d = json_object_get(msg, "delay");
    if (!s->override_delay || !d) return s->duration;
    if (json_is_number(d)) return crm_num_value(d);
    char *text = crm_to_string(d);
    char *end;
    double v = text ? strtod(text, &end) : NAN;
    bool ok = text && end != text && !isnan(v);
    free(text);
    return ok ? v : s->duration;
}

/* The first message of a topic: op1 now, op2 later. Takes msg. */
static void fire(trig *s, entry *e, json_t *msg, double delay)
{
    crm_node *n = s->node;
    json_t *m2 = NULL;
    if (!strcmp(s->op2type, "pay")) m2 = crm_deep_copy(json_object_get(msg, "payload"));
    else if (s->tmpl2 && !(m2 = render(n, s->op2, msg))) goto out;
    else if (s->t2 && eval(s, s->t2, msg, &m2) < 0) goto out;
    json_decref(e->m2);
    e->m2 = m2;
    json_t *p1 = NULL;
    if (s->tmpl1 && !(p1 = render(n, s->op1, msg))) goto out;
    else if (s->t1 && eval(s, s->t1, msg, &p1) < 0) goto out;
    if (s->tmpl1 || s->t1) {
        set_payload(msg, p1);
        json_decref(p1);
    }
    bool nul1 = !strcmp(s->op1type, "nul");
    if (delay == 0) {
        e->active = true; /* tout = 0: blocked until reset */
    } else if (s->loop) {
        crm_timer_cancel(e->tout);
        e->tout = NULL;
        if (!nul1) {
            json_decref(e->msg);
            e->msg = crm_msg_clone(msg);
            e->tout = crm_timer_start(n, timer_ms(delay), timer_ms(delay), on_interval, e);
            e->active = true;
        }
    } else if (!e->tout) {
        json_decref(e->msg);
        e->msg = json_incref(msg);
        e->tout = crm_timer_start(n, timer_ms(delay), 0, on_timeout, e);
        e->active = true;
    }
    show_status(s);
    if (!nul1) crm_node_send(n, 0, crm_msg_clone(msg));
    crm_node_done(n, msg);
out:
    json_decref(msg);
}

/* A message while the topic's timer runs, with extend: restart it. Takes msg. */
static void extend(trig *s, entry *e, json_t *msg, double delay)
{
    if (!strcmp(s->op2type, "payl")) {
        json_decref(e->m2);
        e->m2 = crm_deep_copy(json_object_get(msg, "payload"));
    }
    crm_timer_cancel(e->tout);
    json_decref(e->msg);
    e->msg = crm_msg_clone(msg);
    e->tout = crm_timer_start(s->node, timer_ms(delay), 0, on_extended, e);
    e->active = true;
    crm_node_done(s->node, msg);
    json_decref(msg);
}

static void trig_input(crm_node *n, json_t *msg)
{
    trig *s = crm_node_data(n);
    char *key = NULL;
    if (s->by_topic) {
        bool throws = false;
        const json_t *t = crm_path_get(s->topic, msg, msg, &throws);
        if (crm_truthy(t)) key = crm_to_string(t);
    }
    double delay = delay_of(s, msg);
    entry *e = find_or_add(s, key ? key : "_none");
    free(key);
    if (!e) {
        crm_node_error(n, msg, "out of memory");
        json_decref(msg);
        return;
    }
    if (is_reset(s, msg)) {
        drop(s, e);
        show_status(s);
    } else {
        if (!strcmp(s->op2type, "payl")) json_object_set_new(s->npay, e->key, crm_msg_clone(msg));
        if (!e->active || s->loop) {
            fire(s, e, msg, delay);
            return;
        }
        if (s->extend && delay > 0) {
            extend(s, e, msg, delay);
            return;
        }
    }
    crm_node_done(n, msg);
    json_decref(msg);
}

static void trig_close(crm_node *n)
{
    trig *s = crm_node_data(n);
    if (!s) return;
    while (s->topics) drop(s, s->topics);
    crm_node_status(n, NULL, NULL, NULL);
    trig_free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_trigger = {
    .abi = CRM_ABI_VERSION,
    .type = "trigger",
    .create = trig_create,
    .input = trig_input,
    .close = trig_close,
};
