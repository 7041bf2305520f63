/* locales.c: GET /locales/:namespace?lng= as editor-api's locales.js
 * answers it from i18next: the catalogue of that language, or of its base
 * language ("de" for "de-DE"), else {} (no fallback to en-US: the editor's
 * i18next does that itself). Namespaces: editor, jsonata, infotips (the
 * editor-client's), node-red (@node-red/nodes' messages.json), runtime
 * (@node-red/runtime's). Keys ending "_plural" are renamed "_other", as
 * Node-RED's i18next (v21, JSON v4) converts them. Read per request. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "editor_internal.h"
#include "value.h"

static void plural_to_other(json_t *o)
{
    if (json_is_array(o)) {
        size_t i;
        json_t *v;
        json_array_foreach(o, i, v) plural_to_other(v);
        return;
    }
    if (!json_is_object(o)) return;
    const char *k;
    json_t *v;
    void *tmp;
    json_t *renamed = NULL;
    json_object_foreach_safe(o, tmp, k, v)
    {
        plural_to_other(v);
        size_t n = strlen(k);
        if (n > 7 && !strcmp(k + n - 7, "_plural")) {
            if (!renamed) renamed = json_object();
            char *nk = malloc(n);
            memcpy(nk, k, n - 7);
            strcpy(nk + n - 7, "_other");
            json_object_set(renamed, nk, v);
            free(nk);
            json_object_del(o, k);
        }
    }
    if (renamed) {
        json_object_update(o, renamed);
        json_decref(renamed);
    }
}

/* The catalogue file of a namespace for one language; NULL when there is none. */
static json_t *load(crm_editor *e, const char *ns, const char *lang)
{
    const char *base = NULL, *file = NULL;
    if (!strcmp(ns, "editor") || !strcmp(ns, "jsonata") || !strcmp(ns, "infotips")) base = e->client, file = ns;
    else if (!strcmp(ns, "node-red")) base = e->nodes, file = "messages";
    else if (!strcmp(ns, "runtime")) base = e->runtime, file = "runtime";
    if (!base) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/locales/%s/%s.json", base, lang, file);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j) plural_to_other(j);
    return j;
}

bool ed_locales_route(crm_editor *e, const char *path, const char *query, crm_admin_reply *r)
{
    if (strncmp(path, "/locales/", 9) || !path[9]) return false;
    char ns[64];
    size_t n = strlen(path + 9);
    if (n && path[9 + n - 1] == '/') n--; /* /^\/locales\/(.+)\/?$/ */
    if (n > 5 && !strncmp(path + 9 + n - 5, ".json", 5)) n -= 5;
    json_t *cat = NULL;
    if (n < sizeof ns) {
        memcpy(ns, path + 9, n);
        ns[n] = 0;
        char *lng = ed_query_param(query, "lng");
        const char *lang = lng ? lng : "en-US";
        if (ed_lang_ok(lang)) {
            cat = load(e, ns, lang);
            const char *dash = strchr(lang, '-');
            if (!cat && dash && !strchr(dash + 1, '-')) {
                char base[64];
                snprintf(base, sizeof base, "%.*s", (int)(dash - lang), lang);
                cat = load(e, ns, base);
            }
        }
        free(lng);
    }
    crm_admin_reply_json(r, 200, cat ? cat : json_object());
    return true;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

json_t *ed_languages(crm_editor *e)
{
    json_t *out = json_array();
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/locales", e->client);
    DIR *d = opendir(dir);
    if (!d) return out;
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256) {
        if (de->d_name[0] == '.') continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s/editor.json", dir, de->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        fclose(f);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, json_string(names[i]));
        free(names[i]);
    }
    return out;
}
