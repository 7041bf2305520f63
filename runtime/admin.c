/* admin.c: the Admin HTTP API a headless runtime needs (spec §6): GET /flows
 * (v1 and v2 with rev), GET /flows/state, POST /inject/:id (the editor's
 * inject button), GET /settings, the /context routes (admin_context.c),
 * and for load balancers and probes GET
 * /healthz (the process answers) and GET /readyz (its flows are started;
 * 503 before and while stopping). POST /flows is refused: a runtime is
 * read-only, and a replica under a supervisor names where to deploy. Handlers run on the HTTP server's threads
 * and only read what does not change while flows run, or post to a loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_auth.h"
#include "engine.h"
#include "httpd.h"
#include "sha256.h"

void crm_admin_reply_json(crm_admin_reply *r, int status, json_t *body)
{
    r->status = status;
    r->content_type = "application/json; charset=utf-8";
    r->body = crm_stringify(body, 0);
    r->len = strlen(r->body);
    json_decref(body);
}

const char *crm_admin_permission(const char *method, const char *path)
{
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(path, "/flows")) return get ? "flows.read" : post ? "flows.write" : NULL;
    if (get && !strcmp(path, "/flows/state")) return "flows.read";
    if (post && !strncmp(path, "/inject/", 8)) return "inject.write";
    if (get && !strcmp(path, "/settings")) return "settings.read";
    if (!strncasecmp(path, "/context/", 9)) return get ? "context.read" : !strcmp(method, "DELETE") ? "context.write" : NULL;
    return NULL; /* not an admin route, or open: /healthz, /readyz for probes */
}

static void compute_rev(crm_runtime *rt)
{
    if (rt->rev[0] || !rt->flows_json) return;
    char *text = crm_stringify(rt->flows_json, 0);
    crm_sha256_hex(text, strlen(text), rt->rev);
    free(text);
}

static void admin(void *ctx, const char *method, const char *path, const char *query, const json_t *headers,
                  const char *body, size_t len, crm_admin_reply *r)
{
    crm_runtime *rt = ctx;
    if (crm_admin_auth_route(rt->admin_auth, method, path, headers, body, len, r)) return;
    const char *perm = crm_admin_permission(method, path);
    if (perm && !crm_admin_auth_allow(rt->admin_auth, headers, perm, r)) return;
    if (crm_admin_context(rt, method, path, query, r)) return;
    const char *ver = json_string_value(json_object_get(headers, "node-red-api-version"));
    if (!strcmp(method, "GET") && !strcmp(path, "/flows")) {
        if (ver && strcmp(ver, "v1") && strcmp(ver, "v2")) {
            crm_admin_reply_json(r, 400, json_pack("{s:s,s:s}", "code", "invalid_api_version", "message",
                                         "Invalid API Version requested"));
            return;
        }
        json_t *flows = rt->flows_json ? json_incref(rt->flows_json) : json_array();
        if (ver && !strcmp(ver, "v2")) {
            compute_rev(rt);
            crm_admin_reply_json(r, 200, json_pack("{s:o,s:s}", "flows", flows, "rev", rt->rev));
        } else {
            crm_admin_reply_json(r, 200, flows);
        }
    } else if (!strcmp(method, "GET") && !strcmp(path, "/healthz")) {
        crm_admin_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    } else if (!strcmp(method, "GET") && !strcmp(path, "/readyz")) {
        /* context a store could not write (disk full, read-only) is shown, the
         * instance stays ready: the values are kept and written later */
        json_t *ctx = crm_context_write_status(rt);
        json_t *body = json_pack("{s:b}", "ready", rt->started);
        if (ctx) json_object_set_new(body, "contextWriteErrors", ctx);
        crm_admin_reply_json(r, rt->started ? 200 : 503, body);
    } else if (!strcmp(method, "GET") && !strcmp(path, "/flows/state")) {
        crm_admin_reply_json(r, 200, json_pack("{s:s}", "state", rt->started ? "start" : "stop"));
    } else if (!strcmp(method, "GET") && !strcmp(path, "/settings")) {
        json_t *root = json_object_get(rt->settings, "httpNodeRoot");
        json_t *rv = root ? json_incref(root) : json_string("/");
        json_t *out = json_pack("{s:o,s:s}", "httpNodeRoot", rv, "version", "4.1.15");
        json_t *user = crm_admin_auth_user(rt->admin_auth, headers);
        if (user) json_object_set_new(out, "user", user);
        crm_admin_reply_json(r, 200, out);
    } else if (!strcmp(method, "POST") && !strncmp(path, "/inject/", 8)) {
        crm_node *n = crm_runtime_find(rt, path + 8);
        if (!n || strcmp(n->type->type, "inject")) {
            r->status = 404;
            r->content_type = "text/plain; charset=utf-8";
            r->body = strdup("Not Found");
            r->len = strlen(r->body);
            return;
        }
        json_t *msg = NULL;
        if (body && len) {
            json_t *b = crm_parse(body, len, NULL, 0);
            if (json_is_object(b) && json_object_get(b, "__user_inject_props__")) msg = b;
            else json_decref(b);
        }
        crm_node_receive(n, msg ? msg : json_object());
        r->status = 200;
        r->content_type = "text/plain; charset=utf-8";
        r->body = strdup("OK");
        r->len = 2;
    } else if (!strcmp(method, "POST") && !strcmp(path, "/flows")) {
        const char *sup = json_string_value(json_object_get(rt->settings, "supervisorUrl"));
        char text[512];
        if (sup) snprintf(text, sizeof text, "this replica is read-only: deploy to its supervisor, POST %sflows", sup);
        else snprintf(text, sizeof text, "this instance does not take deploys: restart it with the new flows file");
        crm_admin_reply_json(r, 400, json_pack("{s:s,s:s}", "code", "read_only", "message", text));
    }
}

static void httpd_log(void *ctx, crm_log_level lvl, const char *text)
{
    crm_log(ctx, lvl, NULL, "%s", text);
}

void crm_admin_install(crm_runtime *rt)
{
    crm_httpd_set_admin(rt->httpd, admin, rt);
    crm_httpd_set_log(rt->httpd, httpd_log, rt);
}
