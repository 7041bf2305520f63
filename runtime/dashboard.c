/* dashboard.c: the /ui page and its live feed (dashboard.h). Each ui_chart
 * node owns the routes (http.h), so the page exists exactly while a chart
 * does, and a chart's data requests run on the chart's own loop.
 *
 * The live feed is a long poll rather than server-sent events: the HTTP
 * layer answers a suspended request with one whole response, which is all a
 * long poll needs, and browsers re-poll on their own. Updates are coalesced
 * (FLUSH_MS) so a chart fed a thousand points a second still answers each
 * waiting page a few times a second, not a thousand.
 */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "engine.h"
#include "http.h"

#define FLUSH_MS 50.0
#define HOLD_MS 20000.0
#define SVG_DEFAULT_W 800
#define SVG_DEFAULT_H 400

extern const char crm_dash_page_html[];
extern const size_t crm_dash_page_len;

typedef struct poll {
    struct poll *next;
    crm_dash_chart *chart;
    json_t *res;      /* the live handle */
    crm_timer *hold;  /* answers with the unchanged state when it fires */
} poll;

struct crm_dash_chart {
    crm_node *node;
    crm_httpd *httpd;
    json_t *meta;
    const json_t *values; /* borrowed from the chart node */
    uint64_t version;
    poll *polls;
    crm_timer *flush;
    double hold_ms;
    bool routed;
    crm_dash_chart *next_registered;
};

/* Every chart of the process, to list a server's charts for its page. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static crm_dash_chart *registry;

const json_t *crm_dash_node_config(crm_node *from, const char *id)
{
    crm_node *n = id && *id ? crm_node_find(from, id) : NULL;
    return n ? n->config : NULL;
}

static crm_dash_chart *chart_of(const crm_node *n)
{
    pthread_mutex_lock(&registry_lock);
    crm_dash_chart *c = registry;
    while (c && c->node != n) c = c->next_registered;
    pthread_mutex_unlock(&registry_lock);
    return c;
}

/* Answers ------------------------------------------------------------------------------------ */

static void respond(crm_node *n, const json_t *res, int status, const char *type, const char *body, size_t len)
{
    json_t *h = json_object();
    json_object_set_new(h, "Content-Type", json_string(type));
    json_object_set_new(h, "Cache-Control", json_string("no-store"));
    crm_http_respond(n, res, status, h, body, len, 0);
    json_decref(h);
}

static void respond_owned(crm_node *n, const json_t *res, const char *type, char *body, size_t len)
{
    if (body) respond(n, res, 200, type, body, len);
    else respond(n, res, 500, "text/plain; charset=utf-8", "Internal Server Error", 21);
    free(body);
}

static char *state_json(const crm_dash_chart *c, size_t *len)
{
    json_t *o = json_object();
    json_object_set_new(o, "version", json_real((double)c->version));
    json_t *state = json_array();
    if (c->values) json_array_append(state, (json_t *)c->values);
    json_object_set_new(o, "state", state);
    char *s = crm_stringify(o, 0);
    json_decref(o);
    *len = s ? strlen(s) : 0;
    return s;
}

static void answer_state(crm_dash_chart *c, const json_t *res)
{
    size_t len;
    char *body = state_json(c, &len);
    respond_owned(c->node, res, "application/json; charset=utf-8", body, len);
}

/* Long polls --------------------------------------------------------------------------------- */

static void poll_unlink(crm_dash_chart *c, poll *p)
{
    for (poll **pp = &c->polls; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    json_decref(p->res);
    free(p);
}

static void on_hold_expired(crm_node *n, void *arg)
{
    (void)n;
    poll *p = arg;
    p->hold = NULL; /* a fired one-shot timer is gone */
    answer_state(p->chart, p->res);
    poll_unlink(p->chart, p);
}

static void answer_all_polls(crm_dash_chart *c, bool with_state)
{
    while (c->polls) {
        poll *p = c->polls;
        crm_timer_cancel(p->hold);
        if (with_state) answer_state(c, p->res);
        else respond(c->node, p->res, 503, "text/plain; charset=utf-8", "Service Unavailable", 19);
        poll_unlink(c, p);
    }
}

static void on_flush(crm_node *n, void *arg)
{
    (void)n;
    crm_dash_chart *c = arg;
    c->flush = NULL;
    answer_all_polls(c, true);
}

static void hold_poll(crm_dash_chart *c, json_t *res)
{
    poll *p = calloc(1, sizeof *p);
    if (!p) {
        answer_state(c, res);
        return;
    }
    p->chart = c;
    p->res = json_incref(res);
    p->next = c->polls;
    c->polls = p;
    p->hold = crm_timer_start(c->node, c->hold_ms, 0, on_hold_expired, p);
}

void crm_dash_chart_update(crm_dash_chart *c, const json_t *values)
{
    if (!c) return;
    c->values = values;
    c->version++;
    if (c->polls && !c->flush) c->flush = crm_timer_start(c->node, FLUSH_MS, 0, on_flush, c);
}

/* Routes ----------------------------------------------------------------------------------------- */

static const json_t *query_of(const json_t *msg)
{
    return json_object_get(json_object_get(msg, "req"), "query");
}

static double query_num(const json_t *msg, const char *key, double def)
{
    const char *s = json_string_value(json_object_get(query_of(msg), key));
    if (!s || !*s) return def;
    char *end;
    double d = strtod(s, &end);
    return *end ? def : d;
}

static void on_page(crm_node *n, json_t *msg)
{
    respond(n, json_object_get(msg, "res"), 200, "text/html; charset=utf-8", crm_dash_page_html,
            crm_dash_page_len);
    json_decref(msg);
}

static int meta_order(const void *a, const void *b)
{
    static const char *keys[] = {"tabOrder", "groupOrder", "order"};
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    for (size_t i = 0; i < 3; i++) {
        double dx = crm_cfg_num(x, keys[i], 0), dy = crm_cfg_num(y, keys[i], 0);
        if (dx != dy) return dx < dy ? -1 : 1;
    }
    return 0;
}

/* Metas are immutable once registered, so reading them from another chart's
 * loop under the registry lock is safe. */
static json_t *list_charts(const crm_httpd *h)
{
    json_t *metas[256];
    size_t k = 0;
    pthread_mutex_lock(&registry_lock);
    for (crm_dash_chart *c = registry; c && k < 256; c = c->next_registered)
        if (c->httpd == h && c->routed) metas[k++] = crm_deep_copy(c->meta);
    pthread_mutex_unlock(&registry_lock);
    qsort(metas, k, sizeof *metas, meta_order);
    json_t *list = json_array();
    for (size_t i = 0; i < k; i++) json_array_append_new(list, metas[i]);
    return list;
}

static void on_list(crm_node *n, json_t *msg)
{
    crm_dash_chart *c = chart_of(n);
    json_t *list = c ? list_charts(c->httpd) : json_array();
    char *body = crm_stringify(list, 0);
    json_decref(list);
    respond_owned(n, json_object_get(msg, "res"), "application/json; charset=utf-8", body, body ? strlen(body) : 0);
    json_decref(msg);
}

static void on_state(crm_node *n, json_t *msg)
{
    crm_dash_chart *c = chart_of(n);
    json_t *res = json_object_get(msg, "res");
    double since = query_num(msg, "since", -1);
    if (!c) respond(n, res, 503, "text/plain; charset=utf-8", "Service Unavailable", 19);
    /* another version than the one in force: the page is behind (or the
     * server restarted), so it gets the state at once */
    else if (since == (double)c->version) hold_poll(c, res);
    else answer_state(c, res);
    json_decref(msg);
}

static void on_csv(crm_node *n, json_t *msg)
{
    crm_dash_chart *c = chart_of(n);
    size_t len = 0;
    char *body = c ? crm_dash_csv(c->meta, c->values, &len) : NULL;
    respond_owned(n, json_object_get(msg, "res"), "text/csv; charset=utf-8", body, len);
    json_decref(msg);
}

static int clamp_px(double v, int def)
{
    if (!(v >= 100 && v <= 4000)) return def;
    return (int)v;
}

static void on_svg(crm_node *n, json_t *msg)
{
    crm_dash_chart *c = chart_of(n);
    size_t len = 0;
    int w = clamp_px(query_num(msg, "width", SVG_DEFAULT_W), SVG_DEFAULT_W);
    int h = clamp_px(query_num(msg, "height", SVG_DEFAULT_H), SVG_DEFAULT_H);
    char *body = c ? crm_dash_svg(c->meta, c->values, w, h, &len) : NULL;
    respond_owned(n, json_object_get(msg, "res"), "image/svg+xml; charset=utf-8", body, len);
    json_decref(msg);
}

/* Node ids go into literal route paths: only URL-safe characters that the
 * route syntax does not treat specially. */
static bool url_safe_id(const char *id)
{
    if (!*id) return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-' && *p != '~') return false;
    return true;
}

static int add_routes(crm_dash_chart *c)
{
    const char *id = crm_node_id(c->node);
    if (!url_safe_id(id)) {
        crm_node_warn(c->node, "the dashboard does not serve this chart: its id is not usable in a URL");
        return -1;
    }
    static const struct { const char *suffix; crm_http_request_fn fn; } per_chart[] = {
        {".json", on_state}, {".csv", on_csv}, {".svg", on_svg}};
    int rc = crm_http_route_add(c->node, "get", "/ui", 0, on_page);
    if (rc == 0) rc = crm_http_route_add(c->node, "get", "/ui/api/charts", 0, on_list);
    for (size_t i = 0; rc == 0 && i < sizeof per_chart / sizeof *per_chart; i++) {
        char path[512];
        snprintf(path, sizeof path, "/ui/api/chart/%s%s", id, per_chart[i].suffix);
        rc = crm_http_route_add(c->node, "get", path, 0, per_chart[i].fn);
    }
    if (rc == -2) crm_node_warn(c->node, "the dashboard is not served: httpNodeRoot is false");
    else if (rc == -3) crm_node_log(c->node, CRM_LOG_DEBUG, "no HTTP server: the dashboard is not served");
    else if (rc != 0) crm_node_warn(c->node, "the dashboard routes could not be added");
    if (rc != 0) crm_http_route_remove(c->node);
    return rc;
}

/* Life cycle ------------------------------------------------------------------------------------ */

static double hold_ms_for(const crm_node *n)
{
    /* answer before the server's own httpRequestTimeout would (504) */
    double t = crm_cfg_num(crm_node_settings(n), "httpRequestTimeout", 120000);
    return t > 0 && t / 2 < HOLD_MS ? t / 2 : HOLD_MS;
}

crm_dash_chart *crm_dash_chart_new(crm_node *n, json_t *meta)
{
    crm_dash_chart *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(meta);
        return NULL;
    }
    c->node = n;
    c->httpd = crm_node_httpd(n);
    c->meta = meta;
    c->hold_ms = hold_ms_for(n);
    c->routed = add_routes(c) == 0;
    pthread_mutex_lock(&registry_lock);
    c->next_registered = registry;
    registry = c;
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void crm_dash_chart_free(crm_dash_chart *c)
{
    if (!c) return;
    if (c->routed) crm_http_route_remove(c->node);
    pthread_mutex_lock(&registry_lock);
    for (crm_dash_chart **pp = &registry; *pp; pp = &(*pp)->next_registered) {
        if (*pp == c) {
            *pp = c->next_registered;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    crm_timer_cancel(c->flush);
    answer_all_polls(c, false);
    json_decref(c->meta);
    free(c);
}
