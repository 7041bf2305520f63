/* editor.c: the editor's life (where its files are, the warning when they
 * are missing) and the table of its routes (editor.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "editor_internal.h"
#include "engine.h"
#include "sha256.h"

#ifndef CRM_EDITOR_DIR
#define CRM_EDITOR_DIR ".deps/npm/node_modules/@node-red/editor-client"
#endif

static char *sibling(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = malloc(n);
    snprintf(p, n, "%s/../%s", dir, name);
    char *real = realpath(p, NULL);
    free(p);
    return real;
}

static bool has_file(const char *dir, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return access(p, R_OK) == 0;
}

crm_editor *crm_editor_new(crm_runtime *rt)
{
    if (json_is_true(json_object_get(rt->settings, "disableEditor"))) return NULL;
    crm_editor *e = calloc(1, sizeof *e);
    e->rt = rt;
    pthread_mutex_init(&e->lock, NULL);
    e->user_settings = json_object();
    const char *dir = json_string_value(json_object_get(rt->settings, "editorDir"));
    if (!dir) dir = CRM_EDITOR_DIR;
    e->client = realpath(dir, NULL);
    if (!e->client || !has_file(e->client, "templates/index.mst") || !has_file(e->client, "public/red/red.min.js")) {
        crm_log(rt, CRM_LOG_WARN, NULL,
                "the Node-RED editor is not served: no @node-red/editor-client in %s (settings.editorDir); "
                "run tools/setup.sh to install it, or set editorDir (disableEditor: true silences this)",
                dir);
        return e;
    }
    e->ok = true;
    e->nodes = sibling(e->client, "nodes");
    e->runtime = sibling(e->client, "runtime");
    if (!e->nodes || !has_file(e->nodes, "core/common/20-inject.html"))
        crm_log(rt, CRM_LOG_WARN, NULL,
                "the editor has no core node definitions: @node-red/nodes is not beside %s (run tools/setup.sh)",
                e->client);
    char hex[65];
    const char *seed = "4.1.15-carmine-" CARMINE_VERSION;
    crm_sha256_hex(seed, strlen(seed), hex);
    memcpy(e->cache_buster, hex, 12);
    return e;
}

void crm_editor_free(crm_editor *e)
{
    if (!e) return;
    free(e->client);
    free(e->nodes);
    free(e->runtime);
    json_decref(e->user_settings);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* The names the editor-client's public folder has at its top (red, vendor,
 * types, favicon.ico): only paths under them look for a file, so that the
 * routes of http in nodes never cost a file lookup. */
static bool public_path(const char *path)
{
    static const char *const tops[] = {"/red/", "/vendor/", "/types/"};
    if (!strcmp(path, "/favicon.ico")) return true;
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++)
        if (!strncmp(path, tops[i], strlen(tops[i]))) return true;
    return false;
}

bool crm_editor_route(crm_editor *e, const char *method, const char *path, const char *query, const json_t *headers,
                      const char *body, size_t len, crm_admin_reply *r)
{
    if (!e || !e->ok) return false;
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (get && public_path(path)) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/public", e->client);
        return ed_send_file(dir, path + 1, headers, r);
    }
    if (get && !strncmp(path, "/debug/view/", 12) && strcmp(path, "/debug/view/view.html")) {
        /* the debug node's pop-out window and the script the sidebar loads */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/core/common/lib/debug", e->nodes ? e->nodes : "/nonexistent");
        if (ed_send_file(dir, path + 12, headers, r)) return true;
        ed_reply_text(r, 404, "text/plain; charset=utf-8", strdup("Not Found"));
        return true;
    }
    if (!strncmp(path, "/settings/user", 14) && (path[14] == 0))
        return ed_user_settings_route(e, method, path, headers, body, len, r);
    if (!get) return false;
    if (ed_page_route(e, path, query, headers, r)) return true;
    if (ed_locales_route(e, path, query, r)) return true;
    if (ed_nodes_route(e, path, query, headers, r)) return true;
    if (!strcmp(path, "/plugins")) { /* no editor plugins: Node-RED's answer with none installed */
        const char *accept = json_string_value(json_object_get(headers, "accept"));
        if (accept && !strcmp(accept, "application/json")) crm_admin_reply_json(r, 200, json_array());
        else ed_reply_text(r, 200, "text/html; charset=utf-8", strdup(""));
        return true;
    }
    if (!strcmp(path, "/plugins/messages")) {
        crm_admin_reply_json(r, 200, json_object());
        return true;
    }
    return false;
}
