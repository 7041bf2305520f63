/* loader.c: turns a Node-RED flows export into flows, groups and node
 * instances (spec §1): validation with messages that name node, field and
 * reason; tabs, disabled tabs and nodes, implicit tabs, config nodes, groups,
 * subflow instances flattened with derived ids, computed link wiring, the
 * catch/status/complete lists. Nothing runs until every node was created. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine.h"
#include "sha256.h"
#include "companion/companion.h"
#include "metrics.h"

extern _Thread_local strbuf *crm_config_problems;
extern _Thread_local int crm_config_problem_count;
extern const crm_node_type crm_type_subflow_instance;
extern const crm_node_type crm_type_subflow_status;

#define IMPLICIT_TAB_ID "__flowtest_tab__"

typedef struct {
    crm_runtime *rt;
    unsigned flags;
    strbuf *problems;
    int nproblems;
    json_t *byid;      /* id -> object (borrowed from the flows array) */
    json_t *tabs;      /* id -> tab object */
    json_t *subflows;  /* id -> subflow definition */
    json_t *link_wires; /* link out id -> array of link in ids */
} loader;

static void problem(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(loader *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (L->problems) {
        sb_vprintf(L->problems, fmt, ap);
        sb_putc(L->problems, '\n');
    }
    va_end(ap);
    L->nproblems++;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool is_flow_node(const json_t *o)
{
    return json_object_get(o, "x") && json_object_get(o, "y");
}

static bool disabled(const json_t *o)
{
    return json_is_true(json_object_get(o, "d"));
}

/* Pass 1: shape checks, id index, missing types ---------------------------------- */

static int check_shape(loader *L, const json_t *flows)
{
    if (!json_is_array(flows)) {
        problem(L, "flows: the file must hold a JSON array of node objects");
        return 1;
    }
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) {
        if (!json_is_object(o)) {
            problem(L, "item %zu: not an object", i);
            continue;
        }
        const char *id = str(o, "id"), *type = str(o, "type");
        if (!id || !*id) {
            problem(L, "item %zu: field id: missing or not a string", i);
            continue;
        }
        if (!type) {
            problem(L, "node %s: field type: missing or not a string", id);
            continue;
        }
        if (json_object_get(L->byid, id)) {
            problem(L, "node %s (%s): field id: duplicate id", id, type);
            continue;
        }
        json_object_set(L->byid, id, o);
        if (!strcmp(type, "tab")) json_object_set(L->tabs, id, o);
        else if (!strcmp(type, "subflow")) json_object_set(L->subflows, id, o);
        json_t *wires = json_object_get(o, "wires");
        if (wires && !json_is_array(wires)) problem(L, "node %s (%s): field wires: not an array", id, type);
    }
    return L->nproblems ? 1 : 0;
}

static bool container_type(const char *type)
{
    return !strcmp(type, "tab") || !strcmp(type, "subflow") || !strcmp(type, "group");
}

static int check_types(loader *L, const json_t *flows)
{
    json_t *missing = json_object(); /* type -> [ids] */
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) {
        const char *type = str(o, "type");
        if (container_type(type)) continue;
        bool known;
        if (crm_companion_hosted(o)) known = true; /* a subflow instance too: its subflow went to the companion */
        else if (!strncmp(type, "subflow:", 8)) known = json_object_get(L->subflows, type + 8) != NULL;
        else known = crm_lookup_type(type) != NULL;
        if (known) continue;
        json_t *ids = json_object_get(missing, type);
        if (!ids) json_object_set_new(missing, type, ids = json_array());
        json_array_append_new(ids, json_string(str(o, "id")));
    }
    const char *type;
    json_t *ids;
    json_object_foreach(missing, type, ids) {
        strbuf sb = SB_INIT;
        size_t k;
        json_t *id;
        json_array_foreach(ids, k, id) sb_printf(&sb, "%s%s", k ? ", " : "", json_string_value(id));
        problem(L, "unknown node type '%s' used by node%s %s", type, json_array_size(ids) > 1 ? "s" : "", sb.data);
        sb_free(&sb);
    }
    int n = (int)json_object_size(missing);
    json_decref(missing);
    return n ? 2 : 0;
}

/* Subflows that contain themselves (§1.5) ---------------------------------------------
 * An instance of a subflow inside its own definition, directly or through
 * other subflows, would be instantiated without end. Node-RED's editor
 * refuses to add one ("Cannot add subflow to itself", "Cannot add subflow -
 * circular reference detected"); a file that holds one anyway is refused here,
 * naming the subflow and the path. Disabled instances are never instantiated
 * and do not count. Nesting is also bounded, as is the number of nodes the
 * instances expand to (each level can multiply it). */

#define MAX_SUBFLOW_DEPTH 64
#define MAX_EXPANDED_NODES 1000000

typedef struct {
    const char *id;
    size_t *kids;          /* subflow indexes of the instances inside */
    const char **kid_node; /* the instance node of each */
    size_t nkids, own;     /* own: nodes that are not containers or disabled */
    int state;             /* 0 unvisited, 1 on the path, 2 done */
    size_t next;           /* the next kid to visit */
    double size;           /* nodes one instance expands to */
    int depth;
} sf_info;

static const char *subflow_label(loader *L, const char *id)
{
    const char *name = str(json_object_get(L->subflows, id), "name");
    return name && *name ? name : id;
}

static void report_cycle(loader *L, sf_info *sf, const size_t *path, size_t npath, size_t child, const char *inst)
{
    const char *id = sf[child].id;
    if (path[npath - 1] == child) {
        problem(L, "subflow %s (%s): Cannot add subflow to itself (node %s is an instance of it)", id,
                subflow_label(L, id), inst);
        return;
    }
    strbuf sb = SB_INIT;
    size_t start = 0;
    for (size_t k = 0; k < npath; k++)
        if (path[k] == child) start = k;
    for (size_t k = start; k < npath; k++) {
        if (npath - start > 12 && k == start + 5) { /* a long cycle: its ends */
            sb_printf(&sb, "(%zu more) -> ", npath - start - 10);
            k = npath - 5;
        }
        sb_printf(&sb, "%s -> ", subflow_label(L, sf[path[k]].id));
    }
    sb_printf(&sb, "%s", subflow_label(L, id));
    problem(L, "subflow %s (%s): Cannot add subflow - circular reference detected (%s)", id, subflow_label(L, id),
            sb.data);
    sb_free(&sb);
}

/* One depth-first walk (with its own stack: a file can chain any number of
 * subflows) finds the cycles and, in post-order, each subflow's expanded size
 * and nesting depth. */
static int check_subflows(loader *L, const json_t *flows)
{
    size_t n = json_object_size(L->subflows);
    if (!n) return 0;
    sf_info *sf = calloc(n, sizeof *sf);
    json_t *index = json_object();
    size_t k = 0;
    const char *id;
    json_t *def;
    json_object_foreach(L->subflows, id, def) {
        sf[k].id = id;
        json_object_set_new(index, id, json_integer((json_int_t)k));
        k++;
    }
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z"), *type = str(o, "type");
        json_t *zi = z ? json_object_get(index, z) : NULL;
        if (!zi || container_type(type) || disabled(o)) continue;
        sf_info *s = &sf[json_integer_value(zi)];
        s->own++;
        json_t *ci = strncmp(type, "subflow:", 8) ? NULL : json_object_get(index, type + 8);
        if (!ci) continue;
        s->kids = realloc(s->kids, (s->nkids + 1) * sizeof *s->kids);
        s->kid_node = realloc(s->kid_node, (s->nkids + 1) * sizeof *s->kid_node);
        s->kids[s->nkids] = (size_t)json_integer_value(ci);
        s->kid_node[s->nkids++] = str(o, "id");
    }
    size_t *path = malloc(n * sizeof *path), npath = 0;
    bool cycle = false;
    for (size_t root = 0; root < n; root++) {
        if (sf[root].state) continue;
        sf[root].state = 1;
        path[npath++] = root;
        while (npath) {
            sf_info *s = &sf[path[npath - 1]];
            if (s->next < s->nkids) {
                size_t c = s->kids[s->next];
                const char *inst = s->kid_node[s->next++];
                if (sf[c].state == 1) {
                    if (sf[c].depth != -1) report_cycle(L, sf, path, npath, c, inst);
                    sf[c].depth = -1; /* reported */
                    cycle = true;
                } else if (sf[c].state == 0) {
                    sf[c].state = 1;
                    path[npath++] = c;
                }
                continue;
            }
            /* every kid is done: size and depth */
            s->size = (double)s->own;
            int deepest = 0;
            for (size_t j = 0; j < s->nkids; j++) {
                s->size += sf[s->kids[j]].size;
                if (sf[s->kids[j]].depth > deepest) deepest = sf[s->kids[j]].depth;
            }
            if (s->depth >= 0) s->depth = deepest + 1;
            s->state = 2;
            npath--;
        }
    }
    if (!cycle) {
        /* the instances outside any subflow: how deep and how many nodes */
        double total = 0;
        json_array_foreach(flows, i, o) {
            const char *z = str(o, "z"), *type = str(o, "type");
            if (strncmp(type, "subflow:", 8) || disabled(o) || (z && json_object_get(index, z))) continue;
            json_t *ci = json_object_get(index, type + 8);
            if (!ci) continue;
            sf_info *s = &sf[json_integer_value(ci)];
            total += s->size;
            if (s->depth > MAX_SUBFLOW_DEPTH) {
                problem(L, "node %s (%s): subflows nest %d deep here; at most %d levels are allowed", str(o, "id"),
                        type, s->depth, MAX_SUBFLOW_DEPTH);
                break;
            }
        }
        if (!L->nproblems && total > MAX_EXPANDED_NODES)
            problem(L, "flows: the subflow instances expand to %.0f nodes; at most %d are allowed", total,
                    MAX_EXPANDED_NODES);
    }
    for (k = 0; k < n; k++) {
        free(sf[k].kids);
        free(sf[k].kid_node);
    }
    free(sf);
    free(path);
    json_decref(index);
    return L->nproblems ? 1 : 0;
}

/* Link wiring (§1.6) ------------------------------------------------------------------- */

static void add_link(loader *L, const char *out_id, const char *in_id)
{
    json_t *arr = json_object_get(L->link_wires, out_id);
    if (!arr) json_object_set_new(L->link_wires, out_id, arr = json_array());
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), in_id)) return;
    json_array_append_new(arr, json_string(in_id));
}

static void compute_links(loader *L, const json_t *flows)
{
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) {
        const char *type = str(o, "type");
        json_t *links = json_object_get(o, "links");
        if (!json_is_array(links)) continue;
        if (!strcmp(type, "link out")) {
            if (!json_object_get(L->link_wires, str(o, "id")))
                json_object_set_new(L->link_wires, str(o, "id"), json_array());
            size_t k;
            json_t *t;
            json_array_foreach(links, k, t) if (json_is_string(t)) add_link(L, str(o, "id"), json_string_value(t));
        } else if (!strcmp(type, "link in")) {
            size_t k;
            json_t *t;
            json_array_foreach(links, k, t) {
                if (!json_is_string(t)) continue;
                json_t *lo = json_object_get(L->byid, json_string_value(t));
                if (lo && !strcmp(str(lo, "type"), "link out")) add_link(L, json_string_value(t), str(o, "id"));
            }
        }
    }
}

/* Building ----------------------------------------------------------------------------- */

static crm_flow *flow_new(crm_runtime *rt, const char *id, const char *label)
{
    crm_flow *f = calloc(1, sizeof *f);
    f->id = strdup(id);
    f->label = strdup(label ? label : "");
    f->rt = rt;
    rt->flows = realloc(rt->flows, (rt->nflows + 1) * sizeof *rt->flows);
    rt->flows[rt->nflows++] = f;
    return f;
}

static void push_node(crm_node ***arr, size_t *n, crm_node *node)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = node;
}

static crm_group *find_group(crm_runtime *rt, const char *id)
{
    for (size_t i = 0; id && i < rt->ngroups; i++)
        if (!strcmp(rt->groups[i]->id, id)) return rt->groups[i];
    return NULL;
}

static crm_group *group_new(crm_runtime *rt, const json_t *g, const char *id)
{
    crm_group *grp = calloc(1, sizeof *grp);
    grp->id = strdup(id);
    grp->name = strdup(str(g, "name") ? str(g, "name") : "");
    rt->groups = realloc(rt->groups, (rt->ngroups + 1) * sizeof *rt->groups);
    rt->groups[rt->ngroups++] = grp;
    return grp;
}

/* The config as the node sees it: a deep copy with ids rewritten (subflow
 * instances) and `${VAR}` substituted. */
/* A node's config copy gets its credentials (flows_cred.json and inline). */
static void set_credentials(crm_runtime *rt, json_t *cfg, const char *template_id)
{
    json_t *c = crm_credentials_of(rt, cfg, template_id);
    if (c) json_object_set_new(cfg, "credentials", c);
}

/* A node a partial deploy keeps running (runtime.c), or NULL. */
static crm_node *kept_node(crm_runtime *rt, const char *id, const char *alias)
{
    json_t *k = alias || !rt->keep ? NULL : json_object_get(rt->keep, id);
    return k ? (crm_node *)(intptr_t)json_integer_value(k) : NULL;
}

/* config is stolen, except for a kept node (it keeps the config it was
 * created with, the same but for wires, x and y): the caller frees it. */
static crm_node *node_new(loader *L, crm_flow *f, json_t *config, const char *id, const char *alias)
{
    crm_runtime *rt = L->rt;
    crm_node *n = kept_node(rt, id, alias);
    if (n) {
        /* the same instance, in the new flows: new wires, flow and group */
        for (int p = 0; p < n->nports; p++) {
            for (int w = 0; n->wire_ids[p] && n->wire_ids[p][w]; w++) free(n->wire_ids[p][w]);
            free(n->wire_ids[p]);
            free(n->wires[p]);
        }
        free(n->wire_ids);
        free(n->wires);
        free(n->nwires);
        n->flow = f;
        n->group = NULL;
        n->kept = true;
    } else {
        n = calloc(1, sizeof *n);
        n->rt = rt;
        n->flow = f;
        n->id = strdup(id);
        n->alias = alias ? strdup(alias) : NULL;
        const char *type = str(config, "type");
        n->type = crm_companion_hosted(config)      ? &crm_companion_bridge_type
                  : !strncmp(type, "subflow:", 8) ? &crm_type_subflow_instance
                                                  : crm_lookup_type(type);
        const char *name = str(config, "name");
        n->name = strdup(name ? name : "");
        n->z = str(config, "z") ? strdup(str(config, "z")) : NULL;
        n->is_config = !is_flow_node(config);
        n->config = config;
    }
    json_t *wires = json_object_get(config, "wires");
    n->nports = json_is_array(wires) ? (int)json_array_size(wires) : 0;
    n->nwires = calloc(n->nports ? n->nports : 1, sizeof *n->nwires);
    n->wires = calloc(n->nports ? n->nports : 1, sizeof *n->wires);
    n->wire_ids = calloc(n->nports ? n->nports : 1, sizeof *n->wire_ids);
    for (int p = 0; p < n->nports; p++) {
        json_t *port = json_array_get(wires, p);
        size_t k, cnt = json_is_array(port) ? json_array_size(port) : 0;
        n->wire_ids[p] = calloc(cnt + 1, sizeof(char *));
        json_t *t;
        int w = 0;
        if (cnt)
            json_array_foreach(port, k, t) if (json_is_string(t)) n->wire_ids[p][w++] = strdup(json_string_value(t));
        n->nwires[p] = w;
    }
    rt->nodes = realloc(rt->nodes, (rt->nnodes + 1) * sizeof *rt->nodes);
    rt->nodes[rt->nnodes++] = n;
    json_object_set_new(rt->node_index, id, json_integer((json_int_t)rt->nnodes));
    push_node(&f->nodes, &f->nnodes, n);
    return n;
}

static void set_link_wires(loader *L, json_t *cfg, const char *orig_id, const char *prefix)
{
    json_t *lw = json_object_get(L->link_wires, orig_id);
    if (!lw || strcmp(str(cfg, "type"), "link out")) return;
    const char *mode = str(cfg, "mode");
    if (mode && !strcmp(mode, "return")) return;
    json_t *port = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(lw, i, v) {
        if (prefix) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s-%s", prefix, json_string_value(v));
            json_array_append_new(port, json_string(buf));
        } else {
            json_array_append(port, v);
        }
    }
    json_object_set_new(cfg, "wires", json_pack("[o]", port));
}

/* Subflow instances ------------------------------------------------------------------- */

static void instantiate(loader *L, crm_flow *parent, crm_node *inst, const json_t *flows);

static json_t *rewrite_ids(json_t *v, const json_t *idmap)
{
    if (json_is_string(v)) {
        json_t *m = json_object_get(idmap, json_string_value(v));
        return m ? json_incref(m) : json_incref(v);
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, rewrite_ids(x, idmap));
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) json_object_set_new(o, k, rewrite_ids(x, idmap));
        return o;
    }
    return json_incref(v);
}

static void instantiate(loader *L, crm_flow *parent, crm_node *inst, const json_t *flows)
{
    crm_runtime *rt = L->rt;
    const char *defid = str(inst->config, "type") + 8;
    json_t *def = json_object_get(L->subflows, defid);
    crm_flow *f = flow_new(rt, inst->id, str(def, "name"));
    f->is_subflow = true;
    f->parent = parent;
    f->instance = inst;
    f->loop = parent->loop;
    f->subflow_def = def;

    /* template env overridden by the instance's, by name */
    json_t *env = json_array();
    json_t *tenv = json_object_get(def, "env"), *ienv = json_object_get(inst->config, "env");
    size_t i;
    json_t *e;
    json_array_foreach(tenv, i, e) {
        bool overridden = false;
        size_t k;
        json_t *ie;
        json_array_foreach(ienv, k, ie) if (str(ie, "name") && str(e, "name") && !strcmp(str(ie, "name"), str(e, "name")))
            overridden = true;
        if (!overridden) json_array_append(env, e);
    }
    json_array_foreach(ienv, i, e) json_array_append(env, e);
    /* the instance's credentials over the template's, by name */
    json_t *creds = crm_credentials_of(rt, def, NULL);
    json_t *icreds = json_object_get(inst->config, "credentials");
    if (json_is_object(icreds)) {
        if (!creds) creds = json_object();
        json_object_update(creds, icreds);
    }
    f->env = crm_env_eval_list(rt, inst, parent, inst->group, env, creds);
    json_decref(creds);
    json_decref(env);

    /* id map: template ids -> instance ids */
    json_t *idmap = json_object();
    json_t *o;
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        if (!z || strcmp(z, defid)) continue;
        char buf[512];
        snprintf(buf, sizeof buf, "%s-%s", inst->id, str(o, "id"));
        json_object_set_new(idmap, str(o, "id"), json_string(buf));
    }
    /* groups first, then nodes */
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        if (!z || strcmp(z, defid) || strcmp(str(o, "type"), "group")) continue;
        crm_group *g = group_new(rt, o, json_string_value(json_object_get(idmap, str(o, "id"))));
        (void)g;
    }
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        if (!z || strcmp(z, defid) || strcmp(str(o, "type"), "group")) continue;
        crm_group *g = find_group(rt, json_string_value(json_object_get(idmap, str(o, "id"))));
        if (str(o, "g")) g->parent = find_group(rt, json_string_value(json_object_get(idmap, str(o, "g"))));
        json_t *creds = crm_credentials_of(rt, o, NULL);
        g->env = crm_env_eval_list(rt, inst, f, g->parent, json_object_get(o, "env"), creds);
        json_decref(creds);
    }

    json_t *out = json_object_get(def, "out");
    json_t *inst_wires = json_object_get(inst->config, "wires");
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        const char *type = str(o, "type");
        if (!z || strcmp(z, defid) || container_type(type) || disabled(o)) continue;
        json_t *cfg = rewrite_ids(o, idmap);
        const char *newid = json_string_value(json_object_get(idmap, str(o, "id")));
        json_object_set_new(cfg, "id", json_string(newid));
        json_object_set_new(cfg, "z", json_string(inst->id));
        json_object_set_new(cfg, "_alias", json_string(str(o, "id")));
        set_link_wires(L, cfg, str(o, "id"), inst->id);
        /* drop wires that leave the subflow, append instance outputs */
        json_t *wires = json_object_get(cfg, "wires");
        char prefix[512];
        snprintf(prefix, sizeof prefix, "%s-", inst->id);
        size_t plen = strlen(prefix), p;
        json_t *port;
        json_array_foreach(wires, p, port) {
            for (size_t k = json_array_size(port); k-- > 0;) {
                const char *t = json_string_value(json_array_get(port, k));
                if (!t || strncmp(t, prefix, plen)) json_array_remove(port, k);
            }
        }
        size_t oi;
        json_t *ov;
        json_array_foreach(out, oi, ov) {
            size_t k;
            json_t *w;
            json_array_foreach(json_object_get(ov, "wires"), k, w) {
                if (!str(w, "id") || strcmp(str(w, "id"), str(o, "id"))) continue;
                int portno = (int)crm_num_value(json_object_get(w, "port"));
                while ((int)json_array_size(wires) <= portno) json_array_append_new(wires, json_array());
                json_array_extend(json_array_get(wires, portno), json_array_get(inst_wires, oi));
            }
        }
        json_array_foreach(json_object_get(json_object_get(def, "status"), "wires"), oi, ov) {
            if (!str(ov, "id") || strcmp(str(ov, "id"), str(o, "id"))) continue;
            int portno = (int)crm_num_value(json_object_get(ov, "port"));
            while ((int)json_array_size(wires) <= portno) json_array_append_new(wires, json_array());
            json_array_append_new(json_array_get(wires, portno), json_sprintf("%s-__status__", inst->id));
        }
        set_credentials(rt, cfg, str(o, "id"));
        crm_node *n = node_new(L, f, cfg, newid, str(o, "id"));
        n->group = find_group(rt, str(cfg, "g"));
        n->config = crm_env_substitute(rt, n, cfg);
        if (!strncmp(type, "subflow:", 8)) instantiate(L, f, n, flows);
    }
    /* the instance forwards what it receives to the subflow's input wires,
     * and straight to outputs wired from the input */
    json_t *port0 = json_array();
    json_t *in = json_array_get(json_object_get(def, "in"), 0);
    size_t k;
    json_t *w;
    json_array_foreach(json_object_get(in, "wires"), k, w) {
        json_t *m = json_object_get(idmap, str(w, "id") ? str(w, "id") : "");
        if (m) json_array_append(port0, m);
    }
    size_t oi;
    json_t *ov;
    json_array_foreach(out, oi, ov) json_array_foreach(json_object_get(ov, "wires"), k, w) {
        if (str(w, "id") && !strcmp(str(w, "id"), defid)) json_array_extend(port0, json_array_get(inst_wires, oi));
    }
    for (int p = 0; p < inst->nports; p++) {
        for (int w2 = 0; w2 < inst->nwires[p]; w2++) free(inst->wire_ids[p][w2]);
        free(inst->wire_ids[p]);
    }
    inst->nports = 1;
    inst->wire_ids[0] = calloc(json_array_size(port0) + 1, sizeof(char *));
    json_array_foreach(port0, k, w) inst->wire_ids[0][k] = strdup(json_string_value(w));
    inst->nwires[0] = (int)json_array_size(port0);
    json_decref(port0);
    /* the subflow's status output: a hidden node turns what reaches it into
     * the instance's status */
    json_t *status_wires = json_object_get(json_object_get(def, "status"), "wires");
    if (json_array_size(status_wires)) {
        char sid[600];
        snprintf(sid, sizeof sid, "%s-__status__", inst->id);
        json_t *cfg = json_pack("{s:s,s:s,s:s,s:s,s:[]}", "id", sid, "type", "subflow status", "z", inst->id,
                                "instance", inst->id, "wires");
        crm_node *sn = node_new(L, f, cfg, sid, NULL);
        sn->type = &crm_type_subflow_status;
        f->nstatus_out = json_array_size(status_wires);
    }
    json_decref(idmap);
}

/* Wiring, watchers ------------------------------------------------------------------------- */

static void resolve_wires(loader *L)
{
    crm_runtime *rt = L->rt;
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        for (int p = 0; p < n->nports; p++) {
            n->wires[p] = calloc(n->nwires[p] + 1, sizeof(crm_node *));
            for (int w = 0; w < n->nwires[p]; w++) {
                const char *t = n->wire_ids[p][w];
                n->wires[p][w] = crm_runtime_find(rt, t);
                if (!n->wires[p][w] && !json_object_get(L->byid, t) && !n->alias && !(L->flags & CRM_LOAD_CHECK_ONLY))
                    crm_log(rt, CRM_LOG_WARN, n, "output %d wired to missing node %s (ignored)", p + 1, t);
            }
        }
    }
}

static int watcher_rank(const crm_node *n)
{
    if (n->catch_uncaught) return 2;
    return json_is_array(n->catch_scope) ? 0 : 1;
}

static void collect_watchers(crm_runtime *rt)
{
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        n->watched = false;
        json_decref(n->catch_scope); /* a kept node's, from its last deploy */
        n->catch_scope = NULL;
    }
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        const char *t = n->type->type;
        bool is_catch = !strcmp(t, "catch"), is_status = !strcmp(t, "status"), is_complete = !strcmp(t, "complete");
        if (!is_catch && !is_status && !is_complete) continue;
        json_t *scope = json_object_get(n->config, "scope");
        if (json_is_array(scope)) {
            json_t *s = json_array();
            size_t k;
            json_t *v;
            json_array_foreach(scope, k, v) {
                bool wired = false;
                for (int p = 0; !is_catch && p < n->nports; p++)
                    for (int w = 0; w < n->nwires[p]; w++)
                        if (json_is_string(v) && !strcmp(n->wire_ids[p][w], json_string_value(v))) wired = true;
                if (!wired) json_array_append(s, v);
            }
            n->catch_scope = s;
        } else if (json_is_string(scope) && !strcmp(json_string_value(scope), "group")) {
            n->catch_scope = json_incref(scope);
        }
        n->catch_uncaught = is_catch && crm_cfg_bool(n->config, "uncaught", false);
        crm_flow *f = n->flow;
        if (is_catch) push_node(&f->catches, &f->ncatches, n);
        if (is_status) push_node(&f->statuses, &f->nstatuses, n);
        if (is_complete) {
            push_node(&f->completes, &f->ncompletes, n);
            size_t k;
            json_t *v;
            json_array_foreach(n->catch_scope, k, v) {
                crm_node *w = crm_runtime_find(rt, json_string_value(v));
                if (w) w->watched = true;
            }
        }
    }
    for (size_t i = 0; i < rt->nflows; i++) {
        crm_flow *f = rt->flows[i];
        /* stable: scoped catch nodes, then plain ones, then uncaught ones */
        for (size_t a = 1; a < f->ncatches; a++) {
            crm_node *c = f->catches[a];
            size_t b = a;
            while (b > 0 && watcher_rank(f->catches[b - 1]) > watcher_rank(c)) {
                f->catches[b] = f->catches[b - 1];
                b--;
            }
            f->catches[b] = c;
        }
    }
}

/* Entry point ------------------------------------------------------------------------------ */

static crm_flow *tab_flow(loader *L, const char *id)
{
    crm_runtime *rt = L->rt;
    for (size_t i = 0; i < rt->nflows; i++)
        if (!rt->flows[i]->is_subflow && !strcmp(rt->flows[i]->id, id)) return rt->flows[i];
    json_t *tab = json_object_get(L->tabs, id);
    crm_flow *f = flow_new(rt, id, tab ? str(tab, "label") : "");
    /* a partial deploy: the tab's loop (its timers, its queue) goes on */
    json_t *kl = rt->keep_loops ? json_object_get(rt->keep_loops, id) : NULL;
    f->loop = kl ? (crm_loop *)(intptr_t)json_integer_value(kl) : crm_loop_new(rt, id);
    if (kl) json_object_del(rt->keep_loops, id);
    rt->loops = realloc(rt->loops, (rt->nloops + 1) * sizeof *rt->loops);
    rt->loops[rt->nloops++] = f->loop;
    json_t *creds = tab ? crm_credentials_of(rt, tab, NULL) : NULL;
    f->env = crm_env_eval_list(rt, NULL, f, NULL, json_object_get(tab, "env"), creds);
    json_decref(creds);
    return f;
}

/* The flows as GET /flows serves them: credentials written into nodes (a
 * deploy from the editor carries them) are kept apart, as Node-RED's
 * extract() moves them out of the flow config. */
static json_t *without_credentials(const json_t *flows)
{
    size_t i;
    json_t *o;
    bool any = false;
    json_array_foreach(flows, i, o) any = any || json_object_get(o, "credentials");
    if (!any) return json_incref((json_t *)flows);
    json_t *out = json_array();
    json_array_foreach(flows, i, o) {
        json_t *c = json_object_get(o, "credentials") ? json_copy(o) : json_incref(o);
        json_object_del(c, "credentials");
        json_array_append_new(out, c);
    }
    return out;
}

/* Each tab runs its own loop, with an eventfd and a timerfd: a file with
 * more tabs than the descriptor limit allows is refused naming the limit,
 * rather than failing later with "Too many open files" (the HTTP server's
 * listening socket was the first to go). `carmine` raises the soft limit to
 * the hard one at start. */
#define FDS_PER_LOOP 2
#define FDS_RESERVED 64 /* the HTTP server, stores, files, logs */

static void check_fd_limit(loader *L)
{
    size_t tabs = 0;
    const char *id;
    json_t *tab;
    json_object_foreach(L->tabs, id, tab) tabs += !json_is_true(json_object_get(tab, "disabled"));
    if (!tabs) tabs = 1; /* the implicit tab */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return;
    size_t need = tabs * FDS_PER_LOOP + FDS_RESERVED;
    if (need <= rl.rlim_cur) return;
    problem(L,
            "flows: %zu tabs need %zu file descriptors (an eventfd and a timerfd for each tab's loop, and %d for the "
            "server) but the limit is %llu (RLIMIT_NOFILE, the hard limit: %llu): raise it (ulimit -n as root, "
            "LimitNOFILE= in a systemd unit) or use fewer tabs",
            tabs, need, FDS_RESERVED, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

int crm_runtime_load(crm_runtime *rt, const json_t *flows, unsigned flags, strbuf *problems)
{
    loader L = {rt, flags, problems, 0, json_object(), json_object(), json_object(), json_object()};
    rt->load_flags = flags;
    int rc = check_shape(&L, flows);
    /* nodes of npm modules run in the companion: flows becomes Carmine's half */
    const json_t *orig = flows;
    json_t *split = NULL;
    if (!rc && (split = crm_companion_split(rt, flows, flags, problems, &L.nproblems))) flows = split;
    if (!rc) rc = check_types(&L, flows);
    if (!rc) rc = check_subflows(&L, flows);
    if (!rc) {
        check_fd_limit(&L);
        rc = L.nproblems ? 1 : 0;
    }
    if (rc) goto out;
    compute_links(&L, flows);
    rt->flows_json = without_credentials(orig);
    {
        char *text = crm_stringify(rt->flows_json, 0);
        crm_sha256_hex(text, strlen(text), rt->rev);
        free(text);
    }

    /* global config env, then the global flow */
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) if (!strcmp(str(o, "type"), "global-config") && !disabled(o)) {
        json_t *creds = crm_credentials_of(rt, o, NULL);
        json_t *env = crm_env_eval_list(rt, NULL, NULL, NULL, json_object_get(o, "env"), creds);
        json_decref(creds);
        if (!rt->global_env) rt->global_env = env;
        else {
            json_object_update(rt->global_env, env);
            json_decref(env);
        }
    }
    rt->global_flow = flow_new(rt, "global", "");

    /* tabs, in file order; disabled tabs are skipped */
    json_array_foreach(flows, i, o) {
        if (strcmp(str(o, "type"), "tab")) continue;
        if (json_is_true(json_object_get(o, "disabled"))) {
            crm_log(rt, CRM_LOG_DEBUG, NULL, "not starting disabled flow : %s", str(o, "id"));
            continue;
        }
        tab_flow(&L, str(o, "id"));
    }
    /* groups of tabs */
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        if (strcmp(str(o, "type"), "group") || (z && json_object_get(L.subflows, z))) continue;
        group_new(rt, o, str(o, "id"));
    }
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        if (strcmp(str(o, "type"), "group") || (z && json_object_get(L.subflows, z))) continue;
        crm_group *g = find_group(rt, str(o, "id"));
        g->parent = find_group(rt, str(o, "g"));
    }
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z");
        if (strcmp(str(o, "type"), "group") || (z && json_object_get(L.subflows, z))) continue;
        crm_group *g = find_group(rt, str(o, "id"));
        json_t *tab = z ? json_object_get(L.tabs, z) : NULL;
        crm_flow *f = z && !(tab && json_is_true(json_object_get(tab, "disabled"))) ? tab_flow(&L, z) : NULL;
        json_t *creds = crm_credentials_of(rt, o, NULL);
        g->env = crm_env_eval_list(rt, NULL, f, g->parent, json_object_get(o, "env"), creds);
        json_decref(creds);
    }

    /* nodes: config nodes first, then flow nodes, each in file order */
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(flows, i, o) {
            const char *type = str(o, "type"), *z = str(o, "z"), *id = str(o, "id");
            if (container_type(type)) continue;
            if (z && json_object_get(L.subflows, z)) continue; /* inside a definition */
            bool flow_node = is_flow_node(o) || ((flags & CRM_LOAD_IMPLICIT_TAB) && !z);
            if ((pass == 0) == flow_node) continue;
            if (disabled(o)) {
                crm_log(rt, CRM_LOG_DEBUG, NULL, "not starting disabled node : %s", id);
                continue;
            }
            crm_flow *f;
            if (z) {
                json_t *tab = json_object_get(L.tabs, z);
                if (tab && json_is_true(json_object_get(tab, "disabled"))) continue;
                /* as Node-RED adds a tab for a z it does not define, and puts
                 * the nodes without x, y among that tab's config nodes */
                f = tab_flow(&L, z);
            } else if (flags & CRM_LOAD_IMPLICIT_TAB) {
                f = tab_flow(&L, IMPLICIT_TAB_ID);
            } else if (!flow_node) {
                f = rt->global_flow;
            } else {
                continue; /* a flow node without z never starts */
            }
            json_t *cfg = json_deep_copy(o);
            set_link_wires(&L, cfg, id, NULL);
            set_credentials(rt, cfg, NULL);
            crm_node *n = node_new(&L, f, cfg, id, NULL);
            n->group = find_group(rt, str(o, "g"));
            if (n->kept) json_decref(cfg);
            else n->config = crm_env_substitute(rt, n, cfg);
            if (!strncmp(type, "subflow:", 8) && !crm_companion_hosted(o)) instantiate(&L, f, n, flows);
        }
    }
    if (!rt->nloops) tab_flow(&L, IMPLICIT_TAB_ID);
    rt->global_flow->loop = rt->loops[0];
    /* a subflow instance among the config nodes (no x, y) was instantiated
     * into the global flow before it had its loop: its subflow takes it now
     * (parents come before their subflows in rt->flows) */
    for (i = 0; i < rt->nflows; i++)
        if (rt->flows[i]->is_subflow) rt->flows[i]->loop = rt->flows[i]->parent->loop;
    size_t queue_max = crm_queue_max_setting(rt->settings);
    for (i = 0; i < rt->nnodes; i++) {
        rt->nodes[i]->loop = rt->nodes[i]->flow->loop;
        rt->nodes[i]->queue_max = queue_max;
    }
    resolve_wires(&L);

    /* create every node; problems are collected, nothing runs yet */
    crm_config_problems = problems;
    crm_config_problem_count = 0;
    for (i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        if (n->type->create && !n->kept && n->type->create(n, n->config) < 0 && !crm_config_problem_count) {
            problem(&L, "node %s (%s): refused its configuration", n->id, n->type->type);
        }
    }
    L.nproblems += crm_config_problem_count;
    crm_config_problems = NULL;
    collect_watchers(rt);
    rc = L.nproblems ? 1 : 0;
out:
    json_decref(split);
    json_decref(L.byid);
    json_decref(L.tabs);
    json_decref(L.subflows);
    json_decref(L.link_wires);
    return rc;
}
