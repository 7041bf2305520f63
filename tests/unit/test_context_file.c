/* test_context_file.c: the localfilesystem context store writes Node-RED's
 * layout and its values survive a restart; the memory store forgets node
 * context when a node closes. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "unit.h"

static const char *flows = "[{\"id\":\"t1\",\"type\":\"tab\",\"label\":\"T\"},"
                           "{\"id\":\"j1\",\"type\":\"junction\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]";

static crm_runtime *start(const char *dir)
{
    json_t *settings = json_pack("{s:i,s:{s:{s:s,s:{s:s,s:i}}}}", "port", 0, "contextStorage", "default", "module",
                                 "localfilesystem", "config", "dir", dir, "flushInterval", 30);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *f = crm_parse(flows, strlen(flows), NULL, 0);
    CHECK(crm_runtime_load(rt, f, 0, NULL) == 0);
    json_decref(f);
    return rt;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

int main(void)
{
    char dir[] = "/tmp/carmine-ctx-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    crm_runtime *rt = start(dir);
    crm_node *j = crm_runtime_find(rt, "j1");
    CHECK(crm_context_set(j, CRM_SCOPE_GLOBAL, "g.deep", json_real(1)) == 0);
    CHECK(crm_context_set(j, CRM_SCOPE_FLOW, "stop", json_true()) == 0);
    CHECK(crm_context_set(j, CRM_SCOPE_NODE, "n", json_string("x")) == 0);
    crm_runtime_free(rt); /* flushes */

    char path[512];
    snprintf(path, sizeof path, "%s/context/global/global.json", dir);
    CHECK_STR(slurp(path), "{\n    \"g\": {\n        \"deep\": 1\n    }\n}");
    snprintf(path, sizeof path, "%s/context/t1/flow.json", dir);
    CHECK_STR(slurp(path), "{\n    \"stop\": true\n}");
    snprintf(path, sizeof path, "%s/context/t1/j1.json", dir);
    CHECK_STR(slurp(path), "{\n    \"n\": \"x\"\n}");

    rt = start(dir);
    j = crm_runtime_find(rt, "j1");
    json_t *v = crm_context_get(j, CRM_SCOPE_GLOBAL, "g.deep");
    CHECK(v && crm_num_value(v) == 1);
    json_decref(v);
    v = crm_context_get(j, CRM_SCOPE_FLOW, "#:(default)::stop");
    CHECK(json_is_true(v));
    json_decref(v);
    v = crm_context_get(j, CRM_SCOPE_NODE, "n");
    CHECK(json_is_string(v) && !strcmp(json_string_value(v), "x"));
    json_decref(v);
    crm_runtime_free(rt);

    /* memory store: node context goes with the node */
    json_t *f = crm_parse(flows, strlen(flows), NULL, 0);
    rt = crm_runtime_new(NULL);
    json_object_set_new((json_t *)crm_runtime_settings(rt), "port", json_real(0));
    CHECK(crm_runtime_load(rt, f, 0, NULL) == 0);
    j = crm_runtime_find(rt, "j1");
    crm_context_set(j, CRM_SCOPE_NODE, "n", json_real(2));
    v = crm_context_get(j, CRM_SCOPE_NODE, "n");
    CHECK(v != NULL);
    json_decref(v);
    crm_context_node_closed(j);
    CHECK(crm_context_get(j, CRM_SCOPE_NODE, "n") == NULL);
    crm_runtime_free(rt);
    json_decref(f);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    UNIT_DONE();
}
