/* runtime.h: the embedding API. The `carmine` command, the `carmine test`
 * runner, benchmarks and the HA supervisor drive whole flows through it,
 * in-process (as Fluent Bit's library mode does).
 *
 * Life cycle: crm_runtime_new -> crm_runtime_load -> crm_runtime_start ->
 * (messages flow on the loop threads) -> crm_runtime_stop -> crm_runtime_free.
 * All functions are called from one controlling thread, except
 * crm_runtime_send and crm_runtime_http_port, which are thread-safe.
 */
#ifndef CRM_RUNTIME_H
#define CRM_RUNTIME_H

#include "carmine.h"
#include "strbuf.h"

typedef struct crm_runtime crm_runtime;

/* Called for every log entry, from whichever thread logs. node_id/node_type
 * are NULL for runtime-level entries. When no hook is set, entries at or
 * above the settings' log level go to stderr as Node-RED formats them. */
typedef void (*crm_log_hook)(void *ctx, crm_log_level lvl, const char *node_id, const char *node_type,
                             const char *text);

/* settings (borrowed, may be NULL): the JSON settings object (port, host,
 * httpNodeRoot, httpAdminRoot, contextStorage, logLevel, userDir, ...).
 * Port 0 picks a free port (tests). Registers the built-in node types on
 * first use. */
crm_runtime *crm_runtime_new(const json_t *settings);
/* The settings object in force (borrowed). */
const json_t *crm_runtime_settings(const crm_runtime *rt);
void crm_runtime_set_log_hook(crm_runtime *rt, crm_log_hook hook, void *ctx);
/* Environment variables seen by the flows in place of the process
 * environment's (env: borrowed object of strings; NULL restores getenv). */
void crm_runtime_set_env(crm_runtime *rt, const json_t *env);

#define CRM_LOAD_IMPLICIT_TAB 1u /* nodes without z run on one implicit tab (flow tests) */
#define CRM_LOAD_CHECK_ONLY 2u   /* validate, create nothing that runs */

/* Loads a flows array (borrowed). Every problem found goes to problems, one
 * line each, naming the node, the field and the reason. Returns 0 when the
 * flows can start, 2 when node types are missing (the lines list each type
 * with the ids of its nodes), 1 for any other refusal. */
int crm_runtime_load(crm_runtime *rt, const json_t *flows, unsigned flags, strbuf *problems);
/* Node-RED's credentials file beside flows_path (flows.json ->
 * flows_cred.json), decrypted with settings.credentialSecret or the key
 * Node-RED generated into userDir/.config.runtime.json: *out gets the
 * object {node id: {...}} (new reference), or NULL when there is no such
 * file. -1 with the reason in err: the flows must not start. */
int crm_credentials_load(const char *flows_path, const json_t *settings, json_t **out, strbuf *err);
/* The flows or credentials file as Node-RED's storage reads it
 * (localfilesystem util.readFile): a UTF-8 byte order mark is skipped; an
 * empty file stands for no flows ([]) or no credentials ({}), or for its
 * backup (.NAME.backup beside it) when that has content, each case logged
 * as a warning in Node-RED's words. NULL with the reason in err when the
 * file cannot be read or is not JSON. */
json_t *crm_storage_read(const char *path, bool creds, char *err, size_t errlen);
/* Before crm_runtime_load: the credentials nodes get as config.credentials
 * (and type "cred" env entries as values); creds is stolen, NULL for none.
 * They never show in GET /flows, as in Node-RED. */
void crm_runtime_set_credentials(crm_runtime *rt, json_t *creds);
/* A deploy: moves the credentials written into the nodes of flows into
 * creds as Node-RED's extract() does ("__PWRD__" keeps a value, an empty one
 * deletes it) and drops those of nodes the flows no longer have. true when
 * creds changed. */
bool crm_credentials_extract(json_t *flows, json_t *creds);
/* Writes creds beside flows_path the way crm_credentials_load reads them:
 * encrypted under credentialSecret or the generated key (made and kept in
 * userDir/.config.runtime.json when missing), plain when credentialSecret is
 * false. -1 with the reason in err. */
int crm_credentials_save(const char *flows_path, const json_t *settings, const json_t *creds, strbuf *err);
/* Initial context before start: scope "global" or "flow" (flow: the
 * implicit or only tab when flow_id is NULL). value borrowed. */
int crm_runtime_context_init(crm_runtime *rt, const char *scope, const char *flow_id, const json_t *value);
/* The flows file POST /flows writes (with its credentials file), or NULL:
 * a deploy then runs the flows without saving them. */
void crm_runtime_set_flows_file(crm_runtime *rt, const char *path);
/* Starts the HTTP server and the loops. 0 or -1 (logged). */
int crm_runtime_start(crm_runtime *rt);
/* Stops inject timers, lets queued messages finish (bounded by
 * settings.nodeCloseTimeout), closes nodes, stops the loops. */
void crm_runtime_stop(crm_runtime *rt);
void crm_runtime_free(crm_runtime *rt);
/* The whole file at path, NUL-terminated ("" when empty), its length in
 * *len when len is not NULL; NULL when it cannot be opened (errno set). */
char *crm_read_file(const char *path, size_t *len);
/* Whether this process has loaded JavaScriptCore (a function node ran). */
bool crm_js_loaded(void);

/* Thread-safe: delivers msg (stolen) to the input of node_id, as a wire
 * would. -1 when no such active node. */
int crm_runtime_send(crm_runtime *rt, const char *node_id, json_t *msg);
/* The port the HTTP server listens on (after start), or 0. */
int crm_runtime_http_port(const crm_runtime *rt);
/* Blocks until every loop is idle (no queued delivery) or timeout_ms passes.
 * Timers still pending do not count as work. Returns 0 when idle. */
int crm_runtime_wait_idle(crm_runtime *rt, int timeout_ms);

/* The runtime a node belongs to (for engine services such as the HTTP server). */
crm_runtime *crm_node_runtime(const crm_node *n);
/* The runtime's HTTP server (httpd.h), created on first use. */
typedef struct crm_httpd crm_httpd;
crm_httpd *crm_runtime_httpd(crm_runtime *rt);

#endif
