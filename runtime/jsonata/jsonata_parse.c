/* jsonata_parse.c: the JSONata tokenizer, Pratt parser and post-parse pass.
 *
 * It follows jsonata-js's structure closely (a raw parse tree, then
 * processAST turning '.'/'['/'{' chains into path steps, predicates, stages,
 * group-by, tuple/ancestry annotations for '@', '#' and '%', tail calls),
 * because the evaluator's semantics hang on exactly those annotations. All
 * nodes live in one arena owned by the compiled expression. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "jsonata_int.h"

/* Arena ------------------------------------------------------------------- */

typedef struct cleanup {
    struct cleanup *next;
    int kind; /* 0 json value, 1 pcre2 code */
    void *ptr;
} cleanup;

typedef struct ablock {
    struct ablock *next;
    cleanup *cl;
    size_t used, cap;
    max_align_t data[];
} ablock;

static void ja_track(void **arena, int kind, void *ptr)
{
    cleanup *c = ja_alloc(arena, sizeof *c);
    ablock *b = *arena;
    c->kind = kind;
    c->ptr = ptr;
    c->next = b->cl;
    b->cl = c;
}

json_t *ja_track_json(void **arena, json_t *v)
{
    ja_track(arena, 0, v);
    return v;
}

pcre2_code *ja_track_re(void **arena, pcre2_code *re)
{
    if (re) ja_track(arena, 1, re);
    return re;
}

void *ja_alloc(void **arena, size_t n)
{
    ablock *b = *arena;
    n = (n + 15) & ~(size_t)15;
    if (!b || b->used + n > b->cap) {
        size_t cap = n > 16384 ? n : 16384;
        ablock *nb = malloc(sizeof(ablock) + cap);
        if (!nb) abort();
        nb->next = b;
        nb->cl = NULL;
        nb->used = 0;
        nb->cap = cap;
        *arena = b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(void **arena, const char *s, size_t n)
{
    char *p = ja_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void ja_arena_free(void *arena)
{
    ablock *b = arena;
    while (b) {
        ablock *n = b->next;
        for (cleanup *c = b->cl; c; c = c->next) {
            if (c->kind == 0) json_decref(c->ptr);
            else pcre2_code_free(c->ptr);
        }
        free(b);
        b = n;
    }
}

/* Parser state ------------------------------------------------------------ */

typedef struct {
    const char *src;
    size_t len, pos;
    void **arena;
    jsonata_error *err;
    jmp_buf fail;
    jnode *node; /* current token */
    int ancestor_label, ancestor_index;
    jnode **ancestry;
    int nancestry, capancestry;
    int depth;   /* expression() calls in progress */
    strbuf sig;  /* a lambda signature's text while it is read (freed on failure) */
    /* every regex and literal made is tracked by the arena, freed on failure */
} P;

/* The deepest expression the parser accepts: its tree (raw or processed) may
 * nest at most this many levels, whatever the construct (parentheses, unary
 * minus, a chain of binary operators or path steps, calls, conditions,
 * constructors). The passes after parsing and the evaluator recurse along the
 * tree, so this bounds their C stack too. jsonata-js has no such limit and
 * fails with a RangeError (Maximum call stack size exceeded) somewhere in the
 * thousands; Carmine refuses at compile time with U1002. */
#define MAX_NESTING 1000

static _Noreturn void perr(P *p, const char *code, int position, const char *token, const json_t *value)
{
    jerr_std(p->err, code, position, token, value, 0);
    longjmp(p->fail, 1);
}

static jnode *nnew(P *p, ntype t, int pos)
{
    jnode *n = ja_alloc(p->arena, sizeof *n);
    n->type = t;
    n->position = pos;
    return n;
}

static const char *op_chars = ".[]{}(),@#;:?+-*/%|=<>^&!~";

static bool is_op_char(char c) { return c && strchr(op_chars, c) != NULL; }
static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'; }

static int op_bp(const char *id)
{
    static const struct { const char *id; int bp; } t[] = {
        {".", 75}, {"[", 80}, {"]", 0}, {"{", 70}, {"}", 0}, {"(", 80}, {")", 0}, {",", 0},
        {"@", 80}, {"#", 80}, {";", 80}, {":", 80}, {"?", 20}, {"+", 50}, {"-", 50}, {"*", 60},
        {"/", 60}, {"%", 60}, {"|", 20}, {"=", 40}, {"<", 40}, {">", 40}, {"^", 40}, {"**", 60},
        {"..", 20}, {":=", 10}, {"!=", 40}, {"<=", 40}, {">=", 40}, {"~>", 40}, {"?:", 40},
        {"??", 40}, {"and", 30}, {"or", 25}, {"in", 40}, {"&", 50}, {"!", 0}, {"~", 0}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].id, id)) return t[i].bp;
    return -1;
}

/* The left binding power of a symbol, as jsonata-js's symbol table ends up. */
static int symbol_lbp(const char *id)
{
    static const char *infix[] = {".", "+", "-", "*", "/", "%", "=", "<", ">", "!=", "<=", ">=", "&",
                                  "and", "or", "in", "~>", "(", "[", "^", "{", ":=", "@", "#", "?",
                                  "?:", "??", NULL};
    for (int i = 0; infix[i]; i++)
        if (!strcmp(infix[i], id)) return op_bp(id);
    return 0;
}

static bool known_symbol(const char *id)
{
    static const char *syms[] = {":", ";", ",", ")", "]", "}", "..", ".", "+", "-", "*", "/", "%",
                                 "=", "<", ">", "!=", "<=", ">=", "&", "and", "or", "in", "~>",
                                 "**", "(", "[", "^", "{", ":=", "@", "#", "?", "?:", "??", "|",
                                 NULL};
    for (int i = 0; syms[i]; i++)
        if (!strcmp(syms[i], id)) return true;
    return false;
}

/* Tokenizer --------------------------------------------------------------- */

static int hex4(const char *s, size_t avail)
{
    if (avail < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (!isxdigit((unsigned char)s[i])) return -1;
        v = v * 16 + (isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10));
    }
    return v;
}

static pcre2_code *compile_regex(P *p, const char *pat, size_t n, const char *flags, int pos)
{
    uint32_t opts = PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_MATCH_UNSET_BACKREF | PCRE2_UCP;
    if (strchr(flags, 'i')) opts |= PCRE2_CASELESS;
    if (strchr(flags, 'm')) opts |= PCRE2_MULTILINE;
    else opts |= PCRE2_DOLLAR_ENDONLY;
    int ec;
    PCRE2_SIZE eo;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    pcre2_set_newline(cc, PCRE2_NEWLINE_ANY);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n, opts & ~PCRE2_UCP, &ec, &eo, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        /* the literal is complete: PCRE2 10.42 refuses what JavaScript accepts
         * (a variable-length lookbehind such as (?<=a[0-9]+)), or it is invalid */
        PCRE2_UCHAR why[160];
        if (pcre2_get_error_message(ec, why, sizeof why) < 0) snprintf((char *)why, sizeof why, "error %d", ec);
        jerr_set(p->err, "U1005", pos, "Regular expression /%.*s/ cannot be compiled by PCRE2 (Carmine's regex engine): %s",
                 n > 80 ? 80 : (int)n, pat, (const char *)why);
        longjmp(p->fail, 1);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return ja_track_re(p->arena, re);
}

static jnode *tok(P *p, ntype type, const char *id)
{
    jnode *t = nnew(p, type, (int)p->pos);
    t->id = id;
    return t;
}

static jnode *scan_regex(P *p)
{
    size_t start = p->pos;
    int depth = 0;
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        if (c == '/' && depth == 0) {
            size_t bs = 0;
            while (p->pos >= bs + 1 && p->src[p->pos - bs - 1] == '\\') bs++;
            if (bs % 2 == 0) {
                size_t plen = p->pos - start;
                if (plen == 0) perr(p, "S0301", (int)p->pos, NULL, NULL);
                p->pos++;
                size_t fs = p->pos;
                while (p->pos < p->len && (p->src[p->pos] == 'i' || p->src[p->pos] == 'm')) p->pos++;
                char flags[8] = {0};
                size_t fl = p->pos - fs;
                if (fl > 6) fl = 6;
                memcpy(flags, p->src + fs, fl);
                jnode *t = tok(p, N_REGEX, "(regex)");
                t->re_src = ja_strndup(p->arena, p->src + start, plen);
                t->re = compile_regex(p, p->src + start, plen, flags, (int)start);
                return t;
            }
        }
        char prev = p->pos > 0 ? p->src[p->pos - 1] : 0;
        if ((c == '(' || c == '[' || c == '{') && prev != '\\') depth++;
        if ((c == ')' || c == ']' || c == '}') && prev != '\\') depth--;
        p->pos++;
    }
    perr(p, "S0302", (int)p->pos, NULL, NULL);
}

static jnode *op_tok(P *p, const char *id, size_t n)
{
    p->pos += n;
    jnode *t = tok(p, R_OPERATOR, id);
    t->str = id;
    return t;
}

static jnode *lex(P *p, bool prefix)
{
    const char *s = p->src;
    for (;;) {
        while (p->pos < p->len && is_ws(s[p->pos])) p->pos++;
        if (p->pos + 1 < p->len && s[p->pos] == '/' && s[p->pos + 1] == '*') {
            size_t cstart = p->pos;
            p->pos += 2;
            while (!(p->pos + 1 < p->len && s[p->pos] == '*' && s[p->pos + 1] == '/')) {
                p->pos++;
                if (p->pos >= p->len) perr(p, "S0106", (int)cstart, NULL, NULL);
            }
            p->pos += 2;
            continue;
        }
        break;
    }
    if (p->pos >= p->len) return NULL;
    char c = s[p->pos], c2 = p->pos + 1 < p->len ? s[p->pos + 1] : 0;
    if (!prefix && c == '/') {
        p->pos++;
        return scan_regex(p);
    }
    if (c == '.' && c2 == '.') return op_tok(p, "..", 2);
    if (c == ':' && c2 == '=') return op_tok(p, ":=", 2);
    if (c == '!' && c2 == '=') return op_tok(p, "!=", 2);
    if (c == '>' && c2 == '=') return op_tok(p, ">=", 2);
    if (c == '<' && c2 == '=') return op_tok(p, "<=", 2);
    if (c == '*' && c2 == '*') return op_tok(p, "**", 2);
    if (c == '~' && c2 == '>') return op_tok(p, "~>", 2);
    if (c == '?' && c2 == ':') return op_tok(p, "?:", 2);
    if (c == '?' && c2 == '?') return op_tok(p, "??", 2);
    if (is_op_char(c)) {
        static const char *single[] = {".", "[", "]", "{", "}", "(", ")", ",", "@", "#", ";", ":", "?",
                                       "+", "-", "*", "/", "%", "|", "=", "<", ">", "^", "&", "!", "~"};
        for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
            if (single[i][0] == c) return op_tok(p, single[i], 1);
    }
    if (c == '"' || c == '\'') {
        char q = c;
        p->pos++;
        strbuf sb = SB_INIT;
        sb_putn(&sb, "", 0);
        while (p->pos < p->len) {
            c = s[p->pos];
            if (c == '\\') {
                p->pos++;
                c = p->pos < p->len ? s[p->pos] : 0;
                switch (c) {
                case '"': sb_putc(&sb, '"'); break;
                case '\\': sb_putc(&sb, '\\'); break;
                case '/': sb_putc(&sb, '/'); break;
                case 'b': sb_putc(&sb, '\b'); break;
                case 'f': sb_putc(&sb, '\f'); break;
                case 'n': sb_putc(&sb, '\n'); break;
                case 'r': sb_putc(&sb, '\r'); break;
                case 't': sb_putc(&sb, '\t'); break;
                case 'u': {
                    int cp = hex4(s + p->pos + 1, p->len - p->pos - 1);
                    if (cp < 0) { sb_free(&sb); perr(p, "S0104", (int)p->pos, NULL, NULL); }
                    p->pos += 4;
                    if (cp >= 0xD800 && cp < 0xDC00 && p->pos + 6 < p->len + 0 && s[p->pos + 1] == '\\' &&
                        s[p->pos + 2] == 'u') {
                        int lo = hex4(s + p->pos + 3, p->len - p->pos - 3);
                        if (lo >= 0xDC00 && lo < 0xE000) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            p->pos += 6;
                        }
                    }
                    sb_put_utf8(&sb, (unsigned)cp);
                    break;
                }
                default: {
                    char t[2] = {c, 0};
                    sb_free(&sb);
                    perr(p, "S0103", (int)p->pos, t, NULL);
                }
                }
            } else if (c == q) {
                p->pos++;
                jnode *t = tok(p, N_STRING, "(literal)");
                t->value = ja_track_json(p->arena, json_stringn_nocheck(sb.data, sb.len));
                t->str = ja_strndup(p->arena, sb.data, sb.len);
                sb_free(&sb);
                return t;
            } else {
                sb_putc(&sb, c);
            }
            p->pos++;
        }
        sb_free(&sb);
        perr(p, "S0101", (int)p->pos, NULL, NULL);
    }
    if (isdigit((unsigned char)c)) {
        size_t i = p->pos;
        if (s[i] == '0') i++;
        else while (i < p->len && isdigit((unsigned char)s[i])) i++;
        if (i + 1 < p->len && s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
            i++;
            while (i < p->len && isdigit((unsigned char)s[i])) i++;
        }
        if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
            size_t j = i + 1;
            if (j < p->len && (s[j] == '+' || s[j] == '-')) j++;
            if (j < p->len && isdigit((unsigned char)s[j])) {
                while (j < p->len && isdigit((unsigned char)s[j])) j++;
                i = j;
            }
        }
        char *numtxt = ja_strndup(p->arena, s + p->pos, i - p->pos);
        double d = strtod(numtxt, NULL);
        if (!isfinite(d)) perr(p, "S0102", (int)p->pos, numtxt, NULL);
        p->pos = i;
        jnode *t = tok(p, N_NUMBER, "(literal)");
        t->num = d;
        t->value = ja_track_json(p->arena, json_real(d));
        return t;
    }
    if (c == '`') {
        p->pos++;
        const char *end = memchr(s + p->pos, '`', p->len - p->pos);
        if (!end) {
            p->pos = p->len;
            perr(p, "S0105", (int)p->pos, NULL, NULL);
        }
        size_t st = p->pos;
        p->pos = (size_t)(end - s) + 1;
        jnode *t = tok(p, N_NAME, "(name)");
        t->str = ja_strndup(p->arena, s + st, (size_t)(end - s) - st);
        return t;
    }
    size_t i = p->pos;
    while (i < p->len && !is_ws(s[i]) && !is_op_char(s[i])) i++;
    if (s[p->pos] == '$') {
        jnode *t;
        size_t st = p->pos + 1;
        p->pos = i;
        t = tok(p, N_VARIABLE, "(name)");
        t->str = ja_strndup(p->arena, s + st, i - st);
        return t;
    }
    size_t st = p->pos;
    p->pos = i;
    size_t n = i - st;
    if ((n == 2 && !memcmp(s + st, "or", 2)) || (n == 2 && !memcmp(s + st, "in", 2)) ||
        (n == 3 && !memcmp(s + st, "and", 3))) {
        const char *id = s[st] == 'o' ? "or" : s[st] == 'i' ? "in" : "and";
        jnode *t = tok(p, R_OPERATOR, id);
        t->str = id;
        return t;
    }
    if ((n == 4 && !memcmp(s + st, "true", 4)) || (n == 5 && !memcmp(s + st, "false", 5)) ||
        (n == 4 && !memcmp(s + st, "null", 4))) {
        jnode *t = tok(p, N_VALUE, "(literal)");
        t->value = s[st] == 't' ? json_true() : s[st] == 'f' ? json_false() : json_null();
        return t;
    }
    if (n == 0) {
        /* a character the tokenizer has no rule for */
        char t[2] = {s[st], 0};
        perr(p, "S0204", (int)st, t, NULL);
    }
    jnode *t = tok(p, N_NAME, "(name)");
    t->str = ja_strndup(p->arena, s + st, n);
    return t;
}

/* Pratt parser ------------------------------------------------------------ */

static jnode *expression(P *p, int rbp);

/* The text jsonata-js shows for a token in syntax errors (its value). */
static const char *token_text(P *p, jnode *t)
{
    if (t->str) return t->str;
    if (t->type == N_NUMBER) {
        char b[32];
        crm_fmt_number(t->num, b);
        return ja_strndup(p->arena, b, strlen(b));
    }
    if (t->type == N_VALUE) return json_is_true(t->value) ? "true" : json_is_false(t->value) ? "false" : "null";
    return t->id;
}

static jnode *advance(P *p, const char *id, bool infix)
{
    if (id && strcmp(p->node->id, id)) {
        json_t *v = json_string(id);
        const char *code = !strcmp(p->node->id, "(end)") ? "S0203" : "S0202";
        const char *token = token_text(p, p->node);
        jerr_std(p->err, code, p->node->position, token, v, 0);
        json_decref(v);
        longjmp(p->fail, 1);
    }
    jnode *t = lex(p, infix);
    if (!t) {
        t = nnew(p, R_END, (int)p->len);
        t->id = "(end)";
        t->str = "(end)";
        p->node = t;
        return t;
    }
    if (t->type == R_OPERATOR) {
        if (!known_symbol(t->id)) perr(p, "S0204", t->position, t->id, NULL);
        t->lbp = symbol_lbp(t->id);
    }
    p->node = t;
    return t;
}

static bool is(P *p, const char *id) { return !strcmp(p->node->id, id); }

/* Appends to an arena array whose capacity is implied by its length: every
 * array grown here was allocated when its length was 0 or a power of two,
 * with room for twice that, so appending is amortised O(1). */
static void add_item(P *p, jnode ***arr, int *n, jnode *x)
{
    if ((*n & (*n - 1)) == 0) {
        jnode **na = ja_alloc(p->arena, sizeof(jnode *) * (size_t)(*n ? 2 * *n : 1));
        if (*n) memcpy(na, *arr, sizeof(jnode *) * (size_t)*n);
        *arr = na;
    }
    (*arr)[(*n)++] = x;
}

static jnode *nud(P *p, jnode *t)
{
    if (t->type != R_OPERATOR) return t; /* names, variables, literals, regex, end */
    const char *id = t->id;
    if (!strcmp(id, "and") || !strcmp(id, "or") || !strcmp(id, "in")) return t;
    if (!strcmp(id, "-")) {
        t->type = R_UNARY;
        t->lhs = expression(p, 70);
        return t;
    }
    if (!strcmp(id, "*")) { t->type = N_WILDCARD; return t; }
    if (!strcmp(id, "**")) { t->type = N_DESCENDANT; return t; }
    if (!strcmp(id, "%")) { t->type = N_PARENT; return t; }
    if (!strcmp(id, "(")) {
        while (!is(p, ")")) {
            add_item(p, &t->items, &t->nitems, expression(p, 0));
            if (!is(p, ";")) break;
            advance(p, ";", false);
        }
        advance(p, ")", true);
        t->type = N_BLOCK;
        return t;
    }
    if (!strcmp(id, "[")) {
        if (!is(p, "]")) {
            for (;;) {
                jnode *item = expression(p, 0);
                if (is(p, "..")) {
                    jnode *r = nnew(p, R_BINARY, p->node->position);
                    r->id = "..";
                    r->lhs = item;
                    advance(p, "..", false);
                    r->rhs = expression(p, 0);
                    item = r;
                }
                add_item(p, &t->items, &t->nitems, item);
                if (!is(p, ",")) break;
                advance(p, ",", false);
            }
        }
        advance(p, "]", true);
        t->type = R_UNARY;
        return t;
    }
    if (!strcmp(id, "{")) {
        if (!is(p, "}")) {
            for (;;) {
                jnode *k = expression(p, 0);
                advance(p, ":", false);
                jnode *v = expression(p, 0);
                int n = t->npairs;
                add_item(p, &t->keys, &n, k);
                add_item(p, &t->vals, &t->npairs, v);
                if (!is(p, ",")) break;
                advance(p, ",", false);
            }
        }
        advance(p, "}", true);
        t->type = R_UNARY;
        return t;
    }
    if (!strcmp(id, "|")) {
        t->type = N_TRANSFORM;
        t->lhs = expression(p, 0);
        advance(p, "|", false);
        t->rhs = expression(p, 0);
        if (is(p, ",")) {
            advance(p, ",", false);
            t->del = expression(p, 0);
        }
        advance(p, "|", false);
        return t;
    }
    perr(p, "S0211", t->position, id, NULL);
}

static jnode *led(P *p, jnode *t, jnode *left)
{
    const char *id = t->id;
    if (!strcmp(id, "(")) {
        t->proc = left;
        t->type = N_FUNCTION;
        if (!is(p, ")")) {
            for (;;) {
                if (p->node->type == R_OPERATOR && is(p, "?")) {
                    t->type = N_PARTIAL;
                    jnode *ph = p->node;
                    ph->type = N_PLACEHOLDER;
                    add_item(p, &t->items, &t->nitems, ph);
                    advance(p, "?", false);
                } else {
                    add_item(p, &t->items, &t->nitems, expression(p, 0));
                }
                if (!is(p, ",")) break;
                advance(p, ",", false);
            }
        }
        advance(p, ")", true);
        if (left->type == N_NAME && (!strcmp(left->str, "function") || !strcmp(left->str, "\xCE\xBB"))) {
            for (int i = 0; i < t->nitems; i++) {
                if (t->items[i]->type != N_VARIABLE) {
                    json_t *v = json_integer(i + 1);
                    jerr_std(p->err, "S0208", t->items[i]->position, t->items[i]->str, v, 0);
                    json_decref(v);
                    longjmp(p->fail, 1);
                }
            }
            t->type = N_LAMBDA;
            if (is(p, "<")) {
                int sigpos = p->node->position;
                int depth = 1;
                /* in P, not here: a lexer error in the loop longjmps past this frame */
                sb_free(&p->sig);
                sb_putc(&p->sig, '<');
                while (depth > 0 && !is(p, "{") && !is(p, "(end)")) {
                    jnode *tk = advance(p, NULL, false);
                    if (is(p, ">")) depth--;
                    else if (is(p, "<")) depth++;
                    if (tk->str) sb_puts(&p->sig, tk->str);
                }
                if (!is(p, ">")) advance(p, ">", false); /* fails: S0202/S0203 */
                advance(p, ">", false); /* lexes the token after '>', which may fail */
                char *sig = sb_take(&p->sig);
                int epos = 0;
                t->sig = jsig_parse(sig, p->arena, &epos, p->err);
                free(sig);
                if (!t->sig) {
                    p->err->position = sigpos + epos;
                    longjmp(p->fail, 1);
                }
            }
            advance(p, "{", false);
            t->body = expression(p, 0);
            advance(p, "}", false);
        }
        return t;
    }
    if (!strcmp(id, "[")) {
        if (is(p, "]")) {
            jnode *step = left;
            while (step && step->type == R_BINARY && !strcmp(step->id, "[")) step = step->lhs;
            step->keep_array = true;
            advance(p, "]", false);
            return left;
        }
        t->lhs = left;
        t->rhs = expression(p, 0);
        t->type = R_BINARY;
        advance(p, "]", true);
        return t;
    }
    if (!strcmp(id, "^")) {
        advance(p, "(", false);
        for (;;) {
            bool desc = false;
            if (is(p, "<")) advance(p, "<", false);
            else if (is(p, ">")) { desc = true; advance(p, ">", false); }
            if ((t->nterms & (t->nterms - 1)) == 0) { /* grows as add_item */
                jsortterm *nt = ja_alloc(p->arena, sizeof(jsortterm) * (size_t)(t->nterms ? 2 * t->nterms : 1));
                if (t->nterms) memcpy(nt, t->terms, sizeof(jsortterm) * (size_t)t->nterms);
                t->terms = nt;
            }
            t->terms[t->nterms].descending = desc;
            t->terms[t->nterms].expr = expression(p, 0);
            t->nterms++;
            if (!is(p, ",")) break;
            advance(p, ",", false);
        }
        advance(p, ")", false);
        t->lhs = left;
        t->type = R_BINARY;
        return t;
    }
    if (!strcmp(id, "{")) {
        if (!is(p, "}")) {
            for (;;) {
                jnode *k = expression(p, 0);
                advance(p, ":", false);
                jnode *v = expression(p, 0);
                int n = t->npairs;
                add_item(p, &t->keys, &n, k);
                add_item(p, &t->vals, &t->npairs, v);
                if (!is(p, ",")) break;
                advance(p, ",", false);
            }
        }
        advance(p, "}", true);
        t->lhs = left;
        t->type = R_BINARY;
        return t;
    }
    if (!strcmp(id, ":=")) {
        if (left->type != N_VARIABLE) perr(p, "S0212", left->position, left->str, NULL);
        t->lhs = left;
        t->rhs = expression(p, op_bp(":=") - 1);
        t->type = R_BINARY;
        return t;
    }
    if (!strcmp(id, "@") || !strcmp(id, "#")) {
        t->lhs = left;
        t->rhs = expression(p, op_bp(id));
        if (t->rhs->type != N_VARIABLE) perr(p, "S0214", t->rhs->position, id, NULL);
        t->type = R_BINARY;
        return t;
    }
    if (!strcmp(id, "?")) {
        t->type = N_CONDITION;
        t->cond = left;
        t->then = expression(p, 0);
        if (is(p, ":")) {
            advance(p, ":", false);
            t->els = expression(p, 0);
        }
        return t;
    }
    if (!strcmp(id, "?:") || !strcmp(id, "??")) {
        t->type = id[1] == ':' ? N_ELVIS : N_COALESCE;
        t->cond = left;
        t->els = expression(p, 0);
        return t;
    }
    /* plain infix operators */
    t->lhs = left;
    t->rhs = expression(p, op_bp(id));
    t->type = R_BINARY;
    return t;
}

static int max_height(int h, const jnode *n) { return n && n->height > h ? n->height : h; }

/* Sets n->height from its children's (set when they were parsed) and refuses
 * a tree deeper than MAX_NESTING. */
static void set_height(P *p, jnode *n)
{
    int h = 0;
    h = max_height(h, n->lhs);
    h = max_height(h, n->rhs);
    h = max_height(h, n->cond);
    h = max_height(h, n->then);
    h = max_height(h, n->els);
    h = max_height(h, n->del);
    h = max_height(h, n->proc);
    h = max_height(h, n->body);
    for (int i = 0; i < n->nitems; i++) h = max_height(h, n->items[i]);
    for (int i = 0; i < n->npairs; i++) {
        h = max_height(h, n->keys[i]);
        h = max_height(h, n->vals[i]);
    }
    for (int i = 0; i < n->nterms; i++) h = max_height(h, n->terms[i].expr);
    n->height = h + 1;
    if (n->height > MAX_NESTING) perr(p, "U1002", n->position, NULL, NULL);
}

static jnode *expression(P *p, int rbp)
{
    /* parsing recurses before any node is complete ("----1", "((((1"): bound that too */
    if (++p->depth > MAX_NESTING) perr(p, "U1002", p->node->position, NULL, NULL);
    jnode *t = p->node;
    advance(p, NULL, true);
    jnode *left = nud(p, t);
    set_height(p, left);
    while (rbp < p->node->lbp) {
        t = p->node;
        advance(p, NULL, false);
        left = led(p, t, left);
        set_height(p, left);
    }
    p->depth--;
    return left;
}

/* Post-parse -------------------------------------------------------------- */

static void push_slot(P *p, jnode *n, jslot *s)
{
    if (n->nseeking == n->capseeking) {
        int cap = n->capseeking ? n->capseeking * 2 : 4;
        jslot **ns = ja_alloc(p->arena, sizeof(jslot *) * (size_t)cap);
        if (n->nseeking) memcpy(ns, n->seeking, sizeof(jslot *) * (size_t)n->nseeking);
        n->seeking = ns;
        n->capseeking = cap;
    }
    n->seeking[n->nseeking++] = s;
}

static jslot *seek_parent(P *p, jnode *node, jslot *slot)
{
    switch (node->type) {
    case N_NAME:
    case N_WILDCARD:
        slot->level--;
        if (slot->level == 0) {
            if (!node->ancestor) {
                node->ancestor = slot;
            } else {
                strcpy(p->ancestry[slot->index]->slot->label, node->ancestor->label);
                node->ancestor = slot;
            }
            node->tuple = true;
        }
        break;
    case N_PARENT:
        slot->level++;
        break;
    case N_BLOCK:
        if (node->nitems > 0) {
            node->tuple = true;
            slot = seek_parent(p, node->items[node->nitems - 1], slot);
        }
        break;
    case N_PATH: {
        node->tuple = true;
        int index = node->nitems - 1;
        slot = seek_parent(p, node->items[index--], slot);
        while (slot->level > 0 && index >= 0) slot = seek_parent(p, node->items[index--], slot);
        break;
    }
    default:
        perr(p, "S0217", node->position, "", NULL);
    }
    return slot;
}

static void push_ancestry(P *p, jnode *result, jnode *value)
{
    if (value->nseeking || value->type == N_PARENT) {
        for (int i = 0; i < value->nseeking; i++) push_slot(p, result, value->seeking[i]);
        if (value->type == N_PARENT) push_slot(p, result, value->slot);
    }
}

static void resolve_ancestry(P *p, jnode *path)
{
    int index = path->nitems - 1;
    jnode *last = path->items[index];
    int nslots = last->nseeking + (last->type == N_PARENT ? 1 : 0);
    jslot **slots = ja_alloc(p->arena, sizeof(jslot *) * (size_t)(nslots + 1));
    for (int i = 0; i < last->nseeking; i++) slots[i] = last->seeking[i];
    if (last->type == N_PARENT) slots[last->nseeking] = last->slot;
    for (int is = 0; is < nslots; is++) {
        jslot *slot = slots[is];
        index = path->nitems - 2;
        while (slot->level > 0) {
            if (index < 0) {
                push_slot(p, path, slot);
                break;
            }
            jnode *step = path->items[index--];
            while (index >= 0 && step->focus && path->items[index]->focus) step = path->items[index--];
            slot = seek_parent(p, step, slot);
        }
    }
}

static jnode *process(P *p, jnode *expr);

static jnode *make_path(P *p, jnode *step)
{
    jnode *r = nnew(p, N_PATH, step->position);
    add_item(p, &r->items, &r->nitems, step);
    return r;
}

static void add_stage(P *p, jstage **arr, int *n, jstage st) /* grows as add_item */
{
    if ((*n & (*n - 1)) == 0) {
        jstage *na = ja_alloc(p->arena, sizeof(jstage) * (size_t)(*n ? 2 * *n : 1));
        if (*n) memcpy(na, *arr, sizeof(jstage) * (size_t)*n);
        *arr = na;
    }
    (*arr)[(*n)++] = st;
}

static binop binop_of(const char *id)
{
    static const struct { const char *id; binop op; } t[] = {
        {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD}, {"=", OP_EQ},
        {"!=", OP_NE}, {"<", OP_LT}, {"<=", OP_LE}, {">", OP_GT}, {">=", OP_GE}, {"&", OP_CONCAT},
        {"and", OP_AND}, {"or", OP_OR}, {"..", OP_RANGE}, {"in", OP_IN}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].id, id)) return t[i].op;
    return OP_NONE;
}

static jnode *tail_call_optimize(P *p, jnode *e)
{
    if (e->type == N_FUNCTION && !e->npreds) {
        jnode *th = nnew(p, N_LAMBDA, e->position);
        th->thunk = true;
        th->body = e;
        return th;
    }
    if (e->type == N_CONDITION) {
        e->then = tail_call_optimize(p, e->then);
        if (e->els) e->els = tail_call_optimize(p, e->els);
    } else if (e->type == N_BLOCK && e->nitems > 0) {
        e->items[e->nitems - 1] = tail_call_optimize(p, e->items[e->nitems - 1]);
    }
    return e;
}

static jnode *process_dot(P *p, jnode *expr)
{
    jnode *lstep = process(p, expr->lhs);
    jnode *result = lstep->type == N_PATH ? lstep : make_path(p, lstep);
    if (lstep->type == N_PARENT) push_slot(p, result, lstep->slot);
    jnode *rest = process(p, expr->rhs);
    if (rest->type == N_PATH) {
        for (int i = 0; i < rest->nitems; i++) add_item(p, &result->items, &result->nitems, rest->items[i]);
    } else {
        if (rest->npreds) {
            rest->stages = rest->preds;
            rest->nstages = rest->npreds;
            rest->preds = NULL;
            rest->npreds = 0;
        }
        add_item(p, &result->items, &result->nitems, rest);
    }
    /* steps a previous '.' of this path checked need no second look (a chain
     * a.b.c... would be quadratic), except the last: '@' may have marked it since */
    int from = result->nchecked > 0 ? result->nchecked - 1 : 0;
    for (int i = from; i < result->nitems; i++) {
        jnode *st = result->items[i];
        if (st->type == N_NUMBER || st->type == N_VALUE)
            perr(p, "S0213", st->position, NULL, st->value);
        if (st->type == N_STRING) st->type = N_NAME;
    }
    for (int i = from; i < result->nitems; i++)
        if (result->items[i]->keep_array) result->keep_singleton_array = true;
    result->nchecked = result->nitems;
    jnode *first = result->items[0];
    if (first->type == N_ARRAY) first->consarray = true;
    jnode *last = result->items[result->nitems - 1];
    if (last->type == N_ARRAY) last->consarray = true;
    resolve_ancestry(p, result);
    return result;
}

static jnode *process_binary(P *p, jnode *expr)
{
    const char *id = expr->id;
    jnode *result, *step;
    if (!strcmp(id, ".")) return process_dot(p, expr);
    if (!strcmp(id, "[")) {
        result = process(p, expr->lhs);
        step = result;
        bool stages = false;
        if (result->type == N_PATH) {
            step = result->items[result->nitems - 1];
            stages = true;
        }
        if (step->group) perr(p, "S0209", expr->position, NULL, NULL);
        jnode *pred = process(p, expr->rhs);
        if (pred->nseeking) {
            for (int i = 0; i < pred->nseeking; i++) {
                jslot *s = pred->seeking[i];
                if (s->level == 1) seek_parent(p, step, s);
                else s->level--;
            }
            push_ancestry(p, step, pred);
        }
        jstage st = {false, pred, NULL, expr->position};
        if (stages) add_stage(p, &step->stages, &step->nstages, st);
        else add_stage(p, &step->preds, &step->npreds, st);
        return result;
    }
    if (!strcmp(id, "{")) {
        result = process(p, expr->lhs);
        if (result->group) perr(p, "S0210", expr->position, NULL, NULL);
        jgroup *g = ja_alloc(p->arena, sizeof *g);
        g->n = expr->npairs;
        g->position = expr->position;
        g->keys = ja_alloc(p->arena, sizeof(jnode *) * (size_t)(g->n + 1));
        g->vals = ja_alloc(p->arena, sizeof(jnode *) * (size_t)(g->n + 1));
        for (int i = 0; i < g->n; i++) {
            g->keys[i] = process(p, expr->keys[i]);
            g->vals[i] = process(p, expr->vals[i]);
        }
        result->group = g;
        return result;
    }
    if (!strcmp(id, "^")) {
        result = process(p, expr->lhs);
        if (result->type != N_PATH) result = make_path(p, result);
        jnode *sort = nnew(p, N_SORT, expr->position);
        sort->nterms = expr->nterms;
        sort->terms = ja_alloc(p->arena, sizeof(jsortterm) * (size_t)(expr->nterms + 1));
        for (int i = 0; i < expr->nterms; i++) {
            jnode *e = process(p, expr->terms[i].expr);
            push_ancestry(p, sort, e);
            sort->terms[i].expr = e;
            sort->terms[i].descending = expr->terms[i].descending;
        }
        add_item(p, &result->items, &result->nitems, sort);
        resolve_ancestry(p, result);
        return result;
    }
    if (!strcmp(id, ":=")) {
        result = nnew(p, N_BIND, expr->position);
        result->lhs = process(p, expr->lhs);
        result->rhs = process(p, expr->rhs);
        result->str = result->lhs->str;
        push_ancestry(p, result, result->rhs);
        return result;
    }
    if (!strcmp(id, "@")) {
        result = process(p, expr->lhs);
        step = result;
        if (result->type == N_PATH) step = result->items[result->nitems - 1];
        if (step->nstages || step->npreds) perr(p, "S0215", expr->position, NULL, NULL);
        if (step->type == N_SORT) perr(p, "S0216", expr->position, NULL, NULL);
        if (expr->keep_array) step->keep_array = true;
        step->focus = expr->rhs->str;
        step->tuple = true;
        return result;
    }
    if (!strcmp(id, "#")) {
        result = process(p, expr->lhs);
        step = result;
        if (result->type == N_PATH) {
            step = result->items[result->nitems - 1];
        } else {
            result = make_path(p, result);
            if (step->npreds) {
                step->stages = step->preds;
                step->nstages = step->npreds;
                step->preds = NULL;
                step->npreds = 0;
            }
        }
        if (!step->nstages) {
            step->index = expr->rhs->str;
        } else {
            jstage st = {true, NULL, expr->rhs->str, expr->position};
            add_stage(p, &step->stages, &step->nstages, st);
        }
        step->tuple = true;
        return result;
    }
    if (!strcmp(id, "~>")) {
        result = nnew(p, N_APPLY, expr->position);
        result->lhs = process(p, expr->lhs);
        result->rhs = process(p, expr->rhs);
        return result;
    }
    result = nnew(p, N_BINARY, expr->position);
    result->op = binop_of(id);
    result->str = id;
    result->lhs = process(p, expr->lhs);
    result->rhs = process(p, expr->rhs);
    push_ancestry(p, result, result->lhs);
    push_ancestry(p, result, result->rhs);
    return result;
}

static jnode *process_unary(P *p, jnode *expr)
{
    jnode *result;
    if (!strcmp(expr->id, "[")) {
        result = nnew(p, N_ARRAY, expr->position);
        for (int i = 0; i < expr->nitems; i++) {
            jnode *v = process(p, expr->items[i]);
            push_ancestry(p, result, v);
            add_item(p, &result->items, &result->nitems, v);
        }
        return result;
    }
    if (!strcmp(expr->id, "{")) {
        result = nnew(p, N_OBJECT, expr->position);
        result->npairs = expr->npairs;
        result->keys = ja_alloc(p->arena, sizeof(jnode *) * (size_t)(expr->npairs + 1));
        result->vals = ja_alloc(p->arena, sizeof(jnode *) * (size_t)(expr->npairs + 1));
        for (int i = 0; i < expr->npairs; i++) {
            result->keys[i] = process(p, expr->keys[i]);
            push_ancestry(p, result, result->keys[i]);
            result->vals[i] = process(p, expr->vals[i]);
            push_ancestry(p, result, result->vals[i]);
        }
        return result;
    }
    /* unary minus */
    jnode *e = process(p, expr->lhs);
    if (e->type == N_NUMBER) {
        e->num = -e->num;
        json_real_set(e->value, e->num == 0 ? 0 : e->num);
        return e;
    }
    result = nnew(p, N_NEG, expr->position);
    result->lhs = e;
    push_ancestry(p, result, e);
    return result;
}

static jnode *process(P *p, jnode *expr)
{
    jnode *result;
    switch (expr->type) {
    case R_BINARY: result = process_binary(p, expr); break;
    case R_UNARY: result = process_unary(p, expr); break;
    case N_FUNCTION:
    case N_PARTIAL:
        result = nnew(p, expr->type, expr->position);
        for (int i = 0; i < expr->nitems; i++) {
            jnode *a = process(p, expr->items[i]);
            push_ancestry(p, result, a);
            add_item(p, &result->items, &result->nitems, a);
        }
        result->proc = process(p, expr->proc);
        break;
    case N_LAMBDA:
        result = nnew(p, N_LAMBDA, expr->position);
        result->nparams = expr->nitems;
        result->params = ja_alloc(p->arena, sizeof(char *) * (size_t)(expr->nitems + 1));
        for (int i = 0; i < expr->nitems; i++) result->params[i] = expr->items[i]->str;
        result->sig = expr->sig;
        result->body = tail_call_optimize(p, process(p, expr->body));
        break;
    case N_CONDITION:
    case N_ELVIS:
    case N_COALESCE:
        result = nnew(p, expr->type, expr->position);
        result->cond = process(p, expr->cond);
        push_ancestry(p, result, result->cond);
        if (expr->then) {
            result->then = process(p, expr->then);
            push_ancestry(p, result, result->then);
        }
        if (expr->els) {
            result->els = process(p, expr->els);
            push_ancestry(p, result, result->els);
        }
        break;
    case N_TRANSFORM:
        result = nnew(p, N_TRANSFORM, expr->position);
        result->lhs = process(p, expr->lhs);
        result->rhs = process(p, expr->rhs);
        if (expr->del) result->del = process(p, expr->del);
        break;
    case N_BLOCK:
        result = nnew(p, N_BLOCK, expr->position);
        for (int i = 0; i < expr->nitems; i++) {
            jnode *part = process(p, expr->items[i]);
            push_ancestry(p, result, part);
            if (part->consarray || (part->type == N_PATH && part->items[0]->consarray)) result->consarray = true;
            add_item(p, &result->items, &result->nitems, part);
        }
        break;
    case N_NAME:
        result = make_path(p, expr);
        if (expr->keep_array) result->keep_singleton_array = true;
        break;
    case N_PARENT: {
        result = nnew(p, N_PARENT, expr->position);
        result->slot = ja_alloc(p->arena, sizeof(jslot));
        snprintf(result->slot->label, sizeof result->slot->label, "!%d", p->ancestor_label++);
        result->slot->level = 1;
        result->slot->index = p->ancestor_index++;
        if (p->nancestry == p->capancestry) {
            int cap = p->capancestry ? p->capancestry * 2 : 8;
            jnode **na = ja_alloc(p->arena, sizeof(jnode *) * (size_t)cap);
            if (p->nancestry) memcpy(na, p->ancestry, sizeof(jnode *) * (size_t)p->nancestry);
            p->ancestry = na;
            p->capancestry = cap;
        }
        p->ancestry[p->nancestry++] = result;
        break;
    }
    case N_STRING:
    case N_NUMBER:
    case N_VALUE:
    case N_WILDCARD:
    case N_DESCENDANT:
    case N_VARIABLE:
    case N_REGEX:
        result = expr;
        break;
    case R_OPERATOR:
        if (!strcmp(expr->id, "and") || !strcmp(expr->id, "or") || !strcmp(expr->id, "in")) {
            expr->type = N_NAME;
            result = process(p, expr);
        } else {
            perr(p, "S0201", expr->position, expr->id, NULL);
        }
        break;
    case N_PLACEHOLDER:
        result = expr;
        break;
    case R_END:
        perr(p, "S0207", expr->position, NULL, NULL);
    default:
        perr(p, "S0206", expr->position, expr->id, NULL);
    }
    if (expr->keep_array) result->keep_array = true;
    return result;
}


jnode *jsonata_parse(const char *src, void **arena, jsonata_error *err)
{
    P p;
    memset(&p, 0, sizeof p);
    p.src = src;
    p.len = strlen(src);
    p.arena = arena;
    p.err = err;
    if (setjmp(p.fail)) {
        sb_free(&p.sig);
        return NULL;
    }
    advance(&p, NULL, false);
    jnode *e = expression(&p, 0);
    if (!is(&p, "(end)")) perr(&p, "S0201", p.node->position, token_text(&p, p.node), NULL);
    e = process(&p, e);
    if (e->type == N_PARENT || e->nseeking) perr(&p, "S0217", e->position, "parent", NULL);
    return e;
}
