/* netutil.c: see netutil.h. */
#include "netutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carmine.h"

/* libuv's descriptions (uv_strerror), which Node puts in its messages. */
static const struct {
    int err;
    const char *text;
} uv_texts[] = {
    {E2BIG, "argument list too long"},
    {EACCES, "permission denied"},
    {EADDRINUSE, "address already in use"},
    {EADDRNOTAVAIL, "address not available"},
    {EAFNOSUPPORT, "address family not supported"},
    {EAGAIN, "resource temporarily unavailable"},
    {EALREADY, "connection already in progress"},
    {EBADF, "bad file descriptor"},
    {EBUSY, "resource busy or locked"},
    {ECONNABORTED, "software caused connection abort"},
    {ECONNREFUSED, "connection refused"},
    {ECONNRESET, "connection reset by peer"},
    {EEXIST, "file already exists"},
    {EFBIG, "file too large"},
    {EHOSTUNREACH, "host is unreachable"},
    {EINVAL, "invalid argument"},
    {EIO, "i/o error"},
    {EISDIR, "illegal operation on a directory"},
    {ELOOP, "too many symbolic links encountered"},
    {EMFILE, "too many open files"},
    {ENAMETOOLONG, "name too long"},
    {ENETUNREACH, "network is unreachable"},
    {ENOENT, "no such file or directory"},
    {ENOMEM, "not enough memory"},
    {ENOSPC, "no space left on device"},
    {ENOTCONN, "socket is not connected"},
    {ENOTDIR, "not a directory"},
    {ENOTEMPTY, "directory not empty"},
    {EPERM, "operation not permitted"},
    {EPIPE, "broken pipe"},
    {EROFS, "read-only file system"},
    {ETIMEDOUT, "connection timed out"},
    {EXDEV, "cross-device link not permitted"},
};

const char *crm_errno_text(int err)
{
    for (size_t i = 0; i < sizeof uv_texts / sizeof *uv_texts; i++)
        if (uv_texts[i].err == err) return uv_texts[i].text;
    return strerror(err);
}

const char *crm_errno_name(int err)
{
    const char *s = strerrorname_np(err);
    return s ? s : "UNKNOWN";
}

char *crm_sys_error(int err, const char *syscall, const char *path)
{
    char *s = NULL;
    int r = path ? asprintf(&s, "%s: %s, %s '%s'", crm_errno_name(err), crm_errno_text(err), syscall, path)
                 : asprintf(&s, "%s: %s, %s", crm_errno_name(err), crm_errno_text(err), syscall);
    return r < 0 ? NULL : s;
}

json_t *crm_sys_error_obj(int err, const char *syscall, const char *path)
{
    json_t *o = json_object();
    json_object_set_new(o, "errno", json_real(-err));
    json_object_set_new(o, "code", json_string(crm_errno_name(err)));
    json_object_set_new(o, "syscall", json_string(syscall));
    if (path) json_object_set_new(o, "path", json_string(path));
    return o;
}

/* UTF-8 -------------------------------------------------------------------- */

/* Length of the valid sequence at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

bool crm_utf8_valid(const void *data, size_t len)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < len;) {
        uint64_t w;
        if (i + 8 <= len && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ull))) {
            i += 8; /* eight ASCII bytes at once */
            continue;
        }
        size_t k = utf8_seq(s + i, len - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

/* V8 replaces each maximal invalid subpart with one U+FFFD: a lead byte
 * followed by some valid continuation bytes of a cut sequence counts once. */
json_t *crm_text_of(const void *data, size_t len)
{
    const unsigned char *s = data;
    if (crm_utf8_valid(s, len)) return json_stringn((const char *)s, len);
    strbuf sb = SB_INIT;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(s + i, len - i);
        if (k) {
            sb_putn(&sb, (const char *)s + i, k);
            i += k;
            continue;
        }
        sb_puts(&sb, "\xEF\xBF\xBD");
        unsigned c = s[i];
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 1;
        size_t j = 1;
        /* continuation bytes that could still belong to this sequence */
        while (j < need && i + j < len && (s[i + j] & 0xC0) == 0x80) {
            if (j == 1) {
                unsigned d = s[i + 1];
                if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
                    (c == 0xF4 && d > 0x8F) || (c >= 0xC0 && c <= 0xC1))
                    break;
            }
            j++;
        }
        i += j;
    }
    json_t *r = json_stringn(sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return r;
}

/* Base64 -------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void crm_base64_encode(const void *data, size_t len, strbuf *out)
{
    const unsigned char *s = data;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        char q[4] = {b64[s[i] >> 2], b64[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
                     b64[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)], b64[s[i + 2] & 63]};
        sb_putn(out, q, 4);
    }
    if (len - i == 1) {
        char q[4] = {b64[s[i] >> 2], b64[(s[i] & 3) << 4], '=', '='};
        sb_putn(out, q, 4);
    } else if (len - i == 2) {
        char q[4] = {b64[s[i] >> 2], b64[((s[i] & 3) << 4) | (s[i + 1] >> 4)], b64[(s[i + 1] & 15) << 2], '='};
        sb_putn(out, q, 4);
    }
    if (!out->data) sb_puts(out, "");
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

void crm_base64_decode(const char *s, size_t len, strbuf *out)
{
    unsigned acc = 0;
    int bits = 0;
    if (!out->data) sb_puts(out, "");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            sb_putc(out, (char)((acc >> bits) & 0xFF));
        }
    }
}

/* Encodings -------------------------------------------------------------------- */

/* iconv-lite's canonical form of a name: lower case without - and _. */
static void canon(const char *enc, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; enc[i] && j + 1 < cap; i++)
        if (enc[i] != '-' && enc[i] != '_' && enc[i] != ' ') buf[j++] = (char)tolower((unsigned char)enc[i]);
    buf[j] = 0;
}

/* The glibc name of an iconv-lite encoding ("win1252" -> "CP1252"). */
static const char *glibc_name(const char *c, char *buf, size_t cap)
{
    if (!strncmp(c, "windows", 7)) snprintf(buf, cap, "CP%s", c + 7);
    else if (!strncmp(c, "win", 3)) snprintf(buf, cap, "CP%s", c + 3);
    else if (!strncmp(c, "iso8859", 7)) snprintf(buf, cap, "ISO-8859-%s", c + 7);
    else if (!strncmp(c, "cp", 2)) snprintf(buf, cap, "CP%s", c + 2);
    else snprintf(buf, cap, "%s", c);
    return buf;
}

static int run_iconv(const char *to, const char *from, const char *in, size_t len, strbuf *out)
{
    iconv_t cd = iconv_open(to, from);
    if (cd == (iconv_t)-1) return -1;
    char *ip = (char *)in;
    size_t il = len;
    char tmp[4096];
    if (!out->data) sb_puts(out, "");
    while (il > 0) {
        char *op = tmp;
        size_t ol = sizeof tmp;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        sb_putn(out, tmp, sizeof tmp - ol);
        if (r == (size_t)-1 && errno != E2BIG) {
            /* an unmappable or cut character: iconv-lite writes '?' or U+FFFD */
            if (!strcmp(to, "UTF-8")) sb_puts(out, "\xEF\xBF\xBD");
            else sb_putc(out, '?');
            ip++, il--;
        }
    }
    iconv_close(cd);
    return 0;
}

int crm_text_encode(const char *enc, const char *text, size_t len, strbuf *out)
{
    char c[64];
    canon(enc && *enc ? enc : "none", c, sizeof c);
    if (!out->data) sb_puts(out, "");
    if (!strcmp(c, "none") || !strcmp(c, "utf8") || !strcmp(c, "cesu8")) {
        sb_putn(out, text, len);
        return 0;
    }
    if (!strcmp(c, "base64")) {
        crm_base64_decode(text, len, out);
        return 0;
    }
    if (!strcmp(c, "hex")) {
        for (size_t i = 0; i + 1 < len; i += 2) {
            int a = crm_hexval((unsigned char)text[i]), b = crm_hexval((unsigned char)text[i + 1]);
            if (a < 0 || b < 0) break;
            sb_putc(out, (char)(a * 16 + b));
        }
        return 0;
    }
    const char *to;
    char buf[64];
    if (!strcmp(c, "ucs2") || !strcmp(c, "utf16le")) to = "UTF-16LE";
    else if (!strcmp(c, "latin1") || !strcmp(c, "binary")) to = "ISO-8859-1";
    else if (!strcmp(c, "ascii")) to = "ASCII";
    else if (!strcmp(c, "utf16")) to = "UTF-16LE"; /* iconv-lite: LE without a BOM by default */
    else to = glibc_name(c, buf, sizeof buf);
    return run_iconv(to, "UTF-8", text, len, out);
}

json_t *crm_text_decode(const char *enc, const void *data, size_t len)
{
    char c[64];
    canon(enc && *enc ? enc : "none", c, sizeof c);
    if (!strcmp(c, "none") || !strcmp(c, "utf8") || !strcmp(c, "cesu8")) return crm_text_of(data, len);
    strbuf out = SB_INIT;
    sb_puts(&out, "");
    const unsigned char *s = data;
    if (!strcmp(c, "base64")) {
        crm_base64_encode(data, len, &out);
    } else if (!strcmp(c, "hex")) {
        for (size_t i = 0; i < len; i++) sb_printf(&out, "%02x", s[i]);
    } else if (!strcmp(c, "latin1") || !strcmp(c, "binary")) {
        run_iconv("UTF-8", "ISO-8859-1", data, len, &out);
    } else if (!strcmp(c, "ascii")) {
        for (size_t i = 0; i < len; i++) sb_putc(&out, (char)(s[i] & 0x7F));
    } else {
        const char *from;
        char buf[64];
        if (!strcmp(c, "ucs2") || !strcmp(c, "utf16le") || !strcmp(c, "utf16")) from = "UTF-16LE";
        else from = glibc_name(c, buf, sizeof buf);
        if (run_iconv("UTF-8", from, data, len, &out) < 0) {
            sb_free(&out);
            return NULL;
        }
    }
    json_t *r = json_stringn(out.data, out.len);
    sb_free(&out);
    return r;
}

void crm_payload_bytes(const json_t *v, bool json_objects, strbuf *out)
{
    if (!out->data) sb_puts(out, "");
    if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        sb_putn(out, (const char *)d, n);
    } else if (json_is_string(v)) {
        sb_putn(out, json_string_value(v), json_string_length(v));
    } else if (json_objects && (json_is_object(v) || json_is_array(v))) {
        char *s = crm_stringify(v, 0);
        if (s) sb_puts(out, s);
        free(s);
    } else {
        char *s = crm_to_string(v);
        if (s) sb_puts(out, s);
        free(s);
    }
}

/* Sockets -------------------------------------------------------------------------- */

int crm_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

const char *crm_addr_text(const struct sockaddr *sa, char *buf, int *port)
{
    buf[0] = 0;
    if (port) *port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, buf, 64);
        if (port) *port = ntohs(a->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            /* Node shows the mapped form "::ffff:1.2.3.4" */
            inet_ntop(AF_INET6, &a->sin6_addr, buf, 64);
        } else {
            inet_ntop(AF_INET6, &a->sin6_addr, buf, 64);
        }
        if (port) *port = ntohs(a->sin6_port);
    }
    return buf;
}

const char *crm_iface_address(const char *iface, int family, char *buf)
{
    if (strchr(iface, '.')) {
        snprintf(buf, 64, "%s", iface);
        return buf;
    }
    struct ifaddrs *all = NULL, *a;
    const char *r = NULL;
    if (getifaddrs(&all) < 0) return NULL;
    for (a = all; a; a = a->ifa_next)
        if (a->ifa_addr && !strcmp(a->ifa_name, iface) && a->ifa_addr->sa_family == family) {
            r = crm_addr_text(a->ifa_addr, buf, NULL);
            break;
        }
    freeifaddrs(all);
    return r;
}

int crm_resolve(const char *host, int port, int family, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = family;
    hints.ai_flags = AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    hints.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(host, ps, &hints, &res) != 0) {
        /* a name: /etc/hosts and the resolver (blocking, as dns.lookup's thread) */
        hints.ai_flags &= ~AI_NUMERICHOST;
        if (getaddrinfo(host, ps, &hints, &res) != 0) return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
