/* settings_js.h: a Node-RED settings.js read as Node-RED's red.js reads it
 * (require(settingsFile): the object it assigns to module.exports), and
 * where a Node-RED user's directory keeps its files (issue 18, item 6;
 * docs/editor.md "A Node-RED user's directory").
 *
 * The file is evaluated in the function node's JavaScript sandbox
 * (runtime/js/js.h) inside a child process: the parent never maps
 * JavaScriptCore (~9 MB) for its settings, and a settings.js that loops or
 * crashes stops only the child. The sandbox offers module, exports,
 * __filename, __dirname, process.env/cwd()/platform and a require() of
 * 'path', 'os' and 'fs' (existsSync, readFileSync) as typical settings.js
 * files use them; any other module is an empty object, named in the
 * warning. Functions and other values JSON cannot hold (adminAuth's
 * authenticate, httpNodeMiddleware, a function for https) are left out and
 * named too; a Buffer read with fs.readFileSync for https.key/cert/ca
 * becomes that file's path (Carmine's https setting takes paths). Internal
 * (not part of the plugin API). */
#ifndef CRM_SETTINGS_JS_H
#define CRM_SETTINGS_JS_H

#include <jansson.h>

#include "strbuf.h"

/* Evaluates the settings.js at path. A new object, or NULL with the reason
 * in *err (malloc'd). What Carmine cannot honour in it (top-level keys it
 * does not read, values it had to leave out, modules it does not offer)
 * is appended to *unhonoured as one comma-separated list (empty when all is
 * honoured). Forks: call it before any thread is started. */
json_t *crm_settings_js_read(const char *path, strbuf *unhonoured, char **err);

/* Appends to out (", "-separated) the top-level keys of settings that
 * Carmine does not read, leaving out those whose value asks nothing ({}, [],
 * false, null). */
void crm_settings_unhonoured(const json_t *settings, strbuf *out);

/* Node-RED's choice of the flows file in a user's directory (its
 * localfilesystem storage): settings.flowFile when set (absolute; "./..."
 * from the working directory; a name found in the working directory; else
 * in userDir), else "flows_<hostname>.json" when named_by_host, else
 * "flows.json" (the name in the settings.js Node-RED copies into a new
 * userDir). malloc'd. */
char *crm_userdir_flows_file(const char *userdir, const json_t *settings, int named_by_host);

/* Node-RED's default userDir: $HOME/.node-red (malloc'd), NULL without HOME. */
char *crm_userdir_default(void);

#endif
