/* http_util.c: small pieces of Express behaviour the HTTP server and the
 * http nodes reproduce: Content-Type charset rules, weak ETags (SHA-1),
 * freshness, HTTP Basic passwords (bcrypt through the
 * system's libcrypt, loaded on first use so the build needs no extra
 * library), and finalhandler's HTML error page. */
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/sha1.h>

#include "http_internal.h"

/* Content types ------------------------------------------------------------- */

bool http_media_type(const char *ct, char *out, size_t cap)
{
    if (!ct) return false;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    if (!n || n >= cap) return false;
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)ct[i]);
    out[n] = 0;
    return true;
}

typedef struct {
    const char *s;
    size_t n;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t nx = strcspn(x->s, "="), ny = strcspn(y->s, "=");
    if (nx > x->n) nx = x->n;
    if (ny > y->n) ny = y->n;
    int c = strncasecmp(x->s, y->s, nx < ny ? nx : ny);
    return c ? c : (int)nx - (int)ny;
}

char *crm_http_set_charset(const char *type)
{
    char media[256];
    if (!http_media_type(type, media, sizeof media) || !strchr(media, '/')) return strdup(type ? type : "");
    span params[16];
    int np = 0;
    const char *p = strchr(type, ';');
    while (p && np < 15) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, ";");
        size_t t = n;
        while (t && (p[t - 1] == ' ' || p[t - 1] == '\t')) t--;
        if (t && !http_ieqn(p, "charset=", 8)) params[np++] = (span){p, t};
        p = p[n] ? p + n : NULL;
    }
    params[np++] = (span){"charset=utf-8", 13};
    qsort(params, (size_t)np, sizeof *params, span_cmp);
    strbuf sb = SB_INIT;
    sb_puts(&sb, media);
    for (int i = 0; i < np; i++) {
        sb_puts(&sb, "; ");
        size_t eq = strcspn(params[i].s, "=");
        if (eq > params[i].n) eq = params[i].n;
        for (size_t k = 0; k < eq; k++) sb_putc(&sb, (char)tolower((unsigned char)params[i].s[k]));
        sb_putn(&sb, params[i].s + eq, params[i].n - eq);
    }
    return sb_take(&sb);
}

char *crm_http_type_for_set(const char *type)
{
    /* Express res.set: a charset is added when mime knows one for the type */
    const char *c = strstr(type, ";");
    bool has_charset = false;
    for (; c; c = strchr(c + 1, ';')) {
        const char *q = c + 1;
        while (*q == ' ' || *q == '\t') q++;
        if (http_ieqn(q, "charset", 7)) { has_charset = true; break; }
    }
    bool known = strncmp(type, "text/", 5) == 0 || strncmp(type, "application/javascript", 22) == 0 ||
                 strncmp(type, "application/json", 16) == 0;
    strbuf sb = SB_INIT;
    sb_puts(&sb, type);
    if (!has_charset && known) sb_puts(&sb, "; charset=utf-8");
    return sb_take(&sb);
}

/* SHA-1 and ETags ------------------------------------------------------------- */

/* libnettle's SHA-1 (already linked: GnuTLS and the credentials use it):
 * its x86-64 build picks the SHA extensions when the processor has them,
 * ~5x faster than portable C on the short bodies of most answers, and every
 * answer of an http response node hashes its body for the ETag. */
void http_sha1(const void *data, size_t len, unsigned char out[20])
{
    struct sha1_ctx ctx;
    sha1_init(&ctx);
    sha1_update(&ctx, len, data);
    sha1_digest(&ctx, SHA1_DIGEST_SIZE, out);
}

void http_etag(const void *data, size_t len, char *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char d[21] = {0};
    http_sha1(data, len, d);
    char enc[29];
    int o = 0;
    for (int i = 0; i < 21; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        enc[o++] = b64[(v >> 18) & 63];
        enc[o++] = b64[(v >> 12) & 63];
        enc[o++] = b64[(v >> 6) & 63];
        enc[o++] = b64[v & 63];
    }
    enc[27] = 0; /* the digest's base64 cut to 27 characters, as the etag module does */
    /* W/"<hex length>-<digest>", written by hand: this runs for every answer */
    char hex[2 * sizeof len + 1];
    int h = (int)sizeof hex - 1;
    hex[h] = 0;
    do {
        hex[--h] = "0123456789abcdef"[len & 15];
        len >>= 4;
    } while (len);
    char *p = stpcpy(out, "W/\"");
    p = stpcpy(p, hex + h);
    *p++ = '-';
    p = stpcpy(p, enc);
    strcpy(p, "\"");
}

bool http_etag_fresh(const char *inm, const char *etag)
{
    if (!inm || !*inm) return false;
    const char *p = inm;
    while (*p == ' ') p++;
    if (strcmp(p, "*") == 0) return true;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t && p[t - 1] == ' ') t--;
        if (t) {
            const char *a = p, *b = etag;
            size_t an = t, bn = strlen(etag);
            if (an > 2 && strncmp(a, "W/", 2) == 0) { a += 2; an -= 2; }
            if (bn > 2 && strncmp(b, "W/", 2) == 0) { b += 2; bn -= 2; }
            if (an == bn && strncmp(a, b, an) == 0) return true;
        }
        p += n;
    }
    return false;
}

/* Passwords ------------------------------------------------------------------- */

typedef char *(*crypt_r_fn)(const char *, const char *, void *);
static crypt_r_fn crypt_r_ptr;
static pthread_once_t crypt_once = PTHREAD_ONCE_INIT;

static void load_crypt(void)
{
    void *lib = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib) crypt_r_ptr = (crypt_r_fn)(uintptr_t)dlsym(lib, "crypt_r");
}

bool http_password_ok(const char *given, const char *pass)
{
    if (!given || !pass) return false;
    if (strncmp(pass, "$2", 2) != 0) {
        size_t a = strlen(given), b = strlen(pass);
        unsigned diff = (unsigned)(a ^ b);
        for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)(given[i] ^ pass[i]);
        return diff == 0;
    }
    pthread_once(&crypt_once, load_crypt);
    if (!crypt_r_ptr) return false;
    void *data = calloc(1, 65536); /* struct crypt_data is about 32 KiB */
    if (!data) return false;
    const char *h = crypt_r_ptr(given, pass, data);
    bool ok = h && h[0] == '$' && strcmp(h, pass) == 0;
    free(data);
    return ok;
}

/* Error pages -------------------------------------------------------------- */

char *http_error_page(const char *msg, size_t *len)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
                 "</head>\n<body>\n<pre>");
    for (const char *p = msg; *p; p++) {
        switch (*p) {
        case '&': sb_puts(&sb, "&amp;"); break;
        case '<': sb_puts(&sb, "&lt;"); break;
        case '>': sb_puts(&sb, "&gt;"); break;
        case '"': sb_puts(&sb, "&quot;"); break;
        case '\'': sb_puts(&sb, "&#39;"); break;
        case '\n': sb_puts(&sb, "<br>"); break;
        case ' ':
            if (p[1] == ' ') { sb_puts(&sb, " &nbsp;"); p++; }
            else sb_putc(&sb, ' ');
            break;
        default: sb_putc(&sb, *p);
        }
    }
    sb_puts(&sb, "</pre>\n</body>\n</html>\n");
    *len = sb.len;
    return sb_take(&sb);
}
