/* modules.c: which node types the npm modules in a userDir provide, read
 * the way Node-RED's registry finds them: userDir/node_modules/NAME (and
 * @scope/NAME) with a package.json whose "node-red" section lists node
 * files; each file (and the .html beside it) names its types in
 * RED.nodes.registerType("TYPE", ...). Only read when a flow has a type no
 * built-in provides. Also `carmine install`. */
#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "companion.h"
#include "companion_int.h"
#include "runtime.h"

extern char **environ;

static void add_type(json_t *types, const char *from, const char *to, const char *module)
{
    char *t = strndup(from, (size_t)(to - from));
    if (!json_object_get(types, t)) json_object_set_new(types, t, json_string(module));
    free(t);
}

/* Every registerType("x" (quotes of any kind) and, in the editor's HTML,
 * data-template-name="x": types -> module. */
static void types_in(const char *text, const char *module, json_t *types)
{
    for (const char *p = text; (p = strstr(p, "data-template-name=")); ) {
        p += 19;
        char quote = *p;
        if (quote != '"' && quote != '\'') continue;
        const char *e = strchr(p + 1, quote);
        if (e && e > p + 1 && e - p < 200) add_type(types, p + 1, e, module);
    }
    for (const char *p = text; (p = strstr(p, "registerType")); ) {
        p += 12;
        const char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
        if (*q != '(') continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
        char quote = *q;
        if (quote != '"' && quote != '\'' && quote != '`') continue;
        const char *e = strchr(q + 1, quote);
        if (!e || e == q + 1 || e - q > 200) continue;
        add_type(types, q + 1, e, module);
    }
}

static void scan_module(const char *dir, const char *name, json_t *types)
{
    char *pj;
    if (asprintf(&pj, "%s/package.json", dir) < 0) return;
    json_t *pkg = json_load_file(pj, 0, NULL);
    free(pj);
    json_t *nodes = json_object_get(json_object_get(pkg, "node-red"), "nodes");
    const char *key;
    json_t *file;
    json_object_foreach(nodes, key, file) {
        const char *rel = json_string_value(file);
        if (!rel) continue;
        char *path, *text;
        if (asprintf(&path, "%s/%s", dir, rel) < 0) continue;
        if ((text = crm_read_file(path, NULL))) {
            types_in(text, name, types);
            free(text);
        }
        size_t n = strlen(path);
        if (n > 3 && !strcmp(path + n - 3, ".js")) {
            path = realloc(path, n + 3); /* room for ".html" before writing it */
            strcpy(path + n - 3, ".html");
            if ((text = crm_read_file(path, NULL))) {
                types_in(text, name, types);
                free(text);
            }
        }
        free(path);
    }
    json_decref(pkg);
}

json_t *crm_companion_scan_modules(const char *userdir)
{
    json_t *types = json_object();
    char *nm;
    if (asprintf(&nm, "%s/node_modules", userdir && *userdir ? userdir : ".") < 0) return types;
    DIR *d = opendir(nm);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *sub;
        if (asprintf(&sub, "%s/%s", nm, e->d_name) < 0) continue;
        if (e->d_name[0] == '@') {
            DIR *s = opendir(sub);
            struct dirent *f;
            while (s && (f = readdir(s))) {
                if (f->d_name[0] == '.') continue;
                char *dir, *name;
                if (asprintf(&dir, "%s/%s", sub, f->d_name) >= 0 &&
                    asprintf(&name, "%s/%s", e->d_name, f->d_name) >= 0) {
                    scan_module(dir, name, types);
                    free(name);
                }
                free(dir);
            }
            if (s) closedir(s);
        } else {
            scan_module(sub, e->d_name, types);
        }
        free(sub);
    }
    if (d) closedir(d);
    free(nm);
    return types;
}

/* Modules the userDir's package.json depends on that node_modules lacks. */
json_t *crm_companion_missing_modules(const char *userdir)
{
    json_t *missing = json_array();
    const char *ud = userdir && *userdir ? userdir : ".";
    char *pj;
    if (asprintf(&pj, "%s/package.json", ud) < 0) return missing;
    json_t *pkg = json_load_file(pj, 0, NULL);
    free(pj);
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(pkg, "dependencies"), name, v) {
        char *p;
        if (asprintf(&p, "%s/node_modules/%s/package.json", ud, name) < 0) continue;
        if (access(p, R_OK)) json_array_append_new(missing, json_string(name));
        free(p);
    }
    json_decref(pkg);
    return missing;
}

int crm_companion_install(const char *userdir, const char *package)
{
    const char *ud = userdir && *userdir ? userdir : ".";
    char *pj;
    if (asprintf(&pj, "%s/package.json", ud) < 0) return 1;
    mkdir(ud, 0755); /* a new userDir, as Node-RED makes it */
    if (access(pj, F_OK)) { /* as Node-RED creates it in a new userDir */
        FILE *f = fopen(pj, "w");
        if (!f) {
            fprintf(stderr, "carmine: cannot create %s: %s\n", pj, strerror(errno));
            free(pj);
            return 1;
        }
        fputs("{\n    \"name\": \"node-red-project\",\n    \"description\": \"A Node-RED Project\",\n"
              "    \"version\": \"0.0.1\",\n    \"private\": true\n}\n", f);
        fclose(f);
    }
    free(pj);
    /* the palette manager's command line (@node-red/registry installer.js) */
    char *argv[] = {"npm", "install", "--no-audit", "--no-update-notifier", "--no-fund", "--save",
                    "--save-prefix=~", "--omit=dev", "--engine-strict", (char *)package, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, ud);
    pid_t pid;
    int rc = posix_spawnp(&pid, "npm", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "carmine: cannot run npm: %s\n", strerror(rc));
        return 1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        json_t *types = crm_companion_scan_modules(ud);
        const char *t;
        json_t *m;
        int k = 0;
        json_object_foreach(types, t, m) k++;
        printf("carmine: installed %s into %s/node_modules (%d node type%s from npm modules there)\n", package, ud,
               k, k == 1 ? "" : "s");
        json_decref(types);
        return 0;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
