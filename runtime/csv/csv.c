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

/* The builder writes every cell's bytes straight into flat->text, each cell
 * ended by a NUL; cur is where the cell being read starts. */
typedef struct {
    csv_flat *f;
    size_t cur;       /* offset in f->text of the cell being read */
    size_t row_first; /* index of the row's first cell */
    bool started;     /* cellBuilder.length > 0 */
} builder;

static void flat_cell(csv_flat *f, size_t at)
{
    if (f->ncells == f->capcells) {
        f->capcells = f->capcells ? f->capcells * 2 : 32;
        f->cell = realloc(f->cell, f->capcells * sizeof *f->cell);
    }
    f->cell[f->ncells++] = at;
}

static void finalise_cell(builder *b, bool new_cell)
{
    csv_flat *f = b->f;
    bool content = f->text.len > b->cur;
    if (f->text.len + 2 > f->text.cap) sb_reserve(&f->text, 1);
    f->text.data[f->text.len++] = 0;
    f->text.data[f->text.len] = 0;
    flat_cell(f, content || !new_cell ? b->cur + 1 : 0);
    b->cur = f->text.len;
    b->started = false;
}

static void finalise_row(builder *b, bool new_cell)
{
    csv_flat *f = b->f;
    if (b->started) finalise_cell(b, new_cell);
    if (f->ncells > b->row_first) {
        if (f->nrows + 1 >= f->caprows) {
            f->caprows = f->caprows ? f->caprows * 2 : 16;
            f->row = realloc(f->row, f->caprows * sizeof *f->row);
        }
        f->row[f->nrows++] = b->row_first;
        f->row[f->nrows] = f->ncells;
    }
    b->row_first = f->ncells;
}

static void push(builder *b, const char *s, size_t n)
{
    strbuf *t = &b->f->text;
    if (t->len + n + 1 > t->cap) sb_reserve(t, n);
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
    b->started = true;
}

static int fail(char **err, const char *text)
{
    *err = strdup(text);
    return -1;
}

int csv_parse_flat(const char *in, size_t max, size_t cursor, const csv_opts *o, csv_flat *flat, size_t *end,
                   char **err)
{
    const char *sep = o->sep;
    size_t seplen = one_char(sep) ? strlen(sep) : 0; /* 0: never matches */
    if (!flat->text.data) sb_puts(&flat->text, "");
    builder b = {flat, flat->text.len, flat->ncells, false};
    bool new_cell = true, in_quote = false, closed = false;
    /* the bytes that end a run of plain data: a quote, a line end, the
     * separator's first byte (then compared whole) */
    unsigned char stop[256] = {0};
    stop['"'] = stop['\n'] = stop['\r'] = 1;
    if (seplen) stop[(unsigned char)sep[0]] = 1;
#define IS_SEP(p) (seplen == 1 ? in[p] == sep[0] : seplen && (p) + seplen <= max && !memcmp(in + (p), sep, seplen))
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
                /* the run up to the next quote, at once */
                const char *q = memchr(in + cursor, '"', max - cursor);
                size_t n = q ? (size_t)(q - (in + cursor)) : max - cursor;
                push(&b, in + cursor, n);
                new_cell = false;
                closed = false;
                cursor += n;
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
                return fail(err, "UnquotedQuoteError: Quote found in the middle of an unquoted field");
            } else {
                cursor++;
                if (cursor < max && in[cursor] != '\n' && in[cursor] != '\r' && !IS_SEP(cursor)) {
                    push(&b, "\"", 1);
                    if (in[cursor] == '"') cursor++;
                }
            }
        } else if (c == '\n' || c == '\r') {
            finalise_row(&b, new_cell);
            cursor += (cursor + 1 < max && in[cursor + 1] == '\n') ? 2 : 1;
            new_cell = true;
            closed = false;
            if (o->headers_only) break;
        } else if (closed) {
            if (o->strict) return fail(err, "DataAfterCloseError: Data found after closing quote");
            cursor--; /* the closing quote, read again as data */
            closed = false;
        } else {
            /* plain data: the run up to the next special character, at once */
            size_t n = 1;
            while (cursor + n < max) {
                if (stop[(unsigned char)in[cursor + n]]) {
                    char d = in[cursor + n];
                    if (d == '"' || d == '\n' || d == '\r' || IS_SEP(cursor + n)) break;
                }
                n++;
            }
            push(&b, in + cursor, n);
            new_cell = false;
            cursor += n;
        }
    }
#undef IS_SEP
    if (o->strict && in_quote) return fail(err, "ParseError: Missing quote, unclosed cell");
    finalise_row(&b, new_cell);
    /* a cell begun but not finalised (only a row end finalises): drop its bytes */
    flat->text.len = b.cur;
    flat->text.data[flat->text.len] = 0;
    *end = cursor;
    return 0;
}

void csv_flat_free(csv_flat *f)
{
    sb_free(&f->text);
    free(f->cell);
    free(f->row);
    memset(f, 0, sizeof *f);
}

int csv_parse(const char *in, size_t max, size_t cursor, const csv_opts *o, csv_rows *rows, size_t *end, char **err)
{
    csv_flat f = {0};
    int r = csv_parse_flat(in, max, cursor, o, &f, end, err);
    for (size_t i = 0; r == 0 && i < f.nrows; i++) {
        csv_row row = {0};
        for (size_t c = f.row[i]; c < f.row[i + 1]; c++) {
            const char *cell = csv_flat_cell(&f, c);
            csv_row_push(&row, cell ? strdup(cell) : NULL);
        }
        rows_push(rows, &row);
    }
    csv_flat_free(&f);
    return r;
}

void csv_quoting_init(csv_quoting *q, const char *const *quoteables)
{
    memset(q, 0, sizeof *q);
    for (const char *const *p = quoteables; *p; p++) {
        if (!**p) continue;
        if (!(*p)[1]) q->one[(unsigned char)**p] = 1;
        else if (q->nlonger < sizeof q->longer / sizeof *q->longer) q->longer[q->nlonger++] = *p;
        else q->one[0] = 2; /* too many to keep: strstr for each at every cell */
    }
    q->list = quoteables;
}

void csv_quote_cell_q(strbuf *out, const char *cell, const csv_quoting *q)
{
    /* one pass over the cell for the one-byte quoteables and quotes; strstr
     * for longer ones (a separator of several bytes) */
    bool quote = false, dq = false;
    const char *p = cell;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        dq |= c == '"';
        quote |= q->one[c];
    }
    size_t len = (size_t)(p - cell);
    for (size_t i = 0; i < q->nlonger && !quote; i++)
        if (strstr(cell, q->longer[i])) quote = true;
    if (q->one[0] == 2)
        for (const char *const *l = q->list; *l && !quote; l++)
            if (**l && strstr(cell, *l)) quote = true;
    if (!quote && !dq) { /* the usual cell: as it is, without a call per cell */
        if (out->len + len + 1 > out->cap) sb_reserve(out, len);
        memcpy(out->data + out->len, cell, len);
        out->len += len;
        out->data[out->len] = 0;
        return;
    }
    if (quote) sb_putc(out, '"');
    if (!dq) {
        sb_putn(out, cell, len);
    } else {
        p = cell;
        for (const char *d; (d = strchr(p, '"')); p = d + 1) {
            sb_putn(out, p, (size_t)(d + 1 - p));
            sb_putc(out, '"');
        }
        sb_puts(out, p);
    }
    if (quote) sb_putc(out, '"');
}

void csv_quote_cell(strbuf *out, const char *cell, const char *const *quoteables)
{
    csv_quoting q;
    csv_quoting_init(&q, quoteables);
    csv_quote_cell_q(out, cell, &q);
}
