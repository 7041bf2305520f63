/* nodes.c: GET /nodes, the node sets the editor loads: with "Accept:
 * application/json" their list ({id, name, types, enabled, local, user,
 * module, version}), otherwise their HTML concatenated as Node-RED's
 * registry does ("<!-- --- [red-module:ID] --- -->", the definition
 * without its help scripts, then the help of the request's language).
 *
 * The sets are those of @node-red/nodes/core (folders and files in name
 * order, named as Node-RED names them: "20-inject.html" is
 * node-red/inject) that hold a type Carmine has, then every plugin with an
 * .html beside its .so (docs/plugins.md). Types Carmine lacks are not
 * listed, so the editor shows them as it shows unknown types. A set's types
 * are its data-template-name scripts (the registerType calls of its .js
 * when it has none, as for junction). Nothing is cached: every request
 * reads the files again (a few milliseconds), which keeps the idle editor
 * free of memory.
 *
 * Also GET /nodes/messages ({}: the core catalogue is /locales/node-red),
 * GET /icons (the icon list) and GET /icons/:module/:icon. */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "editor_internal.h"
#include "engine.h"
#include "plugins.h"

typedef struct {
    char *id, *name, *module, *version;
    char *html_path;   /* the definition */
    char *help_dir;    /* locales folder for help, or NULL */
    char *help_rel;    /* path below locales/<lang>/ */
    json_t *types;
} node_set;

typedef struct {
    node_set *v;
    size_t n;
} set_list;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir that pass keep (malloc'd, NULL-terminated). */
static char **list_dir(const char *dir, bool (*keep)(const char *dir, const char *name))
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !keep(dir, de->d_name)) continue;
        if (n + 1 == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(v, n, sizeof *v, by_name);
    v[n] = NULL;
    return v;
}

static void free_names(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

static bool is_dir(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    DIR *d = opendir(p);
    if (d) closedir(d);
    return d != NULL;
}

static bool is_html(const char *dir, const char *name)
{
    (void)dir;
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".html");
}

/* The quoted first arguments matched by pattern (one group) in text, in order. */
static void scan(const char *text, const char *pattern, json_t *out)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_ICASE)) return;
    regmatch_t m[2];
    for (const char *p = text; !regexec(&re, p, 2, m, p == text ? 0 : REG_NOTBOL); p += m[0].rm_eo) {
        char *t = strndup(p + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so));
        bool seen = false;
        size_t i;
        json_t *v;
        json_array_foreach(out, i, v) seen = seen || !strcmp(json_string_value(v), t);
        if (!seen) json_array_append_new(out, json_string(t));
        free(t);
        if (m[0].rm_eo == 0) break;
    }
    regfree(&re);
}

static json_t *set_types(const char *html_path)
{
    json_t *types = json_array();
    char *html = crm_read_file(html_path, NULL);
    if (html) scan(html, "<script [^>]*data-template-name[[:space:]]*=[[:space:]]*['\"]([^'\"]*)['\"]", types);
    free(html);
    if (json_array_size(types)) return types;
    size_t n = strlen(html_path);
    char *js = malloc(n + 1);
    memcpy(js, html_path, n - 5);
    strcpy(js + n - 5, ".js");
    char *text = crm_read_file(js, NULL);
    free(js);
    if (text) scan(text, "registerType\\([[:space:]]*['\"]([^'\"]+)['\"]", types);
    free(text);
    return types;
}

static bool has_carmine_type(const json_t *types)
{
    size_t i;
    json_t *v;
    json_array_foreach(types, i, v) if (crm_lookup_type(json_string_value(v))) return true;
    return false;
}

static void add_set(set_list *l, node_set s)
{
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = s;
}

static void add_plugin(const char *path, const struct crm_node_type *const *types, void *arg)
{
    set_list *l = arg;
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 3, ".so")) return;
    node_set s = {0};
    s.html_path = malloc(n + 3);
    memcpy(s.html_path, path, n - 3);
    strcpy(s.html_path + n - 3, ".html");
    FILE *f = fopen(s.html_path, "r");
    if (!f) {
        free(s.html_path);
        return;
    }
    fclose(f);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    s.module = strndup(base, strlen(base) - 3);
    s.name = strdup(s.module);
    s.version = strdup(CARMINE_VERSION);
    size_t idn = strlen(s.module) * 2 + 2;
    s.id = malloc(idn);
    snprintf(s.id, idn, "%s/%s", s.module, s.name);
    s.types = json_array();
    for (size_t i = 0; types[i]; i++) json_array_append_new(s.types, json_string(types[i]->type));
    add_set(l, s);
}

static set_list node_sets(crm_editor *e)
{
    set_list l = {0};
    char core[2048];
    snprintf(core, sizeof core, "%s/core", e->nodes ? e->nodes : "/nonexistent");
    char **dirs = list_dir(core, is_dir);
    for (size_t i = 0; dirs && dirs[i]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", core, dirs[i]);
        char **files = list_dir(dir, is_html);
        for (size_t j = 0; files && files[j]; j++) {
            node_set s = {0};
            size_t pn = strlen(dir) + strlen(files[j]) + 2;
            s.html_path = malloc(pn);
            snprintf(s.html_path, pn, "%s/%s", dir, files[j]);
            s.types = set_types(s.html_path);
            if (!has_carmine_type(s.types)) {
                free(s.html_path);
                json_decref(s.types);
                continue;
            }
            const char *name = files[j] + strspn(files[j], "0123456789");
            if (name == files[j] || *name != '-') name = files[j];
            else name++;
            s.name = strndup(name, strlen(name) - 5);
            s.module = strdup("node-red");
            s.version = strdup("4.1.15");
            size_t idn = strlen(s.name) + 10;
            s.id = malloc(idn);
            snprintf(s.id, idn, "node-red/%s", s.name);
            size_t hn = strlen(e->nodes) + 10;
            s.help_dir = malloc(hn);
            snprintf(s.help_dir, hn, "%s/locales", e->nodes);
            size_t rn = strlen(dirs[i]) + strlen(files[j]) + 2;
            s.help_rel = malloc(rn);
            snprintf(s.help_rel, rn, "%s/%s", dirs[i], files[j]);
            add_set(&l, s);
        }
        free_names(files);
    }
    free_names(dirs);
    crm_plugins_each(add_plugin, &l);
    return l;
}

static void free_sets(set_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        node_set *s = &l->v[i];
        free(s->id);
        free(s->name);
        free(s->module);
        free(s->version);
        free(s->html_path);
        free(s->help_dir);
        free(s->help_rel);
        json_decref(s->types);
    }
    free(l->v);
}

/* Splits a definition into what stays and its help scripts by language
 * (registry/lib/loader.js loadNodeTemplate). */
static void split_help(const char *html, strbuf *main, json_t *help)
{
    regex_t re, lang_re;
    regcomp(&re, "<script[^>]* data-help-name=", REG_EXTENDED | REG_ICASE);
    regcomp(&lang_re, "^<script[^>]* data-lang[[:space:]]*=[[:space:]]*['\"]([^'\"]+)['\"]", REG_EXTENDED | REG_ICASE);
    const char *p = html;
    regmatch_t m[2];
    while (!regexec(&re, p, 1, m, p == html ? 0 : REG_NOTBOL)) {
        const char *start = p + m[0].rm_so;
        const char *end = strstr(start, "</script>");
        if (!end) break;
        end += 9;
        sb_putn(main, p, (size_t)(start - p));
        char *script = strndup(start, (size_t)(end - start));
        /* the data-lang must sit in the opening tag */
        char lang[64] = "en-US";
        size_t tag = strcspn(script, ">");
        char saved = script[tag];
        script[tag] = 0;
        if (!regexec(&lang_re, script, 2, m, 0) && m[1].rm_eo - m[1].rm_so < 63)
            snprintf(lang, sizeof lang, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), script + m[1].rm_so);
        script[tag] = saved;
        const char *prev = json_string_value(json_object_get(help, lang));
        strbuf sb = SB_INIT;
        sb_puts(&sb, prev ? prev : "");
        sb_puts(&sb, script);
        json_object_set_new(help, lang, json_string(sb.data));
        sb_free(&sb);
        free(script);
        p = end;
    }
    sb_puts(main, p);
    regfree(&re);
    regfree(&lang_re);
}

static char *help_file(const node_set *s, const char *lang)
{
    if (!s->help_dir || !ed_lang_ok(lang)) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", s->help_dir, lang, s->help_rel);
    return crm_read_file(path, NULL);
}

/* registry/lib/loader.js getNodeHelp */
static void put_help(strbuf *out, const node_set *s, const json_t *inline_help, const char *lang)
{
    const char *own = json_string_value(json_object_get(inline_help, lang));
    if (own) {
        sb_puts(out, own);
        return;
    }
    char *text = help_file(s, lang);
    const char *dash = strchr(lang, '-');
    if (!text && dash) {
        char base[64];
        snprintf(base, sizeof base, "%.*s", (int)(dash - lang), lang);
        text = help_file(s, base);
    }
    if (text) {
        sb_puts(out, text);
        free(text);
    } else if (strcmp(lang, "en-US")) {
        put_help(out, s, inline_help, "en-US");
    }
}

static void nodes_html(crm_editor *e, const set_list *l, const char *lang, crm_admin_reply *r)
{
    (void)e;
    strbuf out = SB_INIT;
    for (size_t i = 0; i < l->n; i++) {
        const node_set *s = &l->v[i];
        char *html = crm_read_file(s->html_path, NULL);
        if (!html) continue;
        sb_printf(&out, "\n<!-- --- [red-module:%s] --- -->\n", s->id);
        json_t *help = json_object();
        split_help(html, &out, help);
        put_help(&out, s, help, lang);
        json_decref(help);
        free(html);
    }
    if (!out.data) sb_puts(&out, "");
    ed_reply_text(r, 200, "text/html; charset=utf-8", sb_take(&out));
}

static json_t *nodes_json(const set_list *l)
{
    json_t *out = json_array();
    for (size_t i = 0; i < l->n; i++) {
        const node_set *s = &l->v[i];
        json_array_append_new(out, json_pack("{s:s,s:s,s:O,s:b,s:b,s:b,s:s,s:s}", "id", s->id, "name", s->name, "types",
                                             s->types, "enabled", 1, "local", 0, "user", 0, "module", s->module,
                                             "version", s->version));
    }
    return out;
}

static bool icon_route(crm_editor *e, const char *path, const json_t *headers, crm_admin_reply *r)
{
    /* /icons/:module/:icon and /icons/:scope/:module/:icon */
    const char *rest = path + 7;
    const char *icon = strrchr(rest, '/');
    if (!icon || icon == rest) return false;
    int slashes = 0;
    for (const char *p = rest; *p; p++) slashes += *p == '/';
    if (slashes > 2 || (slashes == 2 && rest[0] != '@')) return false;
    icon++;
    char dir[4096];
    if (e->nodes && !strncmp(rest, "node-red/", 9)) {
        snprintf(dir, sizeof dir, "%s/icons", e->nodes);
        if (ed_send_file(dir, icon, headers, r)) return true;
    }
    snprintf(dir, sizeof dir, "%s/public/red/images/icons", e->client);
    if (ed_send_file(dir, icon, headers, r)) return true;
    /* Node-RED answers an unknown icon with its default one */
    return ed_send_file(dir, "arrow-in.svg", headers, r);
}

static bool is_icon(const char *dir, const char *name)
{
    (void)dir;
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".svg") || !strcmp(dot, ".png") || !strcmp(dot, ".gif") || !strcmp(dot, ".jpg"));
}

bool ed_nodes_route(crm_editor *e, const char *path, const char *query, const json_t *headers, crm_admin_reply *r)
{
    (void)query;
    if (!strcmp(path, "/nodes")) {
        set_list l = node_sets(e);
        const char *accept = json_string_value(json_object_get(headers, "accept"));
        if (accept && !strcmp(accept, "application/json")) {
            crm_admin_reply_json(r, 200, nodes_json(&l));
        } else {
            char lang[64];
            ed_header_lang(headers, lang, sizeof lang);
            nodes_html(e, &l, lang, r);
        }
        free_sets(&l);
        return true;
    }
    if (!strcmp(path, "/nodes/messages")) {
        crm_admin_reply_json(r, 200, json_object());
        return true;
    }
    if (!strcmp(path, "/icons")) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/icons", e->nodes ? e->nodes : "/nonexistent");
        char **names = list_dir(dir, is_icon);
        json_t *list = json_array();
        for (size_t i = 0; names && names[i]; i++) json_array_append_new(list, json_string(names[i]));
        free_names(names);
        crm_admin_reply_json(r, 200, json_pack("{s:o}", "node-red", list));
        return true;
    }
    if (!strncmp(path, "/icons/", 7)) return icon_route(e, path, headers, r);
    return false;
}
