/* httpd_internal.h: what the pieces of the HTTP server share (runtime/httpd.c,
 * the core: settings, routes, dispatch, answers, life cycle; httpd_msg.c, a
 * node request's message; httpd_cors.c, CORS and httpNodeAuth; httpd_conn.c,
 * connections and timeouts; httpd_loop.c, libmicrohttpd driven from a
 * flow's loop; httpd_recv.c, the executable's recv, which notes what a read
 * left). Internal: nothing here is for nodes or plugins (httpd.h and
 * http.h are their faces). */
#ifndef CRM_HTTPD_INTERNAL_H
#define CRM_HTTPD_INTERNAL_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "http_internal.h"
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
    void *upgrade_buf; /* crm_httpd_upgrade_buffers: freed when the connection is */
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
    bool turn_drive; /* an MHD_run at the end of the driving loop's turn is asked for (under drv_mu) */
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

#define IP_TEXT_MAX (INET6_ADDRSTRLEN + 8)

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
/* the server this thread drives from a flow's loop (inside MHD_run), and
 * the request whose dispatch drv_thread runs for the loop */
extern _Thread_local crm_httpd *tl_driving;
extern _Thread_local req_state *tl_deferred;

/* Header names longer than this are dropped. */
#define HEADER_NAME_MAX 128

/* The received headers copied as lower-case name\0value\0 pairs: the
 * request's message is built from them on the node's loop. A first pass
 * (at NULL) only counts the bytes. */
typedef struct {
    char *at;
    size_t bytes, count;
} header_packer;

/* httpd.c */
void httpd_log(crm_httpd *h, crm_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
double httpd_mono_ms(void);
void httpd_slot_claim_locked(crm_httpd *h, req_state *r);
req_state *httpd_slot_claim(crm_httpd *h, long long id);
enum MHD_Result httpd_queue(req_state *r, unsigned status, struct MHD_Response *resp);
struct MHD_Response *httpd_status_response(unsigned status);
void httpd_resume_with_answer(req_state *r);
void httpd_deliver(req_state *r, unsigned status, struct MHD_Response *resp);
enum MHD_Result httpd_dispatch(req_state *r, const char *method);
enum MHD_Result httpd_answer_ready(req_state *r);
void httpd_req_release(req_state *r);

/* httpd_msg.c */
json_t *httpd_latin1_string(const char *s);
json_t *httpd_request_headers(struct MHD_Connection *c);
enum MHD_Result httpd_pack_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value);
void httpd_client_ip(struct MHD_Connection *c, char buf[IP_TEXT_MAX]);
req_snapshot *httpd_snapshot_new(req_state *r, const char *method, size_t plen);
void httpd_snapshot_free(req_snapshot *s);
void httpd_run_handoff(crm_node *n, void *arg);
void httpd_drop_handoff(void *arg);

/* httpd_cors.c */
json_t *httpd_cors_headers(const json_t *opts, const json_t *headers, bool preflight);
bool httpd_auth_ok(crm_httpd *h, const char *header);

/* httpd_conn.c */
void httpd_on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code);
void httpd_conn_head_done(crm_httpd *h, struct MHD_Connection *c);
void httpd_conn_body_started(crm_httpd *h, struct MHD_Connection *c);
void httpd_conn_body_done(crm_httpd *h, struct MHD_Connection *c);
void httpd_conn_idle(crm_httpd *h, struct MHD_Connection *c);
void *httpd_reaper_main(void *arg);

/* httpd_loop.c */
void httpd_token_put(drv_token *t);
void httpd_ctl_wake(crm_httpd *h);
void httpd_wake_driver(crm_httpd *h);
void httpd_detach_here(crm_httpd *h, bool node_closed);
void httpd_take_back(crm_httpd *h);
void httpd_routes_changed_locked(crm_httpd *h);
enum MHD_Result httpd_defer_to_thread(req_state *r);
void *httpd_drv_main(void *arg);
enum MHD_Result httpd_run_inline(req_state *r);
extern pthread_mutex_t httpd_token_mu;

/* httpd_recv.c */
/* A connection of the server opened (on: TCP_INQ set, its reads noted by
 * the executable's recv) or closed. */
void httpd_recv_track(int fd, bool on);
/* Whether the client of fd shut its side down (D12): answered from the
 * note of the last read when it left nothing, else by a recv(MSG_PEEK). */
bool httpd_client_half_closed(int fd);

#endif
