/* moving_average.c: the contrib node "moving-average" (spec §3.17), which the
 * article's load-tester uses to smooth its measurements.
 *
 * Each topic has a window of values, newest first, kept in the node's context
 * under msg.topic (or "_no_topic"), so a persistent context store keeps it
 * across restarts as in Node-RED. The window length is the contrib node's
 * `[value, ...window].slice(0, amount || 10)`, with JavaScript's slice rules
 * applied to the amount as configured ("abc" and "0" keep nothing, a negative
 * amount drops from the old end).
 *
 * Every input gives one output: the same message with payload_in = the old
 * payload and payload = the result. The node never calls done (its handler
 * takes only msg), sets no status, and reports bad payloads by logging.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

#define NO_TOPIC "_no_topic"

typedef enum { A_ADD, A_GET, A_COUNT, A_MIN, A_MAX, A_POP, A_CLEAR } ma_action;

typedef struct {
    json_t *amount; /* `config.amount || 10`, the raw value slice() gets */
    bool linear;
} ma_state;

/* The length Array.prototype.slice(0, end) leaves of len elements. */
static size_t slice_len(const json_t *end, size_t len)
{
    double e = crm_to_number(end);
    if (isnan(e)) return 0;
    e = trunc(e);
    if (e < 0) e = fmax((double)len + e, 0);
    return e < (double)len ? (size_t)e : len;
}

/* What the payload asks for; *value is the number to add. */
static ma_action parse_payload(crm_node *n, const json_t *p, double *value)
{
    static const struct { const char *cmd; ma_action a; } cmds[] = {
        {"get", A_GET}, {"count", A_COUNT}, {"min", A_MIN}, {"max", A_MAX}, {"pop", A_POP}, {"clear", A_CLEAR},
    };
    if (json_is_number(p)) {
        *value = crm_num_value(p);
        return A_ADD;
    }
    if (json_is_boolean(p)) {
        *value = json_is_true(p) ? 1 : 0;
        return A_ADD;
    }
    if (json_is_string(p)) {
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (!strcmp(json_string_value(p), cmds[i].cmd)) return cmds[i].a;
        crm_node_error(n, NULL, "Invalid payload: expected number, boolean, \"get\", \"count\", \"min\", \"max\", \"pop\", \"clear\"");
        return A_GET;
    }
    crm_node_error(n, NULL, "Invalid payload type (%s): expected number, boolean, string", crm_typeof(p));
    return A_GET;
}

/* The window after the action: a new array (the context then holds it). */
static json_t *apply(const ma_state *s, ma_action a, double value, const json_t *old)
{
    size_t len = json_array_size(old);
    json_t *data = json_array();
    if (a == A_CLEAR) return data;
    if (a == A_ADD) {
        json_array_append_new(data, crm_num(value));
        size_t keep = slice_len(s->amount, len + 1);
        if (keep == 0) json_array_clear(data);
        for (size_t i = 0; i + 1 < keep; i++) json_array_append(data, json_array_get(old, i));
        return data;
    }
    if (a == A_POP && len > 0) len--;
    for (size_t i = 0; i < len; i++) json_array_append(data, json_array_get(old, i));
    return data;
}

static double value_at(const json_t *data, size_t i) { return crm_num_value(json_array_get(data, i)); }

/* Math.min / Math.max over the window: NaN wins, an empty window gives ±Infinity. */
static double extreme(const json_t *data, bool want_max)
{
    double r = want_max ? -INFINITY : INFINITY;
    for (size_t i = 0; i < json_array_size(data); i++) {
        double v = value_at(data, i);
        if (isnan(v)) return NAN;
        if (want_max ? v > r : v < r) r = v;
    }
    return r;
}

static double average(const ma_state *s, const json_t *data)
{
    size_t len = json_array_size(data);
    if (!len) return 0;
    double num = 0;
    if (s->linear) {
        for (size_t i = 0; i < len; i++) num += (double)(len - i) * value_at(data, i);
        return num / ((double)len * (double)(len + 1) / 2);
    }
    num = value_at(data, 0);
    for (size_t i = 1; i < len; i++) num += value_at(data, i);
    return num / (double)len;
}

static double result(const ma_state *s, ma_action a, const json_t *data)
{
    switch (a) {
    case A_COUNT: return (double)json_array_size(data);
    case A_MIN: return extreme(data, false);
    case A_MAX: return extreme(data, true);
    default: return average(s, data);
    }
}

/* The context key: msg.topic when truthy, else "_no_topic". */
static char *topic_key(const json_t *msg)
{
    const json_t *topic = json_object_get(msg, "topic");
    if (!crm_truthy(topic)) return strdup(NO_TOPIC);
    return crm_to_string(topic);
}

static void ma_input(crm_node *n, json_t *msg)
{
    ma_state *s = crm_node_data(n);
    char *key = topic_key(msg);
    if (!key) {
        crm_node_error(n, msg, "moving-average: out of memory");
        json_decref(msg);
        return;
    }
    json_t *old = crm_context_get(n, CRM_SCOPE_NODE, key);
    if (old && !json_is_array(old)) {
        json_decref(old);
        old = NULL;
    }
    json_t *payload = json_object_get(msg, "payload");
    double value = 0;
    ma_action a = parse_payload(n, payload, &value);
    json_t *data = old;
    if (a == A_ADD || a == A_POP || a == A_CLEAR) {
        data = apply(s, a, value, old);
        json_decref(old);
        if (crm_context_set(n, CRM_SCOPE_NODE, key, json_incref(data)) != 0) {
            crm_node_error(n, msg, "moving-average: cannot store the window under \"%s\"", key);
            json_decref(data);
            free(key);
            json_decref(msg);
            return;
        }
    }
    double r = result(s, a, data);
    json_decref(data);
    free(key);
    if (payload) json_object_set(msg, "payload_in", payload);
    else json_object_del(msg, "payload_in");
    json_object_set_new(msg, "payload", crm_num(r));
    crm_node_send(n, 0, msg);
}

static int ma_create(crm_node *n, const json_t *cfg)
{
    ma_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    const json_t *amount = json_object_get(cfg, "amount");
    s->amount = crm_truthy(amount) ? crm_deep_copy(amount) : crm_num(10);
    s->linear = !strcmp(crm_cfg_str(cfg, "weight", "cumulative"), "linear");
    crm_node_set_data(n, s);
    return 0;
}

static void ma_close(crm_node *n)
{
    ma_state *s = crm_node_data(n);
    if (!s) return;
    json_decref(s->amount);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_moving_average = {
    .abi = CRM_ABI_VERSION,
    .type = "moving-average",
    .create = ma_create,
    .input = ma_input,
    .close = ma_close,
};
