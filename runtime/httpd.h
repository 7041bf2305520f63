/* httpd.h: the one HTTP server of a runtime (libmicrohttpd), shared by the
 * Admin API and the routes of `http in` nodes (http.h is the node side).
 *
 * Threading: requests are parsed on libmicrohttpd's threads (or on the
 * flow loop that drives it, httpOnFlowLoop); the admin callback runs on a
 * server thread. Node requests are handed to the node's loop as whole
 * messages and the connection is suspended until a response comes
 * (crm_http_respond), so no thread ever waits on a flow; on the driving
 * loop, a flow that answers at once is answered without suspending.
 */
#ifndef CRM_HTTPD_H
#define CRM_HTTPD_H

#include <jansson.h>
#include <stddef.h>

#include "carmine.h"

typedef struct crm_httpd crm_httpd;

/* settings borrowed (may be NULL): port (0 = pick a free one), host,
 * httpNodeRoot, httpAdminRoot, httpRoot, httpNodeCors, httpNodeAuth {user,
 * pass (bcrypt or plain)}, https {key, cert} (PEM file paths),
 * maxRequestsInFlight (past it: 503, logged), httpRequestTimeout (ms; a
 * request no http response answered gets 504 and a log line; 0 disables),
 * apiMaxLength ("5mb" or a number of bytes), httpThreads (server threads;
 * default one fewer than the cores, 1 to 4), reusePort (SO_REUSEPORT, for
 * replicas), httpPolling ("poll", the default, or "epoll" for many thousands
 * of mostly idle connections), httpHeadersTimeout (ms a connection may take
 * to send a request head, counted from its start or its last answer;
 * default 60000 as Node.js's headersTimeout; 0 disables),
 * httpMaxWaitingConnections (connections waiting for a request head or idle
 * kept alive; past it the oldest is closed; default 1024 with poll, the
 * connection limit with epoll), httpOnFlowLoop (true/false; unset: true on
 * two cores or fewer when httpThreads is not set and the flows start with
 * every http in route on one loop): libmicrohttpd runs
 * without threads of its own, and when every http in route lives on one
 * flow loop that loop drives it and answers a request its flow answers at
 * once right inside the access handler (httpd.c, "Driving from a flow's
 * loop"); no effect with https. The connection limit is maxRequestsInFlight
 * + 1024 within the open-file limit (raised to its hard limit at start);
 * near it, a new connection closes the oldest waiting one (slowloris).
 * Requests with ambiguous framing (two Content-Length or Transfer-Encoding
 * headers, both, a coding other than chunked, a space in a header name) get
 * 400 and the connection is closed, as Node.js does. NULL on a bad setting
 * (logged). */
crm_httpd *crm_httpd_new(const json_t *settings);
/* Listens. 0, or -1 (logged). */
int crm_httpd_start(crm_httpd *h);
/* The port listened on after start, else 0. Thread-safe. */
int crm_httpd_port(const crm_httpd *h);
/* Stops accepting, gives requests in flight a short grace to be answered,
 * answers the rest 503, then stops the server threads. */
void crm_httpd_stop(crm_httpd *h);
/* A deploy swapping the flows: while held, requests for node routes wait
 * (on the server threads) instead of being routed, so a request on a route
 * the new flows keep reaches the new node rather than a 404; admin routes
 * are still answered. Hold and release from the same thread, not a
 * server thread that routes node requests. */
void crm_httpd_hold(crm_httpd *h);
void crm_httpd_release(crm_httpd *h);
/* Stops if needed and frees. NULL is fine. */
void crm_httpd_free(crm_httpd *h);

/* body malloc'd by the handler, freed by httpd. content_type is NOT freed:
 * point it at a static string. */
typedef struct {
    int status;
    char *content_type;
    char *body;
    size_t len;
    const char *www_authenticate; /* static, or NULL */
    bool error_page;              /* body is the message of an Express error page (HTML) */
    bool file;                    /* the body is file_fd's first len bytes (body NULL); httpd closes it */
    int file_fd;
    char *headers;                /* malloc'd "Name: value\r\n" lines added to the answer (ETag, Location), or NULL */
} crm_admin_reply;
/* path: below httpAdminRoot, starting with "/", without the query string;
 * query: what follows the "?" ("" when none), not decoded. headers: object,
 * lower-case names (borrowed). */
typedef void (*crm_admin_fn)(void *ctx, const char *method, const char *path, const char *query,
                             const json_t *headers, const char *body, size_t len, crm_admin_reply *reply);
/* Called on the server thread; reply->status 0 means "no such admin route":
 * the request falls through to node routes / 404. Whether fn answers must
 * depend on method and path only: the server remembers the ones it declined
 * and does not ask again. */
/* Fills reply with status and body (stolen) as compact JSON. */
void crm_admin_reply_json(crm_admin_reply *reply, int status, json_t *body);
void crm_httpd_set_admin(crm_httpd *h, crm_admin_fn fn, void *ctx);
/* The Admin API's /context routes (admin_context.c): true when path is one
 * of them (then reply holds the answer). Any server thread. */
struct crm_runtime;
bool crm_admin_context(struct crm_runtime *rt, const char *method, const char *path, const char *query,
                       crm_admin_reply *reply);

/* Where the server's own log lines go (503/504, TLS files, bind errors);
 * called from any thread. Default: stderr. */
typedef void (*crm_httpd_log_fn)(void *ctx, crm_log_level lvl, const char *text);
void crm_httpd_set_log(crm_httpd *h, crm_httpd_log_fn fn, void *ctx);

/* The normalised roots ("/", "/api/"), or NULL when disabled (false). */
const char *crm_httpd_node_root(const crm_httpd *h);
const char *crm_httpd_admin_root(const crm_httpd *h);

/* Upgrades: fn is asked, on an HTTP server thread, about every GET request
 * with an Upgrade header (path without the query). It returns NULL to let
 * the request be answered as usual, or a response (usually one made with
 * MHD_create_response_for_upgrade) and its *status, which is queued as the
 * answer. One handler per process (the WebSocket listeners' table). */
struct MHD_Connection;
struct MHD_Response;
typedef struct MHD_Response *(*crm_httpd_upgrade_fn)(struct MHD_Connection *c, const char *path, unsigned *status);
void crm_httpd_set_upgrade_handler(crm_httpd_upgrade_fn fn);

/* Called first thing in an upgrade callback (MHD_UpgradeHandler): over
 * https, gives libmicrohttpd 0.9.75's forwarding between the TLS
 * connection and the application's socket its buffers (httpd_conn.c). */
struct MHD_UpgradeResponseHandle;
void crm_httpd_upgrade_buffers(struct MHD_Connection *c, struct MHD_UpgradeResponseHandle *urh);

/* Proxied paths (the routes hosted nodes add, runtime/companion/proxy.c):
 * a request that no admin or node route answers, whose path (without the
 * query) match accepts, is suspended and a copy of it handed to fn on the
 * server thread; fn owns it (free()) and must not block. The answer comes
 * from any thread through crm_httpd_proxy_answer; unanswered, the request
 * gets 504 after httpRequestTimeout as node requests do. One pair per
 * process (NULLs: none). */
typedef struct {
    crm_httpd *h;
    long long id;              /* for crm_httpd_proxy_answer */
    const char *method, *uri;  /* the uri raw, with its query */
    const char *headers;       /* nheaders lower-case name\0value\0 pairs, in the client's order */
    size_t nheaders;
    const char *body;          /* len bytes (NUL after them) */
    size_t len;
    char ip[56];               /* the client's address, as req.ip */
    bool upgrade;              /* a GET with an Upgrade header */
    bool tls;                  /* the server speaks https */
    char data[];
} crm_httpd_proxy_req;
typedef bool (*crm_httpd_proxy_match_fn)(const char *path);
typedef void (*crm_httpd_proxy_fn)(crm_httpd_proxy_req *req);
void crm_httpd_set_proxy(crm_httpd_proxy_match_fn match, crm_httpd_proxy_fn fn);
/* Answers request id with resp (consumed either way; an upgrade response
 * from MHD_create_response_for_upgrade too). 0, or -1 when the request is
 * gone (answered 504, its client closed, the server stopping). */
int crm_httpd_proxy_answer(crm_httpd *h, long long id, unsigned status, struct MHD_Response *resp);
/* The server's own 404 page ("Cannot GET /x"), for crm_httpd_proxy_answer. */
struct MHD_Response *crm_httpd_not_found(const char *method, const char *path);

#endif
