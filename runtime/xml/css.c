/* css.c: a CSS selector engine on libxml2 trees, and cheerio's html(),
 * xml() and text() renderings (see css.h).
 *
 * A selector compiles to groups of compound selectors joined by
 * combinators; matching runs right to left from each candidate element,
 * as browsers and css-select do.
 */
#include "xml/css.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compiled form ----------------------------------------------------- */

typedef enum { A_EXISTS, A_EQ, A_WORD, A_PREFIX, A_SUFFIX, A_SUBSTR, A_DASH } attr_op;
typedef enum {
    P_FIRST_CHILD, P_LAST_CHILD, P_ONLY_CHILD, P_FIRST_OF_TYPE, P_LAST_OF_TYPE, P_NTH_CHILD, P_EMPTY, P_NOT,
    P_CONTAINS
} pseudo_kind;

typedef struct simple {
    enum { S_TYPE, S_ID, S_CLASS, S_ATTR, S_PSEUDO } kind;
    char *name;  /* type, id, class, attribute name */
    char *value; /* attribute value, :contains text */
    attr_op op;
    pseudo_kind pk;
    long a, b;   /* nth-child */
    struct compound *not;
} simple;

typedef struct compound {
    simple *s;
    size_t n;
    char comb; /* how it relates to the compound on its left: ' ', '>', '+', '~'; 0 for the first */
} compound;

typedef struct {
    compound *c;
    size_t n;
} complex_sel;

struct crm_css {
    complex_sel *g;
    size_t n;
};

static void compound_free(compound *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->s[i].name);
        free(c->s[i].value);
        if (c->s[i].not) {
            compound_free(c->s[i].not);
            free(c->s[i].not);
        }
    }
    free(c->s);
}

void crm_css_free(crm_css *css)
{
    if (!css) return;
    for (size_t i = 0; i < css->n; i++) {
        for (size_t j = 0; j < css->g[i].n; j++) compound_free(&css->g[i].c[j]);
        free(css->g[i].c);
    }
    free(css->g);
    free(css);
}

/* ---- parsing ----------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t i;
    char *err;
} parser;

static bool ident_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c >= 0x80 || c == '\\';
}

static char *ident(parser *p)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    while (ident_char((unsigned char)p->s[p->i])) {
        if (p->s[p->i] == '\\' && p->s[p->i + 1]) p->i++;
        sb_putc(&sb, p->s[p->i++]);
    }
    return sb_take(&sb);
}

static void skip_ws(parser *p)
{
    while (isspace((unsigned char)p->s[p->i])) p->i++;
}

static void fail(parser *p, const char *fmt, const char *arg)
{
    if (p->err) return;
    char buf[512];
    snprintf(buf, sizeof buf, fmt, arg);
    p->err = strdup(buf);
}

static void add_simple(compound *c, simple s)
{
    c->s = realloc(c->s, (c->n + 1) * sizeof *c->s);
    c->s[c->n++] = s;
}

static bool parse_compound(parser *p, compound *c);

static bool parse_nth(const char *arg, long *a, long *b)
{
    char t[64];
    size_t n = 0;
    for (const char *q = arg; *q && n < sizeof t - 1; q++)
        if (!isspace((unsigned char)*q)) t[n++] = (char)tolower((unsigned char)*q);
    t[n] = 0;
    if (!strcmp(t, "odd")) { *a = 2; *b = 1; return true; }
    if (!strcmp(t, "even")) { *a = 2; *b = 0; return true; }
    char *npos = strchr(t, 'n');
    char *end;
    if (!npos) {
        *a = 0;
        *b = strtol(t, &end, 10);
        return *t && !*end;
    }
    *npos = 0;
    if (!*t || !strcmp(t, "+")) *a = 1;
    else if (!strcmp(t, "-")) *a = -1;
    else {
        *a = strtol(t, &end, 10);
        if (*end) return false;
    }
    if (!npos[1]) { *b = 0; return true; }
    *b = strtol(npos + 1, &end, 10);
    return !*end && (npos[1] == '+' || npos[1] == '-');
}

static bool parse_compound(parser *p, compound *c)
{
    bool any = false;
    for (;;) {
        char ch = p->s[p->i];
        simple s;
        memset(&s, 0, sizeof s);
        if (ch == '*') {
            p->i++;
            any = true;
            continue;
        } else if (ident_char((unsigned char)ch) && !any && c->n == 0) {
            s.kind = S_TYPE;
            s.name = ident(p);
            for (char *q = s.name; *q; q++) *q = (char)tolower((unsigned char)*q);
        } else if (ch == '#' || ch == '.') {
            p->i++;
            s.kind = ch == '#' ? S_ID : S_CLASS;
            s.name = ident(p);
            if (!*s.name) {
                free(s.name);
                fail(p, "Expected name, found %s", p->s + p->i);
                return false;
            }
        } else if (ch == '[') {
            p->i++;
            skip_ws(p);
            s.kind = S_ATTR;
            s.name = ident(p);
            for (char *q = s.name; *q; q++) *q = (char)tolower((unsigned char)*q);
            if (!*s.name) {
                free(s.name);
                fail(p, "Expected name, found %s", p->s + p->i);
                return false;
            }
            skip_ws(p);
            char op = p->s[p->i];
            s.op = A_EXISTS;
            if (op == ']') {
                p->i++;
            } else {
                if (op == '=') { s.op = A_EQ; p->i++; }
                else if (op && p->s[p->i + 1] == '=' && strchr("~^$*|", op)) {
                    s.op = op == '~' ? A_WORD : op == '^' ? A_PREFIX : op == '$' ? A_SUFFIX : op == '*' ? A_SUBSTR : A_DASH;
                    p->i += 2;
                } else {
                    free(s.name);
                    fail(p, "Malformed attribute selector: %s", p->s + p->i);
                    return false;
                }
                skip_ws(p);
                char q = p->s[p->i];
                strbuf v = SB_INIT;
                sb_puts(&v, "");
                if (q == '"' || q == '\'') {
                    p->i++;
                    while (p->s[p->i] && p->s[p->i] != q) {
                        if (p->s[p->i] == '\\' && p->s[p->i + 1]) p->i++;
                        sb_putc(&v, p->s[p->i++]);
                    }
                    if (p->s[p->i] == q) p->i++;
                } else {
                    char *id = ident(p);
                    sb_puts(&v, id);
                    free(id);
                }
                s.value = sb_take(&v);
                skip_ws(p);
                if (p->s[p->i] == 'i' || p->s[p->i] == 's') p->i++, skip_ws(p);
                if (p->s[p->i] != ']') {
                    free(s.name);
                    free(s.value);
                    fail(p, "Attribute selector didn't terminate", NULL);
                    return false;
                }
                p->i++;
            }
            if (!*s.name) {
                free(s.name);
                free(s.value);
                fail(p, "Expected name, found %s", p->s + p->i);
                return false;
            }
        } else if (ch == ':') {
            p->i++;
            if (p->s[p->i] == ':') p->i++;
            char *nm = ident(p);
            for (char *q = nm; *q; q++) *q = (char)tolower((unsigned char)*q);
            char *arg = NULL;
            if (p->s[p->i] == '(') {
                int depth = 1;
                size_t st = ++p->i;
                while (p->s[p->i] && depth) {
                    if (p->s[p->i] == '(') depth++;
                    else if (p->s[p->i] == ')') depth--;
                    p->i++;
                }
                if (depth) {
                    free(nm);
                    fail(p, "Parenthesis not matched", NULL);
                    return false;
                }
                arg = strndup(p->s + st, p->i - st - 1);
            }
            s.kind = S_PSEUDO;
            bool ok = true;
            if (!strcmp(nm, "first-child")) s.pk = P_FIRST_CHILD;
            else if (!strcmp(nm, "last-child")) s.pk = P_LAST_CHILD;
            else if (!strcmp(nm, "only-child")) s.pk = P_ONLY_CHILD;
            else if (!strcmp(nm, "first-of-type")) s.pk = P_FIRST_OF_TYPE;
            else if (!strcmp(nm, "last-of-type")) s.pk = P_LAST_OF_TYPE;
            else if (!strcmp(nm, "empty")) s.pk = P_EMPTY;
            else if (!strcmp(nm, "nth-child") && arg) {
                s.pk = P_NTH_CHILD;
                ok = parse_nth(arg, &s.a, &s.b);
            } else if (!strcmp(nm, "not") && arg) {
                s.pk = P_NOT;
                s.not = calloc(1, sizeof *s.not);
                parser sub = {arg, 0, NULL};
                skip_ws(&sub);
                ok = parse_compound(&sub, s.not) && (skip_ws(&sub), !sub.s[sub.i]);
                if (sub.err) { fail(p, "%s", sub.err); free(sub.err); }
            } else if (!strcmp(nm, "contains") && arg) {
                s.pk = P_CONTAINS;
                const char *a = arg;
                size_t al = strlen(a);
                if (al >= 2 && (a[0] == '"' || a[0] == '\'') && a[al - 1] == a[0]) s.value = strndup(a + 1, al - 2);
                else s.value = strdup(a);
            } else {
                fail(p, "unmatched pseudo-class :%s", nm);
                ok = false;
            }
            if (!ok) fail(p, "Invalid argument for :%s", nm);
            free(nm);
            free(arg);
            if (!ok) {
                if (s.not) { compound_free(s.not); free(s.not); }
                free(s.value);
                return false;
            }
        } else {
            break;
        }
        add_simple(c, s);
        any = true;
    }
    return any;
}

crm_css *crm_css_parse(const char *sel, char **err)
{
    *err = NULL;
    parser p = {sel ? sel : "", 0, NULL};
    crm_css *css = calloc(1, sizeof *css);
    for (;;) {
        complex_sel cx = {NULL, 0};
        skip_ws(&p);
        char comb = 0;
        for (;;) {
            compound c = {NULL, 0, comb};
            if (!parse_compound(&p, &c)) {
                compound_free(&c);
                if (!p.err) {
                    if (p.s[p.i]) fail(&p, "Unmatched selector: %s", p.s + p.i);
                    else fail(&p, "Empty sub-selector", NULL);
                }
                break;
            }
            cx.c = realloc(cx.c, (cx.n + 1) * sizeof *cx.c);
            cx.c[cx.n++] = c;
            size_t before = p.i;
            skip_ws(&p);
            char ch = p.s[p.i];
            if (ch == '>' || ch == '+' || ch == '~') {
                comb = ch;
                p.i++;
                skip_ws(&p);
            } else if (ch == ',' || !ch) {
                break;
            } else if (p.i > before) {
                comb = ' ';
            } else {
                fail(&p, "Unmatched selector: %s", p.s + p.i);
                break;
            }
        }
        css->g = realloc(css->g, (css->n + 1) * sizeof *css->g);
        css->g[css->n++] = cx;
        if (p.err) break;
        if (p.s[p.i] == ',') {
            p.i++;
            continue;
        }
        break;
    }
    if (p.err) {
        *err = p.err;
        crm_css_free(css);
        return NULL;
    }
    return css;
}

/* ---- matching ------------------------------------------------------------------ */

static bool is_elem(const xmlNode *n) { return n && n->type == XML_ELEMENT_NODE; }

static xmlNode *prev_elem(const xmlNode *n)
{
    for (xmlNode *p = n->prev; p; p = p->prev)
        if (is_elem(p)) return p;
    return NULL;
}

static xmlNode *next_elem(const xmlNode *n)
{
    for (xmlNode *p = n->next; p; p = p->next)
        if (is_elem(p)) return p;
    return NULL;
}

static xmlNode *parent_elem(const xmlNode *n)
{
    return is_elem(n->parent) ? n->parent : NULL;
}

/* The attribute's value ("" for a bare attribute), or NULL. */
static const char *attr(const xmlNode *n, const char *name)
{
    for (xmlAttr *a = n->properties; a; a = a->next) {
        if (strcasecmp((const char *)a->name, name)) continue;
        if (a->children && a->children->content) return (const char *)a->children->content;
        return "";
    }
    return NULL;
}

static bool has_word(const char *list, const char *w)
{
    size_t wl = strlen(w);
    if (!wl) return false;
    for (const char *p = list; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        const char *e = p;
        while (*e && !isspace((unsigned char)*e)) e++;
        if ((size_t)(e - p) == wl && !memcmp(p, w, wl)) return true;
        p = e;
    }
    return false;
}

static void text_of(strbuf *sb, const xmlNode *n, bool skip_scripts);

static bool match_compound(const compound *c, const xmlNode *n)
{
    for (size_t i = 0; i < c->n; i++) {
        const simple *s = &c->s[i];
        switch (s->kind) {
        case S_TYPE:
            if (strcasecmp((const char *)n->name, s->name)) return false;
            break;
        case S_ID: {
            const char *v = attr(n, "id");
            if (!v || strcmp(v, s->name)) return false;
            break;
        }
        case S_CLASS: {
            const char *v = attr(n, "class");
            if (!v || !has_word(v, s->name)) return false;
            break;
        }
        case S_ATTR: {
            const char *v = attr(n, s->name);
            if (!v) return false;
            size_t vl = strlen(v), sl = s->value ? strlen(s->value) : 0;
            switch (s->op) {
            case A_EXISTS: break;
            case A_EQ: if (strcmp(v, s->value)) return false; break;
            case A_WORD: if (!has_word(v, s->value)) return false; break;
            case A_PREFIX: if (!sl || strncmp(v, s->value, sl)) return false; break;
            case A_SUFFIX: if (!sl || vl < sl || strcmp(v + vl - sl, s->value)) return false; break;
            case A_SUBSTR: if (!sl || !strstr(v, s->value)) return false; break;
            case A_DASH: if (strncmp(v, s->value, sl) || (v[sl] && v[sl] != '-')) return false; break;
            }
            break;
        }
        case S_PSEUDO:
            switch (s->pk) {
            case P_FIRST_CHILD: if (prev_elem(n)) return false; break;
            case P_LAST_CHILD: if (next_elem(n)) return false; break;
            case P_ONLY_CHILD: if (prev_elem(n) || next_elem(n)) return false; break;
            case P_FIRST_OF_TYPE:
                for (xmlNode *p = prev_elem(n); p; p = prev_elem(p))
                    if (!strcmp((const char *)p->name, (const char *)n->name)) return false;
                break;
            case P_LAST_OF_TYPE:
                for (xmlNode *p = next_elem(n); p; p = next_elem(p))
                    if (!strcmp((const char *)p->name, (const char *)n->name)) return false;
                break;
            case P_EMPTY:
                for (xmlNode *k = n->children; k; k = k->next)
                    if (is_elem(k) || ((k->type == XML_TEXT_NODE || k->type == XML_CDATA_SECTION_NODE) && k->content &&
                                       *k->content))
                        return false;
                break;
            case P_NTH_CHILD: {
                long pos = 1;
                for (xmlNode *p = prev_elem(n); p; p = prev_elem(p)) pos++;
                if (s->a == 0) {
                    if (pos != s->b) return false;
                } else {
                    long d = pos - s->b;
                    if (d % s->a != 0 || d / s->a < 0) return false;
                }
                break;
            }
            case P_NOT:
                if (match_compound(s->not, n)) return false;
                break;
            case P_CONTAINS: {
                strbuf t = SB_INIT;
                sb_puts(&t, "");
                text_of(&t, n, false);
                bool ok = strstr(t.data, s->value) != NULL;
                sb_free(&t);
                if (!ok) return false;
                break;
            }
            }
            break;
        }
    }
    return true;
}

/* Whether n matches cx.c[0..k]. */
static bool match_from(const complex_sel *cx, long k, const xmlNode *n)
{
    if (!match_compound(&cx->c[k], n)) return false;
    if (k == 0) return true;
    switch (cx->c[k].comb) {
    case '>': {
        xmlNode *p = parent_elem(n);
        return p && match_from(cx, k - 1, p);
    }
    case '+': {
        xmlNode *p = prev_elem(n);
        return p && match_from(cx, k - 1, p);
    }
    case '~':
        for (xmlNode *p = prev_elem(n); p; p = prev_elem(p))
            if (match_from(cx, k - 1, p)) return true;
        return false;
    default:
        for (xmlNode *p = parent_elem(n); p; p = parent_elem(p))
            if (match_from(cx, k - 1, p)) return true;
        return false;
    }
}

typedef struct {
    xmlNode **v;
    size_t n, cap;
} nodelist;

static void walk(const crm_css *css, xmlNode *n, nodelist *out)
{
    for (; n; n = n->next) {
        if (!is_elem(n)) continue;
        for (size_t g = 0; g < css->n; g++) {
            if (css->g[g].n && match_from(&css->g[g], (long)css->g[g].n - 1, n)) {
                if (out->n == out->cap) {
                    out->cap = out->cap ? out->cap * 2 : 16;
                    out->v = realloc(out->v, out->cap * sizeof *out->v);
                }
                out->v[out->n++] = n;
                break;
            }
        }
        walk(css, n->children, out);
    }
}

size_t crm_css_select(const crm_css *css, xmlNode *root, xmlNode ***out)
{
    nodelist l = {NULL, 0, 0};
    if (root) {
        xmlNode *save = root->next;
        root->next = NULL; /* walk root and its subtree only */
        walk(css, root, &l);
        root->next = save;
    }
    *out = l.v;
    return l.n;
}

/* ---- renderings ---------------------------------------------------------------------- */

static bool is_raw_text(const char *name)
{
    static const char *const raw[] = {"style", "script", "xmp", "iframe", "noembed", "noframes", "plaintext", "noscript", NULL};
    for (int i = 0; raw[i]; i++)
        if (!strcasecmp(name, raw[i])) return true;
    return false;
}

static bool is_void(const char *name)
{
    static const char *const v[] = {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr",
                                    "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr", NULL};
    for (int i = 0; v[i]; i++)
        if (!strcasecmp(name, v[i])) return true;
    return false;
}

static void text_of(strbuf *sb, const xmlNode *n, bool skip_scripts)
{
    for (const xmlNode *k = n->children; k; k = k->next) {
        if (k->type == XML_TEXT_NODE || k->type == XML_CDATA_SECTION_NODE) {
            if (k->content) sb_puts(sb, (const char *)k->content);
        } else if (k->type == XML_ELEMENT_NODE) {
            if (skip_scripts && (!strcasecmp((const char *)k->name, "script") || !strcasecmp((const char *)k->name, "style")))
                continue;
            text_of(sb, k, skip_scripts);
        }
    }
}

void crm_html_text(strbuf *sb, const xmlNode *el)
{
    text_of(sb, el, true);
}

/* parse5's escaping: text & nbsp < >, attributes & nbsp " */
static void esc5(strbuf *sb, const char *s, bool in_attr)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '&') sb_puts(sb, "&amp;");
        else if (p[0] == 0xc2 && p[1] == 0xa0) { sb_puts(sb, "&nbsp;"); p++; }
        else if (!in_attr && *p == '<') sb_puts(sb, "&lt;");
        else if (!in_attr && *p == '>') sb_puts(sb, "&gt;");
        else if (in_attr && *p == '"') sb_puts(sb, "&quot;");
        else sb_putc(sb, (char)*p);
    }
}

static const char *attr_value(const xmlAttr *a)
{
    return a->children && a->children->content ? (const char *)a->children->content : "";
}

static void html5_node(strbuf *sb, const xmlNode *n, const xmlNode *parent)
{
    switch (n->type) {
    case XML_ELEMENT_NODE:
        sb_printf(sb, "<%s", (const char *)n->name);
        for (const xmlAttr *a = n->properties; a; a = a->next) {
            sb_printf(sb, " %s=\"", (const char *)a->name);
            esc5(sb, attr_value(a), true);
            sb_putc(sb, '"');
        }
        sb_putc(sb, '>');
        if (is_void((const char *)n->name)) return;
        for (const xmlNode *k = n->children; k; k = k->next) html5_node(sb, k, n);
        sb_printf(sb, "</%s>", (const char *)n->name);
        break;
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        if (!n->content) break;
        if (parent && is_raw_text((const char *)parent->name)) sb_puts(sb, (const char *)n->content);
        else esc5(sb, (const char *)n->content, false);
        break;
    case XML_COMMENT_NODE:
        sb_printf(sb, "<!--%s-->", n->content ? (const char *)n->content : "");
        break;
    default:
        break;
    }
}

void crm_html_inner(strbuf *sb, const xmlNode *el)
{
    for (const xmlNode *k = el->children; k; k = k->next) html5_node(sb, k, el);
}

/* entities' encodeXML: & < > " ' by name, non-ASCII as &#xHEX; */
static void esc_xml(strbuf *sb, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            switch (c) {
            case '&': sb_puts(sb, "&amp;"); break;
            case '<': sb_puts(sb, "&lt;"); break;
            case '>': sb_puts(sb, "&gt;"); break;
            case '"': sb_puts(sb, "&quot;"); break;
            case '\'': sb_puts(sb, "&apos;"); break;
            default: sb_putc(sb, (char)c);
            }
            p++;
            continue;
        }
        int extra = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
        unsigned cp = c & (0x3f >> extra);
        p++;
        for (int i = 0; i < extra && p < e; i++) cp = (cp << 6) | (*p++ & 0x3f);
        sb_printf(sb, "&#x%X;", cp);
    }
}

static void xml_node(strbuf *sb, const xmlNode *n, const char *text, size_t tlen)
{
    switch (n->type) {
    case XML_ELEMENT_NODE:
        if (!strcmp((const char *)n->name, "html") || !strcmp((const char *)n->name, "head") ||
            !strcmp((const char *)n->name, "body")) {
            /* parsed again as a fragment, these tags are dropped */
            for (const xmlNode *k = n->children; k; k = k->next)
                xml_node(sb, k, k->content ? (const char *)k->content : "", k->content ? strlen((const char *)k->content) : 0);
            break;
        }
        sb_printf(sb, "<%s", (const char *)n->name);
        for (const xmlAttr *a = n->properties; a; a = a->next) {
            const char *v = attr_value(a);
            sb_printf(sb, " %s=\"", (const char *)a->name);
            esc_xml(sb, v, strlen(v));
            sb_putc(sb, '"');
        }
        if (!n->children) {
            sb_puts(sb, "/>");
            break;
        }
        sb_putc(sb, '>');
        for (const xmlNode *k = n->children; k; k = k->next)
            xml_node(sb, k, k->content ? (const char *)k->content : "", k->content ? strlen((const char *)k->content) : 0);
        sb_printf(sb, "</%s>", (const char *)n->name);
        break;
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        esc_xml(sb, text, tlen);
        break;
    case XML_COMMENT_NODE:
        sb_printf(sb, "<!--%s-->", n->content ? (const char *)n->content : "");
        break;
    default:
        break;
    }
}

static bool js_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void crm_html_inner_xml(strbuf *sb, const xmlNode *el)
{
    /* the first and last children lose their edge whitespace (trim());
     * a child left empty disappears */
    const xmlNode *first = el->children, *last = NULL;
    for (const xmlNode *k = el->children; k; k = k->next) last = k;
    for (const xmlNode *k = el->children; k; k = k->next) {
        bool text = k->type == XML_TEXT_NODE || k->type == XML_CDATA_SECTION_NODE;
        if (!text) {
            xml_node(sb, k, NULL, 0);
            continue;
        }
        const char *s = k->content ? (const char *)k->content : "";
        size_t b = 0, e = strlen(s);
        if (k == first)
            while (b < e && js_space((unsigned char)s[b])) b++;
        if (k == last)
            while (e > b && js_space((unsigned char)s[e - 1])) e--;
        xml_node(sb, k, s + b, e - b);
    }
}
