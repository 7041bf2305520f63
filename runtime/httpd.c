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

#define SLOT_BITS 20
#define SLOT_MASK ((1LL << SLOT_BITS) - 1)
#define AUTH_CACHE 4
#define ADMIN_DECLINED 64

/* /metrics: the counters of one route (method + the http in node's URL
 * pattern + its flow) and the requests a flow holds. Both are kept until
 * the server is freed, so a redeploy that adds the same route again finds
 * them (the counters go on), and a request in flight points at them
 * without a reference. Written with relaxed atomic adds by the server
 * threads, read racily by a scrape. */
#define HTTP_BUCKETS 14
static const double http_le[HTTP_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define STATUS_SLOTS 16

typedef struct flow_queue {
    struct flow_queue *next;
    char *flow;           /* the tab's id */
    atomic_long pending;  /* requests handed to the flow and not answered yet */
    _Atomic uint64_t refused; /* answered 503: pending had reached nodeInputQueueMaxLength */
    atomic_bool warned;
} flow_queue;

typedef struct route_stats {
    struct route_stats *next;
    char method[8];
    char *pattern, *flow;
    flow_queue *fq;
    _Atomic uint64_t buckets[HTTP_BUCKETS + 1]; /* not cumulative; the last: past 10 s */
    _Atomic uint64_t sum_us, count;
    struct {
        atomic_uint code; /* 0: free; 1: "other" (the slots ran out) */
        _Atomic uint64_t n;
    } status[STATUS_SLOTS];
} route_stats;

typedef struct {
    crm_node *node;
    route_stats *st;
    char method[8]; /* upper case */
    http_pattern *pat;
    char *exact; /* the full path, normalised, for skipBodyParsing's exact match */
    unsigned flags;
    crm_http_request_fn fn;
} route;

/* An answer packed by crm_http_respond in one block on the responder's
 * thread; the server thread turns it into a libmicrohttpd response, so the
 * many small allocations of a response are made and freed on one thread. */
typedef struct {
    int status;
    unsigned flags;
    size_t nheaders; /* name\0value\0 pairs at the start of data */
    size_t len;      /* body bytes, after the headers */
    const char *body;
    char data[];
} http_reply;

/* Room for a packed answer inside the request: the usual answer (a type
 * header and a short body) then needs no allocation on the responder's
 * thread that the server thread would free. */
#define REPLY_INLINE 512

typedef struct req_snapshot req_snapshot;
typedef struct crm_httpd crm_httpd;
/* An attach job may outlive the server (posted to a loop that never ran
 * it, drained after crm_httpd_free): it reaches the server through a token
 * that crm_httpd_free empties. */
typedef struct drv_token {
    crm_httpd *h; /* under token_mu; NULL once the server is freed */
    atomic_int refs;
} drv_token;

/* One open connection (libmicrohttpd's socket context). */
typedef struct conn_entry conn_entry;
typedef struct conn_link {
    conn_entry *prev, *next;
} conn_link;
/* An intrusive list of connections, oldest first. */
typedef struct conn_list {
    conn_entry *head, *tail;
    size_t n;
} conn_list;

struct conn_entry {
    conn_link wait; /* in the waiting list, when listed */
    conn_link body; /* in the body list, when in_body */
    int fd;
    double since; /* when it started waiting for a request head */
    double body_since; /* when its request's head was complete, in_body */
    bool listed, evicted, in_body;
};

typedef struct req_state {
    crm_httpd *h;
    struct MHD_Connection *conn;
    /* Owners: libmicrohttpd until the request completes, the node's loop
     * until it built the message, a responder between claiming the slot and
     * resuming. The last one frees (nearly always the server thread, which
     * allocated it). */
    atomic_int refs;
    req_snapshot *snap;
    char *uri; /* raw, as the client sent it */
    strbuf body;
    bool started, expect_body, too_large, dispatched, get_or_head;
    bool resume_counted; /* in resumes_pending */
    bool stop_answer;    /* a 503 of crm_httpd_stop, in stop_answers until written */
    struct MHD_Response *resp; /* a ready answer (504, 503), or NULL */
    http_reply *reply;         /* or a packed answer from crm_http_respond */
    unsigned resp_status;
    int slot;
    double deadline;
    double head_ms; /* when its head was complete (mono_ms) */
    char *if_none_match;
    const char *method; /* libmicrohttpd's, valid while the request lives */
    json_t *extra; /* CORS headers to add to the response, or NULL */
    bool any_origin; /* under httpAdminRoot: Access-Control-Allow-Origin: * (mark_any_origin) */
    route_stats *st;  /* a node route's request: counted when answered */
    flow_queue *fq;   /* counted in its flow's pending requests until completed */
    double t0;        /* when its head was complete */
    /* Answered on the flow's loop (see "Driving from a flow's loop"): the
     * connection is not suspended while the loop runs the flow for it, so
     * an answer from elsewhere is only stored (under slots_lock). */
    bool inline_held;
    atomic_bool inline_answered;
    req_snapshot *pending_sync; /* handed to the node, to run once the route locks are let go */
    bool fail_close;            /* a deferred dispatch failed: close the connection on resume */
    bool deferred_queued;       /* a deferred dispatch stored its answer in resp */
    struct req_state *next_deferred;
    _Alignas(max_align_t) char reply_space[REPLY_INLINE];
} req_state;

struct crm_httpd {
    int port_cfg, port;
    char *host;
    char *node_root, *admin_root; /* NULL: disabled */
    json_t *cors;
    json_t *admin_cors; /* the admin app's own cors options (4.1.15), or NULL */
    char *auth_user, *auth_pass;
    char *tls_key, *tls_cert;
    size_t max_inflight, api_max;
    double timeout_ms;
    int threads;
    bool reuse_port, dual_stack;
    bool epoll; /* httpPolling "epoll": scales to many idle connections, costs two syscalls per request */
    struct MHD_Daemon *d;
    crm_admin_fn admin;
    void *admin_ctx;
    /* hashes of method + path the admin callback declined: such requests
     * skip it (and the headers object it needs) next time */
    _Atomic uint64_t declined[ADMIN_DECLINED];
    crm_httpd_log_fn log;
    void *log_ctx;

    pthread_rwlock_t routes_lock;
    /* held for writing while a deploy swaps the flows (crm_httpd_hold):
     * node requests wait for the new routes instead of missing them */
    pthread_rwlock_t hold_lock;
    route *routes;
    size_t nroutes, routes_cap;

    pthread_mutex_t slots_lock;
    bool closing; /* stopping: no new pending request (under slots_lock) */
    req_state **slots;
    uint32_t *gens;
    uint32_t *free_list;
    size_t nfree, inflight;

    pthread_t reaper;
    bool reaper_running;
    pthread_mutex_t reaper_mu;
    pthread_cond_t reaper_cv;
    atomic_bool stopping;
    atomic_bool stopping_soon; /* as closing, readable without the lock */
    /* answers handed to suspended connections that the server thread has not
     * taken yet: libmicrohttpd aborts when stopped with one of those left */
    atomic_int resumes_pending;
    atomic_int stop_answers; /* 503s of crm_httpd_stop not yet written (on_completed) */
    atomic_llong last_503_log;

    pthread_mutex_t auth_mu;
    char *auth_ok[AUTH_CACHE];
    int auth_next;

    /* Connections (see "Connections" below): those waiting for a request
     * head, oldest first, are the ones closed to make room. */
    pthread_mutex_t conns_mu;
    conn_list waiting;
    size_t nconns;    /* open, as libmicrohttpd reported them */
    size_t nevicting; /* of those, shut down and not closed yet */
    size_t conn_limit, evict_at, max_waiting;
    double head_timeout_ms; /* httpHeadersTimeout; 0: none */
    /* requests whose body is still coming, oldest head first */
    conn_list bodies;
    double body_timeout_ms; /* httpBodyTimeout; 0: none */
    unsigned long long body_expired, body_expired_logged;
    unsigned long long evicted, evicted_logged;
    double last_evict_log;

    pthread_mutex_t stats_mu; /* guards the two lists (appended when a route is added) */
    route_stats *stats;
    flow_queue *queues;
    size_t queue_max; /* nodeInputQueueMaxLength: requests a flow may hold; 0: no limit */

    /* Driving from a flow's loop (below): libmicrohttpd without threads of
     * its own, run by drv_thread or by the loop that holds every route. */
    int loop_setting;  /* httpOnFlowLoop: -1 unset, 0 false, 1 true */
    bool threads_set;  /* httpThreads given */
    bool ext;          /* this run: libmicrohttpd driven from outside */
    int mhd_epfd, ctl_efd;
    int resume_efd;    /* written after each resume: the driver runs MHD_run */
    crm_watch *resume_watch;
    pthread_t drv_thread;
    bool drv_running;
    pthread_mutex_t drv_mu;
    pthread_cond_t drv_cv;
    int driver;        /* DRV_THREAD, DRV_TO_LOOP, DRV_LOOP (under drv_mu) */
    unsigned attach_gen;
    bool held, no_attach, drv_quit, detach_posted;
    crm_node *attach_node; /* under routes_lock: a node on the loop that holds every route, or NULL */
    crm_node *drive_node;
    crm_loop *drive_loop;
    crm_watch *drive_watch;
    crm_timer *drive_timer;
    crm_timer *drive_soon; /* a one-shot MHD_run pending, or NULL (the driving loop's) */
    drv_token *token;
    req_state *deferred_head, *deferred_tail; /* admin requests the loop passed to drv_thread */
};

enum { DRV_THREAD, DRV_TO_LOOP, DRV_LOOP };
/* the server this thread drives from a flow's loop (inside MHD_run), and
 * the request whose dispatch drv_thread runs for the loop */
static _Thread_local crm_httpd *tl_driving;
static _Thread_local req_state *tl_deferred;

/* Logging ---------------------------------------------------------------------- */

static void hlog(crm_httpd *h, crm_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void hlog(crm_httpd *h, crm_log_level lvl, const char *fmt, ...)
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

static double mono_ms(void)
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
        hlog(h, CRM_LOG_ERROR, "settings.port must be a port number from 0 to 65535");
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
            hlog(h, CRM_LOG_ERROR, "settings.httpRoot must be a string or false");
            return -1;
        }
    } else if (root_setting(json_object_get(s, "httpNodeRoot"), &h->node_root) < 0 ||
               root_setting(json_object_get(s, "httpAdminRoot"), &h->admin_root) < 0) {
        hlog(h, CRM_LOG_ERROR, "settings.httpNodeRoot / httpAdminRoot must be strings or false");
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
            hlog(h, CRM_LOG_ERROR, "settings.httpNodeAuth needs user and pass");
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
            hlog(h, CRM_LOG_ERROR, "settings.https: cannot read key %s / cert %s", k ? k : "(none)", c ? c : "(none)");
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
            hlog(h, CRM_LOG_ERROR, "settings.httpPolling must be \"poll\" or \"epoll\"");
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
        r->deadline = h->timeout_ms > 0 ? mono_ms() + h->timeout_ms : 0;
        id = ((long long)h->gens[i] << SLOT_BITS) | i;
    }
    pthread_mutex_unlock(&h->slots_lock);
    return id;
}

static void req_release(req_state *r);

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
 * until deliver() (or req_release). */
static void slot_claim_locked(crm_httpd *h, req_state *r)
{
    slot_release_locked(h, r);
    atomic_fetch_add(&r->refs, 1);
}

/* The pending request with this id, claimed, or NULL. */
static req_state *slot_claim(crm_httpd *h, long long id)
{
    if (id < 0) return NULL;
    uint32_t i = (uint32_t)(id & SLOT_MASK);
    uint32_t gen = (uint32_t)(id >> SLOT_BITS);
    req_state *r = NULL;
    pthread_mutex_lock(&h->slots_lock);
    if (i < h->max_inflight && h->slots[i] && h->gens[i] == gen) {
        r = h->slots[i];
        slot_claim_locked(h, r);
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
static enum MHD_Result queue(req_state *r, unsigned status, struct MHD_Response *resp)
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
        count_answer(r->st, status, mono_ms() - r->t0);
        r->st = NULL;
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* finalhandler's page: 404 "Cannot GET /x", 400 for a bad JSON body, ... */
static enum MHD_Result queue_error_page(req_state *r, unsigned status, const char *msg)
{
    size_t len;
    char *page = http_error_page(msg, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(page);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    return queue(r, status, resp);
}

/* res.sendStatus(): the status text as text/plain. */
static struct MHD_Response *status_response(unsigned status)
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
static void resume_with_answer(req_state *r)
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
    if (r->h->ext) {
        uint64_t one = 1;
        ssize_t w = write(r->h->resume_efd, &one, sizeof one);
        (void)w;
    }
}

/* The answer was taken (or the request ended without it). */
static void answer_taken(req_state *r)
{
    if (!r->resume_counted) return;
    r->resume_counted = false;
    atomic_fetch_sub(&r->h->resumes_pending, 1);
}

/* Hands a built response to the (suspended) request and wakes it. */
static void deliver(req_state *r, unsigned status, struct MHD_Response *resp)
{
    r->resp = resp;
    r->resp_status = status;
    resume_with_answer(r);
    req_release(r);
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
    char *at;
} reply_writer;

static void put_reply_header(void *ctx, const char *name, const char *value)
{
    reply_writer *w = ctx;
    w->at = stpcpy(w->at, name) + 1;
    w->at = stpcpy(w->at, value) + 1;
    w->rep->nheaders++;
}

/* One block holding status, headers and body (copied): in space when it
 * fits (space_size bytes), else malloc'd. NULL when out of memory. */
static http_reply *pack_reply(void *space, size_t space_size, int status, const json_t *headers, const void *body,
                              size_t len, unsigned flags)
{
    size_t hbytes = headers ? each_header_value(headers, NULL, NULL) : 0;
    size_t need = sizeof(http_reply) + hbytes + len + 1;
    http_reply *rep = need <= space_size ? space : malloc(need);
    if (!rep) return NULL;
    rep->status = status;
    rep->flags = flags;
    rep->nheaders = 0;
    rep->len = len;
    reply_writer w = {rep, rep->data};
    if (headers) each_header_value(headers, put_reply_header, &w);
    memcpy(w.at, body, len);
    w.at[len] = 0;
    rep->body = w.at;
    return rep;
}

/* The first value of a packed header (case-insensitive name), or NULL. */
static const char *reply_header(const http_reply *rep, const char *name)
{
    const char *p = rep->data;
    for (size_t i = 0; i < rep->nheaders; i++) {
        const char *v = p + strlen(p) + 1;
        if (!strcasecmp(p, name)) return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

/* On the server thread: the libmicrohttpd response for a packed answer,
 * with Express's ETag and freshness check (304) done here. */
static struct MHD_Response *reply_response(req_state *r, const http_reply *rep, unsigned *status_out)
{
    int status = rep->status;
    char etag[64] = "";
    const char *own_etag = reply_header(rep, "etag");
    if ((rep->flags & CRM_HTTP_ETAG) && !own_etag) http_etag(rep->body, rep->len, etag);
    const char *tag = etag[0] ? etag : own_etag;
    const char *cc = reply_header(rep, "cache-control");
    if ((rep->flags & CRM_HTTP_ETAG) && tag && r->get_or_head && ((status >= 200 && status < 300) || status == 304) &&
        !(cc && strstr(cc, "no-cache")) && http_etag_fresh(r->if_none_match, tag))
        status = 304; /* req.fresh */
    bool empty = status == 204 || status == 304;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        empty ? 0 : rep->len, empty ? (void *)"" : (void *)rep->body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        *status_out = 500;
        return status_response(500);
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
    req_state *r = slot_claim(h, crm_handle_id(res));
    if (!r) return -1;
    http_reply *rep = pack_reply(r->reply_space, sizeof r->reply_space, status, headers, body, len, flags);
    if (!rep) {
        deliver(r, 500, status_response(500));
        return 0;
    }
    r->reply = rep;
    resume_with_answer(r);
    req_release(r);
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

static void ctl_wake(crm_httpd *h);
static void routes_changed_locked(crm_httpd *h);
static void detach_here(crm_httpd *h, bool node_closed);

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
    routes_changed_locked(h);
    pthread_rwlock_unlock(&h->routes_lock);
    ctl_wake(h);
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
    routes_changed_locked(h);
    pthread_rwlock_unlock(&h->routes_lock);
    if (h->ext) {
        pthread_mutex_lock(&h->drv_mu);
        bool mine = h->driver == DRV_LOOP && h->drive_node == n;
        pthread_mutex_unlock(&h->drv_mu);
        if (mine) detach_here(h, false);
    }
    ctl_wake(h);
}

/* Request messages ------------------------------------------------------------------ */

static bool header_single(const char *k)
{
    static const char *single[] = {"age", "authorization", "content-length", "content-type", "etag", "expires",
                                   "from", "host", "if-modified-since", "if-unmodified-since", "last-modified",
                                   "location", "max-forwards", "proxy-authorization", "referer", "retry-after",
                                   "server", "user-agent"};
    for (size_t i = 0; i < sizeof single / sizeof *single; i++)
        if (!strcmp(k, single[i])) return true;
    return false;
}

/* Header bytes are latin1 to Node.js. */
static json_t *latin1_string(const char *s)
{
    bool high = false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80) high = true;
    if (!high) return json_string(s);
    strbuf sb = SB_INIT;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) sb_putc(&sb, (char)*p);
        else {
            sb_putc(&sb, (char)(0xC0 | (*p >> 6)));
            sb_putc(&sb, (char)(0x80 | (*p & 0x3F)));
        }
    }
    json_t *r = json_stringn(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

/* Adds one received header to obj as Node.js does: lower-case names (given
 * so), Set-Cookie always an array, single-valued names keep the first,
 * others join with ", " ("; " for Cookie). */
static void add_header_value(json_t *obj, const char *name, const char *value)
{
    json_t *v = latin1_string(value ? value : "");
    json_t *old = json_object_get(obj, name);
    if (!strcmp(name, "set-cookie")) {
        if (!old) {
            old = json_array();
            json_object_set_new(obj, name, old);
        }
        json_array_append_new(old, v);
    } else if (!old) {
        json_object_set_new(obj, name, v);
    } else if (header_single(name)) {
        json_decref(v);
    } else {
        strbuf sb = SB_INIT;
        sb_puts(&sb, json_string_value(old));
        sb_puts(&sb, !strcmp(name, "cookie") ? "; " : ", ");
        sb_puts(&sb, json_string_value(v));
        json_object_set_new(obj, name, json_stringn(sb.data, sb.len));
        sb_free(&sb);
        json_decref(v);
    }
}

/* Header names longer than this are dropped. */
#define HEADER_NAME_MAX 128

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char name[HEADER_NAME_MAX];
    size_t n = strlen(key);
    if (n >= sizeof name) return MHD_YES;
    for (size_t i = 0; i <= n; i++) name[i] = (char)tolower((unsigned char)key[i]);
    add_header_value(cls, name, value);
    return MHD_YES;
}

static json_t *request_headers(struct MHD_Connection *c)
{
    json_t *obj = json_object();
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, obj);
    return obj;
}

/* The received headers copied as lower-case name\0value\0 pairs: the
 * request's message is built from them on the node's loop. A first pass
 * (at NULL) only counts the bytes. */
typedef struct {
    char *at;
    size_t bytes, count;
} header_packer;

static enum MHD_Result pack_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_packer *p = cls;
    size_t n = strlen(key), vn = value ? strlen(value) : 0;
    if (n >= HEADER_NAME_MAX) return MHD_YES;
    p->bytes += n + vn + 2;
    p->count++;
    if (!p->at) return MHD_YES;
    for (size_t i = 0; i < n; i++) p->at[i] = (char)tolower((unsigned char)key[i]);
    p->at[n] = 0;
    memcpy(p->at + n + 1, value ? value : "", vn + 1);
    p->at += n + vn + 2;
    return MHD_YES;
}

static json_t *headers_from_pack(const char *p, size_t count)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < count; i++) {
        const char *v = p + strlen(p) + 1;
        add_header_value(obj, p, v);
        p = v + strlen(v) + 1;
    }
    return obj;
}

static void put_ipv4(char *buf, const unsigned char *a, const char *prefix)
{
    char *p = stpcpy(buf, prefix);
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100) *p++ = (char)('0' + v / 100);
        if (v >= 10) *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        if (i < 3) *p++ = '.';
    }
    *p = 0;
}

#define IP_TEXT_MAX (INET6_ADDRSTRLEN + 8)

/* req.ip as Express gives it ("::ffff:127.0.0.1" on a dual-stack socket). */
static void client_ip(struct MHD_Connection *c, char buf[IP_TEXT_MAX])
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            put_ipv4(buf, (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr, "");
        } else if (sa->sa_family == AF_INET6) {
            const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
            static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (!memcmp(a, mapped, 12)) put_ipv4(buf, a + 12, "::ffff:"); /* what inet_ntop writes, faster */
            else inet_ntop(AF_INET6, a, buf, IP_TEXT_MAX);
        }
    }
}

static json_t *hostname_of(const json_t *headers)
{
    const char *host = json_string_value(json_object_get(headers, "host"));
    if (!host) return NULL;
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *e = strchr(host, ']');
        n = e ? (size_t)(e - host) + 1 : n;
    } else {
        const char *colon = strchr(host, ':');
        if (colon) n = (size_t)(colon - host);
    }
    return json_stringn(host, n);
}

/* CORS (the cors module with httpNodeCors as options) --------------------------------- */

static const char *cors_origin(const json_t *opts, const json_t *headers, bool *vary)
{
    const json_t *o = json_object_get(opts, "origin");
    const char *req_origin = json_string_value(json_object_get(headers, "origin"));
    *vary = false;
    if (!o || (json_is_string(o) && !strcmp(json_string_value(o), "*"))) return "*";
    if (json_is_false(o)) return NULL;
    *vary = true;
    if (json_is_string(o)) return json_string_value(o);
    if (json_is_true(o)) return req_origin;
    if (json_is_array(o) && req_origin) {
        size_t i;
        json_t *e;
        json_array_foreach(o, i, e) {
            if (json_is_string(e) && !strcmp(json_string_value(e), req_origin)) return req_origin;
        }
    }
    return NULL;
}

static char *list_setting(const json_t *v)
{
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (!json_is_array(v)) return NULL;
    strbuf sb = SB_INIT;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) continue;
        if (sb.len) sb_putc(&sb, ',');
        sb_puts(&sb, json_string_value(e));
    }
    return sb.len ? sb_take(&sb) : (sb_free(&sb), NULL);
}

/* The headers cors adds; preflight adds methods, allowed headers, max age. */
static json_t *cors_headers(const json_t *opts, const json_t *headers, bool preflight)
{
    json_t *out = json_object();
    bool vary;
    const char *origin = cors_origin(opts, headers, &vary);
    strbuf varyv = SB_INIT;
    if (origin) json_object_set_new(out, "Access-Control-Allow-Origin", json_string(origin));
    if (vary) sb_puts(&varyv, "Origin");
    if (json_is_true(json_object_get(opts, "credentials")))
        json_object_set_new(out, "Access-Control-Allow-Credentials", json_string("true"));
    if (preflight) {
        char *m = list_setting(json_object_get(opts, "methods"));
        json_object_set_new(out, "Access-Control-Allow-Methods", json_string(m ? m : "GET,HEAD,PUT,PATCH,POST,DELETE"));
        free(m);
        const json_t *ah = json_object_get(opts, "allowedHeaders");
        if (!ah) ah = json_object_get(opts, "headers");
        char *allowed = list_setting(ah);
        if (!allowed) {
            const char *req = json_string_value(json_object_get(headers, "access-control-request-headers"));
            if (req) allowed = strdup(req);
            if (varyv.len) sb_puts(&varyv, ", ");
            sb_puts(&varyv, "Access-Control-Request-Headers");
        }
        if (allowed && *allowed) json_object_set_new(out, "Access-Control-Allow-Headers", json_string(allowed));
        free(allowed);
        const json_t *ma = json_object_get(opts, "maxAge");
        if (json_is_number(ma) || json_is_string(ma)) {
            char buf[32];
            if (json_is_number(ma)) crm_fmt_number(json_number_value(ma), buf);
            else snprintf(buf, sizeof buf, "%s", json_string_value(ma));
            json_object_set_new(out, "Access-Control-Max-Age", json_string(buf));
        }
    }
    char *exposed = list_setting(json_object_get(opts, "exposedHeaders"));
    if (exposed) json_object_set_new(out, "Access-Control-Expose-Headers", json_string(exposed));
    free(exposed);
    if (varyv.len) json_object_set_new(out, "Vary", json_string(varyv.data));
    sb_free(&varyv);
    return out;
}

/* httpNodeAuth ---------------------------------------------------------------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static bool auth_ok(crm_httpd *h, const char *header)
{
    if (!header || strncasecmp(header, "Basic ", 6) != 0) return false;
    pthread_mutex_lock(&h->auth_mu);
    for (int i = 0; i < AUTH_CACHE; i++) {
        if (h->auth_ok[i] && !strcmp(h->auth_ok[i], header)) {
            pthread_mutex_unlock(&h->auth_mu);
            return true;
        }
    }
    pthread_mutex_unlock(&h->auth_mu);
    const char *p = header + 6;
    while (*p == ' ') p++;
    char dec[512];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *p && *p != '=' && o + 1 < sizeof dec; p++) {
        int v = b64val((unsigned char)*p);
        if (v < 0) return false;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dec[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    dec[o] = 0;
    char *colon = strchr(dec, ':');
    if (!colon) return false;
    *colon = 0;
    if (strcmp(dec, h->auth_user) != 0 || !http_password_ok(colon + 1, h->auth_pass)) return false;
    /* bcrypt is slow on purpose: remember headers that passed */
    pthread_mutex_lock(&h->auth_mu);
    free(h->auth_ok[h->auth_next]);
    h->auth_ok[h->auth_next] = strdup(header);
    h->auth_next = (h->auth_next + 1) % AUTH_CACHE;
    pthread_mutex_unlock(&h->auth_mu);
    return true;
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

/* What the node's loop needs to build a request's message, copied from the
 * connection in one block on the server thread: the message itself (a few
 * dozen small values) is then allocated and freed on the same thread. */
struct req_snapshot {
    crm_httpd *h;
    req_state *r;    /* holds a reference for the loop */
    crm_http_request_fn fn;
    crm_node *node;  /* counted in its input queue (crm_node_stats) until taken */
    long long id;    /* the msg.res handle */
    json_t *params;  /* route parameters, or NULL for none */
    json_t *body;    /* parsed req.body (not GET), or NULL */
    json_t *files;   /* multipart uploads, or NULL */
    size_t plen;     /* uri[0, plen) is the path */
    size_t nheaders; /* pairs at headers */
    char ip[IP_TEXT_MAX];
    const char *method, *uri, *headers;
    char data[];
};

static req_snapshot *snapshot_new(req_state *r, const char *method, size_t plen)
{
    header_packer count = {NULL, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, pack_header, &count);
    size_t ml = strlen(method) + 1, ul = strlen(r->uri) + 1;
    req_snapshot *s = malloc(sizeof *s + ml + ul + count.bytes);
    if (!s) return NULL;
    *s = (req_snapshot){.h = r->h, .plen = plen, .nheaders = count.count};
    char *at = s->data;
    s->method = memcpy(at, method, ml);
    s->uri = memcpy(at + ml, r->uri, ul);
    s->headers = at + ml + ul;
    header_packer fill = {at + ml + ul, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, pack_header, &fill);
    client_ip(r->conn, s->ip);
    return s;
}

static void snapshot_free(req_snapshot *s)
{
    json_decref(s->params);
    json_decref(s->body);
    json_decref(s->files);
    free(s);
}

static json_t *build_req(req_snapshot *s, json_t *headers)
{
    crm_httpd *h = s->h;
    json_t *req = json_object();
    size_t base = strlen(h->node_root) - 1; /* the mount path, without its trailing slash */
    size_t plen = s->plen;
    const char *uri = s->uri, *path = uri;
    const char *query = uri[plen] == '?' ? uri + plen + 1 : NULL;
    json_object_set_new_nocheck(req, "headers", headers);
    json_object_set_new_nocheck(req, "params", s->params ? s->params : json_object());
    s->params = NULL;
    json_object_set_new_nocheck(req, "query", query ? crm_http_parse_query(query, strlen(query)) : json_object());
    json_object_set_new_nocheck(req, "cookies",
                                http_cookies_parse(json_string_value(json_object_get(headers, "cookie"))));
    json_object_set_new_nocheck(req, "method", json_string(s->method));
    const char *rel = uri + (plen >= base ? base : 0);
    json_object_set_new_nocheck(req, "url", http_string_lossy(*rel ? rel : "/", *rel ? strlen(rel) : 1));
    json_object_set_new_nocheck(req, "originalUrl", http_string_lossy(uri, strlen(uri)));
    json_object_set_new_nocheck(req, "path",
                                http_string_lossy(plen > base ? path + base : "/", plen > base ? plen - base : 1));
    json_object_set_new_nocheck(req, "baseUrl", http_string_lossy(path, plen >= base ? base : 0));
    json_object_set_new_nocheck(req, "ip", json_string(s->ip));
    json_t *hn = hostname_of(headers);
    if (hn) json_object_set_new_nocheck(req, "hostname", hn);
    json_object_set_new_nocheck(req, "protocol", json_string(h->tls_key ? "https" : "http"));
    json_object_set_new_nocheck(req, "secure", json_boolean(h->tls_key != NULL));
    return req;
}

/* On the node's loop: the message {req, res, payload} and the node's handler. */
static void run_handoff(crm_node *n, void *arg)
{
    req_snapshot *s = arg;
    crm_node_stats_take(&n->stats);
    json_t *req = build_req(s, headers_from_pack(s->headers, s->nheaders));
    json_t *payload;
    if (s->body) {
        if (s->files) json_object_set_new_nocheck(req, "files", s->files);
        json_object_set_new_nocheck(req, "body", s->body);
        payload = json_incref(s->body);
        s->body = s->files = NULL;
    } else {
        payload = json_incref(json_object_get(req, "query"));
    }
    json_t *msg = json_object();
    json_object_set_new_nocheck(msg, "req", req);
    json_object_set_new_nocheck(msg, "res", crm_handle_new(s->id));
    json_object_set_new_nocheck(msg, "payload", payload);
    crm_http_request_fn fn = s->fn;
    req_release(s->r); /* the snapshot goes with the request, freed where it was made */
    fn(n, msg);
}

/* The node closed before its loop took the request (a redeploy). */
static void drop_handoff(void *arg)
{
    req_snapshot *s = arg;
    CRM_STAT_ADD(s->node->stats.in, 1);
    req_state *r = slot_claim(s->h, s->id);
    if (r) deliver(r, 503, status_response(503));
    req_release(s->r);
}

static enum MHD_Result reply_now(req_state *r, unsigned status, struct MHD_Response *resp)
{
    return queue(r, status, resp);
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
        json_t *ct = raw_ct ? latin1_string(raw_ct) : NULL;
        body = http_parse_body(json_string_value(ct), r->body.data ? r->body.data : "", r->body.len,
                               (rt->flags & CRM_HTTP_UPLOAD) && !strcmp(method, "POST"), files, &err);
        json_decref(ct);
        if (!body) {
            crm_node_post(rt->node, warn_on_loop, strdup(err.message));
            *ret = reply_now(r, 500, status_response(500));
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
                hlog(h, CRM_LOG_WARN,
                     "flow %s holds %zu requests (nodeInputQueueMaxLength): answering 503 with Retry-After "
                     "(counted in carmine_flow_http_refused_total; warned once)",
                     fq->flow, h->queue_max);
            json_decref(params);
            struct MHD_Response *resp = status_response(503);
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
    req_snapshot *s = snapshot_new(r, method, plen);
    if (!s) {
        json_decref(params);
        json_decref(body);
        json_decref(files);
        return reply_now(r, 500, status_response(500));
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
        snapshot_free(s);
        bool closing = atomic_load(&h->stopping_soon);
        long long now = (long long)mono_ms();
        long long last = atomic_load(&h->last_503_log);
        if (!closing && now - last >= 1000 && atomic_compare_exchange_strong(&h->last_503_log, &last, now))
            hlog(h, CRM_LOG_WARN, "%zu requests in flight (maxRequestsInFlight): answering 503 to %s %s",
                 h->max_inflight, r->method, r->uri);
        struct MHD_Response *resp = status_response(503);
        if (inl) return reply_now(r, 503, resp);
        r->resp = resp;
        r->resp_status = 503;
        resume_with_answer(r);
        return MHD_YES;
    }
    s->r = r;
    r->snap = s;
    atomic_fetch_add(&r->refs, 1);
    s->node = rt->node;
    CRM_STAT_ADD(rt->node->stats.queued_remote, 1);
    if (inl) {
        r->pending_sync = s; /* run_inline, once dispatch let go of the route locks */
        return MHD_YES;
    }
    crm_node_post_ex(rt->node, run_handoff, drop_handoff, s);
    return MHD_YES;
}

static enum MHD_Result answer_ready(req_state *r);

/* On the loop that drives the server: the message goes to the http in node
 * and the loop's queue runs until the flow answered or has nothing left to
 * run at once (a delay, a request elsewhere). An answer in time is queued
 * right here, as a bare libmicrohttpd server answers; otherwise the
 * connection is suspended and the answer resumes it, as on the threaded
 * path. */
static enum MHD_Result run_inline(req_state *r)
{
    crm_httpd *h = r->h;
    req_snapshot *s = r->pending_sync;
    r->pending_sync = NULL;
    run_handoff(s->node, s);
    while (!atomic_load_explicit(&r->inline_answered, memory_order_acquire) && crm_loop_run_next_delivery()) {
    }
    pthread_mutex_lock(&h->slots_lock);
    bool ready = r->reply || r->resp;
    if (!ready) MHD_suspend_connection(r->conn);
    r->inline_held = false;
    pthread_mutex_unlock(&h->slots_lock);
    return ready ? answer_ready(r) : MHD_YES;
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
    return queue(r, (unsigned)reply.status, resp);
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
    json_t *ch = cors_headers(opts, headers, true);
    json_decref(r->extra);
    r->extra = NULL;
    r->any_origin = false;
    struct MHD_Response *resp = text_response(NULL, "", 0);
    if (resp) add_headers(resp, ch);
    json_decref(ch);
    return queue(r, 204, resp);
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
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, pack_header, &count);
    size_t ml = strlen(method) + 1, ul = strlen(r->uri) + 1, bl = r->body.len;
    crm_httpd_proxy_req *q = malloc(sizeof *q + ml + ul + count.bytes + bl + 1);
    if (!q) return reply_now(r, 500, status_response(500));
    memset(q, 0, sizeof *q);
    char *at = q->data;
    q->h = h;
    q->method = memcpy(at, method, ml);
    q->uri = memcpy(at + ml, r->uri, ul);
    q->headers = at + ml + ul;
    q->nheaders = count.count;
    header_packer fill = {at + ml + ul, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, pack_header, &fill);
    q->body = fill.at;
    if (bl) memcpy(fill.at, r->body.data, bl);
    fill.at[bl] = 0;
    q->len = bl;
    client_ip(r->conn, q->ip);
    q->tls = h->tls_key != NULL;
    q->upgrade = r->get_or_head && MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Upgrade") != NULL;
    if (tl_deferred != r) MHD_suspend_connection(r->conn);
    q->id = slot_take_new(h, r);
    if (q->id < 0) {
        free(q);
        r->resp = status_response(503);
        r->resp_status = 503;
        resume_with_answer(r);
        return MHD_YES;
    }
    fn(q);
    return MHD_YES;
}

int crm_httpd_proxy_answer(crm_httpd *h, long long id, unsigned status, struct MHD_Response *resp)
{
    req_state *r = h && resp ? slot_claim(h, id) : NULL;
    if (!r) {
        if (resp) MHD_destroy_response(resp);
        return -1;
    }
    deliver(r, status, resp);
    return 0;
}

static enum MHD_Result defer_to_thread(req_state *r);

static enum MHD_Result dispatch(req_state *r, const char *method)
{
    crm_httpd *h = r->h;
    r->dispatched = true;
    const char *q = strchr(r->uri, '?');
    size_t plen = q ? (size_t)(q - r->uri) : strlen(r->uri);
    char *path = strndup(r->uri, plen);
    if (!path) return MHD_NO;
    crm_httpd_upgrade_fn up = upgrade_handler;
    if (up && tl_deferred != r && r->get_or_head && MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Upgrade")) {
        unsigned status = 0;
        struct MHD_Response *resp = up(r->conn, path, &status);
        if (resp) {
            free(path);
            return queue(r, status, resp);
        }
    }
    /* built only where needed: node routes take a packed copy instead */
    json_t *headers = NULL;
    enum MHD_Result ret = MHD_YES;
    http_body_error err;
    bool handled = false;
    mark_any_origin(r);
    if (r->any_origin && !strcmp(method, "OPTIONS")) {
        headers = request_headers(r->conn);
        ret = preflight(r, h->admin_cors, headers);
        goto out;
    }
    if (r->too_large) {
        ret = queue_error_page(r, 413, "PayloadTooLargeError: request entity too large");
        goto out;
    }
    if (admin_json_quirk(r, path, plen, &err)) {
        hlog(h, CRM_LOG_WARN, "%s %s: %s", r->method, r->uri, err.message);
        ret = queue_error_page(r, 400, err.message);
        goto out;
    }
    if (h->admin && h->admin_root && under_root(h->admin_root, path, plen) &&
        !admin_declined(h, method, path, plen)) {
        if (tl_driving == h) { /* the admin API may deploy, which stops this loop: drv_thread runs it */
            ret = defer_to_thread(r);
            goto out;
        }
        headers = request_headers(r->conn);
        ret = call_admin(r, method, path, plen, headers, &handled);
        if (handled || ret == MHD_NO) goto out;
        remember_declined(h, method, path, plen);
    }
    if (h->node_root && under_root(h->node_root, path, plen)) {
        bool options = !strcmp(method, "OPTIONS");
        if (h->cors && !headers) headers = request_headers(r->conn);
        if (h->cors && options) {
            ret = preflight(r, h->cors, headers);
            goto out;
        }
        if (h->auth_user && !options &&
            !auth_ok(h, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization"))) {
            struct MHD_Response *resp = status_response(401);
            if (resp) MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"Authorization Required\"");
            ret = queue(r, 401, resp);
            goto out;
        }
        json_t *params = NULL;
        bool known;
        strbuf allow = SB_INIT;
        pthread_rwlock_rdlock(&h->hold_lock);
        pthread_rwlock_rdlock(&h->routes_lock);
        const route *rt = find_route(h, method, path, plen, &params, &known, options ? &allow : NULL);
        if (rt) {
            if (h->cors) r->extra = cors_headers(h->cors, headers, false);
            ret = hand_to_node(r, rt, method, path, plen, params);
            pthread_rwlock_unlock(&h->routes_lock);
            pthread_rwlock_unlock(&h->hold_lock);
            sb_free(&allow);
            if (r->pending_sync) ret = run_inline(r);
            goto out;
        }
        pthread_rwlock_unlock(&h->routes_lock);
        pthread_rwlock_unlock(&h->hold_lock);
        if (options && known) { /* Express answers OPTIONS with the allowed methods */
            struct MHD_Response *resp = text_response("text/html; charset=utf-8", allow.data, allow.len);
            if (resp) MHD_add_response_header(resp, "Allow", allow.data);
            sb_free(&allow);
            ret = queue(r, 200, resp);
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
    free(path);
    return ret;
}

/* Connections ------------------------------------------------------------------------ */

/* A connection is either busy with a request (from its complete head to
 * its answer) or waiting: for its first request head, or idle between
 * keep-alive requests. Waiting connections cost a descriptor and hold
 * nothing that is lost when closed, so they are what gives way:
 *   - a request head not complete within httpHeadersTimeout (Node.js's
 *     headersTimeout, 60 s) closes the connection; an idle keep-alive
 *     connection counts from the end of its last answer;
 *   - when the connections reach evict_at (some room short of the limit),
 *     each new one closes the oldest waiting one, so a client that sends
 *     its request at once always finds a place however many connections
 *     trickle their heads a byte at a time (slowloris) or sit idle; when
 *     none is waiting (all busy), the new connection is closed.
 * The waiting list is in the order the connections started waiting, so
 * the oldest is at its head: O(1) for each step. libmicrohttpd calls the
 * CLOSED notification before it closes the descriptor, under conns_mu as
 * the evictions are, so a shutdown() never reaches a reused descriptor. */

static conn_link *link_of(conn_entry *e, size_t off) { return (conn_link *)((char *)e + off); }

/* off: offsetof(conn_entry, wait or body), the link the list uses */
static void list_unlink(conn_list *l, conn_entry *e, size_t off)
{
    conn_link *k = link_of(e, off);
    if (k->prev) link_of(k->prev, off)->next = k->next;
    else l->head = k->next;
    if (k->next) link_of(k->next, off)->prev = k->prev;
    else l->tail = k->prev;
    k->prev = k->next = NULL;
    l->n--;
}

static void list_push(conn_list *l, conn_entry *e, size_t off)
{
    conn_link *k = link_of(e, off);
    k->prev = l->tail;
    k->next = NULL;
    if (l->tail) link_of(l->tail, off)->next = e;
    else l->head = e;
    l->tail = e;
    l->n++;
}

static void wait_unlink(crm_httpd *h, conn_entry *e)
{
    if (!e->listed) return;
    list_unlink(&h->waiting, e, offsetof(conn_entry, wait));
    e->listed = false;
}

static void wait_push(crm_httpd *h, conn_entry *e, double now)
{
    if (e->listed || e->evicted) return;
    e->since = now;
    list_push(&h->waiting, e, offsetof(conn_entry, wait));
    e->listed = true;
}

/* A request body still coming (Node.js's requestTimeout, 300 s): a client
 * that trickles it a byte at a time holds its connection and its request
 * memory only until httpBodyTimeout after its head. */
static void body_unlink(crm_httpd *h, conn_entry *e)
{
    if (!e->in_body) return;
    list_unlink(&h->bodies, e, offsetof(conn_entry, body));
    e->in_body = false;
}

static void body_push(crm_httpd *h, conn_entry *e, double now)
{
    if (e->in_body || e->evicted) return;
    e->body_since = now;
    list_push(&h->bodies, e, offsetof(conn_entry, body));
    e->in_body = true;
}

/* Under conns_mu: the server thread that owns the connection sees the
 * shutdown as an end of stream and closes it. */
static void shut_locked(crm_httpd *h, conn_entry *e)
{
    wait_unlink(h, e);
    body_unlink(h, e);
    e->evicted = true;
    h->nevicting++;
    shutdown(e->fd, SHUT_RDWR);
}

/* shut_locked for a connection waiting for a head, counted for the log */
static void evict_locked(crm_httpd *h, conn_entry *e)
{
    shut_locked(h, e);
    h->evicted++;
}

static void log_evictions(crm_httpd *h, double now)
{
    pthread_mutex_lock(&h->conns_mu);
    unsigned long long n = h->evicted - h->evicted_logged;
    bool due = n && now - h->last_evict_log >= 10000;
    if (due) {
        h->evicted_logged = h->evicted;
        h->last_evict_log = now;
    }
    size_t open = h->nconns;
    pthread_mutex_unlock(&h->conns_mu);
    if (due)
        hlog(h, CRM_LOG_WARN,
             "closed %llu connections that sent no complete request head in time (httpHeadersTimeout %.0f ms) "
             "or gave way to new ones (%zu open, limit %zu)",
             n, h->head_timeout_ms, open, h->conn_limit);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    crm_httpd *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_entry *e = calloc(1, sizeof *e);
        *socket_context = e;
        if (!e) return;
        e->fd = ci ? ci->connect_fd : -1;
        double now = mono_ms();
        pthread_mutex_lock(&h->conns_mu);
        h->nconns++;
        while (h->nconns - h->nevicting > h->evict_at && h->waiting.head) evict_locked(h, h->waiting.head);
        if (h->nconns - h->nevicting > h->evict_at) evict_locked(h, e); /* all busy: no room */
        else wait_push(h, e, now);
        while (h->waiting.n > h->max_waiting) evict_locked(h, h->waiting.head);
        pthread_mutex_unlock(&h->conns_mu);
        return;
    }
    conn_entry *e = *socket_context;
    if (!e) return;
    *socket_context = NULL;
    pthread_mutex_lock(&h->conns_mu);
    wait_unlink(h, e);
    body_unlink(h, e);
    if (e->evicted) h->nevicting--;
    h->nconns--;
    pthread_mutex_unlock(&h->conns_mu);
    free(e);
}

static conn_entry *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's request head is complete: it is busy now. */
static void conn_head_done(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    pthread_mutex_lock(&h->conns_mu);
    wait_unlink(h, e);
    pthread_mutex_unlock(&h->conns_mu);
}

/* Its request has a body to come: it must be complete in time. */
static void conn_body_started(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e || h->body_timeout_ms <= 0) return;
    double now = mono_ms();
    pthread_mutex_lock(&h->conns_mu);
    body_push(h, e, now);
    pthread_mutex_unlock(&h->conns_mu);
}

/* Its request's body is complete (or no longer read). */
static void conn_body_done(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    pthread_mutex_lock(&h->conns_mu);
    body_unlink(h, e);
    pthread_mutex_unlock(&h->conns_mu);
}

/* Its request is answered: it waits for the next one (keep-alive). */
static void conn_idle(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    double now = mono_ms();
    pthread_mutex_lock(&h->conns_mu);
    wait_push(h, e, now);
    pthread_mutex_unlock(&h->conns_mu);
}

/* The reaper's part: closes connections past httpHeadersTimeout, and
 * those whose request body is not complete within httpBodyTimeout. */
static void reap_heads(crm_httpd *h)
{
    double now = mono_ms();
    unsigned long long bodies = 0;
    pthread_mutex_lock(&h->conns_mu);
    if (h->head_timeout_ms > 0)
        while (h->waiting.head && h->waiting.head->since + h->head_timeout_ms <= now) evict_locked(h, h->waiting.head);
    if (h->body_timeout_ms > 0)
        while (h->bodies.head && h->bodies.head->body_since + h->body_timeout_ms <= now) {
            shut_locked(h, h->bodies.head);
            h->body_expired++;
        }
    if (h->body_expired != h->body_expired_logged) {
        bodies = h->body_expired - h->body_expired_logged;
        h->body_expired_logged = h->body_expired;
    }
    pthread_mutex_unlock(&h->conns_mu);
    if (bodies)
        hlog(h, CRM_LOG_WARN, "closed %llu connections whose request body was not complete within %.0f ms (httpBodyTimeout)",
             bodies, h->body_timeout_ms);
    log_evictions(h, now);
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
static enum MHD_Result answer_ready(req_state *r)
{
    if (r->reply) {
        unsigned status;
        struct MHD_Response *resp = reply_response(r, r->reply, &status);
        if ((char *)r->reply != r->reply_space) free(r->reply);
        r->reply = NULL;
        return queue(r, status, resp);
    }
    struct MHD_Response *resp = r->resp;
    r->resp = NULL;
    return queue(r, r->resp_status, resp);
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
    if (r->snap) snapshot_free(r->snap);
    free(r);
}

static void req_release(req_state *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) free_req(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    crm_httpd *h = cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) conn_idle(h, c);
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
    req_release(r);
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
    if (!ci) return false;
    char b;
    return recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
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
        return answer_ready(r);
    }
    if (!r->started) {
        r->started = true;
        r->t0 = mono_ms();
        r->method = method;
        r->get_or_head = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        conn_head_done(h, c);
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
            r->head_ms = mono_ms();
            conn_body_started(h, c);
        }
        /* answering from this first call would be an "early" response,
         * which makes libmicrohttpd close the connection */
        return MHD_YES;
    }
    if (*upload_size) {
        if (h->body_timeout_ms > 0 && !r->dispatched && mono_ms() - r->head_ms > h->body_timeout_ms) {
            /* Node.js answers a body past its requestTimeout with a bare 408 and closes */
            *upload_size = 0;
            r->dispatched = true;
            conn_body_done(h, c);
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
            return queue(r, 408, resp);
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
    if (r->expect_body) conn_body_done(h, c);
    if (client_half_closed(c)) return MHD_NO;
    return dispatch(r, method);
}

/* Timeouts --------------------------------------------------------------------------- */

static void reap(crm_httpd *h)
{
    req_state *expired[64];
    size_t n;
    do {
        n = 0;
        double now = mono_ms();
        pthread_mutex_lock(&h->slots_lock);
        for (size_t i = 0; i < h->max_inflight && n < 64 && h->inflight; i++) {
            req_state *r = h->slots[i];
            if (r && r->deadline > 0 && r->deadline <= now) {
                slot_claim_locked(h, r);
                expired[n++] = r;
            }
        }
        pthread_mutex_unlock(&h->slots_lock);
        for (size_t i = 0; i < n; i++) {
            hlog(h, CRM_LOG_WARN, "%s %s: no http response within %.0f ms (httpRequestTimeout): answered 504",
                 expired[i]->method, expired[i]->uri, h->timeout_ms);
            deliver(expired[i], 504, status_response(504));
        }
    } while (n == 64);
}

static void *reaper_main(void *arg)
{
    crm_httpd *h = arg;
    double tick = h->timeout_ms > 0 ? h->timeout_ms / 4 : 1000;
    if (h->head_timeout_ms > 0 && h->head_timeout_ms / 4 < tick) tick = h->head_timeout_ms / 4;
    if (h->body_timeout_ms > 0 && h->body_timeout_ms / 4 < tick) tick = h->body_timeout_ms / 4;
    if (tick < 20) tick = 20;
    if (tick > 1000) tick = 1000;
    pthread_mutex_lock(&h->reaper_mu);
    while (!atomic_load(&h->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)(tick * 1e6);
        ts.tv_sec += ns / 1000000000LL;
        ts.tv_nsec = ns % 1000000000LL;
        pthread_cond_timedwait(&h->reaper_cv, &h->reaper_mu, &ts);
        if (atomic_load(&h->stopping)) break;
        pthread_mutex_unlock(&h->reaper_mu);
        if (h->timeout_ms > 0) reap(h);
        reap_heads(h);
        pthread_mutex_lock(&h->reaper_mu);
    }
    pthread_mutex_unlock(&h->reaper_mu);
    return NULL;
}

/* Driving from a flow's loop ------------------------------------------------------------ */

/* On a small machine (two cores or fewer, no httpThreads set, no TLS;
 * httpOnFlowLoop forces it either way) libmicrohttpd runs without threads
 * of its own (epoll, driven from outside), and two drivers take turns:
 *   - drv_thread, ours, as long as the routes of http in nodes live on more
 *     than one loop (or none), during a deploy and while stopping;
 *   - the loop that holds every route: it watches libmicrohttpd's epoll
 *     descriptor (crm_watch_fd on one of its http in nodes) and calls
 *     MHD_run itself. A request for a route is then turned into a message
 *     and run through the flow right inside the access handler
 *     (run_inline); when the flow answers at once, as an http in -> change
 *     -> http response flow does, the answer is queued there: no suspend,
 *     no resume, no thread woken, as in a bare libmicrohttpd server.
 * Only the driver calls MHD_run. drv_thread hands over by posting an attach
 * job to the loop (DRV_TO_LOOP) and stops polling; the loop hands back in a
 * detach job (deploys and stops ask for it, crm_httpd_hold) or when its
 * node closes. While the loop drives, admin API requests (a deploy stops
 * that very loop) are suspended and dispatched by drv_thread, whose answer
 * resumes them. */

static pthread_mutex_t token_mu = PTHREAD_MUTEX_INITIALIZER;

static void token_put(drv_token *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1) free(t);
}

typedef struct {
    drv_token *t;
    unsigned gen;
} attach_job;

static void ctl_wake(crm_httpd *h)
{
    uint64_t one = 1;
    if (h->ctl_efd >= 0) {
        ssize_t w = write(h->ctl_efd, &one, sizeof one);
        (void)w;
    }
}

static void on_mhd_soon(crm_node *n, void *arg);

/* On the driving loop. libmicrohttpd may have work left that no descriptor
 * will announce (a pipelined request already read, a connection resumed):
 * its timeout is then 0, and it runs again, a few times here, then from a
 * timer so that the loop's other work gets its turn. */
static void drive_now(crm_httpd *h)
{
    crm_httpd *saved = tl_driving;
    tl_driving = h;
    MHD_UNSIGNED_LONG_LONG to = 1;
    for (int i = 0; i < 8; i++) {
        MHD_run(h->d);
        if (MHD_get_timeout(h->d, &to) != MHD_YES || to > 0) break;
    }
    tl_driving = saved;
    if (to == 0 && !h->drive_soon && h->drive_node) h->drive_soon = crm_timer_start(h->drive_node, 0, 0, on_mhd_soon, h);
}

static void on_mhd_soon(crm_node *n, void *arg)
{
    (void)n;
    crm_httpd *h = arg;
    h->drive_soon = NULL; /* fired: gone */
    drive_now(h);
}

static void on_mhd_ready(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)revents;
    crm_httpd *h = arg;
    if (fd == h->resume_efd) {
        uint64_t v;
        ssize_t rr = read(fd, &v, sizeof v);
        (void)rr;
    }
    drive_now(h);
}

/* libmicrohttpd's own timeouts (idle connections) are checked in MHD_run */
static void on_mhd_tick(crm_node *n, void *arg)
{
    (void)n;
    drive_now(arg);
}

static void attach_on_loop(crm_node *n, void *arg)
{
    attach_job a = *(attach_job *)arg;
    free(arg);
    pthread_mutex_lock(&token_mu);
    crm_httpd *h = a.t->h;
    token_put(a.t);
    if (!h) {
        pthread_mutex_unlock(&token_mu);
        return;
    }
    pthread_mutex_lock(&h->drv_mu);
    bool ok = h->driver == DRV_TO_LOOP && h->attach_gen == a.gen && !h->held && !h->no_attach;
    if (ok) {
        h->drive_watch = crm_watch_fd(n, h->mhd_epfd, POLLIN, on_mhd_ready, h);
        h->resume_watch = crm_watch_fd(n, h->resume_efd, POLLIN, on_mhd_ready, h);
        h->drive_timer = h->drive_watch ? crm_timer_start(n, 1000, 1000, on_mhd_tick, h) : NULL;
        ok = h->drive_watch && h->resume_watch && h->drive_timer;
        if (!ok) {
            crm_watch_cancel(h->drive_watch);
            crm_watch_cancel(h->resume_watch);
            crm_timer_cancel(h->drive_timer);
        }
    }
    if (ok) {
        h->drive_node = n;
        h->drive_loop = n->loop;
        h->driver = DRV_LOOP;
    } else if (h->driver == DRV_TO_LOOP && h->attach_gen == a.gen) {
        h->driver = DRV_THREAD;
    }
    pthread_cond_broadcast(&h->drv_cv);
    pthread_mutex_unlock(&h->drv_mu);
    if (!ok) ctl_wake(h);
    pthread_mutex_unlock(&token_mu);
    if (ok) drive_now(h); /* what came meanwhile; the server lives while this loop drives it */
}

static void attach_dropped(void *arg)
{
    attach_job a = *(attach_job *)arg;
    free(arg);
    pthread_mutex_lock(&token_mu);
    crm_httpd *h = a.t->h;
    token_put(a.t);
    if (h) {
        pthread_mutex_lock(&h->drv_mu);
        if (h->driver == DRV_TO_LOOP && h->attach_gen == a.gen) h->driver = DRV_THREAD;
        pthread_cond_broadcast(&h->drv_cv);
        pthread_mutex_unlock(&h->drv_mu);
        ctl_wake(h);
    }
    pthread_mutex_unlock(&token_mu);
}

/* On the driving loop: drv_thread takes over. */
static void detach_here(crm_httpd *h, bool node_closed)
{
    pthread_mutex_lock(&h->drv_mu);
    if (h->driver == DRV_LOOP && (node_closed || crm_loop_current() == h->drive_loop)) {
        if (!node_closed) {
            crm_watch_cancel(h->drive_watch);
            crm_watch_cancel(h->resume_watch);
            crm_timer_cancel(h->drive_timer);
            crm_timer_cancel(h->drive_soon);
        }
        h->resume_watch = NULL;
        h->drive_soon = NULL;
        h->drive_watch = NULL;
        h->drive_timer = NULL;
        h->drive_node = NULL;
        h->drive_loop = NULL;
        h->driver = DRV_THREAD;
    }
    h->detach_posted = false;
    pthread_cond_broadcast(&h->drv_cv);
    pthread_mutex_unlock(&h->drv_mu);
    ctl_wake(h);
}

static void detach_job(crm_node *n, void *arg)
{
    (void)n;
    detach_here(arg, false);
}

/* the node closed first: its watch and timer went with it */
static void detach_dropped(void *arg) { detach_here(arg, true); }

/* Any thread but drv_thread: returns once drv_thread drives (or will, when
 * it is back from what it runs now). The caller set held or no_attach. */
static void take_back(crm_httpd *h)
{
    if (!h->ext) return;
    pthread_mutex_lock(&h->drv_mu);
    for (;;) {
        if (h->driver == DRV_THREAD) break;
        if (h->driver == DRV_TO_LOOP) { /* the attach job, when it runs, finds a newer generation */
            h->attach_gen++;
            h->driver = DRV_THREAD;
            break;
        }
        if (crm_loop_current() == h->drive_loop) {
            pthread_mutex_unlock(&h->drv_mu);
            detach_here(h, false);
            pthread_mutex_lock(&h->drv_mu);
            continue;
        }
        if (!h->detach_posted) {
            h->detach_posted = true;
            crm_node_post_ex(h->drive_node, detach_job, detach_dropped, h);
        }
        pthread_cond_wait(&h->drv_cv, &h->drv_mu);
    }
    pthread_mutex_unlock(&h->drv_mu);
    ctl_wake(h);
}

/* drv_thread, under drv_mu: hands the server to the loop of every route. */
static void maybe_attach_locked(crm_httpd *h)
{
    if (h->driver != DRV_THREAD || h->held || h->no_attach || h->drv_quit) return;
    pthread_rwlock_rdlock(&h->routes_lock);
    crm_node *n = h->attach_node;
    if (n) {
        attach_job *a = malloc(sizeof *a);
        if (a) {
            atomic_fetch_add(&h->token->refs, 1);
            *a = (attach_job){h->token, ++h->attach_gen};
            h->driver = DRV_TO_LOOP;
            crm_node_post_ex(n, attach_on_loop, attach_dropped, a);
        }
    }
    pthread_rwlock_unlock(&h->routes_lock);
}

/* under routes_lock (written) */
static void routes_changed_locked(crm_httpd *h)
{
    crm_node *n = h->nroutes ? h->routes[0].node : NULL;
    for (size_t i = 1; n && i < h->nroutes; i++)
        if (h->routes[i].node->loop != n->loop) n = NULL;
    h->attach_node = n;
}

/* On the driving loop, inside MHD_run: an admin request for drv_thread. */
static enum MHD_Result defer_to_thread(req_state *r)
{
    crm_httpd *h = r->h;
    MHD_suspend_connection(r->conn);
    atomic_fetch_add(&r->refs, 1);
    r->next_deferred = NULL;
    pthread_mutex_lock(&h->drv_mu);
    if (h->deferred_tail) h->deferred_tail->next_deferred = r;
    else h->deferred_head = r;
    h->deferred_tail = r;
    pthread_mutex_unlock(&h->drv_mu);
    ctl_wake(h);
    return MHD_YES;
}

static void run_deferred(req_state *r)
{
    tl_deferred = r;
    enum MHD_Result ret = dispatch(r, r->method);
    tl_deferred = NULL;
    if (r->deferred_queued) {
        r->deferred_queued = false;
        resume_with_answer(r);
    } else if (ret == MHD_NO) {
        r->fail_close = true;
        resume_with_answer(r);
    }
    req_release(r);
}

static void *drv_main(void *arg)
{
    crm_httpd *h = arg;
    struct pollfd p[3] = {{.fd = h->ctl_efd, .events = POLLIN},
                          {.fd = h->resume_efd, .events = POLLIN},
                          {.fd = h->mhd_epfd, .events = POLLIN}};
    pthread_mutex_lock(&h->drv_mu);
    while (!h->drv_quit) {
        while (h->deferred_head) {
            req_state *r = h->deferred_head;
            h->deferred_head = r->next_deferred;
            if (!h->deferred_head) h->deferred_tail = NULL;
            pthread_mutex_unlock(&h->drv_mu);
            run_deferred(r);
            pthread_mutex_lock(&h->drv_mu);
        }
        maybe_attach_locked(h);
        /* only this thread moves the driver away from DRV_THREAD */
        bool drive = h->driver == DRV_THREAD;
        pthread_mutex_unlock(&h->drv_mu);
        int timeout = 1000;
        MHD_UNSIGNED_LONG_LONG to;
        if (drive && MHD_get_timeout(h->d, &to) == MHD_YES && to < 1000) timeout = (int)to;
        int n = poll(p, drive ? 3 : 1, timeout);
        for (int i = 0; i < 2 && n > 0; i++) {
            if (!p[i].revents) continue;
            uint64_t v;
            ssize_t rr = read(p[i].fd, &v, sizeof v);
            (void)rr;
        }
        if (drive) MHD_run(h->d);
        pthread_mutex_lock(&h->drv_mu);
    }
    pthread_mutex_unlock(&h->drv_mu);
    return NULL;
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
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h};
    /* the limit is kept here (on_connection) for all server threads
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
            hlog(h, CRM_LOG_ERROR, "settings.host: not an IP address: %s", h->host);
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
                hlog(h, CRM_LOG_WARN, "%zu open files allowed (ulimit -n): serving at most %zu connections", fds, room);
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
        hlog(h, CRM_LOG_ERROR, "cannot listen on %s:%d: %s", h->host ? h->host : "*", h->port_cfg, strerror(errno));
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : h->port_cfg;
    if (h->ext) {
        const union MHD_DaemonInfo *ei = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
        h->mhd_epfd = ei ? ei->epoll_fd : -1;
        if (h->ctl_efd < 0) h->ctl_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->resume_efd < 0) h->resume_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->mhd_epfd < 0 || h->ctl_efd < 0 || h->resume_efd < 0 || pthread_create(&h->drv_thread, NULL, drv_main, h) != 0) {
            hlog(h, CRM_LOG_ERROR, "cannot start the HTTP server's thread: %s", strerror(errno));
            MHD_stop_daemon(h->d);
            h->d = NULL;
            h->port = 0;
            return -1;
        }
        h->drv_running = true;
    }
    if (pthread_create(&h->reaper, NULL, reaper_main, h) == 0) h->reaper_running = true;
    return 0;
}

void crm_httpd_stop(crm_httpd *h)
{
    if (!h || !h->d) return;
    if (h->ext) { /* drv_thread drives from here on */
        pthread_mutex_lock(&h->drv_mu);
        h->no_attach = true;
        pthread_mutex_unlock(&h->drv_mu);
        take_back(h);
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
                slot_claim_locked(h, r);
            }
        }
        pthread_mutex_unlock(&h->slots_lock);
        if (!r) break;
        r->stop_answer = true;
        atomic_fetch_add(&h->stop_answers, 1);
        deliver(r, 503, status_response(503));
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
        ctl_wake(h);
        pthread_join(h->drv_thread, NULL);
        h->drv_running = false;
        /* admin requests the loop passed on and nobody ran: closed with the daemon */
        while (h->deferred_head) {
            req_state *r = h->deferred_head;
            h->deferred_head = r->next_deferred;
            r->fail_close = true;
            resume_with_answer(r);
            req_release(r);
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
    pthread_mutex_lock(&token_mu);
    h->token->h = NULL;
    pthread_mutex_unlock(&token_mu);
    token_put(h->token);
    if (h->resume_efd >= 0) close(h->resume_efd);
    free(h);
}

void crm_httpd_hold(crm_httpd *h)
{
    if (h->ext) { /* the flows' loops stop and go: drv_thread drives meanwhile */
        pthread_mutex_lock(&h->drv_mu);
        h->held = true;
        pthread_mutex_unlock(&h->drv_mu);
        take_back(h);
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
        ctl_wake(h);
    }
}
