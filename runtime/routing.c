/* routing.c: where errors, status changes and completions go: catch, status
 * and complete nodes, with Node-RED's scope and group-distance rules
 * (spec §2.6, §2.7, §3.3), bubbling out of subflow instances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static bool scope_has(const json_t *scope, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(scope, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), id)) return true;
    return false;
}

static int group_depth(const crm_group *g)
{
    int d = 0;
    for (; g; g = g->parent) d++;
    return d;
}

/* Distance from the reporter's group up to the watcher's group; -1 when the
 * watcher is group-scoped and not an ancestor. */
static int distance(const crm_node *watcher, const crm_node *reporter)
{
    bool group_scoped = json_is_string(watcher->catch_scope) && !strcmp(json_string_value(watcher->catch_scope), "group");
    if (group_scoped && !reporter->group) return -1;
    if (json_is_array(watcher->catch_scope) && !scope_has(watcher->catch_scope, reporter->id)) return -1;
    if (!reporter->group) return 0;
    int d = 0;
    for (const crm_group *g = reporter->group; g; g = g->parent, d++)
        if (g == watcher->group) return d;
    if (group_scoped) return -1;
    return group_depth(reporter->group);
}

typedef struct {
    crm_node *node;
    int dist;
} candidate;

static size_t candidates(crm_node **list, size_t n, const crm_node *reporter, candidate *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int d = distance(list[i], reporter);
        if (d >= 0) out[k++] = (candidate){list[i], d};
    }
    /* stable insertion sort by distance */
    for (size_t i = 1; i < k; i++) {
        candidate c = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1].dist > c.dist) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    return k;
}

static json_t *source_of(const crm_node *n)
{
    json_t *src = json_object();
    json_object_set_new(src, "id", json_string(n->id));
    json_object_set_new(src, "type", json_string(crm_node_type_name(n)));
    /* Node-RED copies `name` as configured, "" included */
    if ((n->type->flags & CRM_TYPE_KEEPS_NAME) || (n->name && *n->name))
        json_object_set_new(src, "name", json_string(n->name));
    return src;
}

/* String(err) of an Error object reads "<Name>Error: message"; such errors
 * carry a stack in Node-RED, plain-string errors do not. */
static bool from_error_object(const char *text)
{
    if (!text) return false;
    const char *p = text;
    if (!(*p >= 'A' && *p <= 'Z')) return false;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
    return p - text >= 5 && !strncmp(p - 5, "Error: ", 7);
}

bool crm_error_is_object(const char *text, const json_t *extra)
{
    return json_object_get(extra, "stack") || from_error_object(text);
}

char *crm_error_stack(const crm_node *source, const char *text)
{
    char *stack = NULL;
    if (asprintf(&stack, "%s\n    at %s (%s)", text, source->type->type, source->id) < 0) return strdup(text);
    return stack;
}

static bool handle_error(crm_flow *f, crm_node *reporter, crm_node *source, const json_t *msg, const char *text,
                         const json_t *extra, int count)
{
    bool handled = false, uncaught_accepting = false;
    if (f->ncatches) {
        candidate *c = malloc(f->ncatches * sizeof *c);
        size_t k = candidates(f->catches, f->ncatches, reporter, c);
        for (size_t i = 0; i < k; i++) {
            crm_node *catcher = c[i].node;
            if (catcher->catch_uncaught && handled && !uncaught_accepting) continue;
            if (catcher->catch_uncaught) uncaught_accepting = true;
            json_t *m = crm_msg_clone(msg);
            json_t *old = json_object_get(m, "error");
            if (old) {
                json_object_set(m, "_error", old);
                json_object_del(m, "error");
            }
            json_t *err = json_object();
            json_object_set_new(err, "message", json_string(text));
            json_t *src = source_of(source);
            json_object_set_new(src, "count", json_real(count));
            json_object_set_new(err, "source", src);
            /* Node-RED's order: message, source, code, stack, cause (then
             * the other members of extra) */
            json_t *code = json_object_get(extra, "code");
            if (code) json_object_set_new(err, "code", crm_deep_copy(code));
            json_t *xstack = json_object_get(extra, "stack");
            if (xstack) {
                json_object_set_new(err, "stack", crm_deep_copy(xstack));
            } else if (from_error_object(text)) {
                char *stack = crm_error_stack(source, text);
                json_object_set_new(err, "stack", json_string(stack));
                free(stack);
            }
            const char *k;
            json_t *x;
            if (extra)
                json_object_foreach((json_t *)extra, k, x) if (strcmp(k, "code") && strcmp(k, "stack"))
                    json_object_set_new(err, k, crm_deep_copy(x));
            json_object_set_new(m, "error", err);
            crm_loop_deliver_now(catcher, m);
            handled = true;
        }
        free(c);
    }
    if (!handled && f->is_subflow && f->parent)
        return handle_error(f->parent, f->instance, source, msg, text, extra, count);
    return handled;
}

void crm_route_error(crm_node *n, const json_t *msg, const char *text, bool *handled)
{
    crm_route_error_ex(n, msg, text, NULL, handled);
}

void crm_route_error_ex(crm_node *n, const json_t *msg, const char *text, const json_t *extra, bool *handled)
{
    *handled = false;
    CRM_STAT_ADD(n->stats.errors, 1);
    if (!n->flow) return;
    int count = 1;
    json_t *src = json_object_get(json_object_get(msg, "error"), "source");
    const char *sid = json_string_value(json_object_get(src, "id"));
    if (sid && !strcmp(sid, n->id)) {
        count = (int)crm_num_value(json_object_get(src, "count")) + 1;
        if (count >= 10) {
            crm_log(n->rt, CRM_LOG_WARN, n, "Message exceeded maximum number of catches");
            return;
        }
    }
    *handled = handle_error(n->flow, n, n, msg, text, extra, count);
}

/* source_as, when given, stands for source in status.source: a node inside a
 * subflow instance run by the companion, which has no crm_node here */
static bool handle_status(crm_flow *f, crm_node *reporter, crm_node *source, const json_t *source_as,
                          const json_t *status)
{
    bool handled = false;
    if (f->nstatuses) {
        candidate *c = malloc(f->nstatuses * sizeof *c);
        size_t k = candidates(f->statuses, f->nstatuses, reporter, c);
        for (size_t i = 0; i < k; i++) {
            json_t *st = crm_deep_copy(status);
            json_t *text = json_object_get(st, "text");
            if (text && !json_is_string(text)) {
                char *s = crm_to_string(text);
                json_object_set_new(st, "text", json_string(s));
                free(s);
            }
            json_object_set_new(st, "source", source_as ? crm_deep_copy(source_as) : source_of(source));
            json_t *m = json_object();
            json_object_set_new(m, "status", st);
            char id[17];
            json_object_set_new(m, "_msgid", json_string(crm_make_id(id)));
            crm_loop_deliver_now(c[i].node, m);
            handled = true;
        }
        free(c);
    }
    if (!handled && f->is_subflow && f->parent && !f->nstatus_out)
        return handle_status(f->parent, f->instance, source, source_as, status);
    return handled;
}

void crm_route_status(crm_node *n, json_t *status)
{
    if (n->flow) handle_status(n->flow, n, n, NULL, status);
}

void crm_route_status_as(crm_node *n, const json_t *status, const json_t *source)
{
    if (n->flow) handle_status(n->flow, n, n, source, status);
}

void crm_route_complete(crm_node *n, const json_t *msg)
{
    crm_flow *f = n->flow;
    for (size_t i = 0; f && i < f->ncompletes; i++) {
        crm_node *c = f->completes[i];
        if (!json_is_array(c->catch_scope) || !scope_has(c->catch_scope, n->id)) continue;
        json_t *m = crm_msg_clone(msg);
        json_t *comp = json_object();
        json_object_set_new(comp, "source", source_of(n));
        json_object_set_new(m, "complete", comp);
        crm_loop_deliver(c, m);
    }
}
