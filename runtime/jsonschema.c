/* jsonschema.c: draft-07 JSON Schema validation with ajv 8's rules and
 * wording (see jsonschema.h).
 *
 * ajv compiles a schema to code; here the schema is walked at validation
 * time, in the order ajv's generated code checks things:
 *  - a `type` error comes first, unless the schema has a single type whose
 *    keyword group is used (then it is reported where that group runs);
 *  - then the keywords without a type ($ref, const, enum, not, anyOf, oneOf,
 *    allOf, if), then the number, string, array and object groups, each
 *    only when the data has that type, each in ajv's keyword order;
 *  - allErrors: every failing keyword adds its error; composite keywords
 *    (anyOf, oneOf, not, if) drop the errors of their branches when they pass.
 * Patterns are PCRE2 in UTF mode (ajv's `new RegExp(p, "u")`), compiled
 * once per schema. */
#define _POSIX_C_SOURCE 200809L
#define PCRE2_CODE_UNIT_WIDTH 8
#include "jsonschema.h"

#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"

typedef struct re_entry {
    char *pattern;
    pcre2_code *re;
    struct re_entry *next;
} re_entry;

struct crm_jschema {
    json_t *root;
    re_entry *res;
    const json_t **checked; /* $ref targets strict_check has walked */
    size_t nchecked;
};

/* Compile-time checks (strict mode and the draft-07 meta-schema) ------------------ */

static const char *const TYPES[] = {"null", "boolean", "object", "array", "number", "string", "integer"};

static bool type_name_ok(const json_t *t)
{
    if (!json_is_string(t)) return false;
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++)
        if (!strcmp(json_string_value(t), TYPES[i])) return true;
    return false;
}

static pcre2_code *get_re(crm_jschema *s, const char *pat)
{
    for (re_entry *e = s->res; e; e = e->next)
        if (!strcmp(e->pattern, pat)) return e->re;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_UNSET_BACKREF,
                                   &ec, &eo, NULL);
    if (!re) return NULL;
    re_entry *e = calloc(1, sizeof *e);
    e->pattern = strdup(pat);
    e->re = re;
    e->next = s->res;
    s->res = e;
    return re;
}

static bool is_nonneg_int(const json_t *v)
{
    if (!json_is_number(v)) return false;
    double d = crm_num_value(v);
    return d >= 0 && d == floor(d);
}

static bool check_schema(crm_jschema *s, const json_t *sch, char **err);

static bool check_schema_map(crm_jschema *s, const json_t *m, char **err)
{
    if (!json_is_object(m)) return false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) if (!check_schema(s, v, err)) return false;
    return true;
}

static bool check_schema_array(crm_jschema *s, const json_t *a, bool nonempty, char **err)
{
    if (!json_is_array(a) || (nonempty && !json_array_size(a))) return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!check_schema(s, v, err)) return false;
    return true;
}

static bool unique_items(const json_t *a)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        for (size_t j = i + 1; j < json_array_size(a); j++)
            if (crm_equal(json_array_get(a, i), json_array_get(a, j))) return false;
    return true;
}

/* the meta-schema's stringArray: strings, no duplicates */
static bool string_array(const json_t *a)
{
    if (!json_is_array(a)) return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v)) return false;
    return unique_items(a);
}

static bool fail(char **err, const char *fmt, const char *what)
{
    if (err && !*err) {
        strbuf sb = SB_INIT;
        sb_printf(&sb, fmt, what);
        *err = sb_take(&sb);
    }
    return false;
}

static bool check_schema(crm_jschema *s, const json_t *sch, char **err)
{
    if (json_is_boolean(sch)) return true;
    if (!json_is_object(sch)) return fail(err, "schema must be object or boolean%s", "");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sch, k, v)
    {
        bool ok = true;
        if (!strcmp(k, "type")) {
            if (json_is_array(v)) {
                size_t i;
                json_t *t;
                json_array_foreach(v, i, t) if (!type_name_ok(t)) ok = false;
                if (!json_array_size(v) || !unique_items(v)) ok = false;
            } else {
                ok = type_name_ok(v);
            }
        } else if (!strcmp(k, "properties") || !strcmp(k, "definitions") || !strcmp(k, "patternProperties")) {
            ok = check_schema_map(s, v, err);
            if (ok && !strcmp(k, "patternProperties")) {
                const char *p;
                json_t *x;
                json_object_foreach(v, p, x) if (!get_re(s, p)) return fail(err, "invalid pattern \"%s\"", p);
            }
        } else if (!strcmp(k, "dependencies")) {
            if (!json_is_object(v)) ok = false;
            const char *p;
            json_t *x;
            if (ok) json_object_foreach(v, p, x) if (!string_array(x) && !check_schema(s, x, err)) ok = false;
        } else if (!strcmp(k, "items")) {
            ok = json_is_array(v) ? check_schema_array(s, v, true, err) : check_schema(s, v, err);
        } else if (!strcmp(k, "additionalItems") || !strcmp(k, "additionalProperties") || !strcmp(k, "contains") ||
                   !strcmp(k, "propertyNames") || !strcmp(k, "not") || !strcmp(k, "if") || !strcmp(k, "then") ||
                   !strcmp(k, "else")) {
            ok = check_schema(s, v, err);
        } else if (!strcmp(k, "allOf") || !strcmp(k, "anyOf") || !strcmp(k, "oneOf")) {
            ok = check_schema_array(s, v, true, err);
        } else if (!strcmp(k, "required")) {
            ok = string_array(v);
        } else if (!strcmp(k, "enum")) {
            ok = json_is_array(v) && json_array_size(v) && unique_items(v);
        } else if (!strcmp(k, "examples")) {
            ok = json_is_array(v);
        } else if (!strcmp(k, "const") || !strcmp(k, "default")) {
            ok = true;
        } else if (!strcmp(k, "multipleOf")) {
            ok = json_is_number(v) && crm_num_value(v) > 0;
        } else if (!strcmp(k, "maximum") || !strcmp(k, "minimum") || !strcmp(k, "exclusiveMaximum") ||
                   !strcmp(k, "exclusiveMinimum")) {
            ok = json_is_number(v);
        } else if (!strcmp(k, "maxLength") || !strcmp(k, "minLength") || !strcmp(k, "maxItems") ||
                   !strcmp(k, "minItems") || !strcmp(k, "maxProperties") || !strcmp(k, "minProperties")) {
            ok = is_nonneg_int(v);
        } else if (!strcmp(k, "pattern")) {
            ok = json_is_string(v) && get_re(s, json_string_value(v));
        } else if (!strcmp(k, "format")) {
            ok = json_is_string(v); /* unknown to ajv 8 anyway: strict_check refuses it */
        } else if (!strcmp(k, "uniqueItems") || !strcmp(k, "readOnly") || !strcmp(k, "writeOnly")) {
            ok = json_is_boolean(v);
        } else if (!strcmp(k, "$ref") || !strcmp(k, "$id") || !strcmp(k, "$comment") || !strcmp(k, "title") ||
                   !strcmp(k, "description") || !strcmp(k, "contentMediaType") || !strcmp(k, "contentEncoding")) {
            ok = json_is_string(v);
            if (ok && !strcmp(k, "$ref") && json_string_value(v)[0] != '#')
                return fail(err, "can't resolve reference %s", json_string_value(v));
        } else if (!strcmp(k, "$schema")) {
            const char *u = json_is_string(v) ? json_string_value(v) : "";
            ok = !strncmp(u, "http://json-schema.org/draft-07/schema", 38) ||
                 !strncmp(u, "http://json-schema.org/draft-06/schema", 38);
            if (!ok) return fail(err, "no schema with key or ref \"%s\"", u);
        }
        /* other keywords pass the meta-schema; strict_check refuses them */
        if (!ok) return fail(err, "schema is invalid: keyword %s", k);
    }
    return true;
}

/* Validation --------------------------------------------------------------------------- */

typedef struct {
    crm_jschema *s;
    json_t *errors;
    strbuf ip; /* instancePath */
    strbuf sp; /* schemaPath */
    int depth;
    /* the ($ref target, data) pairs being validated: a pair met again is a
     * cycle that consumes no data, cut there */
    const json_t *refs[64][2];
    int nrefs;
    bool overflow; /* ajv would overflow its stack (a cycle) */
} V;

static bool validate(V *v, const json_t *sch, const json_t *data);

/* JSON pointer escaping (~0, ~1) for instancePath. */
static void put_pointer(strbuf *sb, const char *k)
{
    sb_putc(sb, '/');
    for (; *k; k++) {
        if (*k == '~') sb_puts(sb, "~0");
        else if (*k == '/') sb_puts(sb, "~1");
        else sb_putc(sb, *k);
    }
}

/* schemaPath segment: escapeFragment = encodeURIComponent(escapeJsonPointer(k)). */
static void put_fragment(strbuf *sb, const char *k)
{
    strbuf t = SB_INIT;
    put_pointer(&t, k);
    sb_putc(sb, '/');
    for (const unsigned char *p = (const unsigned char *)t.data + 1; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.!~*'()", *p))
            sb_putc(sb, (char)*p);
        else
            sb_printf(sb, "%%%02X", *p);
    }
    sb_free(&t);
}

static void add_error(V *v, const char *keyword, json_t *params, const char *message)
{
    json_t *e = json_object();
    json_object_set_new(e, "instancePath", json_string(v->ip.data ? v->ip.data : ""));
    json_object_set_new(e, "schemaPath", json_string(v->sp.data ? v->sp.data : "#"));
    json_object_set_new(e, "keyword", json_string(keyword));
    json_object_set_new(e, "params", params ? params : json_object());
    json_object_set_new(e, "message", json_string(message));
    json_array_append_new(v->errors, e);
}

/* Adds the error of keyword kw at the current schema path + "/kw". */
static void kw_error(V *v, const char *kw, json_t *params, const char *message)
{
    size_t sl = v->sp.len;
    sb_putc(&v->sp, '/');
    sb_puts(&v->sp, kw);
    add_error(v, kw, params, message);
    v->sp.len = sl;
    v->sp.data[sl] = 0;
}

static void truncate_errors(V *v, size_t n)
{
    while (json_array_size(v->errors) > n) json_array_remove(v->errors, json_array_size(v->errors) - 1);
}

static void restore(strbuf *sb, size_t len)
{
    sb->len = len;
    if (sb->data) sb->data[len] = 0;
}

/* Validate data against sub-schema at schema path + segs; instance path + iseg. */
static bool sub(V *v, const json_t *sch, const json_t *data, const char *kw, const char *prop, bool prop_is_index,
                const char *ikey)
{
    size_t sl = v->sp.len, il = v->ip.len;
    sb_putc(&v->sp, '/');
    sb_puts(&v->sp, kw);
    if (prop) {
        if (prop_is_index) {
            sb_putc(&v->sp, '/');
            sb_puts(&v->sp, prop);
        } else {
            put_fragment(&v->sp, prop);
        }
    }
    if (ikey) put_pointer(&v->ip, ikey);
    bool ok = validate(v, sch, data);
    restore(&v->sp, sl);
    restore(&v->ip, il);
    return ok;
}

static bool type_is(const char *t, const json_t *d)
{
    if (!strcmp(t, "null")) return json_is_null(d);
    if (!strcmp(t, "boolean")) return json_is_boolean(d);
    if (!strcmp(t, "string")) return json_is_string(d);
    if (!strcmp(t, "array")) return json_is_array(d);
    if (!strcmp(t, "object")) return json_is_object(d) && !crm_is_buf(d);
    if (!strcmp(t, "number")) return json_is_number(d) && isfinite(crm_num_value(d));
    if (!strcmp(t, "integer")) {
        if (!json_is_number(d)) return false;
        double x = crm_num_value(d);
        return isfinite(x) && x == floor(x);
    }
    return false;
}

static bool has_any(const json_t *sch, const char *const *kws)
{
    for (; *kws; kws++)
        if (json_object_get(sch, *kws)) return true;
    return false;
}

static const char *const NUM_KW[] = {"maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf", NULL};
static const char *const STR_KW[] = {"maxLength", "minLength", "pattern", "format", NULL};
static const char *const ARR_KW[] = {"maxItems", "minItems", "uniqueItems", "additionalItems", "items", "contains", NULL};
static const char *const OBJ_KW[] = {"maxProperties", "minProperties", "required", "propertyNames",
                                     "additionalProperties", "dependencies", "properties", "patternProperties", NULL};

static void type_error(V *v, const json_t *type)
{
    strbuf m = SB_INIT;
    sb_puts(&m, "must be ");
    if (json_is_string(type)) {
        sb_puts(&m, json_string_value(type));
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t)
        {
            if (i) sb_putc(&m, ',');
            sb_puts(&m, json_string_value(t));
        }
    }
    json_t *p = json_object();
    json_object_set(p, "type", (json_t *)type);
    kw_error(v, "type", p, m.data);
    sb_free(&m);
}

static const char *fmtnum(double d, char *buf) { return crm_fmt_number(d, buf); }

static void limit_error(V *v, const char *kw, const char *fmt, double limit)
{
    char nb[32], msg[96];
    snprintf(msg, sizeof msg, fmt, fmtnum(limit, nb));
    json_t *p = json_object();
    json_object_set_new(p, "limit", crm_num(limit));
    kw_error(v, kw, p, msg);
}

static void number_group(V *v, const json_t *sch, double x)
{
    static const struct {
        const char *kw, *op;
    } L[] = {{"maximum", "<="}, {"minimum", ">="}, {"exclusiveMaximum", "<"}, {"exclusiveMinimum", ">"}};
    for (size_t i = 0; i < 4; i++) {
        const json_t *l = json_object_get(sch, L[i].kw);
        if (!l) continue;
        double lim = crm_num_value(l);
        bool ok = i == 0 ? x <= lim : i == 1 ? x >= lim : i == 2 ? x < lim : x > lim;
        if (ok) continue;
        char nb[32], msg[64];
        snprintf(msg, sizeof msg, "must be %s %s", L[i].op, fmtnum(lim, nb));
        json_t *p = json_object();
        json_object_set_new(p, "comparison", json_string(L[i].op));
        json_object_set_new(p, "limit", crm_num(lim));
        kw_error(v, L[i].kw, p, msg);
    }
    const json_t *m = json_object_get(sch, "multipleOf");
    if (m) {
        double q = x / crm_num_value(m);
        if (q != trunc(q) || !isfinite(q)) {
            char nb[32], msg[64];
            snprintf(msg, sizeof msg, "must be multiple of %s", fmtnum(crm_num_value(m), nb));
            json_t *p = json_object();
            json_object_set_new(p, "multipleOf", crm_num(crm_num_value(m)));
            kw_error(v, "multipleOf", p, msg);
        }
    }
}

static size_t code_points(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static void string_group(V *v, const json_t *sch, const json_t *data)
{
    size_t len = code_points(json_string_value(data), json_string_length(data));
    const json_t *l;
    if ((l = json_object_get(sch, "maxLength")) && len > crm_num_value(l))
        limit_error(v, "maxLength", "must NOT have more than %s characters", crm_num_value(l));
    if ((l = json_object_get(sch, "minLength")) && len < crm_num_value(l))
        limit_error(v, "minLength", "must NOT have fewer than %s characters", crm_num_value(l));
    if ((l = json_object_get(sch, "pattern"))) {
        pcre2_code *re = get_re(v->s, json_string_value(l));
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int rc = re ? pcre2_match(re, (PCRE2_SPTR)json_string_value(data), json_string_length(data), 0, 0, md, NULL) : -1;
        pcre2_match_data_free(md);
        if (rc < 0) {
            strbuf m = SB_INIT;
            sb_printf(&m, "must match pattern \"%s\"", json_string_value(l));
            json_t *p = json_object();
            json_object_set(p, "pattern", (json_t *)l);
            kw_error(v, "pattern", p, m.data);
            sb_free(&m);
        }
    }
}

/* Whether uniqueItems may use ajv's hash loop: items declare only scalar types. */
static bool scalar_items(const json_t *sch)
{
    const json_t *items = json_object_get(sch, "items");
    const json_t *t = json_is_object(items) ? json_object_get(items, "type") : NULL;
    if (!t) return false;
    if (json_is_string(t)) return strcmp(json_string_value(t), "object") && strcmp(json_string_value(t), "array");
    size_t i;
    json_t *x;
    if (!json_array_size(t)) return false;
    json_array_foreach(t, i, x) if (!strcmp(json_string_value(x), "object") || !strcmp(json_string_value(x), "array"))
        return false;
    return true;
}

static void array_group(V *v, const json_t *sch, const json_t *data)
{
    size_t n = json_array_size(data);
    const json_t *l;
    if ((l = json_object_get(sch, "maxItems")) && n > crm_num_value(l))
        limit_error(v, "maxItems", "must NOT have more than %s items", crm_num_value(l));
    if ((l = json_object_get(sch, "minItems")) && n < crm_num_value(l))
        limit_error(v, "minItems", "must NOT have fewer than %s items", crm_num_value(l));
    if (json_is_true(json_object_get(sch, "uniqueItems")) && n > 1) {
        long fi = -1, fj = -1;
        if (scalar_items(sch)) {
            /* for (i = n; i--;) indices[item] = i; a repeat reports (j = later, i) */
            for (size_t i = n; i-- > 0 && fi < 0;)
                for (size_t j = i + 1; j < n; j++)
                    if (crm_equal(json_array_get(data, i), json_array_get(data, j))) {
                        fi = (long)i;
                        /* the index kept in the map is the lowest later one */
                        fj = (long)j;
                        break;
                    }
        } else {
            for (size_t i = n; i-- > 0 && fi < 0;)
                for (size_t j = i; j-- > 0;)
                    if (crm_equal(json_array_get(data, i), json_array_get(data, j))) {
                        fi = (long)i;
                        fj = (long)j;
                        break;
                    }
        }
        if (fi >= 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "must NOT have duplicate items (items ## %ld and %ld are identical)", fj, fi);
            json_t *p = json_object();
            json_object_set_new(p, "i", crm_num((double)fi));
            json_object_set_new(p, "j", crm_num((double)fj));
            kw_error(v, "uniqueItems", p, msg);
        }
    }
    const json_t *items = json_object_get(sch, "items");
    char ib[32];
    if (json_is_array(items)) {
        /* ajv's order: additionalItems, then items */
        size_t k = json_array_size(items);
        const json_t *ai = json_object_get(sch, "additionalItems");
        if (json_is_false(ai) && n > k) {
            limit_error(v, "additionalItems", "must NOT have more than %s items", (double)k);
        } else if (ai && !json_is_boolean(ai)) {
            for (size_t i = k; i < n; i++) {
                snprintf(ib, sizeof ib, "%zu", i);
                sub(v, ai, json_array_get(data, i), "additionalItems", NULL, false, ib);
            }
        }
        for (size_t i = 0; i < n && i < k; i++) {
            snprintf(ib, sizeof ib, "%zu", i);
            sub(v, json_array_get(items, i), json_array_get(data, i), "items", ib, true, ib);
        }
    } else if (items) {
        for (size_t i = 0; i < n; i++) {
            snprintf(ib, sizeof ib, "%zu", i);
            sub(v, items, json_array_get(data, i), "items", NULL, false, ib);
        }
    }
    const json_t *c = json_object_get(sch, "contains");
    if (c) {
        size_t before = json_array_size(v->errors);
        bool any = false;
        for (size_t i = 0; i < n && !any; i++) {
            snprintf(ib, sizeof ib, "%zu", i);
            any = sub(v, c, json_array_get(data, i), "contains", NULL, false, ib);
        }
        if (any) {
            truncate_errors(v, before);
        } else {
            json_t *p = json_object();
            json_object_set_new(p, "minContains", crm_num(1));
            kw_error(v, "contains", p, "must contain at least 1 valid item(s)");
        }
    }
}

static bool matches_pattern_props(V *v, const json_t *pp, const char *key)
{
    const char *p;
    json_t *x;
    json_object_foreach((json_t *)pp, p, x)
    {
        pcre2_code *re = get_re(v->s, p);
        if (!re) continue;
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int rc = pcre2_match(re, (PCRE2_SPTR)key, strlen(key), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc >= 0) return true;
    }
    return false;
}

static void object_group(V *v, const json_t *sch, const json_t *data)
{
    size_t n = json_object_size(data);
    const json_t *l;
    if ((l = json_object_get(sch, "maxProperties")) && n > crm_num_value(l))
        limit_error(v, "maxProperties", "must NOT have more than %s properties", crm_num_value(l));
    if ((l = json_object_get(sch, "minProperties")) && n < crm_num_value(l))
        limit_error(v, "minProperties", "must NOT have fewer than %s properties", crm_num_value(l));
    const json_t *req = json_object_get(sch, "required");
    size_t i;
    json_t *x;
    json_array_foreach(req, i, x)
    {
        if (json_object_get(data, json_string_value(x))) continue;
        strbuf m = SB_INIT;
        sb_printf(&m, "must have required property '%s'", json_string_value(x));
        json_t *p = json_object();
        json_object_set(p, "missingProperty", x);
        kw_error(v, "required", p, m.data);
        sb_free(&m);
    }
    crm_entry ebuf[32], *ents;
    size_t ne = crm_js_entries(data, ebuf, 32, &ents);
    const json_t *pn = json_object_get(sch, "propertyNames");
    if (pn) {
        for (size_t k = 0; k < ne; k++) {
            json_t *name = json_stringn(ents[k].key, ents[k].len);
            size_t before = json_array_size(v->errors);
            bool ok = sub(v, pn, name, "propertyNames", NULL, false, NULL);
            for (size_t e = before; e < json_array_size(v->errors); e++)
                json_object_set(json_array_get(v->errors, e), "propertyName", name);
            if (!ok) {
                json_t *p = json_object();
                json_object_set(p, "propertyName", name);
                kw_error(v, "propertyNames", p, "property name must be valid");
            }
            json_decref(name);
        }
    }
    const json_t *props = json_object_get(sch, "properties");
    const json_t *pprops = json_object_get(sch, "patternProperties");
    const json_t *ap = json_object_get(sch, "additionalProperties");
    if (ap && !json_is_true(ap)) {
        for (size_t k = 0; k < ne; k++) {
            const char *key = ents[k].key;
            if (json_object_get(props, key) || (pprops && matches_pattern_props(v, pprops, key))) continue;
            if (json_is_false(ap)) {
                json_t *p = json_object();
                json_object_set_new(p, "additionalProperty", json_string(key));
                kw_error(v, "additionalProperties", p, "must NOT have additional properties");
            } else {
                sub(v, ap, ents[k].val, "additionalProperties", NULL, false, key);
            }
        }
    }
    const json_t *deps = json_object_get(sch, "dependencies");
    if (deps) {
        const char *dk;
        json_t *dv;
        json_object_foreach((json_t *)deps, dk, dv)
        {
            if (!json_object_get(data, dk)) continue;
            if (json_is_array(dv)) {
                size_t j;
                json_t *d;
                json_array_foreach(dv, j, d)
                {
                    if (json_object_get(data, json_string_value(d))) continue;
                    strbuf list = SB_INIT, m = SB_INIT;
                    size_t q;
                    json_t *y;
                    json_array_foreach(dv, q, y)
                    {
                        if (q) sb_puts(&list, ", ");
                        sb_puts(&list, json_string_value(y));
                    }
                    size_t cnt = json_array_size(dv);
                    sb_printf(&m, "must have %s %s when property %s is present", cnt == 1 ? "property" : "properties",
                              list.data ? list.data : "", dk);
                    json_t *p = json_object();
                    json_object_set_new(p, "property", json_string(dk));
                    json_object_set(p, "missingProperty", d);
                    json_object_set_new(p, "depsCount", crm_num((double)cnt));
                    json_object_set_new(p, "deps", json_string(list.data ? list.data : ""));
                    kw_error(v, "dependencies", p, m.data);
                    sb_free(&list);
                    sb_free(&m);
                }
            } else {
                sub(v, dv, data, "dependencies", dk, false, NULL);
            }
        }
    }
    if (json_is_object(props)) {
        const char *pk;
        json_t *ps;
        json_object_foreach((json_t *)props, pk, ps)
        {
            json_t *d = json_object_get(data, pk);
            if (d) sub(v, ps, d, "properties", pk, false, pk);
        }
    }
    if (json_is_object(pprops)) {
        const char *pk;
        json_t *ps;
        json_object_foreach((json_t *)pprops, pk, ps)
        {
            pcre2_code *re = get_re(v->s, pk);
            for (size_t k = 0; re && k < ne; k++) {
                pcre2_match_data *md = pcre2_match_data_create(1, NULL);
                int rc = pcre2_match(re, (PCRE2_SPTR)ents[k].key, ents[k].len, 0, 0, md, NULL);
                pcre2_match_data_free(md);
                if (rc >= 0) sub(v, ps, ents[k].val, "patternProperties", pk, false, ents[k].key);
            }
        }
    }
    if (ents != ebuf) free(ents);
}

/* "#", "#/definitions/a" (JSON pointer, ~0 ~1 and %XX unescaped). */
static const json_t *resolve_ref(const json_t *root, const char *ref)
{
    if (*ref != '#') return NULL;
    const json_t *cur = root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        strbuf k = SB_INIT;
        sb_puts(&k, "");
        for (; *p && *p != '/'; p++) {
            if (*p == '~' && p[1] == '0') sb_putc(&k, '~'), p++;
            else if (*p == '~' && p[1] == '1') sb_putc(&k, '/'), p++;
            else if (*p == '%' && crm_hexval(p[1]) >= 0 && crm_hexval(p[2]) >= 0) {
                sb_putc(&k, (char)(crm_hexval(p[1]) * 16 + crm_hexval(p[2])));
                p += 2;
            } else sb_putc(&k, *p);
        }
        if (json_is_array(cur)) cur = json_array_get(cur, strtoul(k.data, NULL, 10));
        else cur = json_object_get(cur, k.data);
        sb_free(&k);
        if (!cur) return NULL;
    }
    return *p ? NULL : cur;
}

/* ajv's hasRef: a "$ref" key anywhere inside. */
static bool has_ref(const json_t *sch)
{
    if (json_is_object(sch)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)sch, k, x) if (!strcmp(k, "$ref") || has_ref(x)) return true;
    } else if (json_is_array(sch)) {
        size_t i;
        json_t *x;
        json_array_foreach(sch, i, x) if (has_ref(x)) return true;
    }
    return false;
}

static bool validate(V *v, const json_t *sch, const json_t *data)
{
    size_t before = json_array_size(v->errors);
    if (json_is_boolean(sch)) {
        if (json_is_false(sch)) kw_error(v, "false schema", json_object(), "boolean schema is false");
        return json_array_size(v->errors) == before;
    }
    if (++v->depth > 200) { /* a $ref cycle that consumes no data */
        v->depth--;
        return true;
    }
    const json_t *type = json_object_get(sch, "type");
    /* which group reports the type error (ajv's coerceAndCheckDataType) */
    const char *group_type = NULL;
    if (json_is_string(type)) {
        const char *t = json_string_value(type);
        if ((!strcmp(t, "number") && has_any(sch, NUM_KW)) || (!strcmp(t, "string") && has_any(sch, STR_KW)) ||
            (!strcmp(t, "array") && has_any(sch, ARR_KW)) || (!strcmp(t, "object") && has_any(sch, OBJ_KW)))
            group_type = t;
    }
    if (type && !group_type) {
        bool ok = false;
        if (json_is_string(type)) ok = type_is(json_string_value(type), data);
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t) if (type_is(json_string_value(t), data)) ok = true;
        if (!ok) type_error(v, type);
    }
    /* keywords of any type */
    const json_t *k;
    if ((k = json_object_get(sch, "$ref"))) {
        const json_t *target = resolve_ref(v->s->root, json_string_value(k));
        bool cycle = v->nrefs >= 64;
        for (int r = 0; r < v->nrefs && !cycle; r++) cycle = v->refs[r][0] == target && v->refs[r][1] == data;
        if (cycle) v->overflow = true;
        if (target && !cycle && !v->overflow) {
            v->refs[v->nrefs][0] = target;
            v->refs[v->nrefs++][1] = data;
            strbuf saved = v->sp;
            v->sp = (strbuf)SB_INIT;
            /* ajv inlines a target without refs (its errors keep the $ref as
             * their path); one with refs is its own function, paths from "#" */
            sb_puts(&v->sp, has_ref(target) ? "#" : json_string_value(k));
            validate(v, target, data);
            sb_free(&v->sp);
            v->sp = saved;
            v->nrefs--;
        }
    }
    if ((k = json_object_get(sch, "const")) && !crm_equal(k, data)) {
        json_t *p = json_object();
        json_object_set(p, "allowedValue", (json_t *)k);
        kw_error(v, "const", p, "must be equal to constant");
    }
    if ((k = json_object_get(sch, "enum"))) {
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(k, i, e) if (crm_equal(e, data)) found = true;
        if (!found) {
            json_t *p = json_object();
            json_object_set(p, "allowedValues", (json_t *)k);
            kw_error(v, "enum", p, "must be equal to one of the allowed values");
        }
    }
    if ((k = json_object_get(sch, "not"))) {
        size_t b = json_array_size(v->errors);
        bool ok = sub(v, k, data, "not", NULL, false, NULL);
        truncate_errors(v, b);
        if (ok) kw_error(v, "not", json_object(), "must NOT be valid");
    }
    char ib[32];
    if ((k = json_object_get(sch, "anyOf"))) {
        size_t b = json_array_size(v->errors);
        bool any = false;
        for (size_t i = 0; i < json_array_size(k) && !any; i++) {
            snprintf(ib, sizeof ib, "%zu", i);
            any = sub(v, json_array_get(k, i), data, "anyOf", ib, true, NULL);
        }
        if (any) truncate_errors(v, b);
        else kw_error(v, "anyOf", json_object(), "must match a schema in anyOf");
    }
    if ((k = json_object_get(sch, "oneOf"))) {
        size_t b = json_array_size(v->errors);
        bool valid = false;
        json_t *passing = json_null();
        for (size_t i = 0; i < json_array_size(k); i++) {
            snprintf(ib, sizeof ib, "%zu", i);
            bool ok = sub(v, json_array_get(k, i), data, "oneOf", ib, true, NULL);
            if (i > 0 && ok && valid) {
                /* a second passing schema: ajv stops there */
                valid = false;
                json_t *pair = json_pack("[o,o]", passing, crm_num((double)i));
                passing = pair;
                break;
            } else if (ok) {
                valid = true;
                json_decref(passing);
                passing = crm_num((double)i);
            }
        }
        if (valid) {
            truncate_errors(v, b);
            json_decref(passing);
        } else {
            json_t *p = json_object();
            json_object_set_new(p, "passingSchemas", passing);
            kw_error(v, "oneOf", p, "must match exactly one schema in oneOf");
        }
    }
    if ((k = json_object_get(sch, "allOf"))) {
        for (size_t i = 0; i < json_array_size(k); i++) {
            snprintf(ib, sizeof ib, "%zu", i);
            sub(v, json_array_get(k, i), data, "allOf", ib, true, NULL);
        }
    }
    if ((k = json_object_get(sch, "if"))) {
        const json_t *th = json_object_get(sch, "then"), *el = json_object_get(sch, "else");
        if (th || el) {
            size_t b = json_array_size(v->errors);
            bool ok = sub(v, k, data, "if", NULL, false, NULL);
            truncate_errors(v, b);
            const json_t *branch = ok ? th : el;
            const char *bn = ok ? "then" : "else";
            if (branch && !sub(v, branch, data, bn, NULL, false, NULL)) {
                char msg[48];
                snprintf(msg, sizeof msg, "must match \"%s\" schema", bn);
                json_t *p = json_object();
                json_object_set_new(p, "failingKeyword", json_string(bn));
                kw_error(v, "if", p, msg);
            }
        }
    }
    /* the typed groups, each with its type error when it reports one */
    static const char *const GROUPS[] = {"number", "string", "array", "object"};
    for (int g = 0; g < 4; g++) {
        const char *const *kws = g == 0 ? NUM_KW : g == 1 ? STR_KW : g == 2 ? ARR_KW : OBJ_KW;
        if (!has_any(sch, kws)) continue;
        bool is = g == 0 ? type_is("number", data) : type_is(GROUPS[g], data);
        if (is) {
            if (g == 0) number_group(v, sch, crm_num_value(data));
            else if (g == 1) string_group(v, sch, data);
            else if (g == 2) array_group(v, sch, data);
            else object_group(v, sch, data);
        } else if (group_type && !strcmp(group_type, GROUPS[g])) {
            type_error(v, type);
        }
    }
    v->depth--;
    return json_array_size(v->errors) == before;
}

/* Strict mode (ajv's default) on the parts ajv compiles: it throws on an
 * unknown keyword, any format, additionalItems without an items array, if
 * without then/else (and the reverse), and a property that a
 * patternProperties pattern also matches. Not compiled, so not checked:
 * unreferenced definitions, always-valid schemas, anyOf branches beside an
 * always-valid one, an `if` whose then/else are both always valid. */
static const char *const KNOWN[] = {
    "type", "properties", "definitions", "patternProperties", "dependencies", "items", "additionalItems",
    "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else", "allOf", "anyOf", "oneOf",
    "required", "enum", "examples", "const", "default", "multipleOf", "maximum", "minimum", "exclusiveMaximum",
    "exclusiveMinimum", "maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties",
    "pattern", "uniqueItems", "readOnly", "writeOnly", "$ref", "$id", "$comment", "title", "description",
    "contentMediaType", "contentEncoding", "$schema", NULL};

/* ajv's alwaysValidSchema: true, or an object without a keyword that
 * validates (only annotations such as title, definitions...). */
static bool always_valid(const json_t *sch)
{
    static const char *const NONRULE[] = {"definitions", "$id", "$schema", "title", "description", "default",
                                          "examples", "readOnly", "writeOnly", "contentMediaType",
                                          "contentEncoding", NULL};
    if (json_is_boolean(sch)) return json_is_true(sch);
    if (!json_is_object(sch)) return false;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)sch, k, x)
    {
        bool nonrule = false;
        for (const char *const *q = NONRULE; *q && !nonrule; q++) nonrule = !strcmp(*q, k);
        if (!nonrule) return false;
    }
    return true;
}

static bool unknown_keyword(const json_t *sch, char **err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sch, k, v)
    {
        bool known = false;
        for (const char *const *q = KNOWN; *q && !known; q++) known = !strcmp(*q, k);
        if (!known) return !fail(err, "strict mode: unknown keyword: \"%s\"", k);
    }
    return false;
}

/* No keyword besides $ref that validates (ajv's !schemaHasRulesButRef). */
static bool only_ref(const json_t *sch)
{
    static const char *const NONRULE[] = {"$ref", "definitions", "$id", "$schema", "$comment", "title",
                                          "description", "default", "examples", "readOnly", "writeOnly",
                                          "contentMediaType", "contentEncoding", "then", "else", NULL};
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)sch, k, x)
    {
        bool nonrule = false;
        for (const char *const *q = NONRULE; *q && !nonrule; q++) nonrule = !strcmp(*q, k);
        if (!nonrule) return false;
    }
    return true;
}

static bool strict_check(crm_jschema *s, const json_t *sch, int depth, char **err)
{
    if (!json_is_object(sch)) return true;
    (void)depth;
    if (unknown_keyword(sch, err)) return false;
    if (always_valid(sch)) return true;
    json_t *v;
    if (json_object_get(sch, "format")) return fail(err, "unknown format \"%s\"", json_string_value(json_object_get(sch, "format")));
    if (json_object_get(sch, "additionalItems") && !json_is_array(json_object_get(sch, "items")))
        return fail(err, "%s", "\"additionalItems\" is ignored when \"items\" is not an array of schemas");
    const json_t *f = json_object_get(sch, "if"), *th = json_object_get(sch, "then"), *el = json_object_get(sch, "else");
    if (f && !th && !el) return fail(err, "%s", "\"if\" without \"then\" and \"else\" is ignored");
    if (!f && (th || el)) return fail(err, "\"%s\" without \"if\" is ignored", th ? "then" : "else");
    const json_t *props = json_object_get(sch, "properties"), *pp = json_object_get(sch, "patternProperties");
    if (json_is_object(props) && json_is_object(pp)) {
        const char *pat;
        json_t *x;
        json_object_foreach((json_t *)pp, pat, x)
        {
            pcre2_code *re = get_re(s, pat);
            const char *pk;
            json_t *y;
            json_object_foreach((json_t *)props, pk, y)
            {
                pcre2_match_data *md = pcre2_match_data_create(1, NULL);
                int rc = re ? pcre2_match(re, (PCRE2_SPTR)pk, strlen(pk), 0, 0, md, NULL) : -1;
                pcre2_match_data_free(md);
                if (rc >= 0) return fail(err, "property %s matches a pattern (use allowMatchingProperties)", pk);
            }
        }
    }
    /* the subschemas ajv compiles */
    static const char *const ONE[] = {"additionalItems", "additionalProperties", "contains", "propertyNames", "not",
                                      NULL};
    for (const char *const *q = ONE; *q; q++)
        if ((v = json_object_get(sch, *q)) && !strict_check(s, v, depth + 1, err)) return false;
    bool has_then = th && !always_valid(th), has_else = el && !always_valid(el);
    if (f && (has_then || has_else) && !strict_check(s, f, depth + 1, err)) return false;
    if (th && !strict_check(s, th, depth + 1, err)) return false;
    if (el && !strict_check(s, el, depth + 1, err)) return false;
    if ((v = json_object_get(sch, "items"))) {
        if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) if (!strict_check(s, x, depth + 1, err)) return false;
        } else if (!strict_check(s, v, depth + 1, err)) {
            return false;
        }
    }
    static const char *const MAPS[] = {"properties", "patternProperties", "dependencies", NULL};
    for (const char *const *q = MAPS; *q; q++) {
        const char *mk;
        json_t *x;
        if ((v = json_object_get(sch, *q))) json_object_foreach(v, mk, x) if (!strict_check(s, x, depth + 1, err)) return false;
    }
    static const char *const ARRS[] = {"allOf", "anyOf", "oneOf", NULL};
    for (const char *const *q = ARRS; *q; q++) {
        if (!(v = json_object_get(sch, *q))) continue;
        size_t i;
        json_t *x;
        bool skip = false;
        /* anyOf: schema.some(alwaysValidSchema) checks keywords up to the
         * first always-valid branch, then compiles none */
        if (!strcmp(*q, "anyOf"))
            json_array_foreach(v, i, x)
            {
                if (json_is_object(x) && unknown_keyword(x, err)) return false;
                if (always_valid(x)) {
                    skip = true;
                    break;
                }
            }
        if (skip) continue;
        json_array_foreach(v, i, x) if (!strict_check(s, x, depth + 1, err)) return false;
    }
    if ((v = json_object_get(sch, "$ref"))) {
        const json_t *target = resolve_ref(s->root, json_string_value(v));
        if (!target) return fail(err, "can't resolve reference %s", json_string_value(v));
        /* ajv follows targets that are only a $ref while compiling: a cycle of
         * them overflows its stack */
        const json_t *hop = target;
        for (int i = 0; i < 64 && json_is_object(hop) && json_object_get(hop, "$ref") && only_ref(hop); i++) {
            hop = resolve_ref(s->root, json_string_value(json_object_get(hop, "$ref")));
            if (hop == target || i == 63) return fail(err, "%s", "Maximum call stack size exceeded");
        }
        for (size_t i = 0; i < s->nchecked; i++)
            if (s->checked[i] == target) return true;
        s->checked = realloc(s->checked, (s->nchecked + 1) * sizeof *s->checked);
        s->checked[s->nchecked++] = target;
        if (!strict_check(s, target, depth + 1, err)) return false;
    }
    return true;
}

/* API ------------------------------------------------------------------------------------- */

crm_jschema *crm_jschema_compile(const json_t *schema, char **err)
{
    if (err) *err = NULL;
    crm_jschema *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->root = crm_deep_copy(schema);
    if (!check_schema(s, s->root, err) || !strict_check(s, s->root, 0, err)) {
        crm_jschema_free(s);
        return NULL;
    }
    return s;
}

void crm_jschema_free(crm_jschema *s)
{
    if (!s) return;
    while (s->res) {
        re_entry *e = s->res;
        s->res = e->next;
        pcre2_code_free(e->re);
        free(e->pattern);
        free(e);
    }
    json_decref(s->root);
    free(s->checked);
    free(s);
}

int crm_jschema_validate(crm_jschema *s, const json_t *data, json_t **errors)
{
    V v = {.s = s, .errors = json_array(), .ip = SB_INIT, .sp = SB_INIT};
    sb_puts(&v.ip, "");
    sb_puts(&v.sp, "#");
    validate(&v, s->root, data);
    sb_free(&v.ip);
    sb_free(&v.sp);
    if (v.overflow) {
        json_decref(v.errors);
        return -1;
    }
    bool ok = json_array_size(v.errors) == 0;
    if (!ok && errors) *errors = v.errors;
    else json_decref(v.errors);
    return ok ? 1 : 0;
}

char *crm_jschema_errors_text(const json_t *errors)
{
    if (!json_array_size(errors)) return strdup("No errors");
    strbuf sb = SB_INIT;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        if (i) sb_puts(&sb, ", ");
        sb_printf(&sb, "data%s %s", json_string_value(json_object_get(e, "instancePath")),
                  json_string_value(json_object_get(e, "message")));
    }
    return sb_take(&sb);
}
