/* yaml_dump.c: js-yaml 4's dump() (see yaml.h), written from its rules.
 *
 * js-yaml measures and slices strings in UTF-16 code units (line widths,
 * folding points), so scalars are converted to UTF-16 while their style is
 * chosen and written, and back to UTF-8 on output.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"
#include "yaml/yaml.h"
#include "yaml/yaml_types.h"

#define INDENT 2
#define LINE_WIDTH 80

/* ---- UTF-16 strings ---------------------------------------------------- */

typedef struct {
    uint16_t *u;
    size_t n;
} u16;

static u16 to_u16(const char *s, size_t len)
{
    u16 r = {calloc(len + 1, sizeof(uint16_t)), 0};
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        uint32_t c = *p;
        int extra = c < 0x80 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
        if (extra) c &= 0x3f >> extra;
        p++;
        for (int i = 0; i < extra && p < e; i++) c = (c << 6) | (*p++ & 0x3f);
        if (c >= 0x10000) {
            c -= 0x10000;
            r.u[r.n++] = (uint16_t)(0xd800 + (c >> 10));
            r.u[r.n++] = (uint16_t)(0xdc00 + (c & 0x3ff));
        } else {
            r.u[r.n++] = (uint16_t)c;
        }
    }
    return r;
}

static void put_cp(strbuf *sb, uint32_t c)
{
    char b[4];
    if (c < 0x80) {
        sb_putc(sb, (char)c);
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3f));
        sb_putn(sb, b, 2);
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        sb_putn(sb, b, 3);
    } else {
        b[0] = (char)(0xf0 | (c >> 18));
        b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        sb_putn(sb, b, 4);
    }
}

/* Appends s[from, to) as UTF-8 (lone surrogates as U+FFFD). */
static void put_u16(strbuf *sb, const u16 *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        uint32_t c = s->u[i];
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < to && s->u[i + 1] >= 0xdc00 && s->u[i + 1] <= 0xdfff) {
            c = 0x10000 + ((c - 0xd800) << 10) + (s->u[i + 1] - 0xdc00);
            i++;
        } else if (c >= 0xd800 && c <= 0xdfff) {
            c = 0xfffd;
        }
        put_cp(sb, c);
    }
}

static uint32_t cp_at(const u16 *s, size_t i)
{
    uint32_t f = s->u[i];
    if (f >= 0xd800 && f <= 0xdbff && i + 1 < s->n) {
        uint32_t sec = s->u[i + 1];
        if (sec >= 0xdc00 && sec <= 0xdfff) return (f - 0xd800) * 0x400 + sec - 0xdc00 + 0x10000;
    }
    return f;
}

/* ---- character classes ---------------------------------------------------- */

static bool is_white(uint32_t c) { return c == ' ' || c == '\t'; }

static bool is_printable(uint32_t c)
{
    return (c >= 0x20 && c <= 0x7e) || (c >= 0xa1 && c <= 0xd7ff && c != 0x2028 && c != 0x2029) ||
           (c >= 0xe000 && c <= 0xfffd && c != 0xfeff) || (c >= 0x10000 && c <= 0x10ffff);
}

static bool is_ns_char_or_white(uint32_t c)
{
    return is_printable(c) && c != 0xfeff && c != '\r' && c != '\n';
}

static bool is_plain_safe(uint32_t c, int64_t prev, bool inblock)
{
    bool nsw = is_ns_char_or_white(c);
    bool ns = nsw && !is_white(c);
    bool safe = inblock ? nsw : nsw && c != ',' && c != '[' && c != ']' && c != '{' && c != '}';
    return (safe && c != '#' && !(prev == ':' && !ns)) ||
           (prev >= 0 && is_ns_char_or_white((uint32_t)prev) && !is_white((uint32_t)prev) && c == '#') ||
           (prev == ':' && ns);
}

static bool is_plain_safe_first(uint32_t c)
{
    return is_printable(c) && c != 0xfeff && !is_white(c) && !(c < 0x80 && strchr("-?:,[]{}#&*!|=>'\"%@`", (int)c));
}

static bool is_plain_safe_last(uint32_t c) { return !is_white(c) && c != ':'; }

/* ---- scalars ------------------------------------------------------------------- */

enum { ST_PLAIN = 1, ST_SINGLE, ST_LITERAL, ST_FOLDED, ST_DOUBLE };

static bool need_indent_indicator(const u16 *s)
{
    size_t i = 0;
    while (i < s->n && s->u[i] == '\n') i++;
    return i < s->n && s->u[i] == ' ';
}

static int choose_style(const u16 *s, const char *utf8, bool single_line, int line_width)
{
    uint32_t ch = 0;
    int64_t prev = -1;
    bool has_lb = false, has_foldable = false;
    bool track = line_width != -1;
    long prev_lb = -1;
    bool plain = is_plain_safe_first(cp_at(s, 0)) && is_plain_safe_last(cp_at(s, s->n - 1));
    size_t i;
    if (single_line) {
        for (i = 0; i < s->n; i += ch >= 0x10000 ? 2 : 1) {
            ch = cp_at(s, i);
            if (!is_printable(ch)) return ST_DOUBLE;
            plain = plain && is_plain_safe(ch, prev, true);
            prev = ch;
        }
    } else {
        for (i = 0; i < s->n; i += ch >= 0x10000 ? 2 : 1) {
            ch = cp_at(s, i);
            if (ch == '\n') {
                has_lb = true;
                if (track) {
                    has_foldable = has_foldable || ((long)i - prev_lb - 1 > line_width && s->u[prev_lb + 1] != ' ');
                    prev_lb = (long)i;
                }
            } else if (!is_printable(ch)) {
                return ST_DOUBLE;
            }
            plain = plain && is_plain_safe(ch, prev, true);
            prev = ch;
        }
        has_foldable = has_foldable ||
                       (track && ((long)i - prev_lb - 1 > line_width && (size_t)(prev_lb + 1) < s->n &&
                                  s->u[prev_lb + 1] != ' '));
    }
    if (!has_lb && !has_foldable) {
        if (plain && !crm_yaml_resolves(utf8)) return ST_PLAIN;
        return ST_SINGLE;
    }
    return has_foldable ? ST_FOLDED : ST_LITERAL;
}

/* indentString(s, spaces) without the last newline (dropEndingNewline). */
static void put_indented(strbuf *sb, const u16 *s, int spaces)
{
    size_t pos = 0, end = s->n;
    if (end && s->u[end - 1] == '\n') end--; /* dropEndingNewline after indenting */
    while (pos < s->n) {
        size_t next = pos;
        while (next < s->n && s->u[next] != '\n') next++;
        size_t stop = next < s->n ? next + 1 : next;
        bool empty_line = (stop - pos == 1 && s->u[pos] == '\n') || stop == pos;
        if (!empty_line)
            for (int k = 0; k < spaces; k++) sb_putc(sb, ' ');
        put_u16(sb, s, pos, stop < end ? stop : end);
        pos = stop;
    }
}

static void block_header(strbuf *sb, const u16 *s)
{
    if (need_indent_indicator(s)) sb_printf(sb, "%d", INDENT);
    bool clip = s->n && s->u[s->n - 1] == '\n';
    bool keep = clip && ((s->n >= 2 && s->u[s->n - 2] == '\n') || s->n == 1);
    sb_puts(sb, keep ? "+" : clip ? "" : "-");
    sb_putc(sb, '\n');
}

typedef struct {
    uint16_t *u;
    size_t n, cap;
} u16buf;

static void ub_put(u16buf *b, const uint16_t *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->u = realloc(b->u, b->cap * sizeof *b->u);
    }
    memcpy(b->u + b->n, p, n * sizeof *p);
    b->n += n;
}

static void ub_nl(u16buf *b)
{
    uint16_t nl = '\n';
    ub_put(b, &nl, 1);
}

/* foldLine(line, width) appended to out. */
static void fold_line(u16buf *out, const uint16_t *line, size_t len, int width)
{
    if (len == 0 || line[0] == ' ') {
        ub_put(out, line, len);
        return;
    }
    size_t start = 0, end, curr = 0, next = 0;
    u16buf res = {0};
    /* breakRe / [^ ]/g */
    for (size_t i = 0; i + 1 < len; i++) {
        if (line[i] == ' ' && line[i + 1] != ' ') {
            next = i;
            if ((long)next - (long)start > width) {
                end = curr > start ? curr : next;
                ub_nl(&res);
                ub_put(&res, line + start, end - start);
                start = end + 1;
            }
            curr = next;
            i++; /* the match consumed two characters */
        }
    }
    ub_nl(&res);
    if ((long)len - (long)start > width && curr > start) {
        ub_put(&res, line + start, curr - start);
        ub_nl(&res);
        ub_put(&res, line + curr + 1, len - curr - 1);
    } else {
        ub_put(&res, line + start, len - start);
    }
    ub_put(out, res.u + 1, res.n - 1);
    free(res.u);
}

static u16 fold_string(const u16 *s, int width)
{
    u16buf out = {0};
    size_t next_lf = 0;
    while (next_lf < s->n && s->u[next_lf] != '\n') next_lf++;
    fold_line(&out, s->u, next_lf, width);
    bool prev_more = s->n && (s->u[0] == '\n' || s->u[0] == ' ');
    size_t i = next_lf;
    while (i < s->n) {
        size_t ps = i;
        while (i < s->n && s->u[i] == '\n') i++;
        size_t ls = i;
        while (i < s->n && s->u[i] != '\n') i++;
        bool more = ls < i && s->u[ls] == ' ';
        ub_put(&out, s->u + ps, ls - ps);
        if (!prev_more && !more && i > ls) ub_nl(&out);
        fold_line(&out, s->u + ls, i - ls, width);
        prev_more = more;
    }
    if (!out.u) out.u = malloc(sizeof(uint16_t));
    return (u16){out.u, out.n};
}

static const char *escape_seq(uint32_t c)
{
    switch (c) {
    case 0x00: return "\\0";
    case 0x07: return "\\a";
    case 0x08: return "\\b";
    case 0x09: return "\\t";
    case 0x0a: return "\\n";
    case 0x0b: return "\\v";
    case 0x0c: return "\\f";
    case 0x0d: return "\\r";
    case 0x1b: return "\\e";
    case 0x22: return "\\\"";
    case 0x5c: return "\\\\";
    case 0x85: return "\\N";
    case 0xa0: return "\\_";
    case 0x2028: return "\\L";
    case 0x2029: return "\\P";
    default: return NULL;
    }
}

static void put_double(strbuf *sb, const u16 *s)
{
    sb_putc(sb, '"');
    uint32_t ch = 0;
    for (size_t i = 0; i < s->n; i += ch >= 0x10000 ? 2 : 1) {
        ch = cp_at(s, i);
        const char *e = escape_seq(ch);
        if (!e && is_printable(ch)) put_u16(sb, s, i, i + (ch >= 0x10000 ? 2 : 1));
        else if (e) sb_puts(sb, e);
        else if (ch <= 0xff) sb_printf(sb, "\\x%02X", ch);
        else if (ch <= 0xffff) sb_printf(sb, "\\u%04X", ch);
        else sb_printf(sb, "\\U%08X", ch);
    }
    sb_putc(sb, '"');
}

static bool deprecated_bool(const char *s)
{
    static const char *const w[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                    "n", "N", "no", "No", "NO", "off", "Off", "OFF", NULL};
    for (int i = 0; w[i]; i++)
        if (!strcmp(s, w[i])) return true;
    return false;
}

/* /^[-+]?[0-9_]+(?::[0-9_]+)+(?:\.[0-9_]*)?$/ */
static bool base60(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    const char *b = p;
    while ((*p >= '0' && *p <= '9') || *p == '_') p++;
    if (p == b) return false;
    int groups = 0;
    while (*p == ':') {
        p++;
        b = p;
        while ((*p >= '0' && *p <= '9') || *p == '_') p++;
        if (p == b) return false;
        groups++;
    }
    if (!groups) return false;
    if (*p == '.') {
        p++;
        while ((*p >= '0' && *p <= '9') || *p == '_') p++;
    }
    return *p == 0;
}

static void write_scalar(strbuf *sb, const char *str, size_t len, int level, bool iskey)
{
    if (len == 0) {
        sb_puts(sb, "''");
        return;
    }
    if (deprecated_bool(str) || base60(str)) {
        sb_printf(sb, "'%s'", str);
        return;
    }
    int indent = INDENT * (level > 1 ? level : 1);
    int width = LINE_WIDTH - indent;
    if (width < 40) width = 40;
    u16 s = to_u16(str, len);
    switch (choose_style(&s, str, iskey, width)) {
    case ST_PLAIN:
        sb_putn(sb, str, len);
        break;
    case ST_SINGLE:
        sb_putc(sb, '\'');
        for (size_t i = 0; i < len; i++) {
            if (str[i] == '\'') sb_putc(sb, '\'');
            sb_putc(sb, str[i]);
        }
        sb_putc(sb, '\'');
        break;
    case ST_LITERAL:
        sb_putc(sb, '|');
        block_header(sb, &s);
        put_indented(sb, &s, indent);
        break;
    case ST_FOLDED: {
        sb_putc(sb, '>');
        block_header(sb, &s);
        u16 f = fold_string(&s, width);
        put_indented(sb, &f, indent);
        free(f.u);
        break;
    }
    default:
        put_double(sb, &s);
    }
    free(s.u);
}

/* ---- nodes ------------------------------------------------------------------------ */

static void write_node(strbuf *out, int level, const json_t *v, bool block, bool compact, bool iskey);

static void next_line(strbuf *sb, int level)
{
    sb_putc(sb, '\n');
    for (int i = 0; i < INDENT * level; i++) sb_putc(sb, ' ');
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

static char *base64(const unsigned char *d, size_t n)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t b = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        char q[4] = {B64[b >> 18], B64[(b >> 12) & 63], B64[(b >> 6) & 63], B64[b & 63]};
        sb_putn(&sb, q, 4);
    }
    if (n - i == 2) {
        uint32_t b = (uint32_t)d[i] << 8 | d[i + 1];
        char q[4] = {B64[(b >> 10) & 63], B64[(b >> 4) & 63], B64[(b << 2) & 63], '='};
        sb_putn(&sb, q, 4);
    } else if (n - i == 1) {
        uint32_t b = d[i];
        char q[4] = {B64[(b >> 2) & 63], B64[(b << 4) & 63], '=', '='};
        sb_putn(&sb, q, 4);
    }
    return sb_take(&sb);
}

static void write_number(strbuf *sb, double d)
{
    char buf[40];
    if (isnan(d)) sb_puts(sb, ".nan");
    else if (isinf(d)) sb_puts(sb, d > 0 ? ".inf" : "-.inf");
    else if (d == 0 && signbit(d)) sb_puts(sb, "-0.0");
    else {
        crm_fmt_number(d, buf);
        if (fmod(d, 1) != 0) {
            /* SCIENTIFIC_WITHOUT_DOT: "1e-7" becomes "1.e-7" */
            const char *p = buf;
            if (*p == '-' || *p == '+') p++;
            const char *q = p;
            while (*q >= '0' && *q <= '9') q++;
            if (q > p && *q == 'e') {
                sb_putn(sb, buf, (size_t)(q - buf));
                sb_putc(sb, '.');
                sb_puts(sb, q);
                return;
            }
        }
        sb_puts(sb, buf);
    }
}

static void write_mapping(strbuf *out, int level, const json_t *obj, bool compact)
{
    crm_entry buf[32], *ents;
    size_t ne = crm_js_entries(obj, buf, 32, &ents);
    size_t start = out->len;
    for (size_t i = 0; i < ne; i++) {
        if (!compact || out->len != start) next_line(out, level);
        strbuf key = SB_INIT;
        sb_puts(&key, "");
        write_scalar(&key, ents[i].key, ents[i].len, level + 1, true);
        bool explicit = key.len > 1024;
        if (explicit) sb_puts(out, key.data[0] == '\n' ? "?" : "? ");
        sb_puts(out, key.data);
        sb_free(&key);
        if (explicit) next_line(out, level);
        strbuf val = SB_INIT;
        sb_puts(&val, "");
        write_node(&val, level + 1, ents[i].val, true, explicit, false);
        sb_puts(out, val.data[0] == '\n' ? ":" : ": ");
        sb_puts(out, val.data);
        sb_free(&val);
    }
    if (ents != buf) free(ents);
}

static void write_sequence(strbuf *out, int level, const json_t *arr, bool compact)
{
    size_t start = out->len;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!compact || out->len != start) next_line(out, level);
        strbuf val = SB_INIT;
        sb_puts(&val, "");
        write_node(&val, level + 1, json_array_get(arr, i), true, true, false);
        sb_puts(out, val.data[0] == '\n' ? "-" : "- ");
        sb_puts(out, val.data);
        sb_free(&val);
    }
}

static void write_node(strbuf *out, int level, const json_t *v, bool block, bool compact, bool iskey)
{
    if (!v || json_is_null(v)) {
        sb_puts(out, "null");
    } else if (json_is_true(v)) {
        sb_puts(out, "true");
    } else if (json_is_false(v)) {
        sb_puts(out, "false");
    } else if (json_is_number(v)) {
        write_number(out, crm_num_value(v));
    } else if (json_is_string(v)) {
        write_scalar(out, json_string_value(v), json_string_length(v), level, iskey);
    } else if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        char *b = base64(d, n);
        sb_puts(out, "!!binary ");
        write_scalar(out, b, strlen(b), level, iskey);
        free(b);
    } else if (crm_is_handle(v)) {
        sb_puts(out, "{}");
    } else if (json_is_object(v)) {
        if (block && json_object_size(v)) {
            write_mapping(out, level, v, compact);
        } else {
            sb_puts(out, "{}");
        }
    } else if (json_is_array(v)) {
        if (block && json_array_size(v)) {
            write_sequence(out, level, v, compact);
        } else {
            sb_puts(out, "[]");
        }
    }
}

char *crm_yaml_dump(const json_t *v)
{
    if (!v) return strdup("");
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    write_node(&sb, 0, v, true, true, false);
    sb_putc(&sb, '\n');
    return sb_take(&sb);
}
