/* csv.c: Node-RED's RFC 4180 CSV parser (see csv.h), transcribed from the
 * behaviour of core/parsers/lib/csv/index.js: the same states (in a quoted
 * cell, a new cell, a cell just closed) and the same recoveries when not
 * strict (a stray quote is kept unless a cell or record ends after it; data
 * after a closing quote re-reads that quote as data).
 */
#include "csv/csv.h"

#include <stdlib.h>
#include <string.h>

void csv_row_push(csv_row *r, char *cell)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->cells = realloc(r->cells, r->cap * sizeof *r->cells);
    }
    r->cells[r->n++] = cell;
}

void csv_row_free(csv_row *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->cells[i]);
    free(r->cells);
    r->cells = NULL;
    r->n = r->cap = 0;
}

void csv_rows_free(csv_rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) csv_row_free(&rows->rows[i]);
    free(rows->rows);
    rows->rows = NULL;
    rows->n = rows->cap = 0;
}

static void rows_push(csv_rows *rows, csv_row *r)
{
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 16;
        rows->rows = realloc(rows->rows, rows->cap * sizeof *rows->rows);
    }
    rows->rows[rows->n++] = *r;
    memset(r, 0, sizeof *r);
}

/* Bytes of the UTF-8 character starting with byte c. */
static size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Whether s is exactly one JavaScript character (one UTF-16 unit). */
static bool one_char(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n == u8len((unsigned char)s[0]) && n < 4;
}

typedef struct {
    csv_row row;
    strbuf cell;
    bool started; /* cellBuilder.length > 0 */
} builder;

static void finalise_cell(builder *b, bool new_cell)
{
    char *cell;
    if (b->cell.len) cell = sb_take(&b->cell);
    else cell = new_cell ? NULL : strdup("");
    b->started = false;
    csv_row_push(&b->row, cell);
}

static void finalise_row(builder *b, csv_rows *rows, bool new_cell)
{
    if (b->started) finalise_cell(b, new_cell);
    if (b->row.n) rows_push(rows, &b->row);
}

static void push(builder *b, const char *s, size_t n)
{
    sb_putn(&b->cell, s, n);
    b->started = true;
}

static int fail(char **err, const char *text)
{
    *err = strdup(text);
    return -1;
}

int csv_parse(const char *in, size_t max, size_t cursor, const csv_opts *o, csv_rows *rows, size_t *end, char **err)
{
    const char *sep = o->sep;
    size_t seplen = one_char(sep) ? strlen(sep) : 0; /* 0: never matches */
    builder b = {{0}, SB_INIT, false};
    bool new_cell = true, in_quote = false, closed = false;
#define IS_SEP(p) (seplen && (p) + seplen <= max && !memcmp(in + (p), sep, seplen))
    while (cursor < max) {
        char c = in[cursor];
        if (in_quote) {
            if (c == '"' && cursor + 1 < max && in[cursor + 1] == '"') {
                push(&b, "\"", 1);
                cursor += 2;
                new_cell = false;
                closed = false;
            } else if (c == '"') {
                in_quote = false;
                cursor++;
                new_cell = false;
                closed = true;
            } else {
                push(&b, &c, 1);
                new_cell = false;
                closed = false;
                cursor++;
            }
        } else if (IS_SEP(cursor)) {
            finalise_cell(&b, new_cell);
            cursor += seplen;
            new_cell = true;
            closed = false;
        } else if (c == '"') {
            if (new_cell) {
                in_quote = true;
                cursor++;
                new_cell = false;
                closed = false;
            } else if (o->strict) {
                sb_free(&b.cell);
                csv_row_free(&b.row);
                return fail(err, "UnquotedQuoteError: Quote found in the middle of an unquoted field");
            } else {
                cursor++;
                if (cursor < max && in[cursor] != '\n' && in[cursor] != '\r' && !IS_SEP(cursor)) {
                    push(&b, "\"", 1);
                    if (in[cursor] == '"') cursor++;
                }
            }
        } else if (c == '\n' || c == '\r') {
            finalise_row(&b, rows, new_cell);
            cursor += (cursor + 1 < max && in[cursor + 1] == '\n') ? 2 : 1;
            new_cell = true;
            closed = false;
            if (o->headers_only) break;
        } else if (closed) {
            if (o->strict) {
                sb_free(&b.cell);
                csv_row_free(&b.row);
                return fail(err, "DataAfterCloseError: Data found after closing quote");
            }
            cursor--; /* the closing quote, read again as data */
            closed = false;
        } else {
            push(&b, &c, 1);
            new_cell = false;
            cursor++;
        }
    }
#undef IS_SEP
    if (o->strict && in_quote) {
        sb_free(&b.cell);
        csv_row_free(&b.row);
        return fail(err, "ParseError: Missing quote, unclosed cell");
    }
    finalise_row(&b, rows, new_cell);
    sb_free(&b.cell);
    csv_row_free(&b.row);
    *end = cursor;
    return 0;
}

void csv_quote_cell(strbuf *out, const char *cell, const char *const *quoteables)
{
    bool quote = false;
    for (const char *const *q = quoteables; *q; q++)
        if (**q && strstr(cell, *q)) quote = true;
    if (quote) sb_putc(out, '"');
    for (const char *p = cell; *p; p++) {
        if (*p == '"') sb_putc(out, '"');
        sb_putc(out, *p);
    }
    if (quote) sb_putc(out, '"');
}
