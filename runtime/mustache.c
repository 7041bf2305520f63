/* mustache.c: mustache.js 4.2's parser and writer (see mustache.h).
 *
 * The parser follows mustache.js's parseTemplate step by step, because its
 * whitespace rules are defined by that code rather than by the spec: text
 * becomes one token per character; a line whose only tokens are whitespace
 * and non-output tags (sections, comments, set delimiters, partials) loses
 * its whitespace tokens, newline included ("standalone" lines); adjacent text
 * tokens are then merged and sections nested. Tag patterns are literal
 * delimiters with JavaScript's \s around them. Positions in error messages
 * count UTF-16 code units, as JavaScript's do.
 *
 * The writer resolves names on a stack of views: "." is the top view; a
 * dotted name is walked from each view in turn and hits when the last step
 * finds an own property (so {{a.b}} falls through to an outer view only
 * when a view lacks the whole path's end); String() renders values,
 * HTML-escaped unless triple or &. */
#define _POSIX_C_SOURCE 200809L
#include "mustache.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"

typedef struct mtok {
    char type; /* 't' text, 'n' name, '&' raw, '#', '^', '/', '!', '=', '>' */
    char *value;
    size_t vlen;  /* strlen(value), set once the template is parsed */
    size_t start;
    bool deleted;
    struct mtok *kids;
    size_t nkids;
} mtok;

struct crm_mustache {
    mtok *toks;
    size_t n;
};

/* JavaScript's \s at p: the byte length of the whitespace character, or 0. */
static size_t ws_len(const char *p, const char *end)
{
    unsigned char c = (unsigned char)*p;
    if (p >= end) return 0;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
    if (c < 0x80) return 0;
    if (end - p >= 2 && c == 0xC2 && (unsigned char)p[1] == 0xA0) return 2; /* U+00A0 */
    if (end - p >= 3) {
        unsigned c1 = (unsigned char)p[1], c2 = (unsigned char)p[2];
        unsigned cp = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F);
        if ((c & 0xF0) == 0xE0 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
             cp == 0x205F || cp == 0x3000 || cp == 0xFEFF))
            return 3;
    }
    return 0;
}

static size_t skip_ws(const char *p, const char *end)
{
    const char *q = p;
    size_t l;
    while (q < end && (l = ws_len(q, end))) q += l;
    return (size_t)(q - p);
}

/* The first match of /\s*LIT/ in [p, end): its start, or NULL. *mlen: match length. */
static const char *search_ws_lit(const char *p, const char *end, const char *lit, size_t litlen, size_t *mlen)
{
    for (const char *q = p; q + litlen <= end; q++) {
        if (memcmp(q, lit, litlen)) continue;
        /* back over the whitespace run before q (within [p, q)) */
        const char *s = q;
        for (;;) {
            const char *b = NULL;
            for (size_t k = 1; k <= 3 && s - k >= p; k++)
                if (ws_len(s - k, end) == k) {
                    b = s - k;
                    break;
                }
            if (!b) break;
            s = b;
        }
        *mlen = (size_t)(q - s) + litlen;
        return s;
    }
    return NULL;
}

typedef struct {
    const char *text, *end;
    const char *pos;
    char *open, *close, *close_curly;
    size_t olen, clen, cclen;
    mtok *toks;
    size_t n, cap;
    char *err;
} P;

static void push(P *p, char type, const char *v, size_t vlen, size_t start)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->toks = realloc(p->toks, p->cap * sizeof *p->toks);
    }
    mtok *t = &p->toks[p->n++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->value = strndup(v, vlen);
    t->start = start;
}

static size_t u16pos(const P *p, const char *at) { return crm_utf16_len(p->text, (size_t)(at - p->text)); }

static void set_err(P *p, const char *fmt, const char *name, size_t pos)
{
    if (p->err) return;
    strbuf sb = SB_INIT;
    if (name) sb_printf(&sb, fmt, name, pos);
    else sb_printf(&sb, fmt, pos);
    p->err = sb_take(&sb);
}

static int compile_tags(P *p, const char *v, size_t vlen)
{
    /* value.split(/\s+/, 2) must give exactly two parts */
    const char *e = v + vlen, *a = v;
    const char *a_end = a;
    while (a_end < e && !ws_len(a_end, e)) a_end++;
    const char *b = a_end + skip_ws(a_end, e);
    const char *b_end = b;
    while (b_end < e && !ws_len(b_end, e)) b_end++;
    if (a_end == e) {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "Invalid tags: %.*s", (int)(a_end - a), a);
        if (!p->err) p->err = sb_take(&sb);
        else sb_free(&sb);
        return -1;
    }
    free(p->open);
    free(p->close);
    free(p->close_curly);
    p->open = strndup(a, (size_t)(a_end - a));
    p->olen = (size_t)(a_end - a);
    p->close = strndup(b, (size_t)(b_end - b));
    p->clen = (size_t)(b_end - b);
    strbuf cc = SB_INIT;
    sb_putc(&cc, '}');
    sb_putn(&cc, b, (size_t)(b_end - b));
    p->cclen = cc.len;
    p->close_curly = sb_take(&cc);
    return 0;
}

static void set_lens(mtok *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t[i].vlen = strlen(t[i].value);
        set_lens(t[i].kids, t[i].nkids);
    }
}

static void free_toks(mtok *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].value);
        free_toks(t[i].kids, t[i].nkids);
    }
    free(t);
}

/* nestTokens(squashTokens(tokens)) */
static mtok *nest(mtok *flat, size_t n, size_t *i, size_t *count)
{
    mtok *out = NULL;
    size_t k = 0, cap = 0;
    while (*i < n) {
        mtok *t = &flat[(*i)++];
        if (t->deleted) {
            free(t->value);
            continue;
        }
        if (t->type == '/') {
            free(t->value);
            break;
        }
        if (t->type == 't' && k && out[k - 1].type == 't') {
            size_t a = strlen(out[k - 1].value), b = strlen(t->value);
            out[k - 1].value = realloc(out[k - 1].value, a + b + 1);
            memcpy(out[k - 1].value + a, t->value, b + 1);
            free(t->value);
            continue;
        }
        if (k == cap) {
            cap = cap ? cap * 2 : 8;
            out = realloc(out, cap * sizeof *out);
        }
        out[k] = *t;
        if (t->type == '#' || t->type == '^') out[k].kids = nest(flat, n, i, &out[k].nkids);
        k++;
    }
    *count = k;
    return out;
}

crm_mustache *crm_mustache_parse(const char *text, size_t len, char **err)
{
    if (err) *err = NULL;
    P p = {.text = text, .end = text + len, .pos = text};
    compile_tags(&p, "{{ }}", 5);
    size_t *spaces = NULL, nsp = 0, spcap = 0;
    size_t *sections = NULL, nsec = 0, seccap = 0;
    bool has_tag = false, non_space = false;
#define STRIP_SPACE()                                                                                                  \
    do {                                                                                                               \
        if (has_tag && !non_space)                                                                                     \
            while (nsp) p.toks[spaces[--nsp]].deleted = true;                                                          \
        else                                                                                                           \
            nsp = 0;                                                                                                   \
        has_tag = false;                                                                                               \
        non_space = false;                                                                                             \
    } while (0)
    while (p.pos < p.end && !p.err) {
        /* text up to the opening tag */
        const char *o = NULL;
        for (const char *q = p.pos; q + p.olen <= p.end; q++)
            if (!memcmp(q, p.open, p.olen)) {
                o = q;
                break;
            }
        const char *stop = o ? o : p.end;
        while (p.pos < stop) {
            size_t cl = 1;
            unsigned char c = (unsigned char)*p.pos;
            if (c >= 0xF0) cl = 4;
            else if (c >= 0xE0) cl = 3;
            else if (c >= 0xC0) cl = 2;
            if (p.pos + cl > stop) cl = (size_t)(stop - p.pos);
            bool ws = ws_len(p.pos, p.end) > 0;
            if (ws) {
                if (nsp == spcap) spaces = realloc(spaces, (spcap = spcap ? spcap * 2 : 16) * sizeof *spaces);
                spaces[nsp++] = p.n;
            } else {
                non_space = true;
            }
            push(&p, 't', p.pos, cl, (size_t)(p.pos - text));
            bool nl = *p.pos == '\n';
            p.pos += cl;
            if (nl) STRIP_SPACE();
        }
        if (!o) break;
        const char *start = p.pos;
        p.pos += p.olen;
        p.pos += skip_ws(p.pos, p.end);
        has_tag = true;
        char type = 'n';
        if (p.pos < p.end && strchr("#^/>{&=!", *p.pos)) type = *p.pos++;
        p.pos += skip_ws(p.pos, p.end);
        const char *v = p.pos, *vend;
        size_t ml;
        if (type == '=') {
            const char *eq = search_ws_lit(p.pos, p.end, "=", 1, &ml);
            vend = eq ? eq : p.end;
            p.pos = eq ? eq + ml : p.end;
            const char *c = search_ws_lit(p.pos, p.end, p.close, p.clen, &ml);
            p.pos = c ? c : p.end;
        } else if (type == '{') {
            const char *c = search_ws_lit(p.pos, p.end, p.close_curly, p.cclen, &ml);
            vend = c ? c : p.end;
            p.pos = vend;
            size_t w = skip_ws(p.pos, p.end);
            if (p.pos + w < p.end && p.pos[w] == '}') p.pos += w + 1;
            c = search_ws_lit(p.pos, p.end, p.close, p.clen, &ml);
            p.pos = c ? c : p.end;
            type = '&';
        } else {
            const char *c = search_ws_lit(p.pos, p.end, p.close, p.clen, &ml);
            vend = c ? c : p.end;
            p.pos = vend;
        }
        /* the closing tag, right here */
        size_t w = skip_ws(p.pos, p.end);
        if (p.pos + w + p.clen > p.end || memcmp(p.pos + w, p.close, p.clen)) {
            set_err(&p, "Unclosed tag at %zu", NULL, u16pos(&p, p.end));
            break;
        }
        p.pos += w + p.clen;
        push(&p, type, v, (size_t)(vend - v), (size_t)(start - text));
        if (type == '#' || type == '^') {
            if (nsec == seccap) sections = realloc(sections, (seccap = seccap ? seccap * 2 : 8) * sizeof *sections);
            sections[nsec++] = p.n - 1;
        } else if (type == '/') {
            if (!nsec) {
                strbuf sb = SB_INIT;
                sb_printf(&sb, "Unopened section \"%.*s\" at %zu", (int)(vend - v), v, u16pos(&p, start));
                p.err = sb_take(&sb);
                break;
            }
            mtok *open = &p.toks[sections[--nsec]];
            if (strcmp(open->value, p.toks[p.n - 1].value)) {
                set_err(&p, "Unclosed section \"%s\" at %zu", open->value, u16pos(&p, start));
                break;
            }
        } else if (type == 'n' || type == '&') {
            non_space = true;
        } else if (type == '=') {
            if (compile_tags(&p, v, (size_t)(vend - v)) < 0) break;
        }
    }
    if (!p.err) {
        STRIP_SPACE();
        if (nsec) set_err(&p, "Unclosed section \"%s\" at %zu", p.toks[sections[nsec - 1]].value, u16pos(&p, p.pos));
    }
#undef STRIP_SPACE
    free(spaces);
    free(sections);
    free(p.open);
    free(p.close);
    free(p.close_curly);
    if (p.err) {
        for (size_t i = 0; i < p.n; i++) free(p.toks[i].value);
        free(p.toks);
        if (err) *err = p.err;
        else free(p.err);
        return NULL;
    }
    crm_mustache *m = calloc(1, sizeof *m);
    size_t i = 0;
    m->toks = nest(p.toks, p.n, &i, &m->n);
    free(p.toks);
    set_lens(m->toks, m->n);
    return m;
}

void crm_mustache_free(crm_mustache *m)
{
    if (!m) return;
    free_toks(m->toks, m->n);
    free(m);
}

static void names_of(const mtok *t, size_t n, void (*fn)(const char *, void *), void *arg)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == 't') continue;
        fn(t[i].value, arg);
        if (t[i].type == '#' || t[i].type == '^') {
            names_of(t[i].kids, t[i].nkids, fn, arg);
        }
    }
}

void crm_mustache_names(const crm_mustache *m, void (*fn)(const char *name, void *arg), void *arg)
{
    if (m) names_of(m->toks, m->n, fn, arg);
}

static bool has_partial(const mtok *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].type == '>' || has_partial(t[i].kids, t[i].nkids)) return true;
    return false;
}

bool crm_mustache_has_partial(const crm_mustache *m) { return m && has_partial(m->toks, m->n); }

/* Rendering ------------------------------------------------------------------------- */

typedef struct {
    const json_t *views[64];
    int depth;
    const crm_mustache_opts *opts;
    json_t *owned; /* values made while looking up (string lengths, characters); made when needed */
    strbuf out;
} R;

static bool canon_index(const char *s, size_t *idx)
{
    if (!*s || (s[0] == '0' && s[1])) return false;
    size_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (size_t)(*p - '0');
        if (v > 1u << 30) return false;
    }
    *idx = v;
    return true;
}

/* Keeps x (a new reference) alive until the rendering ends; returns it. */
static json_t *own(R *r, json_t *x)
{
    if (!x) return NULL;
    if (!r->owned) r->owned = json_array();
    json_array_append_new(r->owned, x);
    return x;
}

/* JavaScript's v[key] for a JSON value, NULL for undefined. */
static const json_t *get_prop(R *r, const json_t *v, const char *key)
{
    size_t idx;
    if (!v) return NULL;
    if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        json_t *x = NULL;
        if (!strcmp(key, "length")) x = crm_num((double)n);
        else if (canon_index(key, &idx) && idx < n) x = crm_num(d[idx]);
        return own(r, x);
    }
    if (json_is_object(v)) {
        json_t *x = json_object_get(v, key);
        return x ? x : crm_error_member(v, key, strlen(key)); /* err.message */
    }
    if (json_is_array(v)) {
        if (!strcmp(key, "length")) {
            return own(r, crm_num((double)json_array_size(v)));
        }
        return canon_index(key, &idx) ? json_array_get(v, idx) : NULL;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        json_t *x = NULL;
        if (!strcmp(key, "length")) {
            x = crm_num((double)crm_utf16_len(s, n));
        } else if (canon_index(key, &idx)) {
            size_t a = crm_utf16_prefix(s, n, idx), b = crm_utf16_prefix(s, n, idx + 1);
            if (b > a) x = json_stringn(s + a, b - a);
        }
        return own(r, x);
    }
    return NULL;
}

/* hasProperty(v, key) || primitiveHasOwnProperty(v, key) */
static bool has_prop(R *r, const json_t *v, const char *key)
{
    if (!v || json_is_null(v)) return false;
    if (json_is_object(v) && !crm_is_buf(v)) return get_prop(r, v, key) != NULL;
    if (json_is_array(v) || crm_is_buf(v) || json_is_string(v)) return get_prop(r, v, key) != NULL;
    return false;
}

static const json_t *lookup(R *r, const char *name, bool *from_views)
{
    *from_views = false;
    if (!strcmp(name, ".")) {
        *from_views = true;
        return r->views[r->depth - 1];
    }
    const char *dot = strchr(name, '.');
    for (int d = r->depth - 1; d >= 0; d--) {
        const json_t *view = r->views[d];
        const json_t *iv;
        bool hit = false;
        if (dot && dot > name) {
            iv = view;
            const char *p = name;
            while (iv && !json_is_null(iv)) {
                const char *q = strchr(p, '.');
                size_t l = q ? (size_t)(q - p) : strlen(p);
                char small[64];
                char *key = l < sizeof small ? small : malloc(l + 1);
                memcpy(key, p, l);
                key[l] = 0;
                if (!q) hit = has_prop(r, iv, key);
                iv = get_prop(r, iv, key);
                if (key != small) free(key);
                if (!q) break;
                p = q + 1;
            }
        } else {
            iv = get_prop(r, view, name);
            hit = view && (json_is_object(view) || json_is_array(view)) && !json_is_null(view) &&
                  (json_is_object(view) && !crm_is_buf(view) ? iv != NULL : has_prop(r, view, name));
        }
        if (hit) {
            *from_views = true;
            return iv;
        }
    }
    if (r->opts && r->opts->fallback) return r->opts->fallback(name, r->opts->arg);
    return NULL;
}

static const json_t *lookup_value(R *r, const char *name)
{
    bool from_views;
    const json_t *v = lookup(r, name, &from_views);
    if (v && from_views && r->depth == 1 && r->opts && r->opts->json_escape_root && json_is_string(v)) {
        strbuf sb = SB_INIT;
        sb_puts(&sb, "");
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n; i++) {
            switch (s[i]) {
            case '\\': sb_puts(&sb, "\\\\"); break;
            case '\n': sb_puts(&sb, "\\n"); break;
            case '\t': sb_puts(&sb, "\\t"); break;
            case '\r': sb_puts(&sb, "\\r"); break;
            case '\f': sb_puts(&sb, "\\f"); break;
            case '\b': sb_puts(&sb, "\\b"); break;
            default: sb_putc(&sb, s[i]);
            }
        }
        json_t *x = json_stringn(sb.data, sb.len);
        sb_free(&sb);
        return own(r, x);
    }
    return v;
}

static void put_string_of(strbuf *out, const json_t *v, bool escape)
{
    if (json_is_number(v)) {
        char nb[32];
        sb_puts(out, crm_fmt_number(crm_num_value(v), nb));
        return;
    }
    size_t n;
    const char *s;
    char *tmp = NULL;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else {
        tmp = crm_to_string(v);
        s = tmp;
        n = strlen(tmp);
    }
    if (!escape) {
        sb_putn(out, s, n);
    } else {
        size_t run = 0; /* the start of the characters not yet written */
        for (size_t i = 0; i < n; i++) {
            switch (s[i]) {
            case '&': case '<': case '>': case '"': case '\'': case '/': case '`': case '=': break;
            default: continue;
            }
            sb_putn(out, s + run, i - run);
            run = i + 1;
            switch (s[i]) {
            case '&': sb_puts(out, "&amp;"); break;
            case '<': sb_puts(out, "&lt;"); break;
            case '>': sb_puts(out, "&gt;"); break;
            case '"': sb_puts(out, "&quot;"); break;
            case '\'': sb_puts(out, "&#39;"); break;
            case '/': sb_puts(out, "&#x2F;"); break;
            case '`': sb_puts(out, "&#x60;"); break;
            case '=': sb_puts(out, "&#x3D;"); break;
            }
        }
        sb_putn(out, s + run, n - run);
    }
    free(tmp);
}

static void render(R *r, const mtok *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const mtok *k = &t[i];
        switch (k->type) {
        case 't': sb_putn(&r->out, k->value, k->vlen); break;
        case 'n':
        case '&': {
            const json_t *v = lookup_value(r, k->value);
            if (v && !json_is_null(v)) put_string_of(&r->out, v, k->type == 'n' && !json_is_number(v));
            break;
        }
        case '#': {
            const json_t *v = lookup_value(r, k->value);
            if (!crm_truthy(v)) break;
            if (r->depth >= 64) break;
            if (json_is_array(v)) {
                size_t j;
                json_t *e;
                json_array_foreach(v, j, e)
                {
                    r->views[r->depth++] = e;
                    render(r, k->kids, k->nkids);
                    r->depth--;
                }
            } else if (json_is_object(v) || json_is_string(v) || json_is_number(v)) {
                r->views[r->depth++] = v;
                render(r, k->kids, k->nkids);
                r->depth--;
            } else {
                render(r, k->kids, k->nkids);
            }
            break;
        }
        case '^': {
            const json_t *v = lookup_value(r, k->value);
            if (!crm_truthy(v) || (json_is_array(v) && !json_array_size(v))) render(r, k->kids, k->nkids);
            break;
        }
        default: break; /* comments, set delimiters, partials */
        }
    }
}

void crm_mustache_write_sb(const crm_mustache *m, const json_t *view, const crm_mustache_opts *opts, strbuf *out)
{
    R r = {.opts = opts, .owned = NULL, .out = *out};
    r.views[0] = view;
    r.depth = 1;
    sb_puts(&r.out, "");
    if (m) render(&r, m->toks, m->n);
    json_decref(r.owned);
    *out = r.out;
}

char *crm_mustache_write(const crm_mustache *m, const json_t *view, const crm_mustache_opts *opts)
{
    strbuf out = SB_INIT;
    crm_mustache_write_sb(m, view, opts, &out);
    return sb_take(&out);
}
