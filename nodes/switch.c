/* switch.c: the Node-RED `switch` node (spec §3.7): routes a message to the
 * outputs whose rule matches a property, comparing with JavaScript's loose
 * operators; sequence rules (head, tail, index) and "repair" buffer msg.parts
 * groups. Messages are handled one at a time in arrival order, and done is
 * never called (Node-RED's handler takes one parameter). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "hop.h"
#include "strbuf.h"


typedef enum {
    OP_EQ, OP_NEQ, OP_LT, OP_LTE, OP_GT, OP_GTE, OP_BTWN, OP_CONT, OP_REGEX, OP_TRUE, OP_FALSE, OP_NULL,
    OP_NNULL, OP_EMPTY, OP_NEMPTY, OP_ISTYPE, OP_HEAD, OP_TAIL, OP_INDEX, OP_HASK, OP_JSONATA_EXP, OP_ELSE,
    OP_UNKNOWN
} op_kind;

static const char *const op_names[] = {"eq", "neq", "lt", "lte", "gt", "gte", "btwn", "cont", "regex", "true", "false",
                                       "null", "nnull", "empty", "nempty", "istype", "head", "tail", "index", "hask",
                                       "jsonata_exp", "else"};

/* Where a value (the property, v or v2) comes from. */
typedef enum { SV_CONST, SV_PREV, SV_MSG, SV_CTX, SV_TYPED } sv_kind;

typedef struct {
    sv_kind kind;
    json_t *value;     /* SV_CONST (NULL = undefined) */
    crm_path *path;    /* SV_MSG (NULL: reading throws, so undefined) */
    crm_scope scope;   /* SV_CTX */
    char *prefix, *key;
    bool dynamic;
    crm_typed *typed;  /* SV_TYPED */
    bool jsonata;
} sval;

typedef struct {
    op_kind op;
    char *t;
    sval v1, v2;
    bool icase;
    pcre2_code *re;    /* regex with a constant pattern, compiled once */
    char *re_err;      /* its compile error, raised per message as Node-RED does */
} srule;

/* A group of msg.parts messages waiting for its count (needsCount). */
typedef struct pgroup {
    char *id;
    double count;      /* NAN until a message carries parts.count */
    json_t **msgs;
    size_t n;
    struct pgroup *next;
} pgroup;

#define SLOTS_STACK 16 /* rules per node that need no allocation per message */

/* Repair: what each message of a group matched, until the group is complete. */
typedef struct {
    json_t **slots;    /* per rule evaluated: the msg or NULL */
    size_t n;
} onward;

typedef struct ogroup {
    char *id;
    onward *rows;
    size_t n;
    double received;
    struct ogroup *next;
} ogroup;

typedef struct {
    srule *rules;
    size_t n;
    sval prop;
    bool stop_first;   /* checkall == "false" */
    bool repair, needs_count, valid;
    bool uses_prev;    /* previousValue is kept only when a rule reads it */
    const char *pname; /* the property when it is one name of msg (msg.payload): found by a walk */
    size_t pnamelen;
    json_t *prev;      /* previousValue, starts null */
    pgroup *pending;
    ogroup *out;
    double pending_count;
    double max_kept;
} switch_state;

/* JavaScript values for the operators ------------------------------------------ */

typedef enum { JV_UNDEF, JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_OBJ } jv_type;

typedef struct {
    jv_type t;
    bool b;
    double n;
    const char *s;
    size_t len;
    char *own;
    const json_t *o;
} jv;

static jv jv_of(const json_t *v)
{
    jv x;
    memset(&x, 0, sizeof x);
    if (!v) x.t = JV_UNDEF;
    else if (json_is_null(v)) x.t = JV_NULL;
    else if (json_is_boolean(v)) x.t = JV_BOOL, x.b = json_is_true(v);
    else if (json_is_number(v)) x.t = JV_NUM, x.n = crm_num_value(v);
    else if (json_is_string(v)) x.t = JV_STR, x.s = json_string_value(v), x.len = json_string_length(v);
    else x.t = JV_OBJ, x.o = v;
    return x;
}

/* ToPrimitive: objects become their String() form. */
static jv jv_prim(jv x)
{
    if (x.t != JV_OBJ) return x;
    jv r;
    memset(&r, 0, sizeof r);
    r.t = JV_STR;
    r.own = crm_to_string(x.o);
    r.s = r.own;
    r.len = crm_is_buf(x.o) ? json_string_length(json_object_get(x.o, CRM_BUF_KEY)) : strlen(r.own);
    return r;
}

static void jv_free(jv *x)
{
    free(x->own);
    x->own = NULL;
}

static double jv_num(jv x)
{
    switch (x.t) {
    case JV_UNDEF: return NAN;
    case JV_NULL: return 0;
    case JV_BOOL: return x.b ? 1 : 0;
    case JV_NUM: return x.n;
    case JV_STR: {
        char *s = strndup(x.s, x.len);
        double d = crm_str_to_number(s);
        free(s);
        return d;
    }
    case JV_OBJ: {
        jv p = jv_prim(x);
        double d = jv_num(p);
        jv_free(&p);
        return d;
    }
    }
    return NAN;
}

static bool nullish(jv x) { return x.t == JV_UNDEF || x.t == JV_NULL; }

/* a == b, JavaScript's abstract equality. */
static bool loose_eq(jv a, jv b)
{
    if (nullish(a) || nullish(b)) return nullish(a) && nullish(b);
    if (a.t == b.t) {
        switch (a.t) {
        case JV_NUM: return a.n == b.n;
        case JV_STR: return a.len == b.len && !memcmp(a.s, b.s, a.len);
        case JV_BOOL: return a.b == b.b;
        case JV_OBJ: return a.o == b.o;
        default: return true;
        }
    }
    if (a.t == JV_BOOL) {
        jv x = {.t = JV_NUM, .n = a.b ? 1 : 0};
        return loose_eq(x, b);
    }
    if (b.t == JV_BOOL) {
        jv x = {.t = JV_NUM, .n = b.b ? 1 : 0};
        return loose_eq(a, x);
    }
    if (a.t == JV_OBJ || b.t == JV_OBJ) {
        jv pa = jv_prim(a), pb = jv_prim(b);
        bool r = loose_eq(pa, pb);
        jv_free(&pa);
        jv_free(&pb);
        return r;
    }
    return jv_num(a) == jv_num(b); /* number and string */
}

/* The abstract relational comparison: -1, 0, 1, or 2 when undefined (NaN). */
static int js_cmp(jv a, jv b)
{
    jv pa = jv_prim(a), pb = jv_prim(b);
    int r;
    if (pa.t == JV_STR && pb.t == JV_STR) {
        size_t n = pa.len < pb.len ? pa.len : pb.len;
        int c = memcmp(pa.s, pb.s, n);
        r = c < 0 ? -1 : c > 0 ? 1 : pa.len < pb.len ? -1 : pa.len > pb.len ? 1 : 0;
    } else {
        double x = jv_num(pa), y = jv_num(pb);
        r = isnan(x) || isnan(y) ? 2 : x < y ? -1 : x > y ? 1 : 0;
    }
    jv_free(&pa);
    jv_free(&pb);
    return r;
}

/* Two numbers (NaN and the infinities are reals here too): C's comparisons
 * of doubles are JavaScript's, NaN unordered and -0 equal to 0, so they are
 * compared without the general conversions above. */
static inline bool two_numbers(const json_t *a, const json_t *b, double *x, double *y)
{
    if (!a || !b || !json_is_number(a) || !json_is_number(b)) return false;
    *x = json_is_real(a) ? json_real_value(a) : (double)json_integer_value(a);
    *y = json_is_real(b) ? json_real_value(b) : (double)json_integer_value(b);
    return true;
}

static bool js_lt(const json_t *a, const json_t *b)
{
    double x, y;
    if (two_numbers(a, b, &x, &y)) return x < y;
    return js_cmp(jv_of(a), jv_of(b)) == -1;
}
static bool js_gt(const json_t *a, const json_t *b)
{
    double x, y;
    if (two_numbers(a, b, &x, &y)) return x > y;
    return js_cmp(jv_of(a), jv_of(b)) == 1;
}
static bool js_lte(const json_t *a, const json_t *b)
{
    double x, y;
    if (two_numbers(a, b, &x, &y)) return x <= y;
    int r = js_cmp(jv_of(a), jv_of(b));
    return r == -1 || r == 0;
}
static bool js_gte(const json_t *a, const json_t *b)
{
    double x, y;
    if (two_numbers(a, b, &x, &y)) return x >= y;
    int r = js_cmp(jv_of(a), jv_of(b));
    return r == 1 || r == 0;
}
static bool js_eq(const json_t *a, const json_t *b)
{
    double x, y;
    if (two_numbers(a, b, &x, &y)) return x == y;
    return loose_eq(jv_of(a), jv_of(b));
}

/* Regular expressions ---------------------------------------------------------------- */

static pcre2_code *compile_re(const char *pat, size_t len, bool icase, char **err)
{
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_BSUX | PCRE2_MATCH_UNSET_BACKREF |
                    PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS;
    if (icase) opts |= PCRE2_CASELESS;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &ec, &eo, NULL);
    if (!re && err) {
        PCRE2_UCHAR m[256];
        pcre2_get_error_message(ec, m, sizeof m);
        strbuf sb = SB_INIT;
        sb_printf(&sb, "SyntaxError: Invalid regular expression: /%.*s/%s: %s", (int)len, pat, icase ? "i" : "",
                  (const char *)m);
        *err = sb_take(&sb);
    }
    return re;
}

/* new RegExp(b): undefined gives the empty pattern. */
static char *pattern_of(const json_t *b)
{
    return b ? crm_to_string(b) : strdup("");
}

/* String(v) with its length (a Buffer's text may hold NUL bytes). */
static char *js_string(const json_t *v, size_t *len)
{
    if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        char *s = malloc(n + 1);
        memcpy(s, d, n);
        s[n] = 0;
        *len = n;
        return s;
    }
    if (json_is_string(v)) {
        *len = json_string_length(v);
        return strndup(json_string_value(v), *len);
    }
    char *s = crm_to_string(v);
    *len = strlen(s);
    return s;
}

static bool re_test(const pcre2_code *re, const char *s, size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Values ----------------------------------------------------------------------------- */

static double js_number(const json_t *v)
{
    return jv_num(jv_of(v));
}

static bool ident_type(const char *vt)
{
    return !strcmp(vt, "str") || !strcmp(vt, "num") || !strcmp(vt, "bool") || !strcmp(vt, "re") ||
           !strcmp(vt, "date") || !strcmp(vt, "bin") || !strcmp(vt, "env") || !strcmp(vt, "jsonata") ||
           !strcmp(vt, "json");
}

static void sval_ctx(sval *s, crm_scope scope, const char *text)
{
    s->kind = SV_CTX;
    s->scope = scope;
    const char *key = text;
    const char *e = !strncmp(text, "#:(", 3) ? strstr(text, ")::") : NULL;
    if (e && e > text + 3) {
        s->prefix = strndup(text, (size_t)(e + 3 - text));
        key = e + 3;
    } else {
        s->prefix = strdup("");
    }
    s->key = strdup(key);
    s->dynamic = strstr(key, "[msg") != NULL;
}

static char *jsonata_err_text(const char *err)
{
    const char *prefix = "Invalid JSONata expression: ";
    strbuf sb = SB_INIT;
    if (err && !strncmp(err, prefix, strlen(prefix))) sb_puts(&sb, err);
    else sb_printf(&sb, "%s%s", prefix, err ? err : "error");
    return sb_take(&sb);
}

/* The field being compiled ("rules[1].v"), for config_problem. */
static _Thread_local char cur_field[48];

static bool strict_check(crm_node *n) { return crm_cfg_bool(crm_node_settings(n), "_checkStrict", false); }

/* A bad JSONata value: Node-RED's switch node logs it at start and then drops
 * every message, and so does `carmine run`; `carmine check` (its setting
 * "_checkStrict") refuses the flows instead, naming node, field and reason. */
static void config_problem(crm_node *n, const char *text)
{
    if (strict_check(n)) crm_node_config_error(n, cur_field, "%s", text);
    else crm_node_error(n, NULL, "%s", text);
}

/* Compiles a value of type vt. false (logged) for invalid JSONata. */
static bool sval_init(crm_node *n, sval *s, const char *vt, const json_t *v)
{
    memset(s, 0, sizeof *s);
    s->kind = SV_CONST;
    if (!strcmp(vt, "prev")) {
        s->kind = SV_PREV;
    } else if (!strcmp(vt, "msg")) {
        s->kind = SV_MSG;
        s->path = json_is_string(v) ? crm_path_parse(json_string_value(v), NULL) : NULL;
    } else if (!strcmp(vt, "flow") || !strcmp(vt, "global")) {
        sval_ctx(s, !strcmp(vt, "flow") ? CRM_SCOPE_FLOW : CRM_SCOPE_GLOBAL, json_is_string(v) ? json_string_value(v) : "");
    } else if (!strcmp(vt, "str")) {
        size_t len;
        char *str = js_string(v, &len);
        s->value = json_stringn(str, len);
        free(str);
    } else if (!strcmp(vt, "num")) {
        s->value = crm_num(js_number(v));
    } else if (!strcmp(vt, "bool")) {
        char *str = crm_to_string(v);
        s->value = json_boolean(!strcasecmp(str, "true"));
        free(str);
    } else if (ident_type(vt)) {
        char *err = NULL;
        json_t *empty = json_string("");
        s->typed = crm_typed_new(n, vt, v ? v : empty, &err);
        json_decref(empty);
        s->jsonata = !strcmp(vt, "jsonata");
        if (s->typed) {
            s->kind = SV_TYPED;
        } else if (s->jsonata) {
            char *t = jsonata_err_text(err);
            config_problem(n, t);
            free(t);
            free(err);
            return false;
        }
        free(err); /* other bad values read as undefined per message, as Node-RED's throw does */
    } else {
        s->value = v ? crm_deep_copy(v) : NULL; /* istype names and other types: the raw value */
    }
    return true;
}

static void sval_free(sval *s)
{
    json_decref(s->value);
    crm_path_free(s->path);
    free(s->prefix);
    free(s->key);
    crm_typed_free(s->typed);
}

/* A value for msg: 0 with *out (NEW ref, NULL = undefined), or -1 with *err
 * (JSONata errors only; other read errors give undefined). */
static int sval_eval(crm_node *n, const switch_state *st, const sval *s, json_t *msg, json_t *vars, json_t **out,
                     char **err)
{
    *out = NULL;
    switch (s->kind) {
    case SV_CONST:
        *out = json_incref(s->value);
        return 0;
    case SV_PREV:
        *out = json_incref(st->prev);
        return 0;
    case SV_MSG: {
        if (!s->path) return 0;
        bool thr = false;
        json_t *v = crm_path_get(s->path, msg, msg, &thr);
        *out = thr ? NULL : json_incref(v);
        return 0;
    }
    case SV_CTX: {
        char *key = NULL;
        if (s->dynamic) {
            char *e = NULL;
            char *r = crm_path_resolve_key(s->key, msg, &e);
            free(e);
            if (!r) return 0;
            key = malloc(strlen(s->prefix) + strlen(r) + 1);
            strcpy(key, s->prefix);
            strcat(key, r);
            free(r);
        } else {
            key = malloc(strlen(s->prefix) + strlen(s->key) + 1);
            strcpy(key, s->prefix);
            strcat(key, s->key);
        }
        *out = crm_context_get(n, s->scope, key);
        free(key);
        return 0;
    }
    case SV_TYPED: {
        char *e = NULL;
        if (crm_typed_eval_with(n, s->typed, msg, vars, out, &e) == 0) return 0;
        if (s->jsonata) {
            *err = jsonata_err_text(e);
            free(e);
            return -1;
        }
        free(e);
        *out = NULL;
        return 0;
    }
    }
    return 0;
}

/* Config ------------------------------------------------------------------------------------ */

static op_kind op_of(const char *t)
{
    for (size_t i = 0; i < sizeof op_names / sizeof *op_names; i++)
        if (!strcmp(t, op_names[i])) return (op_kind)i;
    return OP_UNKNOWN;
}

/* Node-RED's normalisation: a missing vt is num when Number(v) is a number,
 * else str; a num v becomes Number(v). */
static json_t *normalised(const json_t *v, const char **vt, bool always_num)
{
    if (!*vt || !**vt) *vt = isnan(js_number(v)) ? "str" : "num";
    if (!strcmp(*vt, "num")) {
        double d = js_number(v);
        if (always_num || !isnan(d)) return crm_num(d);
    }
    return v ? json_incref((json_t *)v) : NULL;
}

static bool rule_init(crm_node *n, srule *r, const json_t *cfg)
{
    memset(r, 0, sizeof *r);
    r->t = strdup(crm_cfg_str(cfg, "t", ""));
    r->op = op_of(r->t);
    r->icase = crm_truthy(json_object_get(cfg, "case"));
    const char *vt = crm_cfg_str(cfg, "vt", NULL);
    json_t *v = normalised(json_object_get(cfg, "v"), &vt, false);
    bool ok = true;
    if (!strcmp(vt, "json") || !strcmp(vt, "null")) {
        r->v1.kind = SV_CONST;
        r->v1.value = json_string(vt); /* Node-RED passes the type name itself */
    } else {
        snprintf(cur_field + strlen(cur_field), sizeof cur_field - strlen(cur_field), ".v");
        ok = sval_init(n, &r->v1, vt, v);
        cur_field[strlen(cur_field) - 2] = 0;
    }
    json_decref(v);
    const json_t *v2raw = json_object_get(cfg, "v2");
    const char *v2t = crm_cfg_str(cfg, "v2t", NULL);
    if (v2raw) {
        json_t *v2 = normalised(v2raw, &v2t, true);
        snprintf(cur_field + strlen(cur_field), sizeof cur_field - strlen(cur_field), ".v2");
        ok = sval_init(n, &r->v2, v2t, v2) && ok;
        cur_field[strlen(cur_field) - 3] = 0;
        json_decref(v2);
    } else if (v2t && !strcmp(v2t, "prev")) {
        r->v2.kind = SV_PREV;
    } else {
        r->v2.kind = SV_CONST; /* undefined */
    }
    if (r->op == OP_REGEX && r->v1.kind == SV_CONST) {
        char *pat = pattern_of(r->v1.value);
        r->re = compile_re(pat, strlen(pat), r->icase, &r->re_err);
        free(pat);
        /* Node-RED builds the RegExp per message and logs the error then; only
         * `carmine check` reports it at once */
        if (!r->re && strict_check(n)) {
            char field[64];
            snprintf(field, sizeof field, "%s.v", cur_field);
            crm_node_config_error(n, field, "%s", r->re_err ? r->re_err : "invalid regular expression");
            ok = false;
        }
    }
    return ok;
}

static int switch_create(crm_node *n, const json_t *config)
{
    switch_state *st = calloc(1, sizeof *st);
    crm_node_set_data(n, st);
    st->prev = json_null();
    st->valid = true;
    const char *pt = crm_cfg_str(config, "propertyType", "");
    if (!*pt) pt = "msg";
    const json_t *prop = json_object_get(config, "property");
    snprintf(cur_field, sizeof cur_field, "property");
    if (!sval_init(n, &st->prop, pt, prop)) {
        st->valid = false;
        return strict_check(n) ? -1 : 0;
    }
    if (st->prop.kind == SV_MSG) crm_path_one_name(st->prop.path, &st->pname, &st->pnamelen);
    /* only the string "false" stops at the first match; a falsy checkall means "true" */
    const json_t *ca = json_object_get(config, "checkall");
    st->stop_first = crm_truthy(ca) && !strcmp(crm_cfg_str(config, "checkall", ""), "false");
    st->repair = crm_truthy(json_object_get(config, "repair"));
    st->needs_count = st->repair;
    const json_t *rules = json_object_get(config, "rules");
    size_t nr = json_is_array(rules) ? json_array_size(rules) : 0;
    st->rules = calloc(nr ? nr : 1, sizeof(srule));
    for (size_t i = 0; i < nr; i++) {
        const json_t *rc = json_array_get(rules, i);
        json_t *empty = json_object();
        snprintf(cur_field, sizeof cur_field, "rules[%zu]", i);
        if (!rule_init(n, &st->rules[i], json_is_object(rc) ? rc : empty)) st->valid = false;
        json_decref(empty);
        if (st->rules[i].v1.kind == SV_PREV || st->rules[i].v2.kind == SV_PREV) st->uses_prev = true;
        st->n++;
        if (st->rules[i].op == OP_TAIL) st->needs_count = true;
    }
    const json_t *settings = crm_node_settings(n);
    st->max_kept = crm_cfg_num(settings, "nodeMessageBufferMaxLength", 0);
    return !st->valid && strict_check(n) ? -1 : 0;
}

/* Operators ---------------------------------------------------------------------------------- */

static bool is_empty_like(const json_t *a, bool *container)
{
    *container = true;
    if (!a) return (*container = false);
    if (json_is_string(a)) return json_string_length(a) == 0;
    if (json_is_array(a)) return json_array_size(a) == 0;
    if (crm_is_buf(a)) return json_string_length(json_object_get(a, CRM_BUF_KEY)) == 0;
    if (json_is_object(a)) return json_object_size(a) == 0;
    return (*container = false);
}

static bool is_type(const json_t *a, const json_t *b)
{
    const char *t = json_is_string(b) ? json_string_value(b) : "";
    if (!strcmp(t, "array")) return json_is_array(a);
    if (!strcmp(t, "buffer")) return crm_is_buf(a);
    if (!strcmp(t, "json")) {
        char *s = crm_to_string(a);
        char err[64];
        json_t *v = crm_parse(s, strlen(s), err, sizeof err);
        free(s);
        json_decref(v);
        return v != NULL;
    }
    if (!strcmp(t, "null")) return a && json_is_null(a);
    if (!strcmp(t, "number") && a && json_is_number(a) && isnan(crm_num_value(a))) return false;
    if (json_is_array(a) || crm_is_buf(a) || (a && json_is_null(a))) return false;
    return !strcmp(crm_typeof(a), t);
}

/* a.hasOwnProperty(String(b)) for a non-nullish a. */
static bool has_own(const json_t *a, const json_t *b)
{
    char *k = crm_to_string(b);
    size_t klen = strlen(k);
    bool r = false;
    bool index = klen && strspn(k, "0123456789") == klen && (klen == 1 || k[0] != '0');
    size_t idx = index ? strtoul(k, NULL, 10) : 0;
    if (crm_is_buf(a)) r = index && idx < json_string_length(json_object_get(a, CRM_BUF_KEY));
    else if (crm_is_handle(a)) r = false;
    else if (json_is_object(a)) r = json_object_getn(a, k, klen) != NULL;
    else if (json_is_array(a)) r = !strcmp(k, "length") || (index && idx < json_array_size(a));
    else if (json_is_string(a)) r = !strcmp(k, "length") || (index && idx < json_string_length(a));
    free(k);
    return r;
}

static const json_t *parts_of(const json_t *msg, char **err)
{
    const json_t *p = json_object_get(msg, "parts");
    if (!p || json_is_null(p)) {
        *err = strdup(p ? "TypeError: Cannot read properties of null (reading 'index')"
                        : "TypeError: Cannot read properties of undefined (reading 'index')");
        return NULL;
    }
    return p;
}

/* The rule's operator: 1 match, 0 no match, -1 an exception (*err). */
static int apply_op(const srule *r, const json_t *a, const json_t *b, const json_t *c, const json_t *msg, char **err)
{
    bool container;
    switch (r->op) {
    case OP_EQ: return js_eq(a, b);
    case OP_NEQ: return !js_eq(a, b);
    case OP_LT: return js_lt(a, b);
    case OP_LTE: return js_lte(a, b);
    case OP_GT: return js_gt(a, b);
    case OP_GTE: return js_gte(a, b);
    case OP_BTWN: return (js_gte(a, b) && js_lte(a, c)) || (js_lte(a, b) && js_gte(a, c));
    case OP_CONT: {
        size_t slen, tlen;
        char *s = js_string(a, &slen), *t = js_string(b, &tlen);
        bool hit = memmem(s, slen, t, tlen) != NULL;
        free(s);
        free(t);
        return hit;
    }
    case OP_REGEX: {
        pcre2_code *re = r->re;
        if (!re && r->re_err) {
            *err = strdup(r->re_err);
            return -1;
        }
        if (!re) {
            char *pat = pattern_of(b);
            re = compile_re(pat, strlen(pat), r->icase, err);
            free(pat);
            if (!re) return -1;
        }
        size_t slen;
        char *s = js_string(a, &slen);
        bool hit = re_test(re, s, slen);
        free(s);
        if (re != r->re) pcre2_code_free(re);
        return hit;
    }
    case OP_TRUE: return a && json_is_true(a);
    case OP_FALSE: return a && json_is_false(a);
    case OP_NULL: return !a || json_is_null(a);
    case OP_NNULL: return a && !json_is_null(a);
    case OP_EMPTY: return is_empty_like(a, &container) && container;
    case OP_NEMPTY: return !is_empty_like(a, &container) && container;
    case OP_ISTYPE: return is_type(a, b);
    case OP_HASK: return a && !json_is_null(a) && !(b && !json_is_string(b) && !json_is_number(b) && !json_is_boolean(b)) &&
                         has_own(a, b);
    case OP_HEAD:
    case OP_TAIL:
    case OP_INDEX: {
        const json_t *p = parts_of(msg, err);
        if (!p) return -1;
        const json_t *idx = json_object_get(p, "index");
        if (r->op == OP_HEAD) {
            json_t *cnt = crm_num(js_number(b));
            bool m = js_lt(idx, cnt);
            json_decref(cnt);
            return m;
        }
        if (r->op == OP_TAIL) {
            json_t *lo = crm_num(js_number(json_object_get(p, "count")) - js_number(b));
            bool m = js_lte(lo, idx);
            json_decref(lo);
            return m;
        }
        json_t *lo = crm_num(js_number(b)), *hi = crm_num(js_number(c));
        bool m = js_lte(lo, idx) && js_lte(idx, hi);
        json_decref(lo);
        json_decref(hi);
        return m;
    }
    case OP_JSONATA_EXP: return b && json_is_true(b);
    case OP_ELSE: return a && json_is_true(a);
    case OP_UNKNOWN: break;
    }
    *err = strdup("TypeError: operators[rule.t] is not a function");
    return -1;
}

/* Rules --------------------------------------------------------------------------------------- */

static bool has_parts(const json_t *msg)
{
    const json_t *p = json_object_get(msg, "parts");
    return json_is_object(p) && json_object_get(p, "id") && json_object_get(p, "index");
}

/* Evaluates every rule: 0 with the onward slots (the msg, borrowed, or NULL per
 * rule evaluated; out->slots holds st->n entries), -1 with *err. */
static int apply_rules(crm_node *n, switch_state *st, json_t *msg, json_t *prop, onward *out, char **err)
{
    out->n = 0;
    bool elseflag = true;
    int parts = -1; /* has_parts(msg), asked only for a JSONata rule */
    int rc = 0;
    for (size_t i = 0; i < st->n && rc == 0; i++) {
        const srule *r = &st->rules[i];
        json_t *vars = NULL;
        if (r->op == OP_JSONATA_EXP && r->v1.jsonata && parts < 0) parts = has_parts(msg);
        if (r->op == OP_JSONATA_EXP && parts > 0 && r->v1.jsonata) {
            const json_t *p = json_object_get(msg, "parts");
            vars = json_object();
            json_object_set(vars, "I", json_object_get(p, "index"));
            if (json_object_get(p, "count")) json_object_set(vars, "N", json_object_get(p, "count"));
        }
        /* a constant is used as it is (the rule keeps it), the others are
         * new references */
        json_t *b = r->v1.value, *c = r->v2.value;
        bool own_b = r->v1.kind != SV_CONST, own_c = r->v2.kind != SV_CONST;
        if (own_b) rc = sval_eval(n, st, &r->v1, msg, vars, &b, err);
        json_decref(vars);
        if (rc == 0 && own_c) rc = sval_eval(n, st, &r->v2, msg, NULL, &c, err);
        if (rc == 0) {
            json_t *a = prop;
            if (r->op == OP_ELSE) {
                a = json_boolean(elseflag);
                elseflag = true;
            }
            int m = apply_op(r, a, b, c, msg, err);
            if (r->op == OP_ELSE) json_decref(a);
            if (m < 0) {
                rc = -1;
            } else {
                out->slots[out->n++] = m ? msg : NULL;
                if (m) elseflag = false;
                if (m && st->stop_first) {
                    if (own_b) json_decref(b);
                    if (own_c) json_decref(c);
                    break;
                }
            }
        }
        if (own_b) json_decref(b);
        if (own_c) json_decref(c);
    }
    if (rc == 0 && st->n && st->uses_prev) {
        json_decref(st->prev);
        /* a copy: the message goes on to other nodes, maybe other threads */
        st->prev = prop ? crm_deep_copy(prop) : NULL;
    }
    return rc;
}

/* has_id: -1 unknown, else whether msg._msgid is truthy (crm_msg_walk) */
static void send_onward(crm_node *n, const onward *o, int has_id)
{
    int np = (int)o->n;
    if (has_id >= 0) { /* every slot is the one msg: the slots become its references */
        for (int i = 0; i < np; i++)
            if (o->slots[i]) json_incref(o->slots[i]);
        crm_node_send_same(n, o->slots, np, has_id);
        return;
    }
    bool any = false;
    for (int i = 0; i < np; i++) any = any || o->slots[i];
    if (!any) return;
    json_t *stack[SLOTS_STACK];
    json_t **msgs = np <= SLOTS_STACK ? stack : malloc((size_t)np * sizeof(json_t *));
    for (int i = 0; i < np; i++) msgs[i] = o->slots[i] ? json_incref(o->slots[i]) : NULL;
    crm_node_send_ports(n, msgs, np);
    if (msgs != stack) free(msgs);
}

/* Repair ----------------------------------------------------------------------------------------- */

static char *id_key(const json_t *id)
{
    return crm_to_string(id); /* JavaScript object keys are strings */
}

static void clear_pending(switch_state *st)
{
    while (st->pending) {
        pgroup *g = st->pending;
        st->pending = g->next;
        for (size_t i = 0; i < g->n; i++) json_decref(g->msgs[i]);
        free(g->msgs);
        free(g->id);
        free(g);
    }
    while (st->out) {
        ogroup *g = st->out;
        st->out = g->next;
        for (size_t i = 0; i < g->n; i++) {
            for (size_t j = 0; j < g->rows[i].n; j++) json_decref(g->rows[i].slots[j]);
            free(g->rows[i].slots);
        }
        free(g->rows);
        free(g->id);
        free(g);
    }
    st->pending_count = 0;
}

/* One send per original message; each port's messages are copies renumbered
 * as a sequence of their own (a new parts.id per port). */
static void send_group(crm_node *n, ogroup *g, size_t nports)
{
    double *counts = calloc(nports ? nports : 1, sizeof(double));
    double *indexes = calloc(nports ? nports : 1, sizeof(double));
    char (*ids)[17] = calloc(nports ? nports : 1, 17);
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = 0; j < nports; j++)
            counts[j] += (j >= g->rows[i].n || g->rows[i].slots[j]) ? 1 : 0; /* undefined !== null counts */
    for (size_t j = 0; j < nports; j++) crm_make_id(ids[j]);
    for (size_t i = 0; i < g->n; i++) {
        json_t **ports = calloc(nports ? nports : 1, sizeof(json_t *));
        for (size_t j = 0; j < nports; j++) {
            json_t *m = j < g->rows[i].n ? g->rows[i].slots[j] : NULL;
            if (!m) continue;
            json_t *copy = crm_msg_clone(m);
            json_t *parts = json_object_get(copy, "parts");
            if (json_is_object(parts)) {
                json_object_set_new(parts, "id", json_string(ids[j]));
                json_object_set_new(parts, "index", json_real(indexes[j]));
                json_object_set_new(parts, "count", json_real(counts[j]));
            }
            indexes[j]++;
            ports[j] = copy;
        }
        crm_node_send_ports(n, ports, (int)nports);
        free(ports);
    }
    free(counts);
    free(indexes);
    free(ids);
}

static void ogroup_remove(switch_state *st, ogroup *g)
{
    for (ogroup **pp = &st->out; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        for (size_t j = 0; j < g->rows[i].n; j++) json_decref(g->rows[i].slots[j]);
        free(g->rows[i].slots);
    }
    free(g->rows);
    free(g->id);
    free(g);
}

static void too_many(crm_node *n, switch_state *st, const json_t *msg)
{
    if (st->max_kept > 0 && st->pending_count > st->max_kept) {
        clear_pending(st);
        crm_node_error(n, msg, "too many pending messages in switch node");
    }
}

/* Collects what one message of a group matched; sends the group once all
 * parts.count of it went through the rules. */
static void send_group_messages(crm_node *n, switch_state *st, onward *o, json_t *msg)
{
    const json_t *parts = json_object_get(msg, "parts");
    char *gid = id_key(json_object_get(parts, "id"));
    ogroup *g = st->out;
    while (g && strcmp(g->id, gid)) g = g->next;
    if (!g) {
        g = calloc(1, sizeof *g);
        g->id = gid;
        g->next = st->out;
        st->out = g;
    } else {
        free(gid);
    }
    g->received++;
    bool send_ok = g->received == js_number(json_object_get(parts, "count"));
    onward row = {malloc((o->n ? o->n : 1) * sizeof(json_t *)), o->n};
    for (size_t j = 0; j < o->n; j++) row.slots[j] = json_incref(o->slots[j]);
    g->rows = realloc(g->rows, (g->n + 1) * sizeof(onward));
    g->rows[g->n++] = row;
    st->pending_count++;
    if (send_ok) {
        size_t nports = g->rows[g->n - 1].n;
        send_group(n, g, nports);
        st->pending_count -= (double)nports;
        ogroup_remove(st, g);
    }
    too_many(n, st, msg);
}

/* Processing -------------------------------------------------------------------------------------- */

/* Runs the rules on msg (stolen) and sends. */
static void process_message(crm_node *n, switch_state *st, json_t *msg)
{
    json_t *prop = NULL;
    char *err = NULL;
    /* msg.payload and its like: one walk over a small message reads the
     * property and whether msg has a _msgid (the send's question). Nothing
     * the rules evaluate writes to msg, so the answer holds until the send. */
    void *it;
    bool id;
    int has_id = -1;
    if (st->pname && crm_msg_walk(msg, st->pname, st->pnamelen, &it, &id)) {
        prop = it ? json_incref(json_object_iter_value(it)) : NULL;
        has_id = id;
    } else if (sval_eval(n, st, &st->prop, msg, NULL, &prop, &err)) {
        crm_node_warn(n, "%s", err);
        free(err);
        json_decref(msg);
        return;
    }
    json_t *stack[SLOTS_STACK];
    onward o = {st->n <= SLOTS_STACK ? stack : malloc(st->n * sizeof(json_t *)), 0};
    if (apply_rules(n, st, msg, prop, &o, &err)) {
        crm_node_error(n, msg, "%s", err ? err : "error");
        free(err);
    } else if (!st->repair || !has_parts(msg)) {
        send_onward(n, &o, has_id);
    } else {
        send_group_messages(n, st, &o, msg);
    }
    if (o.slots != stack) free(o.slots);
    json_decref(prop);
    json_decref(msg);
}

static pgroup *find_group(switch_state *st, const char *id)
{
    for (pgroup *g = st->pending; g; g = g->next)
        if (!strcmp(g->id, id)) return g;
    pgroup *g = calloc(1, sizeof *g);
    g->id = strdup(id);
    g->count = NAN;
    g->next = st->pending;
    st->pending = g;
    return g;
}

static void drop_group(switch_state *st, pgroup *g)
{
    for (pgroup **pp = &st->pending; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    free(g->msgs);
    free(g->id);
    free(g);
}

/* Buffers msg (stolen) until its group is complete, then runs the group. */
static void add_to_pending(crm_node *n, switch_state *st, json_t *msg)
{
    json_t *parts = json_object_get(msg, "parts");
    char *id = id_key(json_object_get(parts, "id"));
    pgroup *g = find_group(st, id);
    free(id);
    g->msgs = realloc(g->msgs, (g->n + 1) * sizeof(json_t *));
    g->msgs[g->n++] = msg;
    st->pending_count++;
    if (st->max_kept > 0 && st->pending_count > st->max_kept) {
        too_many(n, st, msg); /* frees every group, g included */
        return;
    }
    if (json_object_get(parts, "count")) g->count = js_number(json_object_get(parts, "count"));
    if (g->count != (double)g->n) return;
    size_t count = g->n;
    json_t **msgs = g->msgs;
    g->msgs = NULL;
    g->n = 0;
    drop_group(st, g);
    st->pending_count -= (double)count;
    for (size_t i = 0; i < count; i++) {
        json_t *p = json_object_get(msgs[i], "parts");
        if (json_is_object(p)) json_object_set_new(p, "count", json_real((double)count));
        process_message(n, st, msgs[i]);
    }
    free(msgs);
}

static void switch_input(crm_node *n, json_t *msg)
{
    switch_state *st = crm_node_data(n);
    if (!st->valid) {
        json_decref(msg);
        return;
    }
    if (st->needs_count && has_parts(msg)) add_to_pending(n, st, msg);
    else process_message(n, st, msg);
}

static void switch_close(crm_node *n)
{
    switch_state *st = crm_node_data(n);
    if (!st) return;
    clear_pending(st);
    for (size_t i = 0; i < st->n; i++) {
        srule *r = &st->rules[i];
        free(r->t);
        sval_free(&r->v1);
        sval_free(&r->v2);
        pcre2_code_free(r->re);
        free(r->re_err);
    }
    free(st->rules);
    sval_free(&st->prop);
    json_decref(st->prev);
    free(st);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_switch = {
    .abi = CRM_ABI_VERSION,
    .type = "switch",
    .create = switch_create,
    .input = switch_input,
    .close = switch_close,
};
