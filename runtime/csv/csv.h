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

/* The same rows without a malloc per cell: every cell's text in one buffer.
 * Row i holds cells row[i] .. row[i + 1] - 1; cell c is csv_flat_cell(f, c),
 * NULL for a null cell. Cells and rows are appended; free with csv_flat_free. */
typedef struct {
    strbuf text;   /* the cells, each ended by a NUL */
    size_t *cell;  /* per cell: its offset in text + 1, 0 for a null cell */
    size_t ncells, capcells;
    size_t *row;   /* per row: its first cell; row[nrows] is ncells */
    size_t nrows, caprows;
} csv_flat;
int csv_parse_flat(const char *text, size_t len, size_t cursor, const csv_opts *o, csv_flat *flat, size_t *end,
                   char **err);
static inline const char *csv_flat_cell(const csv_flat *f, size_t c)
{
    return f->cell[c] ? f->text.data + f->cell[c] - 1 : NULL;
}
void csv_flat_free(csv_flat *f);
void csv_row_push(csv_row *r, char *cell /* stolen, may be NULL */);
void csv_row_free(csv_row *r);

/* quoteCell(cell, {quote: '"', separator, quoteables}): the cell wrapped in
 * quotes when it contains one of the quoteables (NULL-terminated list), its
 * quotes doubled when it contains any. Appended to out (a strbuf). */
void csv_quote_cell(strbuf *out, const char *cell, const char *const *quoteables);
/* The same with the quoteables prepared once (a table of the one-byte ones). */
typedef struct {
    unsigned char one[256]; /* one[c]: byte c is a quoteable (one[0] == 2: strstr every one of list) */
    const char *longer[4];
    size_t nlonger;
    const char *const *list;
} csv_quoting;
void csv_quoting_init(csv_quoting *q, const char *const *quoteables);
void csv_quote_cell_q(strbuf *out, const char *cell, const csv_quoting *q);

#endif
