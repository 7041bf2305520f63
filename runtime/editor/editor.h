/* editor.h: the Node-RED editor served by Carmine (issue 18): the
 * unmodified @node-red/editor-client 4.1.15 from npm, installed by
 * tools/setup.sh (never copied into the repository), with the Admin API
 * routes it loads from: "/" (index.mst rendered with Node-RED's theme
 * defaults), the static files (/red, /vendor, /types, /favicon.ico),
 * /theme, /locales/:namespace, /icons, /nodes (the node sets Carmine runs,
 * their HTML from @node-red/nodes or from a plugin's .html), /plugins,
 * /settings/user and the debug node's /debug/view files. docs/editor.md.
 *
 * Settings: editorDir (the editor-client package; @node-red/nodes and
 * @node-red/runtime are its siblings, as in a node_modules/@node-red
 * folder; default: the build's CRM_EDITOR_DIR), disableEditor.
 *
 * Files are read from disk per request (nothing big is kept in memory);
 * every function here runs on the HTTP server's threads. */
#ifndef CRM_EDITOR_H
#define CRM_EDITOR_H

#include <jansson.h>
#include <stdbool.h>

#include "httpd.h"

struct crm_runtime;
typedef struct crm_editor crm_editor;

/* NULL when settings.disableEditor is true. When the editor's files are
 * missing it logs one warning naming editorDir and tools/setup.sh and
 * returns an editor that serves nothing (the flows run as before). */
crm_editor *crm_editor_new(struct crm_runtime *rt);
void crm_editor_free(crm_editor *e);

/* An editor route (path below httpAdminRoot; "" for the root without its
 * trailing slash): true when it answered into r. e may be NULL. The
 * permission checks of adminAuth were made before (crm_admin_permission). */
bool crm_editor_route(crm_editor *e, const char *method, const char *path, const char *query, const json_t *headers,
                      const char *body, size_t len, crm_admin_reply *r);

/* GET /settings: the runtime settings in Node-RED's shape (with
 * editorTheme when the editor is enabled, and the adminAuth user). New
 * reference. */
json_t *crm_editor_runtime_settings(struct crm_runtime *rt, crm_editor *e, const json_t *headers);

/* GET /credentials/:type/:id (rest: "type/id"), as Node-RED answers it:
 * passwords only as has_<name>. Under the runtime's nodes lock (the
 * credentials change with a deploy). */
void crm_editor_credentials(struct crm_runtime *rt, const char *rest, crm_admin_reply *r);

#endif
