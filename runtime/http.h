/* http.h: the HTTP server as node types see it: `http in` registers routes,
 * `http response` answers them; plugins may do the same.
 *
 * A request on a route becomes a message delivered on the node's loop:
 *   { req: {headers, params, query, cookies, method, url, originalUrl, path,
 *           baseUrl, ip, hostname, protocol, body?, files?},
 *     res: <live handle>, payload: req.query (GET) or req.body (others) }
 * The connection stays suspended until crm_http_respond() answers the
 * handle (or httpRequestTimeout passes: 504). Copies of the message share
 * the handle, so whichever copy reaches a response node answers.
 */
#ifndef CRM_HTTP_H
#define CRM_HTTP_H

#include <stdbool.h>

#include "carmine.h"
#include "carmine_api.h"

CRM_BEGIN_DECLS

typedef struct crm_httpd crm_httpd; /* opaque: the runtime's HTTP server */
/* The server a node belongs to (NULL outside a runtime). */
crm_httpd *crm_node_httpd(const crm_node *n);

/* Route flags. */
#define CRM_HTTP_RAW_BODY 1u /* skipBodyParsing: exact-path requests get the raw body as a Buffer */
#define CRM_HTTP_UPLOAD 2u   /* accept multipart/form-data uploads (POST): req.files */

/* Runs on n's loop with the request message (stolen). */
typedef void (*crm_http_request_fn)(crm_node *n, json_t *msg);

/* Adds a route for n: method "get", "post", "put", "delete" or "patch"
 * (any case); pattern is an Express path ("/user/:id", "/files/ *" without the space) relative
 * to httpNodeRoot, matched case-insensitively with an optional trailing
 * slash. Thread-safe (routes may change while the server runs).
 * Returns 0; -1 on a bad method or pattern; -2 when httpNodeRoot is false
 * (node routes are disabled); -3 when n has no server. */
CRM_API int crm_http_route_add(crm_node *n, const char *method, const char *pattern, unsigned flags,
                       crm_http_request_fn on_request);
/* Removes every route of n. Once it returns, no new request is handed to n. */
CRM_API void crm_http_route_remove(crm_node *n);

/* Response flags. */
#define CRM_HTTP_ETAG 1u /* add a weak ETag as Express does, and answer 304 to a matching If-None-Match */

/* Answers the request behind res_handle (the msg.res handle, borrowed):
 * status, headers (borrowed object: name -> string, or array of strings for
 * a header sent several times, e.g. Set-Cookie), and body (copied). Any
 * thread. Returns 0, or -1 when the handle is not a pending request (already
 * answered, timed out, or not a handle). */
CRM_API int crm_http_respond(crm_node *n, const json_t *res_handle, int status, const json_t *headers, const void *body,
                     size_t len, unsigned flags);

/* Content types as Express writes them (malloc'd results):
 * crm_http_set_charset: res.send's setCharset(type, "utf-8"), which lower-cases
 * the type and sets or replaces the charset parameter;
 * crm_http_type_for_set: res.set("Content-Type", type), which appends
 * "; charset=utf-8" to text/ *, application/json and application/javascript
 * types that carry no charset. */
CRM_API char *crm_http_set_charset(const char *type);
CRM_API char *crm_http_type_for_set(const char *type);

/* Query strings as the qs module parses them (Express's req.query):
 * repeated keys give arrays, a[b]=c objects, a[]=x arrays. New object. */
CRM_API json_t *crm_http_parse_query(const char *qs, size_t len);

CRM_END_DECLS

#endif
