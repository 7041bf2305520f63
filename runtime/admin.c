/* admin.c: the Admin HTTP API a headless runtime needs (spec §6): GET /flows
 * (v1 and v2 with rev), GET /flows/state, POST /inject/:id (the editor's
 * inject button), GET /settings, the /context routes (admin_context.c),
 * the editor's routes (runtime/editor/editor.h),
 * and for load balancers and probes GET
 * /healthz (the process answers) and GET /readyz (its flows are started;
 * 503 before and while stopping), and POST /flows, a deploy in process
 * (runtime.c's crm_runtime_redeploy); a replica under a supervisor refuses
 * it and names where to deploy. Handlers run on the HTTP server's threads
 * and read the nodes and flows under rt->nodes_lock (a deploy swaps them),
 * or post to a loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_auth.h"
#include "comms.h"
#include "editor/editor.h"
#include "engine.h"
#include "httpd.h"
#include "metrics.h"
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
    if (post && !strncmp(path, "/debug/", 7)) return "debug.write";
    if (get && !strcmp(path, "/settings")) return "settings.read";
    if (get && !strncmp(path, "/credentials/", 13)) return "credentials.read";
    if (get && !strcmp(path, "/metrics")) return "metrics.read"; /* a "read" scope covers it */
    /* the editor's (runtime/editor): its page, files, /theme and /locales are open */
    if (!strcmp(path, "/settings/user")) return get ? "settings.read" : post ? "settings.write" : NULL;
    if (get && (!strcmp(path, "/nodes") || !strncmp(path, "/nodes/", 7) || !strcmp(path, "/icons"))) return "nodes.read";
    if (get && (!strcmp(path, "/plugins") || !strncmp(path, "/plugins/", 9))) return "plugins.read";
    if (!strncasecmp(path, "/context/", 9)) return get ? "context.read" : !strcmp(method, "DELETE") ? "context.write" : NULL;
    return NULL; /* not an admin route, or open: /healthz, /readyz for probes */
}

static void reply_text(crm_admin_reply *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = strdup(text);
    r->len = strlen(text);
}

/* POST /flows on a single instance (Node-RED's editor-api flows.post and
 * runtime api setFlows): v1 the array, answered 204; v2 {flows, rev?,
 * credentials?}, a rev other than the one in force answered 409, else
 * {rev}. Node-RED-Deployment-Type full (default), nodes, flows or reload
 * (the flows file read again). */
static void post_flows(crm_runtime *rt, const json_t *headers, const char *body, size_t len, bool v2,
                       crm_admin_reply *r)
{
    const char *type = json_string_value(json_object_get(headers, "node-red-deployment-type"));
    if (!type) type = "full";
    json_t *whole = NULL, *flows = NULL;
    if (strcmp(type, "reload")) {
        whole = crm_parse(body ? body : "", len, NULL, 0);
        flows = v2 ? json_object_get(whole, "flows") : whole;
        if (!json_is_array(flows)) {
            crm_admin_reply_json(r, 400, json_pack("{s:s,s:s}", "code", "invalid_request", "message",
                                                   v2 ? "the body must be {\"flows\":[...], \"rev\":...}"
                                                      : "the body must be the flows array"));
            json_decref(whole);
            return;
        }
        const char *rev = v2 ? json_string_value(json_object_get(whole, "rev")) : NULL;
        if (v2 && json_object_get(whole, "rev")) {
            pthread_rwlock_rdlock(&rt->nodes_lock);
            bool mismatch = !rev || strcmp(rev, rt->rev);
            pthread_rwlock_unlock(&rt->nodes_lock);
            if (mismatch) {
                crm_admin_reply_json(r, 409, json_pack("{s:s,s:s}", "code", "version_mismatch", "message", "Error"));
                json_decref(whole);
                return;
            }
        }
        /* v2 may carry the credentials apart: {node id: {...}} */
        json_t *cr = v2 ? json_object_get(whole, "credentials") : NULL;
        if (json_is_object(cr)) {
            size_t i;
            json_t *o;
            json_array_foreach(flows, i, o) {
                json_t *c = json_object_get(cr, json_string_value(json_object_get(o, "id")));
                if (json_is_object(c) && !json_object_get(o, "credentials")) json_object_set(o, "credentials", c);
            }
        }
    }
    strbuf problems = SB_INIT;
    int status;
    int rc = crm_runtime_redeploy(rt, flows, type, &problems, &status);
    json_decref(whole);
    if (rc < 0) {
        crm_admin_reply_json(r, status, json_pack("{s:s,s:s}", "code", status == 400 ? "invalid_flows" : "deploy_failed",
                                                  "message", problems.data ? problems.data : "refused"));
    } else if (v2) {
        pthread_rwlock_rdlock(&rt->nodes_lock);
        crm_admin_reply_json(r, 200, json_pack("{s:s}", "rev", rt->rev));
        pthread_rwlock_unlock(&rt->nodes_lock);
    } else {
        reply_text(r, 204, "");
    }
    sb_free(&problems);
}

static void admin_locked(crm_runtime *rt, const char *method, const char *path, const char *query,
                         const json_t *headers, const char *body, size_t len, crm_admin_reply *r);

/* The debug node's admin routes (21-debug.js): POST /debug/:id/enable|disable
 * answers 200 "OK" / 201 "Created" for a known node, 404 otherwise; POST
 * /debug/enable|disable with {nodes: [ids]} likewise, 400 without the list. */
static void debug_state_route(crm_runtime *rt, const char *rest, const char *body, size_t len, crm_admin_reply *r)
{
    const char *slash = strchr(rest, '/');
    const char *state = slash ? slash + 1 : rest;
    if (strchr(state, '/') || (strcmp(state, "enable") && strcmp(state, "disable")) || (slash && slash == rest)) {
        reply_text(r, 404, "Not Found");
        return;
    }
    bool on = !strcmp(state, "enable");
    if (slash) {
        char *id = strndup(rest, (size_t)(slash - rest));
        crm_node *n = crm_runtime_find(rt, id);
        free(id);
        if (!n) {
            reply_text(r, 404, "Not Found");
            return;
        }
        crm_debug_set_active(n, on);
    } else {
        json_t *b = crm_parse(body ? body : "", len, NULL, 0);
        json_t *nodes = json_object_get(b, "nodes");
        if (!json_is_array(nodes)) {
            json_decref(b);
            reply_text(r, 400, "Bad Request");
            return;
        }
        size_t i;
        json_t *v;
        json_array_foreach(nodes, i, v) {
            crm_node *n = json_is_string(v) ? crm_runtime_find(rt, json_string_value(v)) : NULL;
            if (n) crm_debug_set_active(n, on);
        }
        json_decref(b);
    }
    reply_text(r, on ? 200 : 201, on ? "OK" : "Created");
}

static void admin(void *ctx, const char *method, const char *path, const char *query, const json_t *headers,
                  const char *body, size_t len, crm_admin_reply *r)
{
    crm_runtime *rt = ctx;
    if (crm_admin_auth_route(rt->admin_auth, method, path, headers, body, len, r)) return;
    if (!strcmp(path, "/metrics") && !crm_metrics_enabled(rt)) return; /* off: no such route (404) */
    const char *perm = crm_admin_permission(method, path);
    if (perm && !crm_admin_auth_allow(rt->admin_auth, headers, perm, r)) return;
    if (!strcmp(method, "POST") && !strcmp(path, "/flows")) {
        const char *ver = json_string_value(json_object_get(headers, "node-red-api-version"));
        const char *sup = json_string_value(json_object_get(rt->settings, "supervisorUrl"));
        if (ver && strcmp(ver, "v1") && strcmp(ver, "v2")) {
            crm_admin_reply_json(r, 400, json_pack("{s:s,s:s}", "code", "invalid_api_version", "message",
                                                   "Invalid API Version requested"));
        } else if (sup) {
            char text[512];
            snprintf(text, sizeof text, "this replica is read-only: deploy to its supervisor, POST %sflows", sup);
            crm_admin_reply_json(r, 400, json_pack("{s:s,s:s}", "code", "read_only", "message", text));
        } else {
            post_flows(rt, headers, body, len, ver && !strcmp(ver, "v2"), r);
        }
        return;
    }
    /* the editor's routes read files and settings only: outside the lock */
    if (crm_editor_route(rt->editor, method, path, query, headers, body, len, r)) return;
    /* the nodes and flows do not change under a handler (a deploy waits) */
    pthread_rwlock_rdlock(&rt->nodes_lock);
    admin_locked(rt, method, path, query, headers, body, len, r);
    pthread_rwlock_unlock(&rt->nodes_lock);
}

static void admin_locked(crm_runtime *rt, const char *method, const char *path, const char *query,
                         const json_t *headers, const char *body, size_t len, crm_admin_reply *r)
{
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
            crm_admin_reply_json(r, 200, json_pack("{s:o,s:s}", "flows", flows, "rev", rt->rev));
        } else {
            crm_admin_reply_json(r, 200, flows);
        }
    } else if (!strcmp(method, "GET") && !strcmp(path, "/metrics")) {
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
        r->body = crm_metrics_render(rt, &r->len);
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
        crm_admin_reply_json(r, 200, crm_editor_runtime_settings(rt, rt->editor, headers));
    } else if (!strcmp(method, "GET") && !strncmp(path, "/credentials/", 13)) {
        crm_editor_credentials(rt, path + 13, r);
    } else if (!strcmp(method, "POST") && !strncmp(path, "/debug/", 7)) {
        debug_state_route(rt, path + 7, body, len, r);
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
    }
}

static void httpd_log(void *ctx, crm_log_level lvl, const char *text)
{
    crm_log(ctx, lvl, NULL, "%s", text);
}

void crm_admin_install(crm_runtime *rt)
{
    if (!rt->editor) rt->editor = crm_editor_new(rt);
    crm_httpd_set_admin(rt->httpd, admin, rt);
    crm_httpd_set_log(rt->httpd, httpd_log, rt);
}
