/* jsonata_value.c: runtime value helpers of the JSONata engine: flagged
 * arrays and sequences, tuples, conversion back to plain JSON, deep
 * equality, truthiness ($boolean), $string's JSON text, error messages. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "jsonata_int.h"

/* Arrays ------------------------------------------------------------------ */

static void cells_add(size_t n);

jarr *jarr_new(size_t cap)
{
    cells_add(cap);
    jarr *a = calloc(1, sizeof *a);
    a->h.type = JT_ARR;
    a->h.refcount = 1;
    if (cap) {
        a->v = malloc(cap * sizeof(json_t *));
        a->cap = cap;
    }
    return a;
}

json_t *jseq_new(void)
{
    jarr *a = jarr_new(0);
    a->seq = 1;
    return &a->h;
}

json_t *jseq_of(json_t *item)
{
    jarr *a = jarr_new(1);
    a->seq = 1;
    a->v[0] = item;
    a->n = 1;
    return &a->h;
}

json_t *jseq_borrowed(void)
{
    jarr *a = jarr_new(0);
    a->seq = 1;
    a->borrowed = 1;
    return &a->h;
}

json_t *jseq_of_stable(json_t *item)
{
    jarr *a = jarr_new(1);
    a->seq = 1;
    a->borrowed = 1;
    a->v[0] = item;
    a->n = 1;
    return &a->h;
}

__thread jeval *jv_cur_eval;

static size_t max_items(void) { return jv_cur_eval ? jv_cur_eval->max_items : JSONATA_MAX_ITEMS; }

static void too_many_items(void)
{
    if (!jv_cur_eval || jv_cur_eval->failed) return;
    json_t *v = json_real((double)jv_cur_eval->max_items);
    jeval_fail(jv_cur_eval, "U1004", 0, NULL, v);
    json_decref(v);
}

bool jv_string_fits(jeval *E, size_t len)
{
    size_t max = E ? E->max_string : JSONATA_MAX_STRING;
    if (len <= max) return true;
    if (E && !E->failed) {
        json_t *v = json_real((double)max);
        jeval_fail(E, "U1003", 0, NULL, v);
        json_decref(v);
    }
    return false;
}

static size_t text_size(const json_t *v, size_t limit, size_t acc, int depth)
{
    if (acc > limit) return acc;
    if (depth > 10000) return limit + 1; /* nested deeper than anything sensible: too large */
    if (!v) return acc;
    if (json_is_string(v)) return acc + json_string_length(v) + 2;
    if (jv_is_arr(v)) {
        acc += 2;
        for (size_t i = 0, n = jv_len(v); i < n && acc <= limit; i++) acc = text_size(jv_at(v, i), limit, acc + 1, depth + 1);
        return acc;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        acc += 2;
        json_object_foreach((json_t *)v, k, x) {
            acc = text_size(x, limit, acc + strlen(k) + 4, depth + 1);
            if (acc > limit) break;
        }
        return acc;
    }
    return acc + 1;
}

size_t jv_text_size(const json_t *v, size_t limit) { return text_size(v, limit, 0, 0); }

/* Item slots of all live arrays: one array within max_items can still hold
 * many others (a path step returning a constructed array per item). */
static void cells_add(size_t n)
{
    jeval *E = jv_cur_eval;
    if (!E) return;
    E->cells += n;
    if (E->cells > 3 * E->max_items && !E->failed) {
        json_t *v = json_real((double)(3 * E->max_items));
        jeval_fail(E, "U1004", 0, NULL, v);
        json_decref(v);
    }
}

static void cells_sub(size_t n)
{
    jeval *E = jv_cur_eval;
    if (E) E->cells = E->cells > n ? E->cells - n : 0;
}

void jarr_grow(jarr *a)
{
    if (a->cap >= max_items()) {
        too_many_items();
        return;
    }
    size_t old = a->cap;
    a->cap = a->cap ? a->cap * 2 : 4;
    if (a->cap > max_items()) a->cap = max_items();
    cells_add(a->cap - old);
    a->v = realloc(a->v, a->cap * sizeof(json_t *));
}

void jarr_own(jarr *a)
{
    for (size_t i = 0; i < a->n; i++) jv_incref(a->v[i]);
    a->borrowed = 0;
}

void jv_free_custom(json_t *v)
{
    if (v->type == JT_ARR) {
        jarr *a = (jarr *)v;
        if (!a->borrowed)
            for (size_t i = 0; i < a->n; i++) jv_decref(a->v[i]);
        cells_sub(a->cap);
        free(a->v);
        free(a);
    } else if (v->type == JT_TUPLE) {
        jtuple *t = (jtuple *)v;
        for (int i = 0; i < t->n; i++) jv_decref(t->b[i].val);
        free(t->b);
        free(t);
    }
    /* functions are static-refcounted and freed with their evaluation */
}

json_t *jv_to_json(json_t *v)
{
    if (!v) return NULL;
    if (v->type == JT_ARR) {
        jarr *a = (jarr *)v;
        json_t *o = json_array();
        for (size_t i = 0; i < a->n; i++) {
            json_t *x = jv_to_json(a->v[i]);
            if (x) json_array_append_new(o, x);
        }
        return o;
    }
    if (v->type == JT_TUPLE) {
        jtuple *t = (jtuple *)v;
        json_t *o = json_object();
        for (int i = 0; i < t->n; i++) {
            json_t *x = jv_to_json(t->b[i].val);
            if (x) json_object_set_new(o, t->b[i].name, x);
        }
        return o;
    }
    return jv_incref(v);
}

json_t *jv_take_json(json_t *v)
{
    if (!v || v->type != JT_ARR) {
        if (v && v->type == JT_TUPLE) {
            json_t *j = jv_to_json(v);
            jv_decref(v);
            return j;
        }
        return v;
    }
    jarr *a = (jarr *)v;
    if (a->h.refcount != 1 || a->borrowed) {
        json_t *j = jv_to_json(v);
        jv_decref(v);
        return j;
    }
    /* the only reference: move the items instead of copying references */
    json_t *o = json_array();
    for (size_t i = 0; i < a->n; i++) {
        json_t *x = jv_take_json(a->v[i]);
        if (x) json_array_append_new(o, x);
    }
    cells_sub(a->cap);
    free(a->v);
    free(a);
    return o;
}

json_t *jv_str(const char *s, size_t n) { return json_stringn_nocheck(s, n); }
json_t *jv_strz(const char *s) { return json_string_nocheck(s); }

bool jv_deep_equal(const json_t *a, const json_t *b)
{
    if (a == b) return true;
    if (!a || !b) return false;
    if (jv_is_num(a) && jv_is_num(b)) return jv_num(a) == jv_num(b);
    if (jv_is_arr(a) && jv_is_arr(b)) {
        size_t n = jv_len(a);
        if (n != jv_len(b)) return false;
        for (size_t i = 0; i < n; i++)
            if (!jv_deep_equal(jv_at(a, i), jv_at(b, i))) return false;
        return true;
    }
    if (jv_is_func(a) || jv_is_func(b)) return false;
    if (json_typeof(a) != json_typeof(b)) return false;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return false;
        const char *k;
        size_t kl;
        json_t *x;
        json_object_keylen_foreach((json_t *)a, k, kl, x) {
            json_t *y = json_object_getn(b, k, kl);
            if (!y || !jv_deep_equal(x, y)) return false;
        }
        return true;
    }
    return crm_equal(a, b);
}

bool jv_truthy(const json_t *v)
{
    if (!v) return false;
    if (jv_is_arr(v)) {
        size_t n = jv_len(v);
        if (n == 1) return jv_truthy(jv_at(v, 0));
        for (size_t i = 0; i < n; i++)
            if (jv_truthy(jv_at(v, i))) return true;
        return false;
    }
    if (jv_is_func(v)) return false;
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = jv_num(v);
        return d != 0 && !isnan(d);
    }
    case JSON_OBJECT: return json_object_size(v) > 0;
    case JSON_TRUE: return true;
    default: return false;
    }
}

bool jv_is_arr_of_str(const json_t *v)
{
    if (!jv_is_arr(v)) return false;
    for (size_t i = 0; i < jv_len(v); i++)
        if (!jv_is_str(jv_at(v, i))) return false;
    return true;
}

bool jv_is_arr_of_num(const json_t *v)
{
    if (!jv_is_arr(v)) return false;
    for (size_t i = 0; i < jv_len(v); i++) {
        json_t *x = jv_at(v, i);
        if (!jv_is_num(x) || isnan(jv_num(x))) return false;
    }
    return true;
}

/* fn.append: undefined-tolerant concatenation; the result is a plain array
 * (jsonata-js's Array.concat drops the sequence flag). Steals a and b. */
json_t *jv_append(json_t *a, json_t *b)
{
    if (!a) return b;
    if (!b) return a;
    size_t total = (jv_is_arr(a) ? jv_len(a) : 1) + (jv_is_arr(b) ? jv_len(b) : 1);
    if (total > max_items()) {
        too_many_items();
        jv_decref(a);
        jv_decref(b);
        return NULL;
    }
    jarr *r = jarr_new(total);
    if (jv_is_arr(a))
        for (size_t i = 0; i < jv_len(a); i++) jarr_push_ref(r, jv_at(a, i));
    else
        jarr_push_ref(r, a);
    if (jv_is_arr(b))
        for (size_t i = 0; i < jv_len(b); i++) jarr_push_ref(r, jv_at(b, i));
    else
        jarr_push_ref(r, b);
    jv_decref(a);
    jv_decref(b);
    return &r->h;
}

/* $string ------------------------------------------------------------------ */

static json_t *prep_for_string(jeval *E, const json_t *v)
{
    if (!v) return NULL;
    if (jv_is_func(v)) return json_string("");
    if (jv_is_arr(v)) {
        json_t *o = json_array();
        for (size_t i = 0; i < jv_len(v); i++) {
            json_t *x = prep_for_string(E, jv_at(v, i));
            json_array_append_new(o, x ? x : json_null());
        }
        return o;
    }
    if (v->type == JT_TUPLE) return json_object();
    if (jv_is_num(v)) {
        double d = jv_num(v);
        if (!isfinite(d)) {
            if (E) jeval_fail(E, "D1001", 0, NULL, v);
            return json_null();
        }
        if (d == floor(d)) return json_incref((json_t *)v);
        char b[40];
        snprintf(b, sizeof b, "%.15g", d);
        return json_real(strtod(b, NULL));
    }
    if (json_is_object(v) && !crm_is_buf(v)) {
        json_t *o = json_object();
        const char *k;
        size_t kl;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, kl, x) {
            json_t *y = prep_for_string(E, x);
            if (y) json_object_setn_new_nocheck(o, k, kl, y);
        }
        return o;
    }
    return json_incref((json_t *)v);
}

size_t jv_fmt_integer(double d, char *buf)
{
    char tmp[24], *p = tmp + sizeof tmp;
    long long x = (long long)d;
    unsigned long long u = x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0) *--p = '-';
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(buf, p, n);
    buf[n] = 0;
    return n;
}

char *jv_stringify(jeval *E, const json_t *v, bool pretty)
{
    (void)E;
    if (!v) return NULL;
    if (json_is_string(v)) return strndup(json_string_value(v), json_string_length(v));
    if (jv_is_func(v)) return strdup("");
    if (jv_is_num(v)) {
        double d = jv_num(v);
        char b[48];
        if (!isfinite(d)) {
            if (E) jeval_fail(E, "D1001", 0, NULL, v);
            return NULL;
        }
        if (d == floor(d) && fabs(d) < 1e15) {
            size_t n = jv_fmt_integer(d, b);
            char *r = malloc(n + 1);
            memcpy(r, b, n + 1);
            return r;
        }
        if (d != floor(d)) {
            snprintf(b, sizeof b, "%.15g", d);
            d = strtod(b, NULL);
        }
        return strdup(crm_fmt_number(d, b));
    }
    if (json_is_true(v)) return strdup("true");
    if (json_is_false(v)) return strdup("false");
    if (json_is_null(v)) return strdup("null");
    if (jv_is_arr(v) && v->type == JT_ARR && ((jarr *)v)->outer && jv_len(v) > 0) v = jv_at(v, 0);
    /* values may share parts ([$x, $x] twice over doubles the text each time) */
    if (E && !jv_string_fits(E, jv_text_size(v, E->max_string))) return NULL;
    json_t *p = prep_for_string(E, v);
    if (E && E->failed) {
        json_decref(p);
        return NULL;
    }
    char *s = crm_stringify(p, pretty ? 2 : 0);
    json_decref(p);
    return s ? s : strdup("");
}

/* Errors ------------------------------------------------------------------- */

void jerr_set(jsonata_error *err, const char *code, int position, const char *fmt, ...)
{
    if (!err) return;
    snprintf(err->code, sizeof err->code, "%s", code);
    err->position = position;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

static const struct {
    const char *code, *text;
} messages[] = {
    {"S0101", "String literal must be terminated by a matching quote"},
    {"S0102", "Number out of range: {{token}}"},
    {"S0103", "Unsupported escape sequence: \\{{token}}"},
    {"S0104", "The escape sequence \\u must be followed by 4 hex digits"},
    {"S0105", "Quoted property name must be terminated with a backquote (`)"},
    {"S0106", "Comment has no closing tag"},
    {"S0201", "Syntax error: {{token}}"},
    {"S0202", "Expected {{value}}, got {{token}}"},
    {"S0203", "Expected {{value}} before end of expression"},
    {"S0204", "Unknown operator: {{token}}"},
    {"S0205", "Unexpected token: {{token}}"},
    {"S0206", "Unknown expression type: {{token}}"},
    {"S0207", "Unexpected end of expression"},
    {"S0208", "Parameter {{value}} of function definition must be a variable name (start with $)"},
    {"S0209", "A predicate cannot follow a grouping expression in a step"},
    {"S0210", "Each step can only have one grouping expression"},
    {"S0211", "The symbol {{token}} cannot be used as a unary operator"},
    {"S0212", "The left side of := must be a variable name (start with $)"},
    {"S0213", "The literal value {{value}} cannot be used as a step within a path expression"},
    {"S0214", "The right side of {{token}} must be a variable name (start with $)"},
    {"S0215", "A context variable binding must precede any predicates on a step"},
    {"S0216", "A context variable binding must precede the 'order-by' clause on a step"},
    {"S0217", "The object representing the 'parent' cannot be derived from this expression"},
    {"S0301", "Empty regular expressions are not allowed"},
    {"S0302", "No terminating / in regular expression"},
    {"S0402", "Choice groups containing parameterized types are not supported"},
    {"S0401", "Type parameters can only be applied to functions and arrays"},
    {"S0500", "Attempted to evaluate an expression containing syntax error(s)"},
    {"T0410", "Argument {{index}} of function {{token}} does not match function signature"},
    {"T0411", "Context value is not a compatible type with argument {{index}} of function {{token}}"},
    {"T0412", "Argument {{index}} of function {{token}} must be an array of {{type}}"},
    {"D1001", "Number out of range: {{value}}"},
    {"D1002", "Cannot negate a non-numeric value: {{value}}"},
    {"T1003", "Key in object structure must evaluate to a string; got: {{value}}"},
    {"D1004", "Regular expression matches zero length string"},
    {"T1005", "Attempted to invoke a non-function. Did you mean ${{{token}}}?"},
    {"T1006", "Attempted to invoke a non-function"},
    {"T1007", "Attempted to partially apply a non-function. Did you mean ${{{token}}}?"},
    {"T1008", "Attempted to partially apply a non-function"},
    {"D1009", "Multiple key definitions evaluate to same key: {{value}}"},
    {"T1010", "The matcher function argument passed to function {{token}} does not return the correct object structure"},
    {"T2001", "The left side of the {{token}} operator must evaluate to a number"},
    {"T2002", "The right side of the {{token}} operator must evaluate to a number"},
    {"T2003", "The left side of the range operator (..) must evaluate to an integer"},
    {"T2004", "The right side of the range operator (..) must evaluate to an integer"},
    {"T2006", "The right side of the function application operator ~> must be a function"},
    {"T2007", "Type mismatch when comparing values {{value}} and {{value2}} in order-by clause"},
    {"T2008", "The expressions within an order-by clause must evaluate to numeric or string values"},
    {"T2009", "The values {{value}} and {{value2}} either side of operator {{token}} must be of the same data type"},
    {"T2010", "The expressions either side of operator {{token}} must evaluate to numeric or string values"},
    {"T2011", "The insert/update clause of the transform expression must evaluate to an object: {{value}}"},
    {"T2012", "The delete clause of the transform expression must evaluate to a string or array of strings: {{value}}"},
    {"T2013", "The transform expression clones the input object using the $clone() function.  This has been overridden in the current scope by a non-function."},
    {"D2014", "The size of the sequence allocated by the range operator (..) must not exceed 1e6.  Attempted to allocate {{value}}."},
    {"D3001", "Attempting to invoke string function on Infinity or NaN"},
    {"D3010", "Second argument of replace function cannot be an empty string"},
    {"D3011", "Fourth argument of replace function must evaluate to a positive number"},
    {"D3012", "Attempted to replace a matched string with a non-string value"},
    {"D3020", "Third argument of split function must evaluate to a positive number"},
    {"D3030", "Unable to cast value to a number: {{value}}"},
    {"D3040", "Third argument of match function must evaluate to a positive number"},
    {"D3050", "The second argument of reduce function must be a function with at least two arguments"},
    {"D3060", "The sqrt function cannot be applied to a negative number: {{value}}"},
    {"D3061", "The power function has resulted in a value that cannot be represented as a JSON number: base={{value}}, exponent={{exp}}"},
    {"D3070", "The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function"},
    {"D3100", "The radix of the formatBase function must be between 2 and 36.  It was given {{value}}"},
    {"D3110", "The argument of the toMillis function must be an ISO 8601 formatted timestamp. Given {{value}}"},
    {"D3120", "Syntax error in expression passed to function eval: {{value}}"},
    {"D3121", "Dynamic error evaluating the expression passed to function eval: {{value}}"},
    {"D3137", "{{{message}}}"},
    {"D3138", "The $single() function expected exactly 1 matching result.  Instead it matched more."},
    {"D3139", "The $single() function expected exactly 1 matching result.  Instead it matched 0."},
    {"D3140", "Malformed URL passed to ${{{functionName}}}(): {{value}}"},
    {"D3141", "{{{message}}}"},
    {"U1001", "Stack overflow error: Check for non-terminating recursive function.  Consider rewriting as tail-recursive."},
    /* Carmine's own limits (docs/jsonata.md): jsonata-js has no code for these */
    {"U1002", "Expression nested too deeply: more than 1000 levels of parentheses, operators, path steps, calls or constructors"},
    {"U1003", "String too long: the result would exceed the limit of {{value}} bytes"},
    {"U1004", "Array too large: the arrays being built would exceed the limit of {{value}} items"},
};

void jerr_std(jsonata_error *err, const char *code, int position, const char *token, const json_t *value,
              int index)
{
    if (!err) return;
    snprintf(err->code, sizeof err->code, "%s", code);
    err->position = position;
    const char *tmpl = NULL;
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (!strcmp(messages[i].code, code)) tmpl = messages[i].text;
    if (!tmpl) {
        snprintf(err->message, sizeof err->message, "%s", code);
        return;
    }
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{{{token}}}", 11)) {
            sb_puts(&sb, token ? token : "undefined");
            p += 11;
        } else if (!strncmp(p, "{{token}}", 9)) {
            if (token) sb_printf(&sb, "\"%s\"", token);
            else sb_puts(&sb, "undefined");
            p += 9;
        } else if (!strncmp(p, "{{index}}", 9)) {
            sb_printf(&sb, "%d", index);
            p += 9;
        } else if (!strncmp(p, "{{value}}", 9)) {
            json_t *pv = value ? jv_to_json((json_t *)value) : NULL;
            char *s = pv && !jv_is_func(pv) ? crm_stringify(pv, 0) : NULL;
            sb_puts(&sb, s ? s : "undefined");
            free(s);
            jv_decref(pv);
            p += 9;
        } else if (!strncmp(p, "{{", 2)) {
            const char *e = strstr(p, "}}");
            sb_puts(&sb, "undefined");
            p = e ? e + 2 + (e[2] == '}') : p + strlen(p);
        } else {
            sb_putc(&sb, *p++);
        }
    }
    snprintf(err->message, sizeof err->message, "%s", sb.data);
    sb_free(&sb);
}

/* UTF-16 view of UTF-8 text ------------------------------------------------ */

static size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

size_t ju_len16(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n;) {
        size_t l = u8len((unsigned char)s[i]);
        units += l == 4 ? 2 : 1;
        i += l;
    }
    return units;
}

size_t ju_off16(const char *s, size_t n, size_t idx)
{
    size_t units = 0, i = 0;
    while (i < n && units < idx) {
        size_t l = u8len((unsigned char)s[i]);
        units += l == 4 ? 2 : 1;
        i += l;
    }
    return i > n ? n : i;
}
