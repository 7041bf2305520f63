/* xml.c: xml2js's mapping on libxml2 (see xml.h).
 *
 * libxml2 reads the document in recovery mode; the first error it reports
 * is turned into the error sax-js (xml2js's parser) gives for the same
 * mistake, with sax's 0-based line and its column just past the offending
 * character. Like xml2js, anything after the root element is ignored.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"
#include "xml/xml.h"
#include "xml/xml_lib.h"

void crm_xml_opts_default(crm_xml_opts *o)
{
    memset(o, 0, sizeof *o);
    o->attrkey = "$";
    o->charkey = "_";
    o->explicit_array = true;
    o->explicit_root = true;
}

static bool opt_bool(const json_t *options, const char *key, bool def)
{
    json_t *v = json_object_get(options, key);
    return v ? crm_truthy(v) : def;
}

void crm_xml_opts_from(crm_xml_opts *o, const json_t *options)
{
    if (!json_is_object(options)) return;
    o->explicit_array = opt_bool(options, "explicitArray", o->explicit_array);
    o->explicit_root = opt_bool(options, "explicitRoot", o->explicit_root);
    o->trim = opt_bool(options, "trim", o->trim);
    o->normalize = opt_bool(options, "normalize", o->normalize);
    o->normalize_tags = opt_bool(options, "normalizeTags", o->normalize_tags);
    o->explicit_charkey = opt_bool(options, "explicitCharkey", o->explicit_charkey);
    o->merge_attrs = opt_bool(options, "mergeAttrs", o->merge_attrs);
    o->ignore_attrs = opt_bool(options, "ignoreAttrs", o->ignore_attrs);
    json_t *e = json_object_get(options, "emptyTag");
    if (e) o->empty_tag = e;
}

/* ---- parsing ------------------------------------------------------------- */

/* assignOrPush: a first value as is (or in an array), later ones pushed. */
static void assign_or_push(json_t *obj, const char *key, json_t *v, bool explicit_array)
{
    json_t *old = json_object_get(obj, key);
    if (!old) {
        if (explicit_array) {
            json_t *a = json_array();
            json_array_append_new(a, v);
            json_object_set_new(obj, key, a);
        } else {
            json_object_set_new(obj, key, v);
        }
        return;
    }
    if (!json_is_array(old)) {
        json_t *a = json_array();
        json_array_append(a, old);
        json_object_set_new(obj, key, a);
        old = a;
    }
    json_array_append_new(old, v);
}

static char *qname(const xmlChar *prefix, const xmlChar *name, bool lower)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    if (prefix) sb_printf(&sb, "%s:", (const char *)prefix);
    sb_puts(&sb, (const char *)name);
    if (lower)
        for (size_t i = 0; i < sb.len; i++) sb.data[i] = (char)tolower((unsigned char)sb.data[i]);
    return sb_take(&sb);
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

static char *js_trim(const char *s)
{
    const char *b = s, *e = s + strlen(s);
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    return strndup(b, (size_t)(e - b));
}

/* .replace(/\s{2,}/g, " ").trim() */
static char *normalize_ws(const char *s)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (const char *p = s; *p;) {
        if (isspace((unsigned char)*p) && isspace((unsigned char)p[1])) {
            while (isspace((unsigned char)*p)) p++;
            sb_putc(&sb, ' ');
        } else {
            sb_putc(&sb, *p++);
        }
    }
    char *t = js_trim(sb.data);
    sb_free(&sb);
    return t;
}

/* An attribute's text, its entity and character references resolved. */
static json_t *attr_value(const xmlAttr *at)
{
    strbuf val = SB_INIT;
    sb_puts(&val, "");
    for (const xmlNode *c = at->children; c; c = c->next)
        if (c->content) sb_puts(&val, (const char *)c->content);
    json_t *v = json_string(val.data);
    sb_free(&val);
    return v;
}

/* Under "$" (the first of a repeated name kept, as sax does), or merged
 * into the element with mergeAttrs. v is taken. */
static void put_attr(json_t *obj, const crm_xml_opts *o, const char *k, json_t *v)
{
    if (o->merge_attrs) {
        assign_or_push(obj, k, v, o->explicit_array);
        return;
    }
    json_t *a = json_object_get(obj, o->attrkey);
    if (!a) json_object_set_new(obj, o->attrkey, a = json_object());
    if (!json_object_get(a, k)) json_object_set_new(a, k, v);
    else json_decref(v);
}

/* ---- attribute order ------------------------------------------------------ */

/* xml2js (sax) lists an element's attributes in document order, namespace
 * declarations among them; libxml2 keeps the declarations (nsDef) apart
 * from the attributes, so their order is found again in the text: a
 * scanner walks the start tags in document order as element() walks the
 * tree, and gives each element its attribute names as written. Should the
 * text and the tree ever disagree (an element out of an entity), it stops
 * and libxml2's order stays. */
typedef struct {
    const char *p, *end;
    bool dead;
    char *names[64]; /* the current start tag's attribute names */
    size_t n;
} tag_scanner;

static const char *skip_past(const char *p, const char *end, const char *stop)
{
    size_t k = strlen(stop);
    for (; p + k <= end; p++)
        if (!memcmp(p, stop, k)) return p + k;
    return end;
}

/* Past a comment, CDATA section, processing instruction, doctype or end
 * tag starting at p ('<'); p itself when a start tag starts there. */
static const char *skip_markup(const char *p, const char *end)
{
    if (end - p >= 4 && !memcmp(p, "<!--", 4)) return skip_past(p + 4, end, "-->");
    if (end - p >= 9 && !memcmp(p, "<![CDATA[", 9)) return skip_past(p + 9, end, "]]>");
    if (end - p >= 2 && p[1] == '?') return skip_past(p + 2, end, "?>");
    if (end - p >= 2 && p[1] == '/') return skip_past(p + 2, end, ">");
    if (end - p >= 2 && p[1] == '!') { /* a doctype, its internal subset in [ ] */
        int depth = 0;
        for (p += 2; p < end && !(*p == '>' && depth == 0); p++)
            depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
        return p < end ? p + 1 : end;
    }
    return p;
}

static bool name_char(char c)
{
    return c && !isspace((unsigned char)c) && c != '=' && c != '>' && c != '/' && c != '<';
}

static void scanner_clear(tag_scanner *sc)
{
    for (size_t i = 0; i < sc->n; i++) free(sc->names[i]);
    sc->n = 0;
}

/* Moves to the next start tag and reads its attribute names; false when
 * there is none or the scanner gave up. */
static bool scanner_next(tag_scanner *sc, const char *qname)
{
    scanner_clear(sc);
    if (sc->dead) return false;
    const char *p = sc->p, *end = sc->end;
    while (p < end) {
        p = memchr(p, '<', (size_t)(end - p));
        if (!p) break;
        const char *q = skip_markup(p, end);
        if (q != p) {
            p = q;
            continue;
        }
        const char *nm = ++p;
        while (p < end && name_char(*p)) p++;
        if ((size_t)(p - nm) != strlen(qname) || memcmp(nm, qname, (size_t)(p - nm)) != 0) break;
        for (;;) {
            while (p < end && isspace((unsigned char)*p)) p++;
            if (p >= end || *p == '>' || *p == '/') break;
            const char *an = p;
            while (p < end && name_char(*p)) p++;
            if (p == an) break;
            if (sc->n < sizeof sc->names / sizeof *sc->names) sc->names[sc->n++] = strndup(an, (size_t)(p - an));
            while (p < end && isspace((unsigned char)*p)) p++;
            if (p >= end || *p != '=') break;
            p++;
            while (p < end && isspace((unsigned char)*p)) p++;
            if (p >= end || (*p != '"' && *p != '\'')) break;
            const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
            p = q ? q + 1 : end;
        }
        sc->p = p;
        return true;
    }
    sc->dead = true;
    scanner_clear(sc);
    return false;
}

static json_t *element(const xmlNode *node, const crm_xml_opts *o, tag_scanner *sc, char **name_out)
{
    json_t *obj = json_object();
    strbuf text = SB_INIT;
    sb_puts(&text, "");
    bool cdata = false;
    json_object_set_new(obj, o->charkey, json_string(""));
    char *qn = qname(node->ns ? node->ns->prefix : NULL, node->name, false);
    bool ordered = sc && scanner_next(sc, qn) && node->nsDef && node->properties;
    free(qn);
    if (ordered) {
        /* as written: each name is a declaration or an attribute */
        for (size_t i = 0; i < sc->n; i++) {
            const char *k = sc->names[i];
            json_t *v = NULL;
            if (!strcmp(k, "xmlns") || !strncmp(k, "xmlns:", 6)) {
                const char *prefix = k[5] ? k + 6 : NULL;
                for (const xmlNs *ns = node->nsDef; ns && !v; ns = ns->next)
                    if (prefix ? ns->prefix && !strcmp((const char *)ns->prefix, prefix) : !ns->prefix)
                        v = json_string(ns->href ? (const char *)ns->href : "");
            } else {
                for (const xmlAttr *at = node->properties; at && !v; at = at->next) {
                    char *an = qname(at->ns ? at->ns->prefix : NULL, at->name, false);
                    if (!strcmp(an, k)) v = attr_value(at);
                    free(an);
                }
            }
            if (v) put_attr(obj, o, k, v);
        }
    } else if (!o->ignore_attrs) {
        for (const xmlNs *ns = node->nsDef; ns; ns = ns->next) {
            char *k = ns->prefix ? qname((const xmlChar *)"xmlns", ns->prefix, false) : strdup("xmlns");
            put_attr(obj, o, k, json_string(ns->href ? (const char *)ns->href : ""));
            free(k);
        }
        for (const xmlAttr *at = node->properties; at; at = at->next) {
            char *k = qname(at->ns ? at->ns->prefix : NULL, at->name, false);
            put_attr(obj, o, k, attr_value(at));
            free(k);
        }
    }
    for (const xmlNode *c = node->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE) {
            if (c->content) sb_puts(&text, (const char *)c->content);
        } else if (c->type == XML_CDATA_SECTION_NODE) {
            if (c->content) sb_puts(&text, (const char *)c->content);
            cdata = true;
        } else if (c->type == XML_ELEMENT_NODE) {
            char *cn = NULL;
            json_t *cv = element(c, o, sc, &cn);
            assign_or_push(obj, cn, cv, o->explicit_array);
            free(cn);
        }
    }
    *name_out = qname(node->ns ? node->ns->prefix : NULL, node->name, o->normalize_tags);
    json_t *result = obj;
    char *empty_str = NULL;
    if (blank(text.data) && !cdata) {
        empty_str = strdup(text.data);
        json_object_del(obj, o->charkey);
    } else {
        char *t = strdup(text.data);
        if (o->trim) {
            char *x = js_trim(t);
            free(t);
            t = x;
        }
        if (o->normalize) {
            char *x = normalize_ws(t);
            free(t);
            t = x;
        }
        json_object_set_new(obj, o->charkey, json_string(t));
        free(t);
        if (json_object_size(obj) == 1 && !o->explicit_charkey) {
            result = json_incref(json_object_get(obj, o->charkey));
            json_decref(obj);
        }
    }
    if (json_is_object(result) && json_object_size(result) == 0) {
        json_decref(result);
        if (o->empty_tag && !(json_is_string(o->empty_tag) && !json_string_length(o->empty_tag)))
            result = crm_deep_copy(o->empty_tag);
        else
            result = json_string(empty_str ? empty_str : "");
    }
    free(empty_str);
    sb_free(&text);
    return result;
}

/* The first error libxml2 reports. */
typedef struct {
    int code, line, col;
    bool set;
} first_error;

static void on_error(void *ctx, xmlErrorPtr e)
{
    first_error *f = ctx;
    if (f->set || !e || e->level < XML_ERR_ERROR) return;
    /* xml2js stops at the root's end tag: what follows is not its concern;
     * sax keeps the first of repeated attributes */
    if (e->code == XML_ERR_DOCUMENT_END || e->code == XML_ERR_ATTRIBUTE_REDEFINED) return;
    f->code = e->code;
    f->line = e->line;
    f->col = e->int2;
    f->set = true;
}

/* sax's "\nLine: L\nColumn: C\nChar: X" for byte offset pos (the character
 * that made sax fail; pos == len for the end of the text). */
static char *sax_error(const char *reason, const char *text, size_t len, size_t pos)
{
    size_t line = 0, col = 0;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            col = 0;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    strbuf sb = SB_INIT;
    sb_printf(&sb, "Error: %s\nLine: %zu\nColumn: %zu\nChar: ", reason, line, pos < len ? col + 1 : col);
    if (pos < len) {
        size_t n = 1;
        unsigned char c = (unsigned char)text[pos];
        if (c >= 0xc0) n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        sb_putn(&sb, text + pos, n);
    }
    return sb_take(&sb);
}

/* Where sax would have failed, found again in the text. */
static char *translate_error(const first_error *f, const char *text, size_t len)
{
    /* the byte offset of libxml2's line and column */
    size_t pos = 0;
    int line = 1;
    while (pos < len && line < f->line) {
        if (text[pos] == '\n') line++;
        pos++;
    }
    size_t at = pos + (f->col > 0 ? (size_t)f->col - 1 : 0);
    if (at > len) at = len;
    switch (f->code) {
    case XML_ERR_TAG_NAME_MISMATCH: {
        /* sax fails on the '>' of the close tag */
        size_t p = at;
        while (p > 0 && !(text[p] == '<' && p + 1 < len && text[p + 1] == '/')) p--;
        while (p < len && text[p] != '>') p++;
        return sax_error("Unexpected close tag", text, len, p);
    }
    case XML_ERR_DOCUMENT_EMPTY:
    case XML_ERR_DOCUMENT_START: {
        size_t p = 0;
        while (p < len && isspace((unsigned char)text[p])) p++;
        return sax_error("Non-whitespace before first tag.", text, len, p);
    }
    case XML_ERR_ATTRIBUTE_NOT_STARTED: {
        size_t p = at;
        while (p > 0 && text[p - 1] != '=') p--;
        return sax_error("Unquoted attribute value", text, len, p);
    }
    case XML_ERR_UNDECLARED_ENTITY:
    case XML_WAR_UNDECLARED_ENTITY:
    case XML_ERR_ENTITYREF_SEMICOL_MISSING: {
        size_t p = at < len ? at : len;
        while (p > 0 && (p >= len || text[p] != '&')) p--;
        while (p < len && text[p] != ';') p++;
        return sax_error("Invalid character entity", text, len, p);
    }
    case XML_ERR_TAG_NOT_FINISHED:
    case XML_ERR_LTSLASH_REQUIRED:
        return sax_error("Unclosed root tag", text, len, len);
    default:
        break;
    }
    char reason[64];
    snprintf(reason, sizeof reason, "Invalid XML (libxml2 error %d)", f->code);
    return sax_error(reason, text, len, at);
}

/* sax (strict, as xml2js runs it) knows only XML's five entities and
 * character references: one declared in the document's doctype is the
 * error it gives for an unknown one. The offset of the ';' that ends the
 * first such reference, or len when there is none. */
static size_t declared_entity_ref(const char *text, size_t len)
{
    static const char *const known[] = {"lt", "gt", "amp", "apos", "quot"};
    const char *p = text, *end = text + len;
    while (p < end) {
        if (*p == '<') {
            const char *q = skip_markup(p, end);
            p = q > p ? q : p + 1;
            continue;
        }
        if (*p++ != '&') continue;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi) break;
        size_t n = (size_t)(semi - p);
        bool ok = *p == '#';
        for (size_t i = 0; i < 5 && !ok; i++) ok = strlen(known[i]) == n && !memcmp(p, known[i], n);
        if (!ok) return (size_t)(semi - text);
        p = semi + 1;
    }
    return len;
}

json_t *crm_xml_parse(const char *text, size_t len, const crm_xml_opts *o, char **err)
{
    *err = NULL;
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    if (i == len) return json_null();
    const crm_xml_lib_t *x = crm_xml_lib();
    if (!x) {
        *err = strdup("Error: libxml2 is not available");
        return NULL;
    }
    first_error f = {0};
    x->setStructuredErrorFunc(&f, on_error);
    xmlDocPtr doc = x->readMemory(text, (int)len, NULL, "UTF-8", XML_PARSE_RECOVER | XML_PARSE_NONET | XML_PARSE_HUGE);
    x->setStructuredErrorFunc(NULL, NULL);
    crm_xml_lib(); /* keep this thread quiet afterwards */
    xmlNodePtr root = doc ? x->docGetRootElement(doc) : NULL;
    if (f.set || !root) {
        if (!f.set) f.code = XML_ERR_DOCUMENT_EMPTY;
        *err = translate_error(&f, text, len);
        if (doc) x->freeDoc(doc);
        return NULL;
    }
    if (doc->intSubset) {
        size_t at = declared_entity_ref(text, len);
        if (at < len) {
            *err = sax_error("Invalid character entity", text, len, at);
            x->freeDoc(doc);
            return NULL;
        }
    }
    char *name = NULL;
    /* the order of attributes matters only where namespaces are declared */
    tag_scanner sc = {.p = text, .end = text + len};
    bool scan = !o->ignore_attrs && memmem(text, len, "xmlns", 5) != NULL;
    json_t *v = element(root, o, scan ? &sc : NULL, &name);
    scanner_clear(&sc);
    x->freeDoc(doc);
    if (o->explicit_root) {
        json_t *r = json_object();
        json_object_set_new(r, name, v);
        v = r;
    }
    free(name);
    return v;
}

/* ---- building ------------------------------------------------------------------ */

typedef struct {
    const char *attrkey, *charkey;
    bool cdata, pretty;
    const char *indent, *newline;
    int suppress;
} bopts;

typedef enum { N_ELEM, N_TEXT, N_RAW } nkind;

typedef struct xnode {
    nkind kind;
    char *name;   /* element */
    char *value;  /* text (unescaped) or raw */
    json_t *attrs; /* element: name -> escaped value, in order */
    struct xnode **kids;
    size_t nkids;
} xnode;

static xnode *xn_new(nkind k, const char *s)
{
    xnode *n = calloc(1, sizeof *n);
    n->kind = k;
    if (k == N_ELEM) {
        n->name = strdup(s);
        n->attrs = json_object();
    } else {
        n->value = strdup(s);
    }
    return n;
}

static xnode *xn_add(xnode *parent, xnode *child)
{
    parent->kids = realloc(parent->kids, (parent->nkids + 1) * sizeof *parent->kids);
    parent->kids[parent->nkids++] = child;
    return child;
}

static void xn_free(xnode *n)
{
    for (size_t i = 0; i < n->nkids; i++) xn_free(n->kids[i]);
    free(n->kids);
    free(n->name);
    free(n->value);
    json_decref(n->attrs);
    free(n);
}

static char *str_of(const json_t *v)
{
    return crm_to_string(v);
}

static bool requires_cdata(const char *s)
{
    return strchr(s, '&') || strchr(s, '>') || strchr(s, '<');
}

static char *wrap_cdata(const char *s)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "<![CDATA[");
    const char *hit = strstr(s, "]]>"); /* String.replace with a string: the first only */
    if (hit) {
        sb_putn(&sb, s, (size_t)(hit - s));
        sb_puts(&sb, "]]]]><![CDATA[>");
        sb_puts(&sb, hit + 3);
    } else {
        sb_puts(&sb, s);
    }
    sb_puts(&sb, "]]>");
    return sb_take(&sb);
}

static void add_text(xnode *el, const char *s, const bopts *o, bool allow_cdata)
{
    if (allow_cdata && o->cdata && requires_cdata(s)) {
        char *w = wrap_cdata(s);
        xn_add(el, xn_new(N_RAW, w));
        free(w);
    } else {
        xn_add(el, xn_new(N_TEXT, s));
    }
}

static void render(xnode *el, const json_t *obj, const bopts *o);

/* typeof v === "object" (objects, arrays, null, Buffers). */
static bool js_objectish(const json_t *v)
{
    return v && (json_is_object(v) || json_is_array(v) || json_is_null(v));
}

static void render_child_object(xnode *el, const json_t *child, const bopts *o)
{
    /* for (key in child): element per key */
    if (json_is_object(child) && !crm_is_buf(child)) {
        crm_entry buf[16], *ents;
        size_t ne = crm_js_entries(child, buf, 16, &ents);
        for (size_t i = 0; i < ne; i++) {
            char *k = strndup(ents[i].key, ents[i].len);
            render(xn_add(el, xn_new(N_ELEM, k)), ents[i].val, o);
            free(k);
        }
        if (ents != buf) free(ents);
    }
}

static void render(xnode *el, const json_t *obj, const bopts *o)
{
    if (!js_objectish(obj)) {
        char *s = str_of(obj);
        add_text(el, s, o, json_is_string(obj));
        free(s);
        return;
    }
    if (json_is_array(obj)) {
        for (size_t i = 0; i < json_array_size(obj); i++) render_child_object(el, json_array_get(obj, i), o);
        return;
    }
    if (!json_is_object(obj)) return; /* null */
    crm_entry buf[16], *ents;
    size_t ne = crm_js_entries(obj, buf, 16, &ents);
    for (size_t i = 0; i < ne; i++) {
        char *key = strndup(ents[i].key, ents[i].len);
        const json_t *child = ents[i].val;
        if (!strcmp(key, o->attrkey)) {
            if (json_is_object(child) || json_is_array(child)) {
                crm_entry b2[16], *e2;
                size_t n2 = json_is_object(child) ? crm_js_entries(child, b2, 16, &e2) : 0;
                for (size_t j = 0; j < n2; j++) {
                    if (json_is_null(e2[j].val)) continue;
                    char *ak = strndup(e2[j].key, e2[j].len);
                    char *av = str_of(e2[j].val);
                    json_object_set_new(el->attrs, ak, json_string(av));
                    free(ak);
                    free(av);
                }
                if (n2 && e2 != b2) free(e2);
            }
        } else if (!strcmp(key, o->charkey)) {
            char *s = str_of(child);
            add_text(el, s, o, json_is_string(child));
            free(s);
        } else if (json_is_array(child)) {
            for (size_t j = 0; j < json_array_size(child); j++) {
                const json_t *entry = json_array_get(child, j);
                if (json_is_string(entry)) {
                    xnode *c = xn_add(el, xn_new(N_ELEM, key));
                    add_text(c, json_string_value(entry), o, true);
                } else {
                    render(xn_add(el, xn_new(N_ELEM, key)), entry, o);
                }
            }
        } else if (js_objectish(child) && !json_is_null(child)) {
            render(xn_add(el, xn_new(N_ELEM, key)), child, o);
        } else {
            xnode *c = xn_add(el, xn_new(N_ELEM, key));
            char *s = json_is_null(child) ? strdup("") : str_of(child);
            add_text(c, s, o, json_is_string(child));
            free(s);
        }
        free(key);
    }
    if (ents != buf) free(ents);
}

static void esc_text(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(sb, "&amp;"); break;
        case '<': sb_puts(sb, "&lt;"); break;
        case '>': sb_puts(sb, "&gt;"); break;
        case '\r': sb_puts(sb, "&#xD;"); break;
        default: sb_putc(sb, *s);
        }
    }
}

static void esc_attr(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(sb, "&amp;"); break;
        case '<': sb_puts(sb, "&lt;"); break;
        case '"': sb_puts(sb, "&quot;"); break;
        case '\t': sb_puts(sb, "&#x9;"); break;
        case '\n': sb_puts(sb, "&#xA;"); break;
        case '\r': sb_puts(sb, "&#xD;"); break;
        default: sb_putc(sb, *s);
        }
    }
}

static void w_indent(strbuf *sb, bopts *o, int level)
{
    if (!o->pretty || o->suppress) return;
    for (int i = 0; i < level; i++) sb_puts(sb, o->indent);
}

static void w_endline(strbuf *sb, bopts *o)
{
    if (!o->pretty || o->suppress) return;
    sb_puts(sb, o->newline);
}

static void write_node(strbuf *sb, const xnode *n, bopts *o, int level)
{
    if (n->kind != N_ELEM) {
        w_indent(sb, o, level);
        if (n->kind == N_TEXT) esc_text(sb, n->value);
        else sb_puts(sb, n->value);
        w_endline(sb, o);
        return;
    }
    w_indent(sb, o, level);
    sb_printf(sb, "<%s", n->name);
    const char *k;
    json_t *v;
    json_object_foreach(n->attrs, k, v) {
        sb_printf(sb, " %s=\"", k);
        esc_attr(sb, json_string_value(v));
        sb_putc(sb, '"');
    }
    bool empty = true;
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i]->kind == N_ELEM || n->kids[i]->value[0]) empty = false;
    if (empty) {
        sb_puts(sb, "/>");
        w_endline(sb, o);
    } else if (o->pretty && n->nkids == 1 && n->kids[0]->kind != N_ELEM) {
        sb_putc(sb, '>');
        o->suppress++;
        write_node(sb, n->kids[0], o, level + 1);
        o->suppress--;
        sb_printf(sb, "</%s>", n->name);
        w_endline(sb, o);
    } else {
        sb_putc(sb, '>');
        w_endline(sb, o);
        for (size_t i = 0; i < n->nkids; i++) write_node(sb, n->kids[i], o, level + 1);
        w_indent(sb, o, level);
        sb_printf(sb, "</%s>", n->name);
        w_endline(sb, o);
    }
}

char *crm_xml_build(const json_t *v, const json_t *options, char **err)
{
    *err = NULL;
    bopts o = {"$", "_", false, true, "  ", "\n", 0};
    const char *root_name = "root";
    bool headless = false;
    const json_t *xmldec = NULL;
    if (!options) {
        o.pretty = false;
    } else {
        const char *ak = json_string_value(json_object_get(options, "attrkey"));
        const char *ck = json_string_value(json_object_get(options, "charkey"));
        if (ak) o.attrkey = ak;
        if (ck) o.charkey = ck;
        o.cdata = opt_bool(options, "cdata", false);
        headless = opt_bool(options, "headless", false);
        const char *rn = json_string_value(json_object_get(options, "rootName"));
        if (rn) root_name = rn;
        xmldec = json_object_get(options, "xmldec");
        json_t *ro = json_object_get(options, "renderOpts");
        if (json_is_object(ro)) {
            o.pretty = opt_bool(ro, "pretty", false);
            const char *in = json_string_value(json_object_get(ro, "indent"));
            const char *nl = json_string_value(json_object_get(ro, "newline"));
            o.indent = in ? in : "  ";
            o.newline = nl ? nl : "\n";
        }
    }
    const json_t *root_obj = v;
    char *rname;
    crm_entry buf[4], *ents = buf;
    size_t ne = json_is_object(v) && !crm_is_buf(v) ? crm_js_entries(v, buf, 4, &ents)
                : json_is_array(v)                  ? json_array_size(v)
                                                    : 0;
    if (ne == 1 && !strcmp(root_name, "root")) {
        if (json_is_object(v)) {
            rname = strndup(ents[0].key, ents[0].len);
            root_obj = ents[0].val;
        } else {
            rname = strdup("0");
            root_obj = json_array_get(v, 0);
        }
    } else {
        rname = strdup(root_name);
    }
    if (ents != buf) free(ents);
    xnode *root = xn_new(N_ELEM, rname);
    free(rname);
    render(root, root_obj, &o);
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    if (!headless) {
        const char *ver = "1.0", *enc = "UTF-8";
        const json_t *sa = json_true();
        if (xmldec) {
            ver = json_string_value(json_object_get(xmldec, "version"));
            if (!ver || !*ver) ver = "1.0";
            enc = json_string_value(json_object_get(xmldec, "encoding"));
            sa = json_object_get(xmldec, "standalone");
        }
        sb_printf(&sb, "<?xml version=\"%s\"", ver);
        if (enc && *enc) sb_printf(&sb, " encoding=\"%s\"", enc);
        if (sa && !json_is_null(sa)) sb_printf(&sb, " standalone=\"%s\"", crm_truthy(sa) ? "yes" : "no");
        sb_puts(&sb, "?>");
        w_endline(&sb, &o);
    }
    write_node(&sb, root, &o, 0);
    xn_free(root);
    if (o.pretty && sb.len >= strlen(o.newline) && !strcmp(sb.data + sb.len - strlen(o.newline), o.newline) &&
        *o.newline) {
        sb.len -= strlen(o.newline);
        sb.data[sb.len] = 0;
    }
    return sb_take(&sb);
}
