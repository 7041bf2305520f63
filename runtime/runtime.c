/* runtime.c: the embedding API of runtime.h: a runtime's life cycle
 * (new, load, start, stop, free) and the thread-safe entry points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_auth.h"
#include "engine.h"
#include "httpd.h"

crm_runtime *crm_runtime_new(const json_t *settings)
{
    crm_register_builtins();
    crm_runtime *rt = calloc(1, sizeof *rt);
    rt->settings = settings ? crm_deep_copy(settings) : json_object();
    crm_normalize_numbers(rt->settings);
    if (!json_object_get(rt->settings, "port")) {
        json_t *ui = json_object_get(rt->settings, "uiPort");
        json_object_set_new(rt->settings, "port", ui ? json_incref(ui) : json_real(1880));
    }
    rt->log_level = crm_log_level_parse(json_string_value(json_object_get(rt->settings, "logLevel")));
    json_t *lg = json_object_get(json_object_get(json_object_get(rt->settings, "logging"), "console"), "level");
    if (json_is_string(lg)) rt->log_level = crm_log_level_parse(json_string_value(lg));
    rt->node_index = json_object();
    const char *ud = json_string_value(json_object_get(rt->settings, "userDir"));
    rt->userdir = ud ? strdup(ud) : NULL;
    if (crm_context_runtime_init(rt) < 0) {
        crm_runtime_free(rt);
        return NULL;
    }
    return rt;
}

const json_t *crm_runtime_settings(const crm_runtime *rt) { return rt->settings; }

void crm_runtime_set_log_hook(crm_runtime *rt, crm_log_hook hook, void *ctx)
{
    rt->hook = hook;
    rt->hook_ctx = ctx;
}

void crm_runtime_set_env(crm_runtime *rt, const json_t *env)
{
    json_decref(rt->env_override);
    rt->env_override = env ? json_incref((json_t *)env) : NULL;
}

crm_httpd *crm_runtime_httpd(crm_runtime *rt)
{
    if (!rt->httpd) {
        rt->httpd = crm_httpd_new(rt->settings);
        if (rt->httpd) crm_admin_install(rt);
    }
    return rt->httpd;
}

static void start_node(crm_node *n, void *arg)
{
    (void)arg;
    n->type->start(n);
}

int crm_runtime_start(crm_runtime *rt)
{
    strbuf err = SB_INIT;
    rt->admin_auth = crm_admin_auth_new(rt->settings, &err);
    if (err.len) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "%s", err.data);
        sb_free(&err);
        return -1;
    }
    crm_httpd *h = crm_runtime_httpd(rt);
    if (!h) {
        /* read_settings named the bad setting: nothing starts, as for a bad flow */
        crm_log(rt, CRM_LOG_ERROR, NULL, "the HTTP server's settings are not valid: not starting");
        return -1;
    }
    if (crm_httpd_start(h) < 0) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "cannot start the HTTP server");
        return -1;
    }
    for (size_t i = 0; i < rt->nloops; i++)
        if (crm_loop_start(rt->loops[i]) < 0) return -1;
    for (size_t i = 0; i < rt->nnodes; i++)
        if (rt->nodes[i]->type->start) crm_loop_call_sync(rt->nodes[i]->loop, rt->nodes[i], start_node, NULL);
    rt->started = true;
    return 0;
}

int crm_runtime_wait_idle(crm_runtime *rt, int timeout_ms)
{
    double until = crm_now_ms() + timeout_ms;
    int calm = 0;
    while (crm_now_ms() < until) {
        bool idle = true;
        for (size_t i = 0; i < rt->nloops && idle; i++) idle = crm_loop_idle(rt->loops[i]);
        /* idle twice in a row: a hand-off between loops may be in flight */
        if (idle && ++calm >= 2) return 0;
        if (!idle) calm = 0;
        usleep(1000);
    }
    return -1;
}

static void close_node(crm_node *n, void *arg)
{
    (void)arg;
    if (n->closed) return;
    if (n->type->close) n->type->close(n);
    crm_timers_cancel_node(n);
    crm_watches_cancel_node(n);
    crm_context_node_closed(n);
    n->closed = true;
}

void crm_runtime_stop(crm_runtime *rt)
{
    if (!rt->started) return;
    double close_ms = crm_cfg_num(rt->settings, "nodeCloseTimeout", 15000);
    if (close_ms > 2000) close_ms = 2000;
    /* sources first: inject timers stop, then what is queued drains */
    for (size_t i = 0; i < rt->nnodes; i++)
        if (!strcmp(rt->nodes[i]->type->type, "inject")) crm_loop_call_sync(rt->nodes[i]->loop, rt->nodes[i], close_node, NULL);
    /* no new requests; those in flight get answered while the flows still run */
    if (rt->httpd) crm_httpd_stop(rt->httpd);
    crm_runtime_wait_idle(rt, (int)close_ms);
    /* flow nodes before config nodes */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < rt->nnodes; i++) {
            crm_node *n = rt->nodes[i];
            if (n->is_config == (pass == 1)) crm_loop_call_sync(n->loop, n, close_node, NULL);
        }
    for (size_t i = 0; i < rt->nloops; i++) crm_loop_stop(rt->loops[i]);
    rt->started = false;
}

static void free_node(crm_node *n)
{
    for (int p = 0; p < n->nports; p++) {
        for (int w = 0; n->wire_ids[p] && n->wire_ids[p][w]; w++) free(n->wire_ids[p][w]);
        free(n->wire_ids[p]);
        free(n->wires[p]);
    }
    free(n->wire_ids);
    free(n->wires);
    free(n->nwires);
    json_decref(n->config);
    json_decref(n->catch_scope);
    free(n->id);
    free(n->alias);
    free(n->name);
    free(n->z);
    free(n);
}

void crm_runtime_free(crm_runtime *rt)
{
    if (!rt) return;
    crm_runtime_stop(rt);
    /* nodes never started still own state their create() made */
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        if (!n->closed && n->type->close) {
            crm_loop *l = n->loop;
            crm_loop_call_sync(l, n, close_node, NULL);
        }
    }
    for (size_t i = 0; i < rt->nloops; i++) crm_loop_free(rt->loops[i]);
    if (rt->httpd) crm_httpd_free(rt->httpd);
    for (size_t i = 0; i < rt->nnodes; i++) free_node(rt->nodes[i]);
    for (size_t i = 0; i < rt->nflows; i++) {
        crm_flow *f = rt->flows[i];
        free(f->id);
        free(f->label);
        json_decref(f->env);
        free(f->nodes);
        free(f->catches);
        free(f->statuses);
        free(f->completes);
        free(f);
    }
    for (size_t i = 0; i < rt->ngroups; i++) {
        free(rt->groups[i]->id);
        free(rt->groups[i]->name);
        json_decref(rt->groups[i]->env);
        free(rt->groups[i]);
    }
    free(rt->groups);
    free(rt->flows);
    free(rt->nodes);
    free(rt->loops);
    json_decref(rt->node_index);
    json_decref(rt->settings);
    json_decref(rt->env_override);
    json_decref(rt->flows_json);
    json_decref(rt->global_env);
    json_decref(rt->credentials);
    crm_admin_auth_free(rt->admin_auth);
    crm_context_runtime_close(rt);
    free(rt->userdir);
    free(rt);
}

int crm_runtime_send(crm_runtime *rt, const char *node_id, json_t *msg)
{
    crm_node *n = crm_runtime_find(rt, node_id);
    if (!n || n->closed) {
        json_decref(msg);
        return -1;
    }
    crm_node_receive(n, msg);
    return 0;
}

int crm_runtime_http_port(const crm_runtime *rt)
{
    return rt->httpd ? crm_httpd_port(rt->httpd) : 0;
}
