/* split.c: which nodes the companion hosts, and the two halves of the flows.
 *
 * A node is hosted when no built-in or plugin provides its type and an npm
 * module in the userDir does. Carmine keeps every node, a hosted one as a
 * bridge (same id and wires, minus the wires to other hosted nodes: those
 * run inside the companion). The companion gets the tabs that hold hosted
 * nodes, the hosted nodes, the config nodes they reference (recursively),
 * and per tab a catch and a status node whose output comes back to Carmine,
 * and per hosted node a native complete node watches, a complete node whose
 * output ("\1carmine:!complete:ID") comes back as that node's done().
 * In its copy a hosted node's wires to native nodes become one pseudo wire
 * per port, "\1carmine:ID:PORT", which companion.js routes back here. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "companion.h"
#include "companion_int.h"
#include "engine.h"

#define HOSTED_KEY "\x01hosted"

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static bool container(const char *t)
{
    return !strcmp(t, "tab") || !strcmp(t, "subflow") || !strcmp(t, "group");
}

/* Modules whose nodes share one state in Node.js (a dashboard's page and
 * socket): hosted whole or not at all. */
static bool whole_module(const char *m) { return !strcmp(m, "node-red-dashboard"); }

bool crm_companion_hosted(const json_t *node) { return json_is_true(json_object_get(node, HOSTED_KEY)); }

/* The report `carmine check` prints (from the last split). */
static strbuf report = SB_INIT;

static void collect_refs(const json_t *v, const json_t *byid, json_t *configs)
{
    if (json_is_string(v)) {
        const json_t *o = json_object_get(byid, json_string_value(v));
        if (o && !json_object_get(o, "x") && !json_object_get(o, "wires") && !container(str(o, "type")) &&
            !json_object_get(configs, json_string_value(v))) {
            json_object_set(configs, json_string_value(v), (json_t *)o);
            json_t *val;
            const char *k;
            json_object_foreach((json_t *)o, k, val) if (strcmp(k, "id") && strcmp(k, "z")) collect_refs(val, byid, configs);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) collect_refs(e, byid, configs);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) collect_refs(e, byid, configs);
    }
}

json_t *crm_companion_split(crm_runtime *rt, const json_t *flows, unsigned load_flags, strbuf *problems,
                            int *nproblems)
{
    bool check = load_flags & CRM_LOAD_CHECK_ONLY;
    sb_free(&report);
    /* only a type nobody registered makes us look at the userDir */
    size_t i;
    json_t *o;
    bool any = false;
    json_array_foreach(flows, i, o) {
        const char *t = str(o, "type");
        if (t && !container(t) && strncmp(t, "subflow:", 8) && !crm_lookup_type(t)) any = true;
    }
    if (!any) return NULL;
    json_t *types = crm_companion_scan_modules(rt->userdir);
    json_t *byid = json_object(), *hosted = json_object(), *subflows = json_object();
    json_array_foreach(flows, i, o) {
        if (str(o, "id")) json_object_set(byid, str(o, "id"), o);
        if (!strcmp(str(o, "type") ? str(o, "type") : "", "subflow")) json_object_set_new(subflows, str(o, "id"), json_true());
    }
    /* a dashboard is one: when its module must host a widget Carmine has
     * no C code for, it hosts all of its nodes (ui_chart, ui_group, ui_tab,
     * ui_base too), so the user gets one real dashboard */
    json_t *whole = json_object();
    json_array_foreach(flows, i, o) {
        const char *t = str(o, "type"), *m = t ? str(types, t) : NULL;
        if (m && !crm_lookup_type(t) && whole_module(m)) json_object_set_new(whole, m, json_true());
    }
    json_array_foreach(flows, i, o) {
        const char *t = str(o, "type"), *id = str(o, "id");
        if (!t || !id || container(t) || !strncmp(t, "subflow:", 8)) continue;
        if (crm_lookup_type(t) && !(str(types, t) && json_object_get(whole, str(types, t)))) continue;
        const char *module = str(types, t);
        if (!module) {
            /* the dashboards' widgets name their package */
            const char *pkg = !strncmp(t, "ui_", 3) ? "node-red-dashboard" : !strncmp(t, "ui-", 3) ? "@flowfuse/node-red-dashboard" : NULL;
            if (pkg)
                sb_printf(&report, "node %s (%s): a dashboard widget no built-in or installed npm module provides: "
                          "carmine install%s%s %s\n", id, t, rt->userdir && *rt->userdir ? " -u " : "",
                          rt->userdir && *rt->userdir ? rt->userdir : "", pkg);
            else
                sb_printf(&report, "node %s (%s): no built-in, plugin or installed npm module provides this type: "
                          "install the package that does (flows.nodered.org lists them) with carmine install PACKAGE\n",
                          id, t);
            continue;
        }
        json_object_set_new(hosted, id, json_string(module));
        sb_printf(&report, "node %s (%s) is hosted by the companion (npm module %s)\n", id, t, module);
        if (str(o, "z") && json_object_get(subflows, str(o, "z"))) {
            sb_printf(problems, "node %s (%s): hosted nodes inside a subflow are not supported yet (docs/companion.md)\n",
                      id, t);
            (*nproblems)++;
        }
    }
    json_decref(whole);
    json_t *result = NULL;
    if (!json_object_size(hosted)) goto out;
    char *node = crm_companion_node_path(), *js = crm_companion_script_path(), *mods = crm_companion_modules_path();
    if (!node || !js || !mods) {
        sb_printf(problems, "hosted nodes need %s (tools/setup.sh installs Node.js and node-red@4.1.15 for the companion)\n",
                  !node ? "the node executable" : !js ? "companion.js" : "the node-red package");
        (*nproblems)++;
    }
    free(node);
    free(js);
    free(mods);

    /* the companion's part */
    json_t *part = json_array(), *configs = json_object(), *tabs = json_object();
    const char *id;
    json_t *mod;
    json_object_foreach(hosted, id, mod) {
        const json_t *hn = json_object_get(byid, id);
        collect_refs(hn, byid, configs);
        if (str(hn, "z")) json_object_set_new(tabs, str(hn, "z"), json_true());
    }
    json_object_foreach(configs, id, o) if (str(o, "z")) json_object_set_new(tabs, str(o, "z"), json_true());
    json_t *tabv;
    json_object_foreach(tabs, id, tabv) {
        const json_t *tab = json_object_get(byid, id);
        if (tab && !strcmp(str(tab, "type"), "tab")) json_array_append_new(part, json_deep_copy(tab));
        char cid[300], sid[300], perr[64], pst[64];
        snprintf(cid, sizeof cid, "carmine-catch-%s", id);
        snprintf(sid, sizeof sid, "carmine-status-%s", id);
        snprintf(perr, sizeof perr, "%s!error", CRM_COMPANION_PSEUDO);
        snprintf(pst, sizeof pst, "%s!status", CRM_COMPANION_PSEUDO);
        json_array_append_new(part, json_pack("{s:s,s:s,s:s,s:n,s:b,s:i,s:i,s:[[s]]}", "id", cid, "type", "catch", "z", id,
                                              "scope", "uncaught", 0, "x", 0, "y", 0, "wires", perr));
        json_array_append_new(part, json_pack("{s:s,s:s,s:s,s:n,s:i,s:i,s:[[s]]}", "id", sid, "type", "status", "z", id,
                                              "scope", "x", 0, "y", 0, "wires", pst));
    }
    /* done() of hosted nodes that native complete nodes watch */
    json_t *watched = json_object();
    json_array_foreach(flows, i, o) {
        if (strcmp(str(o, "type") ? str(o, "type") : "", "complete")) continue;
        size_t k;
        json_t *sid;
        json_array_foreach(json_object_get(o, "scope"), k, sid) {
            const char *hid = json_string_value(sid);
            if (!hid || !json_object_get(hosted, hid) || json_object_get(watched, hid)) continue;
            json_object_set_new(watched, hid, json_true());
            char cid[300], pdone[400];
            snprintf(cid, sizeof cid, "carmine-complete-%s", hid);
            snprintf(pdone, sizeof pdone, "%s!complete:%s", CRM_COMPANION_PSEUDO, hid);
            const char *z = str(json_object_get(byid, hid), "z");
            json_array_append_new(part, json_pack("{s:s,s:s,s:s?,s:[s],s:i,s:i,s:[[s]]}", "id", cid, "type", "complete",
                                                  "z", z, "scope", hid, "x", 0, "y", 0, "wires", pdone));
        }
    }
    json_decref(watched);
    json_object_foreach(configs, id, o) if (!json_object_get(hosted, id)) json_array_append_new(part, json_deep_copy(o));
    result = json_array();
    json_array_foreach(flows, i, o) {
        id = str(o, "id");
        if (!id || !json_object_get(hosted, id)) {
            /* a config node of a hosted type only hosted nodes use */
            json_array_append(result, o);
            continue;
        }
        json_t *mine = json_deep_copy(o), *theirs = json_deep_copy(o);
        json_object_set_new(mine, HOSTED_KEY, json_true());
        json_t *wm = json_array(), *wt = json_array();
        size_t p, w;
        json_t *port, *t;
        json_array_foreach(json_object_get(o, "wires"), p, port) {
            json_t *pm = json_array(), *pt = json_array();
            bool native = false;
            json_array_foreach(port, w, t) {
                if (json_is_string(t) && json_object_get(hosted, json_string_value(t))) json_array_append(pt, t);
                else {
                    json_array_append(pm, t);
                    native = true;
                }
            }
            if (native) {
                char pseudo[400];
                snprintf(pseudo, sizeof pseudo, "%s%s:%zu", CRM_COMPANION_PSEUDO, id, p);
                json_array_append_new(pt, json_string(pseudo));
            }
            json_array_append_new(wm, pm);
            json_array_append_new(wt, pt);
        }
        if (json_object_get(o, "wires")) {
            json_object_set_new(mine, "wires", wm);
            json_object_set_new(theirs, "wires", wt);
        } else {
            json_decref(wm);
            json_decref(wt);
        }
        /* a hosted config node stays only in the companion */
        if (json_object_get(o, "x") || json_object_get(o, "wires")) json_array_append_new(result, mine);
        else json_decref(mine);
        json_array_append_new(part, theirs);
    }
    /* the credentials file's, and those written into the flows (an export "with credentials") */
    json_t *creds = json_object();
    size_t k;
    json_array_foreach(part, k, o) {
        json_t *c = str(o, "id") ? crm_credentials_of(rt, o, NULL) : NULL;
        if (c) json_object_set_new(creds, str(o, "id"), c);
        json_object_del(o, "credentials");
    }
    if (!check) crm_companion_set_part(part, creds, rt->userdir);
    json_decref(part);
    json_decref(creds);
    json_decref(configs);
    json_decref(tabs);
out:
    json_decref(types);
    json_decref(byid);
    json_decref(hosted);
    json_decref(subflows);
    return result;
}

void crm_companion_report(FILE *out, const char *userdir)
{
    if (report.len) fputs(report.data, out);
    json_t *missing = crm_companion_missing_modules(userdir);
    size_t i;
    json_t *m;
    bool ud = userdir && *userdir;
    json_array_foreach(missing, i, m)
        fprintf(out, "module %s is in %s/package.json but not installed: carmine install%s%s %s\n",
                json_string_value(m), ud ? userdir : ".", ud ? " -u " : "", ud ? userdir : "", json_string_value(m));
    json_decref(missing);
}
