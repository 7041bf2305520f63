/* inspect.c: Node's util.inspect() with its default options (depth 2,
 * compact 3, breakLength 80), for the values a message can hold. Node-RED
 * shows it where users read values as text: the debug node's status and its
 * console output. Lengths are JavaScript's (UTF-16 code units), since line
 * breaking and column widths depend on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "strbuf.h"

#define BREAK_LENGTH 80
#define COMPACT 3
#define MAX_ARRAY_LENGTH 100
#define MAX_STRING_LENGTH 10000
#define MIN_LINE_WIDTH 16
#define BUFFER_MAX_BYTES 50

typedef struct {
    int depth;         /* levels shown before [Object] */
    int indent;        /* ctx.indentationLvl */
    int current_depth; /* ctx.currentDepth: depth of the last object entered */
} ictx;

/* A list of formatted entries, each with its JavaScript length. */
typedef struct {
    char **s;
    size_t *len;
    size_t n, cap;
} entries;

static void push(entries *e, char *s)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->s = realloc(e->s, e->cap * sizeof *e->s);
        e->len = realloc(e->len, e->cap * sizeof *e->len);
    }
    e->len[e->n] = crm_utf16_len(s, strlen(s));
    e->s[e->n++] = s;
}

static void entries_free(entries *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->s[i]);
    free(e->s);
    free(e->len);
}

static void spaces(strbuf *sb, long n)
{
    for (long i = 0; i < n; i++) sb_putc(sb, ' ');
}

/* The next code point of UTF-8 text, advancing *i (U+FFFD for a bad byte,
 * as Node decodes it). */
static unsigned next_cp(const unsigned char *s, size_t n, size_t *i)
{
    size_t len;
    long c = crm_utf8_decode((const char *)s + *i, n - *i, &len);
    *i += len;
    return c < 0 ? 0xFFFD : (unsigned)c;
}

/* strEscape: quotes chosen so that the text needs no escaped quote when it
 * can (' then " then `), control characters as \n or \xHH. */
static void put_quoted(strbuf *sb, const char *s, size_t n)
{
    char q = '\'';
    if (memchr(s, '\'', n)) {
        if (!memchr(s, '"', n)) q = '"';
        else if (!memchr(s, '`', n) && !memmem(s, n, "${", 2)) q = '`';
    }
    sb_putc(sb, q);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        unsigned c = next_cp((const unsigned char *)s, n, &i);
        if (c == '\'' && q == '\'') sb_puts(sb, "\\'");
        else if (c == '\\') sb_puts(sb, "\\\\");
        else if (c == '\b') sb_puts(sb, "\\b");
        else if (c == '\t') sb_puts(sb, "\\t");
        else if (c == '\n') sb_puts(sb, "\\n");
        else if (c == '\f') sb_puts(sb, "\\f");
        else if (c == '\r') sb_puts(sb, "\\r");
        else if (c < 32 || (c > 126 && c < 160)) sb_printf(sb, "\\x%02X", c);
        else sb_putn(sb, s + start, i - start);
    }
    sb_putc(sb, q);
}

/* formatPrimitive for a string: a long one is split after each newline
 * into quoted pieces joined with " +". */
static char *fmt_string(ictx *c, const char *s, size_t n)
{
    strbuf sb = SB_INIT;
    size_t units = crm_utf16_len(s, n);
    char trailer[64] = "";
    if (units > MAX_STRING_LENGTH) {
        size_t rest = units - MAX_STRING_LENGTH;
        snprintf(trailer, sizeof trailer, "... %zu more character%s", rest, rest > 1 ? "s" : "");
        n = crm_utf16_prefix(s, n, MAX_STRING_LENGTH);
        units = MAX_STRING_LENGTH;
    }
    if (units > MIN_LINE_WIDTH && (long)units > BREAK_LENGTH - c->indent - 4) {
        size_t start = 0;
        while (start < n) {
            const char *nl = memchr(s + start, '\n', n - start);
            size_t end = nl ? (size_t)(nl - s) + 1 : n;
            if (start) {
                sb_puts(&sb, " +\n");
                spaces(&sb, c->indent + 2);
            }
            put_quoted(&sb, s + start, end - start);
            start = end;
        }
    } else {
        put_quoted(&sb, s, n);
    }
    sb_puts(&sb, trailer);
    return sb_take(&sb);
}

static char *fmt_buffer(const json_t *v)
{
    size_t n;
    const unsigned char *d = crm_buf_data(v, &n);
    strbuf sb = SB_INIT;
    sb_puts(&sb, "<Buffer ");
    size_t shown = n < BUFFER_MAX_BYTES ? n : BUFFER_MAX_BYTES;
    for (size_t i = 0; i < shown; i++) sb_printf(&sb, i ? " %02x" : "%02x", d[i]);
    if (n > BUFFER_MAX_BYTES) sb_printf(&sb, " ... %zu more byte%s", n - BUFFER_MAX_BYTES, n - BUFFER_MAX_BYTES > 1 ? "s" : "");
    sb_putc(&sb, '>');
    return sb_take(&sb);
}

/* A key as an identifier when it is one, else quoted. */
static void put_key(strbuf *sb, const char *k, size_t n)
{
    bool ident = n > 0 && !(k[0] >= '0' && k[0] <= '9');
    for (size_t i = 0; i < n && ident; i++) {
        char ch = k[i];
        ident = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    }
    if (ident) sb_putn(sb, k, n);
    else put_quoted(sb, k, n);
}

static char *fmt_value(ictx *c, const json_t *v, int depth);

/* formatProperty: the value is formatted two columns further in. */
static char *fmt_entry(ictx *c, const char *key, size_t klen, const json_t *v, int depth)
{
    c->indent += 2;
    char *val = fmt_value(c, v, depth);
    c->indent -= 2;
    if (!key) return val;
    strbuf sb = SB_INIT;
    put_key(&sb, key, klen);
    sb_puts(&sb, ": ");
    sb_puts(&sb, val);
    free(val);
    return sb_take(&sb);
}

static void pad(strbuf *sb, const char *s, size_t len, size_t width, bool at_start)
{
    if (at_start && width > len) spaces(sb, (long)(width - len));
    sb_puts(sb, s);
    if (!at_start && width > len) spaces(sb, (long)(width - len));
}

/* groupArrayElements: more than six short entries are laid out in
 * columns, numbers right-aligned. Replaces e's entries when it groups. */
static void group_array(ictx *c, entries *e, const json_t *arr)
{
    size_t out_len = e->n, total = 0, maxlen = 0;
    if (e->n > MAX_ARRAY_LENGTH) out_len--; /* the "... more items" entry */
    for (size_t i = 0; i < out_len; i++) {
        total += e->len[i] + 2;
        if (e->len[i] > maxlen) maxlen = e->len[i];
    }
    double actual_max = (double)maxlen + 2;
    if (!(actual_max * 3 + c->indent < BREAK_LENGTH && ((double)total / actual_max > 5 || maxlen <= 6))) return;
    double bias = sqrt(actual_max - (double)total / (double)e->n);
    double biased_max = fmax(actual_max - 3 - bias, 1);
    double cols = fmin(fmin(round(sqrt(2.5 * biased_max * (double)out_len) / biased_max),
                            floor((BREAK_LENGTH - c->indent) / actual_max)),
                       fmin(COMPACT * 4, 15));
    if (cols <= 1) return;
    size_t ncols = (size_t)cols;
    size_t *widths = calloc(ncols, sizeof *widths);
    for (size_t i = 0; i < ncols; i++) {
        for (size_t j = i; j < out_len; j += ncols)
            if (e->len[j] > widths[i]) widths[i] = e->len[j];
        widths[i] += 2;
    }
    bool numbers = true;
    for (size_t i = 0; i < e->n && numbers; i++) numbers = json_is_number(json_array_get(arr, i));
    entries rows = {0};
    for (size_t i = 0; i < out_len; i += ncols) {
        size_t max = i + ncols < out_len ? i + ncols : out_len, j = i;
        strbuf sb = SB_INIT;
        for (; j < max - 1; j++) {
            strbuf cell = SB_INIT;
            sb_puts(&cell, e->s[j]);
            sb_puts(&cell, ", ");
            pad(&sb, cell.data, e->len[j] + 2, widths[j - i], numbers);
            sb_free(&cell);
        }
        if (numbers) pad(&sb, e->s[j], e->len[j], widths[j - i] - 2, true);
        else sb_puts(&sb, e->s[j]);
        push(&rows, sb_take(&sb));
    }
    if (out_len < e->n) push(&rows, strdup(e->s[out_len]));
    free(widths);
    entries_free(e);
    *e = rows;
}

/* reduceToSingleString: one line when the entries fit in breakLength,
 * otherwise one entry (or one row of a grouped array) per line. */
static char *reduce(ictx *c, entries *e, size_t before_grouping, char open, char close, int depth)
{
    strbuf sb = SB_INIT;
    if (c->current_depth - depth < COMPACT && before_grouping == e->n) {
        size_t start = e->n + (size_t)c->indent + 1 + 10, total = e->n + start;
        bool fits = total + e->n <= BREAK_LENGTH;
        for (size_t i = 0; i < e->n && fits; i++) fits = (total += e->len[i]) <= BREAK_LENGTH;
        bool newline = false;
        for (size_t i = 0; i < e->n && fits && !newline; i++) newline = strchr(e->s[i], '\n') != NULL;
        if (fits && !newline) {
            sb_putc(&sb, open);
            sb_putc(&sb, ' ');
            for (size_t i = 0; i < e->n; i++) {
                if (i) sb_puts(&sb, ", ");
                sb_puts(&sb, e->s[i]);
            }
            sb_putc(&sb, ' ');
            sb_putc(&sb, close);
            return sb_take(&sb);
        }
    }
    sb_putc(&sb, open);
    for (size_t i = 0; i < e->n; i++) {
        if (i) sb_putc(&sb, ',');
        sb_putc(&sb, '\n');
        spaces(&sb, c->indent + 2);
        sb_puts(&sb, e->s[i]);
    }
    sb_putc(&sb, '\n');
    spaces(&sb, c->indent);
    sb_putc(&sb, close);
    return sb_take(&sb);
}

/* formatRaw for arrays and plain objects. */
static char *fmt_container(ictx *c, const json_t *v, int depth)
{
    bool arr = json_is_array(v);
    if (!(arr ? json_array_size(v) : json_object_size(v))) return strdup(arr ? "[]" : "{}");
    if (depth > c->depth) return strdup(arr ? "[Array]" : "[Object]");
    depth++;
    c->current_depth = depth;
    entries e = {0};
    if (arr) {
        size_t n = json_array_size(v), shown = n < MAX_ARRAY_LENGTH ? n : MAX_ARRAY_LENGTH;
        for (size_t i = 0; i < shown; i++) push(&e, fmt_entry(c, NULL, 0, json_array_get(v, i), depth));
        if (n > shown) {
            char more[64];
            snprintf(more, sizeof more, "... %zu more item%s", n - shown, n - shown > 1 ? "s" : "");
            push(&e, strdup(more));
        }
    } else {
        crm_entry buf[16], *ents;
        size_t n = crm_js_entries(v, buf, 16, &ents);
        for (size_t i = 0; i < n; i++) push(&e, fmt_entry(c, ents[i].key, ents[i].len, ents[i].val, depth));
        if (ents != buf) free(ents);
    }
    size_t before = e.n;
    if (arr && e.n > 6) group_array(c, &e, v);
    char *s = reduce(c, &e, before, arr ? '[' : '{', arr ? ']' : '}', depth);
    entries_free(&e);
    return s;
}

/* An Error (value.h): its stack, or "[Error: text]" without one, then its
 * own members in braces when it has any, as util.inspect shows it. */
static char *fmt_error(ictx *c, const json_t *v, int depth)
{
    json_t *stack = json_object_get(crm_error_part(v), "stack");
    char *base = NULL;
    if (json_is_string(stack) && json_string_length(stack)) {
        base = strdup(json_string_value(stack));
    } else {
        char *t = crm_to_string(v);
        if (asprintf(&base, "[%s]", t ? t : "") < 0) base = NULL;
        free(t);
    }
    if (!base || json_object_size(v) < 2) return base ? base : strdup("[Error]");
    char *own = fmt_container(c, v, depth), *r = NULL;
    if (asprintf(&r, "%s %s", base, own ? own : "{}") < 0) r = NULL;
    free(base);
    free(own);
    return r ? r : strdup("[Error]");
}

static char *fmt_value(ictx *c, const json_t *v, int depth)
{
    char nb[32];
    if (!v) return strdup("undefined");
    switch (json_typeof(v)) {
    case JSON_STRING: return fmt_string(c, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = crm_num_value(v);
        return strdup(d == 0 && signbit(d) ? "-0" : crm_fmt_number(d, nb));
    }
    case JSON_TRUE: return strdup("true");
    case JSON_FALSE: return strdup("false");
    case JSON_NULL: return strdup("null");
    case JSON_ARRAY: return fmt_container(c, v, depth);
    case JSON_OBJECT:
        if (crm_is_buf(v)) return fmt_buffer(v);
        if (crm_is_handle(v)) return strdup("{}");
        if (crm_is_error(v)) return fmt_error(c, v, depth);
        return fmt_container(c, v, depth);
    }
    return strdup("undefined");
}

char *crm_inspect(const json_t *v, int depth)
{
    ictx c = {.depth = depth};
    return fmt_value(&c, v, 0);
}
