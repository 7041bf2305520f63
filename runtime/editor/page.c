/* page.c: the editor's page, GET / (templates/index.mst rendered with
 * mustache.c as Node-RED renders it: its theme context with the defaults of
 * editor-api's theme.js and the cacheBuster), GET /theme (that context as
 * JSON) and the debug node's pop-out page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "editor_internal.h"
#include "engine.h"
#include "httpd.h"
#include "mustache.h"

json_t *ed_theme_context(crm_editor *e)
{
    json_t *theme = json_object_get(e->rt->settings, "editorTheme");
    const char *page_title = json_string_value(json_object_get(json_object_get(theme, "page"), "title"));
    const char *header_title = json_string_value(json_object_get(json_object_get(theme, "header"), "title"));
    const char *lib = json_string_value(json_object_get(json_object_get(theme, "codeEditor"), "lib"));
    json_t *ctx = json_pack("{s:{s:s,s:s,s:{s:s,s:s}},s:{s:s,s:s},s:{s:s,s:s,s:s}}",
                            "page", "title", page_title ? page_title : "Node-RED", "favicon", "favicon.ico",
                            "tabicon", "icon", "red/images/node-red-icon-black.svg", "colour", "#8f0000",
                            "header", "title", header_title ? header_title : "Node-RED", "image",
                            "red/images/node-red.svg", "asset", "red", "red/red.min.js", "main", "red/main.min.js",
                            "vendorMonaco", lib && !strcmp(lib, "ace") ? "" : "vendor/monaco/monaco-bootstrap.js");
    return ctx;
}

static bool render_index(crm_editor *e, crm_admin_reply *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/templates/index.mst", e->client);
    size_t len;
    char *text = crm_read_file(path, &len);
    if (!text) return false;
    char *err = NULL;
    crm_mustache *m = crm_mustache_parse(text, len, &err);
    free(text);
    if (!m) {
        crm_log(e->rt, CRM_LOG_ERROR, NULL, "editor: %s: %s", path, err ? err : "cannot parse");
        free(err);
        return false;
    }
    json_t *view = ed_theme_context(e);
    json_object_set_new(view, "cacheBuster", json_string(e->cache_buster));
    char *html = crm_mustache_write(m, view, NULL);
    json_decref(view);
    crm_mustache_free(m);
    ed_reply_text(r, 200, "text/html; charset=utf-8", html);
    return true;
}

bool ed_page_route(crm_editor *e, const char *path, const char *query, const json_t *headers, crm_admin_reply *r)
{
    (void)headers;
    if (!*path) { /* httpAdminRoot without its slash: Node-RED's ensureSlash */
        const char *root = crm_httpd_admin_root(e->rt->httpd);
        strbuf h = SB_INIT, b = SB_INIT;
        sb_printf(&h, "Location: %s%s%s\r\n", root, *query ? "?" : "", query);
        sb_printf(&b, "Moved Permanently. Redirecting to %s%s%s", root, *query ? "?" : "", query);
        r->headers = sb_take(&h);
        ed_reply_text(r, 301, "text/plain; charset=utf-8", sb_take(&b));
        return true;
    }
    if (!strcmp(path, "/")) {
        if (!e->rt->started) { /* ensureRuntimeStarted */
            ed_reply_text(r, 503, "text/html; charset=utf-8", strdup("Not started"));
            return true;
        }
        return render_index(e, r);
    }
    if (!strcmp(path, "/theme")) {
        json_t *ctx = ed_theme_context(e);
        json_object_set_new(ctx, "themes", json_array());
        crm_admin_reply_json(r, 200, ctx);
        return true;
    }
    if (!strcmp(path, "/debug/view/view.html") && e->nodes) {
        char file[4096];
        snprintf(file, sizeof file, "%s/core/common/lib/debug/view.html", e->nodes);
        char *html = crm_read_file(file, NULL);
        if (!html) {
            ed_reply_text(r, 404, "text/plain; charset=utf-8", strdup("Not Found"));
            return true;
        }
        char *mark = strstr(html, "<!-- INSERT-THEME-CSS -->");
        if (mark) memmove(mark, mark + 25, strlen(mark + 25) + 1); /* no theme css */
        ed_reply_text(r, 200, "text/html; charset=utf-8", html);
        return true;
    }
    return false;
}
