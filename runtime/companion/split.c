/* split.c: which nodes the companion hosts, and the two halves of the flows.
 *
 * A node is hosted when no built-in or plugin provides its type and an npm
 * module in the userDir does, or when it is a function node with external
 * modules (`libs`: Node-RED's function node runs it there, with the modules
 * of the userDir). A subflow instance whose subflow holds a hosted node is
 * hosted whole (its subflow goes to the companion, and leaves Carmine's
 * half). Carmine keeps every other node, a hosted one as a
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

/* Node.js's built-in modules: a function node may name them in `libs`
 * without installing anything (Node-RED's externalModules.js) */
static const char *const builtins[] = {
    "assert", "async_hooks", "buffer", "child_process", "cluster", "console", "constants", "crypto", "dgram",
    "diagnostics_channel", "dns", "domain", "events", "fs", "http", "http2", "https", "inspector", "module", "net",
    "os", "path", "perf_hooks", "process", "punycode", "querystring", "readline", "repl", "stream",
    "string_decoder", "sys", "timers", "tls", "trace_events", "tty", "url", "util", "v8", "vm", "wasi",
    "worker_threads", "zlib", NULL};

/* The package a `libs` entry's module spec names, as Node-RED's
 * parseModuleName reads it ("@scope/name/sub@1.2" -> "@scope/name"), or NULL
 * for a built-in module. */
static char *lib_package(const char *spec)
{
    size_t n = 0;
    if (spec[0] == '@') {
        while (spec[n] && spec[n] != '/') n++;
        if (spec[n]) n++;
    }
    while (spec[n] && spec[n] != '/' && spec[n] != '@') n++;
    const char *name = !strncmp(spec, "node:", 5) ? spec + 5 : spec;
    size_t nl = n - (size_t)(name - spec);
    for (int i = 0; builtins[i]; i++)
        if (strlen(builtins[i]) == nl && !strncmp(builtins[i], name, nl)) return NULL;
    return n ? strndup(spec, n) : NULL;
}

/* A function node with external modules (`libs`) runs in Node-RED's own
 * function node in the companion, which loads them from the userDir: the
 * npm packages it names (an empty array for built-ins only), or NULL when
 * the node has none. */
static json_t *function_libs(const json_t *o)
{
    const char *t = str(o, "type");
    json_t *libs = json_object_get(o, "libs");
    if (!t || strcmp(t, "function") || !json_is_array(libs) || !json_array_size(libs) ||
        json_is_true(json_object_get(o, "d")))
        return NULL;
    json_t *pkgs = json_array();
    size_t i;
    json_t *lib;
    bool any = false;
    json_array_foreach(libs, i, lib) {
        const char *spec = json_is_string(lib) ? json_string_value(lib) : str(lib, "module");
        if (!spec || !*spec) continue;
        any = true;
        char *pkg = lib_package(spec);
        if (pkg) json_array_append_new(pkgs, json_string(pkg));
        free(pkg);
    }
    if (!any) {
        json_decref(pkgs);
        return NULL;
    }
    return pkgs;
}

/* Node-RED loads a function node's module only when the userDir's
 * package.json lists it and its node_modules has it (externalModules.js). */
static bool lib_installed(const char *userdir, const char *pkg)
{
    const char *ud = userdir && *userdir ? userdir : ".";
    char *p;
    if (asprintf(&p, "%s/node_modules/%s/package.json", ud, pkg) < 0) return false;
    bool ok = !access(p, R_OK);
    free(p);
    if (!ok || asprintf(&p, "%s/package.json", ud) < 0) return false;
    json_t *pj = json_load_file(p, 0, NULL);
    free(p);
    ok = json_object_get(json_object_get(pj, "dependencies"), pkg) != NULL;
    json_decref(pj);
    return ok;
}

/* Why node o runs in the companion (a new string: "npm module M" or "external
 * modules a, b"), or NULL; a type nobody provides is reported. */
static char *host_reason(crm_runtime *rt, const json_t *o, const json_t *types, const json_t *whole, strbuf *problems,
                         int *nproblems)
{
    const char *t = str(o, "type"), *id = str(o, "id");
    json_t *libs = function_libs(o);
    if (libs) {
        strbuf why = SB_INIT;
        sb_printf(&why, "external module%s", json_array_size(libs) == 1 ? "" : "s");
        size_t i;
        json_t *l;
        bool ud = rt->userdir && *rt->userdir;
        json_array_foreach(libs, i, l) {
            const char *pkg = json_string_value(l);
            sb_printf(&why, "%s %s", i ? "," : "", pkg);
            if (lib_installed(rt->userdir, pkg)) continue;
            sb_printf(problems, "node %s (function): its external module %s is not installed in %s: carmine install%s%s %s\n",
                      id, pkg, ud ? rt->userdir : "the userDir", ud ? " -u " : "", ud ? rt->userdir : "", pkg);
            (*nproblems)++;
        }
        if (!json_array_size(libs)) sb_printf(&why, " (built-in)");
        json_decref(libs);
        return why.data;
    }
    if (crm_lookup_type(t) && !(str(types, t) && json_object_get(whole, str(types, t)))) return NULL;
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
        return NULL;
    }
    strbuf why = SB_INIT;
    sb_printf(&why, "npm module %s", module);
    return why.data;
}

/* Subflow definition id and the nodes it holds (z), subflows used inside it
 * included, into the companion's part (each once). */
static void add_subflow(const char *def, const json_t *flows, const json_t *byid, json_t *done, json_t *part,
                        json_t *configs)
{
    if (json_object_get(done, def) || !json_object_get(byid, def)) return;
    json_object_set_new(done, def, json_true());
    json_array_append_new(part, json_deep_copy(json_object_get(byid, def)));
    size_t i;
    json_t *o;
    json_array_foreach(flows, i, o) {
        const char *z = str(o, "z"), *t = str(o, "type");
        if (!z || strcmp(z, def) || !t) continue;
        json_array_append_new(part, json_deep_copy(o));
        collect_refs(o, byid, configs);
        if (!strncmp(t, "subflow:", 8)) add_subflow(t + 8, flows, byid, done, part, configs);
    }
    collect_refs(json_object_get(byid, def), byid, configs);
}

json_t *crm_companion_split(crm_runtime *rt, const json_t *flows, unsigned load_flags, strbuf *problems,
                            int *nproblems)
{
    bool check = load_flags & CRM_LOAD_CHECK_ONLY;
    sb_free(&report);
    /* only a type nobody registered (or a function node with external
     * modules) makes us look at the userDir */
    size_t i;
    json_t *o;
    bool any = false;
    json_array_foreach(flows, i, o) {
        const char *t = str(o, "type");
        json_t *libs = function_libs(o);
        if (libs || (t && !container(t) && strncmp(t, "subflow:", 8) && !crm_lookup_type(t))) any = true;
        json_decref(libs);
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
    /* need: subflow definition -> why its instances run in the companion */
    json_t *need = json_object();
    json_array_foreach(flows, i, o) {
        const char *t = str(o, "type"), *id = str(o, "id"), *z = str(o, "z");
        if (!t || !id || container(t) || !strncmp(t, "subflow:", 8)) continue;
        char *why = host_reason(rt, o, types, whole, problems, nproblems);
        if (!why) continue;
        if (z && json_object_get(subflows, z)) {
            if (!json_object_get(need, z)) json_object_set_new(need, z, json_sprintf("node %s (%s, %s)", id, t, why));
        } else {
            json_object_set_new(hosted, id, json_string(why));
            sb_printf(&report, "node %s (%s) is hosted by the companion (%s)\n", id, t, why);
        }
        free(why);
    }
    /* A subflow holding a hosted node runs whole in the companion, instance
     * by instance: Node-RED's own Subflow gives it its env, status output,
     * outputs and error and status passing, and the native nodes inside it
     * run there as Node-RED's core nodes. So does a subflow holding an
     * instance of such a subflow. */
    for (bool more = true; more;) {
        more = false;
        json_array_foreach(flows, i, o) {
            const char *t = str(o, "type"), *z = str(o, "z");
            if (!t || strncmp(t, "subflow:", 8) || !z || !json_object_get(subflows, z) || json_object_get(need, z) ||
                !json_object_get(need, t + 8))
                continue;
            json_object_set_new(need, z, json_sprintf("subflow instance %s (%s)", str(o, "id"), t));
            more = true;
        }
    }
    json_array_foreach(flows, i, o) {
        const char *t = str(o, "type"), *id = str(o, "id"), *z = str(o, "z");
        if (!t || !id || strncmp(t, "subflow:", 8) || (z && json_object_get(subflows, z)) || !json_object_get(need, t + 8))
            continue;
        const json_t *def = json_object_get(byid, t + 8);
        json_object_set_new(hosted, id, json_string("subflow"));
        sb_printf(&report, "node %s (%s) is hosted by the companion with its subflow%s%s, which holds %s\n", id, t,
                  str(def, "name") ? " " : "", str(def, "name") ? str(def, "name") : "",
                  json_string_value(json_object_get(need, t + 8)));
    }
    json_decref(whole);
    json_t *result = NULL;
    /* (a subflow no instance uses, holding hosted nodes, only leaves Carmine's half) */
    if (!json_object_size(hosted) && !json_object_size(need)) goto out;
    char *node = crm_companion_node_path(), *js = crm_companion_script_path(), *mods = crm_companion_modules_path();
    if (json_object_size(hosted) && (!node || !js || !mods)) {
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
    json_t *sfdone = json_object();
    json_object_foreach(hosted, id, mod) {
        const json_t *hn = json_object_get(byid, id);
        collect_refs(hn, byid, configs);
        if (str(hn, "z")) json_object_set_new(tabs, str(hn, "z"), json_true());
        if (!strncmp(str(hn, "type"), "subflow:", 8)) add_subflow(str(hn, "type") + 8, flows, byid, sfdone, part, configs);
    }
    json_decref(sfdone);
    json_object_foreach(configs, id, o) if (str(o, "z") && !json_object_get(subflows, str(o, "z")))
        json_object_set_new(tabs, str(o, "z"), json_true());
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
    json_object_foreach(configs, id, o) {
        /* those inside a hosted subflow went with it */
        if (!json_object_get(hosted, id) && !(str(o, "z") && json_object_get(need, str(o, "z"))))
            json_array_append_new(part, json_deep_copy(o));
    }
    result = json_array();
    json_array_foreach(flows, i, o) {
        id = str(o, "id");
        /* a subflow that runs in the companion, and what it holds, leave Carmine's half */
        if (id && (json_object_get(need, id) || (str(o, "z") && json_object_get(need, str(o, "z"))))) continue;
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
    json_decref(need);
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
