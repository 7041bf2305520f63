/* test_loader.c: the loader's refusals and warnings, with their exact words. */
#include <stdlib.h>
#include <sys/resource.h>

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

    /* a subflow holding an instance of itself, or two holding each other:
     * refused, naming the subflow, as Node-RED's editor does (it overflowed
     * the stack) */
    CHECK(load("[{\"id\":\"t1\",\"type\":\"tab\"},"
               "{\"id\":\"sf1\",\"type\":\"subflow\",\"name\":\"S\",\"in\":[{\"x\":1,\"y\":1,\"wires\":[{\"id\":\"sfi\"}]}],\"out\":[]},"
               "{\"id\":\"sfi\",\"type\":\"subflow:sf1\",\"z\":\"sf1\",\"x\":1,\"y\":1,\"wires\":[[]]},"
               "{\"id\":\"inst\",\"type\":\"subflow:sf1\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[[]]}]", &p) == 1);
    CHECK_STR(p, "subflow sf1 (S): Cannot add subflow to itself (node sfi is an instance of it)\n");
    free(p);
    CHECK(load("[{\"id\":\"t1\",\"type\":\"tab\"},"
               "{\"id\":\"sfa\",\"type\":\"subflow\",\"name\":\"A\",\"in\":[],\"out\":[]},"
               "{\"id\":\"sfb\",\"type\":\"subflow\",\"name\":\"B\",\"in\":[],\"out\":[]},"
               "{\"id\":\"a1\",\"type\":\"subflow:sfb\",\"z\":\"sfa\",\"x\":1,\"y\":1,\"wires\":[]},"
               "{\"id\":\"b1\",\"type\":\"subflow:sfa\",\"z\":\"sfb\",\"x\":1,\"y\":1,\"wires\":[]},"
               "{\"id\":\"inst\",\"type\":\"subflow:sfa\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]", &p) == 1);
    CHECK_STR(p, "subflow sfa (A): Cannot add subflow - circular reference detected (A -> B -> A)\n");
    free(p);
    /* a disabled instance is never instantiated: no cycle */
    CHECK(load("[{\"id\":\"t1\",\"type\":\"tab\"},"
               "{\"id\":\"sf1\",\"type\":\"subflow\",\"name\":\"S\",\"in\":[],\"out\":[]},"
               "{\"id\":\"sfi\",\"type\":\"subflow:sf1\",\"z\":\"sf1\",\"d\":true,\"x\":1,\"y\":1,\"wires\":[]},"
               "{\"id\":\"inst\",\"type\":\"subflow:sf1\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]", &p) == 0);
    CHECK_STR(p, "");
    free(p);
    /* a subflow instance among the config nodes (no x, y: the global flow)
     * got no loop: freeing the runtime dereferenced NULL (found by
     * fuzz_flows_check; `carmine check` crashed) */
    CHECK(load("[{\"id\":\"t1\",\"type\":\"tab\"},"
               "{\"id\":\"sf\",\"type\":\"subflow\",\"name\":\"S\",\"in\":[],\"out\":[]},"
               "{\"id\":\"r\",\"type\":\"http response\",\"z\":\"sf\",\"x\":1,\"y\":1,\"wires\":[]},"
               "{\"id\":\"i\",\"type\":\"subflow:sf\",\"wires\":[]}]", &p) == 0);
    CHECK_STR(p, "");
    free(p);

    /* nesting: 64 levels load, 65 are refused; 2^25 expanded nodes are refused */
    for (int levels = 64; levels <= 65; levels++) {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "[{\"id\":\"t1\",\"type\":\"tab\"}");
        for (int i = 0; i < levels; i++) {
            sb_printf(&sb, ",{\"id\":\"s%d\",\"type\":\"subflow\",\"in\":[],\"out\":[]}", i);
            if (i + 1 < levels)
                sb_printf(&sb, ",{\"id\":\"n%d\",\"type\":\"subflow:s%d\",\"z\":\"s%d\",\"x\":1,\"y\":1,\"wires\":[]}",
                          i, i + 1, i);
        }
        sb_printf(&sb, ",{\"id\":\"inst\",\"type\":\"subflow:s0\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]");
        CHECK(load(sb.data, &p) == (levels == 64 ? 0 : 1));
        CHECK_STR(p, levels == 64 ? "" : "node inst (subflow:s0): subflows nest 65 deep here; at most 64 levels are allowed\n");
        free(p);
        sb_free(&sb);
    }
    {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "[{\"id\":\"t1\",\"type\":\"tab\"}");
        for (int i = 0; i < 25; i++) {
            sb_printf(&sb, ",{\"id\":\"s%d\",\"type\":\"subflow\",\"in\":[],\"out\":[]}", i);
            for (int j = 0; i + 1 < 25 && j < 2; j++)
                sb_printf(&sb, ",{\"id\":\"n%d_%d\",\"type\":\"subflow:s%d\",\"z\":\"s%d\",\"x\":1,\"y\":1,\"wires\":[]}",
                          i, j, i + 1, i);
        }
        sb_printf(&sb, ",{\"id\":\"inst\",\"type\":\"subflow:s0\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]");
        CHECK(load(sb.data, &p) == 1);
        CHECK_STR(p, "flows: the subflow instances expand to 33554430 nodes; at most 1000000 are allowed\n");
        free(p);
        sb_free(&sb);
    }

    /* more tabs than the descriptor limit allows (each tab's loop holds an
     * eventfd and a timerfd): refused naming the limit (10,000 tabs failed
     * with "Too many open files" from the HTTP server) */
    {
        struct rlimit old, low;
        getrlimit(RLIMIT_NOFILE, &old);
        low = old;
        low.rlim_cur = 256;
        CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
        strbuf sb = SB_INIT;
        sb_printf(&sb, "[");
        for (int i = 0; i < 96; i++) sb_printf(&sb, "%s{\"id\":\"t%d\",\"type\":\"tab\"}", i ? "," : "", i);
        sb_printf(&sb, "]");
        CHECK(load(sb.data, &p) == 0); /* 96 tabs: 256 descriptors, fits */
        free(p);
        sb.len = 0;
        sb_printf(&sb, "[");
        for (int i = 0; i < 97; i++) sb_printf(&sb, "%s{\"id\":\"t%d\",\"type\":\"tab\"}", i ? "," : "", i);
        sb_printf(&sb, "]");
        CHECK(load(sb.data, &p) == 1);
        char want[400];
        snprintf(want, sizeof want,
                 "flows: 97 tabs need 258 file descriptors (an eventfd and a timerfd for each tab's loop, and 64 for "
                 "the server) but the limit is 256 (RLIMIT_NOFILE, the hard limit: %llu): raise it (ulimit -n as root, "
                 "LimitNOFILE= in a systemd unit) or use fewer tabs\n",
                 (unsigned long long)old.rlim_max);
        CHECK_STR(p, want);
        free(p);
        sb_free(&sb);
        setrlimit(RLIMIT_NOFILE, &old);
    }

    char err[128];
    CHECK(crm_parse("[1,\n {x}", 8, err, sizeof err) == NULL);
    CHECK(strncmp(err, "line 2 column 3:", 16) == 0);
    UNIT_DONE();
}
