/* html.c: the Node-RED "html" node (core/parsers/70-HTML.js, 4.1.15).
 *
 * Node-RED loads the property into cheerio and runs a CSS selector over
 * it; here libxml2's HTML parser builds the tree and runtime/xml/css.c
 * selects and renders as cheerio does: inner HTML (trimmed, rewritten as
 * XML for "html"), text, attributes, or both ("compl"), in one array or
 * one message per element with msg.parts.
 */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "strbuf.h"
#include "xml/css.h"
#include "xml/xml_lib.h"

typedef enum { RET_HTML, RET_TEXT, RET_ATTR, RET_COMPL, RET_OTHER } ret_kind;

typedef struct {
    crm_path *in, *out;
    char *tag;
    ret_kind ret;
    bool multi, single;
    char *chr;
} html_state;

static int html_create(crm_node *n, const json_t *cfg)
{
    const char *prop = crm_cfg_str(cfg, "property", "");
    if (!*prop) prop = "payload";
    const char *outp = crm_cfg_str(cfg, "outproperty", "");
    if (!*outp) outp = prop;
    char *err = NULL;
    crm_path *in = crm_path_parse(prop, &err);
    crm_path *out = in ? crm_path_parse(outp, &err) : NULL;
    if (!in || !out) {
        crm_node_config_error(n, in ? "outproperty" : "property", "%s", err ? err : "invalid property");
        free(err);
        crm_path_free(in);
        return -1;
    }
    html_state *s = calloc(1, sizeof *s);
    s->in = in;
    s->out = out;
    s->tag = strdup(crm_cfg_str(cfg, "tag", ""));
    const char *ret = crm_cfg_str(cfg, "ret", "");
    s->ret = !*ret || !strcmp(ret, "html") ? RET_HTML
             : !strcmp(ret, "text")        ? RET_TEXT
             : !strcmp(ret, "attr")        ? RET_ATTR
             : !strcmp(ret, "compl")       ? RET_COMPL
                                           : RET_OTHER;
    const char *as = crm_cfg_str(cfg, "as", "");
    s->single = !*as || !strcmp(as, "single");
    s->multi = !strcmp(as, "multi");
    const char *chr = crm_cfg_str(cfg, "chr", "");
    s->chr = strdup(*chr ? chr : "_");
    crm_node_set_data(n, s);
    return 0;
}

static void html_close(crm_node *n)
{
    html_state *s = crm_node_data(n);
    if (!s) return;
    crm_path_free(s->in);
    crm_path_free(s->out);
    free(s->tag);
    free(s->chr);
    free(s);
}

/* HTML's boolean attributes: libxml2 gives a bare one its own name as
 * value, where cheerio (parse5) gives "". */
static bool bare_boolean(const char *name, const char *value, const char *src)
{
    static const char *const b[] = {"checked", "compact", "declare", "defer", "disabled", "ismap", "multiple",
                                    "nohref", "noresize", "noshade", "nowrap", "readonly", "selected", NULL};
    if (strcasecmp(name, value)) return false;
    for (int i = 0; b[i]; i++) {
        if (strcasecmp(name, b[i])) continue;
        size_t nl = strlen(name);
        for (const char *p = strcasestr(src, name); p; p = strcasestr(p + 1, name)) {
            const char *q = p + nl;
            while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
            if (*q == '=') return false;
        }
        return true;
    }
    return false;
}

static json_t *attribs(const xmlNode *el, json_t *obj, const char *src)
{
    for (const xmlAttr *a = el->properties; a; a = a->next) {
        const char *v = a->children && a->children->content ? (const char *)a->children->content : "";
        if (bare_boolean((const char *)a->name, v, src)) v = "";
        json_object_set_new(obj, (const char *)a->name, json_string(v));
    }
    return obj;
}

static char *trimmed_inner(const xmlNode *el)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    crm_html_inner(&sb, el);
    size_t b = 0, e = sb.len;
    while (b < e && strchr(" \t\n\r\f\v", sb.data[b])) b++;
    while (e > b && strchr(" \t\n\r\f\v", sb.data[e - 1])) e--;
    char *r = strndup(sb.data + b, e - b);
    sb_free(&sb);
    return r;
}

/* The value for one element; NULL when Node-RED would have none. */
static json_t *extract(const html_state *s, const xmlNode *el, const char *src)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    json_t *v = NULL;
    switch (s->ret) {
    case RET_HTML:
        /* cheerio.load(html().trim(), null, false).xml() */
        crm_html_inner_xml(&sb, el);
        v = json_string(sb.data);
        break;
    case RET_TEXT:
        crm_html_text(&sb, el);
        v = json_string(sb.data);
        break;
    case RET_ATTR:
        v = attribs(el, json_object(), src);
        break;
    case RET_COMPL: {
        v = json_object();
        char *h = trimmed_inner(el);
        json_object_set_new(v, s->chr, json_string(h));
        free(h);
        attribs(el, v, src);
        break;
    }
    default:
        break;
    }
    sb_free(&sb);
    return v;
}

static void html_input(crm_node *n, json_t *msg)
{
    html_state *s = crm_node_data(n);
    bool throws = false;
    json_t *value = crm_path_get(s->in, msg, msg, &throws);
    if (!value) {
        crm_node_send(n, 0, json_incref(msg));
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (json_is_number(value) || json_is_boolean(value)) {
        char *t = crm_to_string(value);
        crm_node_error(n, msg, "Cannot create property 'prev' on %s '%s'", json_is_number(value) ? "number" : "boolean", t);
        free(t);
        json_decref(msg);
        return;
    }
    const char *tag = s->tag;
    json_t *sel = json_object_get(msg, "select");
    char *tagbuf = NULL;
    if (sel && !*tag) tag = tagbuf = crm_to_string(sel);
    char *err = NULL;
    crm_css *css = *tag ? crm_css_parse(tag, &err) : NULL;
    if (err) {
        crm_node_error(n, msg, "%s", err);
        free(err);
        free(tagbuf);
        json_decref(msg);
        return;
    }
    free(tagbuf);
    const crm_xml_lib_t *x = crm_xml_lib();
    char *text = json_is_string(value) ? strdup(json_string_value(value)) : crm_to_string(value);
    xmlNode **found = NULL;
    size_t count = 0;
    htmlDocPtr doc = NULL;
    if (x && css) {
        doc = x->htmlReadMemory(*text ? text : " ", *text ? (int)strlen(text) : 1, NULL, "UTF-8",
                                HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
        if (doc) {
            crm_html_imply_tbody(x, x->docGetRootElement(doc));
            count = crm_css_select(css, x->docGetRootElement(doc), &found);
        }
    }
    json_t *pay = json_array();
    const char *id = json_string_value(json_object_get(msg, "_msgid"));
    for (size_t i = 0; i < count; i++) {
        json_t *v = extract(s, found[i], text);
        if (s->multi) {
            if (v && crm_truthy(v)) {
                json_t *m = crm_msg_clone(msg);
                crm_path_set(s->out, m, m, v, true);
                v = NULL;
                json_t *parts = json_object();
                if (id) json_object_set_new(parts, "id", json_string(id));
                json_object_set_new(parts, "index", crm_num((double)i));
                json_object_set_new(parts, "count", crm_num((double)count));
                json_object_set_new(parts, "type", json_string("string"));
                json_object_set_new(parts, "ch", json_string(""));
                json_object_set_new(m, "parts", parts);
                crm_node_send(n, 0, m);
            }
            json_decref(v);
        } else if (s->single) {
            if (v) json_array_append_new(pay, v);
        } else {
            json_decref(v);
        }
    }
    free(found);
    free(text);
    if (doc) x->freeDoc(doc);
    crm_css_free(css);
    if (s->single) {
        crm_path_set(s->out, msg, msg, pay, true);
        crm_node_send(n, 0, json_incref(msg));
    } else {
        json_decref(pay);
    }
    crm_node_done(n, msg);
    json_decref(msg);
}

const crm_node_type crm_type_html = {
    .abi = CRM_ABI_VERSION,
    .type = "html",
    .create = html_create,
    .input = html_input,
    .close = html_close,
};
