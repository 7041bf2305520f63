/* http_body.c: request bodies turned into req.body the way the http in
 * node's parser chain does it (§3.10): JSON for exactly application/json,
 * qs for forms, multipart uploads when the node asks for them, and the raw
 * body parser's text-or-Buffer rules for everything else. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

static bool json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The body parsed, or NULL with err set to the 400 that body-parser gives. */
static json_t *parse_json(const char *body, size_t len, http_body_error *err)
{
    size_t i = 0;
    while (i < len && json_ws(body[i])) i++;
    /* body-parser's strict mode: only objects and arrays */
    bool strict_violation = i < len && body[i] != '{' && body[i] != '[';
    json_t *v = strict_violation ? NULL : crm_parse(body, len, NULL, 0);
    http_body_error e = {0, ""};
    if (!v) {
        char *m = strict_violation ? crm_json_token_error(body, len, i) : crm_json_error(body, len);
        e.status = 400;
        snprintf(e.message, sizeof e.message, "SyntaxError: %s", m ? m : "Unexpected end of JSON input");
        free(m);
    }
    if (err) *err = e;
    return v;
}

bool http_json_body_ok(const char *body, size_t len, http_body_error *err)
{
    json_t *v = parse_json(body, len, err);
    json_decref(v);
    return v != NULL;
}

/* Multipart ----------------------------------------------------------------- */

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0 || hn < nn) return NULL;
    for (const char *p = h; (p = memchr(p, n[0], hn - (size_t)(p - h) - nn + 1)) != NULL; p++) {
        if (memcmp(p, n, nn) == 0) return p;
        if ((size_t)(p - h) + nn >= hn) break;
    }
    return NULL;
}

/* A parameter (name="value" or name=value) of a header value, malloc'd. */
static char *header_param(const char *v, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < n; i++) {
        if ((i == 0 || v[i - 1] == ';' || v[i - 1] == ' ') && strncasecmp(v + i, name, nl) == 0 && v[i + nl] == '=') {
            const char *s = v + i + nl + 1;
            size_t rest = n - (size_t)(s - v);
            if (rest && *s == '"') {
                const char *e = memchr(s + 1, '"', rest - 1);
                return e ? strndup(s + 1, (size_t)(e - s - 1)) : NULL;
            }
            size_t k = 0;
            while (k < rest && s[k] != ';' && s[k] != ' ' && s[k] != '\r') k++;
            return strndup(s, k);
        }
    }
    return NULL;
}

static void add_field(json_t *fields, const char *name, json_t *value)
{
    json_t *old = json_object_get(fields, name);
    if (!old) {
        json_object_set_new(fields, name, value);
    } else if (json_is_array(old)) {
        json_array_append_new(old, value);
    } else {
        json_t *arr = json_array();
        json_array_append(arr, old);
        json_array_append_new(arr, value);
        json_object_set_new(fields, name, arr);
    }
}

/* One part: headers up to a blank line, then data. */
static void multipart_part(const char *p, size_t n, json_t *fields, json_t *files)
{
    const char *sep = memfind(p, n, "\r\n\r\n", 4);
    if (!sep) return;
    const char *data = sep + 4;
    size_t dlen = n - (size_t)(data - p);
    char *name = NULL, *filename = NULL, *ctype = NULL, *enc = NULL;
    for (const char *line = p; line < sep;) {
        const char *eol = memfind(line, (size_t)(sep - line) + 2, "\r\n", 2);
        size_t ll = eol ? (size_t)(eol - line) : (size_t)(sep - line);
        /* a header given twice: the last one counts (found by fuzz_http_query: the first leaked) */
        if (ll > 20 && strncasecmp(line, "content-disposition:", 20) == 0) {
            free(name);
            free(filename);
            name = header_param(line + 20, ll - 20, "name");
            filename = header_param(line + 20, ll - 20, "filename");
        } else if (ll > 13 && strncasecmp(line, "content-type:", 13) == 0) {
            const char *v = line + 13;
            while (*v == ' ') v++;
            free(ctype);
            ctype = strndup(v, ll - (size_t)(v - line));
        } else if (ll > 26 && strncasecmp(line, "content-transfer-encoding:", 26) == 0) {
            const char *v = line + 26;
            while (*v == ' ') v++;
            free(enc);
            enc = strndup(v, ll - (size_t)(v - line));
        }
        line += ll + 2;
    }
    if (name && filename) {
        json_t *f = json_object();
        json_object_set_new(f, "fieldname", json_string(name));
        json_object_set_new(f, "originalname", http_string_lossy(filename, strlen(filename)));
        json_object_set_new(f, "encoding", json_string(enc ? enc : "7bit"));
        json_object_set_new(f, "mimetype", json_string(ctype ? ctype : "text/plain"));
        json_object_set_new(f, "buffer", crm_buf_new(data, dlen));
        json_object_set_new(f, "size", json_real((double)dlen));
        json_array_append_new(files, f);
    } else if (name) {
        add_field(fields, name, http_string_lossy(data, dlen));
    }
    free(name);
    free(filename);
    free(ctype);
    free(enc);
}

static json_t *parse_multipart(const char *ct, const char *body, size_t len, json_t **files, http_body_error *err)
{
    char *boundary = header_param(ct, strlen(ct), "boundary");
    if (!boundary || !*boundary) {
        free(boundary);
        err->status = 400;
        snprintf(err->message, sizeof err->message, "Error: Multipart: Boundary not found");
        return NULL;
    }
    size_t bl = strlen(boundary) + 2;
    char *delim = malloc(bl + 1);
    if (!delim) { free(boundary); return NULL; }
    snprintf(delim, bl + 1, "--%s", boundary);
    free(boundary);
    json_t *fields = json_object();
    *files = json_array();
    const char *p = memfind(body, len, delim, bl);
    while (p) {
        p += bl;
        size_t rest = len - (size_t)(p - body);
        if (rest >= 2 && p[0] == '-' && p[1] == '-') break; /* the closing delimiter */
        if (rest >= 2 && p[0] == '\r' && p[1] == '\n') { p += 2; rest -= 2; }
        const char *next = memfind(p, rest, delim, bl);
        if (!next) break;
        size_t plen = (size_t)(next - p);
        if (plen >= 2 && next[-2] == '\r' && next[-1] == '\n') plen -= 2;
        multipart_part(p, plen, fields, *files);
        p = next;
    }
    free(delim);
    return fields;
}

/* Raw bodies -------------------------------------------------------------------- */

typedef enum { RAW_TEXT, RAW_UTF8_OR_BUFFER, RAW_BUFFER } raw_kind;

static raw_kind raw_kind_of(const char *media)
{
    if (!media) return RAW_TEXT;
    const char *slash = strchr(media, '/');
    if (!slash) return RAW_TEXT; /* content-type would not parse it: no type given */
    const char *sub = slash + 1;
    size_t tl = (size_t)(slash - media);
    const char *plus = strrchr(sub, '+');
    if (tl == 4 && strncmp(media, "text", 4) == 0) return RAW_TEXT;
    if (strcmp(sub, "xml") == 0 || (plus && strcmp(plus, "+xml") == 0)) return RAW_TEXT;
    if (tl != 11 || strncmp(media, "application", 11) != 0) return RAW_BUFFER;
    if (!strcmp(sub, "octet-stream") || !strcmp(sub, "cbor") || !strcmp(sub, "x-protobuf")) return RAW_BUFFER;
    return RAW_UTF8_OR_BUFFER;
}

json_t *http_parse_body(const char *ct, const char *body, size_t len, bool upload, json_t **files,
                        http_body_error *err)
{
    err->status = 0;
    err->message[0] = 0;
    if (files) *files = NULL;
    char media[256];
    bool has_media = http_media_type(ct, media, sizeof media);
    if (len > 0 && has_media) {
        if (!strcmp(media, "application/json")) return parse_json(body, len, err);
        if (!strcmp(media, "application/x-www-form-urlencoded")) return http_qs_parse(body, len, 32, 100);
        if (upload && !strcmp(media, "multipart/form-data") && files) return parse_multipart(ct, body, len, files, err);
    }
    raw_kind k = raw_kind_of(has_media ? media : NULL);
    if (len == 0) {
        if (k == RAW_BUFFER && has_media && strcmp(media, "application/json") != 0) return crm_buf_new("", 0);
        return json_string("");
    }
    switch (k) {
    case RAW_TEXT: return http_string_lossy(body, len);
    case RAW_UTF8_OR_BUFFER:
        if (http_utf8_valid((const unsigned char *)body, len)) return json_stringn(body, len);
        return crm_buf_new(body, len);
    default: return crm_buf_new(body, len);
    }
}
