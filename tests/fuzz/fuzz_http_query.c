/* fuzz_http_query.c: libFuzzer target for what a request's text becomes
 * before any flow sees it: the query string (req.query: qs with express's
 * options), a urlencoded form body (req.body: qs with body-parser's), the
 * Cookie header (req.cookies: cookie and cookie-parser, "j:" JSON cookies),
 * and the body parsers by content type. The first byte picks the content
 * type of the body parse; the rest is the text. Must never crash or leak,
 * and every result must be a JSON object (or, for a body, NULL with an
 * error set). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

static const char *TYPES[] = {"application/x-www-form-urlencoded", "application/json", "text/plain",
                              "multipart/form-data; boundary=b", "application/octet-stream", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *ct = TYPES[data[0] % (sizeof TYPES / sizeof *TYPES)];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;

    json_t *q = crm_http_parse_query(s, n);
    if (!json_is_object(q)) abort();
    json_decref(q);
    json_t *form = http_qs_parse(s, n, 32, 100);
    if (!json_is_object(form)) abort();
    json_decref(form);

    char *z = malloc(n + 1); /* a header value ends at its NUL */
    if (!z) return 0;
    memcpy(z, s, n);
    z[n] = 0;
    json_t *c = http_cookies_parse(z);
    if (!json_is_object(c)) abort();
    json_decref(c);
    free(z);

    json_t *files = NULL;
    http_body_error err;
    json_t *body = http_parse_body(ct, s, n, true, &files, &err);
    if (!body && !err.message[0]) abort();
    json_decref(body);
    json_decref(files);
    return 0;
}
