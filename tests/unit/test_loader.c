/* test_loader.c: the loader's refusals and warnings, with their exact words. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

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

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

/* The flows file as Node-RED's storage reads it (localfilesystem
 * util.readFile): a byte order mark (Windows editors write one) is skipped,
 * an empty file is no flows, or its backup when that has content. Both were
 * refused ("invalid token", "unexpected token near end of file"). */
static void storage_read(void)
{
    char dir[] = "/tmp/test_loader_XXXXXX", path[64], backup[64], cred[64], err[512];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/flows.json", dir);
    snprintf(backup, sizeof backup, "%s/.flows.json.backup", dir);
    snprintf(cred, sizeof cred, "%s/flows_cred.json", dir);
    const char bom[] = "\xEF\xBB\xBF[{\"id\":\"a\",\"type\":\"junction\",\"wires\":[]}]";
    write_file(path, bom, sizeof bom - 1);
    json_t *v = crm_storage_read(path, false, err, sizeof err);
    CHECK(json_is_array(v) && json_array_size(v) == 1);
    char *p = NULL;
    json_t *none = NULL;
    if (v) {
        crm_runtime *rt = crm_runtime_new(NULL);
        strbuf sb = SB_INIT;
        CHECK(crm_runtime_load(rt, v, 0, &sb) == 0);
        p = sb_take(&sb);
        CHECK_STR(p, "");
        free(p);
        crm_runtime_free(rt);
    }
    json_decref(v);

    write_file(path, "", 0);
    v = crm_storage_read(path, false, err, sizeof err);
    CHECK(json_is_array(v) && json_array_size(v) == 0);
    json_decref(v);
    const char saved[] = "[{\"id\":\"b\",\"type\":\"junction\",\"wires\":[]}]";
    write_file(backup, saved, sizeof saved - 1);
    v = crm_storage_read(path, false, err, sizeof err);
    CHECK_STR(json_string_value(json_object_get(json_array_get(v, 0), "id")), "b");
    json_decref(v);
    /* an empty credentials file: none, and the credentials load goes on */
    write_file(cred, "", 0);
    CHECK(crm_credentials_load(path, NULL, &none, NULL) == 0);
    CHECK(json_is_object(none) && json_object_size(none) == 0);
    json_decref(none);
    /* not JSON: still refused, with the place */
    write_file(path, "[{", 2);
    CHECK(crm_storage_read(path, false, err, sizeof err) == NULL);
    CHECK(strstr(err, "flows.json: line 1") != NULL);
    unlink(path);
    unlink(backup);
    unlink(cred);
    rmdir(dir);
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
    storage_read();
    UNIT_DONE();
}
