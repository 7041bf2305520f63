/* csv.h: the RFC 4180 CSV parser and cell quoting of Node-RED 4.1.15
 * (core/parsers/lib/csv), which the csv node's `spec: "rfc"` mode uses.
 *
 * Text is UTF-8; the quote is '"'. The separator is one character (any
 * code point); a separator string of another length never matches, as in
 * JavaScript where one character is compared with the whole string.
 * Lines end at \r, \n or \r\n. A cell that held no character at all is
 * null (a NULL pointer), a quoted empty cell is "".
 */
#ifndef CRM_CSV_H
#define CRM_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

typedef struct {
    char **cells; /* malloc'd strings, NULL for a null cell */
    size_t n, cap;
} csv_row;

typedef struct {
    csv_row *rows;
    size_t n, cap;
} csv_rows;

typedef struct {
    const char *sep;    /* the separator, NUL-terminated */
    bool strict;        /* errors for a stray quote, data after a closing quote, an unclosed cell */
    bool headers_only;  /* stop after the first line break */
} csv_opts;

/* Parses text[cursor..len) into rows. Returns 0 with *end the cursor where
 * parsing stopped, or -1 with *err malloc'd in Node-RED's Error.toString()
 * words ("UnquotedQuoteError: Quote found in the middle of an unquoted
 * field"). rows is appended to; free it with csv_rows_free. */
int csv_parse(const char *text, size_t len, size_t cursor, const csv_opts *o, csv_rows *rows, size_t *end,
              char **err);
void csv_rows_free(csv_rows *rows);
void csv_row_push(csv_row *r, char *cell /* stolen, may be NULL */);
void csv_row_free(csv_row *r);

/* quoteCell(cell, {quote: '"', separator, quoteables}): the cell wrapped in
 * quotes when it contains one of the quoteables (NULL-terminated list), its
 * quotes doubled when it contains any. Appended to out (a strbuf). */
void csv_quote_cell(strbuf *out, const char *cell, const char *const *quoteables);

#endif
