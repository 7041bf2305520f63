/* rbe.c: Node-RED's `rbe` ("filter") node as a built-in node type
 * (core/function/rbe.js). examples/rbe/ keeps the same node as a plugin example.
 *
 * Report-by-exception: a message passes only when its property changed
 * (rbe, rbei) or moved by more / less than a band (deadband, deadbandEq,
 * narrowband, narrowbandEq), per topic unless septopics is false. The
 * semantics, quirks included, are those of Node-RED 4.1's rbe.js:
 *  - rbe/rbei on an object value compare against {} the first time, so a
 *    first {} is blocked;
 *  - a reset deletes the entry of String(msg.topic) even when the node keys
 *    its topics by another property;
 *  - a percentage gap is recomputed from the previous value at every message.
 */
#define _POSIX_C_SOURCE 200809L /* strndup, strdup under -std=c17 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

typedef enum { F_RBE, F_RBEI, F_DEADBAND, F_DEADBAND_EQ, F_NARROWBAND, F_NARROWBAND_EQ } rbe_func;

typedef struct {
    rbe_func func;
    bool pc;        /* gap given as a percentage of the previous value */
    double g;       /* the configured gap (percent when pc) */
    double gap;     /* the gap in force (node.gap) */
    char *start;    /* narrowband's starting value, "" for the first input */
    bool inout_in;  /* compare with the last input rather than the last output */
    bool septopics; /* one previous value per topic */
    crm_path *property;
    crm_path *topi;
    json_t *previous; /* topic -> previous value (numbers for the band funcs) */
} rbe_state;

static const char *const FUNCS[] = {"rbe", "rbei", "deadband", "deadbandEq", "narrowband", "narrowbandEq"};

static int parse_func(const char *s, rbe_func *out)
{
    for (size_t i = 0; i < sizeof FUNCS / sizeof *FUNCS; i++)
        if (!strcmp(s, FUNCS[i])) {
            *out = (rbe_func)i;
            return 0;
        }
    return -1;
}

/* JavaScript parseFloat(String(v)): the longest leading decimal literal. */
static double js_parse_float(const json_t *v)
{
    if (json_is_number(v)) return crm_num_value(v);
    char *s = crm_to_string(v);
    if (!s) return NAN;
    const char *p = s;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r')) p++;
    double d = NAN;
    const char *q = p + (*p == '+' || *p == '-');
    if (!strncmp(q, "Infinity", 8)) {
        d = *p == '-' ? -INFINITY : INFINITY;
    } else if ((*q >= '0' && *q <= '9') || (*q == '.' && q[1] >= '0' && q[1] <= '9')) {
        /* strtod would also take hex and "inf"; parseFloat takes neither */
        const char *e = q;
        while (*e >= '0' && *e <= '9') e++;
        if (*e == '.') for (e++; *e >= '0' && *e <= '9'; e++) {}
        if ((*e == 'e' || *e == 'E')) {
            const char *x = e + 1 + (e[1] == '+' || e[1] == '-');
            if (*x >= '0' && *x <= '9') for (e = x; *e >= '0' && *e <= '9'; e++) {}
        }
        char *num = strndup(p, (size_t)(e - p));
        d = num ? strtod(num, NULL) : NAN;
        free(num);
    }
    free(s);
    return d;
}

static void rbe_free(rbe_state *s)
{
    if (!s) return;
    free(s->start);
    crm_path_free(s->property);
    crm_path_free(s->topi);
    json_decref(s->previous);
    free(s);
}

/* A string config value with Node-RED's `n.x || "default"`. */
static const char *cfg_or(const json_t *cfg, const char *key, const char *def)
{
    const char *v = crm_cfg_str(cfg, key, "");
    return *v ? v : def;
}

static crm_path *parse_path(crm_node *n, const char *field, const char *expr)
{
    char *err = NULL;
    crm_path *p = crm_path_parse(expr, &err);
    if (!p) crm_node_config_error(n, field, "%s", err ? err : "invalid property expression");
    free(err);
    return p;
}

static int configure(crm_node *n, rbe_state *s, const json_t *cfg)
{
    const char *func = cfg_or(cfg, "func", "rbe");
    if (parse_func(func, &s->func) < 0) {
        crm_node_config_error(n, "func", "unknown mode \"%s\"", func);
        return -1;
    }
    /* gap may be a number or a string ("10", "10%") in the export */
    json_t *gapv = json_object_get(cfg, "gap");
    char *gap = json_is_number(gapv) && crm_num_value(gapv) != 0 ? crm_to_string(gapv)
                                                                 : strdup(cfg_or(cfg, "gap", "0"));
    size_t gl = gap ? strlen(gap) : 0;
    s->pc = gl && gap[gl - 1] == '%';
    if (s->pc) {
        json_t *t = json_string(gap);
        s->g = js_parse_float(t);
        json_decref(t);
        s->gap = s->g;
    } else {
        s->gap = crm_str_to_number(gap ? gap : "0");
    }
    free(gap);
    s->start = strdup(crm_cfg_str(cfg, "start", ""));
    s->inout_in = !strcmp(cfg_or(cfg, "inout", "out"), "in");
    s->septopics = !json_is_false(json_object_get(cfg, "septopics"));
    s->previous = json_object();
    if (!(s->property = parse_path(n, "property", cfg_or(cfg, "property", "payload")))) return -1;
    if (!(s->topi = parse_path(n, "topi", cfg_or(cfg, "topi", "topic")))) return -1;
    return 0;
}

static int rbe_create(crm_node *n, const json_t *cfg)
{
    rbe_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (configure(n, s, cfg) < 0) {
        rbe_free(s);
        return -1;
    }
    crm_node_set_data(n, s);
    return 0;
}

/* rbe / rbei: send on a change of value, compared deeply for objects. */
static bool changed_value(rbe_state *s, const char *t, const json_t *value)
{
    bool send = s->func != F_RBEI || json_object_get(s->previous, t) != NULL;
    json_t *prev = json_object_get(s->previous, t);
    if (json_is_object(value) || json_is_array(value) || json_is_null(value)) {
        /* typeof previous !== "object": start from {} (so a first {} is equal) */
        if (!prev || !(json_is_object(prev) || json_is_array(prev) || json_is_null(prev))) {
            json_object_set_new(s->previous, t, json_object());
            prev = json_object_get(s->previous, t);
        }
    }
    if (prev && crm_equal(value, prev)) return false;
    json_object_set_new(s->previous, t, crm_deep_copy(value));
    return send;
}

/* The band funcs on number v; whether the message passes. */
static bool banded(rbe_state *s, const char *t, double v)
{
    json_t *pj = json_object_get(s->previous, t);
    double prev = pj ? crm_num_value(pj) : NAN;
    bool have = pj != NULL;
    if (!have && (s->func == F_NARROWBAND || s->func == F_NARROWBAND_EQ)) {
        /* Node-RED keeps the start string; arithmetic reads it as Number() */
        prev = *s->start ? crm_str_to_number(s->start) : v;
        have = true;
    }
    if (s->pc) {
        s->gap = fabs(prev * s->g / 100);
        if (isnan(s->gap)) s->gap = 0;
    }
    if (!have) prev = v - s->gap - 1;
    double d = fabs(v - prev);
    bool send = false;
    if (d == s->gap) send = s->func == F_DEADBAND_EQ || s->func == F_NARROWBAND;
    else if (d > s->gap) send = s->func == F_DEADBAND || s->func == F_DEADBAND_EQ;
    else if (d < s->gap) send = s->func == F_NARROWBAND || s->func == F_NARROWBAND_EQ;
    if ((send && !s->inout_in) || s->inout_in) prev = v;
    json_object_set_new(s->previous, t, crm_num(prev));
    return send;
}

/* msg.reset: forget one topic's value, or all of them. */
static void reset(rbe_state *s, const json_t *msg, const json_t *topic)
{
    if (s->septopics && json_is_string(topic) && *json_string_value(topic)) {
        char *key = crm_to_string(json_object_get(msg, "topic"));
        if (key) json_object_del(s->previous, key);
        free(key);
    } else {
        json_object_clear(s->previous);
    }
}

static void rbe_input(crm_node *n, json_t *msg)
{
    rbe_state *s = crm_node_data(n);
    bool throws = false;
    const json_t *topic = crm_path_get(s->topi, msg, msg, &throws);
    if (throws) topic = NULL; /* Node-RED ignores a failed topic lookup */
    if (json_object_get(msg, "reset")) reset(s, msg, topic);
    throws = false;
    const json_t *value = crm_path_get(s->property, msg, msg, &throws);
    if (throws) {
        crm_node_error(n, msg, "TypeError: Cannot read properties of undefined (reading the message property)");
        json_decref(msg); /* the runtime's catch around a throwing handler: no done */
        return;
    }
    bool send = false;
    if (value) {
        char *t = s->septopics && crm_truthy(topic) ? crm_to_string(topic) : strdup("_no_topic");
        if (s->func == F_RBE || s->func == F_RBEI) {
            send = changed_value(s, t, value);
        } else {
            double v = js_parse_float(value);
            if (isnan(v)) crm_node_warn(n, "no number found in payload");
            else send = banded(s, t, v);
        }
        free(t);
    }
    /* Node-RED's handler takes only msg, so the message is never "done"
     * (complete nodes watching rbe never fire) */
    if (send) crm_node_send(n, 0, msg);
    else json_decref(msg);
}

static void rbe_close(crm_node *n)
{
    rbe_free(crm_node_data(n));
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_rbe = {
    .abi = CRM_ABI_VERSION,
    .type = "rbe",
    .create = rbe_create,
    .input = rbe_input,
    .close = rbe_close,
};
