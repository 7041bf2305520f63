/* supervisor_api.c: the supervisor's HTTP API on its admin port (by default
 * the HTTP port + 1, on 127.0.0.1; docs/ha.md):
 *   GET  /status            replicas, pids, states, restarts, uptimes
 *   GET  /healthz, /readyz  the supervisor is alive / some replica serves
 *   GET  /flows             Node-RED's Admin API, v1 and v2 (with rev)
 *   POST /flows             a deploy: rev checked (v2), flows validated in
 *                           process before anything changes, then rolled
 *                           out one replica at a time; answers when done
 *   GET  /flows/state
 * Handlers run on the server's threads; the replicas belong to the main
 * loop, so a deploy is handed over under the lock and waited for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_auth.h"
#include "comms.h"
#include "editor/editor.h"
#include "engine.h"
#include "metrics.h"
#include "sha256.h"
#include "supervisor_int.h"

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void crm_flows_rev(const json_t *flows, char *out)
{
    char *text = crm_stringify(flows, 0);
    crm_sha256_hex(text, strlen(text), out);
    free(text);
}

/* Validates flows as `carmine check` does, in process, creating nothing
 * that runs. NULL when they can start, else the problems (malloc'd). */
static char *check_flows(const json_t *settings, const json_t *flows)
{
    if (!json_is_array(flows)) return strdup("the flows must be a JSON array of nodes");
    json_t *cs = crm_deep_copy(settings);
    json_object_set_new(cs, "_checkOnly", json_true()); /* no context store is opened */
    crm_runtime *rt = crm_runtime_new(cs);
    json_decref(cs);
    if (!rt) return strdup("the settings cannot be used (the supervisor's log says why)");
    strbuf problems = SB_INIT;
    int rc = crm_runtime_load(rt, flows, CRM_LOAD_CHECK_ONLY, &problems);
    crm_runtime_free(rt);
    if (!rc) {
        sb_free(&problems);
        return NULL;
    }
    if (!problems.len) sb_printf(&problems, "refused");
    return problems.data;
}

/* Credentials the deploy carries in its nodes go to the credentials file,
 * as Node-RED stores them, not into the flows file the replicas load (nor
 * GET /flows). NULL, or why the deploy fails. */
static const char *keep_credentials(const char *flows_path, const json_t *settings, json_t *flows, char *err,
                                    size_t cap, bool *wrote)
{
    *wrote = false;
    strbuf e = SB_INIT;
    json_t *creds = NULL;
    const char *res = NULL;
    if (crm_credentials_load(flows_path, settings, &creds, &e) == 0) {
        if (!creds) creds = json_object();
        if (crm_credentials_extract(flows, creds)) {
            *wrote = true;
            if (crm_credentials_save(flows_path, settings, creds, &e) < 0) res = err;
        }
    } else {
        res = err;
    }
    if (res) snprintf(err, cap, "credentials: %s", e.data ? e.data : "");
    json_decref(creds);
    sb_free(&e);
    return res;
}

int sup_load_flows(supervisor *s, const char *path, const json_t *settings)
{
    char err[512];
    json_t *flows = crm_storage_read(path, false, err, sizeof err);
    if (!flows) {
        fprintf(stderr, "carmine: %s\n", err);
        return -1;
    }
    char *problems = check_flows(settings, flows);
    if (problems) {
        fprintf(stderr, "carmine: %s: refused:\n%s", path, problems);
        free(problems);
        json_decref(flows);
        return -1;
    }
    /* credentials written into the file's nodes go to the credentials file,
     * as a deploy's do: GET /flows and the rev never show them (the
     * replicas strip them too), and the next deploy, made from GET /flows,
     * keeps them */
    char cerr[600];
    bool wrote;
    if (keep_credentials(path, settings, flows, cerr, sizeof cerr, &wrote)) {
        fprintf(stderr, "carmine: %s: %s\n", path, cerr);
        json_decref(flows);
        return -1;
    }
    s->flows = flows;
    crm_flows_rev(flows, s->rev);
    return 0;
}

void sup_begin_deploy(supervisor *s)
{
    json_decref(s->prev_flows);
    json_decref(s->prev_creds);
    s->prev_flows = s->flows;
    s->prev_creds = s->pending_creds;
    s->rolling_back = s->pending_rollback;
    s->pending_creds = NULL;
    s->pending_rollback = false;
    s->flows = s->pending;
    s->pending = NULL;
    s->gen++;
    crm_flows_rev(s->flows, s->rev);
    s->deploy_failed = false;
    s->deploy_error[0] = 0;
    if (sup_write_flows(s, s->flows) < 0)
        sup_log(s, "deploy %u: cannot write %s: %s (the replicas would start the old flows)", s->gen, s->flows_path,
                strerror(errno));
    s->deploy_slot = 1;
    s->deploy_new = NULL;
    sup_log(s, "deploy %u: rolling rev %.12s over %d replicas", s->gen, s->rev, s->n);
}

/* Replies ------------------------------------------------------------------------------------ */

static void reply_error(crm_admin_reply *r, int status, const char *code, const char *message)
{
    crm_admin_reply_json(r, status, json_pack("{s:s,s:s}", "code", code, "message", message));
}

static const char *state_name(replica_state st)
{
    switch (st) {
    case R_STARTING: return "starting";
    case R_READY: return "ready";
    case R_BACKOFF: return "restarting";
    case R_DRAINING: return "draining";
    }
    return "?";
}

static json_t *status_json(supervisor *s)
{
    double t = mono_ms();
    json_t *list = json_array();
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nr; i++) {
        replica *e = &s->r[i];
        if (e->free) continue;
        json_array_append_new(list, json_pack("{s:i,s:i,s:s,s:i,s:f,s:i}", "replica", e->slot, "pid", (int)e->pid,
                                              "state", state_name(e->state), "restarts", e->restarts, "uptime",
                                              e->pid > 0 ? (t - e->started) / 1000 : 0.0, "generation", (int)e->gen));
    }
    json_t *st = json_pack("{s:i,s:i,s:i,s:s,s:i,s:b,s:f,s:o}", "port", s->port, "adminPort", s->admin_port,
                           "replicas", s->n, "rev", s->rev, "generation", (int)s->gen, "deploying",
                           s->deploy_slot != 0, "uptime", (t - s->t0) / 1000, "processes", list);
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* GET /metrics (settings.metrics): the replicas' restarts, Prometheus text. */
static char *metrics_text(supervisor *s, size_t *len)
{
    strbuf sb = SB_INIT;
    pthread_mutex_lock(&s->mu);
    crm_prom_family(&sb, "carmine_supervisor_replica_restarts_total", "counter",
                    "Times the supervisor restarted a replica that died, by replica slot.");
    for (int i = 1; i <= s->n && i <= MAX_REPLICAS; i++)
        sb_printf(&sb, "carmine_supervisor_replica_restarts_total{replica=\"%d\"} %lu\n", i, s->slot_restarts[i]);
    crm_prom_family(&sb, "carmine_supervisor_replica_up", "gauge", "1 when the replica in the slot is ready, else 0.");
    for (int i = 1; i <= s->n && i <= MAX_REPLICAS; i++) {
        int up = 0;
        for (size_t k = 0; k < s->nr; k++)
            if (!s->r[k].free && s->r[k].slot == i && s->r[k].state == R_READY) up = 1;
        sb_printf(&sb, "carmine_supervisor_replica_up{replica=\"%d\"} %d\n", i, up);
    }
    pthread_mutex_unlock(&s->mu);
    *len = sb.len;
    return sb_take(&sb);
}

static int ready_count(supervisor *s)
{
    int k = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nr; i++) k += !s->r[i].free && s->r[i].state == R_READY;
    pthread_mutex_unlock(&s->mu);
    return k;
}

/* POST /flows ------------------------------------------------------------------------------------- */

/* The flows of a POST body: v1 the array, v2 {flows, rev?}. */
static json_t *body_flows(const char *body, size_t len, bool v2, const char **rev, json_t **whole)
{
    *whole = crm_parse(body ? body : "", len, NULL, 0);
    *rev = NULL;
    if (!v2) return json_is_array(*whole) ? *whole : NULL;
    *rev = json_string_value(json_object_get(*whole, "rev"));
    json_t *f = json_object_get(*whole, "flows");
    return json_is_array(f) ? f : NULL;
}

/* Hands flows to the main loop and waits for the roll; NULL or an error. */
static const char *roll_out(supervisor *s, json_t *flows, json_t *old_creds, char *err, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return "the supervisor is stopping";
    }
    json_decref(s->pending);
    json_decref(s->pending_creds);
    s->pending = json_incref(flows);
    s->pending_creds = json_incref(old_creds);
    s->pending_rollback = false;
    unsigned seq = ++s->deploy_seq;
    while (s->deploy_done < seq && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    const char *res = NULL;
    if (s->deploy_done < seq) res = "the supervisor is stopping";
    else if (s->deploy_failed) {
        snprintf(err, cap, "%s", s->deploy_error);
        res = err;
    }
    pthread_mutex_unlock(&s->mu);
    return res;
}

static void post_flows(supervisor *s, const json_t *headers, const char *body, size_t len, bool v2, crm_admin_reply *r)
{
    const char *type = json_string_value(json_object_get(headers, "node-red-deployment-type"));
    json_t *whole = NULL, *flows = NULL;
    const char *rev = NULL;
    char err[512] = "";
    if (type && !strcmp(type, "reload")) {
        flows = whole = crm_storage_read(s->flows_path, false, err, sizeof err);
    } else {
        flows = body_flows(body, len, v2, &rev, &whole);
        if (!flows) snprintf(err, sizeof err, "%s", v2 ? "the body must be {\"flows\":[...], \"rev\":...}" : "the body must be the flows array");
    }
    if (!flows) {
        reply_error(r, 400, "invalid_request", err);
        json_decref(whole);
        return;
    }
    pthread_mutex_lock(&s->deploy_mu);
    pthread_mutex_lock(&s->mu);
    bool mismatch = rev && strcmp(rev, s->rev);
    pthread_mutex_unlock(&s->mu);
    char *problems = mismatch ? NULL : check_flows(s->settings, flows);
    /* the credentials as they were: put back if the deploy fails */
    json_t *old_creds = NULL;
    strbuf cerr = SB_INIT;
    if (!mismatch && !problems && crm_credentials_load(s->flows_path, s->settings, &old_creds, &cerr) < 0)
        old_creds = NULL;
    sb_free(&cerr);
    bool wrote = false;
    const char *failed =
        mismatch || problems ? NULL : keep_credentials(s->flows_path, s->settings, flows, err, sizeof err, &wrote);
    if (!wrote) { /* nothing to put back */
        json_decref(old_creds);
        old_creds = NULL;
    } else if (!old_creds) {
        old_creds = json_object();
    }
    if (!mismatch && !problems && !failed) failed = roll_out(s, flows, old_creds, err, sizeof err);
    json_decref(old_creds);
    pthread_mutex_unlock(&s->deploy_mu);
    if (mismatch) {
        reply_error(r, 409, "version_mismatch", "Error");
    } else if (problems) {
        reply_error(r, 400, "invalid_flows", problems);
    } else if (failed) {
        reply_error(r, 500, "deploy_failed", failed);
    } else if (v2) {
        pthread_mutex_lock(&s->mu);
        crm_admin_reply_json(r, 200, json_pack("{s:s}", "rev", s->rev));
        pthread_mutex_unlock(&s->mu);
    } else {
        r->status = 204;
        r->content_type = "text/plain; charset=utf-8";
        r->body = strdup("");
        r->len = 0;
    }
    if (!mismatch && !problems && !failed && s->editor_rt) { /* the editor's deploy notification */
        pthread_mutex_lock(&s->mu);
        crm_comms_publish(s->editor_rt->comms, "notification/runtime-deploy", json_pack("{s:s}", "revision", s->rev), true);
        pthread_mutex_unlock(&s->mu);
    }
    free(problems);
    json_decref(whole);
}

static void api(void *ctx, const char *method, const char *path, const char *query, const json_t *headers,
                const char *body, size_t len, crm_admin_reply *r)
{
    (void)query;
    supervisor *s = ctx;
    if (crm_admin_auth_route(s->auth, method, path, headers, body, len, r)) return;
    if (!strcmp(path, "/metrics") && !crm_metrics_enabled_in(s->settings)) return; /* off: 404 */
    /* /status, /healthz and /readyz stay open for probes, as on replicas */
    const char *perm = crm_admin_permission(method, path);
    if (perm && !crm_admin_auth_allow(s->auth, headers, perm, r)) return;
    const char *ver = json_string_value(json_object_get(headers, "node-red-api-version"));
    bool get = !strcmp(method, "GET");
    if (get && !strcmp(path, "/metrics")) {
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
        r->body = metrics_text(s, &r->len);
    } else if (get && !strcmp(path, "/status")) {
        crm_admin_reply_json(r, 200, status_json(s));
    } else if (get && !strcmp(path, "/healthz")) {
        crm_admin_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    } else if (get && !strcmp(path, "/readyz")) {
        int k = ready_count(s);
        crm_admin_reply_json(r, k ? 200 : 503, json_pack("{s:b,s:i,s:i}", "ready", k > 0, "readyReplicas", k, "replicas", s->n));
    } else if (!strcmp(path, "/flows") && (get || !strcmp(method, "POST"))) {
        if (ver && strcmp(ver, "v1") && strcmp(ver, "v2")) {
            reply_error(r, 400, "invalid_api_version", "Invalid API Version requested");
            return;
        }
        bool v2 = ver && !strcmp(ver, "v2");
        if (!get) {
            post_flows(s, headers, body, len, v2, r);
            return;
        }
        pthread_mutex_lock(&s->mu);
        json_t *flows = json_incref(s->flows);
        json_t *out = v2 ? json_pack("{s:o,s:s}", "flows", flows, "rev", s->rev) : flows;
        pthread_mutex_unlock(&s->mu);
        crm_admin_reply_json(r, 200, out);
    } else if (get && !strcmp(path, "/flows/state")) {
        crm_admin_reply_json(r, 200, json_pack("{s:s}", "state", "start"));
    } else if (s->editor_rt && get && !strcmp(path, "/settings")) {
        crm_admin_reply_json(r, 200, crm_editor_runtime_settings(s->editor_rt, s->editor_rt->editor, headers));
    } else if (s->editor_rt) {
        crm_editor_route(s->editor_rt->editor, method, path, query, headers, body, len, r);
    }
}

/* The Node-RED editor on the supervisor's API (docs/ha.md): its page,
 * files, /nodes, /settings and /comms from a runtime that runs no flows
 * (the replicas do), sharing the API's adminAuth; a deploy from it is the
 * rolling POST /flows above. Not with disableEditor. */
static void editor_start(supervisor *s)
{
    if (crm_truthy(json_object_get(s->settings, "disableEditor"))) return;
    json_t *es = crm_deep_copy(s->settings);
    json_object_set_new(es, "_checkOnly", json_true()); /* no context store is opened */
    json_object_set_new(es, "httpAdminRoot", json_string("/"));
    crm_runtime *rt = crm_runtime_new(es);
    json_decref(es);
    if (!rt) return;
    rt->admin_auth = s->auth;
    rt->httpd = s->api;
    rt->editor = crm_editor_new(rt);
    rt->comms = crm_comms_start(rt);
    rt->started = true; /* the page's "runtime started" check: the replicas run the flows */
    crm_comms_publish(rt->comms, "notification/runtime-state", json_pack("{s:s}", "state", "start"), true);
    s->editor_rt = rt;
}

void sup_editor_stop(supervisor *s)
{
    crm_runtime *rt = s->editor_rt;
    if (!rt) return;
    s->editor_rt = NULL;
    crm_comms_free(rt->comms);
    rt->comms = NULL;
    rt->admin_auth = NULL; /* the API's */
    rt->httpd = NULL;      /* likewise */
    rt->started = false;
    crm_runtime_free(rt);
}

static void api_log(void *ctx, crm_log_level lvl, const char *text)
{
    (void)lvl;
    sup_log(ctx, "admin API: %s", text);
}

int sup_api_start(supervisor *s, const char *host)
{
    strbuf err = SB_INIT;
    s->auth = crm_admin_auth_new(s->settings, &err);
    if (err.len) {
        sup_log(s, "%s", err.data);
        sb_free(&err);
        return -1;
    }
    json_t *cfg = json_pack("{s:i,s:s,s:b,s:s,s:i}", "port", s->admin_port, "host", host, "httpNodeRoot", 0,
                            "httpAdminRoot", "/", "httpThreads", 4);
    json_t *max = json_object_get(s->settings, "apiMaxLength");
    if (max) json_object_set(cfg, "apiMaxLength", max);
    crm_normalize_numbers(cfg);
    s->api = crm_httpd_new(cfg);
    json_decref(cfg);
    if (!s->api) return -1;
    crm_httpd_set_admin(s->api, api, s);
    crm_httpd_set_log(s->api, api_log, s);
    editor_start(s);
    if (crm_httpd_start(s->api) < 0) {
        sup_log(s, "cannot listen on %s:%d for the supervisor's API", host, s->admin_port);
        return -1;
    }
    return 0;
}
