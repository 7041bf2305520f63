/* env.c: environment variables as Node-RED resolves them (spec §5): the
 * built-in NR_* names, env on groups, tabs, subflow instances and
 * global-config, then the process environment; `${VAR}` substitution in node
 * config and env-typed values. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static json_t *flow_path(crm_flow *f)
{
    if (!f) return json_string("global");
    if (f->is_subflow && f->parent) {
        json_t *pp = flow_path(f->parent);
        char *s = NULL;
        if (asprintf(&s, "%s/%s", json_string_value(pp), f->id) < 0) s = NULL;
        json_decref(pp);
        json_t *r = json_string(s ? s : "");
        free(s);
        return r;
    }
    return json_string(f->id);
}

static json_t *process_env(crm_runtime *rt, const char *name)
{
    if (rt && rt->env_override) {
        json_t *v = json_object_get(rt->env_override, name);
        if (json_is_string(v)) return json_incref(v);
        if (v) {
            char *s = crm_stringify(v, 0);
            json_t *r = json_string(s ? s : "");
            free(s);
            return r;
        }
    }
    const char *e = getenv(name);
    return e ? json_string(e) : NULL;
}

static json_t *builtin(crm_node *n, crm_flow *f, crm_group *g, const char *name)
{
    if (strncmp(name, "NR_", 3)) return NULL;
    const char *k = name + 3;
    if (n && !strcmp(k, "NODE_NAME")) return json_string(n->name);
    if (n && !strcmp(k, "NODE_ID")) return json_string(n->id);
    if (n && !strcmp(k, "NODE_PATH")) {
        json_t *fp = flow_path(n->flow);
        char *s = NULL;
        if (asprintf(&s, "%s/%s", json_string_value(fp), n->alias ? n->alias : n->id) < 0) s = NULL;
        json_decref(fp);
        json_t *r = json_string(s ? s : "");
        free(s);
        return r;
    }
    if (g && !strcmp(k, "GROUP_NAME")) return json_string(g->name);
    if (g && !strcmp(k, "GROUP_ID")) return json_string(g->id);
    crm_flow *tab = f;
    while (tab && tab->is_subflow) tab = tab->parent;
    if (tab && !strcmp(k, "FLOW_NAME")) return json_string(tab->label);
    if (tab && !strcmp(k, "FLOW_ID")) return json_string(tab->id);
    if (f && f->is_subflow) {
        if (!strcmp(k, "SUBFLOW_NAME")) return json_string(f->instance && *f->instance->name ? f->instance->name : f->label);
        if (!strcmp(k, "SUBFLOW_ID")) return json_string(f->id);
        if (!strcmp(k, "SUBFLOW_PATH")) return flow_path(f);
    }
    return NULL;
}

static json_t *copy_value(json_t *v)
{
    return (json_is_object(v) || json_is_array(v)) ? crm_deep_copy(v) : json_incref(v);
}

/* The chain: groups, then the flow (subflow instance: its env, its group,
 * then its parent flow), then global-config, then the process. */
static json_t *chain_lookup(crm_runtime *rt, crm_flow *f, crm_group *g, const char *name)
{
    for (; g; g = g->parent) {
        json_t *v = json_object_get(g->env, name);
        if (v) return copy_value(v);
    }
    while (f) {
        json_t *v = json_object_get(f->env, name);
        if (v) return copy_value(v);
        if (f->is_subflow && f->instance) {
            for (crm_group *ig = f->instance->group; ig; ig = ig->parent) {
                json_t *gv = json_object_get(ig->env, name);
                if (gv) return copy_value(gv);
            }
        }
        f = f->is_subflow ? f->parent : NULL;
    }
    json_t *v = json_object_get(rt->global_env, name);
    if (v) return copy_value(v);
    return process_env(rt, name);
}

json_t *crm_env_lookup(crm_runtime *rt, crm_node *n, crm_flow *f, crm_group *g, const char *name)
{
    json_t *b = builtin(n, f, g, name);
    if (b) return b;
    if (!strncmp(name, "$parent.", 8)) {
        name += 8;
        if (g) return chain_lookup(rt, f, g->parent, name);
        return chain_lookup(rt, f && f->is_subflow ? f->parent : NULL, NULL, name);
    }
    return chain_lookup(rt, f, g, name);
}

json_t *crm_node_env(crm_node *n, const char *name)
{
    return crm_env_lookup(n->rt, n, n->flow, n->group, name);
}

static json_t *eval_entry(crm_runtime *rt, const char *type, json_t *value)
{
    const char *s = json_string_value(value);
    if (!strcmp(type, "str")) return json_is_string(value) ? json_incref(value) : json_string_nocheck(s ? s : "");
    if (!strcmp(type, "num")) return crm_num(json_is_number(value) ? crm_num_value(value) : crm_str_to_number(s ? s : ""));
    if (!strcmp(type, "bool")) return json_boolean(json_is_true(value) || (s && !strcmp(s, "true")));
    if (!strcmp(type, "json")) {
        if (!s) return json_incref(value);
        char err[200];
        json_t *v = crm_parse(s, strlen(s), err, sizeof err);
        if (!v) crm_log(rt, CRM_LOG_ERROR, NULL, "Error evaluating env property: %s", err);
        return v;
    }
    if (!strcmp(type, "bin")) {
        char err[200];
        json_t *v = s ? crm_parse(s, strlen(s), err, sizeof err) : NULL;
        json_t *buf = NULL;
        if (json_is_string(v)) buf = crm_buf_new(json_string_value(v), json_string_length(v));
        else if (json_is_array(v)) {
            size_t n = json_array_size(v);
            unsigned char *b = malloc(n ? n : 1);
            for (size_t i = 0; i < n; i++) b[i] = (unsigned char)crm_num_value(json_array_get(v, i));
            buf = crm_buf_new(b, n);
            free(b);
        }
        json_decref(v);
        return buf;
    }
    if (!strcmp(type, "date")) return crm_num(crm_wall_ms());
    if (!strcmp(type, "jsonata")) return NULL;
    return json_incref(value);
}

json_t *crm_env_eval_list(crm_runtime *rt, crm_node *ctxnode, crm_flow *f, crm_group *g, const json_t *list,
                          const json_t *creds)
{
    json_t *out = json_object();
    size_t i;
    json_t *e;
    /* env-typed entries last, so they can refer to siblings */
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(list, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *type = json_string_value(json_object_get(e, "type"));
            json_t *value = json_object_get(e, "value");
            if (!name) continue;
            if (!type) type = "str";
            bool is_env = !strcmp(type, "env");
            if ((pass == 0) == is_env) continue;
            json_t *v;
            if (is_env) {
                const char *ref = json_string_value(value);
                if (!ref) continue;
                if (!strcmp(ref, name)) v = crm_env_lookup(rt, ctxnode, f, g ? g->parent : NULL, name);
                else if ((v = json_object_get(out, ref))) v = json_incref(v);
                else v = crm_env_lookup(rt, ctxnode, f, g, ref);
            } else if (!strcmp(type, "cred")) { /* the editor keeps the value in the credentials */
                v = json_object_get(creds, name);
                v = json_is_string(v) ? json_incref(v) : NULL;
            } else {
                v = eval_entry(rt, type, value);
            }
            if (v) json_object_set_new(out, name, v);
        }
    }
    return out;
}

/* "${NAME}" or "$(NAME)" as the entire string, NAME without whitespace. */
static bool whole_var(const char *s, char *name, size_t cap)
{
    size_t n = strlen(s);
    if (n < 4 || s[0] != '$') return false;
    char open = s[1], close = open == '{' ? '}' : open == '(' ? ')' : 0;
    if (!close || s[n - 1] != close || n - 3 >= cap) return false;
    for (size_t i = 2; i < n - 1; i++)
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '}' || s[i] == ')' || s[i] == '{') return false;
    memcpy(name, s + 2, n - 3);
    name[n - 3] = 0;
    return true;
}

static json_t *subst(crm_runtime *rt, crm_node *n, json_t *v)
{
    if (json_is_string(v)) {
        char name[256];
        if (!whole_var(json_string_value(v), name, sizeof name)) return v;
        json_t *r = crm_env_lookup(rt, n, n ? n->flow : NULL, n ? n->group : NULL, name);
        if (!r) return v;
        json_decref(v);
        return r;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_incref(json_array_get(v, i));
            json_array_set_new(v, i, subst(rt, n, x));
        }
    } else if (json_is_object(v) && !crm_is_buf(v)) {
        const char *k;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, x) {
            if (!strcmp(k, "id") || !strcmp(k, "type") || !strcmp(k, "z") || !strcmp(k, "wires")) continue;
            json_object_set_new(v, k, subst(rt, n, json_incref(x)));
        }
    }
    return v;
}

json_t *crm_env_substitute(crm_runtime *rt, crm_node *n, json_t *config)
{
    return subst(rt, n, config);
}

json_t *crm_env_typed(crm_node *n, const char *value)
{
    char name[256];
    if (whole_var(value, name, sizeof name) && value[1] == '{') {
        json_t *v = crm_node_env(n, name);
        return v ? v : json_string("");
    }
    if (!strstr(value, "${")) {
        json_t *v = crm_node_env(n, value);
        return v ? v : json_string("");
    }
    strbuf sb = SB_INIT;
    const char *p = value;
    while (*p) {
        const char *s = strstr(p, "${");
        const char *e = s ? strchr(s, '}') : NULL;
        if (!s || !e) {
            sb_puts(&sb, p);
            break;
        }
        sb_putn(&sb, p, (size_t)(s - p));
        char *nm = strndup(s + 2, (size_t)(e - s - 2));
        json_t *v = crm_node_env(n, nm);
        if (v) {
            char *t = crm_to_string(v);
            sb_puts(&sb, t);
            free(t);
            json_decref(v);
        }
        free(nm);
        p = e + 1;
    }
    char *s = sb_take(&sb);
    json_t *r = json_string(s);
    free(s);
    return r;
}
