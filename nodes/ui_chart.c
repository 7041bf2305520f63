/* ui_chart.c: node-red-dashboard's chart node (spec §3.16), kept headless:
 * the node holds the chart's series exactly as the dashboard's `convert`
 * does (topics as series, [] clears, removeOlder / removeOlderPoints limits,
 * a whole-chart replacement) and hands them to runtime/dashboard.c, which
 * draws them at /ui and exports them as CSV and SVG.
 *
 * The state is the dashboard's `values` object {series, data, labels}, or
 * NULL once cleared (its output payload is then []). Its handler takes only
 * msg, so it never calls done. `msg.ui_control` (changing the chart type at
 * run time) is not supported.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carmine.h"
#include "dashboard.h"

#define FULL_PRUNE_EVERY_MS 60000.0

typedef struct {
    char *type;              /* chartType */
    bool line;
    double window_s;         /* parseInt(removeOlder) * parseInt(removeOlderUnit); NaN when unset */
    json_t *max_points;      /* removeOlderPoints as configured, NULL when falsy */
    json_t *values;          /* {series, data, labels} or NULL (cleared) */
    double last_full_prune;  /* dashboard's `dnow` */
    crm_dash_chart *dash;
} chart;

/* JavaScript helpers ------------------------------------------------------------------------- */

/* "YYYY-MM-DD[THH:MM[:SS[.sss]]][Z|+HH:MM]" as Date.parse reads ISO dates:
 * a date alone is UTC, a date-time without offset local time. */
static double parse_iso_date(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return NAN;
    const char *p = s + n;
    double ms = 0;
    bool has_time = false, utc = true;
    int offset_min = 0;
    if (*p == 'T' || *p == ' ') {
        int k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &k) != 2 || k != 5) return NAN;
        p += 1 + k;
        has_time = true;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &k) != 1 || k != 2) return NAN;
            p += 3;
            if (*p == '.') {
                double frac = 0, scale = 100;
                for (p++; isdigit((unsigned char)*p); p++, scale /= 10) frac += (*p - '0') * scale;
                ms = trunc(frac);
            }
        }
        utc = false;
        if (*p == 'Z') {
            utc = true;
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5) return NAN;
            offset_min = (*p == '-' ? -1 : 1) * (oh * 60 + om);
            utc = true;
            p += 1 + k;
        }
    }
    if (*p) return NAN;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t;
    if (!has_time || utc) {
        t = timegm(&tm);
    } else {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return (double)t * 1000 + ms - offset_min * 60000.0;
}

/* new Date(v).getTime() for msg.timestamp. */
static double js_date_ms(const json_t *v)
{
    if (json_is_string(v)) return parse_iso_date(json_string_value(v));
    double d = crm_to_number(v);
    return isfinite(d) ? trunc(d) : NAN;
}

static double point_x(const json_t *p) { return crm_to_number(json_object_get(p, "x")); }

/* Array.prototype.indexOf: strict equality. */
static long index_of(const json_t *arr, const json_t *v)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (crm_equal(json_array_get(arr, i), v)) return (long)i;
    return -1;
}

/* Config ------------------------------------------------------------------------------------- */

static json_t *build_meta(crm_node *n, const json_t *cfg, const json_t *group, const json_t *tab)
{
    json_t *m = json_object();
    json_object_set_new(m, "id", json_string(crm_node_id(n)));
    static const char *copied[] = {"label", "chartType", "legend", "xformat", "interpolate", "nodata", "dot",
                                   "ymin", "ymax", "colors", "useUTC", "order", "width", "height"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        json_t *v = json_object_get(cfg, copied[i]);
        if (v) json_object_set_new(m, copied[i], crm_deep_copy(v));
    }
    if (!json_object_get(m, "label")) json_object_set_new(m, "label", json_string("chart"));
    json_object_set_new(m, "group", json_string(crm_cfg_str(group, "name", "")));
    json_object_set_new(m, "groupOrder", json_real(crm_cfg_num(group, "order", 0)));
    json_object_set_new(m, "tab", json_string(crm_cfg_str(tab, "name", "")));
    json_object_set_new(m, "tabOrder", json_real(crm_cfg_num(tab, "order", 0)));
    return m;
}

static void chart_free(chart *c)
{
    if (!c) return;
    crm_dash_chart_free(c->dash);
    free(c->type);
    json_decref(c->max_points);
    json_decref(c->values);
    free(c);
}

static int ui_chart_create(crm_node *n, const json_t *cfg)
{
    /* node-red-dashboard returns before doing anything without its group and tab */
    const json_t *group = crm_dash_node_config(n, crm_cfg_str(cfg, "group", ""));
    const json_t *tab = group ? crm_dash_node_config(n, crm_cfg_str(group, "tab", "")) : NULL;
    if (!group || !tab) return 0;
    chart *c = calloc(1, sizeof *c);
    if (!c) return -1;
    const char *type = crm_cfg_str(cfg, "chartType", "");
    c->type = strdup(*type ? type : "line");
    c->line = !strcmp(c->type, "line");
    c->window_s = crm_parse_int_value(json_object_get(cfg, "removeOlder"), 10) *
                  crm_parse_int_value(json_object_get(cfg, "removeOlderUnit"), 10);
    json_t *mp = json_object_get(cfg, "removeOlderPoints");
    if (crm_truthy(mp)) c->max_points = json_incref(mp);
    c->last_full_prune = crm_wall_ms();
    crm_node_set_data(n, c);
    c->dash = crm_dash_chart_new(n, build_meta(n, cfg, group, tab));
    crm_dash_chart_update(c->dash, NULL);
    return 0;
}

static void ui_chart_close(crm_node *n)
{
    chart_free(crm_node_data(n));
    crm_node_set_data(n, NULL);
}

/* Input: one point ---------------------------------------------------------------------------- */

static json_t *new_values(void)
{
    json_t *v = json_object();
    json_object_set_new(v, "series", json_array());
    json_object_set_new(v, "data", json_array());
    json_object_set_new(v, "labels", json_array());
    return v;
}

/* Drops the leading points older than limit (a NaN limit drops them all, as
 * the dashboard's `x >= NaN` test does). */
static void prune_older(json_t *points, double limit)
{
    size_t rc = 0;
    while (rc < json_array_size(points) && !(point_x(json_array_get(points, rc)) >= limit)) rc++;
    for (size_t i = 0; i < rc; i++) json_array_remove(points, 0);
}

static void trim_points(const chart *c, json_t *points)
{
    if (!c->max_points) return;
    double excess = (double)json_array_size(points) - crm_to_number(c->max_points);
    for (double i = 0; i < excess; i++) json_array_remove(points, 0);
}

/* Moves the last point back past later timestamps (an older msg.timestamp). */
static void sort_last_point(json_t *points, double time)
{
    size_t len = json_array_size(points);
    if (len < 2) return;
    size_t at = len - 1;
    while (at > 0 && !(point_x(json_array_get(points, at - 1)) <= time)) at--;
    if (at == len - 1) return;
    json_t *p = json_incref(json_array_get(points, len - 1));
    json_array_remove(points, len - 1);
    json_array_insert_new(points, at, p);
}

static void add_line_point(chart *c, json_t *points, const json_t *msg, json_t *value)
{
    json_t *ts = json_object_get(msg, "timestamp");
    double time = ts ? js_date_ms(ts) : floor(crm_wall_ms());
    double limit = time - c->window_s * 1000;
    json_t *p = json_object();
    json_object_set_new(p, "x", crm_num(time));
    json_object_set_new(p, "y", value);
    json_array_append_new(points, p);
    prune_older(points, limit);
    trim_points(c, points);
    sort_last_point(points, time);
    double now = crm_wall_ms();
    if (now > c->last_full_prune + FULL_PRUNE_EVERY_MS) {
        c->last_full_prune = now;
        json_t *data = json_object_get(c->values, "data");
        for (size_t i = 0; i < json_array_size(data); i++) prune_older(json_array_get(data, i), limit);
    }
}

/* Bars, pie, radar...: data[series][label] = value, holes filled with null
 * (and, as the dashboard's `x || null`, every falsy cell once a row or
 * column is added past the first). */
static void set_cell(json_t *values, size_t s, size_t l, json_t *value, bool refill)
{
    json_t *data = json_object_get(values, "data");
    json_t *row = json_array_get(data, s);
    while (json_array_size(row) <= l) json_array_append_new(row, json_null());
    json_array_set_new(row, l, value);
    if (!refill) return;
    size_t nlabels = json_array_size(json_object_get(values, "labels"));
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *r = json_array_get(data, i);
        for (size_t k = 0; k < nlabels; k++) {
            json_t *cell = json_array_get(r, k);
            if (!cell) json_array_append_new(r, json_null());
            else if (!crm_truthy(cell)) json_array_set_new(r, k, json_null());
        }
    }
}

/* The series and label names of a point, as the dashboard picks them. */
static void point_names(const chart *c, const json_t *msg, json_t **series, json_t **label)
{
    json_t *ms = json_object_get(msg, "series"), *topic = json_object_get(msg, "topic"),
           *ml = json_object_get(msg, "label");
    *label = crm_truthy(ml) ? json_incref(ml) : json_string(" ");
    *series = crm_truthy(ms) ? json_incref(ms) : crm_truthy(topic) ? json_incref(topic) : json_string("");
    if (!c->line && !crm_truthy(ms)) {
        json_decref(*label);
        json_decref(*series);
        *label = crm_truthy(topic) ? json_incref(topic) : crm_truthy(ml) ? json_incref(ml) : json_string(" ");
        *series = json_string("");
    }
    if (c->line) {
        json_decref(*label);
        *label = json_string("");
    }
}

/* A single value; false if it is not a number (the message is ignored). */
static bool add_point(chart *c, const json_t *msg, const json_t *payload)
{
    json_t *value;
    if (!payload || json_is_null(payload) || json_is_false(payload)) {
        value = json_null();
    } else {
        double d = crm_parse_float_value(payload);
        if (isnan(d)) return false;
        value = crm_num(d);
    }
    if (!c->values) c->values = new_values();
    /* a replacement may have come without labels (or data) */
    if (!json_is_array(json_object_get(c->values, "labels"))) json_object_set_new(c->values, "labels", json_array());
    if (!json_is_array(json_object_get(c->values, "series"))) json_object_set_new(c->values, "series", json_array());
    if (!json_is_array(json_object_get(c->values, "data"))) json_object_set_new(c->values, "data", json_array());
    json_t *series, *label;
    point_names(c, msg, &series, &label);
    json_t *sa = json_object_get(c->values, "series"), *la = json_object_get(c->values, "labels"),
           *data = json_object_get(c->values, "data");
    long s = index_of(sa, series), l = index_of(la, label);
    bool refill = false;
    if (s < 0) {
        json_array_append(sa, series);
        s = (long)json_array_size(sa) - 1;
        while (json_array_size(data) <= (size_t)s) json_array_append_new(data, json_array());
        json_array_set_new(data, (size_t)s, json_array());
        if (l > 0) refill = true;
    }
    if (l < 0) {
        json_array_append(la, label);
        l = (long)json_array_size(la) - 1;
        if (l > 0) refill = true;
    }
    json_decref(series);
    json_decref(label);
    if (c->line) add_line_point(c, json_array_get(data, (size_t)s), msg, value);
    else set_cell(c->values, (size_t)s, (size_t)l, value, refill);
    return true;
}

/* Input: a whole chart -------------------------------------------------------------------- */

/* Whether no data row starts with a number (the dashboard's `flag`). */
static bool rows_start_non_numeric(const json_t *data)
{
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *row = json_array_get(data, i);
        json_t *first = json_is_array(row) ? json_array_get(row, 0)
                        : json_is_string(row) && json_string_length(row) ? row : NULL;
        if (first && !isnan(crm_to_number(first))) return false;
    }
    return true;
}

/* [{series, data, labels}]: replaces the chart. False when refused. */
static bool replace_chart(crm_node *n, chart *c, const json_t *msg, const json_t *first)
{
    if (!json_is_array(json_object_get(first, "series"))) {
        crm_node_error(n, msg, "series not array");
        return false;
    }
    if (!json_is_array(json_object_get(first, "data"))) {
        crm_node_error(n, msg, "Data not array");
        return false;
    }
    json_t *v = crm_deep_copy(first);
    json_t *data = json_object_get(v, "data");
    bool flag = rows_start_non_numeric(data);
    if (c->line) {
        if (flag) json_object_del(v, "labels");
        double keep = c->max_points ? crm_to_number(c->max_points) : 0;
        for (size_t i = 0; keep > 0 && i < json_array_size(data); i++) {
            json_t *row = json_array_get(data, i);
            while (json_is_array(row) && (double)json_array_size(row) > keep) json_array_remove(row, 0);
        }
    } else if (flag && (!strcmp(c->type, "bar") || !strcmp(c->type, "horizontalBar"))) {
        json_t *rows = json_array();
        for (size_t i = 0; i < json_array_size(data); i++) {
            json_t *cell = json_array();
            json_array_append(cell, json_array_get(data, i));
            json_array_append_new(rows, cell);
        }
        json_object_set_new(v, "data", rows);
        json_t *labels = json_incref(json_object_get(v, "labels"));
        json_object_set(v, "labels", json_object_get(v, "series"));
        if (labels) json_object_set_new(v, "series", labels);
        else json_object_del(v, "series");
    }
    json_decref(c->values);
    c->values = v;
    return true;
}

/* Input --------------------------------------------------------------------------------------- */

static bool convert(crm_node *n, chart *c, const json_t *msg)
{
    json_t *payload = json_object_get(msg, "payload");
    if (!json_is_array(payload)) return add_point(c, msg, payload);
    if (json_array_size(payload) == 0) {
        json_decref(c->values);
        c->values = NULL;
        return true;
    }
    json_t *first = json_array_get(payload, 0);
    if (json_is_object(first) && json_object_get(first, "series") && json_object_get(first, "data"))
        return replace_chart(n, c, msg, first);
    crm_node_warn(n, "Bad data inject");
    return true;
}

static json_t *state_payload(const chart *c)
{
    json_t *p = json_array();
    if (c->values) json_array_append_new(p, crm_deep_copy(c->values));
    return p;
}

static void ui_chart_input(crm_node *n, json_t *msg)
{
    chart *c = crm_node_data(n);
    if (!c || !convert(n, c, msg)) {
        json_decref(msg);
        return;
    }
    crm_dash_chart_update(c->dash, c->values);
    if (crm_node_outputs(n) > 0) {
        json_object_set_new(msg, "payload", state_payload(c));
        crm_node_send(n, 0, msg);
    } else {
        json_decref(msg);
    }
}

const crm_node_type crm_type_ui_chart = {
    .abi = CRM_ABI_VERSION,
    .type = "ui_chart",
    .create = ui_chart_create,
    .input = ui_chart_input,
    .close = ui_chart_close,
};
