/* test_plugins.c: the plugin loader (runtime/plugins.c) on small libraries
 * compiled here with the system cc; skipped cleanly when there is none.
 * Run from the project root (meson does): the plugins include runtime/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carmine.h"
#include "plugins.h"
#include "unit.h"

const crm_node_type *crm_lookup_type(const char *name);

static char dir[] = "/tmp/carmine-test-plugins.XXXXXX";

/* Compiles src into dir/name.so (subdir sub); 0 on success. */
static int build(const char *sub, const char *name, const char *src)
{
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", path);
    if (system(cmd)) return -1;
    snprintf(path, sizeof path, "%s/%s.c", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "#include \"carmine.h\"\n%s\n", src);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -Iruntime %s -o %s/%s/%s.so", path, dir, sub, name);
    return system(cmd) ? -1 : 0;
}

#define LIST(...)                                                                                     \
    "const crm_node_type *const *carmine_plugin_types(void) { static const crm_node_type *const l[] = " \
    "{" __VA_ARGS__ ", 0}; return l; }\n"
#define TYPE(var, name, abi) "static const crm_node_type " var " = {.abi = " abi ", .type = \"" name "\"};\n"
#define ABI(v) "int carmine_plugin_abi(void) { return " v "; }\n"

/* Loads dir/sub; returns the count, problems into *out (malloc'd). */
static int load(const char *sub, char **out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    strbuf p = SB_INIT;
    int n = crm_plugins_load_dir(path, &p);
    *out = sb_take(&p);
    return n;
}

static bool has(const char *text, const char *part)
{
    bool r = strstr(text, part) != NULL;
    if (!r) fprintf(stderr, "  no \"%s\" in: %s\n", part, text);
    return r;
}

int main(void)
{
    if (system("cc --version >/dev/null 2>&1")) {
        printf("skip: no cc to build test plugins\n");
        return 0;
    }
    if (!mkdtemp(dir)) return 1;
    char *msg;

    /* two good plugins, loaded in name order; the second sees the first's type */
    CHECK(build("good", "a", TYPE("t1", "probe-a", "CRM_ABI_VERSION") TYPE("t2", "probe-b", "CRM_ABI_VERSION")
                                  ABI("CRM_ABI_VERSION") LIST("&t1, &t2")) == 0);
    CHECK(build("good", "b", TYPE("t", "probe-c", "CRM_ABI_VERSION") ABI("CRM_ABI_VERSION") LIST("&t")
                                 "int carmine_plugin_init(void) { return 0; }") == 0);
    CHECK(load("good", &msg) == 3);
    CHECK_STR(msg, "");
    free(msg);
    CHECK(crm_lookup_type("probe-a") && crm_lookup_type("probe-b") && crm_lookup_type("probe-c"));
    /* the same directory again: already loaded, nothing new, no complaint */
    CHECK(load("good", &msg) == 0);
    CHECK_STR(msg, "");
    free(msg);

    /* another ABI: refused with the file and both versions */
    CHECK(build("abi", "old", TYPE("t", "probe-abi", "CRM_ABI_VERSION") ABI("999") LIST("&t")) == 0);
    CHECK(load("abi", &msg) == 0);
    char want[128];
    snprintf(want, sizeof want, "old.so: refused: built for plugin ABI 999, this runtime has ABI %d", CRM_ABI_VERSION);
    CHECK(has(msg, want));
    free(msg);
    CHECK(!crm_lookup_type("probe-abi"));

    /* a descriptor with another ABI, in a plugin that claims the right one */
    CHECK(build("desc", "d", TYPE("t", "probe-desc", "998") ABI("CRM_ABI_VERSION") LIST("&t")) == 0);
    CHECK(load("desc", &msg) == 0);
    CHECK(has(msg, "node type \"probe-desc\" was built for plugin ABI 998"));
    free(msg);

    /* init fails: none of its types */
    CHECK(build("init", "i", TYPE("t1", "probe-i1", "CRM_ABI_VERSION") TYPE("t2", "probe-i2", "CRM_ABI_VERSION")
                                 ABI("CRM_ABI_VERSION") LIST("&t1, &t2") "int carmine_plugin_init(void) { return 3; }") == 0);
    CHECK(load("init", &msg) == 0);
    CHECK(has(msg, "i.so: refused: carmine_plugin_init() failed (returned 3)"));
    free(msg);
    CHECK(!crm_lookup_type("probe-i1") && !crm_lookup_type("probe-i2"));

    /* duplicates: a taken name (plugin or built-in) refuses the whole plugin */
    CHECK(build("dup", "x", TYPE("t1", "probe-new", "CRM_ABI_VERSION") TYPE("t2", "probe-a", "CRM_ABI_VERSION")
                                ABI("CRM_ABI_VERSION") LIST("&t1, &t2")) == 0);
    CHECK(build("dup", "y", TYPE("t", "inject", "CRM_ABI_VERSION") ABI("CRM_ABI_VERSION") LIST("&t")) == 0);
    CHECK(build("dup", "z", TYPE("t1", "probe-twice", "CRM_ABI_VERSION") ABI("CRM_ABI_VERSION") LIST("&t1, &t1")) == 0);
    CHECK(load("dup", &msg) == 0);
    CHECK(has(msg, "x.so: refused: node type \"probe-a\" is already registered"));
    CHECK(has(msg, "y.so: refused: node type \"inject\" is already registered"));
    CHECK(has(msg, "z.so: refused: node type \"probe-twice\" is listed twice"));
    free(msg);
    CHECK(!crm_lookup_type("probe-new") && !crm_lookup_type("probe-twice"));

    /* not a plugin, not a library, no types */
    CHECK(build("bad", "nosym", "int unrelated(void) { return 1; }") == 0);
    CHECK(build("bad", "empty", ABI("CRM_ABI_VERSION") LIST("0")) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/bad/junk.so", dir);
    FILE *f = fopen(path, "w");
    if (f) fputs("not a library\n", f), fclose(f);
    CHECK(load("bad", &msg) == 0);
    CHECK(has(msg, "nosym.so: refused: not a Carmine plugin (no carmine_plugin_abi symbol)"));
    CHECK(has(msg, "empty.so: refused: carmine_plugin_types() returned no node types"));
    CHECK(has(msg, "junk.so: cannot load:"));
    free(msg);

    /* an unreadable directory */
    CHECK(load("missing", &msg) == -1);
    CHECK(has(msg, "cannot read the plugins directory"));
    free(msg);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    UNIT_DONE();
}
