/* settings.c: GET /settings in the shape Node-RED 4.1.15's runtime
 * settings API gives it (runtime/lib/api/settings.js getRuntimeSettings,
 * with what the default settings.js and the core nodes export), and the
 * user settings (GET/POST /settings/user) the editor keeps its view
 * options in: held in memory per user for the life of the process. */
#include <stdlib.h>
#include <string.h>

#include "admin_auth.h"
#include "editor_internal.h"
#include "engine.h"
#include "value.h"

/* Node-RED's extend(): scalars and arrays replace, null deletes, objects merge. */
static void extend(json_t *target, const json_t *source)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)source, k, v) {
        json_t *cur = json_object_get(target, k);
        if (json_is_null(v)) json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(cur)) extend(cur, v);
        else json_object_set(target, k, v);
    }
}

static json_t *context_stores(crm_runtime *rt)
{
    json_t *cfg = json_object_get(rt->settings, "contextStorage");
    if (!json_is_object(cfg) || !json_object_size(cfg))
        return json_pack("{s:s,s:[s]}", "default", "memory", "stores", "memory");
    json_t *stores = json_array();
    const char *name, *def = NULL;
    json_t *v;
    json_object_foreach(cfg, name, v) {
        if (json_is_string(v)) {
            if (!strcmp(name, "default")) def = json_string_value(v);
            continue;
        }
        json_array_append_new(stores, json_string(name));
    }
    if (!def) def = json_object_get(cfg, "default") ? "default" : json_string_value(json_array_get(stores, 0));
    return json_pack("{s:s,s:o}", "default", def ? def : "memory", "stores", stores);
}

json_t *crm_editor_runtime_settings(crm_runtime *rt, crm_editor *e, const json_t *headers)
{
    json_t *root = json_object_get(rt->settings, "httpNodeRoot");
    json_t *out = json_object();
    json_object_set_new(out, "httpNodeRoot", root ? json_incref(root) : json_string("/"));
    json_object_set_new(out, "version", json_string("4.1.15"));
    json_t *user = crm_admin_auth_user(rt->admin_auth, headers);
    if (user) json_object_set_new(out, "user", user);
    if (!e) return out; /* disableEditor: what Node-RED gives then */
    const json_t *s = rt->settings;
    json_t *theme = json_object_get(s, "editorTheme");
    json_object_set_new(out, "context", context_stores(rt));
    json_t *code = json_object_get(theme, "codeEditor");
    json_object_set_new(out, "codeEditor", json_is_object(code) ? crm_deep_copy(code) : json_object());
    code = json_object_get(out, "codeEditor");
    if (!json_object_get(code, "lib")) json_object_set_new(code, "lib", json_string("monaco"));
    if (!json_object_get(code, "options")) json_object_set_new(code, "options", json_object());
    json_t *md = json_object_get(theme, "markdownEditor");
    json_object_set_new(out, "markdownEditor", json_is_object(md) ? crm_deep_copy(md) : json_object());
    md = json_object_get(out, "markdownEditor");
    if (!json_object_get(md, "mermaid")) json_object_set_new(md, "mermaid", json_pack("{s:b}", "enabled", 1));
    /* the library entries the editor's import dialog shows */
    json_object_set_new(out, "libraries",
                        json_pack("[{s:s,s:s,s:b,s:s},{s:s,s:s,s:b,s:s,s:[s],s:b}]", "id", "local", "label",
                                  "editor:library.types.local", "user", 0, "icon", "font-awesome/fa-hdd-o", "id",
                                  "examples", "label", "editor:library.types.examples", "user", 0, "icon",
                                  "font-awesome/fa-life-ring", "types", "flows", "readOnly", 1));
    json_t *cats = json_object_get(s, "paletteCategories");
    if (json_is_array(cats)) json_object_set(out, "paletteCategories", cats);
    json_t *pretty = json_object_get(s, "flowFilePretty");
    if (!pretty || json_is_true(pretty)) json_object_set_new(out, "flowFilePretty", json_true());
    /* no palette manager: nothing can be installed from the editor */
    json_object_set_new(out, "externalModules",
                        json_pack("{s:{s:b,s:b}}", "palette", "allowInstall", 0, "allowUpload", 0));
    json_object_set_new(out, "flowEncryptionType",
                        json_string(json_object_get(s, "credentialSecret") ? "user" : "system"));
    json_t *diag = json_object_get(s, "diagnostics");
    bool denabled = !json_is_false(json_object_get(diag, "enabled"));
    bool dui = denabled && !json_is_false(json_object_get(diag, "ui"));
    json_object_set_new(out, "diagnostics", json_pack("{s:b,s:b}", "enabled", denabled, "ui", dui));
    json_t *rs = json_object_get(s, "runtimeState");
    bool renabled = json_is_true(json_object_get(rs, "enabled"));
    json_object_set_new(out, "runtimeState",
                        json_pack("{s:b,s:b}", "enabled", renabled, "ui", renabled && json_is_true(json_object_get(rs, "ui"))));
    json_t *nd = json_object_get(s, "nodeDefaults");
    if (nd) json_object_set(out, "nodeDefaults", nd);
    /* what the core nodes export (registerType settings with exportable) */
    json_object_set_new(out, "functionExternalModules", json_false()); /* Carmine's function node loads no npm modules */
    json_t *ft = json_object_get(s, "functionTimeout");
    json_object_set_new(out, "functionTimeout", json_is_number(ft) ? json_incref(ft) : json_integer(0));
    json_object_set_new(out, "tlsConfigDisableLocalFiles",
                        json_boolean(json_is_true(json_object_get(s, "tlsConfigDisableLocalFiles"))));
    /* Carmine sends no telemetry: false keeps the editor from asking */
    json_object_set_new(out, "telemetryEnabled", json_false());
    /* editorTheme: the settings' one, then what editor-api's theme adds */
    json_t *et = json_is_object(theme) ? crm_deep_copy(theme) : json_object();
    json_t *base = json_pack("{s:{},s:{s:b,s:{s:s}},s:{s:b}}", "palette", "projects", "enabled", 0, "workflow", "mode",
                             "manual", "multiplayer", "enabled", 0);
    extend(base, et);
    json_decref(et);
    json_object_set_new(base, "languages", e->ok ? ed_languages(e) : json_array());
    json_object_set_new(out, "editorTheme", base);
    return out;
}

bool ed_user_settings_route(crm_editor *e, const char *method, const char *path, const json_t *headers,
                            const char *body, size_t len, crm_admin_reply *r)
{
    (void)path;
    json_t *user = crm_admin_auth_user(e->rt->admin_auth, headers);
    const char *name = json_string_value(json_object_get(user, "username"));
    char *key = strdup(name ? name : "_"); /* "_": anonymous, as Node-RED keys it */
    json_decref(user);
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
        pthread_mutex_lock(&e->lock);
        json_t *v = json_object_get(e->user_settings, key);
        json_t *copy = v ? crm_deep_copy(v) : json_object();
        pthread_mutex_unlock(&e->lock);
        crm_admin_reply_json(r, 200, copy);
    } else if (!strcmp(method, "POST")) {
        json_t *in = len ? crm_parse(body, len, NULL, 0) : json_object();
        if (json_is_object(in)) {
            pthread_mutex_lock(&e->lock);
            json_t *cur = json_object_get(e->user_settings, key);
            if (!cur) json_object_set_new(e->user_settings, key, cur = json_object());
            extend(cur, in);
            json_object_del(cur, "telemetryEnabled"); /* a runtime-wide choice, not kept per user */
            pthread_mutex_unlock(&e->lock);
        }
        json_decref(in);
        r->status = 204;
    } else {
        free(key);
        return false;
    }
    free(key);
    return true;
}
