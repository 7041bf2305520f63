/* test_admin_context.c: the Admin API's /context routes with two context
 * stores and functionGlobalContext seeds, the settings a flow test cannot
 * set (tests/flows/admin-context.json covers the rest). The expected
 * answers are what a running Node-RED 4.1.15 gave with the same settings
 * and values: seeds are listed first and read where the store has no
 * value, a non-default store leaves out the keys it only shows because of
 * a seed, and a key read from a non-default store names it. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "httpd.h"
#include "unit.h"

static const char *flows = "[{\"id\":\"t1\",\"type\":\"tab\",\"label\":\"T\"},"
                           "{\"id\":\"j1\",\"type\":\"junction\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]";

static crm_admin_reply reply;

/* The answer's body to GET (or DELETE) path?query, or "" when declined. */
static const char *ask(crm_runtime *rt, const char *method, const char *path, const char *query)
{
    free(reply.body);
    memset(&reply, 0, sizeof reply);
    if (!crm_admin_context(rt, method, path, query, &reply)) return "";
    return reply.body ? reply.body : "";
}

int main(void)
{
    const char *text = "{\"port\":0,\"contextStorage\":{\"default\":{\"module\":\"memory\"},"
                       "\"other\":{\"module\":\"memory\"}},"
                       "\"functionGlobalContext\":{\"seed2\":{\"k\":1},\"seeded\":1}}";
    json_t *settings = crm_parse(text, strlen(text), NULL, 0);
    CHECK(settings != NULL);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *f = crm_parse(flows, strlen(flows), NULL, 0);
    CHECK(crm_runtime_load(rt, f, 0, NULL) == 0);
    json_decref(f);
    crm_node *j = crm_runtime_find(rt, "j1");
    CHECK(j != NULL);
    if (!j) return 1;
    crm_context_set(j, CRM_SCOPE_GLOBAL, "seeded", json_integer(7));
    crm_context_set(j, CRM_SCOPE_GLOBAL, "#:(other)::g", json_string("v"));
    crm_context_set(j, CRM_SCOPE_GLOBAL, "#:(other)::seeded", json_integer(1));
    crm_context_set(j, CRM_SCOPE_FLOW, "#:(other)::x", json_integer(1));

    CHECK_STR(ask(rt, "GET", "/context/global", ""),
              "{\"default\":{\"seed2\":{\"msg\":\"{\\\"k\\\":1}\",\"format\":\"Object\"},"
              "\"seeded\":{\"msg\":\"7\",\"format\":\"number\"}},"
              "\"other\":{\"g\":{\"msg\":\"v\",\"format\":\"string[1]\"}}}");
    CHECK_STR(ask(rt, "GET", "/context/global", "store=other"), "{\"other\":{\"g\":{\"msg\":\"v\",\"format\":\"string[1]\"}}}");
    CHECK_STR(ask(rt, "GET", "/context/global/seeded", "store=other"),
              "{\"msg\":\"1\",\"format\":\"number\",\"store\":\"other\"}");
    CHECK_STR(ask(rt, "GET", "/context/global/seed2", "store=other"),
              "{\"msg\":\"{\\\"k\\\":1}\",\"format\":\"Object\",\"store\":\"other\"}");
    CHECK_STR(ask(rt, "GET", "/context/global", "keysOnly"),
              "{\"default\":{\"keys\":[{\"key\":\"seed2\"},{\"key\":\"seeded\"}]},"
              "\"other\":{\"keys\":[{\"key\":\"seed2\"},{\"key\":\"seeded\"},{\"key\":\"g\"}]}}");
    CHECK_STR(ask(rt, "GET", "/context/flow/t1/x", "store=other"),
              "{\"msg\":\"1\",\"format\":\"number\",\"store\":\"other\"}");
    CHECK_STR(ask(rt, "GET", "/context/flow/t1", ""),
              "{\"default\":{},\"other\":{\"x\":{\"msg\":\"1\",\"format\":\"number\"}}}");
    CHECK(reply.status == 200);

    /* DELETE in the store named; the other store keeps its own */
    CHECK_STR(ask(rt, "DELETE", "/context/global/seeded", "store=other"), "");
    CHECK(reply.status == 204);
    CHECK_STR(ask(rt, "GET", "/context/global/seeded", ""), "{\"msg\":\"7\",\"format\":\"number\"}");
    CHECK_STR(ask(rt, "GET", "/context/global/seeded", "store=other"), /* the seed shows through */
              "{\"msg\":\"1\",\"format\":\"number\",\"store\":\"other\"}");
    CHECK_STR(ask(rt, "GET", "/context/global", "store=nope"), "{\"code\":\"not_found\",\"message\":\"Error\"}");
    CHECK(reply.status == 404);
    /* no route: a DELETE without a key, other methods, other paths */
    CHECK(!crm_admin_context(rt, "DELETE", "/context/global", "", &reply));
    CHECK(!crm_admin_context(rt, "POST", "/context/global/x", "", &reply));
    CHECK(!crm_admin_context(rt, "GET", "/context/flow", "", &reply));
    CHECK(!crm_admin_context(rt, "GET", "/contexts/global", "", &reply));

    free(reply.body);
    crm_runtime_free(rt);
    UNIT_DONE();
}
