/* jsonata_suite.c: `carmine jsonata` — the command-line evaluator and the
 * runner of the official JSONata test suite (case format in the suite's
 * README.md), with an expected-failures list so CI stays green while known
 * gaps remain visible. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata_int.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    strbuf sb = SB_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_putn(&sb, buf, n);
    fclose(f);
    sb_putn(&sb, "", 0);
    if (len) *len = sb.len;
    return sb_take(&sb);
}

static json_t *parse_file(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return NULL;
    char err[256];
    json_t *v = crm_parse(text, len, err, sizeof err);
    if (!v) {
        /* a lone surrogate escape (\uD800) that jansson refuses: hand it to
         * the expression as a JSONata escape instead */
        strbuf sb = SB_INIT;
        for (size_t i = 0; i < len; i++) {
            if (text[i] == '\\' && i + 2 < len && text[i + 1] == 'u' && (text[i + 2] == 'D' || text[i + 2] == 'd') &&
                (i == 0 || text[i - 1] != '\\'))
                sb_putc(&sb, '\\');
            sb_putc(&sb, text[i]);
        }
        v = crm_parse(sb.data, sb.len, err, sizeof err);
        sb_free(&sb);
    }
    free(text);
    return v;
}

int jsonata_cli(const char *expr, const char *file)
{
    jsonata_error err;
    jsonata *e = jsonata_compile(expr, &err);
    if (!e) {
        fprintf(stderr, "%s at position %d: %s\n", err.code, err.position, err.message);
        return 1;
    }
    size_t len;
    char *text;
    if (file) {
        text = read_file(file, &len);
        if (!text) {
            fprintf(stderr, "cannot read %s\n", file);
            jsonata_free(e);
            return 1;
        }
    } else {
        strbuf sb = SB_INIT;
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) sb_putn(&sb, buf, n);
        sb_putn(&sb, "", 0);
        len = sb.len;
        text = sb_take(&sb);
    }
    json_t *input = NULL;
    bool blank = true;
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", text[i])) blank = false;
    if (!blank) {
        char perr[256];
        input = crm_parse(text, len, perr, sizeof perr);
        if (!input) {
            fprintf(stderr, "invalid JSON input: %s\n", perr);
            free(text);
            jsonata_free(e);
            return 1;
        }
    }
    free(text);
    json_t *result;
    /* the deadline expressions in nodes get by default (a runaway expression stops with U1001) */
    jsonata_limits lim = {.timeout_ms = JSONATA_DEFAULT_TIMEOUT_MS};
    int rc = jsonata_eval(e, input, NULL, &lim, &result, &err);
    json_decref(input);
    jsonata_free(e);
    if (rc) {
        fprintf(stderr, "%s at position %d: %s\n", err.code, err.position, err.message);
        return 1;
    }
    if (result) {
        char *s = crm_stringify(result, 2);
        printf("%s\n", s ? s : "");
        free(s);
        json_decref(result);
    }
    return 0;
}

/* Suite runner ------------------------------------------------------------- */

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char **list_dir(const char *path, int *n, bool dirs)
{
    DIR *d = opendir(path);
    *n = 0;
    if (!d) return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        size_t l = strlen(de->d_name);
        bool isjson = l > 5 && !strcmp(de->d_name + l - 5, ".json");
        if (dirs == isjson) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, sizeof(char *) * (size_t)cap);
        }
        names[(*n)++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)*n, sizeof(char *), cmpstr);
    return names;
}

static bool unordered_equal(const json_t *a, const json_t *b)
{
    if (!json_is_array(a) || !json_is_array(b)) return crm_equal(a, b);
    size_t n = json_array_size(a);
    if (n != json_array_size(b)) return false;
    bool *used = calloc(n + 1, 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++) {
            if (!used[j] && crm_equal(json_array_get(a, i), json_array_get(b, j))) {
                used[j] = true;
                found = true;
            }
        }
        ok = found;
    }
    free(used);
    return ok;
}

/* Runs one case; returns NULL on pass or a malloc'd reason. */
static char *run_case(const char *root, const char *groupdir, json_t *c)
{
    const char *expr = json_string_value(json_object_get(c, "expr"));
    char *exprbuf = NULL;
    if (!expr) {
        const char *ef = json_string_value(json_object_get(c, "expr-file"));
        if (!ef) return strdup("no expression");
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", groupdir, ef);
        exprbuf = read_file(path, NULL);
        if (!exprbuf) return strdup("cannot read expr-file");
        expr = exprbuf;
    }
    json_t *data = NULL;
    json_t *ds = json_object_get(c, "dataset");
    if (json_object_get(c, "data")) {
        data = json_incref(json_object_get(c, "data"));
    } else if (json_is_string(ds)) {
        char path[2048];
        snprintf(path, sizeof path, "%s/datasets/%s.json", root, json_string_value(ds));
        data = parse_file(path);
    }
    jsonata_frame *fr = jsonata_frame_new();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(c, "bindings"), k, v) jsonata_frame_bind(fr, k, v);
    jsonata_limits lim = {.timeout_ms = 5000};
    if (json_object_get(c, "timelimit")) lim.timeout_ms = crm_num_value(json_object_get(c, "timelimit"));
    if (json_object_get(c, "depth")) lim.max_depth = (int)crm_num_value(json_object_get(c, "depth"));

    jsonata_error err;
    json_t *result = NULL;
    int rc = -1;
    jsonata *e = jsonata_compile(expr, &err);
    if (e) rc = jsonata_eval(e, data, fr, &lim, &result, &err);
    jsonata_free(e);
    jsonata_frame_free(fr);
    json_decref(data);
    free(exprbuf);

    char *reason = NULL;
    json_t *code = json_object_get(c, "code");
    json_t *errobj = json_object_get(c, "error");
    if (errobj && !code) code = json_object_get(errobj, "code");
    strbuf sb = SB_INIT;
    if (code) {
        if (rc == 0) {
            char *s = result ? crm_stringify(result, 0) : strdup("undefined");
            sb_printf(&sb, "expected error %s, got %s", json_string_value(code), s);
            free(s);
        } else if (strcmp(err.code, json_string_value(code))) {
            sb_printf(&sb, "expected error %s, got %s (%s)", json_string_value(code), err.code, err.message);
        }
    } else if (rc != 0) {
        sb_printf(&sb, "error %s: %s", err.code, err.message);
    } else if (json_is_true(json_object_get(c, "undefinedResult"))) {
        if (result) {
            char *s = crm_stringify(result, 0);
            sb_printf(&sb, "expected undefined, got %s", s);
            free(s);
        }
    } else if (json_object_get(c, "result")) {
        json_t *want = json_object_get(c, "result");
        bool ok = json_is_true(json_object_get(c, "unordered")) ? unordered_equal(result, want)
                                                                 : (result && crm_equal(result, want));
        if (!ok) {
            char *s1 = crm_stringify(want, 0), *s2 = result ? crm_stringify(result, 0) : strdup("undefined");
            sb_printf(&sb, "expected %.200s, got %.200s", s1, s2);
            free(s1);
            free(s2);
        }
    } else if (result) {
        /* no expectation given: the case expects undefined */
        char *s = crm_stringify(result, 0);
        sb_printf(&sb, "expected undefined, got %s", s);
        free(s);
    }
    json_decref(result);
    if (sb.len) reason = sb_take(&sb);
    sb_free(&sb);
    return reason;
}

static bool listed(char **names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return true;
    return false;
}

int jsonata_run_suite(const char *dir, const char *expected_failures_file)
{
    char **expected = NULL;
    int nexp = 0, capexp = 0;
    if (expected_failures_file) {
        char *text = read_file(expected_failures_file, NULL);
        for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            while (*line == ' ') line++;
            if (!*line || *line == '#') continue;
            char *sp = strpbrk(line, " \t");
            if (sp) *sp = 0;
            if (nexp == capexp) {
                capexp = capexp ? capexp * 2 : 64;
                expected = realloc(expected, sizeof(char *) * (size_t)capexp);
            }
            expected[nexp++] = strdup(line);
        }
        free(text);
    }
    char groups_path[1024];
    snprintf(groups_path, sizeof groups_path, "%s/groups", dir);
    int ngroups;
    char **groups = list_dir(groups_path, &ngroups, true);
    int passed = 0, failed = 0, unexpected = 0;
    for (int g = 0; g < ngroups; g++) {
        char gdir[1200];
        snprintf(gdir, sizeof gdir, "%s/%s", groups_path, groups[g]);
        int nfiles;
        char **files = list_dir(gdir, &nfiles, false);
        for (int f = 0; f < nfiles; f++) {
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", gdir, files[f]);
            json_t *doc = parse_file(path);
            size_t ncases = json_is_array(doc) ? json_array_size(doc) : 1;
            for (size_t ci = 0; ci < ncases; ci++) {
                json_t *c = json_is_array(doc) ? json_array_get(doc, ci) : doc;
                char name[1400];
                char base[600];
                snprintf(base, sizeof base, "%s", files[f]);
                base[strlen(base) - 5] = 0;
                if (json_is_array(doc)) snprintf(name, sizeof name, "%s/%s[%zu]", groups[g], base, ci);
                else snprintf(name, sizeof name, "%s/%s", groups[g], base);
                char *reason = c ? run_case(dir, gdir, c) : strdup("unreadable case file");
                bool exp = listed(expected, nexp, name);
                if (reason) {
                    failed++;
                    if (!exp) unexpected++;
                    printf("%s %s %s\n", exp ? "xfail" : "FAIL", name, reason);
                    free(reason);
                } else {
                    passed++;
                    if (exp) printf("now passing: %s\n", name);
                }
            }
            json_decref(doc);
            free(files[f]);
        }
        free(files);
        free(groups[g]);
    }
    free(groups);
    for (int i = 0; i < nexp; i++) free(expected[i]);
    free(expected);
    printf("%d passed, %d failed\n", passed, failed);
    return unexpected ? 1 : 0;
}
