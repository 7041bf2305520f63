/* httpd.c: the runtime's one HTTP server (libmicrohttpd, poll or epoll, a small
 * thread pool). The admin API and the routes of `http in` nodes share it.
 *
 * A node request is routed and its body parsed on the server thread; what
 * the message needs (method, url, headers, client address, parsed body) is
 * copied into one block, the connection is suspended and the block handed
 * to the node's loop with crm_node_post, where the message is built: the
 * message's many small values are then allocated and freed on one thread
 * (glibc pays dearly for memory freed on another). The message's msg.res is
 * a live handle whose number names a slot in a table of pending requests:
 * crm_http_respond() takes the slot (so a request is answered at most once),
 * packs status, headers and body into space inside the request and resumes
 * the connection; libmicrohttpd then calls the access handler again, which
 * builds the response (ETag, 304) and queues it, all on the server thread.
 * A reaper thread answers 504 to requests left unanswered past
 * httpRequestTimeout; past maxRequestsInFlight new requests get 503.
 *
 * Speed (tools/bench/run.sh): on two cores or fewer, the flow loop that
 * holds every route drives libmicrohttpd and answers in the access handler
 * a request its flow answers at once ("Driving from a flow's loop");
 * otherwise poll rather than epoll by default, since every suspend and
 * resume is an epoll_ctl, and one server thread per spare core; the admin
 * callback is skipped for paths it declined before.
 *
 * The pieces (httpd_internal.h is what they share): this file, the core
 * (settings, routes, dispatch, answers, life cycle); httpd_msg.c, a node
 * request's message; httpd_cors.c, CORS and httpNodeAuth; httpd_conn.c,
 * connections and timeouts; httpd_loop.c, driving from a flow's loop;
 * httpd_recv.c, the executable's recv, which notes what a read left.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "http_internal.h"
#include "metrics.h"
#include "runtime.h"
#include "httpd_internal.h"


/* the upper bounds of the request duration histogram (route_stats), seconds */
static const double http_le[HTTP_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* Logging ---------------------------------------------------------------------- */

void httpd_log(crm_httpd *h, crm_log_level lvl, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (h->log) {
        h->log(h->log_ctx, lvl, text);
        return;
    }
    static const char *names[] = {"trace", "debug", "info", "warn", "error"};
    fprintf(stderr, "[%s] [httpd] %s\n", names[lvl], text);
}

void crm_httpd_set_log(crm_httpd *h, crm_httpd_log_fn fn, void *ctx)
{
    h->log = fn;
    h->log_ctx = ctx;
}

double httpd_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Settings --------------------------------------------------------------------- */

/* A root setting normalised to "/x/", NULL for false; def when absent. */
static int root_setting(const json_t *v, char **out)
{
    if (!v) return 0;
    free(*out);
    *out = NULL;
    if (json_is_false(v)) return 0;
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    strbuf sb = SB_INIT;
    if (s[0] != '/') sb_putc(&sb, '/');
    sb_puts(&sb, s);
    if (sb.data[sb.len - 1] != '/') sb_putc(&sb, '/');
    *out = sb_take(&sb);
    return 0;
}

/* The bytes module: 5242880, "5mb", "100kb". */
static double parse_bytes(const json_t *v, double def)
{
    if (json_is_number(v)) return json_number_value(v);
    if (!json_is_string(v)) return def;
    char *end;
    double n = strtod(json_string_value(v), &end);
    if (end == json_string_value(v)) return def;
    while (*end == ' ') end++;
    if (!strcasecmp(end, "kb")) n *= 1024;
    else if (!strcasecmp(end, "mb")) n *= 1024 * 1024;
    else if (!strcasecmp(end, "gb")) n *= 1024.0 * 1024 * 1024;
    else if (*end && strcasecmp(end, "b")) return def;
    return n;
}

static double num_setting(const json_t *s, const char *key, double def)
{
    const json_t *v = json_object_get(s, key);
    if (json_is_number(v)) return json_number_value(v);
    if (json_is_string(v) && *json_string_value(v)) return crm_str_to_number(json_string_value(v));
    return def;
}

static int read_settings(crm_httpd *h, const json_t *s)
{
    /* checked before the cast: a double outside int's range is undefined */
    double port = num_setting(s, "port", num_setting(s, "uiPort", 1880));
    if (!(port >= 0 && port <= 65535)) {
        httpd_log(h, CRM_LOG_ERROR, "settings.port must be a port number from 0 to 65535");
        return -1;
    }
    h->port_cfg = (int)port;
    const char *host = json_string_value(json_object_get(s, "host"));
    if (!host) host = json_string_value(json_object_get(s, "uiHost"));
    if (host && *host) h->host = strdup(host);
    h->node_root = strdup("/");
    h->admin_root = strdup("/");
    const json_t *root = json_object_get(s, "httpRoot");
    if (root) {
        if (root_setting(root, &h->node_root) < 0 || root_setting(root, &h->admin_root) < 0) {
            httpd_log(h, CRM_LOG_ERROR, "settings.httpRoot must be a string or false");
            return -1;
        }
    } else if (root_setting(json_object_get(s, "httpNodeRoot"), &h->node_root) < 0 ||
               root_setting(json_object_get(s, "httpAdminRoot"), &h->admin_root) < 0) {
        httpd_log(h, CRM_LOG_ERROR, "settings.httpNodeRoot / httpAdminRoot must be strings or false");
        return -1;
    }
    const json_t *cors = json_object_get(s, "httpNodeCors");
    if (json_is_object(cors)) h->cors = json_deep_copy(cors);
    /* Node-RED 4.1.15 runs a permissive cors handler on everything under
     * httpAdminRoot, http in answers included (the admin app is mounted
     * ahead of the node routes): every such answer says
     * Access-Control-Allow-Origin: *, and OPTIONS is answered 204 there */
    if (h->admin_root) h->admin_cors = json_pack("{s:s, s:s}", "origin", "*", "methods", "GET,PUT,POST,DELETE");
    const json_t *auth = json_object_get(s, "httpNodeAuth");
    if (json_is_object(auth)) {
        const char *u = json_string_value(json_object_get(auth, "user"));
        const char *p = json_string_value(json_object_get(auth, "pass"));
        if (!u || !p) {
            httpd_log(h, CRM_LOG_ERROR, "settings.httpNodeAuth needs user and pass");
            return -1;
        }
        h->auth_user = strdup(u);
        h->auth_pass = strdup(p);
    }
    const json_t *https = json_object_get(s, "https");
    if (json_is_object(https)) {
        const char *k = json_string_value(json_object_get(https, "key"));
        const char *c = json_string_value(json_object_get(https, "cert"));
        h->tls_key = k ? crm_read_file(k, NULL) : NULL;
        h->tls_cert = c ? crm_read_file(c, NULL) : NULL;
        if (!h->tls_key || !h->tls_cert) {
            httpd_log(h, CRM_LOG_ERROR, "settings.https: cannot read key %s / cert %s", k ? k : "(none)", c ? c : "(none)");
            return -1;
        }
    }
    double mif = num_setting(s, "maxRequestsInFlight", 4096);
    if (!(mif >= 1 && mif <= (double)SLOT_MASK)) mif = 4096;
    h->max_inflight = (size_t)mif;
    h->timeout_ms = num_setting(s, "httpRequestTimeout", 120000);
    if (!(h->timeout_ms >= 0)) h->timeout_ms = 120000;
    h->head_timeout_ms = num_setting(s, "httpHeadersTimeout", 60000);
    if (!(h->head_timeout_ms >= 0)) h->head_timeout_ms = 60000;
    h->body_timeout_ms = num_setting(s, "httpBodyTimeout", 300000);
    if (!(h->body_timeout_ms >= 0)) h->body_timeout_ms = 300000;
    double mw = num_setting(s, "httpMaxWaitingConnections", 0);
    h->max_waiting = mw >= 1 && mw < 1e9 ? (size_t)mw : 0; /* 0: by polling mode, at start */
    double api_max = parse_bytes(json_object_get(s, "apiMaxLength"), 5.0 * 1024 * 1024);
    h->api_max = api_max >= 0 && api_max < 1e15 ? (size_t)api_max : 5 * 1024 * 1024;
    /* one core is left to the flow loops, which do the other half of the
     * work; but on two cores two server threads serve more (about +7 % on
     * http in -> change -> http response, no change on the delayed API flow):
     * half of a server thread's time is the kernel's send, which then runs
     * on both cores while the loop waits */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int def_threads = cores > 2 ? (int)(cores > 5 ? 4 : cores - 1) : cores == 2 ? 2 : 1;
    double threads = num_setting(s, "httpThreads", def_threads);
    h->threads = threads >= 1 && threads <= 64 ? (int)threads : def_threads;
    h->threads_set = json_object_get(s, "httpThreads") != NULL;
    const json_t *onloop = json_object_get(s, "httpOnFlowLoop");
    h->loop_setting = onloop ? json_is_true(onloop) : -1;
    h->reuse_port = json_is_true(json_object_get(s, "reusePort"));
    const json_t *polling = json_object_get(s, "httpPolling");
    if (polling) {
        const char *pm = json_string_value(polling);
        if (!pm || (strcmp(pm, "poll") != 0 && strcmp(pm, "epoll") != 0)) {
            httpd_log(h, CRM_LOG_ERROR, "settings.httpPolling must be \"poll\" or \"epoll\"");
            return -1;
        }
        h->epoll = !strcmp(pm, "epoll");
    }
    return 0;
}

crm_httpd *crm_httpd_new(const json_t *settings)
{
    crm_httpd *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_rwlock_init(&h->routes_lock, NULL);
    pthread_rwlockattr_t ha;
    pthread_rwlockattr_init(&ha);
    pthread_rwlockattr_setkind_np(&ha, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->hold_lock, &ha);
    pthread_rwlockattr_destroy(&ha);
    pthread_mutex_init(&h->slots_lock, NULL);
    pthread_mutex_init(&h->reaper_mu, NULL);
    pthread_cond_init(&h->reaper_cv, NULL);
    pthread_mutex_init(&h->auth_mu, NULL);
    pthread_mutex_init(&h->conns_mu, NULL);
    pthread_mutex_init(&h->stats_mu, NULL);
    pthread_mutex_init(&h->drv_mu, NULL);
    pthread_cond_init(&h->drv_cv, NULL);
    h->mhd_epfd = h->ctl_efd = h->resume_efd = -1;
    h->token = calloc(1, sizeof *h->token);
    if (!h->token) {
        free(h);
        return NULL;
    }
    h->token->h = h;
    atomic_init(&h->token->refs, 1);
    h->queue_max = crm_queue_max_setting(settings);
    if (read_settings(h, settings) < 0) {
        crm_httpd_free(h);
        return NULL;
    }
    h->slots = calloc(h->max_inflight, sizeof *h->slots);
    h->gens = calloc(h->max_inflight, sizeof *h->gens);
    h->free_list = malloc(h->max_inflight * sizeof *h->free_list);
    if (!h->slots || !h->gens || !h->free_list) {
        crm_httpd_free(h);
        return NULL;
    }
    for (size_t i = 0; i < h->max_inflight; i++) h->free_list[i] = (uint32_t)(h->max_inflight - 1 - i);
    h->nfree = h->max_inflight;
    return h;
}

int crm_httpd_port(const crm_httpd *h) { return h ? h->port : 0; }
const char *crm_httpd_node_root(const crm_httpd *h) { return h ? h->node_root : NULL; }
const char *crm_httpd_admin_root(const crm_httpd *h) { return h ? h->admin_root : NULL; }

void crm_httpd_set_admin(crm_httpd *h, crm_admin_fn fn, void *ctx)
{
    h->admin = fn;
    h->admin_ctx = ctx;
    for (size_t i = 0; i < ADMIN_DECLINED; i++) atomic_store(&h->declined[i], 0);
}

/* Pending requests ------------------------------------------------------------ */

static long long slot_take_new(crm_httpd *h, req_state *r)
{
    long long id = -1;
    pthread_mutex_lock(&h->slots_lock);
    if (h->nfree && !h->closing) {
        uint32_t i = h->free_list[--h->nfree];
        h->slots[i] = r;
        h->inflight++;
        r->slot = (int)i;
        /* a request without a body is dispatched as its head completes: its t0 is now */
        double now = r->t0 > 0 && !r->expect_body ? r->t0 : httpd_mono_ms();
        r->deadline = h->timeout_ms > 0 ? now + h->timeout_ms : 0;
        id = ((long long)h->gens[i] << SLOT_BITS) | i;
    }
    pthread_mutex_unlock(&h->slots_lock);
    return id;
}


static void slot_release_locked(crm_httpd *h, req_state *r)
{
    uint32_t i = (uint32_t)r->slot;
    h->slots[i] = NULL;
    h->gens[i] = (h->gens[i] + 1) & 0xFFFFFFFu;
    h->free_list[h->nfree++] = i;
    h->inflight--;
    r->slot = -1;
}

/* Takes r out of the table for answering it: the caller owns a reference
 * until httpd_deliver() (or httpd_req_release). */
void httpd_slot_claim_locked(crm_httpd *h, req_state *r)
{
    slot_release_locked(h, r);
    atomic_fetch_add(&r->refs, 1);
}

/* The pending request with this id, claimed, or NULL. */
req_state *httpd_slot_claim(crm_httpd *h, long long id)
{
    if (id < 0) return NULL;
    uint32_t i = (uint32_t)(id & SLOT_MASK);
    uint32_t gen = (uint32_t)(id >> SLOT_BITS);
    req_state *r = NULL;
    pthread_mutex_lock(&h->slots_lock);
    if (i < h->max_inflight && h->slots[i] && h->gens[i] == gen) {
        r = h->slots[i];
        httpd_slot_claim_locked(h, r);
    }
    pthread_mutex_unlock(&h->slots_lock);
    return r;
}

/* Responses ----------------------------------------------------------------------- */

static struct MHD_Response *text_response(const char *ctype, const char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp && ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    return resp;
}

static void count_answer(route_stats *st, unsigned status, double ms)
{
    double sec = ms / 1000;
    size_t b = 0;
    while (b < HTTP_BUCKETS && sec > http_le[b]) b++;
    CRM_STAT_ADD(st->buckets[b], 1);
    CRM_STAT_ADD(st->sum_us, (uint64_t)(ms > 0 ? ms * 1000 : 0));
    CRM_STAT_ADD(st->count, 1);
    for (size_t i = 0; i < STATUS_SLOTS; i++) {
        unsigned c = atomic_load_explicit(&st->status[i].code, memory_order_relaxed);
        if (!c && i + 1 < STATUS_SLOTS) {
            unsigned zero = 0;
            if (atomic_compare_exchange_strong(&st->status[i].code, &zero, status)) c = status;
            else c = zero; /* another thread took the slot: for which status? */
        } else if (!c) {
            unsigned zero = 0;
            atomic_compare_exchange_strong(&st->status[i].code, &zero, 1);
            c = 1;
        }
        if (c == status || (c == 1 && i + 1 == STATUS_SLOTS)) {
            CRM_STAT_ADD(st->status[i].n, 1);
            return;
        }
    }
}

/* The counters of a route, found again or made. */
static route_stats *route_stats_of(crm_httpd *h, const char *method, const char *pattern, const char *flow)
{
    pthread_mutex_lock(&h->stats_mu);
    route_stats *st = h->stats;
    while (st && (strcmp(st->method, method) || strcmp(st->pattern, pattern) || strcmp(st->flow, flow))) st = st->next;
    if (!st && (st = calloc(1, sizeof *st))) {
        snprintf(st->method, sizeof st->method, "%s", method);
        st->pattern = strdup(pattern);
        st->flow = strdup(flow);
        flow_queue *q = h->queues;
        while (q && strcmp(q->flow, flow)) q = q->next;
        if (!q && (q = calloc(1, sizeof *q))) {
            q->flow = strdup(flow);
            q->next = h->queues;
            h->queues = q;
        }
        st->fq = q;
        st->next = h->stats;
        h->stats = st;
    }
    pthread_mutex_unlock(&h->stats_mu);
    return st;
}

static void metric_route_labels(strbuf *sb, const route_stats *st)
{
    crm_prom_label(sb, "method", st->method, true);
    crm_prom_label(sb, "route", st->pattern, false);
    crm_prom_label(sb, "flow", st->flow, false);
}

void crm_httpd_metrics(crm_httpd *h, strbuf *sb)
{
    pthread_mutex_lock(&h->stats_mu);
    crm_prom_family(sb, "carmine_http_requests_total", "counter",
                    "Requests to http in routes (the node's URL pattern) by the status answered.");
    for (route_stats *st = h->stats; st; st = st->next)
        for (size_t i = 0; i < STATUS_SLOTS; i++) {
            unsigned c = atomic_load_explicit(&st->status[i].code, memory_order_relaxed);
            if (!c) break;
            sb_puts(sb, "carmine_http_requests_total{");
            metric_route_labels(sb, st);
            char code[16];
            snprintf(code, sizeof code, "%u", c);
            crm_prom_label(sb, "status", c == 1 ? "other" : code, false);
            sb_printf(sb, "} %llu\n", (unsigned long long)CRM_STAT_GET(st->status[i].n));
        }
    crm_prom_family(sb, "carmine_http_request_duration_seconds", "histogram",
                    "From a request's complete head to its answer being queued, by route.");
    for (route_stats *st = h->stats; st; st = st->next) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= HTTP_BUCKETS; b++) {
            cum += CRM_STAT_GET(st->buckets[b]);
            sb_puts(sb, "carmine_http_request_duration_seconds_bucket{");
            metric_route_labels(sb, st);
            char le[32];
            if (b < HTTP_BUCKETS) snprintf(le, sizeof le, "%g", http_le[b]);
            else snprintf(le, sizeof le, "+Inf");
            crm_prom_label(sb, "le", le, false);
            sb_printf(sb, "} %llu\n", (unsigned long long)cum);
        }
        sb_puts(sb, "carmine_http_request_duration_seconds_sum{");
        metric_route_labels(sb, st);
        sb_printf(sb, "} %.6f\n", CRM_STAT_GET(st->sum_us) / 1e6);
        sb_puts(sb, "carmine_http_request_duration_seconds_count{");
        metric_route_labels(sb, st);
        /* the buckets' total, not count: the two are read at different moments */
        sb_printf(sb, "} %llu\n", (unsigned long long)cum);
    }
    crm_prom_family(sb, "carmine_flow_http_pending", "gauge",
                    "Requests handed to the flow's http in nodes and not answered yet.");
    for (flow_queue *q = h->queues; q; q = q->next) {
        sb_puts(sb, "carmine_flow_http_pending{");
        crm_prom_label(sb, "flow", q->flow, true);
        long p = atomic_load_explicit(&q->pending, memory_order_relaxed);
        sb_printf(sb, "} %ld\n", p > 0 ? p : 0);
    }
    crm_prom_family(sb, "carmine_flow_http_refused_total", "counter",
                    "Requests answered 503 with Retry-After: the flow held nodeInputQueueMaxLength requests.");
    for (flow_queue *q = h->queues; q; q = q->next) {
        sb_puts(sb, "carmine_flow_http_refused_total{");
        crm_prom_label(sb, "flow", q->flow, true);
        sb_printf(sb, "} %llu\n", (unsigned long long)CRM_STAT_GET(q->refused));
    }
    pthread_mutex_unlock(&h->stats_mu);
}

/* Queues an answer with the request's cors headers, those the answer sets
 * itself winning (Express: the handler's res.set comes after cors). */
enum MHD_Result httpd_queue(req_state *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp) return MHD_NO;
    if (tl_deferred == r) { /* drv_thread for a suspended request: the loop queues it on resume */
        if (r->resp) MHD_destroy_response(r->resp);
        r->resp = resp;
        r->resp_status = status;
        r->deferred_queued = true;
        return MHD_YES;
    }
    if (r->extra) {
        const char *name;
        json_t *v;
        json_object_foreach(r->extra, name, v) {
            if (json_is_string(v) && !MHD_get_response_header(resp, name))
                MHD_add_response_header(resp, name, json_string_value(v));
        }
    }
    if (r->any_origin && !MHD_get_response_header(resp, "Access-Control-Allow-Origin"))
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    if (r->st) {
        count_answer(r->st, status, httpd_mono_ms() - r->t0);
        r->st = NULL;
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* finalhandler's page: 404 "Cannot GET /x", 400 for a bad JSON body, ... */
static struct MHD_Response *error_page(const char *msg)
{
    size_t len;
    char *page = http_error_page(msg, &len);
    struct MHD_Response *resp = page ? MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(page);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    return resp;
}

static enum MHD_Result queue_error_page(req_state *r, unsigned status, const char *msg)
{
    struct MHD_Response *resp = error_page(msg);
    return resp ? httpd_queue(r, status, resp) : MHD_NO;
}

struct MHD_Response *crm_httpd_not_found(const char *method, const char *path)
{
    strbuf msg = SB_INIT;
    sb_printf(&msg, "Cannot %s %s", method, path);
    struct MHD_Response *resp = error_page(msg.data);
    sb_free(&msg);
    return resp;
}

/* res.sendStatus(): the status text as text/plain. */
struct MHD_Response *httpd_status_response(unsigned status)
{
    const char *text = status == 500 ? "Internal Server Error"
                       : status == 503 ? "Service Unavailable"
                       : status == 504 ? "Gateway Timeout"
                       : status == 401 ? "Unauthorized"
                       : status == 413 ? "Payload Too Large" : "Error";
    return text_response("text/plain; charset=utf-8", text, strlen(text));
}

static void add_headers(struct MHD_Response *resp, const json_t *headers)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)headers, name, v) {
        if (!strcasecmp(name, "content-length") || !strcasecmp(name, "transfer-encoding")) continue;
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (json_is_string(e)) MHD_add_response_header(resp, name, json_string_value(e));
            }
        } else if (json_is_string(v)) {
            MHD_add_response_header(resp, name, json_string_value(v));
        }
    }
}

/* Wakes a suspended request whose answer (r->reply or r->resp) is set. */
void httpd_resume_with_answer(req_state *r)
{
    if (r->h->ext) {
        /* held by the loop that runs its flow: it takes the answer itself */
        pthread_mutex_lock(&r->h->slots_lock);
        bool held = r->inline_held;
        if (held) atomic_store(&r->inline_answered, true);
        pthread_mutex_unlock(&r->h->slots_lock);
        if (held) return;
    }
    r->resume_counted = true;
    atomic_fetch_add(&r->h->resumes_pending, 1);
    MHD_resume_connection(r->conn);
    /* without threads of its own libmicrohttpd wakes nobody: the driver takes
     * the resumed connection in its next MHD_run */
    if (r->h->ext) httpd_wake_driver(r->h);
}

/* The answer was taken (or the request ended without it). */
static void answer_taken(req_state *r)
{
    if (!r->resume_counted) return;
    r->resume_counted = false;
    atomic_fetch_sub(&r->h->resumes_pending, 1);
}

/* Hands a built response to the (suspended) request and wakes it. */
void httpd_deliver(req_state *r, unsigned status, struct MHD_Response *resp)
{
    r->resp = resp;
    r->resp_status = status;
    httpd_resume_with_answer(r);
    httpd_req_release(r);
}

crm_httpd *crm_node_httpd(const crm_node *n)
{
    crm_runtime *rt = n ? crm_node_runtime(n) : NULL;
    return rt ? crm_runtime_httpd(rt) : NULL;
}

/* Whether a header goes out: libmicrohttpd writes the framing headers itself. */
static bool header_sendable(const char *name)
{
    return strcasecmp(name, "content-length") != 0 && strcasecmp(name, "transfer-encoding") != 0;
}

/* Calls put(name, value) for every header value to send: arrays give one
 * line per string, values that are not strings are skipped. */
static size_t each_header_value(const json_t *headers, void (*put)(void *, const char *, const char *), void *ctx)
{
    size_t n = 0;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)headers, name, v) {
        if (!header_sendable(name)) continue;
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (json_is_string(e)) {
                    if (put) put(ctx, name, json_string_value(e));
                    n += strlen(name) + json_string_length(e) + 2;
                }
            }
        } else if (json_is_string(v)) {
            if (put) put(ctx, name, json_string_value(v));
            n += strlen(name) + json_string_length(v) + 2;
        }
    }
    return n;
}

typedef struct {
    http_reply *rep;
    char *at, *end; /* end: where the room for headers ends */
    bool full;      /* a header did not fit: nothing more is written */
} reply_writer;

static void put_reply_header(void *ctx, const char *name, const char *value)
{
    reply_writer *w = ctx;
    size_t n = strlen(name) + 1, vn = strlen(value) + 1;
    if (w->full || (size_t)(w->end - w->at) < n + vn) {
        w->full = true;
        return;
    }
    memcpy(w->at, name, n);
    memcpy(w->at + n, value, vn);
    w->at += n + vn;
    w->rep->nheaders++;
}

static http_reply *reply_start(void *at, int status, size_t len, unsigned flags)
{
    http_reply *rep = at;
    rep->status = status;
    rep->flags = flags;
    rep->nheaders = 0;
    rep->len = len;
    return rep;
}

static void reply_body(http_reply *rep, char *at, const void *body, size_t len)
{
    memcpy(at, body, len);
    at[len] = 0;
    rep->body = at;
}

/* One block holding status, headers and body (copied): in space when it
 * fits (space_size bytes), else malloc'd. NULL when out of memory. The usual
 * answer fits: its headers are written in one pass, without measuring them
 * first. */
static http_reply *pack_reply(void *space, size_t space_size, int status, const json_t *headers, const void *body,
                              size_t len, unsigned flags)
{
    if (space_size >= sizeof(http_reply) + len + 1) {
        http_reply *rep = reply_start(space, status, len, flags);
        reply_writer w = {rep, rep->data, (char *)space + space_size - len - 1, false};
        if (headers) each_header_value(headers, put_reply_header, &w);
        if (!w.full) {
            reply_body(rep, w.at, body, len);
            return rep;
        }
    }
    size_t hbytes = headers ? each_header_value(headers, NULL, NULL) : 0;
    size_t need = sizeof(http_reply) + hbytes + len + 1;
    http_reply *rep = malloc(need);
    if (!rep) return NULL;
    reply_start(rep, status, len, flags);
    reply_writer w = {rep, rep->data, rep->data + hbytes, false};
    if (headers) each_header_value(headers, put_reply_header, &w);
    reply_body(rep, w.at, body, len);
    return rep;
}

/* On the server thread: the libmicrohttpd response for a packed answer,
 * with Express's ETag and freshness check (304) done here. */
static struct MHD_Response *reply_response(req_state *r, const http_reply *rep, unsigned *status_out)
{
    int status = rep->status;
    char etag[64] = "";
    const char *own_etag = NULL, *cc = NULL; /* the first of each, in one pass */
    const char *hp = rep->data;
    for (size_t i = 0; i < rep->nheaders; i++) {
        const char *v = hp + strlen(hp) + 1;
        if (!own_etag && !strcasecmp(hp, "etag")) own_etag = v;
        else if (!cc && !strcasecmp(hp, "cache-control")) cc = v;
        hp = v + strlen(v) + 1;
    }
    if ((rep->flags & CRM_HTTP_ETAG) && !own_etag) http_etag(rep->body, rep->len, etag);
    const char *tag = etag[0] ? etag : own_etag;
    if ((rep->flags & CRM_HTTP_ETAG) && tag && r->get_or_head && ((status >= 200 && status < 300) || status == 304) &&
        !(cc && strstr(cc, "no-cache")) && http_etag_fresh(r->if_none_match, tag))
        status = 304; /* req.fresh */
    bool empty = status == 204 || status == 304;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        empty ? 0 : rep->len, empty ? (void *)"" : (void *)rep->body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        *status_out = 500;
        return httpd_status_response(500);
    }
    const char *p = rep->data;
    for (size_t i = 0; i < rep->nheaders; i++) {
        const char *v = p + strlen(p) + 1;
        if (!(empty && !strcasecmp(p, "content-type"))) MHD_add_response_header(resp, p, v);
        p = v + strlen(v) + 1;
    }
    if (etag[0]) MHD_add_response_header(resp, "ETag", etag);
    *status_out = (unsigned)status;
    return resp;
}

static int respond_h(crm_httpd *h, const json_t *res, int status, const json_t *headers, const void *body,
                     size_t len, unsigned flags)
{
    if (!h || !crm_is_handle(res)) return -1;
    req_state *r = httpd_slot_claim(h, crm_handle_id(res));
    if (!r) return -1;
    http_reply *rep = pack_reply(r->reply_space, sizeof r->reply_space, status, headers, body, len, flags);
    if (!rep) {
        httpd_deliver(r, 500, httpd_status_response(500));
        return 0;
    }
    r->reply = rep;
    httpd_resume_with_answer(r);
    httpd_req_release(r);
    return 0;
}

int crm_http_respond(crm_node *n, const json_t *res_handle, int status, const json_t *headers, const void *body,
                     size_t len, unsigned flags)
{
    if (status < 100 || status > 999) return -1;
    return respond_h(crm_node_httpd(n), res_handle, status, headers, body ? body : "", body ? len : 0, flags);
}

/* Routes ------------------------------------------------------------------------- */

static char *normalise_path(const char *p, size_t n)
{
    strbuf sb = SB_INIT;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '/' && sb.len && sb.data[sb.len - 1] == '/') continue;
        sb_putc(&sb, p[i]);
    }
    if (sb.len > 1 && sb.data[sb.len - 1] == '/') sb.data[--sb.len] = 0;
    if (!sb.len) sb_putc(&sb, '/');
    return sb_take(&sb);
}


int crm_http_route_add(crm_node *n, const char *method, const char *pattern, unsigned flags,
                       crm_http_request_fn on_request)
{
    crm_httpd *h = crm_node_httpd(n);
    if (!h) return -3;
    if (!h->node_root) return -2;
    static const char *methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    const char *m = NULL;
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (method && !strcasecmp(method, methods[i])) m = methods[i];
    if (!m || !pattern || !on_request) return -1;
    /* mounted at httpNodeRoot: "/api/" + "/x" serves "/api/x" */
    strbuf full = SB_INIT;
    sb_puts(&full, h->node_root);
    sb_puts(&full, pattern[0] == '/' ? pattern + 1 : pattern);
    if (full.len > 1 && pattern[0] && !strcmp(pattern, "/")) full.data[--full.len] = 0;
    route rt = {.node = n, .flags = flags, .fn = on_request};
    rt.st = route_stats_of(h, m, pattern, crm_node_tab(n));
    snprintf(rt.method, sizeof rt.method, "%s", m);
    rt.pat = http_pattern_new(full.data);
    rt.exact = normalise_path(full.data, full.len);
    sb_free(&full);
    if (!rt.pat || !rt.exact) {
        http_pattern_free(rt.pat);
        free(rt.exact);
        return -1;
    }
    pthread_rwlock_wrlock(&h->routes_lock);
    if (h->nroutes == h->routes_cap) {
        size_t cap = h->routes_cap ? h->routes_cap * 2 : 8;
        route *nr = realloc(h->routes, cap * sizeof *nr);
        if (!nr) {
            pthread_rwlock_unlock(&h->routes_lock);
            http_pattern_free(rt.pat);
            free(rt.exact);
            return -1;
        }
        h->routes = nr;
        h->routes_cap = cap;
    }
    h->routes[h->nroutes++] = rt;
    httpd_routes_changed_locked(h);
    pthread_rwlock_unlock(&h->routes_lock);
    httpd_ctl_wake(h);
    return 0;
}

void crm_http_route_remove(crm_node *n)
{
    crm_httpd *h = crm_node_httpd(n);
    if (!h) return;
    pthread_rwlock_wrlock(&h->routes_lock);
    size_t k = 0;
    for (size_t i = 0; i < h->nroutes; i++) {
        if (h->routes[i].node == n) {
            http_pattern_free(h->routes[i].pat);
            free(h->routes[i].exact);
        } else {
            h->routes[k++] = h->routes[i];
        }
    }
    h->nroutes = k;
    httpd_routes_changed_locked(h);
    pthread_rwlock_unlock(&h->routes_lock);
    if (h->ext) {
        pthread_mutex_lock(&h->drv_mu);
        bool mine = h->driver == DRV_LOOP && h->drive_node == n;
        pthread_mutex_unlock(&h->drv_mu);
        if (mine) httpd_detach_here(h, false);
    }
    httpd_ctl_wake(h);
}

/* Dispatch ------------------------------------------------------------------------------- */

static void warn_on_loop(crm_node *n, void *arg)
{
    crm_node_warn(n, "%s", (char *)arg);
    free(arg);
}

static bool under_root(const char *root, const char *path, size_t plen)
{
    size_t rl = strlen(root);
    if (rl == 1) return true;
    /* "/api/" serves "/api" and "/api/..." (case-insensitive, as Express mounts) */
    if (plen + 1 == rl) return strncasecmp(path, root, plen) == 0;
    return plen >= rl && strncasecmp(path, root, rl) == 0;
}

static const route *find_route(const crm_httpd *h, const char *method, const char *path, size_t plen, json_t **params,
                               bool *path_known, strbuf *allow)
{
    bool head = !strcmp(method, "HEAD");
    *path_known = false;
    const route *found = NULL;
    for (size_t i = 0; i < h->nroutes; i++) {
        const route *rt = &h->routes[i];
        bool method_ok = !strcmp(rt->method, method) || (head && !strcmp(rt->method, "GET"));
        if (!method_ok && !allow) continue;
        if (!http_pattern_match(rt->pat, path, plen, method_ok && !found ? params : NULL)) continue;
        *path_known = true;
        if (allow && !strstr(allow->data ? allow->data : "", rt->method)) {
            if (allow->len) sb_putc(allow, ',');
            sb_puts(allow, rt->method);
            if (!strcmp(rt->method, "GET")) sb_puts(allow, ",HEAD");
        }
        if (method_ok && !found) {
            found = rt;
            if (!allow) break;
        }
    }
    return found;
}

static enum MHD_Result reply_now(req_state *r, unsigned status, struct MHD_Response *resp)
{
    return httpd_queue(r, status, resp);
}

/* req.body for a request that is not a GET, or NULL after answering it
 * (a body the parsers refuse: a warning from the node and 500). */
static json_t *parse_request_body(req_state *r, const route *rt, const char *method, const char *path, size_t plen,
                                  json_t **files, enum MHD_Result *ret)
{
    char *norm = NULL;
    json_t *body;
    if ((rt->flags & CRM_HTTP_RAW_BODY) && !http_pattern_has_params(rt->pat) &&
        !strcmp(rt->exact, (norm = normalise_path(path, plen)))) {
        body = crm_buf_new(r->body.data ? r->body.data : "", r->body.len);
    } else {
        http_body_error err;
        const char *raw_ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
        json_t *ct = raw_ct ? httpd_latin1_string(raw_ct) : NULL;
        body = http_parse_body(json_string_value(ct), r->body.data ? r->body.data : "", r->body.len,
                               (rt->flags & CRM_HTTP_UPLOAD) && !strcmp(method, "POST"), files, &err);
        json_decref(ct);
        if (!body) {
            crm_node_post(rt->node, warn_on_loop, strdup(err.message));
            *ret = reply_now(r, 500, httpd_status_response(500));
        }
    }
    free(norm);
    return body;
}

/* A request on a node route: its snapshot goes to the node's loop. Called
 * with the routes read-locked, so the node cannot be closed meanwhile.
 * params (new reference or NULL) is taken. */
static enum MHD_Result hand_to_node(req_state *r, const route *rt, const char *method, const char *path, size_t plen,
                                    json_t *params)
{
    crm_httpd *h = r->h;
    json_t *body = NULL, *files = NULL;
    r->st = rt->st;
    flow_queue *fq = rt->st ? rt->st->fq : NULL;
    if (fq) {
        long pending = atomic_fetch_add(&fq->pending, 1);
        r->fq = fq;
        if (h->queue_max && (size_t)pending >= h->queue_max) {
            /* the flow is full: an answer now, not a request queued without end */
            atomic_fetch_sub(&fq->pending, 1);
            r->fq = NULL;
            CRM_STAT_ADD(fq->refused, 1);
            if (!atomic_exchange(&fq->warned, true))
                httpd_log(h, CRM_LOG_WARN,
                     "flow %s holds %zu requests (nodeInputQueueMaxLength): answering 503 with Retry-After "
                     "(counted in carmine_flow_http_refused_total; warned once)",
                     fq->flow, h->queue_max);
            json_decref(params);
            struct MHD_Response *resp = httpd_status_response(503);
            if (resp) MHD_add_response_header(resp, "Retry-After", "1");
            return reply_now(r, 503, resp);
        }
    }
    if (strcmp(rt->method, "GET") != 0) {
        enum MHD_Result ret = MHD_YES;
        body = parse_request_body(r, rt, method, path, plen, &files, &ret);
        if (!body) {
            json_decref(params);
            return ret;
        }
    }
    req_snapshot *s = httpd_snapshot_new(r, method, plen);
    if (!s) {
        json_decref(params);
        json_decref(body);
        json_decref(files);
        return reply_now(r, 500, httpd_status_response(500));
    }
    s->params = params;
    s->body = body;
    s->files = files;
    s->fn = rt->fn;
    /* run here, on the node's own loop, which drives the server: no
     * suspend, no hand-off (see "Driving from a flow's loop") */
    bool inl = tl_driving == h && rt->node->loop == crm_loop_current() && !rt->node->closed;
    /* suspended before the request can be answered from elsewhere (the
     * loop, the reaper, a stop): resume must follow suspend. A request
     * drv_thread dispatches for the loop is suspended already. */
    if (!inl && tl_deferred != r) MHD_suspend_connection(r->conn);
    r->inline_held = inl; /* before the slot makes r visible to other threads */
    s->id = slot_take_new(h, r);
    if (s->id < 0) {
        r->inline_held = false;
        httpd_snapshot_free(s);
        bool closing = atomic_load(&h->stopping_soon);
        long long now = (long long)httpd_mono_ms();
        long long last = atomic_load(&h->last_503_log);
        if (!closing && now - last >= 1000 && atomic_compare_exchange_strong(&h->last_503_log, &last, now))
            httpd_log(h, CRM_LOG_WARN, "%zu requests in flight (maxRequestsInFlight): answering 503 to %s %s",
                 h->max_inflight, r->method, r->uri);
        struct MHD_Response *resp = httpd_status_response(503);
        if (inl) return reply_now(r, 503, resp);
        r->resp = resp;
        r->resp_status = 503;
        httpd_resume_with_answer(r);
        return MHD_YES;
    }
    s->r = r;
    r->snap = s;
    atomic_fetch_add(&r->refs, 1);
    s->node = rt->node;
    CRM_STAT_ADD(rt->node->stats.queued_remote, 1);
    if (inl) {
        r->pending_sync = s; /* httpd_run_inline, once httpd_dispatch let go of the route locks */
        return MHD_YES;
    }
    crm_node_post_ex(rt->node, httpd_run_handoff, httpd_drop_handoff, s);
    return MHD_YES;
}

/* FNV-1a over method, a separator and path: 64 bits make a false match
 * (an admin route skipped) practically impossible. */
static uint64_t route_hash(const char *method, const char *path, size_t plen)
{
    uint64_t x = 1469598103934665603ULL;
    for (const char *p = method; *p; p++) x = (x ^ (unsigned char)*p) * 1099511628211ULL;
    x = (x ^ ' ') * 1099511628211ULL;
    for (size_t i = 0; i < plen; i++) x = (x ^ (unsigned char)path[i]) * 1099511628211ULL;
    return x | 1; /* 0 marks an empty entry */
}

static bool admin_declined(crm_httpd *h, const char *method, const char *path, size_t plen)
{
    uint64_t x = route_hash(method, path, plen);
    return atomic_load_explicit(&h->declined[x % ADMIN_DECLINED], memory_order_relaxed) == x;
}

static void remember_declined(crm_httpd *h, const char *method, const char *path, size_t plen)
{
    uint64_t x = route_hash(method, path, plen);
    atomic_store_explicit(&h->declined[x % ADMIN_DECLINED], x, memory_order_relaxed);
}

static bool admin_json_quirk(req_state *r, const char *path, size_t plen, http_body_error *err)
{
    crm_httpd *h = r->h;
    if (!h->admin_root || !under_root(h->admin_root, path, plen) || !r->body.len) return false;
    char media[64];
    if (!http_media_type(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type"), media, sizeof media) ||
        strcmp(media, "application/json") != 0)
        return false;
    /* skipBodyParsing's raw hook runs before every parser */
    bool raw = false;
    char *norm = normalise_path(path, plen);
    pthread_rwlock_rdlock(&h->routes_lock);
    for (size_t i = 0; i < h->nroutes && !raw; i++) {
        const route *rt = &h->routes[i];
        raw = (rt->flags & CRM_HTTP_RAW_BODY) && !http_pattern_has_params(rt->pat) && !strcmp(rt->exact, norm);
    }
    pthread_rwlock_unlock(&h->routes_lock);
    free(norm);
    return !raw && !http_json_body_ok(r->body.data, r->body.len, err);
}

static enum MHD_Result call_admin(req_state *r, const char *method, const char *path, size_t plen, json_t *headers,
                                  bool *handled)
{
    crm_httpd *h = r->h;
    *handled = false;
    size_t rl = strlen(h->admin_root) - 1;
    /* "" for the root without its slash ("/admin"): the editor redirects it */
    char *sub = plen > rl ? strndup(path + rl, plen - rl) : strdup(rl && plen == rl ? "" : "/");
    if (!sub) return MHD_NO;
    crm_admin_reply reply = {0};
    const char *query = r->uri[plen] == '?' ? r->uri + plen + 1 : "";
    h->admin(h->admin_ctx, method, sub, query, headers, r->body.data ? r->body.data : "", r->body.len, &reply);
    free(sub);
    if (reply.status == 0) {
        free(reply.body);
        free(reply.headers);
        if (reply.file) close(reply.file_fd);
        return MHD_YES;
    }
    *handled = true;
    if (reply.error_page) {
        enum MHD_Result ret = queue_error_page(r, (unsigned)reply.status, reply.body ? reply.body : "");
        free(reply.body);
        free(reply.headers);
        if (reply.file) close(reply.file_fd);
        return ret;
    }
    struct MHD_Response *resp;
    if (reply.file) { /* sent from the file by the server thread (sendfile), closed by MHD */
        resp = MHD_create_response_from_fd((uint64_t)reply.len, reply.file_fd);
        if (!resp) close(reply.file_fd);
    } else {
        resp = MHD_create_response_from_buffer(reply.body ? reply.len : 0, reply.body ? reply.body : (void *)"",
                                               reply.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) free(reply.body);
    }
    if (!resp) {
        free(reply.headers);
        return MHD_NO;
    }
    if (reply.content_type) MHD_add_response_header(resp, "Content-Type", reply.content_type);
    if (reply.www_authenticate) MHD_add_response_header(resp, "WWW-Authenticate", reply.www_authenticate);
    for (char *line = reply.headers, *next; line && *line; line = next) {
        next = strstr(line, "\r\n");
        if (next) *next = 0, next += 2;
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = 0;
            MHD_add_response_header(resp, line, colon + 1 + strspn(colon + 1, " "));
        }
        if (!next) break;
    }
    free(reply.headers);
    return httpd_queue(r, (unsigned)reply.status, resp);
}

/* The admin app's cors header for a request under httpAdminRoot. */
static void mark_any_origin(req_state *r)
{
    crm_httpd *h = r->h;
    if (!h->admin_cors) return;
    const char *q = strchr(r->uri, '?');
    r->any_origin = under_root(h->admin_root, r->uri, q ? (size_t)(q - r->uri) : strlen(r->uri));
}

/* cors's answer to OPTIONS: 204 with the preflight headers (they replace the
 * request's others, a preflight answer is cors's alone). */
static enum MHD_Result preflight(req_state *r, const json_t *opts, const json_t *headers)
{
    json_t *ch = httpd_cors_headers(opts, headers, true);
    json_decref(r->extra);
    r->extra = NULL;
    r->any_origin = false;
    struct MHD_Response *resp = text_response(NULL, "", 0);
    if (resp) add_headers(resp, ch);
    json_decref(ch);
    return httpd_queue(r, 204, resp);
}

/* Upgrades (WebSocket listeners, runtime/net/ws_server.c): one
 * process-wide handler, asked about GET requests that carry an Upgrade
 * header before any route is looked at. */
static _Atomic(crm_httpd_upgrade_fn) upgrade_handler;

void crm_httpd_set_upgrade_handler(crm_httpd_upgrade_fn fn) { upgrade_handler = fn; }

/* Proxied paths (the companion's routes, runtime/companion/proxy.c): one
 * process-wide pair, asked about requests no admin or node route answered. */
static _Atomic(crm_httpd_proxy_match_fn) proxy_match;
static _Atomic(crm_httpd_proxy_fn) proxy_fn;

void crm_httpd_set_proxy(crm_httpd_proxy_match_fn match, crm_httpd_proxy_fn fn)
{
    proxy_fn = fn;
    proxy_match = match;
}

/* A request for the proxy: suspended, its copy handed to fn. */
static enum MHD_Result hand_to_proxy(req_state *r, crm_httpd_proxy_fn fn, const char *method)
{
    _Static_assert(sizeof(((crm_httpd_proxy_req *)0)->ip) >= IP_TEXT_MAX, "room for req.ip");
    crm_httpd *h = r->h;
    header_packer count = {NULL, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, httpd_pack_header, &count);
    size_t ml = strlen(method) + 1, ul = strlen(r->uri) + 1, bl = r->body.len;
    crm_httpd_proxy_req *q = malloc(sizeof *q + ml + ul + count.bytes + bl + 1);
    if (!q) return reply_now(r, 500, httpd_status_response(500));
    memset(q, 0, sizeof *q);
    char *at = q->data;
    q->h = h;
    q->method = memcpy(at, method, ml);
    q->uri = memcpy(at + ml, r->uri, ul);
    q->headers = at + ml + ul;
    q->nheaders = count.count;
    header_packer fill = {at + ml + ul, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, httpd_pack_header, &fill);
    q->body = fill.at;
    if (bl) memcpy(fill.at, r->body.data, bl);
    fill.at[bl] = 0;
    q->len = bl;
    httpd_client_ip(r->conn, q->ip);
    q->tls = h->tls_key != NULL;
    q->upgrade = r->get_or_head && MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Upgrade") != NULL;
    if (tl_deferred != r) MHD_suspend_connection(r->conn);
    q->id = slot_take_new(h, r);
    if (q->id < 0) {
        free(q);
        r->resp = httpd_status_response(503);
        r->resp_status = 503;
        httpd_resume_with_answer(r);
        return MHD_YES;
    }
    fn(q);
    return MHD_YES;
}

int crm_httpd_proxy_answer(crm_httpd *h, long long id, unsigned status, struct MHD_Response *resp)
{
    req_state *r = h && resp ? httpd_slot_claim(h, id) : NULL;
    if (!r) {
        if (resp) MHD_destroy_response(resp);
        return -1;
    }
    httpd_deliver(r, status, resp);
    return 0;
}


enum MHD_Result httpd_dispatch(req_state *r, const char *method)
{
    crm_httpd *h = r->h;
    r->dispatched = true;
    const char *q = strchr(r->uri, '?');
    size_t plen = q ? (size_t)(q - r->uri) : strlen(r->uri);
    char path_space[256]; /* the usual path needs no allocation */
    char *path = plen < sizeof path_space ? path_space : malloc(plen + 1);
    if (!path) return MHD_NO;
    memcpy(path, r->uri, plen);
    path[plen] = 0;
    crm_httpd_upgrade_fn up = upgrade_handler;
    if (up && tl_deferred != r && r->get_or_head && MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Upgrade")) {
        unsigned status = 0;
        struct MHD_Response *resp = up(r->conn, path, &status);
        if (resp) {
            if (path != path_space) free(path);
            return httpd_queue(r, status, resp);
        }
    }
    /* built only where needed: node routes take a packed copy instead */
    json_t *headers = NULL;
    enum MHD_Result ret = MHD_YES;
    http_body_error err;
    bool handled = false;
    mark_any_origin(r);
    if (r->any_origin && !strcmp(method, "OPTIONS")) {
        headers = httpd_request_headers(r->conn);
        ret = preflight(r, h->admin_cors, headers);
        goto out;
    }
    if (r->too_large) {
        ret = queue_error_page(r, 413, "PayloadTooLargeError: request entity too large");
        goto out;
    }
    if (admin_json_quirk(r, path, plen, &err)) {
        httpd_log(h, CRM_LOG_WARN, "%s %s: %s", r->method, r->uri, err.message);
        ret = queue_error_page(r, 400, err.message);
        goto out;
    }
    if (h->admin && h->admin_root && under_root(h->admin_root, path, plen) &&
        !admin_declined(h, method, path, plen)) {
        if (tl_driving == h) { /* the admin API may deploy, which stops this loop: drv_thread runs it */
            ret = httpd_defer_to_thread(r);
            goto out;
        }
        headers = httpd_request_headers(r->conn);
        ret = call_admin(r, method, path, plen, headers, &handled);
        if (handled || ret == MHD_NO) goto out;
        remember_declined(h, method, path, plen);
    }
    if (h->node_root && under_root(h->node_root, path, plen)) {
        bool options = !strcmp(method, "OPTIONS");
        if (h->cors && !headers) headers = httpd_request_headers(r->conn);
        if (h->cors && options) {
            ret = preflight(r, h->cors, headers);
            goto out;
        }
        if (h->auth_user && !options &&
            !httpd_auth_ok(h, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization"))) {
            struct MHD_Response *resp = httpd_status_response(401);
            if (resp) MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"Authorization Required\"");
            ret = httpd_queue(r, 401, resp);
            goto out;
        }
        json_t *params = NULL;
        bool known;
        strbuf allow = SB_INIT;
        pthread_rwlock_rdlock(&h->hold_lock);
        pthread_rwlock_rdlock(&h->routes_lock);
        const route *rt = find_route(h, method, path, plen, &params, &known, options ? &allow : NULL);
        if (rt) {
            if (h->cors) r->extra = httpd_cors_headers(h->cors, headers, false);
            ret = hand_to_node(r, rt, method, path, plen, params);
            pthread_rwlock_unlock(&h->routes_lock);
            pthread_rwlock_unlock(&h->hold_lock);
            sb_free(&allow);
            if (r->pending_sync) ret = httpd_run_inline(r);
            goto out;
        }
        pthread_rwlock_unlock(&h->routes_lock);
        pthread_rwlock_unlock(&h->hold_lock);
        if (options && known) { /* Express answers OPTIONS with the allowed methods */
            struct MHD_Response *resp = text_response("text/html; charset=utf-8", allow.data, allow.len);
            if (resp) MHD_add_response_header(resp, "Allow", allow.data);
            sb_free(&allow);
            ret = httpd_queue(r, 200, resp);
            goto out;
        }
        sb_free(&allow);
    }
    crm_httpd_proxy_match_fn pm = proxy_match;
    crm_httpd_proxy_fn pf = proxy_fn;
    if (pm && pf && pm(path)) {
        ret = hand_to_proxy(r, pf, method);
        goto out;
    }
    {
        strbuf msg = SB_INIT;
        sb_printf(&msg, "Cannot %s %s", method, path);
        ret = queue_error_page(r, 404, msg.data);
        sb_free(&msg);
    }
out:
    json_decref(headers);
    if (path != path_space) free(path);
    return ret;
}

/* Request framing (RFC 9112 §6.1, §6.3) -------------------------------------------- */

/* What the one pass over a request's head finds: the headers the server
 * reads itself, and whether the framing is ambiguous. libmicrohttpd 0.9.75
 * takes the first Content-Length, ignores a second one, frames a body by a
 * Content-Length even beside Transfer-Encoding, and reads a name with a
 * space before its colon as another header: a proxy in front that frames
 * the request otherwise would let a second request through hidden in the
 * body (request smuggling). Node.js's parser (llhttp) refuses all of these
 * with 400 and closes the connection; so does this server. */
typedef struct {
    const char *inm, *cl, *te;
    unsigned ncl, nte;
    bool bad_name; /* a space or tab in a header name ("Transfer-Encoding :") */
} head_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    head_scan *hs = cls;
    /* the first letter sorts out nearly every header at the cost of a compare */
    switch (key[0] | 0x20) {
    case 'c':
        if (!strcasecmp(key, "content-length")) hs->cl = value, hs->ncl++;
        break;
    case 't':
        if (!strcasecmp(key, "transfer-encoding")) hs->te = value, hs->nte++;
        break;
    case 'i':
        if (!hs->inm && !strcasecmp(key, "if-none-match")) hs->inm = value;
        break;
    default:
        break;
    }
    if (strpbrk(key, " \t")) hs->bad_name = true;
    return MHD_YES;
}

/* Transfer-Encoding other than exactly "chunked" (the one coding
 * libmicrohttpd decodes): a request whose last coding is not chunked has no
 * length (§6.3 says answer 400 and close), and one with codings before
 * chunked would reach the flow undecoded. */
static bool te_unusable(const char *te)
{
    while (*te == ' ' || *te == '\t') te++;
    if (strncasecmp(te, "chunked", 7) != 0) return true;
    te += 7;
    while (*te == ' ' || *te == '\t') te++;
    return *te != 0;
}

static bool head_ambiguous(const head_scan *hs)
{
    return hs->bad_name || hs->ncl > 1 || hs->nte > 1 || (hs->ncl && hs->nte) || (hs->te && te_unusable(hs->te));
}

/* What Node.js's server writes on a parse error (its clientError handler):
 * 400 and close; no body. */
static enum MHD_Result refuse_request(req_state *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, 400, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* libmicrohttpd callbacks ---------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_state *r = malloc(sizeof *r);
    if (!r) return NULL;
    memset(r, 0, offsetof(req_state, reply_space)); /* the reply space needs no zeroing */
    atomic_init(&r->refs, 1);
    r->h = cls;
    r->conn = c;
    r->slot = -1;
    r->uri = strdup(uri ? uri : "/");
    return r;
}

/* Queues the answer r holds: an http response node's packed one, or a
 * ready response. */
enum MHD_Result httpd_answer_ready(req_state *r)
{
    if (r->reply) {
        unsigned status;
        struct MHD_Response *resp = reply_response(r, r->reply, &status);
        if ((char *)r->reply != r->reply_space) free(r->reply);
        r->reply = NULL;
        return httpd_queue(r, status, resp);
    }
    struct MHD_Response *resp = r->resp;
    r->resp = NULL;
    return httpd_queue(r, r->resp_status, resp);
}

static void free_req(req_state *r)
{
    answer_taken(r);
    free(r->uri);
    sb_free(&r->body);
    free(r->if_none_match);
    json_decref(r->extra);
    if (r->resp) MHD_destroy_response(r->resp);
    if (r->reply && (char *)r->reply != r->reply_space) free(r->reply);
    if (r->snap) httpd_snapshot_free(r->snap);
    free(r);
}

void httpd_req_release(req_state *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) free_req(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    crm_httpd *h = cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) httpd_conn_idle(h, c);
    req_state *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->stop_answer) atomic_fetch_sub(&h->stop_answers, 1);
    if (r->fq) atomic_fetch_sub(&r->fq->pending, 1);
    r->fq = NULL;
    if (r->slot >= 0) {
        pthread_mutex_lock(&h->slots_lock);
        if (r->slot >= 0) slot_release_locked(h, r);
        pthread_mutex_unlock(&h->slots_lock);
    }
    httpd_req_release(r);
}

/* A client that shut its side down after the request (D12) is closed
 * unanswered on every route. libmicrohttpd reads that end of stream when it
 * resumes a suspended connection and closes it before sending, so a flow's
 * answer could never reach it; Node.js drops such a client's late answers
 * too. Deciding here, before any route runs, makes every route (flow, admin,
 * 404) behave the same and spares the flow a message nobody will read. */
static bool client_half_closed(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci && httpd_client_half_closed(ci->connect_fd); /* httpd_recv.c: mostly without a system call */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)url;
    (void)version;
    crm_httpd *h = cls;
    req_state *r = *con_cls;
    if (!r) return MHD_NO;
    if (r->fail_close) {
        answer_taken(r);
        return MHD_NO;
    }
    if (r->reply || r->resp) { /* resumed with an answer */
        answer_taken(r);
        return httpd_answer_ready(r);
    }
    if (!r->started) {
        r->started = true;
        r->t0 = httpd_mono_ms();
        r->method = method;
        r->get_or_head = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        httpd_conn_head_done(h, c);
        head_scan hs = {0};
        MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &hs);
        if (head_ambiguous(&hs)) {
            r->dispatched = true;
            return refuse_request(r);
        }
        const char *cl = hs.cl, *te = hs.te;
        if (hs.inm) r->if_none_match = strdup(hs.inm);
        if (cl && strtod(cl, NULL) > (double)h->api_max) {
            mark_any_origin(r);
            return queue_error_page(r, 413, "PayloadTooLargeError: request entity too large");
        }
        r->expect_body = (cl && strtod(cl, NULL) > 0) || te;
        if (r->expect_body) {
            r->head_ms = httpd_mono_ms();
            httpd_conn_body_started(h, c);
        }
        /* answering from this first call would be an "early" response,
         * which makes libmicrohttpd close the connection */
        return MHD_YES;
    }
    if (*upload_size) {
        if (h->body_timeout_ms > 0 && !r->dispatched && httpd_mono_ms() - r->head_ms > h->body_timeout_ms) {
            /* Node.js answers a body past its requestTimeout with a bare 408 and closes */
            *upload_size = 0;
            r->dispatched = true;
            httpd_conn_body_done(h, c);
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
            return httpd_queue(r, 408, resp);
        }
        if (r->dispatched) { /* answered (408): the rest is not read into memory */
            *upload_size = 0;
            return MHD_YES;
        }
        if (!r->too_large && r->body.len + *upload_size <= h->api_max) sb_putn(&r->body, upload_data, *upload_size);
        else r->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->dispatched) return MHD_YES;
    if (r->expect_body) httpd_conn_body_done(h, c);
    if (client_half_closed(c)) return MHD_NO;
    return httpd_dispatch(r, method);
}

/* Life cycle ------------------------------------------------------------------------- */

static int bind_address(const crm_httpd *h, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    const char *host = !strcmp(h->host, "localhost") ? "127.0.0.1" : h->host;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)h->port_cfg);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)h->port_cfg);
        return AF_INET6;
    }
    return -1;
}

static struct MHD_Daemon *start_daemon(crm_httpd *h, bool dual)
{
    /* poll by default: with epoll every suspend and resume of a connection
     * (one of each per request) is an epoll_ctl call */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (h->epoll ? MHD_USE_EPOLL : MHD_USE_POLL) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_ALLOW_UPGRADE;
    if (h->ext) /* driven by drv_thread or a flow's loop ("Driving from a flow's loop") */
        flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_ALLOW_UPGRADE;
    struct MHD_OptionItem opts[16];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)httpd_on_connection, h};
    /* the limit is kept here (httpd_on_connection) for all server threads
     * together; libmicrohttpd's own, split between the threads, is only a
     * backstop, above it */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(h->conn_limit * 2), NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL};
    if (h->threads > 1 && !h->ext)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, h->threads, NULL};
    if (h->reuse_port) opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL};
    struct sockaddr_storage ss;
    if (h->host) {
        int fam = bind_address(h, &ss);
        if (fam < 0) {
            httpd_log(h, CRM_LOG_ERROR, "settings.host: not an IP address: %s", h->host);
            return NULL;
        }
        if (fam == AF_INET6) flags |= MHD_USE_IPv6;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    } else if (dual) {
        flags |= MHD_USE_DUAL_STACK;
    }
    if (h->tls_key) {
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, (uint16_t)h->port_cfg, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
}

/* How many connections the server keeps open: maxRequestsInFlight and
 * 1024 more, within the descriptors the process may open (its soft limit
 * raised to the hard one first), a share of which stays for the flows. */
static void set_conn_limit(crm_httpd *h)
{
    struct rlimit rl;
    size_t limit = h->max_inflight + 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
            if (want > rl.rlim_cur) {
                rl.rlim_cur = want;
                setrlimit(RLIMIT_NOFILE, &rl);
                getrlimit(RLIMIT_NOFILE, &rl);
            }
        }
        if (rl.rlim_cur != RLIM_INFINITY) {
            size_t fds = (size_t)rl.rlim_cur;
            size_t spare = fds / 8 > 256 ? fds / 8 : 256;
            size_t room = fds > spare + 64 ? fds - spare : 64;
            if (room < limit) {
                httpd_log(h, CRM_LOG_WARN, "%zu open files allowed (ulimit -n): serving at most %zu connections", fds, room);
                limit = room;
            }
        }
    }
    h->conn_limit = limit;
    size_t reserve = limit / 16 > 16 ? limit / 16 : 16;
    h->evict_at = limit > reserve * 2 ? limit - reserve : limit / 2;
    /* poll() costs time for every descriptor in the set at every wake-up,
     * and a connection waiting for a request is in that set (a suspended one,
     * waiting for its flow, is not): with poll, the waiting ones are kept
     * to a number whose wake-ups stay cheap */
    if (!h->max_waiting) h->max_waiting = h->epoll ? h->evict_at : 1024;
    if (h->max_waiting > h->evict_at) h->max_waiting = h->evict_at;
}

int crm_httpd_start(crm_httpd *h)
{
    if (!h || h->d) return h ? 0 : -1;
    set_conn_limit(h);
    atomic_store(&h->stopping, false);
    atomic_store(&h->stopping_soon, false);
    pthread_mutex_lock(&h->slots_lock);
    h->closing = false;
    pthread_mutex_unlock(&h->slots_lock);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* unset: only for flows that start with every route on one loop; with
     * routes on several, the threaded server (poll) serves them faster than
     * one thread driving epoll */
    pthread_rwlock_rdlock(&h->routes_lock);
    bool one_loop = h->attach_node != NULL;
    pthread_rwlock_unlock(&h->routes_lock);
    h->ext = !h->tls_key &&
             (h->loop_setting == 1 || (h->loop_setting < 0 && !h->threads_set && cores <= 2 && one_loop));
    h->driver = DRV_THREAD;
    h->held = h->no_attach = h->drv_quit = h->detach_posted = false;
    h->d = start_daemon(h, true);
    if (!h->d && !h->host) h->d = start_daemon(h, false); /* no IPv6 here */
    if (!h->d) {
        httpd_log(h, CRM_LOG_ERROR, "cannot listen on %s:%d: %s", h->host ? h->host : "*", h->port_cfg, strerror(errno));
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : h->port_cfg;
    if (h->ext) {
        const union MHD_DaemonInfo *ei = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
        h->mhd_epfd = ei ? ei->epoll_fd : -1;
        if (h->ctl_efd < 0) h->ctl_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->resume_efd < 0) h->resume_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->mhd_epfd < 0 || h->ctl_efd < 0 || h->resume_efd < 0 || pthread_create(&h->drv_thread, NULL, httpd_drv_main, h) != 0) {
            httpd_log(h, CRM_LOG_ERROR, "cannot start the HTTP server's thread: %s", strerror(errno));
            MHD_stop_daemon(h->d);
            h->d = NULL;
            h->port = 0;
            return -1;
        }
        h->drv_running = true;
    }
    if (pthread_create(&h->reaper, NULL, httpd_reaper_main, h) == 0) h->reaper_running = true;
    return 0;
}

void crm_httpd_stop(crm_httpd *h)
{
    if (!h || !h->d) return;
    if (h->ext) { /* drv_thread drives from here on */
        pthread_mutex_lock(&h->drv_mu);
        h->no_attach = true;
        pthread_mutex_unlock(&h->drv_mu);
        httpd_take_back(h);
    }
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    /* With threads of its own libmicrohttpd is done with the listening
     * socket now; driven by drv_thread (h->ext) its next MHD_run still takes
     * the socket out of its epoll set, so it is closed once that thread is
     * gone (closing it here raced with that epoll_ctl: ThreadSanitizer) */
    if (fd != MHD_INVALID_SOCKET && !h->ext) {
        close(fd);
        fd = MHD_INVALID_SOCKET;
    }
    /* keep-alive connections still bring requests: from now on they get 503
     * at once, so none is left suspended when the daemon stops */
    pthread_mutex_lock(&h->slots_lock);
    h->closing = true;
    pthread_mutex_unlock(&h->slots_lock);
    atomic_store(&h->stopping_soon, true);
    /* a short grace for answers already on their way */
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&h->slots_lock);
        size_t left = h->inflight;
        pthread_mutex_unlock(&h->slots_lock);
        if (!left) break;
        usleep(5000);
    }
    for (;;) { /* resume outside our lock: libmicrohttpd takes its own */
        req_state *r = NULL;
        pthread_mutex_lock(&h->slots_lock);
        for (size_t i = 0; i < h->max_inflight && h->inflight && !r; i++) {
            if (h->slots[i]) {
                r = h->slots[i];
                httpd_slot_claim_locked(h, r);
            }
        }
        pthread_mutex_unlock(&h->slots_lock);
        if (!r) break;
        r->stop_answer = true;
        atomic_fetch_add(&h->stop_answers, 1);
        httpd_deliver(r, 503, httpd_status_response(503));
    }
    for (int i = 0; i < 1000 && atomic_load(&h->resumes_pending) > 0; i++) usleep(1000);
    /* the server threads write those 503s before the daemon stops (a fixed
     * pause lost some on a busy machine); a second at most */
    for (int i = 0; i < 1000 && atomic_load(&h->stop_answers) > 0; i++) usleep(1000);
    atomic_store(&h->stopping, true);
    if (h->reaper_running) {
        pthread_mutex_lock(&h->reaper_mu);
        pthread_cond_broadcast(&h->reaper_cv);
        pthread_mutex_unlock(&h->reaper_mu);
        pthread_join(h->reaper, NULL);
        h->reaper_running = false;
    }
    if (h->drv_running) {
        pthread_mutex_lock(&h->drv_mu);
        h->drv_quit = true;
        pthread_mutex_unlock(&h->drv_mu);
        httpd_ctl_wake(h);
        pthread_join(h->drv_thread, NULL);
        h->drv_running = false;
        /* admin requests the loop passed on and nobody ran: closed with the daemon */
        while (h->deferred_head) {
            req_state *r = h->deferred_head;
            h->deferred_head = r->next_deferred;
            r->fail_close = true;
            httpd_resume_with_answer(r);
            httpd_req_release(r);
        }
        h->deferred_tail = NULL;
    }
    MHD_stop_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    h->d = NULL;
    h->port = 0;
}

void crm_httpd_free(crm_httpd *h)
{
    if (!h) return;
    crm_httpd_stop(h);
    for (size_t i = 0; i < h->nroutes; i++) {
        http_pattern_free(h->routes[i].pat);
        free(h->routes[i].exact);
    }
    free(h->routes);
    free(h->slots);
    free(h->gens);
    free(h->free_list);
    for (int i = 0; i < AUTH_CACHE; i++) free(h->auth_ok[i]);
    free(h->host);
    free(h->node_root);
    free(h->admin_root);
    json_decref(h->cors);
    json_decref(h->admin_cors);
    free(h->auth_user);
    free(h->auth_pass);
    free(h->tls_key);
    free(h->tls_cert);
    pthread_rwlock_destroy(&h->routes_lock);
    pthread_rwlock_destroy(&h->hold_lock);
    pthread_mutex_destroy(&h->slots_lock);
    pthread_mutex_destroy(&h->reaper_mu);
    pthread_cond_destroy(&h->reaper_cv);
    pthread_mutex_destroy(&h->auth_mu);
    pthread_mutex_destroy(&h->conns_mu);
    while (h->stats) {
        route_stats *st = h->stats;
        h->stats = st->next;
        free(st->pattern);
        free(st->flow);
        free(st);
    }
    while (h->queues) {
        flow_queue *q = h->queues;
        h->queues = q->next;
        free(q->flow);
        free(q);
    }
    pthread_mutex_destroy(&h->stats_mu);
    pthread_mutex_destroy(&h->drv_mu);
    pthread_cond_destroy(&h->drv_cv);
    if (h->ctl_efd >= 0) close(h->ctl_efd);
    pthread_mutex_lock(&httpd_token_mu);
    h->token->h = NULL;
    pthread_mutex_unlock(&httpd_token_mu);
    httpd_token_put(h->token);
    if (h->resume_efd >= 0) close(h->resume_efd);
    free(h);
}

void crm_httpd_hold(crm_httpd *h)
{
    if (h->ext) { /* the flows' loops stop and go: drv_thread drives meanwhile */
        pthread_mutex_lock(&h->drv_mu);
        h->held = true;
        pthread_mutex_unlock(&h->drv_mu);
        httpd_take_back(h);
    }
    pthread_rwlock_wrlock(&h->hold_lock);
}

void crm_httpd_release(crm_httpd *h)
{
    pthread_rwlock_unlock(&h->hold_lock);
    if (h->ext) {
        pthread_mutex_lock(&h->drv_mu);
        h->held = false;
        pthread_mutex_unlock(&h->drv_mu);
        httpd_ctl_wake(h);
    }
}
