/* range.c: the Node-RED "range" node (core/function/16-range.js), Node-RED
 * 4.1.15's semantics.
 *
 * Maps Number(property) linearly from [minin, maxin] to [minout, maxout]:
 * "scale" as is, "clamp" limits the input first, "roll" wraps it into the
 * input range, "drop" drops messages outside it; `round` rounds the result
 * (and floors maxout / ceils minout at start). A reversed input range is
 * swapped together with the output range. A value that is not a number is
 * logged ("Not a number: x") and dropped; a message without the property
 * passes unchanged. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "undefined_read.h"

typedef enum { R_SCALE, R_CLAMP, R_ROLL, R_DROP } range_action;

typedef struct {
    range_action action;
    bool round;
    double minin, maxin, minout, maxout;
    char *property;
    crm_path *path;
} range_node;

/* Number(n.x): an absent field is NaN. */
static double cfg_number(const json_t *cfg, const char *key)
{
    const json_t *v = json_object_get(cfg, key);
    return v ? crm_to_number(v) : NAN;
}

/* JavaScript Math.round: halves go up. */
static double js_round(double x)
{
    if (!isfinite(x)) return x;
    double r = floor(x);
    if (x - r >= 0.5) r += 1;
    return r;
}

static int range_create(crm_node *n, const json_t *cfg)
{
    range_node *s = calloc(1, sizeof *s);
    if (!s) return -1;
    crm_node_set_data(n, s);
    const char *a = crm_cfg_str(cfg, "action", "");
    s->action = !strcmp(a, "clamp") ? R_CLAMP : !strcmp(a, "roll") ? R_ROLL : !strcmp(a, "drop") ? R_DROP : R_SCALE;
    s->round = crm_truthy(json_object_get(cfg, "round"));
    s->minin = cfg_number(cfg, "minin");
    s->maxin = cfg_number(cfg, "maxin");
    s->minout = cfg_number(cfg, "minout");
    s->maxout = cfg_number(cfg, "maxout");
    if (s->minin > s->maxin) {
        double t = s->minin;
        s->minin = s->maxin;
        s->maxin = t;
        t = s->minout;
        s->minout = s->maxout;
        s->maxout = t;
    }
    if (s->round) {
        s->maxout = floor(s->maxout);
        s->minout = ceil(s->minout);
    }
    const char *p = crm_cfg_str(cfg, "property", "");
    char *err = NULL;
    s->property = strdup(*p ? p : "payload");
    s->path = crm_path_parse(s->property, &err);
    if (!s->path) {
        crm_node_config_error(n, "property", "%s", err ? err : "invalid property");
        free(err);
        return -1;
    }
    return 0;
}

static void range_input(crm_node *n, json_t *msg)
{
    range_node *s = crm_node_data(n);
    bool throws = false;
    json_t *value = crm_path_get(s->path, msg, msg, &throws);
    if (throws) {
        crm_undefined_read_error(n, s->property, msg);
        json_decref(msg);
        return;
    }
    if (!value) {
        crm_node_send(n, 0, msg);
        crm_node_done(n, msg);
        return;
    }
    double x = crm_to_number(value);
    if (isnan(x)) {
        char *t = crm_to_string(value);
        crm_node_log(n, CRM_LOG_INFO, "Not a number: %s", t);
        free(t);
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (s->action == R_DROP && (x < s->minin || x > s->maxin)) {
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (s->action == R_CLAMP) {
        if (x < s->minin) x = s->minin;
        if (x > s->maxin) x = s->maxin;
    }
    if (s->action == R_ROLL) {
        double d = s->maxin - s->minin;
        x = fmod(fmod(x - s->minin, d) + d, d) + s->minin;
    }
    double r = (x - s->minin) / (s->maxin - s->minin) * (s->maxout - s->minout) + s->minout;
    if (s->round) r = js_round(r);
    crm_path_set(s->path, msg, msg, crm_num(r), true);
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

static void range_close(crm_node *n)
{
    range_node *s = crm_node_data(n);
    if (!s) return;
    crm_path_free(s->path);
    free(s->property);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_range = {
    .abi = CRM_ABI_VERSION,
    .type = "range",
    .create = range_create,
    .input = range_input,
    .close = range_close,
};
