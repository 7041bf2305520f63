/* context.c: node, flow and global context (spec §4) on the memory store:
 * keys are property expressions, a "#:(store)::" prefix names a store,
 * "$parent." climbs from a subflow's flow context to its parent's. The global
 * scope is shared by all loops, so it is read and written under a lock;
 * node and flow scopes belong to one loop and need none. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Strips "#:(store)::" from key; returns the rest (borrowed from key). */
static const char *strip_store(const char *key)
{
    if (!strncmp(key, "#:(", 3)) {
        const char *e = strstr(key, ")::");
        if (e) return e + 3;
    }
    return key;
}

static json_t *scope_root(crm_node *n, crm_scope scope, const char **key)
{
    switch (scope) {
    case CRM_SCOPE_NODE: return n->ctx;
    case CRM_SCOPE_GLOBAL: return n->rt->global_ctx;
    case CRM_SCOPE_FLOW: break;
    }
    crm_flow *f = n->flow;
    while (!strncmp(*key, "$parent.", 8)) {
        *key += 8;
        if (f && f->is_subflow) f = f->parent;
        else return n->rt->global_ctx;
    }
    return f ? f->ctx : n->rt->global_ctx;
}

json_t *crm_context_get(crm_node *n, crm_scope scope, const char *key)
{
    return crm_context_get_msg(n, scope, key, NULL);
}

json_t *crm_context_get_msg(crm_node *n, crm_scope scope, const char *key, const json_t *msg)
{
    if (!key || !*key) return NULL;
    key = strip_store(key);
    json_t *root = scope_root(n, scope, &key);
    char *err = NULL;
    crm_path *p = crm_path_parse(key, &err);
    free(err);
    if (!p) return NULL;
    bool global = root == n->rt->global_ctx;
    if (global) pthread_mutex_lock(&n->rt->global_lock);
    bool throws = false;
    json_t *v = json_incref(crm_path_get(p, root, msg, &throws));
    if (global) pthread_mutex_unlock(&n->rt->global_lock);
    crm_path_free(p);
    return v;
}

int crm_context_set(crm_node *n, crm_scope scope, const char *key, json_t *value)
{
    if (!key || !*key) {
        json_decref(value);
        return -1;
    }
    key = strip_store(key);
    json_t *root = scope_root(n, scope, &key);
    char *err = NULL;
    crm_path *p = crm_path_parse(key, &err);
    free(err);
    if (!p) {
        json_decref(value);
        return -1;
    }
    bool global = root == n->rt->global_ctx;
    if (global) pthread_mutex_lock(&n->rt->global_lock);
    int rc = crm_path_set(p, root, NULL, value, true);
    if (global) pthread_mutex_unlock(&n->rt->global_lock);
    crm_path_free(p);
    return rc;
}

json_t *crm_context_keys(crm_node *n, crm_scope scope, const char *store)
{
    (void)store;
    const char *key = "";
    json_t *root = scope_root(n, scope, &key);
    bool global = root == n->rt->global_ctx;
    json_t *keys = json_array();
    if (global) pthread_mutex_lock(&n->rt->global_lock);
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) json_array_append_new(keys, json_string(k));
    if (global) pthread_mutex_unlock(&n->rt->global_lock);
    return keys;
}

int crm_runtime_context_init(crm_runtime *rt, const char *scope, const char *flow_id, const json_t *value)
{
    if (!json_is_object(value)) return -1;
    json_t *root = NULL;
    if (!strcmp(scope, "global")) {
        root = rt->global_ctx;
    } else if (!strcmp(scope, "flow")) {
        for (size_t i = 0; i < rt->nflows && !root; i++) {
            crm_flow *f = rt->flows[i];
            if (f->is_subflow || f == rt->global_flow) continue;
            if (!flow_id || !strcmp(f->id, flow_id)) root = f->ctx;
        }
    }
    if (!root) return -1;
    json_t *copy = crm_deep_copy(value);
    json_object_update(root, copy);
    json_decref(copy);
    return 0;
}
