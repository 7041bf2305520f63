/* carmine.h: the node API. Every node type, built-in (nodes/) or plugin
 * (a shared library), is written against this header alone.
 *
 * Threading: each flow (tab) runs on its own event-loop thread. Every callback
 * of a node (create excepted) runs on that node's loop thread, one at a time,
 * so a node's own state needs no lock. Functions here must be called from the
 * node's loop thread unless they say otherwise.
 *
 * Ownership (jansson's words): a function returning json_t* returns a NEW
 * reference unless it says "borrowed"; a parameter documented as "stolen"
 * takes over the caller's reference.
 *
 * Values follow JavaScript (value.h): numbers are reals, a Buffer is
 * crm_buf_new(), NULL stands for `undefined`.
 *
 * Plugins: install Carmine, then `cc -shared -fPIC $(pkg-config --cflags
 * carmine) x.c -o x.so`; do NOT link the engine, the carmine executable
 * provides every function declared here. docs/plugins.md is the guide.
 */
#ifndef CARMINE_H
#define CARMINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"
#include "carmine_api.h"

CRM_BEGIN_DECLS

#define CRM_ABI_VERSION 1

typedef struct crm_node crm_node;
typedef struct crm_timer crm_timer;
typedef struct crm_watch crm_watch;
typedef struct crm_path crm_path;
typedef struct crm_typed crm_typed;

typedef enum { CRM_LOG_TRACE, CRM_LOG_DEBUG, CRM_LOG_INFO, CRM_LOG_WARN, CRM_LOG_ERROR } crm_log_level;
typedef enum { CRM_SCOPE_NODE, CRM_SCOPE_FLOW, CRM_SCOPE_GLOBAL } crm_scope;

/* A node type. Register one with crm_register_type(); a plugin library
 * exports `int carmine_plugin_abi(void)` (returning CRM_ABI_VERSION) and
 * `const crm_node_type *const *carmine_plugin_types(void)` returning a
 * NULL-terminated list, optionally `int carmine_plugin_init(void)` (non-zero:
 * failed); plugins.h has the rules. A descriptor must outlive the process
 * (static storage): the registry keeps its address. `abi` and `type` stay the
 * first two fields in every ABI version, so a loader can read them from a
 * plugin built for another one. */
typedef struct crm_node_type {
    int abi;          /* CRM_ABI_VERSION */
    const char *type; /* the Node-RED type name, e.g. "change" (static string) */
    /* Called while the flows load, before any loop runs (so on the loading
     * thread). Read and validate the config (borrowed, env already
     * substituted), compile what can be compiled, keep state with
     * crm_node_set_data(). On a bad config call crm_node_config_error() and
     * return -1: the flows are refused before anything starts. May be NULL. */
    int (*create)(crm_node *n, const json_t *config);
    /* Called on the loop thread once every node of every flow exists, before
     * any message flows: start timers here (inject's "once"). May be NULL. */
    void (*start)(crm_node *n);
    /* A message arrives. msg is stolen: send it on, or json_decref it.
     * Call crm_node_done(n, msg) where Node-RED's node calls done() (not at
     * all when its handler takes only msg), before returning.
     * NULL for nodes without an input. */
    void (*input)(crm_node *n, json_t *msg);
    /* The flow stops: cancel timers, free the state. Pending timers are
     * cancelled by the engine afterwards anyway. May be NULL. */
    void (*close)(crm_node *n);
    /* CRM_TYPE_* flags. */
    unsigned flags;
} crm_node_type;

/* The type copies `name` from its config even when it is "" (Node-RED's
 * delay does `this.name = n.name`), so error and status sources carry it. */
#define CRM_TYPE_KEEPS_NAME 1u

/* Registry ---------------------------------------------------------------- */

/* Adds a type to the process-wide registry. Returns 0 (also when this very
 * descriptor is already registered), or -1 when the name is taken or the ABI
 * differs. Call before loading flows; thread-safe. Plugins do not call it:
 * the loader registers what carmine_plugin_types() lists. */
CRM_API int crm_register_type(const crm_node_type *t);

/* Identity ------------------------------------------------------------------ */

/* Strings are borrowed and live as long as the node. Any thread. */
CRM_API const char *crm_node_id(const crm_node *n);
CRM_API const char *crm_node_type_name(const crm_node *n);
CRM_API const char *crm_node_name(const crm_node *n); /* "" when unnamed */
/* The number of outputs as routing sees it (the length of `wires`). */
CRM_API int crm_node_outputs(const crm_node *n);
/* The node's state pointer (NULL until set); the node owns what it points
 * to and frees it in close(). */
CRM_API void *crm_node_data(const crm_node *n);
CRM_API void crm_node_set_data(crm_node *n, void *data);

/* Config --------------------------------------------------------------------- */

/* Reading a node's config (the borrowed object create() gets, with ${ENV}
 * already substituted). These only read cfg: any thread.
 * Borrowed string for key, or def when absent / not a string. */
CRM_API const char *crm_cfg_str(const json_t *cfg, const char *key, const char *def);
/* A number or numeric string (JavaScript Number()); def when absent or "". */
CRM_API double crm_cfg_num(const json_t *cfg, const char *key, double def);
/* true, "true"; false, "false"; def otherwise. */
CRM_API bool crm_cfg_bool(const json_t *cfg, const char *key, bool def);
/* Report a config problem naming the field; create() then returns -1.
 * Only from create(). */
CRM_API void crm_node_config_error(crm_node *n, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* True while `carmine check` loads the flows: nothing will run, so a node
 * whose code would only fail at start (a function body that does not
 * compile) reports it as a config error then. */
CRM_API bool crm_node_checking(const crm_node *n);

/* Messages -------------------------------------------------------------------- */

/* Sends msg (stolen; must be an object) on output port (0-based; a port
 * without wires just drops it). The first destination gets msg itself,
 * each further one a deep copy (Node-RED's clone rule). A msg without
 * _msgid gets a fresh one. Delivery is asynchronous and FIFO: receivers run
 * after the current handler returns, so msg stays valid (and may still be
 * passed to crm_node_done) until then, even when no wire takes it. */
CRM_API void crm_node_send(crm_node *n, int port, json_t *msg);
/* Sends one message per port in a single send() call: msgs[i] (stolen, may be
 * NULL) goes to port i; messages without _msgid share one new id. */
CRM_API void crm_node_send_ports(crm_node *n, json_t **msgs, int nports);
/* Delivers msg (stolen) straight to target's input, as node.receive() does
 * (an inject button, a link call). Thread-safe: from another loop or thread
 * the delivery is queued to the target's loop. */
CRM_API void crm_node_receive(crm_node *target, json_t *msg);
/* The message msg (borrowed) is done: fires complete nodes watching n. Call
 * it where Node-RED calls done(), even after msg was sent. */
CRM_API void crm_node_done(crm_node *n, const json_t *msg);
/* A new 16-hex-char id, as RED.util.generateId(); buf holds 17 bytes. */
CRM_API char *crm_make_id(char *buf);

/* Node's util.inspect(v, {depth}) as text, malloc'd: what Node-RED shows
 * of a value in a status or a console line ("{ a: 1, b: 'x' }"). NULL
 * (undefined) gives "undefined". Node's default depth is 2. */
CRM_API char *crm_inspect(const json_t *v, int depth);

/* The message of the SyntaxError JSON.parse(text) throws, as Node 20 words
 * it ("Unexpected token 'b', \"b\" is not valid JSON"), malloc'd; NULL
 * when text is valid JSON. */
CRM_API char *crm_json_error(const char *text, size_t len);
/* The same, as Node-RED shows the thrown error: "SyntaxError: ...", never
 * NULL (for text known to be invalid). */
CRM_API char *crm_json_syntax_error(const char *text, size_t len);
/* The same wording for an unexpected character at byte pos, whatever it
 * is (how body-parser reports a body that starts with neither { nor [). */
CRM_API char *crm_json_token_error(const char *text, size_t len, size_t pos);

/* Errors, status, log ------------------------------------------------------------ */

/* node.error(text, msg): with msg (borrowed) the error goes to catch nodes
 * (and is logged only when none caught it); without msg it is only logged.
 * For a bad message, not for a bad config (crm_node_config_error). */
CRM_API void crm_node_error(crm_node *n, const json_t *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* node.error(err, msg) for an error that carries more than its text (Node's
 * code, stack, a cause): extra's keys (borrowed, may be NULL) go on
 * msg.error beside message and source, as Node-RED copies an Error's own
 * properties. Otherwise as crm_node_error. */
CRM_API void crm_node_error_with(crm_node *n, const json_t *msg, const char *text, const json_t *extra);
CRM_API void crm_node_log(crm_node *n, crm_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define crm_node_warn(n, ...) crm_node_log((n), CRM_LOG_WARN, __VA_ARGS__)
/* node.warn(err) / node.log(err) with an Error object: logged as text (its
 * String()), shown in the editor's debug sidebar as an Error at WARN and
 * ERROR (extra: its code, stack, cause; borrowed, may be NULL). */
CRM_API void crm_node_log_error(crm_node *n, crm_log_level lvl, const char *text, const json_t *extra);
/* node.status({fill, shape, text}) (strings copied; NULL leaves a field
 * out); all NULL clears it, as node.status({}). Status nodes see it. */
CRM_API void crm_node_status(crm_node *n, const char *fill, const char *shape, const char *text);

/* Timers ------------------------------------------------------------------------------- */

typedef void (*crm_timer_fn)(crm_node *n, void *arg);
/* Calls fn on the node's loop after delay_ms, counted from crm_loop_now(),
 * then every repeat_ms when repeat_ms > 0. Times are milliseconds
 * (fractions allowed; negative is 0).
 * The handle belongs to the engine: it is valid until the one-shot timer
 * fires or until it is cancelled. arg is the caller's (never freed). */
CRM_API crm_timer *crm_timer_start(crm_node *n, double delay_ms, double repeat_ms, crm_timer_fn fn, void *arg);
/* Calls fn once on the node's loop when the clock of crm_loop_now() (and
 * crm_now_ms(): the same monotonic milliseconds) reaches due_ms; a time
 * already past fires on the loop's next turn. For code that keeps its own
 * absolute due times. */
CRM_API crm_timer *crm_timer_start_at(crm_node *n, double due_ms, crm_timer_fn fn, void *arg);
/* Cancels a pending timer (NULL is fine). A one-shot timer that fired is
 * already gone: do not cancel it afterwards. */
CRM_API void crm_timer_cancel(crm_timer *t);
/* Cancels every pending timer of n. */
CRM_API void crm_timers_cancel_all(crm_node *n);
/* Monotonic milliseconds, and wall-clock milliseconds since the epoch.
 * Any thread. */
CRM_API double crm_now_ms(void);
CRM_API double crm_wall_ms(void);
/* The clock crm_timer_start counts from: on a loop, the moment the loop's
 * current turn began, or, when something woke it from sleep (a message
 * from another thread, a timer), the moment it was woken rather than the
 * later moment the kernel ran it. Like Node's loop time, it stands still
 * during a turn. Elsewhere it is crm_now_ms(). */
CRM_API double crm_loop_now(void);

/* File descriptors -------------------------------------------------------------------- */

/* Sockets, pipes, pidfds, inotify: the loop polls them beside its own
 * descriptors, so a node waits for I/O without blocking its loop.
 * events and the handler's revents are poll(2)'s (POLLIN, POLLOUT, POLLHUP,
 * POLLERR). fn runs on n's loop whenever fd is ready, until the watch is
 * cancelled; keep fd non-blocking. Call from n's loop (start, input, a
 * timer or another watch's handler). The watch does not own fd: close it
 * after cancelling. Close cancels a node's watches anyway. */
typedef void (*crm_watch_fn)(crm_node *n, int fd, unsigned revents, void *arg);
CRM_API crm_watch *crm_watch_fd(crm_node *n, int fd, unsigned events, crm_watch_fn fn, void *arg);
/* Changes what a watch waits for (e.g. add POLLOUT while output is queued). */
CRM_API void crm_watch_events(crm_watch *w, unsigned events);
/* Stops a watch (NULL is fine); its handler is not called again. */
CRM_API void crm_watch_cancel(crm_watch *w);

/* Property expressions (msg.a.b[0]["c d"], §2.9) ------------------------------------- */

/* Compiles a property expression (a leading "msg." is accepted and dropped).
 * NULL and *err (malloc'd, "Invalid property expression: ...") on error.
 * The path functions touch only their arguments: any thread. Compile once in
 * create(), free in close(). */
CRM_API crm_path *crm_path_parse(const char *expr, char **err);
CRM_API void crm_path_free(crm_path *p);
/* The value at p in root (borrowed), or NULL when missing. msg is the message
 * for nested msg.x keys (usually root). *throws is set when the walk went
 * through undefined/null (JavaScript would throw a TypeError). `.length` and
 * [i] on strings, arrays and Buffers work too; those derived values live in a
 * 16-slot per-thread ring, so such a result stays valid for the next 16 reads. */
CRM_API json_t *crm_path_get(const crm_path *p, const json_t *root, const json_t *msg, bool *throws);
/* Sets (value stolen) or deletes (value NULL) the property; missing
 * intermediates are created when create_missing. Returns 0, -1 when a
 * primitive is in the way, -2 when a nested msg.x key is undefined. */
CRM_API int crm_path_set(const crm_path *p, json_t *root, const json_t *msg, json_t *value, bool create_missing);
/* Node-RED's normalisePropertyExpression(expr, msg, true): evaluates nested
 * [msg.x] references and rebuilds the key as a["b"][0] (for context keys).
 * Malloc'd, or NULL with *err when a reference is undefined. */
CRM_API char *crm_path_resolve_key(const char *expr, const json_t *msg, char **err);
/* Shorthands parsing expr each time (not for hot paths). */
CRM_API json_t *crm_msg_get(const json_t *msg, const char *expr); /* borrowed */
CRM_API int crm_msg_set(json_t *msg, const char *expr, json_t *value);

/* Context and env ------------------------------------------------------------------------- */

/* Reads key (a property expression, may carry "#:(store)::") of scope. NEW
 * reference or NULL. The value may be the store's own: do not modify it
 * (crm_deep_copy first). Thread-safe for global scope. */
CRM_API json_t *crm_context_get(crm_node *n, crm_scope scope, const char *key);
/* Sets (value stolen: do not modify it afterwards) or deletes (NULL).
 * Returns 0 or -1. */
CRM_API int crm_context_set(crm_node *n, crm_scope scope, const char *key, json_t *value);
/* Keys of a scope, as a new array of strings (store NULL: the default). */
CRM_API json_t *crm_context_keys(crm_node *n, crm_scope scope, const char *store);
/* Env lookup as node.env / $env() (§5.3): NEW reference or NULL. */
CRM_API json_t *crm_node_env(crm_node *n, const char *name);

/* Typed values (TypedInput: value + type, §2.10) --------------------------------------------- */

/* Compiles once (json parsed, num converted, jsonata compiled, msg paths
 * parsed, env read for tot=env). NULL and *err (malloc'd) on a bad value.
 * value is the raw config value (borrowed). Types: str num bool json bin
 * date env msg flow global jsonata re; others evaluate to the raw value.
 * This is also how a node evaluates a JSONata expression: type "jsonata".
 * Call from create() (or the loop); free in close(). */
CRM_API crm_typed *crm_typed_new(crm_node *n, const char *type, const json_t *value, char **err);
CRM_API void crm_typed_free(crm_typed *t);
CRM_API const char *crm_typed_type(const crm_typed *t);
/* Evaluates against msg (borrowed). 0 with *out a NEW reference (NULL means
 * undefined), or -1 with *err malloc'd. */
CRM_API int crm_typed_eval(crm_node *n, const crm_typed *t, const json_t *msg, json_t **out, char **err);
/* For jsonata typed values: bind extra variables ($I, $N, $A) for one call. */
CRM_API int crm_typed_eval_with(crm_node *n, const crm_typed *t, const json_t *msg, json_t *vars /*borrowed object or NULL*/,
                        json_t **out, char **err);

/* Looking up other nodes ------------------------------------------------------------------------ */

/* The active node with this id (own flow first, then every flow), or NULL.
 * Borrowed; valid while the flows run. Calling into a node of another flow
 * from here is only safe through crm_node_receive / crm_node_post. */
CRM_API crm_node *crm_node_find(crm_node *from, const char *id);
/* Same flow (tab or subflow instance)? */
CRM_API bool crm_node_same_flow(const crm_node *a, const crm_node *b);
/* Whether n sits inside a subflow instance. */
CRM_API bool crm_node_in_subflow(const crm_node *n);
/* Calls fn for every active node of the given type, now, on this thread. */
CRM_API void crm_each_node_of_type(crm_node *from, const char *type, void (*fn)(crm_node *n, void *arg), void *arg);

/* Running a function on a node's loop from any thread (HTTP server threads,
 * curl callbacks): fn(n, arg) runs later on n's loop. Thread-safe. If the
 * node has closed (or the flows stop) before it runs, fn is not called: use
 * crm_node_post_ex to free arg then. */
CRM_API void crm_node_post(crm_node *n, void (*fn)(crm_node *n, void *arg), void *arg);
/* As crm_node_post; drop(arg) runs instead of fn (on whichever thread
 * discards the job) when the node closed before fn could run. */
CRM_API void crm_node_post_ex(crm_node *n, void (*fn)(crm_node *n, void *arg), void (*drop)(void *arg), void *arg);

/* Whether a complete node watches n (so done() for a message matters). */
CRM_API bool crm_node_watched(const crm_node *n);
/* The runtime's settings object (borrowed): httpRequestTimeout, limits... */
CRM_API const json_t *crm_node_settings(const crm_node *n);
/* Whether this process holds the run-once lease (docs/ha.md): of several
 * replicas of the same flows only the holder should fire timed sources
 * (inject's repeat and crontab). Cheap, non-blocking; true without HA. */
CRM_API bool crm_node_holds_lease(const crm_node *n);

CRM_END_DECLS

#endif
