/* http_route.c: Express route paths (path-to-regexp 0.1, as Express 4 uses
 * it): ":name" parameters (with "(regex)", "*" and "?" suffixes), "*"
 * wildcards, case-insensitive, optional trailing slash. Literal paths, the
 * common case, are compared directly; the others become a PCRE2 pattern
 * built the way path-to-regexp builds its RegExp. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

struct http_pattern {
    char *literal;      /* set for literal paths: without its trailing slash */
    size_t literal_len;
    pcre2_code *re;
    char **names;       /* capture group i+1 -> parameter name */
    int ngroups;
};

static bool is_word(int c) { return isalnum(c) || c == '_'; }

static bool is_literal(const char *p)
{
    return strpbrk(p, ":*()?+[]$^\\|{}") == NULL;
}

static void add_group(http_pattern *p, const char *name, size_t n, int *unnamed)
{
    char **nn = realloc(p->names, sizeof(char *) * (size_t)(p->ngroups + 1));
    if (!nn) return;
    p->names = nn;
    if (name) {
        p->names[p->ngroups++] = strndup(name, n);
    } else {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", (*unnamed)++);
        p->names[p->ngroups++] = strdup(buf);
    }
}

/* One ":name" parameter starting at path[i] (after an optional "/" and
 * "."), emitted as path-to-regexp does. Returns the new index, or i when
 * there is no parameter here. */
static size_t emit_param(http_pattern *p, strbuf *re, const char *path, size_t i, int *unnamed)
{
    size_t k = i;
    bool slash = path[k] == '/';
    if (slash) k++;
    bool format = path[k] == '.';
    if (format) k++;
    if (path[k] != ':' || !is_word((unsigned char)path[k + 1])) return i;
    k++;
    size_t name = k;
    while (is_word((unsigned char)path[k])) k++;
    size_t name_len = k - name;
    const char *capture = NULL;
    size_t capture_len = 0;
    if (path[k] == '(') {
        const char *close = strchr(path + k, ')');
        if (close) {
            capture = path + k;
            capture_len = (size_t)(close - capture) + 1;
            k += capture_len;
        }
    }
    bool star = path[k] == '*';
    if (star) k++;
    bool optional = path[k] == '?';
    if (optional) k++;
    const char *sl = slash ? "\\/" : "";
    const char *fm = format ? "\\." : "";
    if (!optional) sb_puts(re, sl);
    sb_puts(re, "(?:");
    sb_puts(re, fm);
    if (optional) sb_puts(re, sl);
    if (capture) sb_putn(re, capture, capture_len);
    else sb_printf(re, "([^\\/%s]+?)", fm);
    add_group(p, path + name, name_len, unnamed);
    if (star) {
        sb_printf(re, "((?:[\\/%s].+?)?)", fm);
        add_group(p, NULL, 0, unnamed);
    }
    sb_puts(re, ")");
    if (optional) sb_puts(re, "?");
    return k;
}

static int compile_regex(http_pattern *p, const char *path)
{
    strbuf re = SB_INIT;
    int unnamed = 0;
    size_t n = strlen(path);
    sb_putc(&re, '^');
    for (size_t i = 0; i < n;) {
        size_t k = emit_param(p, &re, path, i, &unnamed);
        if (k != i) { i = k; continue; }
        char c = path[i];
        if (c == '/' && path[i + 1] == '(') {
            sb_puts(&re, "\\/(?:");
            i += 2;
        } else if (c == '/' || c == '.') {
            sb_putc(&re, '\\');
            sb_putc(&re, c);
            i++;
        } else if (c == '*') {
            sb_puts(&re, "(.*)");
            add_group(p, NULL, 0, &unnamed);
            i++;
        } else if (c == '\\' && path[i + 1]) {
            sb_putn(&re, path + i, 2);
            i += 2;
        } else {
            if (c == '(' && path[i + 1] != '?') add_group(p, NULL, 0, &unnamed);
            sb_putc(&re, c);
            i++;
        }
    }
    sb_puts(&re, n && path[n - 1] == '/' ? "?$" : "\\/?$");
    int errcode;
    PCRE2_SIZE erroff;
    p->re = pcre2_compile((PCRE2_SPTR)re.data, re.len, PCRE2_CASELESS, &errcode, &erroff, NULL);
    sb_free(&re);
    if (!p->re) return -1;
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    return 0;
}

http_pattern *http_pattern_new(const char *path)
{
    http_pattern *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (is_literal(path)) {
        size_t n = strlen(path);
        if (n && path[n - 1] == '/') n--;
        p->literal = strndup(path, n);
        p->literal_len = n;
        if (!p->literal) { free(p); return NULL; }
        return p;
    }
    if (compile_regex(p, path) < 0) {
        http_pattern_free(p);
        return NULL;
    }
    return p;
}

void http_pattern_free(http_pattern *p)
{
    if (!p) return;
    free(p->literal);
    if (p->re) pcre2_code_free(p->re);
    for (int i = 0; i < p->ngroups; i++) free(p->names[i]);
    free(p->names);
    free(p);
}

bool http_pattern_has_params(const http_pattern *p) { return p->literal == NULL; }

bool http_pattern_match(const http_pattern *p, const char *path, size_t len, json_t **params)
{
    if (params) *params = NULL;
    if (p->literal) {
        if (len && path[len - 1] == '/') len--;
        if (len != p->literal_len || strncasecmp(path, p->literal, len) != 0) return false;
        if (params) *params = json_object();
        return true;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md) return false;
    int rc = pcre2_match(p->re, (PCRE2_SPTR)path, len, 0, 0, md, NULL);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return false;
    }
    if (params) {
        json_t *o = json_object();
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t pairs = pcre2_get_ovector_count(md);
        for (int g = 0; g < p->ngroups && (uint32_t)(g + 1) < pairs; g++) {
            PCRE2_SIZE s = ov[2 * (g + 1)], e = ov[2 * (g + 1) + 1];
            if (s == PCRE2_UNSET) continue; /* undefined: Express leaves no value */
            json_object_set_new(o, p->names[g], http_decode_component(path + s, e - s, false));
        }
        *params = o;
    }
    pcre2_match_data_free(md);
    return true;
}
