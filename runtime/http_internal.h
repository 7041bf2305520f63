/* http_internal.h: what the pieces of the HTTP server (httpd.c, http_route.c,
 * http_query.c, http_body.c, http_util.c) share. Not for nodes: see http.h. */
#ifndef CRM_HTTP_INTERNAL_H
#define CRM_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "httpd.h"
#include "strbuf.h"

/* Routes ----------------------------------------------------------------- */

typedef struct http_pattern http_pattern;
/* Compiles an Express (path-to-regexp 0.1) path: case-insensitive, optional
 * trailing slash, whole path. NULL on error. */
http_pattern *http_pattern_new(const char *path);
void http_pattern_free(http_pattern *p);
/* Matches path (raw, percent-encoded, no query). On a match returns true and,
 * when params is not NULL, sets it to a new object of decoded parameters. */
bool http_pattern_match(const http_pattern *p, const char *path, size_t len, json_t **params);
bool http_pattern_has_params(const http_pattern *p);

/* Text ------------------------------------------------------------------- */

/* decodeURIComponent (with '+' as space when plus): a new json string, or
 * the raw text (plus replaced) when decoding fails, as qs and Express do. */
json_t *http_decode_component(const char *s, size_t n, bool plus);
/* Whether bytes are valid UTF-8. */
bool http_utf8_valid(const unsigned char *s, size_t n);
/* A json string of the bytes, invalid UTF-8 replaced by U+FFFD (Buffer.toString). */
json_t *http_string_lossy(const char *s, size_t n);
/* qs.parse with explicit depth and arrayLimit (query: 5/20, forms: 32/100). */
json_t *http_qs_parse(const char *s, size_t n, int depth, int array_limit);
/* The Cookie header as cookie-parser gives req.cookies ("j:" JSON cookies parsed). */
json_t *http_cookies_parse(const char *header);
/* Case-insensitive ASCII compare of n bytes / whole strings. */
bool http_ieq(const char *a, const char *b);
bool http_ieqn(const char *a, const char *b, size_t n);

/* Content types ------------------------------------------------------------- */

/* Media type of a Content-Type value, lower-cased and without parameters,
 * into out (size cap). Returns false when there is none. */
bool http_media_type(const char *ct, char *out, size_t cap);
/* Bodies ------------------------------------------------------------------ */

typedef struct {
    int status;       /* 0 when parsed; else the HTTP error status */
    char message[160]; /* the error, as body-parser names it */
} http_body_error;
/* Parses a request body as the http in node's parser chain does (§3.10):
 * returns req.body (new reference), or NULL with err filled. ct may be NULL.
 * files: set to a new array when a multipart upload was parsed. */
json_t *http_parse_body(const char *ct, const char *body, size_t len, bool upload, json_t **files,
                        http_body_error *err);
/* Whether body-parser's json parser accepts it (for the admin app quirk). */
bool http_json_body_ok(const char *body, size_t len, http_body_error *err);

/* Digests ------------------------------------------------------------------- */

void http_sha1(const void *data, size_t len, unsigned char out[20]);
/* Express's weak ETag (etag module) of a body: W/"<hex len>-<base64 sha1, 27>". out: 64 bytes. */
void http_etag(const void *data, size_t len, char *out);
/* Whether If-None-Match matches etag (weak comparison, "*" and lists). */
bool http_etag_fresh(const char *if_none_match, const char *etag);

/* Basic auth: pass is a bcrypt hash ($2a$/$2b$/$2y$) or plain text. */
bool http_password_ok(const char *given, const char *pass);

/* An Express error page (finalhandler): the HTML body for msg. malloc'd. */
char *http_error_page(const char *msg, size_t *len);

#endif
