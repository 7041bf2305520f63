/* template.c: the Node-RED "template" node (core/function/80-template.js),
 * Node-RED 4.1.15's semantics.
 *
 * syntax "mustache" renders the template (runtime/mustache.c, mustache.js's
 * rules) with msg as the view; names msg lacks fall back to
 * {{flow.x}} / {{flow[store].x}} / {{global.x}} (read from context before
 * rendering, as Node-RED resolves them first) and {{env.X}}. "plain" keeps
 * the text. output "json" parses the result (strings from msg escaped for
 * JSON first), "yaml" loads it as YAML (libyaml, js-yaml's core types),
 * "str" and "parsed" keep the text. The result goes to msg.<field>, or to
 * flow / global context (then msg passes unchanged). With an empty node
 * template, msg.template is used. The node's template is parsed once. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "carmine.h"
#include "hop.h"
#include "net/netutil.h"
#include "mustache.h"
#include "strbuf.h"

typedef enum { OUT_STR, OUT_JSON, OUT_YAML } out_format;
typedef enum { F_MSG, F_FLOW, F_GLOBAL } field_type;

typedef struct {
    char *field;
    crm_path *path;
    field_type ftype;
    out_format out;
    bool mustache;
    char *tmpl;          /* the node's template; NULL when empty */
    crm_mustache *parsed; /* tmpl parsed, or NULL (parse at each message) */
    bool parsed_partial;  /* crm_mustache_has_partial(parsed), asked once */
    char *parse_err;      /* tmpl's parse error */
    bool ctx_names;       /* parsed names an env., flow. or global. value */
    strbuf text;          /* the rendering, reused from message to message */
    /* field is one name of msg other than _msgid (payload): one walk over a
     * small message finds it and tells the send whether msg has a _msgid */
    const char *fname;
    size_t fnamelen;
} tpl;

static bool parse_context_name(const char *name, crm_scope *scope, strbuf *key);

/* Whether a name of the template is answered from env or a context store. */
static void find_ctx_name(const char *name, void *arg)
{
    crm_scope scope;
    strbuf key = SB_INIT;
    if ((!strncmp(name, "env.", 4) && name[4]) || parse_context_name(name, &scope, &key)) *(bool *)arg = true;
    sb_free(&key);
}

static int tpl_create(crm_node *n, const json_t *cfg)
{
    tpl *s = calloc(1, sizeof *s);
    if (!s) return -1;
    crm_node_set_data(n, s);
    const char *f = crm_cfg_str(cfg, "field", "");
    s->field = strdup(*f ? f : "payload");
    const char *ft = crm_cfg_str(cfg, "fieldType", "");
    s->ftype = !strcmp(ft, "flow") ? F_FLOW : !strcmp(ft, "global") ? F_GLOBAL : F_MSG;
    const char *o = crm_cfg_str(cfg, "output", "");
    s->out = !strcmp(o, "json") ? OUT_JSON : !strcmp(o, "yaml") ? OUT_YAML : OUT_STR;
    const char *syn = crm_cfg_str(cfg, "syntax", "");
    s->mustache = !*syn || !strcmp(syn, "mustache");
    const json_t *t = json_object_get(cfg, "template");
    if (json_is_string(t) && json_string_length(t)) {
        s->tmpl = strndup(json_string_value(t), json_string_length(t));
        if (s->mustache) s->parsed = crm_mustache_parse(s->tmpl, strlen(s->tmpl), &s->parse_err);
        s->parsed_partial = crm_mustache_has_partial(s->parsed);
        if (s->parsed) crm_mustache_names(s->parsed, find_ctx_name, &s->ctx_names);
    }
    if (s->ftype == F_MSG) {
        char *err = NULL;
        s->path = crm_path_parse(s->field, &err);
        if (!s->path) {
            crm_node_config_error(n, "field", "%s", err ? err : "invalid property");
            free(err);
            return -1;
        }
        if (crm_path_one_name(s->path, &s->fname, &s->fnamelen) && s->fnamelen == 6 && !memcmp(s->fname, "_msgid", 6))
            s->fname = NULL;
    }
    return 0;
}

/* YAML (js-yaml's load, default schema's core types) ------------------------------ */

static bool re_full(const char *pat, const char *s)
{
    regex_t re;
    if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB)) return false;
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static json_t *yaml_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_stringn(v, len);
    if (ev->data.scalar.tag && !strcmp((const char *)ev->data.scalar.tag, "tag:yaml.org,2002:str"))
        return json_stringn(v, len);
    if (!len || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")) return json_null();
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) return json_true();
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) return json_false();
    if (re_full("^[-+]?(0|[1-9][0-9_]*)$", v)) {
        strbuf sb = SB_INIT;
        for (const char *p = v; *p; p++)
            if (*p != '_') sb_putc(&sb, *p);
        json_t *r = crm_num(strtod(sb.data, NULL));
        sb_free(&sb);
        return r;
    }
    if (re_full("^0x[0-9a-fA-F_]+$", v) || re_full("^0o[0-7_]+$", v) || re_full("^0b[01_]+$", v)) {
        int base = v[1] == 'x' ? 16 : v[1] == 'o' ? 8 : 2;
        double d = 0;
        for (const char *p = v + 2; *p; p++)
            if (*p != '_') d = d * base + (double)(*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
        return crm_num(d);
    }
    if (re_full("^[-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?$", v)) {
        strbuf sb = SB_INIT;
        for (const char *p = v; *p; p++)
            if (*p != '_') sb_putc(&sb, *p);
        json_t *r = crm_num(strtod(sb.data, NULL));
        sb_free(&sb);
        return r;
    }
    if (re_full("^[-+]?\\.(inf|Inf|INF)$", v)) return crm_num(v[0] == '-' ? -INFINITY : INFINITY);
    if (re_full("^\\.(nan|NaN|NAN)$", v)) return crm_num(NAN);
    return json_stringn(v, len);
}

/* Loads one document; NULL and *err on a YAML error. */
static json_t *yaml_load(const char *text, char **err)
{
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    json_t *stack[256];
    json_t *keys[256];
    int depth = 0;
    json_t *root = NULL;
    bool done = false, failed = false;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            failed = true;
            break;
        }
        json_t *v = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_END_EVENT: done = true; break;
        case YAML_SCALAR_EVENT: v = yaml_scalar(&ev); break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth >= 255) {
                failed = true;
                done = true;
                break;
            }
            v = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            v = stack[depth]; /* attached below, like a scalar */
            break;
        default: break;
        }
        bool container_start = ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT;
        yaml_event_delete(&ev);
        if (!v || failed) continue;
        if (container_start) {
            keys[depth] = NULL;
            stack[depth++] = v;
            continue;
        }
        /* attach v to its parent (containers are attached when they end) */
        if (depth == 0) {
            if (root) json_decref(root);
            root = v;
        } else if (json_is_array(stack[depth - 1])) {
            json_array_append_new(stack[depth - 1], v);
        } else if (!keys[depth - 1]) {
            keys[depth - 1] = v;
        } else {
            char *k = json_is_string(keys[depth - 1]) ? strdup(json_string_value(keys[depth - 1]))
                                                      : crm_to_string(keys[depth - 1]);
            json_object_set_new(stack[depth - 1], k, v);
            free(k);
            json_decref(keys[depth - 1]);
            keys[depth - 1] = NULL;
        }
    }
    if (failed) {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "%s (%zu:%zu)", p.problem ? p.problem : "invalid YAML", p.problem_mark.line + 1,
                  p.problem_mark.column + 1);
        *err = sb_take(&sb);
        while (depth > 0) {
            depth--;
            json_decref(keys[depth]);
            json_decref(stack[depth]);
        }
        json_decref(root);
        root = NULL;
    }
    yaml_parser_delete(&p);
    return root;
}

/* Rendering ------------------------------------------------------------------------ */

typedef struct {
    crm_node *n;
    json_t *resolved; /* name -> value read before rendering */
} ctx_arg;

/* /^(flow|global)(\[(\w+)\])?\.(.+)/ : the scope, the key with its store. */
static bool parse_context_name(const char *name, crm_scope *scope, strbuf *key)
{
    const char *p;
    if (!strncmp(name, "flow", 4)) {
        *scope = CRM_SCOPE_FLOW;
        p = name + 4;
    } else if (!strncmp(name, "global", 6)) {
        *scope = CRM_SCOPE_GLOBAL;
        p = name + 6;
    } else {
        return false;
    }
    const char *store = NULL;
    size_t slen = 0;
    if (*p == '[') {
        const char *q = p + 1;
        while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_') q++;
        if (q > p + 1 && *q == ']' && q[1] == '.') {
            store = p + 1;
            slen = (size_t)(q - store);
            p = q + 1;
        }
    }
    if (*p != '.' || !p[1]) return false;
    if (store) sb_printf(key, "#:(%.*s)::", (int)slen, store);
    sb_puts(key, p + 1);
    return true;
}

static void resolve_name(const char *name, void *arg)
{
    ctx_arg *c = arg;
    if (json_object_get(c->resolved, name)) return;
    json_t *v = NULL;
    if (!strncmp(name, "env.", 4) && name[4]) {
        v = crm_node_env(c->n, name + 4);
    } else {
        crm_scope scope;
        strbuf key = SB_INIT;
        if (parse_context_name(name, &scope, &key)) v = crm_context_get(c->n, scope, key.data);
        sb_free(&key);
    }
    if (v) json_object_set_new(c->resolved, name, v);
}

static const json_t *fallback(const char *name, void *arg)
{
    ctx_arg *c = arg;
    return json_object_get(c->resolved, name);
}

static void tpl_input(crm_node *n, json_t *msg)
{
    tpl *s = crm_node_data(n);
    const char *text = s->tmpl;
    const crm_mustache *m = s->parsed;
    crm_mustache *own = NULL;
    char *err = NULL;
    const json_t *mt = text ? NULL : json_object_get(msg, "template"); /* read only without a template of its own */
    json_t *plain = NULL; /* plain syntax: msg.template as it is */
    if (!text && mt) {
        if (!json_is_string(mt)) {
            if (!s->mustache) {
                plain = crm_deep_copy(mt);
            } else if (crm_truthy(mt)) {
                /* mustache.js's scanner calls String methods on it */
                crm_node_error(n, msg, "this.tail.search is not a function");
                json_decref(msg);
                return;
            } else {
                const char *ty = json_is_array(mt) ? "array" : crm_typeof(mt);
                crm_node_error(n, msg,
                               "Invalid template! Template should be a \"string\" but \"%s\" was given as the first "
                               "argument for mustache#render(template, view, partials)",
                               ty);
                json_decref(msg);
                return;
            }
        } else {
            text = json_string_value(mt);
            if (s->mustache) m = own = crm_mustache_parse(text, json_string_length(mt), &err);
        }
    } else if (text && s->mustache && !m) {
        err = strdup(s->parse_err ? s->parse_err : "invalid template");
    }
    if (err) {
        crm_node_error(n, msg, "%s", err);
        free(err);
        json_decref(msg);
        return;
    }
    if (s->mustache && (m == s->parsed ? s->parsed_partial : crm_mustache_has_partial(m))) {
        /* extractTokens walks a partial's indentation string as tokens */
        crm_mustache_free(own);
        crm_node_error(n, msg, "tokens.forEach is not a function");
        json_decref(msg);
        return;
    }
    json_t *value;
    if (s->mustache) {
        /* a template of the node's own that names no context value needs no lookups */
        bool ctx = m != s->parsed || s->ctx_names;
        ctx_arg c = {.n = n, .resolved = ctx ? json_object() : NULL};
        if (ctx) crm_mustache_names(m, resolve_name, &c);
        crm_mustache_opts o = {.fallback = fallback, .arg = &c, .json_escape_root = s->out == OUT_JSON};
        s->text.len = 0;
        crm_mustache_write_sb(m, msg, &o, &s->text);
        json_decref(c.resolved);
        size_t len = strlen(s->text.data); /* as json_string(): up to a NUL */
        value = crm_utf8_valid(s->text.data, len) ? json_stringn_nocheck(s->text.data, len) : NULL;
        if (s->text.cap > 65536) sb_free(&s->text); /* keep no big buffer for ever */
    } else {
        value = plain ? plain : json_string(text ? text : "");
    }
    crm_mustache_free(own);
    if (s->out == OUT_JSON && json_is_string(value)) {
        json_t *parsed = crm_parse(json_string_value(value), json_string_length(value), NULL, 0);
        if (!parsed) {
            char *e = crm_json_error(json_string_value(value), json_string_length(value));
            crm_node_error(n, msg, "%s", e ? e : "Unexpected end of JSON input");
            free(e);
            json_decref(value);
            json_decref(msg);
            return;
        }
        json_decref(value);
        value = parsed;
    } else if (s->out == OUT_YAML && json_is_string(value)) {
        char *e = NULL;
        json_t *parsed = yaml_load(json_string_value(value), &e);
        if (!parsed && e) {
            crm_node_error(n, msg, "%s", e);
            free(e);
            json_decref(value);
            json_decref(msg);
            return;
        }
        json_decref(value);
        value = parsed; /* an empty document is undefined */
    }
    /* rendering reads msg and never writes it: what the walk found holds */
    void *it = NULL;
    bool has_id = false;
    bool walked = s->fname && crm_msg_walk(msg, s->fname, s->fnamelen, &it, &has_id);
    if (s->ftype == F_MSG && it && value) {
        json_object_iter_set_new(msg, it, value); /* value is new: no cycle */
    } else if (s->ftype == F_MSG) {
        /* a primitive in the way (-1): Node-RED's setMessageProperty gives
         * up without a word and the message goes on unchanged */
        crm_path_set(s->path, msg, msg, value, value != NULL);
    } else {
        crm_context_set(n, s->ftype == F_FLOW ? CRM_SCOPE_FLOW : CRM_SCOPE_GLOBAL, s->field, value);
    }
    if (walked) crm_node_send_known(n, 0, msg, has_id);
    else crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

static void tpl_close(crm_node *n)
{
    tpl *s = crm_node_data(n);
    if (!s) return;
    crm_path_free(s->path);
    crm_mustache_free(s->parsed);
    free(s->parse_err);
    sb_free(&s->text);
    free(s->tmpl);
    free(s->field);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_template = {
    .abi = CRM_ABI_VERSION,
    .type = "template",
    .create = tpl_create,
    .input = tpl_input,
    .close = tpl_close,
    .flags = CRM_TYPE_KEEPS_NAME,
};
