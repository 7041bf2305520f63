/* change.c: the Node-RED `change` node (spec §3.8): set, change, delete and
 * move rules on msg, flow and global properties, applied in order. Config
 * problems Node-RED only logs (bad 'from' regex, bad 'to' JSON, bad JSONata)
 * are logged here too, and the node then drops every message, as Node-RED's
 * node without an input handler does. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "hop.h"
#include "strbuf.h"

/* In runtime/path.c: normalisePropertyExpression(key, msg, true). */

typedef enum { OP_SET, OP_CHANGE, OP_DELETE, OP_OTHER } op_kind;
typedef enum { SC_MSG, SC_FLOW, SC_GLOBAL, SC_OTHER } scope_kind;
typedef enum { VAL_CONST, VAL_JSON, VAL_BIN, VAL_MSG, VAL_CTX, VAL_TYPED } val_kind;
typedef enum { FT_NONE, FT_STR, FT_NUM, FT_BOOL, FT_RE, FT_OTHER } from_type;

/* A flow/global key: "#:(store)::" prefix kept apart so that nested
 * [msg.x] references can be evaluated per message. */
typedef struct {
    char *prefix;
    char *key;
    bool dynamic;
    char *full;        /* prefix + key, built once when not dynamic */
} ctx_key;

typedef struct {
    val_kind kind;
    json_t *value;     /* VAL_CONST (NULL = undefined), VAL_JSON/VAL_BIN parsed */
    crm_path *path;    /* VAL_MSG (NULL: the read always throws) */
    scope_kind scope;  /* VAL_CTX */
    ctx_key key;
    crm_typed *typed;  /* VAL_TYPED */
} val_src;

typedef struct {
    op_kind op;
    scope_kind pt;
    char *p;           /* as written, for the warning */
    crm_path *ppath;   /* pt msg (NULL: setting always throws) */
    ctx_key pkey;      /* pt flow/global */
    val_src to;
    bool to_bool;      /* tot bool: "true"/"false" results of a replace become booleans */
    bool dc;
    /* change rules */
    val_src from;      /* VAL_CONST (string) or VAL_MSG / VAL_CTX */
    from_type ftype;   /* for a constant from */
    pcre2_code *from_re;
} rule;

typedef struct {
    rule *rules;
    size_t n;
    bool valid;
    /* no rule can write msg._msgid (every msg target starts with another
     * plain name): one walk over a small message tells the send whether it
     * has one, and finds the first rule's target when that rule sets a
     * msg property of one name (first, firstlen; else NULL) */
    bool keeps_id;
    const char *first;
    size_t firstlen;
    /* the first rule's value when it is a constant primitive (a string, a
     * number, a boolean, null) set without a deep copy: that rule is one
     * reference handed to the member the walk found, nothing to evaluate */
    json_t *first_const;
} change_state;

enum { R_CONTINUE, R_STOP };

/* Regular expressions ------------------------------------------------------ */

static pcre2_code *undefined_re; /* String.prototype.replace(undefined, v) looks for "undefined" */

static pcre2_code *compile_re(const char *pat, size_t len, bool literal, char **err)
{
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (literal) opts |= PCRE2_LITERAL;
    else opts |= PCRE2_ALT_BSUX | PCRE2_MATCH_UNSET_BACKREF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &ec, &eo, NULL);
    if (!re && err) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        strbuf sb = SB_INIT;
        sb_printf(&sb, "Invalid regular expression: /%.*s/g: %s", (int)len, pat, (const char *)msg);
        *err = sb_take(&sb);
    }
    return re;
}

static size_t utf8_len_at(const char *s, size_t len, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return i + n > len ? len - i : n;
}

static void put_group(strbuf *sb, const char *s, PCRE2_SIZE *ov, uint32_t g)
{
    if (ov[2 * g] != PCRE2_UNSET) sb_putn(sb, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/* JavaScript's GetSubstitution: $$, $&, $`, $', $n, $nn, $<name>. */
static void expand(strbuf *sb, const pcre2_code *re, const char *s, size_t slen, PCRE2_SIZE *ov, uint32_t ncap,
                   const char *rep, size_t rlen)
{
    for (size_t i = 0; i < rlen; i++) {
        char c = rep[i];
        if (c != '$' || i + 1 >= rlen) {
            sb_putc(sb, c);
            continue;
        }
        char d = rep[i + 1];
        if (d == '$') {
            sb_putc(sb, '$');
            i++;
        } else if (d == '&') {
            put_group(sb, s, ov, 0);
            i++;
        } else if (d == '`') {
            sb_putn(sb, s, ov[0]);
            i++;
        } else if (d == '\'') {
            sb_putn(sb, s + ov[1], slen - ov[1]);
            i++;
        } else if (d >= '0' && d <= '9') {
            uint32_t one = (uint32_t)(d - '0');
            uint32_t two = i + 2 < rlen && rep[i + 2] >= '0' && rep[i + 2] <= '9' ? one * 10 + (uint32_t)(rep[i + 2] - '0') : 0;
            if (two >= 1 && two <= ncap) {
                put_group(sb, s, ov, two);
                i += 2;
            } else if (one >= 1 && one <= ncap) {
                put_group(sb, s, ov, one);
                i++;
            } else {
                sb_putc(sb, '$');
            }
        } else if (d == '<') {
            uint32_t names = 0;
            pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &names);
            const char *close = memchr(rep + i + 2, '>', rlen - i - 2);
            if (!names || !close) {
                sb_putc(sb, '$');
                continue;
            }
            char *name = strndup(rep + i + 2, (size_t)(close - rep - i - 2));
            int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
            free(name);
            if (g > 0) put_group(sb, s, ov, (uint32_t)g);
            i = (size_t)(close - rep);
        } else {
            sb_putc(sb, '$');
        }
    }
}

/* s.replace(re, rep) with a global regex (all matches) or a string pattern
 * (the first match only). Returns a new string. */
static json_t *js_replace(const pcre2_code *re, bool global, const char *s, size_t slen, const char *rep, size_t rlen)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    uint32_t ncap = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap);
    strbuf sb = SB_INIT;
    sb_putn(&sb, "", 0);
    size_t pos = 0, last = 0;
    while (pos <= slen) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, slen, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        sb_putn(&sb, s + last, ov[0] - last);
        expand(&sb, re, s, slen, ov, ncap, rep, rlen);
        last = ov[1];
        if (!global) break;
        if (ov[1] == ov[0]) {
            if (ov[1] >= slen) break;
            pos = ov[1] + utf8_len_at(s, slen, ov[1]);
        } else {
            pos = ov[1];
        }
    }
    sb_putn(&sb, s + last, slen - last);
    pcre2_match_data_free(md);
    size_t n = sb.len;
    char *out = sb_take(&sb);
    json_t *r = json_stringn_nocheck(out, n);
    free(out);
    return r;
}

/* Config ------------------------------------------------------------------------ */

static scope_kind scope_of(const char *t)
{
    if (!t || !strcmp(t, "msg")) return SC_MSG;
    if (!strcmp(t, "flow")) return SC_FLOW;
    if (!strcmp(t, "global")) return SC_GLOBAL;
    return SC_OTHER;
}

static void ctx_key_init(ctx_key *k, const char *text, const char *dyn_marker)
{
    const char *key = text;
    k->prefix = strdup("");
    if (!strncmp(text, "#:(", 3)) {
        const char *e = strstr(text, ")::");
        /* the store name is \S+? : no whitespace, at least one char */
        bool ok = e && e > text + 3;
        for (const char *c = text + 3; ok && c < e; c++)
            if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') ok = false;
        if (ok) {
            free(k->prefix);
            k->prefix = strndup(text, (size_t)(e + 3 - text));
            key = e + 3;
        }
    }
    k->key = strdup(key);
    k->dynamic = strstr(key, dyn_marker) != NULL;
    k->full = NULL;
    if (!k->dynamic) {
        strbuf sb = SB_INIT;
        sb_puts(&sb, k->prefix);
        sb_puts(&sb, k->key);
        k->full = sb_take(&sb);
    }
}

static void ctx_key_free(ctx_key *k)
{
    free(k->prefix);
    free(k->key);
    free(k->full);
}

/* The full key for this message (a static key costs no allocation per
 * message; a dynamic one is malloc'd into *owned); NULL when a nested
 * reference throws. */
static const char *ctx_key_for(const ctx_key *k, const json_t *msg, char **owned)
{
    *owned = NULL;
    if (!k->dynamic) return k->full;
    char *err = NULL;
    char *resolved = crm_path_resolve_key(k->key, msg, &err);
    free(err);
    if (!resolved) return NULL;
    strbuf sb = SB_INIT;
    sb_puts(&sb, k->prefix);
    sb_puts(&sb, resolved);
    free(resolved);
    return *owned = sb_take(&sb);
}

static bool is_true_text(const json_t *v)
{
    char *s = crm_to_string(v);
    bool t = !strcasecmp(s, "true");
    free(s);
    return t;
}

/* evaluateEnvProperty: "${X}" or a bare name is a lookup, other text with
 * ${X} inside is substituted; missing gives "". */
static json_t *env_value(crm_node *n, const json_t *raw)
{
    char *text = crm_to_string(raw);
    size_t len = strlen(text);
    json_t *r = NULL;
    const char *open = strstr(text, "${");
    if (len > 3 && !strncmp(text, "${", 2) && text[len - 1] == '}' && !memchr(text + 2, '}', len - 3)) {
        text[len - 1] = 0;
        r = crm_node_env(n, text + 2);
    } else if (!open || !strchr(open, '}')) {
        r = crm_node_env(n, text);
    } else {
        strbuf sb = SB_INIT;
        sb_putn(&sb, "", 0);
        const char *c = text;
        while ((open = strstr(c, "${")) != NULL) {
            const char *close = strchr(open + 2, '}');
            if (!close || close == open + 2) break;
            sb_putn(&sb, c, (size_t)(open - c));
            char *name = strndup(open + 2, (size_t)(close - open - 2));
            json_t *v = crm_node_env(n, name);
            if (v) {
                char *vs = crm_to_string(v);
                sb_puts(&sb, vs);
                free(vs);
                json_decref(v);
            }
            free(name);
            c = close + 1;
        }
        sb_puts(&sb, c);
        char *s = sb_take(&sb);
        r = json_string(s);
        free(s);
    }
    free(text);
    return r ? r : json_string("");
}

static json_t *parse_json_text(const json_t *raw)
{
    char *text = crm_to_string(raw);
    char err[128];
    json_t *v = crm_parse(text, strlen(text), err, sizeof err);
    free(text);
    return v;
}

/* The rule field being compiled ("rules[2].to"), for rule_problem. */
static _Thread_local char cur_field[48];

/* A bad JSONata 'to' or regex 'from': Node-RED's change node logs it at start
 * and then drops every message, and so does `carmine run`; `carmine check`
 * (its setting "_checkStrict") refuses the flows instead, naming node, field
 * and reason. */
static void rule_problem(crm_node *n, const char *suffix, const char *text)
{
    if (crm_cfg_bool(crm_node_settings(n), "_checkStrict", false)) {
        char field[64];
        snprintf(field, sizeof field, "%s%s", cur_field, suffix);
        crm_node_config_error(n, field, "%s", text);
    } else {
        crm_node_error(n, NULL, "%s", text);
    }
}

static char *jsonata_err_text(const char *err)
{
    const char *prefix = "Invalid JSONata expression: ";
    strbuf sb = SB_INIT;
    if (err && !strncmp(err, prefix, strlen(prefix))) sb_puts(&sb, err);
    else sb_printf(&sb, "%s%s", prefix, err ? err : "error");
    return sb_take(&sb);
}

/* Compiles the "to" value of a rule; false (logged) when the node is invalid. */
static bool compile_to(crm_node *n, val_src *v, const char *tot, const json_t *raw)
{
    memset(v, 0, sizeof *v);
    v->kind = VAL_CONST;
    if (!strcmp(tot, "num")) {
        v->value = crm_num(crm_to_number(raw));
    } else if (!strcmp(tot, "bool")) {
        v->value = json_boolean(is_true_text(raw));
    } else if (!strcmp(tot, "json") || !strcmp(tot, "bin")) {
        v->kind = !strcmp(tot, "json") ? VAL_JSON : VAL_BIN;
        v->value = parse_json_text(raw);
        if (!v->value) {
            crm_node_error(n, NULL, "Invalid 'to' JSON property");
            return false;
        }
    } else if (!strcmp(tot, "msg")) {
        v->kind = VAL_MSG;
        v->path = json_is_string(raw) ? crm_path_parse(json_string_value(raw), NULL) : NULL;
    } else if (!strcmp(tot, "flow") || !strcmp(tot, "global")) {
        v->kind = VAL_CTX;
        v->scope = scope_of(tot);
        ctx_key_init(&v->key, json_is_string(raw) ? json_string_value(raw) : "", "[msg");
    } else if (!strcmp(tot, "env")) {
        v->value = env_value(n, raw); /* read once, at deploy */
    } else if (!strcmp(tot, "date") || !strcmp(tot, "jsonata")) {
        char *err = NULL;
        json_t *empty = json_string("");
        v->kind = VAL_TYPED;
        v->typed = crm_typed_new(n, tot, raw ? raw : empty, &err);
        json_decref(empty);
        if (!v->typed) {
            if (!strcmp(tot, "jsonata")) {
                char *t = jsonata_err_text(err);
                rule_problem(n, ".to", t);
                free(t);
            } else {
                crm_node_error(n, NULL, "%s", err ? err : "Invalid 'to' property");
            }
            free(err);
            return false;
        }
    } else {
        /* str and anything else: the configured value as it is */
        v->value = raw ? crm_deep_copy(raw) : NULL;
    }
    return true;
}

/* Compiles the "from" side of a change rule. */
static bool compile_from(crm_node *n, rule *r, const char *fromt, const json_t *raw)
{
    memset(&r->from, 0, sizeof r->from);
    const char *text = json_is_string(raw) ? json_string_value(raw) : "";
    if (!strcmp(fromt, "msg")) {
        r->from.kind = VAL_MSG;
        r->from.path = crm_path_parse(text, NULL);
        return true;
    }
    if (!strcmp(fromt, "flow") || !strcmp(fromt, "global")) {
        r->from.kind = VAL_CTX;
        r->from.scope = scope_of(fromt);
        ctx_key_init(&r->from.key, text, "[msg.");
        return true;
    }
    r->from.kind = VAL_CONST;
    r->from.value = raw ? crm_deep_copy(raw) : json_string("");
    r->ftype = !strcmp(fromt, "str") ? FT_STR : !strcmp(fromt, "num") ? FT_NUM : !strcmp(fromt, "bool") ? FT_BOOL
             : !strcmp(fromt, "re") ? FT_RE : FT_OTHER;
    /* env is a literal here (Node-RED quirk): only ${X} config substitution applies */
    char *pat = crm_to_string(raw ? raw : r->from.value);
    char *err = NULL;
    r->from_re = compile_re(pat, strlen(pat), r->ftype != FT_RE, &err);
    free(pat);
    if (!r->from_re) {
        char *t = NULL;
        if (asprintf(&t, "Invalid 'from' property: %s", err ? err : "") < 0) t = NULL;
        rule_problem(n, ".from", t ? t : "Invalid 'from' property");
        free(t);
        free(err);
        return false;
    }
    return true;
}

static op_kind op_of(const char *t)
{
    if (!t) return OP_OTHER;
    if (!strcmp(t, "set")) return OP_SET;
    if (!strcmp(t, "change")) return OP_CHANGE;
    if (!strcmp(t, "delete")) return OP_DELETE;
    return OP_OTHER;
}

static void rule_target(rule *r, const char *p, const char *pt)
{
    r->p = strdup(p);
    r->pt = scope_of(pt);
    if (r->pt == SC_MSG) r->ppath = crm_path_parse(p, NULL);
    else if (r->pt != SC_OTHER) ctx_key_init(&r->pkey, p, "[msg");
}

static void push_rule(change_state *st, rule *r)
{
    st->rules = realloc(st->rules, (st->n + 1) * sizeof(rule));
    st->rules[st->n++] = *r;
}

/* A set or delete step of a move: {t, p, pt, to, tot}. */
static void push_step(crm_node *n, change_state *st, op_kind op, const char *p, const char *pt, const char *to,
                      const char *tot)
{
    rule r;
    memset(&r, 0, sizeof r);
    r.op = op;
    rule_target(&r, p, pt);
    if (op == OP_SET) {
        json_t *raw = json_string(to);
        compile_to(n, &r.to, tot, raw);
        json_decref(raw);
    }
    push_rule(st, &r);
}

/* move = set the destination from the source, then delete the source; when
 * the destination sits inside the source, through a temporary property. */
static void add_move(crm_node *n, change_state *st, const char *p, const char *pt, const char *to, const char *tot)
{
    if (strcmp(tot, pt) || (strstr(p, to) && strcmp(p, to))) {
        push_step(n, st, OP_SET, to, tot, p, pt);
        push_step(n, st, OP_DELETE, p, pt, NULL, NULL);
    } else {
        push_step(n, st, OP_SET, "_temp_move", tot, p, pt);
        push_step(n, st, OP_DELETE, p, pt, NULL, NULL);
        push_step(n, st, OP_SET, to, tot, "_temp_move", pt);
        push_step(n, st, OP_DELETE, "_temp_move", pt, NULL, NULL);
    }
}

static const char *str_or(const json_t *o, const char *key, const char *def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) ? json_string_value(v) : def;
}

/* One configured rule, after Node-RED's migrations. */
static bool add_rule(crm_node *n, change_state *st, json_t *cfg)
{
    const char *t = str_or(cfg, "t", "");
    const char *pt = str_or(cfg, "pt", "msg");
    const json_t *p_raw = json_object_get(cfg, "p");
    const char *p = json_is_string(p_raw) ? json_string_value(p_raw) : "";
    const json_t *to = json_object_get(cfg, "to");
    const char *tot = str_or(cfg, "tot", NULL);
    const char *fromt = str_or(cfg, "fromt", "str");
    if (!strcmp(t, "change") && crm_truthy(json_object_get(cfg, "re"))) fromt = "re";
    json_t *stripped = NULL;
    if (!strcmp(t, "set") && !tot && json_is_string(to) && !strncmp(json_string_value(to), "msg.", 4)) {
        stripped = json_string(json_string_value(to) + 4);
        to = stripped;
        tot = "msg";
    }
    if (!tot) tot = "str";
    if (!strcmp(t, "move")) {
        add_move(n, st, p, pt, json_is_string(to) ? json_string_value(to) : "", tot);
        return true;
    }
    rule r;
    memset(&r, 0, sizeof r);
    r.op = op_of(t);
    rule_target(&r, p, pt);
    r.dc = crm_truthy(json_object_get(cfg, "dc"));
    r.to_bool = !strcmp(tot, "bool");
    bool ok = true;
    if (r.op == OP_CHANGE) ok = compile_from(n, &r, fromt, json_object_get(cfg, "from")) && ok;
    ok = compile_to(n, &r.to, tot, to) && ok;
    json_decref(stripped);
    push_rule(st, &r);
    return ok;
}

/* The rule list, or the legacy flat form (action/property/from/to/reg). */
static json_t *config_rules(const json_t *config)
{
    json_t *rules = json_object_get(config, "rules");
    if (crm_truthy(rules)) return json_is_array(rules) ? json_incref(rules) : json_array();
    const char *action = crm_cfg_str(config, "action", "");
    json_t *r = json_object();
    json_object_set_new(r, "t", json_string(!strcmp(action, "replace") ? "set" : action));
    json_object_set_new(r, "p", json_string(str_or(config, "property", "")));
    if (!strcmp(action, "replace") || !strcmp(action, "set") || !strcmp(action, "move")) {
        json_object_set_new(r, "to", json_string(str_or(config, "to", "")));
    } else if (!strcmp(action, "change")) {
        json_object_set_new(r, "from", json_string(str_or(config, "from", "")));
        json_object_set_new(r, "to", json_string(str_or(config, "to", "")));
        const json_t *reg = json_object_get(config, "reg");
        json_object_set_new(r, "re", json_boolean(json_is_null(reg) || crm_truthy(reg)));
    }
    json_t *a = json_array();
    json_array_append_new(a, r);
    return a;
}

static void val_free(val_src *v)
{
    json_decref(v->value);
    crm_path_free(v->path);
    if (v->kind == VAL_CTX) ctx_key_free(&v->key);
    crm_typed_free(v->typed);
}

static void state_free(change_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        rule *r = &st->rules[i];
        free(r->p);
        crm_path_free(r->ppath);
        if (r->pt == SC_FLOW || r->pt == SC_GLOBAL) ctx_key_free(&r->pkey);
        val_free(&r->to);
        val_free(&r->from);
        pcre2_code_free(r->from_re);
    }
    free(st->rules);
    free(st);
}

static int change_create(crm_node *n, const json_t *config)
{
    if (!undefined_re) undefined_re = compile_re("undefined", 9, true, NULL);
    change_state *st = calloc(1, sizeof *st);
    st->valid = true;
    json_t *rules = config_rules(config);
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        snprintf(cur_field, sizeof cur_field, "rules[%zu]", i);
        if (json_is_object(r) && !add_rule(n, st, r)) st->valid = false;
    }
    json_decref(rules);
    st->keeps_id = true;
    for (size_t k = 0; k < st->n; k++) {
        const rule *ru = &st->rules[k];
        const char *name;
        size_t len;
        if (ru->pt != SC_MSG || !ru->ppath) continue; /* a NULL path is never written */
        if (!crm_path_first_name(ru->ppath, &name, &len) || (len == 6 && !memcmp(name, "_msgid", 6)))
            st->keeps_id = false;
    }
    if (st->n && st->rules[0].op == OP_SET && st->rules[0].pt == SC_MSG &&
        !crm_path_one_name(st->rules[0].ppath, &st->first, &st->firstlen))
        st->first = NULL;
    const rule *r0 = st->n ? &st->rules[0] : NULL;
    if (st->first && r0->to.kind == VAL_CONST && r0->to.value && !r0->dc && !json_is_object(r0->to.value) &&
        !json_is_array(r0->to.value))
        st->first_const = r0->to.value;
    crm_node_set_data(n, st);
    /* `carmine check`: the problems rule_problem reported refuse the flows */
    return !st->valid && crm_cfg_bool(crm_node_settings(n), "_checkStrict", false) ? -1 : 0;
}

/* Per message --------------------------------------------------------------------- */

/* Buffer.from(parsed JSON): an array of byte values, a string's UTF-8, or a
 * {type:"Buffer",data:[...]}. NULL where Buffer.from would throw. */
static json_t *to_buffer(const json_t *v)
{
    if (json_is_string(v)) return crm_buf_new(json_string_value(v), json_string_length(v));
    if (json_is_object(v) && !json_is_array(json_object_get(v, "data"))) return NULL;
    const json_t *arr = json_is_array(v) ? v : json_object_get(v, "data");
    if (!json_is_array(arr)) return NULL;
    size_t n = json_array_size(arr);
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        double d = crm_to_number(json_array_get(arr, i));
        b[i] = isfinite(d) ? (unsigned char)((long long)d & 255) : 0;
    }
    json_t *buf = crm_buf_new(b, n);
    free(b);
    return buf;
}

static crm_scope crm_scope_of(scope_kind s)
{
    return s == SC_GLOBAL ? CRM_SCOPE_GLOBAL : CRM_SCOPE_FLOW;
}

enum { V_OK, V_SKIP, V_STOP };

/* The value a source gives for msg: V_OK with *out (NEW ref, NULL for
 * undefined), V_SKIP when the read "throws", V_STOP when an error was
 * reported and the message is dropped. */
static int eval_src(crm_node *n, const val_src *v, json_t *msg, json_t **out)
{
    *out = NULL;
    switch (v->kind) {
    case VAL_CONST:
        /* primitives are immutable values here as in JavaScript: share them */
        *out = !v->value ? NULL
               : json_is_object(v->value) || json_is_array(v->value) ? crm_deep_copy(v->value)
                                                                      : json_incref(v->value);
        return V_OK;
    case VAL_JSON:
        *out = crm_deep_copy(v->value);
        return V_OK;
    case VAL_BIN:
        *out = to_buffer(v->value);
        return *out ? V_OK : V_SKIP;
    case VAL_MSG: {
        if (!v->path) return V_SKIP;
        bool thr = false;
        json_t *x = crm_path_get(v->path, msg, msg, &thr);
        if (thr) return V_SKIP;
        *out = json_incref(x); /* a reference, as Node-RED shares it */
        return V_OK;
    }
    case VAL_CTX: {
        char *owned;
        const char *key = ctx_key_for(&v->key, msg, &owned);
        if (!key) return V_SKIP;
        *out = crm_context_get(n, crm_scope_of(v->scope), key);
        free(owned);
        return V_OK;
    }
    case VAL_TYPED: {
        char *err = NULL;
        if (crm_typed_eval(n, v->typed, msg, out, &err) == 0) return V_OK;
        if (!strcmp(crm_typed_type(v->typed), "jsonata")) {
            char *t = jsonata_err_text(err);
            crm_node_error(n, msg, "%s", t);
            free(t);
            free(err);
            return V_STOP;
        }
        free(err);
        return V_SKIP;
    }
    }
    return V_SKIP;
}

/* The "from" of a change rule for this message. */
typedef struct {
    from_type type;
    json_t *value;          /* NEW ref or NULL */
    pcre2_code *re;         /* NULL: replace "undefined" once */
    bool global;
    bool own_re;
} from_val;

static void from_free(from_val *f)
{
    json_decref(f->value);
    if (f->own_re) pcre2_code_free(f->re);
}

/* V_OK or V_SKIP. A from value of an unsupported type is reported and the
 * rule goes on with an undefined from-type: Node-RED calls its continuation
 * twice there, so the message is still forwarded (§10 check 31). */
static int eval_from(crm_node *n, const rule *r, json_t *msg, from_val *f)
{
    memset(f, 0, sizeof *f);
    if (r->from.kind == VAL_CONST) {
        f->type = r->ftype;
        f->value = json_incref(r->from.value);
        f->re = r->from_re;
        f->global = true;
        return V_OK;
    }
    json_t *v = NULL;
    if (eval_src(n, &r->from, msg, &v) != V_OK) return V_SKIP;
    f->value = v;
    if (v && json_is_number(v)) {
        f->type = FT_NUM;
    } else if (v && json_is_boolean(v)) {
        f->type = FT_BOOL;
    } else if (v && json_is_string(v)) {
        f->type = FT_STR;
        f->re = compile_re(json_string_value(v), json_string_length(v), true, NULL);
        f->own_re = f->global = f->re != NULL;
    } else {
        crm_node_error(n, msg, "Error: Invalid 'from' property: unsupported type: %s", crm_typeof(v));
        f->type = FT_NONE;
    }
    return V_OK;
}

static bool str_equals(const json_t *a, const json_t *b)
{
    return json_is_string(a) && json_is_string(b) && json_string_length(a) == json_string_length(b) &&
           !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
}

/* The new value of a property whose current value is cur, or false when the
 * rule leaves it alone. *out is a NEW ref (NULL = undefined). */
static bool changed_value(const rule *r, const json_t *cur, const from_val *f, json_t *value, json_t **out)
{
    if (cur && json_is_string(cur)) {
        if ((f->type == FT_NUM || f->type == FT_BOOL || f->type == FT_STR) && str_equals(cur, f->value)) {
            *out = json_incref(value);
            return true;
        }
        char *rep = crm_to_string(value);
        json_t *res = js_replace(f->re ? f->re : undefined_re, f->re ? f->global : false, json_string_value(cur),
                                 json_string_length(cur), rep, strlen(rep));
        free(rep);
        if (r->to_bool && (!strcmp(json_string_value(res), "true") || !strcmp(json_string_value(res), "false"))) {
            json_t *b = json_boolean(!strcmp(json_string_value(res), "true"));
            json_decref(res);
            res = b;
        }
        *out = res;
        return true;
    }
    if (cur && json_is_number(cur) && f->type == FT_NUM) {
        if (crm_num_value(cur) != crm_to_number(f->value)) return false;
        *out = json_incref(value);
        return true;
    }
    if (cur && json_is_boolean(cur) && f->type == FT_BOOL) {
        if (!json_is_string(f->value) || strcmp(json_string_value(f->value), json_is_true(cur) ? "true" : "false"))
            return false;
        *out = json_incref(value);
        return true;
    }
    return false;
}

/* *value (a NEW ref) is taken over by a set: handing on the rule's own
 * reference spares two atomic refcount updates per message. */
static int apply_msg(crm_node *n, const rule *r, json_t *msg, json_t **value, const from_val *f)
{
    if (!r->ppath) return R_CONTINUE; /* the property expression throws */
    if (r->op == OP_DELETE) {
        crm_path_set(r->ppath, msg, msg, NULL, false);
    } else if (r->op == OP_SET) {
        json_t *v = *value;
        *value = NULL;
        if (crm_path_set(r->ppath, msg, msg, v, v != NULL) == -1)
            crm_node_warn(n, "Cannot set property of non-object type: %s", r->p);
    } else if (r->op == OP_CHANGE) {
        bool thr = false;
        json_t *cur = crm_path_get(r->ppath, msg, msg, &thr);
        json_t *nv = NULL;
        if (!thr && changed_value(r, cur, f, *value, &nv)) crm_path_set(r->ppath, msg, msg, nv, nv != NULL);
    }
    return R_CONTINUE;
}

static int ctx_write(crm_node *n, const rule *r, json_t *msg, const char *key, json_t *v)
{
    if (crm_context_set(n, crm_scope_of(r->pt), key, v) == 0) return R_CONTINUE;
    crm_node_error(n, msg, "Error: cannot set context property %s", key);
    return R_STOP;
}

static int apply_ctx(crm_node *n, const rule *r, json_t *msg, json_t *value, const from_val *f)
{
    char *owned;
    const char *key = ctx_key_for(&r->pkey, msg, &owned);
    if (!key) return R_CONTINUE; /* the key's nested reference threw: rule skipped */
    int res = R_STOP; /* an unknown t on a context target never completes */
    if (r->op == OP_DELETE) {
        res = ctx_write(n, r, msg, key, NULL);
    } else if (r->op == OP_SET) {
        res = ctx_write(n, r, msg, key, json_incref(value));
    } else if (r->op == OP_CHANGE) {
        json_t *cur = crm_context_get(n, crm_scope_of(r->pt), key);
        json_t *nv = NULL;
        /* no match: Node-RED never calls back, the message vanishes (§10 check 3) */
        if (changed_value(r, cur, f, value, &nv)) res = ctx_write(n, r, msg, key, nv);
        json_decref(cur);
    }
    free(owned);
    return res;
}

static int apply_rule(crm_node *n, const rule *r, json_t *msg)
{
    json_t *value = NULL;
    int vr = r->op == OP_DELETE ? V_OK : eval_src(n, &r->to, msg, &value);
    if (vr == V_STOP) return R_STOP;
    if (vr == V_SKIP) return R_CONTINUE;
    if (r->dc && value) {
        json_t *c = crm_deep_copy(value);
        json_decref(value);
        value = c;
    }
    from_val f;
    memset(&f, 0, sizeof f);
    if (r->op == OP_CHANGE && eval_from(n, r, msg, &f) == V_SKIP) {
        json_decref(value);
        return R_CONTINUE;
    }
    int res;
    if (r->pt == SC_MSG) res = apply_msg(n, r, msg, &value, &f);
    else if (r->pt == SC_OTHER) res = R_STOP; /* Node-RED never calls back */
    else res = apply_ctx(n, r, msg, value, &f);
    from_free(&f);
    json_decref(value);
    return res;
}

/* apply_rule for a set of msg's member at it (crm_msg_walk): the new value
 * replaces the old one at its place, as crm_path_set would by name. */
static int apply_set_at(crm_node *n, const rule *r, json_t *msg, void *it)
{
    json_t *value = NULL;
    int vr = eval_src(n, &r->to, msg, &value);
    if (vr == V_STOP) return R_STOP;
    if (vr == V_SKIP) return R_CONTINUE;
    if (value && (r->dc || value == msg)) { /* msg.x = msg: a copy, as crm_path_set breaks the cycle */
        json_t *c = crm_deep_copy(value);
        json_decref(value);
        value = c;
    }
    if (!value) { /* undefined: a delete, by name */
        from_val f;
        memset(&f, 0, sizeof f);
        return apply_msg(n, r, msg, &value, &f);
    }
    json_object_iter_set_new(msg, it, value);
    return R_CONTINUE;
}

static void change_input(crm_node *n, json_t *msg)
{
    change_state *st = crm_node_data(n);
    if (!st->valid) {
        json_decref(msg);
        return;
    }
    void *it = NULL;
    bool has_id = false;
    bool walked = st->keeps_id && crm_msg_walk(msg, st->first, st->firstlen, &it, &has_id);
    size_t i = 0;
    if (it && st->first_const) {
        json_object_iter_set_new(msg, it, json_incref(st->first_const));
        i = 1;
    }
    for (; i < st->n; i++) {
        int res = i == 0 && it ? apply_set_at(n, &st->rules[0], msg, it) : apply_rule(n, &st->rules[i], msg);
        if (res == R_STOP) {
            json_decref(msg);
            return;
        }
    }
    if (walked) crm_node_send_known(n, 0, msg, has_id);
    else crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

static void change_close(crm_node *n)
{
    change_state *st = crm_node_data(n);
    if (st) state_free(st);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_change = {
    .abi = CRM_ABI_VERSION,
    .type = "change",
    .create = change_create,
    .input = change_input,
    .close = change_close,
};
