/* runtime.c: the embedding API of runtime.h: a runtime's life cycle
 * (new, load, start, stop, free) and the thread-safe entry points. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_auth.h"
#include "comms.h"
#include "companion/companion.h"
#include "editor/editor.h"
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
    pthread_mutex_init(&rt->deploy_mu, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&rt->nodes_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
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

/* Runs fn on each node (in rt->nodes order) that want accepts, on the
 * node's loop: one call per run of consecutive such nodes on one loop, not
 * one per node (a deploy of a few hundred nodes spent most of its time in
 * those round trips). */
typedef struct {
    crm_runtime *rt;
    crm_loop *loop;
    size_t from, to;
    bool (*want)(crm_node *, void *);
    void *warg;
    void (*fn)(crm_node *, void *);
} node_batch;

static void run_batch(crm_node *unused, void *arg)
{
    (void)unused;
    node_batch *b = arg;
    for (size_t i = b->from; i < b->to; i++) {
        crm_node *n = b->rt->nodes[i];
        if (n->loop == b->loop && b->want(n, b->warg)) b->fn(n, b->warg);
    }
}

static void for_nodes(crm_runtime *rt, bool (*want)(crm_node *, void *), void *warg, void (*fn)(crm_node *, void *))
{
    size_t i = 0;
    while (i < rt->nnodes) {
        if (!want(rt->nodes[i], warg)) {
            i++;
            continue;
        }
        crm_loop *l = rt->nodes[i]->loop;
        size_t j = i + 1;
        while (j < rt->nnodes && (rt->nodes[j]->loop == l || !want(rt->nodes[j], warg))) j++;
        node_batch b = {rt, l, i, j, want, warg, fn};
        crm_loop_call_sync(l, NULL, run_batch, &b);
        i = j;
    }
}

static bool want_inject(crm_node *n, void *arg)
{
    (void)arg;
    return !strcmp(n->type->type, "inject");
}

/* arg NULL: every node to start but inject nodes; else those */
static bool want_start(crm_node *n, void *arg)
{
    return n->type->start && !n->kept && want_inject(n, NULL) == (arg != NULL);
}

static bool want_pass(crm_node *n, void *arg)
{
    return n->is_config == (arg != NULL);
}

static void start_node(crm_node *n, void *arg)
{
    /* inject nodes last, held while a companion starts (companion.h) */
    if (!arg || !crm_companion_hold_start(n)) n->type->start(n);
}

/* notification/runtime-state (and after a start, runtime-deploy) as
 * Node-RED's flows module emits them, retained */
static void publish_state(crm_runtime *rt, const char *state, bool deploy)
{
    if (!rt->comms) return;
    /* at start up Node-RED's isDeploy is undefined: no "deploy" member */
    json_t *st = json_pack("{s:s}", "state", state);
    if (deploy) json_object_set_new(st, "deploy", json_true());
    crm_comms_publish(rt->comms, "notification/runtime-state", st, true);
    if (!strcmp(state, "start"))
        crm_comms_publish(rt->comms, "notification/runtime-deploy", json_pack("{s:s}", "revision", rt->rev), true);
}

static int start_flows(crm_runtime *rt)
{
    for (size_t i = 0; i < rt->nloops; i++)
        if (crm_loop_start(rt->loops[i]) < 0) return -1;
    for_nodes(rt, want_start, NULL, start_node);
    for_nodes(rt, want_start, (void *)1, start_node);
    for (size_t i = 0; i < rt->nnodes; i++) rt->nodes[i]->kept = false;
    rt->started = true;
    return 0;
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
    /* listening on /comms before the port opens: an editor that connects at
     * once finds it */
    rt->comms = crm_comms_start(rt);
    if (crm_httpd_start(h) < 0) {
        crm_log(rt, CRM_LOG_ERROR, NULL, "cannot start the HTTP server");
        return -1;
    }
    if (start_flows(rt) < 0) return -1;
    publish_state(rt, "start", false);
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
    if (!n->rt->redeploying) crm_context_node_closed(n);
    n->closed = true;
}

/* stop_httpd false: a deploy, the server keeps answering (node requests
 * wait: crm_httpd_hold) */
static void stop_flows(crm_runtime *rt, bool stop_httpd)
{
    if (!rt->started) return;
    __atomic_store_n(&rt->stopping, true, __ATOMIC_RELEASE);
    double close_ms = crm_cfg_num(rt->settings, "nodeCloseTimeout", 15000);
    if (close_ms > 2000) close_ms = 2000;
    /* sources first: inject timers stop, then what is queued drains */
    crm_companion_forget_held();
    for_nodes(rt, want_inject, NULL, close_node);
    /* no new requests; those in flight get answered while the flows still run */
    if (rt->httpd && stop_httpd) crm_httpd_stop(rt->httpd);
    crm_runtime_wait_idle(rt, (int)close_ms);
    /* flow nodes before config nodes */
    for (int pass = 0; pass < 2; pass++) for_nodes(rt, want_pass, pass ? (void *)1 : NULL, close_node);
    for (size_t i = 0; i < rt->nloops; i++) crm_loop_stop(rt->loops[i]);
    rt->started = false;
    __atomic_store_n(&rt->stopping, false, __ATOMIC_RELEASE);
}

void crm_runtime_stop(crm_runtime *rt)
{
    pthread_mutex_lock(&rt->deploy_mu);
    stop_flows(rt, true);
    pthread_mutex_unlock(&rt->deploy_mu);
}

/* The tabs and groups of one set of flows, and the arrays that hold them. */
static void free_flow_structs(crm_flow **flows, size_t nflows, crm_group **groups, size_t ngroups)
{
    for (size_t i = 0; i < nflows; i++) {
        crm_flow *f = flows[i];
        free(f->id);
        free(f->label);
        json_decref(f->env);
        free(f->nodes);
        free(f->catches);
        free(f->statuses);
        free(f->completes);
        free(f);
    }
    for (size_t i = 0; i < ngroups; i++) {
        free(groups[i]->id);
        free(groups[i]->name);
        json_decref(groups[i]->env);
        free(groups[i]);
    }
    free(flows);
    free(groups);
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

/* Frees what crm_runtime_load made (the flows stopped); the runtime can
 * load again. */
static void free_flows(crm_runtime *rt)
{
    /* nodes never started still own state their create() made */
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        if (!n->closed && n->type->close) {
            crm_loop *l = n->loop;
            crm_loop_call_sync(l, n, close_node, NULL);
        }
    }
    for (size_t i = 0; i < rt->nloops; i++) crm_loop_free(rt->loops[i]);
    for (size_t i = 0; i < rt->nnodes; i++) free_node(rt->nodes[i]);
    free_flow_structs(rt->flows, rt->nflows, rt->groups, rt->ngroups);
    free(rt->nodes);
    free(rt->loops);
    rt->groups = NULL;
    rt->flows = NULL;
    rt->nodes = NULL;
    rt->loops = NULL;
    rt->ngroups = rt->nflows = rt->nnodes = rt->nloops = 0;
    rt->global_flow = NULL;
    json_decref(rt->node_index);
    rt->node_index = json_object();
    json_decref(rt->flows_json);
    rt->flows_json = NULL;
    json_decref(rt->global_env);
    rt->global_env = NULL;
    rt->rev[0] = 0;
}

void crm_runtime_free(crm_runtime *rt)
{
    if (!rt) return;
    crm_runtime_stop(rt);
    /* nodes never started close (removing their routes) before the server
     * goes, and the server before the loops its requests are posted to */
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        if (!n->closed && n->type->close) crm_loop_call_sync(n->loop, n, close_node, NULL);
    }
    crm_comms_free(rt->comms);
    rt->comms = NULL;
    if (rt->httpd) crm_httpd_free(rt->httpd);
    rt->httpd = NULL;
    crm_editor_free(rt->editor); /* after the server: its routes ran on the server threads */
    rt->editor = NULL;
    free_flows(rt);
    json_decref(rt->node_index);
    json_decref(rt->settings);
    json_decref(rt->env_override);
    json_decref(rt->credentials);
    crm_admin_auth_free(rt->admin_auth);
    crm_context_runtime_close(rt);
    free(rt->userdir);
    free(rt->flows_path);
    pthread_mutex_destroy(&rt->deploy_mu);
    pthread_rwlock_destroy(&rt->nodes_lock);
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

/* Deploys ------------------------------------------------------------------------------------- */

void crm_runtime_set_flows_file(crm_runtime *rt, const char *path)
{
    free(rt->flows_path);
    rt->flows_path = path ? strdup(path) : NULL;
}

/* Validates flows as `carmine check` does, on a throwaway runtime that
 * creates nothing that runs. */
static int check_flows(crm_runtime *rt, const json_t *flows, const json_t *creds, strbuf *problems)
{
    json_t *cs = crm_deep_copy(rt->settings);
    json_object_set_new(cs, "_checkOnly", json_true()); /* no context store is opened */
    crm_runtime *tmp = crm_runtime_new(cs);
    json_decref(cs);
    if (!tmp) {
        sb_printf(problems, "the settings cannot be used");
        return 1;
    }
    crm_runtime_set_credentials(tmp, creds ? json_deep_copy(creds) : NULL);
    int rc = crm_runtime_load(tmp, flows, CRM_LOAD_CHECK_ONLY, problems);
    crm_runtime_free(tmp);
    if (rc && !problems->len) sb_printf(problems, "refused");
    return rc;
}

/* The flows file as Node-RED's localfilesystem storage writes it: the
 * previous one kept as .NAME.backup beside it, the new one written to a
 * temporary file and renamed over it; pretty (4 spaces) unless
 * flowFilePretty is false. */
static int write_flows_file(crm_runtime *rt, const json_t *flows, strbuf *err)
{
    const char *path = rt->flows_path;
    strbuf backup = SB_INIT;
    const char *slash = strrchr(path, '/');
    if (slash) sb_printf(&backup, "%.*s/.%s.backup", (int)(slash - path), path, slash + 1);
    else sb_printf(&backup, ".%s.backup", path);
    if (access(path, F_OK) == 0) {
        unlink(backup.data);
        if (link(path, backup.data) < 0) { /* best effort, as Node-RED's copy */ }
    }
    sb_free(&backup);
    bool pretty = !json_is_false(json_object_get(rt->settings, "flowFilePretty"));
    char *text = crm_stringify(flows, pretty ? 4 : 0);
    int rc = crm_write_file(path, text, 0644);
    free(text);
    if (rc < 0) sb_printf(err, "cannot write %s: %s", path, strerror(errno));
    return rc;
}


/* Partial deploys ("nodes", "flows") ------------------------------------------------------ */

static bool disabled_obj(const json_t *o)
{
    return json_is_true(json_object_get(o, "d")) || json_is_true(json_object_get(o, "disabled"));
}

/* Whether a and b have the same members but for those in skip (Node-RED's
 * diffNodes ignores x, y and wires). */
static bool same_except(const json_t *a, const json_t *b, const char *const *skip)
{
    const char *k;
    json_t *v;
    size_t na = 0, nb = 0;
    json_object_foreach((json_t *)a, k, v) {
        bool skipped = false;
        for (const char *const *s = skip; *s && !skipped; s++) skipped = !strcmp(*s, k);
        if (skipped) continue;
        na++;
        if (!json_equal(v, json_object_get(b, k))) return false;
    }
    json_object_foreach((json_t *)b, k, v) {
        bool skipped = false;
        for (const char *const *s = skip; *s && !skipped; s++) skipped = !strcmp(*s, k);
        if (!skipped) nb++;
    }
    return na == nb;
}

static const char *sv(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static bool is_type(const json_t *o, const char *t) { return sv(o, "type") && !strcmp(sv(o, "type"), t); }

static bool container(const json_t *o) { return is_type(o, "tab") || is_type(o, "subflow") || is_type(o, "group"); }

static const char *first_tab(const json_t *flows)
{
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) if (is_type(o, "tab") && !json_is_true(json_object_get(o, "disabled"))) return sv(o, "id");
    return "";
}

/* The ids of the nodes a "nodes" or "flows" deploy of nf keeps running, as
 * Node-RED's diffConfigs decides (flows/util.js), a little more cautious:
 * a node restarts when it is added, removed or changed (other than x, y and,
 * for "nodes", its wires), carries credentials, uses (a property naming
 * it) a node or config node that restarts, sits in a group that changed or
 * on a tab whose settings (env, disabled) changed; for "flows", every node
 * wired (either way, any number of wires away) to a node that restarts or
 * was rewired. Subflow instances always restart. NULL when everything restarts (a global-config node changed). */
static json_t *keep_set(const json_t *oldf, const json_t *nf, bool flows_mode)
{
    static const char *const skip_nodes[] = {"x", "y", "wires", NULL}, *const skip_flows[] = {"x", "y", NULL},
                             *const skip_tab[] = {"label", "info", NULL},
                             *const skip_group[] = {"x", "y", "w", "h", "nodes", "style", "wires", NULL};
    json_t *oldby = json_object(), *newby = json_object(), *changed = json_object(), *keep = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(oldf, i, o) if (sv(o, "id")) json_object_set(oldby, sv(o, "id"), o);
    json_array_foreach(nf, i, o) if (sv(o, "id")) json_object_set(newby, sv(o, "id"), o);
    const char *id;
    json_object_foreach(oldby, id, o) if (!json_object_get(newby, id)) json_object_set_new(changed, id, json_true());
    json_object_foreach(newby, id, o) {
        json_t *old = json_object_get(oldby, id);
        const char *const *skip = is_type(o, "tab")     ? skip_tab
                                  : is_type(o, "group") ? skip_group
                                  : flows_mode          ? skip_flows
                                                        : skip_nodes;
        if (!old || !same_except(old, o, skip) || json_object_get(o, "credentials"))
            json_object_set_new(changed, id, json_true());
    }
    /* a subflow whose definition changed: its instances restart anyway */
    json_object_foreach(changed, id, o) {
        json_t *n = json_object_get(newby, id) ? json_object_get(newby, id) : json_object_get(oldby, id);
        if (is_type(n, "global-config")) goto out; /* global env: everything restarts */
    }
    /* the global flow runs on the first tab's loop: if another tab comes
     * first now, the nodes of the global flow restart */
    if (strcmp(first_tab(oldf), first_tab(nf))) {
        json_object_foreach(newby, id, o) {
            const char *z = sv(o, "z");
            json_t *zt = z ? json_object_get(newby, z) : NULL;
            bool flow_node = json_object_get(o, "x") || json_object_get(o, "y");
            if (!container(o) && !flow_node && !is_type(zt, "tab")) json_object_set_new(changed, id, json_true());
        }
    }
    /* what uses a restarted node restarts, until nothing more does */
    for (bool more = true; more;) {
        more = false;
        json_object_foreach(newby, id, o) {
            if (container(o) || json_object_get(changed, id)) continue;
            const char *k;
            json_t *v;
            bool uses = false;
            json_object_foreach(o, k, v) {
                if (!strcmp(k, "id") || !strcmp(k, "z") || !strcmp(k, "wires") || !json_is_string(v)) continue;
                if (json_object_get(changed, json_string_value(v))) uses = true;
            }
            const char *z = sv(o, "z");
            if (z && json_object_get(changed, z) && is_type(json_object_get(newby, z), "tab")) uses = true;
            if (uses) {
                json_object_set_new(changed, id, json_true());
                more = true;
            }
        }
    }
    if (flows_mode) {
        /* and every node wired to one of them, through any number of wires
         * (old or new, either way, link nodes' links included): Node-RED's
         * "linked" nodes */
        json_t *adj = json_object();
        const json_t *both[2] = {oldf, nf};
        for (int b = 0; b < 2; b++) json_array_foreach(both[b], i, o) {
            const char *from = sv(o, "id");
            if (!from || container(o)) continue;
            json_t *targets = json_array();
            size_t p, w;
            json_t *port, *t;
            json_array_foreach(json_object_get(o, "wires"), p, port) json_array_foreach(port, w, t) json_array_append(targets, t);
            json_array_foreach(json_object_get(o, "links"), w, t) json_array_append(targets, t);
            json_array_foreach(targets, w, t) {
                if (!json_is_string(t)) continue;
                const char *to = json_string_value(t);
                if (!json_object_get(adj, from)) json_object_set_new(adj, from, json_array());
                if (!json_object_get(adj, to)) json_object_set_new(adj, to, json_array());
                json_array_append(json_object_get(adj, from), t);
                json_array_append_new(json_object_get(adj, to), json_string(from));
            }
            json_decref(targets);
        }
        json_t *stack = json_array();
        json_object_foreach(changed, id, o) json_array_append_new(stack, json_string(id));
        json_object_foreach(newby, id, o) {
            json_t *old = json_object_get(oldby, id);
            if (old && !json_equal(json_object_get(old, "wires"), json_object_get(o, "wires"))) {
                json_object_set_new(changed, id, json_true());
                json_array_append_new(stack, json_string(id));
            }
        }
        while (json_array_size(stack)) {
            size_t last = json_array_size(stack) - 1;
            char *cur = strdup(json_string_value(json_array_get(stack, last)));
            json_array_remove(stack, last);
            size_t k;
            json_t *nb;
            json_array_foreach(json_object_get(adj, cur), k, nb) {
                if (json_object_get(changed, json_string_value(nb))) continue;
                json_object_set_new(changed, json_string_value(nb), json_true());
                json_array_append(stack, nb);
            }
            free(cur);
        }
        json_decref(stack);
        json_decref(adj);
    }
    keep = json_object();
    json_object_foreach(newby, id, o) {
        const char *z = sv(o, "z");
        json_t *zt = z ? json_object_get(newby, z) : NULL;
        if (json_object_get(changed, id) || container(o) || disabled_obj(o) || !strncmp(sv(o, "type") ? sv(o, "type") : "", "subflow:", 8) ||
            is_type(zt, "subflow") || (zt && disabled_obj(zt)))
            continue;
        json_object_set_new(keep, id, json_true());
    }
out:
    json_decref(oldby);
    json_decref(newby);
    json_decref(changed);
    return keep;
}


/* Swaps in nf keeping the nodes of keepids running (their instance, timers,
 * watches, queued messages, routes): every loop thread stops for the swap
 * (what is queued stays), the other nodes close, the flows load around the
 * kept nodes (which are neither created nor started again), the loops go
 * on. 0, or -1 when the new flows did not load (then nothing is kept: the
 * old flows are loaded again from scratch). Called with the HTTP server
 * held and nodes_lock taken. */
static int partial_swap(crm_runtime *rt, const json_t *nf, const json_t *keepids, json_t *old_creds, strbuf *problems)
{
    json_t *keep = json_object();
    const char *id;
    json_t *v;
    json_object_foreach((json_t *)keepids, id, v) {
        crm_node *o = crm_runtime_find(rt, id);
        if (o && !o->alias && !o->closed) json_object_set_new(keep, id, json_integer((json_int_t)(intptr_t)o));
    }
    __atomic_store_n(&rt->stopping, true, __ATOMIC_RELEASE);
    for (size_t i = 0; i < rt->nloops; i++) crm_loop_stop(rt->loops[i]);
    __atomic_store_n(&rt->stopping, false, __ATOMIC_RELEASE);
    rt->redeploying = true;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < rt->nnodes; i++) {
            crm_node *n = rt->nodes[i];
            if (n->is_config == (pass == 1) && !json_object_get(keep, n->id)) crm_loop_call_sync(n->loop, n, close_node, NULL);
        }
    rt->redeploying = false;
    /* the old structures, aside */
    crm_node **onodes = rt->nodes;
    size_t onnodes = rt->nnodes;
    crm_flow **oflows = rt->flows;
    size_t onflows = rt->nflows;
    crm_group **ogroups = rt->groups;
    size_t ongroups = rt->ngroups;
    crm_loop **oloops = rt->loops;
    json_t *old_flows = rt->flows_json;
    json_t *loops = json_object();
    for (size_t i = 0; i < onflows; i++)
        if (!oflows[i]->is_subflow && oflows[i]->loop && strcmp(oflows[i]->id, "global"))
            json_object_set_new(loops, oflows[i]->id, json_integer((json_int_t)(intptr_t)oflows[i]->loop));
    rt->nodes = NULL;
    rt->flows = NULL;
    rt->groups = NULL;
    rt->loops = NULL;
    rt->nnodes = rt->nflows = rt->ngroups = rt->nloops = 0;
    rt->global_flow = NULL;
    json_decref(rt->node_index);
    rt->node_index = json_object();
    rt->flows_json = NULL;
    json_decref(rt->global_env);
    rt->global_env = NULL;
    rt->rev[0] = 0;
    rt->keep = keep;
    rt->keep_loops = loops;
    strbuf lp = SB_INIT;
    int rc = crm_runtime_load(rt, nf, 0, &lp);
    rt->keep = rt->keep_loops = NULL;
    if (rc) {
        /* nothing is kept: kept nodes the loader did not reach close here,
         * those it took close with the new flows */
        json_t *gone = json_array();
        json_object_foreach(keep, id, v) {
            crm_node *o = (crm_node *)(intptr_t)json_integer_value(v);
            if (!o->kept) {
                crm_loop_call_sync(o->loop, o, close_node, NULL);
                json_array_append_new(gone, json_string(id)); /* freed below with the old nodes */
            }
        }
        size_t gi;
        json_array_foreach(gone, gi, v) json_object_del(keep, json_string_value(v));
        json_decref(gone);
        for (size_t i = 0; i < rt->nnodes; i++) rt->nodes[i]->kept = false;
    }
    /* loops no tab took over (their tabs are gone) */
    const char *lid;
    json_object_foreach(loops, lid, v) crm_loop_free((crm_loop *)(intptr_t)json_integer_value(v));
    json_decref(loops);
    free(oloops);
    if (rc) {
        sb_printf(problems, "%s", lp.data ? lp.data : "refused");
        free_flows(rt);
    }
    /* jobs queued for the old nodes that closed go before the nodes do (a
     * purge reads each job's node: after free_node it read freed memory,
     * ASan in tests/companion: a hosted node's status posted to its bridge
     * while a deploy replaced the bridge) */
    if (!rc)
        for (size_t i = 0; i < rt->nloops; i++) crm_loop_purge_closed(rt->loops[i]);
    /* the old nodes that closed (the kept ones belong to the new flows, or are freed above), the old flows and groups */
    for (size_t i = 0; i < onnodes; i++)
        if (!json_object_get(keep, onodes[i]->id)) free_node(onodes[i]);
    free(onodes);
    free_flow_structs(oflows, onflows, ogroups, ongroups);
    json_decref(keep);
    sb_free(&lp);
    if (rc) {
        crm_runtime_set_credentials(rt, old_creds ? json_incref(old_creds) : NULL);
        strbuf ignore = SB_INIT;
        crm_runtime_load(rt, old_flows, 0, &ignore);
        sb_free(&ignore);
    }
    json_decref(old_flows);
    return rc ? -1 : 0;
}

int crm_runtime_redeploy(crm_runtime *rt, const json_t *flows, const char *type, strbuf *problems, int *status)
{
    *status = 400;
    pthread_mutex_lock(&rt->deploy_mu);
    json_t *nf = NULL, *creds = NULL;
    bool reload = type && !strcmp(type, "reload");
    int rc = -1;
    if (reload) {
        /* flows and credentials as stored */
        if (rt->flows_path) {
            char e[512];
            nf = crm_storage_read(rt->flows_path, false, e, sizeof e);
            if (!nf) sb_printf(problems, "%s", e);
            else if (crm_credentials_load(rt->flows_path, rt->settings, &creds, problems) < 0) goto out;
        } else {
            nf = rt->flows_json ? json_deep_copy(rt->flows_json) : json_array();
            creds = rt->credentials ? json_deep_copy(rt->credentials) : NULL;
        }
        if (!nf) goto out;
    } else {
        nf = json_deep_copy(flows);
        creds = rt->credentials ? json_deep_copy(rt->credentials) : json_object();
    }
    if (!json_is_array(nf)) {
        sb_printf(problems, "the flows must be a JSON array of nodes");
        goto out;
    }
    bool creds_changed = !reload && crm_credentials_extract(nf, creds);
    if (check_flows(rt, nf, creds, problems)) goto out;
    *status = 500;
    if (rt->flows_path && !reload) {
        if (write_flows_file(rt, nf, problems) < 0) goto out;
        if (creds_changed && crm_credentials_save(rt->flows_path, rt->settings, creds, problems) < 0) goto out;
    }
    json_t *old_flows = rt->flows_json ? json_incref(rt->flows_json) : json_array();
    json_t *old_creds = rt->credentials ? json_incref(rt->credentials) : NULL;
    double t0 = crm_now_ms();
    pthread_rwlock_wrlock(&rt->nodes_lock);
    if (rt->httpd) crm_httpd_hold(rt->httpd);
    bool was_started = rt->started;
    if (was_started) publish_state(rt, "stop", true);
    bool partial = was_started && type && (!strcmp(type, "nodes") || !strcmp(type, "flows"));
    json_t *keepids = partial ? keep_set(old_flows, nf, !strcmp(type, "flows")) : NULL;
    strbuf lp = SB_INIT;
    if (keepids) {
        crm_runtime_set_credentials(rt, creds);
        creds = NULL;
        rc = partial_swap(rt, nf, keepids, old_creds, problems); /* on failure, the old flows again */
        json_decref(keepids);
    } else {
        rt->redeploying = true;
        stop_flows(rt, false);
        free_flows(rt);
        rt->redeploying = false;
        crm_runtime_set_credentials(rt, creds);
        creds = NULL;
        rc = crm_runtime_load(rt, nf, 0, &lp);
    }
    if (rc && !keepids) {
        /* validated, yet refused (a resource taken meanwhile): back to the old flows */
        sb_printf(problems, "%s", lp.data ? lp.data : "refused");
        free_flows(rt);
        crm_runtime_set_credentials(rt, old_creds ? json_incref(old_creds) : NULL);
        strbuf ignore = SB_INIT;
        crm_runtime_load(rt, old_flows, 0, &ignore);
        sb_free(&ignore);
    }
    sb_free(&lp);
    if (was_started && start_flows(rt) < 0 && !rc) {
        sb_printf(problems, "the new flows did not start");
        rc = -1;
    }
    if (was_started) publish_state(rt, "start", true);
    crm_context_clean(rt);
    rt->deploys++;
    if (rt->httpd) crm_httpd_release(rt->httpd);
    pthread_rwlock_unlock(&rt->nodes_lock);
    crm_log(rt, rc ? CRM_LOG_ERROR : CRM_LOG_INFO, NULL, "%s deploy %s in %.1f ms", type ? type : "full",
            rc ? "failed, the previous flows run again" : "done: flows restarted", crm_now_ms() - t0);
    json_decref(old_flows);
    json_decref(old_creds);
    if (!rc) *status = 200;
    rc = rc ? -1 : 0;
out:
    json_decref(nf);
    json_decref(creds);
    pthread_mutex_unlock(&rt->deploy_mu);
    return rc;
}
