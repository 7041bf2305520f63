/* plugins.c: loads node types from shared libraries (see plugins.h). Every
 * check runs before anything is registered, so a plugin is either wholly in
 * or wholly out: a flow never starts with half of a plugin's types. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "plugins.h"

typedef int (*abi_fn)(void);
typedef const crm_node_type *const *(*types_fn)(void);
typedef int (*init_fn)(void);

/* Libraries already taken in: dlopen of the same file hands back the same
 * handle, and its init must not run twice. */
static void **loaded;
static size_t nloaded;

static bool already_loaded(void *h)
{
    for (size_t i = 0; i < nloaded; i++)
        if (loaded[i] == h) return true;
    return false;
}

static void remember(void *h)
{
    void **grown = realloc(loaded, (nloaded + 1) * sizeof *loaded);
    if (!grown) return; /* only costs the re-load guard */
    loaded = grown;
    loaded[nloaded++] = h;
}

/* The plugins taken in (their file and types), for the editor's /nodes. */
static struct {
    char *path;
    const crm_node_type *const *types;
} *taken;
static size_t ntaken;

static void keep_path(const char *path, const crm_node_type *const *types)
{
    void *grown = realloc(taken, (ntaken + 1) * sizeof *taken);
    if (!grown) return;
    taken = grown;
    taken[ntaken].path = strdup(path);
    taken[ntaken++].types = types;
}

void crm_plugins_each(void (*fn)(const char *path, const crm_node_type *const *types, void *arg), void *arg)
{
    for (size_t i = 0; i < ntaken; i++) fn(taken[i].path, taken[i].types, arg);
}

/* The symbol, looked up in this library only (not in the executable). */
static void *sym(void *h, const char *name)
{
    dlerror();
    return dlsym(h, name);
}

/* Checks the list a plugin offers; NULL when it may be registered, else
 * the reason. reason is a buffer of size len. */
static const char *check_types(const crm_node_type *const *types, char *reason, size_t len)
{
    if (!types || !types[0]) return "carmine_plugin_types() returned no node types";
    for (size_t i = 0; types[i]; i++) {
        const crm_node_type *t = types[i];
        if (!t->type || !*t->type) {
            snprintf(reason, len, "node type #%zu has no type name", i + 1);
            return reason;
        }
        if (t->abi != CRM_ABI_VERSION) {
            snprintf(reason, len, "node type \"%s\" was built for plugin ABI %d, this runtime has ABI %d", t->type,
                     t->abi, CRM_ABI_VERSION);
            return reason;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(types[j]->type, t->type)) {
                snprintf(reason, len, "node type \"%s\" is listed twice", t->type);
                return reason;
            }
        if (crm_lookup_type(t->type)) {
            snprintf(reason, len, "node type \"%s\" is already registered (a built-in or an earlier plugin)",
                     t->type);
            return reason;
        }
    }
    return NULL;
}

static int load_file(const char *path, strbuf *problems)
{
    /* RTLD_NOW: a plugin calling a crm_* function this runtime lacks is
     * refused here, not when the call is first reached in a flow. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        sb_printf(problems, "%s: cannot load: %s\n", path, dlerror());
        return -1;
    }
    if (already_loaded(h)) {
        dlclose(h); /* drops the reference this dlopen added */
        return 0;
    }
    char reason[512];
    const char *why = NULL;
    int version;
    abi_fn abi = (abi_fn)sym(h, "carmine_plugin_abi");
    types_fn types = (types_fn)sym(h, "carmine_plugin_types");
    init_fn init = (init_fn)sym(h, "carmine_plugin_init");
    if (!abi || !types) {
        snprintf(reason, sizeof reason, "not a Carmine plugin (no %s symbol)",
                 !abi ? "carmine_plugin_abi" : "carmine_plugin_types");
        why = reason;
    } else if ((version = abi()) != CRM_ABI_VERSION) {
        snprintf(reason, sizeof reason, "built for plugin ABI %d, this runtime has ABI %d: rebuild it against this Carmine",
                 version, CRM_ABI_VERSION);
        why = reason;
    } else {
        why = check_types(types(), reason, sizeof reason);
    }
    if (why) {
        sb_printf(problems, "%s: refused: %s\n", path, why);
        dlclose(h);
        return -1;
    }
    if (init) {
        int rc = init();
        if (rc) {
            /* kept loaded: init may have left threads or handlers behind */
            remember(h);
            sb_printf(problems, "%s: refused: carmine_plugin_init() failed (returned %d); its node types are not registered\n",
                      path, rc);
            return -1;
        }
    }
    remember(h);
    const crm_node_type *const *list = types();
    keep_path(path, list);
    int n = 0;
    for (size_t i = 0; list[i]; i++) {
        if (crm_register_type(list[i]) == 0) n++;
        else sb_printf(problems, "%s: node type \"%s\" could not be registered\n", path, list[i]->type);
    }
    return n;
}

int crm_plugins_load_file(const char *path, strbuf *problems)
{
    crm_register_builtins();
    if (strchr(path, '/')) return load_file(path, problems);
    /* a bare name would send dlopen searching the library path */
    strbuf local = SB_INIT;
    sb_printf(&local, "./%s", path);
    int r = load_file(local.data, problems);
    sb_free(&local);
    return r;
}

static bool is_plugin_name(const char *name)
{
    size_t l = strlen(name);
    return name[0] != '.' && l > 3 && !strcmp(name + l - 3, ".so");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.so names in dir, sorted; NULL when dir cannot be read. */
static char **list_plugins(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_plugin_name(e->d_name)) continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown) break;
        names = grown;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    *count = n;
    return names ? names : calloc(1, sizeof *names);
}

int crm_plugins_load_dir(const char *dir, strbuf *problems)
{
    size_t n = 0;
    char **names = list_plugins(dir, &n);
    if (!names) {
        sb_printf(problems, "%s: cannot read the plugins directory: %s\n", dir, strerror(errno));
        return -1;
    }
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        strbuf path = SB_INIT;
        sb_printf(&path, "%s/%s", dir, names[i]);
        int r = crm_plugins_load_file(path.data, problems);
        if (r > 0) total += r;
        sb_free(&path);
        free(names[i]);
    }
    free(names);
    return total;
}
