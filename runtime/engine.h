/* engine.h: the engine's internal structures, shared by the runtime's own
 * files (loader, loops, routing, context, env). Node types never include it:
 * they see only carmine.h. */
#ifndef CRM_ENGINE_H
#define CRM_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "carmine.h"
#include "runtime.h"
#include "strbuf.h"

typedef struct crm_loop crm_loop;
typedef struct crm_flow crm_flow;
typedef struct crm_group crm_group;
typedef struct crm_httpd crm_httpd;

struct crm_group {
    char *id;
    char *name;
    crm_group *parent;
    json_t *env; /* evaluated env: name -> value */
};

/* A node's counters for /metrics (metrics.c). Those of its own loop
 * (in, out, queued, hwm) are written by that thread alone as relaxed
 * atomic loads and stores, plain moves on x86 with no lock or fence; the
 * others (errors, deliveries from other threads, drops) with relaxed atomic
 * adds. A scrape reads them all racily, which is safe: each is one word. */
typedef struct {
    _Atomic uint64_t in;        /* deliveries taken off its input queue (handled, or dropped when closed) */
    _Atomic uint64_t queued;    /* deliveries queued from its own loop */
    _Atomic uint64_t out;       /* messages it sent */
    _Atomic uint64_t hwm;       /* the largest input-queue depth seen */
    _Atomic uint64_t queued_remote; /* deliveries queued from other threads */
    _Atomic uint64_t errors;    /* node.error calls (crm_node_error, errors routed to catch) */
    _Atomic uint64_t dropped;   /* deliveries refused: its input queue was full */
    atomic_bool drop_warned;    /* the "queue full" warning was logged */
} crm_node_stats;

#define CRM_STAT_GET(f) atomic_load_explicit(&(f), memory_order_relaxed)
/* for counters written by one thread only: no locked instruction */
#define CRM_STAT_BUMP(f, k) atomic_store_explicit(&(f), CRM_STAT_GET(f) + (k), memory_order_relaxed)
/* for counters written from any thread */
#define CRM_STAT_ADD(f, k) atomic_fetch_add_explicit(&(f), (k), memory_order_relaxed)

/* Input-queue depth: what was queued and not yet taken (never below 0
 * when read racily). */
static inline uint64_t crm_node_queue_depth(const crm_node_stats *s)
{
    uint64_t in = CRM_STAT_GET(((crm_node_stats *)s)->in);
    uint64_t q = CRM_STAT_GET(((crm_node_stats *)s)->queued) + CRM_STAT_GET(((crm_node_stats *)s)->queued_remote);
    return q > in ? q - in : 0;
}

/* On the node's loop: one delivery taken off its input queue. The depth
 * before (this one included) feeds the high-water mark; the depth only
 * falls here, so the largest value seen here is the largest there was. */
static inline void crm_node_stats_take(crm_node_stats *st)
{
    uint64_t in = CRM_STAT_GET(st->in);
    uint64_t depth = CRM_STAT_GET(st->queued) + CRM_STAT_GET(st->queued_remote) - in;
    if (depth > CRM_STAT_GET(st->hwm)) atomic_store_explicit(&st->hwm, depth, memory_order_relaxed);
    atomic_store_explicit(&st->in, in + 1, memory_order_relaxed);
}

struct crm_node {
    const crm_node_type *type;
    char *id;
    char *alias; /* template id inside a subflow instance, else NULL */
    char *name;
    char *z;
    crm_flow *flow;
    crm_group *group;
    crm_runtime *rt;
    crm_loop *loop;
    json_t *config; /* env-substituted copy of the node's JSON */
    int nports;
    int *nwires;
    crm_node ***wires;  /* resolved at start; NULL entries stand for missing/disabled nodes */
    char ***wire_ids;
    void *data;
    crm_timer *timers;  /* pending timers, so close can cancel them */
    crm_watch *watches; /* descriptor watches, likewise */
    bool is_config;     /* no x/y */
    bool watched;       /* a complete node watches it */
    bool kept;          /* a partial deploy kept it running: not created nor started again */
    bool closed;
    json_t *catch_scope;    /* catch/status/complete: scope array, "group" or NULL */
    bool catch_uncaught;
    size_t queue_max;       /* settings.nodeInputQueueMaxLength; 0: no limit */
    crm_node_stats stats;
    unsigned long status_clear_gen; /* comms.c: the editor shows no status of this node as of this generation; 0 unknown */
};

struct crm_flow {
    char *id;
    char *label;
    bool is_subflow;      /* a subflow instance */
    crm_flow *parent;     /* subflow instance: the flow it sits in */
    crm_node *instance;   /* subflow instance: its node in the parent flow */
    json_t *subflow_def;  /* subflow instance: the definition */
    crm_loop *loop;
    crm_runtime *rt;
    json_t *env;          /* evaluated env of the tab / instance */
    crm_node **nodes;
    size_t nnodes;
    crm_node **catches, **statuses, **completes;
    size_t ncatches, nstatuses, ncompletes;
    size_t nstatus_out;     /* subflow instance: wires into the subflow's status output */
};

struct crm_runtime {
    json_t *settings;
    unsigned load_flags;  /* CRM_LOAD_* of the crm_runtime_load in progress or done */
    crm_log_hook hook;
    void *hook_ctx;
    crm_log_level log_level;
    json_t *env_override;
    json_t *flows_json;   /* the flows as loaded (GET /flows) */
    char rev[65];
    crm_flow **flows;
    size_t nflows;
    crm_flow *global_flow;
    crm_group **groups;
    size_t ngroups;
    crm_node **nodes;
    size_t nnodes;
    json_t *node_index;   /* id -> index+1 into nodes (as integer) */
    crm_loop **loops;
    size_t nloops;
    json_t *global_env;   /* from global-config nodes */
    json_t *credentials;  /* node id -> credentials (flows_cred.json), or NULL */
    struct crm_admin_auth *admin_auth; /* settings.adminAuth, or NULL */
    crm_httpd *httpd;
    struct crm_editor *editor; /* the Node-RED editor (runtime/editor), or NULL */
    bool started;
    char *userdir;
    struct crm_ctxstores *stores; /* context stores (context.c) */
    char *flows_path;     /* the flows file a deploy writes, or NULL */
    pthread_mutex_t deploy_mu;   /* one deploy (or stop) at a time */
    /* read-held by admin handlers that look at nodes and flows, write-held
     * while a deploy swaps them (writers first) */
    pthread_rwlock_t nodes_lock;
    bool redeploying;     /* closing nodes for a deploy: their context stays */
    bool stopping;        /* the flows are being stopped (a deploy, a stop): set and read
                           * with __atomic builtins; runaway JavaScript gives up (runtime/js) */
    unsigned deploys;     /* deploys done since start */
    struct crm_comms *comms; /* the editor's /comms, or NULL */
    /* while a partial deploy loads: id -> kept crm_node * and tab id -> its
     * crm_loop * (as integers), else NULL */
    json_t *keep, *keep_loops;
};

/* loop.c */
crm_loop *crm_loop_new(crm_runtime *rt, const char *name);
int crm_loop_start(crm_loop *l);
void crm_loop_stop(crm_loop *l);   /* ask to stop, join */
void crm_loop_free(crm_loop *l);
/* Queue a delivery of msg (stolen) to n's input: on the caller's loop when it
 * is n's loop, else through n's loop inbox. */
void crm_loop_deliver(crm_node *n, json_t *msg);
/* Runs n's input on msg (stolen) now when the caller runs on n's loop (else
 * crm_loop_deliver): Node-RED hands errors and statuses to catch and status
 * nodes with node.receive(), which runs their input at once, so what they
 * send is queued ahead of what the reporting node sends after. */
void crm_loop_deliver_now(crm_node *n, json_t *msg);
/* Run fn on the node's loop (from any thread). */
void crm_loop_post(crm_loop *l, crm_node *n, void (*fn)(crm_node *, void *), void *arg);
crm_loop *crm_loop_current(void);
/* The calling loop's buffer of CRM_LOOP_READ_BUFFER bytes for socket reads
 * (valid until the handler returns); NULL off a loop or out of memory. */
#define CRM_LOOP_READ_BUFFER 65536
unsigned char *crm_loop_read_buffer(void);
/* On a loop's thread, from inside a handler: runs the next delivery queued
 * on the loop now, if the next job is a delivery and the turn's budget
 * allows; false otherwise. For a handler that entered an engine (the
 * JavaScript VM, runtime/js) to run the deliveries behind its own before it
 * leaves it: one entry for many messages. Posted functions, timers and the
 * inbox wait for the loop as usual. */
bool crm_loop_run_next_delivery(void);
/* Releases msg once the running handler returns (at once off a loop). */
void crm_loop_release(json_t *msg);
/* Runs fn(n, arg) on l's thread and waits (controlling thread only). */
void crm_loop_call_sync(crm_loop *l, crm_node *n, void (*fn)(crm_node *, void *), void *arg);
/* Idle: nothing queued and no handler running. */
bool crm_loop_idle(crm_loop *l);
/* A stopped loop (a partial deploy): drops what is queued for closed nodes,
 * so that they can be freed; the rest stays queued. */
void crm_loop_purge_closed(crm_loop *l);
void crm_timers_cancel_node(crm_node *n);
/* A loop's counters for /metrics (any thread, read racily). busy: seconds
 * spent out of poll; inbox lag: from the first message another thread
 * queued into an empty inbox to the loop taking the batch; timer lateness:
 * from a timer's due time to its handler running. */
typedef struct {
    const char *name;
    double busy_s;
    double inbox_lag_sum_s, inbox_lag_max_s;
    uint64_t inbox_batches;
    double timer_late_sum_s, timer_late_max_s;
    uint64_t timers_run;
} crm_loop_stats;
void crm_loop_stats_read(crm_loop *l, crm_loop_stats *out);

/* routing.c */
void crm_route_error(crm_node *n, const json_t *msg, const char *text, bool *handled);
/* As crm_route_error; the members of extra (borrowed object or NULL: an Error's
 * stack, cause) are copied into msg.error beside message and source. */
void crm_route_error_ex(crm_node *n, const json_t *msg, const char *text, const json_t *extra, bool *handled);
/* Is the error an Error object in Node-RED (a stack in extra, or a text
 * reading "<Name>Error: message")? Such errors carry a stack on msg.error and
 * show as error objects in the debug sidebar. */
bool crm_error_is_object(const char *text, const json_t *extra);
/* The stack given to such an error without one (malloc'd): its text, then
 * "    at TYPE (ID)". */
char *crm_error_stack(const crm_node *source, const char *text);
/* An uncaught error (or a warning) that is an Error object: logged as crm_log does, shown
 * in the debug sidebar as Node-RED's encodeObject shows an Error (extra:
 * code, stack, cause; borrowed, may be NULL). */
void crm_log_error_object(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *text,
                          const json_t *extra);
void crm_route_status(crm_node *n, json_t *status);
/* A status reported through n (it is the reporting node, for status nodes'
 * scopes) whose status.source is source (borrowed {id, type, name}). */
void crm_route_status_as(crm_node *n, const json_t *status, const json_t *source);
void crm_route_complete(crm_node *n, const json_t *msg);

/* env.c */
json_t *crm_env_lookup(crm_runtime *rt, crm_node *n, crm_flow *f, crm_group *g, const char *name);
/* creds: the owner's credentials (type "cred" entries take their value
 * from it by name), or NULL. */
json_t *crm_env_eval_list(crm_runtime *rt, crm_node *ctxnode, crm_flow *f, crm_group *g, const json_t *list,
                          const json_t *creds);
/* The credentials of the node with config o: those loaded for its id
 * (template_id for a node inside a subflow instance) with the ones written
 * in o itself winning ("__PWRD__" keeps the loaded value). New reference, or
 * NULL when there are none. */
json_t *crm_credentials_of(const crm_runtime *rt, const json_t *o, const char *template_id);
json_t *crm_env_substitute(crm_runtime *rt, crm_node *n, json_t *config);
/* env-typed value: "${X}" lookups inside a string, or a bare name. */
json_t *crm_env_typed(crm_node *n, const char *value);

/* log.c */
void crm_log(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void crm_vlog(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *fmt, va_list ap);
crm_log_level crm_log_level_parse(const char *s);

/* registry.c */
const crm_node_type *crm_lookup_type(const char *name);
void crm_register_builtins(void);

/* context.c */
/* crm_context_get with [msg.x] parts of the key evaluated against msg. */
json_t *crm_context_get_msg(crm_node *n, crm_scope scope, const char *key, const json_t *msg);
int crm_context_runtime_init(crm_runtime *rt);
void crm_context_node_closed(crm_node *n);
/* For the Admin API's context routes (any thread). The stores' names in
 * Node-RED's order (NULL past the last) and the default store's name. */
const char *crm_context_store_name(crm_runtime *rt, size_t i);
const char *crm_context_default_store(crm_runtime *rt);
/* A deep copy of a context's object (context id: "global", a flow id,
 * crm_context_node_id) in the named store, or NULL when it has none. */
json_t *crm_context_scope_copy(crm_runtime *rt, const char *store, const char *id);
/* A deep copy of the value at key (a property expression) in a context, or
 * NULL when there is none. */
json_t *crm_context_lookup(crm_runtime *rt, const char *store, const char *id, const char *key);
/* Deletes key (a property expression) in a context; -1 for a bad key. */
int crm_context_delete(crm_runtime *rt, const char *store, const char *id, const char *key);
/* Sets (value stolen) or deletes (NULL) key in a context; -1 for a bad key. */
int crm_context_put(crm_runtime *rt, const char *store, const char *id, const char *key, json_t *value);
/* The text (malloc'd, by text_of, under the store's lock) of a context's
 * top-level key (top NULL: of the whole context), or NULL when there is none. */
char *crm_context_text(crm_runtime *rt, const char *store, const char *id, const char *top,
                       char *(*text_of)(const json_t *v));
/* When set (by the companion), called after every change of a context, with
 * the store's lock held: the top-level key changed, or top NULL when the
 * whole context was deleted, or id NULL when the whole store was replaced.
 * It must not call back into the stores. */
extern void (*crm_context_observer)(const char *store, const char *id, const char *top);
/* The id of a node's own context, Node-RED's "<id>:<z>". */
void crm_context_node_id(crm_node *n, char *out, size_t cap);
void crm_context_runtime_close(crm_runtime *rt);
/* Stores whose last write failed: [{store, error, unwritten (scopes),
 * failedWrites (in a row)}] (new reference), NULL when every write worked. */
json_t *crm_context_write_status(crm_runtime *rt);

/* admin.c */
void crm_admin_install(crm_runtime *rt);

void crm_watches_cancel_node(crm_node *n);

/* Thread contracts (carmine.h: "must be called from the node's loop
 * thread"): in builds without NDEBUG, calling send, status, timer or watch
 * functions from another thread once the flows run aborts with the node and
 * the function named, instead of racing the loop. While the flows load
 * (before any loop runs) the calls are allowed, as Node-RED allows
 * node.status() in a constructor. */
void crm_assert_on_loop(const crm_node *n, const char *fn);
#ifndef NDEBUG
#define CRM_ASSERT_ON_LOOP(n) crm_assert_on_loop((n), __func__)
#else
#define CRM_ASSERT_ON_LOOP(n) ((void)0)
#endif
/* Runs fn(arg) once at the end of the current turn of the calling thread's
 * loop, after its deliveries, before it polls again (tcpconn.c batches the
 * turn's writes there: one system call for all of them). false, and fn is
 * not registered, when the calling thread is not a running loop's. */
bool crm_loop_at_turn_end(void (*fn)(void *), void *arg);
/* Frees what path.c keeps per thread (a loop thread ending). */
void crm_path_thread_done(void);

/* runtime.c: a deploy on a running instance (admin.c's POST /flows): flows
 * (borrowed, credentials still inline) are validated, the credentials kept
 * apart and saved with the flows file (when there is one), the running
 * flows stopped and the new ones started while the HTTP server stays up.
 * Context stays. 0, or -1 with the reason in problems and *status the HTTP
 * status to answer (400 refused, 500 could not save or start). */
int crm_runtime_redeploy(crm_runtime *rt, const json_t *flows, const char *type, strbuf *problems, int *status);
/* context.c: drops the memory context of nodes and flows the running
 * flows no longer have (Node-RED's context.clean after a deploy). */
void crm_context_clean(crm_runtime *rt);

crm_httpd *crm_runtime_httpd(crm_runtime *rt);
crm_node *crm_runtime_find(crm_runtime *rt, const char *id);

/* s (n bytes of UTF-8) as a JSON string literal, quoted, as crm_stringify
 * writes strings (value.c): the one JSON string writer. */
void crm_put_json_string(strbuf *sb, const char *s, size_t n);

#endif
