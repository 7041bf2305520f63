/* editor_internal.h: what the files of runtime/editor share (not a face). */
#ifndef CRM_EDITOR_INTERNAL_H
#define CRM_EDITOR_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include "editor.h"
#include "runtime.h"
#include "strbuf.h"

struct crm_editor {
    struct crm_runtime *rt;
    bool ok;             /* the editor's files are there */
    char *client;        /* @node-red/editor-client */
    char *nodes;         /* @node-red/nodes (may be missing: no core node HTML) */
    char *runtime;       /* @node-red/runtime (may be missing: no runtime catalogue) */
    char cache_buster[13];
    pthread_mutex_t lock;
    json_t *user_settings; /* user name ("_" without adminAuth) -> object */
};

/* static.c. Answers a file below dir (rel: a path with "/" separators, as
 * requested; refused when a segment is empty, starts with "." or holds a
 * backslash) as express.static does: content type, ETag, Last-Modified,
 * Cache-Control, 304 on If-None-Match / If-Modified-Since. The body is sent
 * from the open file. False (r untouched) when there is no such file. */
bool ed_send_file(const char *dir, const char *rel, const json_t *headers, crm_admin_reply *r);
/* The media type express gives a file name (with "; charset=UTF-8" for text). */
const char *ed_content_type(const char *name);
/* The whole file, malloc'd and NUL-terminated, or NULL. */

/* Whether s is a safe relative path (see ed_send_file). */
bool ed_safe_rel(const char *rel);
/* The first value of a query parameter, not decoded, or NULL (malloc'd). */
char *ed_query_param(const char *query, const char *name);
/* Node-RED's check on a language name: only [0-9a-zA-Z=*-]. */
bool ed_lang_ok(const char *lang);
/* The first language of an Accept-Language header, or "en-US". */
void ed_header_lang(const json_t *headers, char *out, size_t size);

void ed_reply_text(crm_admin_reply *r, int status, const char *type, char *body); /* body stolen */

/* page.c: GET / (index.mst), /theme, /debug/view/view.html. */
bool ed_page_route(crm_editor *e, const char *path, const char *query, const json_t *headers, crm_admin_reply *r);
json_t *ed_theme_context(crm_editor *e);

/* locales.c: GET /locales/:namespace. */
bool ed_locales_route(crm_editor *e, const char *path, const char *query, crm_admin_reply *r);
/* The languages the editor has catalogues for (editor.json), sorted. */
json_t *ed_languages(crm_editor *e);

/* nodes.c: GET /nodes (JSON or HTML), /nodes/messages, /icons, /icons/:module/:icon. */
bool ed_nodes_route(crm_editor *e, const char *path, const char *query, const json_t *headers, crm_admin_reply *r);

/* settings.c: GET and POST /settings/user. */
bool ed_user_settings_route(crm_editor *e, const char *method, const char *path, const json_t *headers,
                            const char *body, size_t len, crm_admin_reply *r);

#endif
