/* httpclient.h: the shared HTTP client (libcurl multi interface) behind the
 * `http request` node, plus the JavaScript-compatible helpers that node needs
 * (mustache rendering, hash-sum, querystring, cookie parsing, URL clean-up).
 *
 * One I/O thread per process runs every transfer. It starts (and libcurl is
 * initialised, which costs ~5.6 MB RSS) only when the first group is created,
 * that is when a flow holds an http request node, and stops when the last
 * group closes. Callers never block: crm_http_submit queues the transfer and
 * wakes the thread; the completion callback runs on the client thread and is
 * expected to hand the result to a loop (crm_node_post) at once.
 */
#ifndef CRM_HTTPCLIENT_H
#define CRM_HTTPCLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Transfers -------------------------------------------------------------- */

typedef enum { CRM_HTTP_AUTH_NONE, CRM_HTTP_AUTH_DIGEST } crm_http_auth;

/* TLS options, as a tls-config node holds them (every field may be NULL/0). */
typedef struct crm_tls_options {
    bool verify;        /* verify the server certificate (verifyservercert) */
    char *ca_file, *cert_file, *key_file;  /* PEM file paths */
    char *ca_pem, *cert_pem, *key_pem;     /* PEM data (uploaded files) */
    char *passphrase;
    char *servername;   /* SNI / name to verify, unused when NULL */
    char *alpn;         /* unused by curl beyond h1/h2 negotiation */
} crm_tls_options;

/* Proxy options, as an http proxy config node holds them. */
typedef struct crm_proxy_options {
    char *url;          /* "http://host:port" */
    char *user, *password;
    char *noproxy;      /* comma-separated hosts */
} crm_proxy_options;

/* One request. Everything is borrowed and copied by crm_http_submit. */
typedef struct crm_http_spec {
    const char *method;       /* upper-case token: GET, POST, HEAD, PATCH, ... */
    const char *url;          /* absolute http(s) URL, already percent-encoded */
    const json_t *headers;    /* object: name -> string or array of strings,
                                 sent with the names' case as given */
    const void *body;         /* NULL: no body */
    size_t body_len;
    double timeout_ms;        /* whole request; <= 0: none */
    double max_body;          /* bytes of response body kept; past it the
                                 transfer stops with err_code "ERR_BODY_TOO_LARGE";
                                 <= 0: no limit */
    bool follow_redirects;
    int max_redirects;
    bool keepalive;           /* keep idle connections for long (persist) */
    const char *cookie;       /* "a=1; b=2" sent with the first hop, or NULL */
    crm_http_auth auth;
    const char *user, *password; /* for CRM_HTTP_AUTH_DIGEST */
    int reject_unauthorized;  /* -1: default (verify), 0: no, 1: yes */
    const crm_tls_options *tls;
    const crm_proxy_options *proxy; /* NULL: the http(s)_proxy environment */
} crm_http_spec;

/* What came back. On a transport error err_code is set ("ECONNREFUSED",
 * "ETIMEDOUT", ...) and err_text holds the text Node-RED's client library
 * would give as String(err) ("RequestError: connect ECONNREFUSED 127.0.0.1:1"). */
typedef struct crm_http_result {
    const char *err_code;     /* NULL on success (static string) */
    char *err_text;
    long status;              /* of the final response, 0 if none */
    json_t *headers;          /* final response headers as Node's
                                 IncomingMessage.headers: lower-case names,
                                 set-cookie an array, repeats joined */
    json_t *hops;             /* [{status, headers}] of the responses before
                                 the final one (redirects, 401 challenges) */
    unsigned char *body;
    size_t body_len;
    char *url;                /* the final URL */
} crm_http_result;

void crm_http_result_free(crm_http_result *r);

/* A group holds the transfers of one owner (a node): closing it cancels them. */
typedef struct crm_http_group crm_http_group;

/* Called on the client thread; takes ownership of res. */
typedef void (*crm_http_done_fn)(crm_http_result *res, void *arg);

/* Creates a group, starting the client thread if it is not running. NULL on
 * failure (libcurl could not start). */
crm_http_group *crm_http_group_new(void);
/* Queues a request (thread-safe, never blocks on I/O). fn(res, arg) runs once,
 * on the client thread, unless the group is closed first. Returns 0, or -1
 * with *err malloc'd when the request cannot even be built (bad URL). */
int crm_http_submit(crm_http_group *g, const crm_http_spec *spec, crm_http_done_fn fn, void *arg, char **err);
/* Cancels every pending transfer of g and frees g. After it returns no
 * callback of g runs; drop(arg) is called here for each transfer that will
 * never complete (drop may be NULL). The last group to close stops the
 * client thread. */
void crm_http_group_close(crm_http_group *g, void (*drop)(void *arg));
/* Transfers queued or running, over all groups (for tests and metrics). */
size_t crm_http_in_flight(void);

/* TLS / proxy option helpers (for tls-config / http proxy config nodes) ----- */

/* Reads a Node-RED tls-config node's config (cert, key, ca, verifyservercert,
 * servername, alpnprotocol; credentials.certdata/keydata/cadata/passphrase).
 * Returns 0 or -1 with *err malloc'd. */
int crm_tls_options_from_config(crm_tls_options *o, const json_t *cfg, char **err);
void crm_tls_options_clear(crm_tls_options *o);
/* Reads an "http proxy" config node (url, noproxy[], credentials.username/password). */
int crm_proxy_options_from_config(crm_proxy_options *o, const json_t *cfg, char **err);
void crm_proxy_options_clear(crm_proxy_options *o);

/* JavaScript-compatible helpers (httpclient_util.c) ------------------------ */

/* mustache.render(tmpl, view): {{x}} HTML-escaped as mustache.js does,
 * {{{x}}} and {{& x}} raw, dotted names, sections, inverted sections,
 * comments, set-delimiter tags. Returns a malloc'd string, or NULL with
 * *err malloc'd ("Unclosed tag", "Unclosed section \"x\"") for a bad template. */
char *crm_mustache_render(const char *tmpl, const json_t *view, char **err);
/* The npm hash-sum of a value (8+ lowercase hex chars); buf holds 17 bytes. */
char *crm_hash_sum(const json_t *v, char *buf);
/* Node-RED's x-node-red-request-node check: msg.headers that are an http
 * request's response headers passed on unchanged are not sent again. Removes
 * the marker; when the headers are unchanged, deletes msg.headers and returns
 * true. */
bool crm_http_drop_echoed_headers(json_t *msg);
/* Node's querystring.stringify(obj), malloc'd. */
char *crm_querystring(const json_t *obj);
/* encodeURIComponent-style escaping appended into a malloc'd string. */
char *crm_uri_component(const char *s, size_t len);
/* Text as a JavaScript string: invalid UTF-8 becomes U+FFFD. Returns a new
 * json string. */
json_t *crm_utf8_string(const void *data, size_t len);
/* decodeURIComponent (malloc'd); NULL when it would throw. */
char *crm_uri_decode(const char *s, size_t n);
/* npm cookie.parse(str): {name: value}, first occurrence wins, quotes
 * stripped, values URI-decoded when they can be. */
json_t *crm_cookie_parse(const char *s);
/* Node-RED's extractCookies(setCookieArray): {name: {value, Path, ...}}. */
json_t *crm_extract_cookies(const json_t *set_cookie);
/* What WHATWG URL parsing does to the characters a user may type: spaces,
 * quotes, <>`{} and non-ASCII bytes are percent-encoded (per component),
 * scheme and host lower-cased, a default port dropped. Also applies
 * Node-RED's "% not followed by two hex digits becomes %25" rule to the
 * query. The fragment is kept (encoded) only when keep_fragment: a request
 * never sends it, but got reports it in the response URL. Returns a malloc'd
 * string. */
char *crm_url_clean(const char *url, bool keep_fragment);

#endif
