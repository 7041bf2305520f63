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

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    /* four loops of twenty rounds, one function each: no branch per round
     * (every answer of an http response node hashes its body for the ETag) */
#define SHA1_ROUND(f, k)                                                                                     \
    do {                                                                                                     \
        uint32_t t = ROL(a, 5) + (f) + e + (k) + w[i];                                                       \
        e = d;                                                                                               \
        d = c;                                                                                               \
        c = ROL(b, 30);                                                                                      \
        b = a;                                                                                               \
        a = t;                                                                                               \
    } while (0)
    int i = 0;
    for (; i < 20; i++) SHA1_ROUND((b & c) | (~b & d), 0x5A827999);
    for (; i < 40; i++) SHA1_ROUND(b ^ c ^ d, 0x6ED9EBA1);
    for (; i < 60; i++) SHA1_ROUND((b & c) | (b & d) | (c & d), 0x8F1BBCDC);
    for (; i < 80; i++) SHA1_ROUND(b ^ c ^ d, 0xCA62C1D6);
#undef SHA1_ROUND
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

void http_sha1(const void *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    size_t left = len;
    while (left >= 64) {
        sha1_block(h, p);
        p += 64;
        left -= 64;
    }
    unsigned char tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128) sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
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
