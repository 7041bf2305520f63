/* companion_int.h: between the companion's own files (not for nodes). */
#ifndef CRM_COMPANION_INT_H
#define CRM_COMPANION_INT_H

#include <jansson.h>

/* The prefix of the pseudo node ids companion.js routes back to Carmine. */
#define CRM_COMPANION_PSEUDO "\x01" "carmine:"
/* An http in message's msg.res crosses as {RES_TOKEN: id} and becomes the
 * live handle again when it comes back, so a native http response node
 * answers a request whose message went through hosted nodes. */
#define CRM_COMPANION_RES_TOKEN CRM_COMPANION_PSEUDO "res"
/* NaN, Infinity and -Infinity, which JSON has no text for, cross in messages
 * as {NUM_TOKEN: "NaN"} (String(n)) both ways, and are numbers again on the
 * other side, as a message between Node-RED's nodes keeps them. */
#define CRM_COMPANION_NUM_TOKEN CRM_COMPANION_PSEUDO "num"
/* A Buffer crosses as {BUF_TOKEN: "base64"} both ways; a plain object shaped
 * like a Buffer's JSON ({"type":"Buffer","data":[..]}) stays a plain object,
 * as a message between Node-RED's nodes keeps it. */
#define CRM_COMPANION_BUF_TOKEN CRM_COMPANION_PSEUDO "buf"

/* The companion's part of the flows (borrowed, copied) for the next start. */
void crm_companion_set_part(const json_t *flows, const json_t *creds, const char *userdir);
/* Where things are (malloc'd), or NULL when missing: $CARMINE_NODE or node
 * on PATH; $CARMINE_COMPANION_JS or the source tree's / installed
 * companion.js; $CARMINE_COMPANION_MODULES or .deps/companion/node_modules. */
char *crm_companion_node_path(void);
char *crm_companion_script_path(void);
char *crm_companion_modules_path(void);
/* Modules listed in userdir/package.json but missing from node_modules (NEW array). */
json_t *crm_companion_missing_modules(const char *userdir);

#include "carmine.h"
#include "runtime.h"
#include "strbuf.h"
/* Queues one line (copied; ends in '\n') for the companion, from any bridge. */
void crm_companion_queue(crm_node *from, char *line, size_t len);
/* The first bridge to start owns the process; the owner's close stops it. */
void crm_companion_start(crm_node *n);
void crm_companion_stop(crm_node *n);
/* Posts one flush to the owner's loop (any thread), unless one is posted. */
void crm_companion_kick(void);
/* The tokens (companion_int.h) made values again: Buffers, NaN/Infinity,
 * msg.res (v stolen, result new). */
json_t *crm_companion_revive(json_t *v);
/* A value as the companion reads it: JSON text with the tokens (bridge.c);
 * crm_companion_text is malloc'd, NULL for NULL (undefined). */
void crm_companion_put(strbuf *sb, const json_t *v);
char *crm_companion_text(const json_t *v);
/* A Buffer from base64 text (NEW). */
json_t *crm_companion_unbase64(const char *s, size_t n);

/* One context (ctx.c). The context ids the companion's part reaches: */
void crm_companion_ctx_scopes(const json_t *part);
/* At a start: observing on, and the copy for the flows line (NEW). */
json_t *crm_companion_ctx_hello(crm_runtime *rt);
void crm_companion_ctx_stop(void);
/* Appends the pushes of the changes since the last call (owner's loop). */
void crm_companion_ctx_take(crm_runtime *rt, strbuf *out);
/* A write from the companion ({"t":"cs"}; owner's loop). */
void crm_companion_ctx_apply(crm_runtime *rt, const json_t *m);

/* proxy.c: the routes hosted nodes add, through Carmine's port. The
 * listening socket for the companion's HTTP server (started with the proxy
 * thread on first use), or -1. */
struct crm_runtime;
int crm_companion_proxy_listen_fd(struct crm_runtime *rt);
/* The path prefixes the companion serves ({"t":"http"}; NULL: none). */
void crm_companion_proxy_prefixes(const json_t *list);
/* Stops the thread, closes and removes the socket. */
void crm_companion_proxy_stop(void);
/* The companion's flows run (its "ready" line): requests held while it
 * started (any path Carmine does not answer) go on, to it when under one of
 * its prefixes, else Carmine's 404. */
void crm_companion_proxy_ready(void);

#endif
