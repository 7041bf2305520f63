/* inject.c: Node-RED's inject node (spec §3.1): typed properties built in
 * order on a fresh message, once/onceDelay, a repeat interval or a crontab
 * (5 or 6 fields, local time), and injection on input (the editor's button
 * arrives as an input through the Admin API). Of several replicas of the same
 * flows, only the holder of the run-once lease (crm_node_holds_lease) fires on the repeat
 * interval or crontab, unless the node opts out: its property
 * "everyReplica": true, or its id in the setting "injectOnEveryReplica". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carmine.h"
#include "cron.h"
#include "strbuf.h"

typedef struct {
    char *p;
    crm_typed *t;  /* NULL when the value could not be compiled */
    char *err;     /* why not */
    bool skip;
} prop;

typedef struct {
    prop *props;
    size_t nprops;
    double repeat_ms;
    bool once;
    double once_ms;
    crm_cron *cron;
    crm_timer *repeat_timer;
    crm_timer *cron_timer;
    bool run_once; /* timed fires only where the lease is held */
} inject_state;

static void compile_prop(crm_node *n, prop *pr, const char *p, const json_t *v, const char *vt)
{
    pr->p = strdup(p);
    if (!*p) {
        pr->skip = true;
        return;
    }
    json_t *empty = json_string("");
    if (!v) v = empty;
    if (!strcmp(vt, "jsonata") && json_is_string(v) && !*json_string_value(v)) pr->skip = true;
    char *err = NULL;
    if (!pr->skip) pr->t = crm_typed_new(n, vt, v, &err);
    if (!pr->skip && !pr->t) {
        /* reported when the node injects; JSONata is also logged now, as Node-RED does */
        pr->err = err ? err : strdup("invalid value");
        if (!strcmp(vt, "jsonata")) crm_node_error(n, NULL, "%s", pr->err);
    } else {
        free(err);
    }
    json_decref(empty);
}

static void compile_props(crm_node *n, const json_t *props, const json_t *config, prop **out, size_t *nout)
{
    size_t np = json_array_size(props);
    prop *ps = calloc(np ? np : 1, sizeof *ps);
    for (size_t i = 0; i < np; i++) {
        json_t *e = json_array_get(props, i);
        const char *p = crm_cfg_str(e, "p", "");
        json_t *v = json_object_get(e, "v");
        const char *vt = crm_cfg_str(e, "vt", NULL);
        /* legacy: payload and topic entries take their value from the node */
        if (config && !strcmp(p, "payload") && !v) {
            v = json_object_get(config, "payload");
            vt = crm_cfg_str(config, "payloadType", vt);
        } else if (config && !strcmp(p, "topic") && vt && !strcmp(vt, "str") && !v) {
            v = json_object_get(config, "topic");
        }
        compile_prop(n, &ps[i], p, v, vt ? vt : "str");
    }
    *out = ps;
    *nout = np;
}

static void free_props(prop *ps, size_t np)
{
    for (size_t i = 0; i < np; i++) {
        free(ps[i].p);
        free(ps[i].err);
        crm_typed_free(ps[i].t);
    }
    free(ps);
}

static void inject_now(crm_node *n, json_t *msg, prop *ps, size_t np)
{
    strbuf errs = SB_INIT;
    for (size_t i = 0; i < np; i++) {
        prop *pr = &ps[i];
        if (pr->skip) continue;
        if (!pr->t) {
            sb_printf(&errs, "%s%s", errs.len ? "; " : "", pr->err);
            continue;
        }
        json_t *v = NULL;
        char *err = NULL;
        if (crm_typed_eval(n, pr->t, msg, &v, &err) < 0) {
            const char *ty = crm_typed_type(pr->t);
            sb_printf(&errs, "%s%s%s", errs.len ? "; " : "",
                      !strcmp(ty, "jsonata") ? "Invalid JSONata expression: " : "", err ? err : "error");
            free(err);
            continue;
        }
        if (crm_msg_set(msg, pr->p, v) < 0) sb_printf(&errs, "%sCannot set property %s", errs.len ? "; " : "", pr->p);
    }
    if (errs.len) {
        crm_node_error(n, msg, "%s", errs.data);
        sb_free(&errs);
        json_decref(msg);
        return;
    }
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

static void inject_input(crm_node *n, json_t *msg)
{
    inject_state *s = crm_node_data(n);
    json_t *user = json_object_get(msg, "__user_inject_props__");
    if (json_is_array(user)) {
        prop *ps;
        size_t np;
        json_incref(user);
        json_object_del(msg, "__user_inject_props__");
        compile_props(n, user, NULL, &ps, &np);
        json_decref(user);
        inject_now(n, msg, ps, np);
        free_props(ps, np);
        return;
    }
    inject_now(n, msg, s->props, s->nprops);
}

/* A timer or once fire: Node-RED emits "input" with {} itself, not through
 * receive, so the message gets its _msgid from send, after its properties
 * (a button press or a wired message goes through receive: _msgid first). */
static void fire(crm_node *n, void *arg)
{
    (void)arg;
    inject_input(n, json_object());
}

/* A repeat or crontab fire: skipped on the replicas without the lease. */
static void timed_fire(crm_node *n, void *arg)
{
    inject_state *s = crm_node_data(n);
    if (s->run_once && !crm_node_holds_lease(n)) return;
    fire(n, arg);
}

static void schedule_cron(crm_node *n);

static void cron_fire(crm_node *n, void *arg)
{
    inject_state *s = crm_node_data(n);
    s->cron_timer = NULL;
    timed_fire(n, arg);
    schedule_cron(n);
}

static void schedule_cron(crm_node *n)
{
    inject_state *s = crm_node_data(n);
    double now = crm_wall_ms();
    time_t next = crm_cron_next(s->cron, (time_t)(now / 1000));
    if (next <= 0) return;
    /* the wall-clock second, placed on the monotonic clock timers run on */
    s->cron_timer = crm_timer_start_at(n, crm_now_ms() + (next * 1000.0 - now), cron_fire, NULL);
}

static void start_repeater(crm_node *n)
{
    inject_state *s = crm_node_data(n);
    if (s->repeat_ms > 0) s->repeat_timer = crm_timer_start(n, s->repeat_ms, s->repeat_ms, timed_fire, NULL);
    else if (s->cron) schedule_cron(n);
}

static void once_fire(crm_node *n, void *arg)
{
    fire(n, arg);
    start_repeater(n);
}

static int inject_create(crm_node *n, const json_t *config)
{
    inject_state *s = calloc(1, sizeof *s);
    crm_node_set_data(n, s);
    json_t *props = json_object_get(config, "props");
    json_t *legacy = NULL;
    if (!json_is_array(props)) {
        legacy = json_pack("[{s:s},{s:s,s:s}]", "p", "payload", "p", "topic", "vt", "str");
        props = legacy;
    }
    compile_props(n, props, config, &s->props, &s->nprops);
    json_decref(legacy);

    double repeat = crm_cfg_num(config, "repeat", 0);
    if (repeat > 2147483) {
        crm_node_error(n, NULL, "Interval too large");
    } else if (repeat > 0) {
        s->repeat_ms = repeat * 1000;
    }
    const char *crontab = crm_cfg_str(config, "crontab", "");
    if (!s->repeat_ms && *crontab) {
        char *err = NULL;
        s->cron = crm_cron_parse(crontab, &err);
        if (!s->cron) {
            crm_node_config_error(n, "crontab", "%s", err ? err : "invalid crontab");
            free(err);
            return -1;
        }
    }
    s->run_once = !crm_cfg_bool(config, "everyReplica", false);
    const json_t *every = json_object_get(crm_node_settings(n), "injectOnEveryReplica");
    size_t i;
    json_t *id;
    json_array_foreach(every, i, id) if (json_is_string(id) && !strcmp(json_string_value(id), crm_node_id(n))) s->run_once = false;
    s->once = crm_cfg_bool(config, "once", false);
    double od = crm_cfg_num(config, "onceDelay", 0.1);
    s->once_ms = (od && !isnan(od) ? od : 0.1) * 1000;
    return 0;
}

static void inject_start(crm_node *n)
{
    inject_state *s = crm_node_data(n);
    if (s->once) crm_timer_start(n, s->once_ms, 0, once_fire, NULL);
    else start_repeater(n);
}

static void inject_close(crm_node *n)
{
    inject_state *s = crm_node_data(n);
    if (!s) return;
    crm_timers_cancel_all(n);
    free_props(s->props, s->nprops);
    crm_cron_free(s->cron);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_inject = {
    .abi = CRM_ABI_VERSION,
    .type = "inject",
    .create = inject_create,
    .start = inject_start,
    .input = inject_input,
    .close = inject_close,
};
