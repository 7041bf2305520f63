/* link_call.c: Node-RED's link call node (spec §3.4): calls a link in
 * (static id or dynamic msg.target by id or name), pushes a return address on
 * msg._linkSource and waits (a timer, never blocking) for a link out in return
 * mode to hand the message back; on timeout the pre-call message goes to
 * catch nodes with "timeout". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"

typedef struct pending {
    char id[29];
    json_t *orig; /* the message as it was before the call */
    crm_timer *timer;
    struct pending *next;
} pending;

typedef struct {
    char *target;
    bool dynamic;
    double timeout_ms;
    pending *calls;
} link_call_state;

typedef struct {
    const char *name;
    crm_node *self;
    crm_node *found[2];
    int nsame, nall;
    crm_node *same[2];
} name_search;

static void by_name(crm_node *cand, void *arg)
{
    name_search *s = arg;
    const char *nm = *crm_node_name(cand) ? crm_node_name(cand) : crm_node_id(cand);
    if (strcmp(nm, s->name)) return;
    if (crm_node_same_flow(cand, s->self)) {
        if (s->nsame < 2) s->same[s->nsame] = cand;
        s->nsame++;
    }
    if (!crm_node_in_subflow(cand)) {
        if (s->nall < 2) s->found[s->nall] = cand;
        s->nall++;
    }
}

static crm_node *resolve(crm_node *n, link_call_state *s, const char *target, char **err)
{
    crm_node *t = crm_node_find(n, target);
    if (t && !strcmp(crm_node_type_name(t), "link in")) return t;
    name_search ns = {target, n, {0}, 0, 0, {0}};
    crm_each_node_of_type(n, "link in", by_name, &ns);
    if (s->dynamic && ns.nsame == 1) return ns.same[0];
    if (ns.nall == 1) return ns.found[0];
    if (asprintf(err, ns.nall > 1 ? "Error: Multiple link-in nodes named '%s' found" : "Error: target link-in node '%s' not found",
                 target) < 0)
        *err = NULL;
    return NULL;
}

static void forget(link_call_state *s, pending *p)
{
    for (pending **pp = &s->calls; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    json_decref(p->orig);
    free(p);
}

static void on_timeout(crm_node *n, void *arg)
{
    link_call_state *s = crm_node_data(n);
    pending *p = arg;
    p->timer = NULL;
    crm_node_error(n, p->orig, "timeout");
    forget(s, p);
}

static void link_call_input(crm_node *n, json_t *msg)
{
    link_call_state *s = crm_node_data(n);
    const char *target = s->target;
    if (s->dynamic) target = json_string_value(json_object_get(msg, "target"));
    char *err = NULL;
    crm_node *t = target ? resolve(n, s, target, &err) : NULL;
    if (!t) {
        if (!err && asprintf(&err, "Error: target link-in node '%s' not found", target ? target : "") < 0) err = NULL;
        crm_node_error(n, msg, "%s", err ? err : "link call failed");
        free(err);
        json_decref(msg);
        return;
    }
    pending *p = calloc(1, sizeof *p);
    char a[17], b[17];
    snprintf(p->id, sizeof p->id, "%s%.12s", crm_make_id(a), crm_make_id(b));
    p->orig = crm_msg_clone(msg);
    json_t *stack = json_object_get(msg, "_linkSource");
    if (!json_is_array(stack)) {
        stack = json_array();
        json_object_set_new(msg, "_linkSource", stack);
    }
    json_array_append_new(stack, json_pack("{s:s,s:s}", "id", p->id, "node", crm_node_id(n)));
    p->timer = crm_timer_start(n, s->timeout_ms, 0, on_timeout, p);
    p->next = s->calls;
    s->calls = p;
    crm_node_receive(t, msg);
}

typedef struct {
    char *event;
    json_t *msg;
} returned;

static void on_return(crm_node *n, void *arg)
{
    returned *r = arg;
    link_call_state *s = crm_node_data(n);
    pending *p = NULL;
    for (pending *q = s ? s->calls : NULL; q; q = q->next)
        if (r->event && !strcmp(q->id, r->event)) p = q;
    if (p) {
        crm_timer_cancel(p->timer);
        forget(s, p);
    }
    crm_node_send(n, 0, r->msg);
    if (p) crm_node_done(n, r->msg);
    free(r->event);
    free(r);
}

void crm_link_call_return(crm_node *from, crm_node *call, const char *event_id, json_t *msg)
{
    returned *r = malloc(sizeof *r);
    r->event = event_id ? strdup(event_id) : NULL;
    r->msg = msg;
    /* Node-RED's link out calls returnLinkMessage inside its own handler:
     * the link call sends and completes before the link out's done(). A
     * link call on another flow runs on another loop and can only be posted. */
    if (crm_node_same_flow(from, call)) on_return(call, r);
    else crm_node_post(call, on_return, r);
}

static int link_call_create(crm_node *n, const json_t *config)
{
    link_call_state *s = calloc(1, sizeof *s);
    crm_node_set_data(n, s);
    s->dynamic = !strcmp(crm_cfg_str(config, "linkType", "static"), "dynamic");
    json_t *links = json_object_get(config, "links");
    const char *first = json_string_value(json_array_get(links, 0));
    s->target = first ? strdup(first) : NULL;
    double t = crm_cfg_num(config, "timeout", 30);
    s->timeout_ms = t == t ? t * 1000 : 30000;
    if (!s->dynamic && !s->target) crm_node_warn(n, "no target link-in node configured");
    return 0;
}

static void link_call_close(crm_node *n)
{
    link_call_state *s = crm_node_data(n);
    if (!s) return;
    crm_timers_cancel_all(n);
    while (s->calls) {
        pending *p = s->calls;
        s->calls = p->next;
        json_decref(p->orig);
        free(p);
    }
    free(s->target);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_link_call = {
    .abi = CRM_ABI_VERSION,
    .type = "link call",
    .create = link_call_create,
    .input = link_call_input,
    .close = link_call_close,
};
