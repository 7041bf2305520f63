/* locales.c: GET /locales/:namespace?lng= as editor-api's locales.js
 * answers it from i18next: the catalogue of that language, or of its base
 * language ("de" for "de-DE"), else {}; what a catalogue lacks comes from
 * en-US's, as @node-red/util's i18n merges them. Namespaces: editor, jsonata, infotips (the
 * editor-client's), node-red (@node-red/nodes' messages.json), runtime
 * (@node-red/runtime's). Keys with "_plural" are renamed "_other", as
 * Node-RED converts its catalogues for i18next v21. Read per request. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "editor_internal.h"
#include "value.h"

/* @node-red/util's i18n migrateMessageCatalogV3toV4: "x_plural" becomes
 * "x_other" (kept when that is there already). */
static bool js_truthy(const json_t *v);

static void plural_to_other(json_t *o)
{
    if (!json_is_object(o)) return;
    const char *k;
    json_t *v;
    void *tmp;
    json_t *renamed = json_object();
    json_object_foreach_safe(o, tmp, k, v) {
        size_t n = strlen(k);
        if (json_is_object(v)) {
            plural_to_other(v);
        } else if (n >= 7 && strstr(k, "_plural")) {
            /* key.replace('_plural', '_other'): the first one */
            const char *at = strstr(k, "_plural");
            strbuf nk = SB_INIT;
            sb_putn(&nk, k, (size_t)(at - k));
            sb_puts(&nk, "_other");
            sb_puts(&nk, at + 7);
            if (!js_truthy(json_object_get(o, nk.data)) && !js_truthy(json_object_get(renamed, nk.data)))
                json_object_set(renamed, nk.data, v);
            sb_free(&nk);
            json_object_del(o, k);
        }
    }
    json_object_update(o, renamed);
    json_decref(renamed);
}

static bool js_truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v)) return false;
    if (json_is_string(v)) return json_string_length(v) > 0;
    if (json_is_number(v)) return json_number_value(v) != 0;
    return true;
}

/* mergeCatalog: what the catalogue lacks (or holds falsy) comes from the fallback. */
static void merge(const json_t *fallback, json_t *catalog)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fallback, k, v) {
        json_t *cur = json_object_get(catalog, k);
        if (!js_truthy(cur)) json_object_set(catalog, k, v);
        else if (json_is_object(v) && json_is_object(cur)) merge(v, cur);
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
    if (!j) return NULL;
    plural_to_other(j);
    if (strcmp(lang, "en-US")) { /* Node-RED's i18n fills a language from en-US */
        json_t *en = load(e, ns, "en-US");
        if (en) merge(en, j);
        json_decref(en);
    }
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
