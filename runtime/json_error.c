/* json_error.c: the message of the SyntaxError JSON.parse throws, worded and
 * placed as Node 20's V8 does ("Unexpected token 'b', "b" is not valid
 * JSON", "Expected ',' or ']' after array element in JSON at position 3").
 * Node-RED shows these texts to users (split's delimiter, the http in
 * node's 400 answers), so the scan below follows V8's parser step by step:
 * which check fails first decides the wording, and positions count UTF-16
 * code units. jansson does the real parsing; this only runs on failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "strbuf.h"

#define CONTEXT 10      /* characters of context either side */
#define SHORT_SOURCE 20 /* a source this long is quoted whole */

typedef struct {
    uint16_t *c; /* the text in UTF-16 code units */
    size_t n, i;
    strbuf msg; /* set on the first error */
} scan;

static uint16_t *to_utf16(const char *s, size_t len, size_t *out)
{
    uint16_t *u = malloc((len + 1) * sizeof *u);
    size_t n = 0, i = 0;
    while (i < len) {
        size_t adv;
        long c = crm_utf8_decode(s + i, len - i, &adv);
        unsigned cp = c < 0 ? 0xFFFD : (unsigned)c; /* as Node decodes a bad byte */
        i += adv;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            u[n++] = (uint16_t)(0xd800 + (cp >> 10));
            u[n++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
        } else {
            u[n++] = (uint16_t)cp;
        }
    }
    *out = n;
    return u;
}

/* Appends code units [from, to) as UTF-8. */
static void put_units(strbuf *sb, const uint16_t *c, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        unsigned cp = c[i];
        if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < to && c[i + 1] >= 0xdc00 && c[i + 1] < 0xe000)
            cp = 0x10000 + ((cp - 0xd800) << 10) + (c[++i] - 0xdc00);
        else if (cp >= 0xd800 && cp < 0xe000)
            cp = 0xfffd; /* half a pair cut by the context: as Node writes it out */
        sb_put_utf8(sb, cp);
    }
}

static bool failed(const scan *s) { return s->msg.len > 0; }

/* An error with its own wording: it wins even at the end of the text. */
static void fail_at(scan *s, const char *what, size_t pos)
{
    if (!failed(s)) sb_printf(&s->msg, "%s in JSON at position %zu", what, pos);
}

static bool whole_is(const scan *s, const char *word)
{
    size_t k = strlen(word);
    if (k != s->n) return false;
    for (size_t i = 0; i < k; i++)
        if (s->c[i] != (unsigned char)word[i]) return false;
    return true;
}

/* V8's wording for the character at pos when nothing more specific
 * applies: by the kind of token it starts, else the token with the source
 * around it. */
static void fail_token_as(scan *s, size_t pos, bool by_kind)
{
    if (failed(s)) return;
    if (pos >= s->n) {
        sb_puts(&s->msg, "Unexpected end of JSON input");
        return;
    }
    uint16_t ch = s->c[pos];
    if (by_kind && (ch == '-' || (ch >= '0' && ch <= '9'))) {
        fail_at(s, "Unexpected number", pos);
        return;
    }
    if (by_kind && ch == '"') {
        fail_at(s, "Unexpected string", pos);
        return;
    }
    if (by_kind && (whole_is(s, "NaN") || whole_is(s, "Infinity") || whole_is(s, "undefined") || whole_is(s, "[object Object]"))) {
        sb_putc(&s->msg, '"');
        put_units(&s->msg, s->c, 0, s->n);
        sb_puts(&s->msg, "\" is not valid JSON");
        return;
    }
    sb_puts(&s->msg, "Unexpected token '");
    put_units(&s->msg, s->c, pos, pos + 1);
    sb_puts(&s->msg, "', ");
    /* V8 picks the wording by where pos lies, the dots included */
    bool before = false, after = false;
    size_t from = 0, to = s->n;
    if (s->n > SHORT_SOURCE) {
        before = pos >= CONTEXT;
        after = pos < s->n - CONTEXT;
        if (before) from = pos - CONTEXT;
        if (after) to = pos + CONTEXT;
    }
    if (before) sb_puts(&s->msg, "...");
    sb_putc(&s->msg, '"');
    put_units(&s->msg, s->c, from, to);
    sb_putc(&s->msg, '"');
    if (after) sb_puts(&s->msg, "...");
    sb_puts(&s->msg, " is not valid JSON");
}

static void fail_token(scan *s, size_t pos) { fail_token_as(s, pos, true); }

static void skip_ws(scan *s)
{
    while (s->i < s->n && (s->c[s->i] == ' ' || s->c[s->i] == '\t' || s->c[s->i] == '\n' || s->c[s->i] == '\r')) s->i++;
}

static bool at(const scan *s, uint16_t ch) { return s->i < s->n && s->c[s->i] == ch; }
static bool digit_at(const scan *s) { return s->i < s->n && s->c[s->i] >= '0' && s->c[s->i] <= '9'; }

/* A string, the cursor on its opening quote. */
static void scan_string(scan *s)
{
    for (s->i++;; s->i++) {
        if (s->i >= s->n) return fail_at(s, "Unterminated string", s->n);
        uint16_t ch = s->c[s->i];
        if (ch == '"') {
            s->i++;
            return;
        }
        if (ch < 0x20) return fail_at(s, "Bad control character in string literal", s->i);
        if (ch != '\\') continue;
        if (++s->i >= s->n) return fail_token(s, s->n);
        ch = s->c[s->i];
        if (ch == 'u') {
            for (int k = 0; k < 4; k++)
                if (++s->i >= s->n || crm_hexval(s->c[s->i]) < 0) return fail_at(s, "Bad Unicode escape", s->i);
        } else if (ch > 255) { /* outside V8's one-character token table */
            return fail_token(s, s->i);
        } else if (ch > 127 || !ch || !strchr("\"\\/bfnrt", ch)) {
            return fail_at(s, "Bad escaped character", s->i);
        }
    }
}

static void scan_number(scan *s)
{
    if (at(s, '-') && (++s->i, !digit_at(s))) return fail_at(s, "No number after minus sign", s->i);
    if (at(s, '0')) {
        s->i++;
        if (digit_at(s)) return fail_token(s, s->i);
    } else {
        while (digit_at(s)) s->i++;
    }
    if (at(s, '.')) {
        s->i++;
        if (!digit_at(s)) return fail_at(s, "Unterminated fractional number", s->i);
        while (digit_at(s)) s->i++;
    }
    if (at(s, 'e') || at(s, 'E')) {
        s->i++;
        if (at(s, '+') || at(s, '-')) s->i++;
        if (!digit_at(s)) return fail_at(s, "Exponent part is missing a number", s->i);
        while (digit_at(s)) s->i++;
    }
}

static void scan_literal(scan *s, const char *word)
{
    for (size_t k = 0; word[k]; k++, s->i++)
        if (s->i >= s->n || s->c[s->i] != (unsigned char)word[k]) return fail_token(s, s->i);
}

/* A property name and its colon; first: the object's first property. */
static void scan_key(scan *s, bool first)
{
    skip_ws(s);
    if (!at(s, '"'))
        return fail_at(s, first ? "Expected property name or '}'" : "Expected double-quoted property name", s->i);
    scan_string(s);
    if (failed(s)) return;
    skip_ws(s);
    if (!at(s, ':')) {
        if (first) return fail_at(s, "Expected ':' after property name", s->i);
        return fail_token(s, s->i);
    }
    s->i++;
}

static void scan_text(scan *s)
{
    char *stack = NULL; /* the open containers, '[' or '{' */
    size_t depth = 0, cap = 0;
    for (;;) {
        /* a value */
        skip_ws(s);
        uint16_t ch = s->i < s->n ? s->c[s->i] : 0;
        bool opened = false;
        if (s->i >= s->n) fail_token(s, s->i);
        else if (ch == '"') scan_string(s);
        else if (ch == '-' || (ch >= '0' && ch <= '9')) scan_number(s);
        else if (ch == 't') scan_literal(s, "true");
        else if (ch == 'f') scan_literal(s, "false");
        else if (ch == 'n') scan_literal(s, "null");
        else if (ch == '[' || ch == '{') {
            s->i++;
            skip_ws(s);
            if (at(s, ch == '[' ? ']' : '}')) {
                s->i++;
            } else {
                if (depth == cap) stack = realloc(stack, cap = cap ? cap * 2 : 64);
                stack[depth++] = (char)ch;
                if (ch == '{') scan_key(s, true);
                opened = true;
            }
        } else fail_token(s, s->i);
        if (failed(s)) break;
        if (opened) continue;
        /* after a value: the next one, or the end of containers */
        bool next = false;
        while (depth && !next && !failed(s)) {
            skip_ws(s);
            char open = stack[depth - 1];
            if (at(s, ',')) {
                s->i++;
                if (open == '{') scan_key(s, false);
                next = true;
            } else if (at(s, open == '[' ? ']' : '}')) {
                s->i++;
                depth--;
            } else {
                fail_at(s, open == '[' ? "Expected ',' or ']' after array element" : "Expected ',' or '}' after property value", s->i);
            }
        }
        if (failed(s) || next) continue;
        skip_ws(s);
        if (s->i < s->n) sb_printf(&s->msg, "Unexpected non-whitespace character after JSON at position %zu", s->i);
        break;
    }
    free(stack);
}

char *crm_json_error(const char *text, size_t len)
{
    scan s = {.msg = SB_INIT};
    s.c = to_utf16(text, len, &s.n);
    scan_text(&s);
    free(s.c);
    return s.msg.len ? sb_take(&s.msg) : NULL;
}

char *crm_json_syntax_error(const char *text, size_t len)
{
    char *m = crm_json_error(text, len);
    strbuf sb = SB_INIT;
    /* NULL only where jansson refuses what V8 takes (a lone \ud800) */
    sb_printf(&sb, "SyntaxError: %s", m ? m : "Unexpected end of JSON input");
    free(m);
    return sb_take(&sb);
}

char *crm_json_token_error(const char *text, size_t len, size_t pos)
{
    scan s = {.msg = SB_INIT};
    s.c = to_utf16(text, len, &s.n);
    fail_token_as(&s, crm_utf16_len(text, pos < len ? pos : len), false);
    free(s.c);
    return sb_take(&s.msg);
}
