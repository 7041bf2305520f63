/* test_jsonata_fmt.c: the formatting built-ins of jsonata_fmt.h against the
 * official JSONata suite, called directly (no expression engine): every case
 * of the formatting groups whose expression is one call with literal
 * arguments is run, plus hand-written composite cases the engine would
 * otherwise chain ($toMillis then $fromMillis). */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata_fmt.h"
#include "unit.h"
#include "value.h"

#define SUITE "tests/conformance/jsonata" /* the repository's copy (tools/refresh-conformance.sh) */

typedef struct {
    const char *name;
    jsonata_native fn;
} fn_entry;

static const fn_entry fns[] = {
    {"formatNumber", jsonata_fn_formatNumber}, {"formatBase", jsonata_fn_formatBase},
    {"formatInteger", jsonata_fn_formatInteger}, {"parseInteger", jsonata_fn_parseInteger},
    {"fromMillis", jsonata_fn_fromMillis}, {"toMillis", jsonata_fn_toMillis},
};

static int skipped, suite_cases;

/* Mini-parser for literal arguments -------------------------------------------- */

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\t') (*p)++;
}

static json_t *parse_literal(const char **p, const json_t *data, bool *ok);

static json_t *parse_string(const char **p, bool *ok)
{
    char q = *(*p)++;
    char buf[1024];
    size_t n = 0;
    while (**p && **p != q && n < sizeof buf - 1) {
        if (**p == '\\' && (*p)[1]) (*p)++;
        buf[n++] = *(*p)++;
    }
    if (**p != q) { *ok = false; return NULL; }
    (*p)++;
    return json_stringn(buf, n);
}

static json_t *parse_object(const char **p, const json_t *data, bool *ok)
{
    json_t *o = json_object();
    (*p)++;
    skip_ws(p);
    while (*ok && **p && **p != '}') {
        json_t *k = (**p == '"' || **p == '\'') ? parse_string(p, ok) : NULL;
        if (!k) { *ok = false; break; }
        skip_ws(p);
        if (*(*p)++ != ':') { *ok = false; json_decref(k); break; }
        skip_ws(p);
        json_t *v = parse_literal(p, data, ok);
        if (*ok && v) json_object_set_new(o, json_string_value(k), v);
        json_decref(k);
        skip_ws(p);
        if (**p == ',') (*p)++;
        skip_ws(p);
    }
    if (**p != '}') *ok = false;
    else (*p)++;
    return o;
}

/* a string, number, object, () or a field of the input; anything else fails */
static json_t *parse_literal(const char **p, const json_t *data, bool *ok)
{
    skip_ws(p);
    const char *s = *p;
    if (*s == '"' || *s == '\'') return parse_string(p, ok);
    if (*s == '{') return parse_object(p, data, ok);
    if (s[0] == '(' && s[1] == ')') { *p += 2; return NULL; }
    if (*s == '-' || (*s >= '0' && *s <= '9')) {
        char *end;
        double d = strtod(s, &end);
        *p = end;
        return crm_num(d);
    }
    if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') {
        char name[64];
        size_t n = 0;
        while (((**p >= 'a' && **p <= 'z') || (**p >= 'A' && **p <= 'Z') || **p == '_' || (**p >= '0' && **p <= '9')) && n < 63)
            name[n++] = *(*p)++;
        name[n] = 0;
        json_t *v = json_is_object(data) ? json_object_get(data, name) : NULL;
        return v ? json_incref(v) : NULL;
    }
    *ok = false;
    return NULL;
}

/* "$fn(a, b, c)" with literal arguments: fills fn and args, false to skip */
static bool parse_call(const char *expr, const json_t *data, jsonata_native *fn, json_t **args, size_t *nargs)
{
    const char *p = expr;
    skip_ws(&p);
    if (*p++ != '$') return false;
    char name[32];
    size_t n = 0;
    while (*p && *p != '(' && n < 31) name[n++] = *p++;
    name[n] = 0;
    if (*p++ != '(') return false;
    *fn = NULL;
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
        if (!strcmp(fns[i].name, name)) *fn = fns[i].fn;
    if (!*fn) return false;
    bool ok = true;
    *nargs = 0;
    skip_ws(&p);
    while (ok && *p && *p != ')' && *nargs < 4) {
        args[(*nargs)++] = parse_literal(&p, data, &ok);
        skip_ws(&p);
        if (*p == ',') p++;
        else if (*p != ')') ok = false;
    }
    if (ok && *p == ')') {
        p++;
        skip_ws(&p);
        if (*p) ok = false;
    } else {
        ok = false;
    }
    if (!ok) {
        for (size_t i = 0; i < *nargs; i++) json_decref(args[i]);
        *nargs = 0;
    }
    return ok;
}

/* Suite runner ---------------------------------------------------------------------------- */

static json_t *load_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    buf[got] = 0;
    char e[128];
    json_t *v = crm_parse(buf, got, e, sizeof e);
    free(buf);
    return v;
}

static json_t *case_data(const json_t *c)
{
    json_t *d = json_object_get(c, "data");
    if (d) return json_incref(d);
    const char *ds = json_string_value(json_object_get(c, "dataset"));
    if (!ds) return NULL;
    char path[512];
    snprintf(path, sizeof path, SUITE "/datasets/%s.json", ds);
    return load_json(path);
}

static void run_case(const char *file, const json_t *c)
{
    const char *expr = json_string_value(json_object_get(c, "expr"));
    if (!expr) { skipped++; return; }
    json_t *data = case_data(c);
    jsonata_native fn;
    json_t *args[4];
    size_t nargs;
    if (!parse_call(expr, data, &fn, args, &nargs)) {
        skipped++;
        if (getenv("FMT_VERBOSE")) fprintf(stderr, "skip: %s\n", expr);
        json_decref(data);
        return;
    }
    suite_cases++;
    jsonata_error err;
    memset(&err, 0, sizeof err);
    json_t *r = fn(NULL, args, nargs, &err);
    json_t *want = json_object_get(c, "result");
    const char *want_code = json_string_value(json_object_get(c, "code"));
    bool pass;
    if (want_code) pass = !r && !strcmp(err.code, want_code);
    else if (json_is_true(json_object_get(c, "undefinedResult"))) pass = !r && !err.code[0];
    else pass = r && want && crm_equal(r, want);
    unit_checks++;
    if (!pass) {
        unit_failures++;
        char *got = r ? crm_stringify(r, 0) : NULL;
        char *exp = want ? crm_stringify(want, 0) : NULL;
        fprintf(stderr, "%s: %s\n  expected %s%s, got %s%s%s\n", file, expr, exp ? exp : "", want_code ? want_code : "",
                got ? got : "undefined", err.code[0] ? " error " : "", err.code);
        free(got);
        free(exp);
    }
    json_decref(r);
    for (size_t i = 0; i < nargs; i++) json_decref(args[i]);
    json_decref(data);
}

static void run_group(const char *group)
{
    char dir[512];
    snprintf(dir, sizeof dir, SUITE "/groups/%s", group);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        json_t *v = load_json(path);
        if (json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v); i++) run_case(e->d_name, json_array_get(v, i));
        } else if (json_is_object(v)) {
            run_case(e->d_name, v);
        }
        json_decref(v);
    }
    closedir(d);
}

/* Composite cases, by hand ------------------------------------------------------------ */

static json_t *call2(jsonata_native fn, json_t *a, json_t *b, json_t *c, jsonata_error *err)
{
    json_t *args[3] = {a, b, c};
    memset(err, 0, sizeof *err);
    json_t *r = fn(NULL, args, 3, err);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    return r;
}

static char *from_millis(json_t *ms, const char *picture, const char *tz)
{
    jsonata_error err;
    json_t *r = call2(jsonata_fn_fromMillis, ms, picture ? json_string(picture) : NULL,
                      tz ? json_string(tz) : NULL, &err);
    char *s = r && json_is_string(r) ? strdup(json_string_value(r)) : strdup(err.code);
    json_decref(r);
    return s;
}

static json_t *to_millis(const char *ts, const char *picture)
{
    jsonata_error err;
    return call2(jsonata_fn_toMillis, json_string(ts), picture ? json_string(picture) : NULL, NULL, &err);
}

static void check_iso_week(const char *date, const char *expected)
{
    char *s = from_millis(to_millis(date, "[Y]-[M]-[D]"), "[X0001]-W[W01]-[F1]", NULL);
    CHECK_STR(s, expected);
    free(s);
}

static void check_roundtrip(const char *ts, const char *picture, const char *expected)
{
    char *s = from_millis(to_millis(ts, picture), NULL, NULL);
    CHECK_STR(s, expected);
    free(s);
}

static void composite_cases(void)
{
    static const char *const weeks[][2] = {
        {"2005-01-01", "2004-W53-6"}, {"2005-01-02", "2004-W53-7"}, {"2005-12-31", "2005-W52-6"},
        {"2006-01-01", "2005-W52-7"}, {"2006-01-02", "2006-W01-1"}, {"2006-12-31", "2006-W52-7"},
        {"2007-01-01", "2007-W01-1"}, {"2007-12-30", "2007-W52-7"}, {"2007-12-31", "2008-W01-1"},
        {"2008-01-01", "2008-W01-2"}, {"2008-12-28", "2008-W52-7"}, {"2008-12-29", "2009-W01-1"},
        {"2008-12-30", "2009-W01-2"}, {"2008-12-31", "2009-W01-3"}, {"2009-01-01", "2009-W01-4"},
        {"2009-12-31", "2009-W53-4"}, {"2010-01-01", "2009-W53-5"}, {"2010-01-02", "2009-W53-6"},
        {"2010-01-03", "2009-W53-7"},
    };
    for (size_t i = 0; i < sizeof weeks / sizeof *weeks; i++) check_iso_week(weeks[i][0], weeks[i][1]);

    check_roundtrip("Wednesday, 14th November 2018", "[FNn], [D1o] [MNn] [Y]", "2018-11-14T00:00:00.000Z");
    check_roundtrip("Mon, Twelfth November 2018", "[FNn,*-3], [DWwo] [MNn] [Y]", "2018-11-12T00:00:00.000Z");
    check_roundtrip("2018--180", "[Y]--[d]", "2018-06-29T00:00:00.000Z");
    check_roundtrip("three hundred and sixty-fifth day of 2018", "[dwo] day of [Y]", "2018-12-31T00:00:00.000Z");
    check_roundtrip("2020-09-09 08:00:00 +02:00", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z]", "2020-09-09T06:00:00.000Z");
    check_roundtrip("2020-09-09 08:00:00 GMT-05:00", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [z]", "2020-09-09T13:00:00.000Z");
    check_roundtrip("2020-09-09 12:00:00 +05:30", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z]", "2020-09-09T06:30:00.000Z");
    check_roundtrip("2020-09-09 12:00:00 GMT-5", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [z01]", "2020-09-09T17:00:00.000Z");
    check_roundtrip("2020-09-09 12:00:00 +0530", "[Y0001]-[M01]-[D01] [H01]:[m01]:[s01] [Z0001]", "2020-09-09T06:30:00.000Z");
    check_roundtrip("2026-04-08T19:05:04.01987", "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f1]", "2026-04-08T19:05:04.019Z");

    /* a time alone takes today's date */
    char *s = from_millis(to_millis("13:45", "[H]:[m]"), NULL, NULL);
    CHECK(strlen(s) == 24 && !strcmp(s + 10, "T13:45:00.000Z"));
    free(s);

    /* $toMillis('2018-10-21T13:05:00Z').[$fromMillis(), ...('-0500'), ...('0000')] */
    static const char *const tz[][2] = {
        {NULL, "2018-10-21T13:05:00.000Z"}, {"-0500", "2018-10-21T08:05:00.000-05:00"}, {"0000", "2018-10-21T13:05:00.000Z"},
    };
    for (size_t i = 0; i < 3; i++) {
        s = from_millis(to_millis("2018-10-21T13:05:00Z", NULL), NULL, tz[i][0]);
        CHECK_STR(s, tz[i][1]);
        free(s);
    }
    /* $toMillis('2024-01-01T12:38:49Z') = $toMillis('20240101123849', picture) */
    json_t *a = to_millis("2024-01-01T12:38:49Z", NULL);
    json_t *b = to_millis("20240101123849", "[Y0000][M00][D00][H00][m00][s00]");
    CHECK(a && b && crm_equal(a, b));
    json_decref(a);
    json_decref(b);
    /* $formatNumber(2392.14*(-36.58), ...) and (2.14*86.58, ...) */
    jsonata_error err;
    json_t *r = call2(jsonata_fn_formatNumber, crm_num(2392.14 * (-36.58)), json_string("000,000.000###;###,###.000###"), NULL, &err);
    CHECK_STR(json_string_value(r), "87,504.4812");
    json_decref(r);
    r = call2(jsonata_fn_formatNumber, crm_num(2.14 * 86.58), json_string("PREFIX##00.000###SUFFIX"), NULL, &err);
    CHECK_STR(json_string_value(r), "PREFIX185.2812SUFFIX");
    json_decref(r);
}

int main(void)
{
    static const char *const groups[] = {
        "function-formatNumber", "function-formatBase", "function-formatInteger",
        "function-parseInteger", "function-fromMillis", "function-tomillis",
    };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) run_group(groups[i]);
    printf("suite: %d literal-call cases run, %d skipped\n", suite_cases, skipped);
    composite_cases();
    UNIT_DONE();
}
