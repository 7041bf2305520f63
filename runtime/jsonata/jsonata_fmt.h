/* jsonata_fmt.h: JSONata's number and date/time formatting built-ins
 * ($formatNumber, $formatBase, $formatInteger, $parseInteger, $fromMillis,
 * $toMillis), following the XPath F&O picture-string rules the way jsonata-js
 * implements them.
 *
 * Every function has the jsonata_native signature: args are borrowed (NULL =
 * undefined), the result is a NEW reference or NULL (undefined), and on error
 * err->code/err->message are set (message worded as jsonata-js words it) and
 * NULL is returned. err->position is left to the caller.
 *
 * ctx: jsonata_fn_toMillis may receive a pointer to a double holding the
 * evaluation's $now() timestamp (ms since the epoch), so that a picture that
 * leaves out the date takes "today" from the same instant as $now(); NULL
 * means "read the clock". The other functions ignore ctx.
 *
 * The JSONata signatures the core engine validates before calling:
 *   formatNumber  <n-so?:s>     formatBase   <n-n?:s>
 *   formatInteger <n-s:s>       parseInteger <s-s:n>
 *   fromMillis    <n-s?s?:s>    toMillis     <s-s?:n>
 */
#ifndef CRM_JSONATA_FMT_H
#define CRM_JSONATA_FMT_H

#include "jsonata.h"

json_t *jsonata_fn_formatNumber(void *ctx, json_t **args, size_t nargs, jsonata_error *err);
json_t *jsonata_fn_formatBase(void *ctx, json_t **args, size_t nargs, jsonata_error *err);
json_t *jsonata_fn_formatInteger(void *ctx, json_t **args, size_t nargs, jsonata_error *err);
json_t *jsonata_fn_parseInteger(void *ctx, json_t **args, size_t nargs, jsonata_error *err);
json_t *jsonata_fn_fromMillis(void *ctx, json_t **args, size_t nargs, jsonata_error *err);
json_t *jsonata_fn_toMillis(void *ctx, json_t **args, size_t nargs, jsonata_error *err);

/* Shared by jsonata_format.c and jsonata_datetime.c (not part of the API). */

/* A string as an array of Unicode code points: pictures are analysed per
 * character, as jsonata-js does per UTF-16 unit (the same for the BMP). */
typedef struct {
    unsigned *c;
    size_t n, cap;
} jfmt_cps;

void jfmt_cps_from_utf8(jfmt_cps *s, const char *utf8, size_t len);
void jfmt_cps_push(jfmt_cps *s, unsigned c);
void jfmt_cps_append(jfmt_cps *s, const unsigned *c, size_t n);
void jfmt_cps_free(jfmt_cps *s);
/* malloc'd UTF-8 text of s[from, to) */
char *jfmt_cps_utf8(const jfmt_cps *s, size_t from, size_t to);
/* Sets err with a code and printf-style message; returns NULL for chaining. */
json_t *jfmt_fail(jsonata_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
