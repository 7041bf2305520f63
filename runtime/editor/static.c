/* static.c: files of the editor's packages answered as express.static
 * (serve-static 1.x / send) answers them: the media type of the name, a
 * weak ETag of size and mtime, Last-Modified, "Cache-Control: public,
 * max-age=0", 304 when the client's copy is current. The file is opened
 * here and sent by the server thread from the descriptor (no copy kept in
 * memory). A path with a "." segment (.., dotfiles), an empty segment or a
 * backslash is refused before anything is opened: such requests fall
 * through to a 404 as they do in Node-RED. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "editor_internal.h"

static const struct {
    const char *ext, *type;
} types[] = {
    {"js", "application/javascript; charset=UTF-8"},
    {"mjs", "application/javascript; charset=UTF-8"},
    {"css", "text/css; charset=UTF-8"},
    {"html", "text/html; charset=UTF-8"},
    {"htm", "text/html; charset=UTF-8"},
    {"json", "application/json; charset=UTF-8"},
    {"map", "application/json; charset=UTF-8"},
    {"txt", "text/plain; charset=UTF-8"},
    {"md", "text/markdown; charset=UTF-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"gif", "image/gif"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"eot", "application/vnd.ms-fontobject"},
    {"wasm", "application/wasm"},
    {"ts", "video/mp2t"}, /* what mime 1.x says, and so Node-RED sends for the .d.ts files */
};

const char *ed_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

bool ed_safe_rel(const char *rel)
{
    if (!*rel || strchr(rel, '\\')) return false;
    for (const char *p = rel; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || p[0] == '.') return false;
        p += n;
        if (*p == '/') p++;
        else break;
    }
    return rel[strlen(rel) - 1] != '/';
}


void ed_reply_text(crm_admin_reply *r, int status, const char *type, char *body)
{
    r->status = status;
    r->content_type = (char *)type;
    r->body = body;
    r->len = body ? strlen(body) : 0;
}

static const char *header(const json_t *headers, const char *name)
{
    return json_string_value(json_object_get(headers, name));
}

/* Whether an If-None-Match list holds etag (weak comparison, as fresh does). */
static bool etag_matches(const char *list, const char *etag)
{
    if (!strcmp(list, "*")) return true;
    const char *bare = etag + 2; /* without W/ */
    for (const char *p = list; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ') n--;
        const char *t = p;
        size_t tn = n;
        if (tn > 2 && !strncmp(t, "W/", 2)) t += 2, tn -= 2;
        if (tn == strlen(bare) && !strncmp(t, bare, tn)) return true;
        p += strcspn(p, ",");
    }
    return false;
}

bool ed_send_file(const char *dir, const char *rel, const json_t *headers, crm_admin_reply *r)
{
    if (!dir || !ed_safe_rel(rel)) return false;
    size_t plen = strlen(dir) + strlen(rel) + 2;
    char *path = malloc(plen);
    snprintf(path, plen, "%s/%s", dir, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return false;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return false;
    }
    long long mtime_ms = (long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    char etag[64], modified[64];
    snprintf(etag, sizeof etag, "W/\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)mtime_ms);
    struct tm tm;
    gmtime_r(&st.st_mtim.tv_sec, &tm);
    strftime(modified, sizeof modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    strbuf h = SB_INIT;
    sb_printf(&h, "Cache-Control: public, max-age=0\r\nLast-Modified: %s\r\nETag: %s\r\n", modified, etag);
    r->headers = sb_take(&h);
    r->content_type = (char *)ed_content_type(rel);
    const char *inm = header(headers, "if-none-match");
    const char *ims = header(headers, "if-modified-since");
    bool fresh = false;
    if (inm) fresh = etag_matches(inm, etag);
    else if (ims) {
        struct tm since = {0};
        const char *end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &since);
        fresh = end && timegm(&since) >= st.st_mtim.tv_sec;
    }
    if (fresh) {
        close(fd);
        r->status = 304;
        r->content_type = NULL;
        return true;
    }
    r->status = 200;
    r->file = true;
    r->file_fd = fd;
    r->len = (size_t)st.st_size;
    return true;
}

char *ed_query_param(const char *query, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n > nl && !strncmp(p, name, nl) && p[nl] == '=') return strndup(p + nl + 1, n - nl - 1);
        if (n == nl && !strncmp(p, name, nl)) return strdup("");
        p += n;
        if (*p == '&') p++;
    }
    return NULL;
}

bool ed_lang_ok(const char *lang)
{
    if (!*lang) return false;
    for (const char *p = lang; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '=' ||
              *p == '-' || *p == '*'))
            return false;
    return true;
}

void ed_header_lang(const json_t *headers, char *out, size_t size)
{
    snprintf(out, size, "en-US");
    const char *al = header(headers, "accept-language");
    if (!al) return;
    al += strspn(al, " ");
    size_t n = strcspn(al, ",; ");
    if (!n || n >= size) return;
    char lang[64];
    if (n >= sizeof lang) return;
    memcpy(lang, al, n);
    lang[n] = 0;
    if (ed_lang_ok(lang) && strcmp(lang, "*")) snprintf(out, size, "%s", lang);
}
