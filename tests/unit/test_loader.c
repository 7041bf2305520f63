/* test_loader.c: the loader's refusals and warnings, with their exact words. */
#include <stdlib.h>

#include "runtime.h"
#include "unit.h"

static char warnings[4096];

static void hook(void *ctx, crm_log_level lvl, const char *id, const char *type, const char *text)
{
    (void)ctx;
    (void)type;
    if (lvl >= CRM_LOG_WARN) {
        strncat(warnings, id ? id : "-", sizeof warnings - strlen(warnings) - 1);
        strncat(warnings, ": ", sizeof warnings - strlen(warnings) - 1);
        strncat(warnings, text, sizeof warnings - strlen(warnings) - 1);
        strncat(warnings, "\n", sizeof warnings - strlen(warnings) - 1);
    }
}

static int load(const char *text, char **problems)
{
    json_t *flows = crm_parse(text, strlen(text), NULL, 0);
    crm_runtime *rt = crm_runtime_new(NULL);
    crm_runtime_set_log_hook(rt, hook, NULL);
    strbuf sb = SB_INIT;
    int rc = crm_runtime_load(rt, flows, 0, &sb);
    *problems = sb_take(&sb);
    crm_runtime_free(rt);
    json_decref(flows);
    return rc;
}

int main(void)
{
    char *p;
    CHECK(load("[{\"id\":\"a\",\"type\":\"nosuch\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[]},"
               "{\"id\":\"b\",\"type\":\"nosuch\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[]},"
               "{\"id\":\"c\",\"type\":\"other\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[]}]", &p) == 2);
    CHECK_STR(p, "unknown node type 'nosuch' used by nodes a, b\nunknown node type 'other' used by node c\n");
    free(p);

    CHECK(load("[{\"id\":\"a\",\"type\":\"junction\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[]},"
               "{\"id\":\"a\",\"type\":\"junction\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[]}]", &p) == 1);
    CHECK_STR(p, "node a (junction): field id: duplicate id\n");
    free(p);

    CHECK(load("[{\"id\":\"a\",\"type\":\"junction\",\"wires\":[]}, 3, {\"type\":\"junction\"}, {\"id\":\"q\"}]", &p) == 1);
    CHECK_STR(p, "item 1: not an object\nitem 2: field id: missing or not a string\nnode q: field type: missing or not a string\n");
    free(p);

    CHECK(load("{\"id\":\"a\"}", &p) == 1);
    CHECK_STR(p, "flows: the file must hold a JSON array of node objects\n");
    free(p);

    CHECK(load("[{\"id\":\"t\",\"type\":\"tab\"},{\"id\":\"a\",\"type\":\"junction\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[[\"zz\"]]}]", &p) == 0);
    CHECK_STR(p, "");
    CHECK_STR(warnings, "a: output 1 wired to missing node zz (ignored)\n");
    free(p);

    /* a subflow instance of a definition that is not in the file is a missing type */
    CHECK(load("[{\"id\":\"i\",\"type\":\"subflow:nope\",\"x\":1,\"y\":1,\"z\":\"t\",\"wires\":[]}]", &p) == 2);
    CHECK_STR(p, "unknown node type 'subflow:nope' used by node i\n");
    free(p);

    char err[128];
    CHECK(crm_parse("[1,\n {x}", 8, err, sizeof err) == NULL);
    CHECK(strncmp(err, "line 2 column 3:", 16) == 0);
    UNIT_DONE();
}
