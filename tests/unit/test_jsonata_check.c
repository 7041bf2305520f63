/* test_jsonata_check.c: a change or switch node's bad JSONata or regex under
 * `carmine check` and under `carmine run` (issue 22, "smaller" item).
 * check (settings _checkOnly + _checkStrict, as cli/main.c sets them) refuses
 * the flows naming node, field and reason; run (and a supervisor's deploy
 * check) loads them as Node-RED does: the error is logged at start and the
 * node drops messages (a bad switch regex: logged per message). */
#include <stdlib.h>

#include "runtime.h"
#include "unit.h"

static char logged[8192];

static void hook(void *ctx, crm_log_level lvl, const char *id, const char *type, const char *text)
{
    (void)ctx;
    (void)type;
    if (lvl >= CRM_LOG_ERROR) {
        strncat(logged, id ? id : "-", sizeof logged - strlen(logged) - 1);
        strncat(logged, ": ", sizeof logged - strlen(logged) - 1);
        strncat(logged, text, sizeof logged - strlen(logged) - 1);
        strncat(logged, "\n", sizeof logged - strlen(logged) - 1);
    }
}

static const char *flows_text =
    "[{\"id\":\"t1\",\"type\":\"tab\",\"label\":\"T\"},"
    "{\"id\":\"c1\",\"type\":\"change\",\"z\":\"t1\",\"rules\":["
    "{\"t\":\"set\",\"p\":\"payload\",\"pt\":\"msg\",\"to\":\"1 +\",\"tot\":\"jsonata\"},"
    "{\"t\":\"change\",\"p\":\"payload\",\"pt\":\"msg\",\"from\":\"[a-\",\"fromt\":\"re\",\"to\":\"x\",\"tot\":\"str\"}],\"wires\":[[]]},"
    "{\"id\":\"s1\",\"type\":\"switch\",\"z\":\"t1\",\"property\":\"payload\",\"propertyType\":\"msg\",\"rules\":["
    "{\"t\":\"regex\",\"v\":\"(unclosed\",\"vt\":\"str\"},{\"t\":\"eq\",\"v\":\"$sum(\",\"vt\":\"jsonata\"}],"
    "\"checkall\":\"true\",\"outputs\":2,\"wires\":[[],[]]},"
    "{\"id\":\"s2\",\"type\":\"switch\",\"z\":\"t1\",\"property\":\"payload.(\",\"propertyType\":\"jsonata\","
    "\"rules\":[{\"t\":\"eq\",\"v\":\"1\",\"vt\":\"num\"}],\"checkall\":\"true\",\"outputs\":1,\"wires\":[[]]},"
    "{\"id\":\"ok\",\"type\":\"change\",\"z\":\"t1\",\"rules\":[{\"t\":\"set\",\"p\":\"payload\",\"pt\":\"msg\","
    "\"to\":\"$sum([1,2])\",\"tot\":\"jsonata\"}],\"wires\":[[]]}]";

static int load(const char *text, bool strict, char **problems)
{
    json_t *flows = crm_parse(text, strlen(text), NULL, 0);
    json_t *settings = json_pack("{s:b,s:b}", "_checkOnly", 1, "_checkStrict", strict);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    crm_runtime_set_log_hook(rt, hook, NULL);
    strbuf sb = SB_INIT;
    logged[0] = 0;
    int rc = crm_runtime_load(rt, flows, CRM_LOAD_CHECK_ONLY, &sb);
    *problems = sb_take(&sb);
    crm_runtime_free(rt);
    json_decref(flows);
    return rc;
}

int main(void)
{
    char *p;
    /* carmine check: refused, each problem named */
    CHECK(load(flows_text, true, &p) != 0);
    CHECK(strstr(p, "node c1 (change): rules[0].to: Invalid JSONata expression: Unexpected end of expression\n") != NULL);
    CHECK(strstr(p, "node c1 (change): rules[1].from: Invalid 'from' property: Invalid regular expression: /[a-/g: ") != NULL);
    CHECK(strstr(p, "node s1 (switch): rules[0].v: SyntaxError: Invalid regular expression: /(unclosed/: ") != NULL);
    CHECK(strstr(p, "node s1 (switch): rules[1].v: Invalid JSONata expression: Expected \")\" before end of expression\n") != NULL);
    CHECK(strstr(p, "node s2 (switch): property: Invalid JSONata expression: ") != NULL);
    CHECK(strstr(p, "node ok") == NULL);
    free(p);
    /* run (and the supervisor's deploy check): loaded; the bad JSONata logged as Node-RED logs it,
     * the switch regex not at all (Node-RED builds it per message) */
    CHECK(load(flows_text, false, &p) == 0);
    CHECK(strstr(logged, "c1: Invalid JSONata expression: Unexpected end of expression") != NULL);
    CHECK(strstr(logged, "s1: Invalid JSONata expression: Expected") != NULL);
    CHECK(strstr(logged, "unclosed") == NULL);
    free(p);
    UNIT_DONE();
}
