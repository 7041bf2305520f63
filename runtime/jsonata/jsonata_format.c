/* jsonata_format.c: $formatNumber (XPath F&O 4.7 format-number pictures) and
 * $formatBase, plus the small string helpers jsonata_datetime.c shares.
 *
 * The picture analysis follows jsonata-js step by step, including its quirks
 * (the last failing validation wins, a fractional part taken from the suffix
 * when there is no decimal separator, multi-character percent/per-mille
 * markers), because flows written against Node-RED depend on its output. */
#include "jsonata_fmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "value.h"

/* Shared helpers ---------------------------------------------------------- */

json_t *jfmt_fail(jsonata_error *err, const char *code, const char *fmt, ...)
{
    if (!err) return NULL;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return NULL;
}

void jfmt_cps_push(jfmt_cps *s, unsigned c)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        unsigned *nc = realloc(s->c, cap * sizeof *nc);
        if (!nc) abort(); /* out of memory: nothing sensible to return */
        s->c = nc;
        s->cap = cap;
    }
    s->c[s->n++] = c;
}

void jfmt_cps_append(jfmt_cps *s, const unsigned *c, size_t n)
{
    for (size_t i = 0; i < n; i++) jfmt_cps_push(s, c[i]);
}

void jfmt_cps_free(jfmt_cps *s)
{
    free(s->c);
    s->c = NULL;
    s->n = s->cap = 0;
}

/* Invalid UTF-8 bytes become U+FFFD rather than stopping the analysis. */
void jfmt_cps_from_utf8(jfmt_cps *s, const char *utf8, size_t len)
{
    const unsigned char *p = (const unsigned char *)utf8, *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        int more = 0;
        if (c >= 0xF0 && c < 0xF8) { c &= 0x07; more = 3; }
        else if (c >= 0xE0) { c &= 0x0F; more = 2; }
        else if (c >= 0xC0) { c &= 0x1F; more = 1; }
        else if (c >= 0x80) { c = 0xFFFD; }
        for (; more > 0; more--) {
            if (p >= end || (*p & 0xC0) != 0x80) { c = 0xFFFD; break; }
            c = (c << 6) | (*p++ & 0x3F);
        }
        jfmt_cps_push(s, c);
    }
}

char *jfmt_cps_utf8(const jfmt_cps *s, size_t from, size_t to)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (size_t i = from; i < to && i < s->n; i++) sb_put_utf8(&sb, s->c[i]);
    return sb_take(&sb);
}

/* JS string primitives on code-point arrays --------------------------------- */

static void cps_set(jfmt_cps *dst, const unsigned *c, size_t n)
{
    dst->n = 0;
    jfmt_cps_append(dst, c, n);
    if (!dst->c) jfmt_cps_push(dst, 0), dst->n = 0; /* never leave c NULL */
}

/* String.prototype.substring: clamps, and swaps reversed bounds. */
static void cps_substring(jfmt_cps *dst, const jfmt_cps *s, long a, long b)
{
    long n = (long)s->n;
    if (a < 0) a = 0;
    if (a > n) a = n;
    if (b < 0) b = 0;
    if (b > n) b = n;
    if (a > b) { long t = a; a = b; b = t; }
    cps_set(dst, s->c + a, (size_t)(b - a));
}

static bool cps_match_at(const jfmt_cps *h, size_t at, const jfmt_cps *needle)
{
    if (at + needle->n > h->n) return false;
    for (size_t i = 0; i < needle->n; i++)
        if (h->c[at + i] != needle->c[i]) return false;
    return true;
}

static long cps_index_of(const jfmt_cps *h, const jfmt_cps *needle, long from)
{
    if (from < 0) from = 0;
    if (from > (long)h->n) from = (long)h->n;
    for (size_t i = (size_t)from; i + needle->n <= h->n; i++)
        if (cps_match_at(h, i, needle)) return (long)i;
    return -1;
}

static long cps_last_index_of(const jfmt_cps *h, const jfmt_cps *needle)
{
    if (needle->n > h->n) return -1;
    for (long i = (long)(h->n - needle->n); i >= 0; i--)
        if (cps_match_at(h, (size_t)i, needle)) return i;
    return -1;
}

static bool cps_contains(const jfmt_cps *h, const jfmt_cps *needle)
{
    return cps_index_of(h, needle, 0) != -1;
}

/* charAt(i) === prop: only a one-character property can equal a character */
static bool cps_char_is(const jfmt_cps *s, long i, const jfmt_cps *prop)
{
    if (i < 0 || i >= (long)s->n) return prop->n == 0; /* charAt gives "" */
    return prop->n == 1 && s->c[i] == prop->c[0];
}

/* s.slice(0, at) + what + s.slice(at): a negative index counts from the end */
static void cps_insert(jfmt_cps *s, long at, const jfmt_cps *what)
{
    if (at < 0) at += (long)s->n;
    if (at < 0) at = 0;
    if (at > (long)s->n) at = (long)s->n;
    jfmt_cps tail = {0};
    jfmt_cps_append(&tail, s->c + at, s->n - (size_t)at);
    s->n = (size_t)at;
    jfmt_cps_append(s, what->c, what->n);
    jfmt_cps_append(s, tail.c, tail.n);
    jfmt_cps_free(&tail);
}

/* JS number helpers ----------------------------------------------------------- */

/* Math.round: halves go towards +Infinity */
static double js_math_round(double x)
{
    double r = floor(x);
    if (x - r >= 0.5) r += 1;
    return r;
}

/* +(mantissa + 'e' + (exponent + shift)) on the JS string of x, as jsonata's
 * $round shifts decimals without the error multiplying by 10^n brings. */
static double js_shift_decimal(double x, int shift)
{
    if (!isfinite(x)) return NAN; /* "Infinitye2" is NaN in JS */
    char num[40], text[64];
    crm_fmt_number(x, num);
    char *e = strchr(num, 'e');
    long exp = shift;
    if (e) {
        *e = 0;
        exp += strtol(e + 1, NULL, 10);
    }
    snprintf(text, sizeof text, "%se%ld", num, exp);
    return strtod(text, NULL);
}

/* jsonata-js round(): half to even, with an optional number of decimals */
static double js_round(double arg, int precision)
{
    if (precision) arg = js_shift_decimal(arg, precision);
    double r = js_math_round(arg);
    if (fabs(r - arg) == 0.5 && fabs(fmod(r, 2)) == 1) r -= 1;
    if (precision) r = js_shift_decimal(r, -precision);
    if (r == 0) r = 0; /* no -0 */
    return r;
}

/* Number.prototype.toFixed(dp) of a non-negative x: the exact decimal value of
 * the double, rounded half up at dp decimals. malloc'd. */
static char *js_to_fixed(double x, int dp)
{
    char nb[40];
    if (!isfinite(x) || x >= 1e21) return strdup(crm_fmt_number(x, nb));
    if (dp < 0) dp = 0;
    if (dp > 100) dp = 100;
    /* 1100 digits hold every fractional digit a double below 1e21 has */
    size_t cap = (size_t)dp + 1100 + 32;
    char *full = malloc(cap);
    if (!full) abort();
    snprintf(full, cap, "%.*f", dp + 1100, x);
    char *point = strchr(full, '.');
    size_t ilen = (size_t)(point - full);
    bool up = point[dp + 1] >= '5';
    /* keep integer digits and dp decimals, without the point, then carry */
    char *digits = malloc(ilen + (size_t)dp + 2);
    if (!digits) abort();
    memcpy(digits, full, ilen);
    memcpy(digits + ilen, point + 1, (size_t)dp);
    size_t nd = ilen + (size_t)dp;
    digits[nd] = 0;
    free(full);
    bool carry = up;
    for (size_t i = nd; carry && i > 0; i--) {
        if (digits[i - 1] == '9') digits[i - 1] = '0';
        else { digits[i - 1]++; carry = false; }
    }
    strbuf sb = SB_INIT;
    if (carry) { sb_putc(&sb, '1'); }
    sb_putn(&sb, digits, ilen);
    if (dp > 0) {
        sb_putc(&sb, '.');
        sb_putn(&sb, digits + ilen, (size_t)dp);
    }
    free(digits);
    return sb_take(&sb);
}

/* $formatNumber ---------------------------------------------------------------- */

enum {
    P_DECIMAL, P_GROUPING, P_EXPONENT, P_INFINITY, P_MINUS, P_NAN, P_PERCENT,
    P_PERMILLE, P_ZERO, P_DIGIT, P_PATTERN, P_COUNT
};

static const char *const prop_names[P_COUNT] = {
    "decimal-separator", "grouping-separator", "exponent-separator", "infinity",
    "minus-sign", "NaN", "percent", "per-mille", "zero-digit", "digit", "pattern-separator"
};
static const char *const prop_defaults[P_COUNT] = {
    ".", ",", "e", "Infinity", "-", "NaN", "%", "\xE2\x80\xB0", "0", "#", ";"
};

typedef struct {
    jfmt_cps p[P_COUNT];
    unsigned family[10]; /* the decimal digit family, from zero-digit */
    bool zero_is_ascii;
} nf_props;

typedef struct {
    jfmt_cps sub, prefix, suffix, active, mantissa, exponent, integer, fraction;
    bool has_exponent;
} nf_parts;

typedef struct {
    long *int_groups;
    size_t n_int_groups;
    long regular;
    long min_int, scaling, min_frac, max_frac, min_exp;
    long *frac_groups;
    size_t n_frac_groups;
    jfmt_cps prefix, suffix, picture;
} nf_vars;

static void props_init(nf_props *pr, const json_t *options)
{
    memset(pr, 0, sizeof *pr);
    for (int i = 0; i < P_COUNT; i++) {
        const char *v = prop_defaults[i];
        size_t len = strlen(v);
        const json_t *o = json_is_object(options) ? json_object_get(options, prop_names[i]) : NULL;
        if (json_is_string(o)) {
            v = json_string_value(o);
            len = json_string_length(o);
        }
        jfmt_cps_from_utf8(&pr->p[i], v, len);
    }
    /* an empty zero-digit would leave JS with no digit family at all */
    unsigned zero = pr->p[P_ZERO].n ? pr->p[P_ZERO].c[0] : '0';
    for (int i = 0; i < 10; i++) pr->family[i] = zero + (unsigned)i;
    pr->zero_is_ascii = pr->p[P_ZERO].n == 1 && zero == '0';
}

static void props_free(nf_props *pr)
{
    for (int i = 0; i < P_COUNT; i++) jfmt_cps_free(&pr->p[i]);
}

static bool is_family(const nf_props *pr, unsigned c)
{
    return c >= pr->family[0] && c <= pr->family[9];
}

static bool is_single(const jfmt_cps *prop, unsigned c)
{
    return prop->n == 1 && prop->c[0] == c;
}

static bool is_active(const nf_props *pr, unsigned c)
{
    return is_family(pr, c) || is_single(&pr->p[P_DECIMAL], c) || is_single(&pr->p[P_EXPONENT], c) ||
           is_single(&pr->p[P_GROUPING], c) || is_single(&pr->p[P_DIGIT], c) ||
           is_single(&pr->p[P_PATTERN], c);
}

static size_t count_family(const nf_props *pr, const jfmt_cps *s, bool with_digit)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (is_family(pr, s->c[i]) || (with_digit && is_single(&pr->p[P_DIGIT], s->c[i]))) n++;
    return n;
}

static void parts_free(nf_parts *p)
{
    jfmt_cps *all[] = {&p->sub, &p->prefix, &p->suffix, &p->active, &p->mantissa,
                       &p->exponent, &p->integer, &p->fraction};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) jfmt_cps_free(all[i]);
}

static void vars_free(nf_vars *v)
{
    free(v->int_groups);
    free(v->frac_groups);
    jfmt_cps_free(&v->prefix);
    jfmt_cps_free(&v->suffix);
    jfmt_cps_free(&v->picture);
}

/* F&O 4.7.2: prefix, suffix, mantissa/exponent, integer/fraction */
static void split_parts(const nf_props *pr, const jfmt_cps *sub, nf_parts *out)
{
    memset(out, 0, sizeof *out);
    cps_set(&out->sub, sub->c, sub->n);
    long n = (long)sub->n, first = -1, last = -1;
    for (long i = 0; i < n; i++) {
        unsigned c = sub->c[i];
        if (is_active(pr, c) && !is_single(&pr->p[P_EXPONENT], c)) {
            if (first < 0) first = i;
            last = i;
        }
    }
    cps_substring(&out->prefix, sub, 0, first < 0 ? 0 : first);
    cps_substring(&out->suffix, sub, last < 0 ? n : last + 1, n);
    cps_substring(&out->active, sub, (long)out->prefix.n, n - (long)out->suffix.n);
    long epos = cps_index_of(sub, &pr->p[P_EXPONENT], (long)out->prefix.n);
    if (epos == -1 || epos > n - (long)out->suffix.n) {
        cps_set(&out->mantissa, out->active.c, out->active.n);
    } else {
        /* jsonata-js uses the sub-picture index inside the active part */
        cps_substring(&out->mantissa, &out->active, 0, epos);
        cps_substring(&out->exponent, &out->active, epos + 1, (long)out->active.n);
        out->has_exponent = true;
    }
    long dpos = cps_index_of(&out->mantissa, &pr->p[P_DECIMAL], 0);
    if (dpos == -1) {
        cps_set(&out->integer, out->mantissa.c, out->mantissa.n);
        cps_set(&out->fraction, out->suffix.c, out->suffix.n);
    } else {
        cps_substring(&out->integer, &out->mantissa, 0, dpos);
        cps_substring(&out->fraction, &out->mantissa, dpos + 1, (long)out->mantissa.n);
    }
}

/* F&O 4.7.3; like jsonata-js every rule is checked and the last failure wins.
 * Returns the error code or NULL. */
static const char *validate_parts(const nf_props *pr, const nf_parts *p)
{
    const char *error = NULL;
    const jfmt_cps *sub = &p->sub;
    const jfmt_cps *dec = &pr->p[P_DECIMAL], *grp = &pr->p[P_GROUPING], *dig = &pr->p[P_DIGIT];
    const jfmt_cps *pct = &pr->p[P_PERCENT], *pml = &pr->p[P_PERMILLE];
    long dpos = cps_index_of(sub, dec, 0);
    if (dpos != cps_last_index_of(sub, dec)) error = "D3081";
    if (cps_index_of(sub, pct, 0) != cps_last_index_of(sub, pct)) error = "D3082";
    if (cps_index_of(sub, pml, 0) != cps_last_index_of(sub, pml)) error = "D3083";
    if (cps_contains(sub, pct) && cps_contains(sub, pml)) error = "D3084";
    if (count_family(pr, &p->mantissa, true) == 0) error = "D3085";
    for (size_t i = 0; i < p->active.n; i++)
        if (!is_active(pr, p->active.c[i])) error = "D3086";
    if (dpos != -1) {
        if (cps_char_is(sub, dpos - 1, grp) || cps_char_is(sub, dpos + 1, grp)) error = "D3087";
    } else if (cps_char_is(&p->integer, (long)p->integer.n - 1, grp)) {
        error = "D3088";
    }
    jfmt_cps twice = {0};
    jfmt_cps_append(&twice, grp->c, grp->n);
    jfmt_cps_append(&twice, grp->c, grp->n);
    if (cps_contains(sub, &twice)) error = "D3089";
    jfmt_cps_free(&twice);
    long opt = cps_index_of(&p->integer, dig, 0);
    if (opt != -1) {
        for (long i = 0; i < opt; i++)
            if (is_family(pr, p->integer.c[i])) error = "D3090";
    }
    opt = cps_last_index_of(&p->fraction, dig);
    if (opt != -1) {
        for (size_t i = (size_t)opt; i < p->fraction.n; i++)
            if (is_family(pr, p->fraction.c[i])) error = "D3091";
    }
    if (p->has_exponent && p->exponent.n > 0 && (cps_contains(sub, pct) || cps_contains(sub, pml)))
        error = "D3092";
    if (p->has_exponent) {
        bool bad = p->exponent.n == 0;
        for (size_t i = 0; i < p->exponent.n; i++)
            if (!is_family(pr, p->exponent.c[i])) bad = true;
        if (bad) error = "D3093";
    }
    return error;
}

static const char *nf_message(const char *code)
{
    static const struct { const char *code, *msg; } msgs[] = {
        {"D3080", "The picture string must only contain a maximum of two sub-pictures"},
        {"D3081", "The sub-picture must not contain more than one instance of the 'decimal-separator' character"},
        {"D3082", "The sub-picture must not contain more than one instance of the 'percent' character"},
        {"D3083", "The sub-picture must not contain more than one instance of the 'per-mille' character"},
        {"D3084", "The sub-picture must not contain both a 'percent' and a 'per-mille' character"},
        {"D3085", "The mantissa part of a sub-picture must contain at least one character that is either an 'optional digit character' or a member of the 'decimal digit family'"},
        {"D3086", "The sub-picture must not contain a passive character that is preceded by an active character and that is followed by another active character"},
        {"D3087", "The sub-picture must not contain a 'grouping-separator' character that appears adjacent to a 'decimal-separator' character"},
        {"D3088", "The sub-picture must not contain a 'grouping-separator' at the end of the integer part"},
        {"D3089", "The sub-picture must not contain two adjacent instances of the 'grouping-separator' character"},
        {"D3090", "The integer part of the sub-picture must not contain a member of the 'decimal digit family' that is followed by an instance of the 'optional digit character'"},
        {"D3091", "The fractional part of the sub-picture must not contain an instance of the 'optional digit character' that is followed by a member of the 'decimal digit family'"},
        {"D3092", "A sub-picture that contains a 'percent' or 'per-mille' character must not contain a character treated as an 'exponent-separator'"},
        {"D3093", "The exponent part of the sub-picture must comprise only of one or more characters that are members of the 'decimal digit family'"},
    };
    for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++)
        if (!strcmp(msgs[i].code, code)) return msgs[i].msg;
    return "Invalid picture string";
}

/* Positions of the grouping separators, counted in digits from the separator
 * to the right (integer part) or from the left (fractional part). */
static long *grouping_positions(const nf_props *pr, const nf_parts *p, const jfmt_cps *part,
                                bool to_left, size_t *count)
{
    const jfmt_cps *grp = &pr->p[P_GROUPING];
    long *pos = NULL;
    size_t n = 0;
    long gp = cps_index_of(part, grp, 0);
    while (gp != -1 && n < part->n + p->integer.n + 1) {
        jfmt_cps side = {0};
        if (to_left) cps_substring(&side, part, 0, gp);
        else cps_substring(&side, part, gp, (long)part->n);
        long *np = realloc(pos, (n + 1) * sizeof *pos);
        if (!np) abort();
        pos = np;
        pos[n++] = (long)count_family(pr, &side, true);
        jfmt_cps_free(&side);
        /* jsonata-js looks for the next one in the integer part, whichever
         * part it is analysing */
        gp = cps_index_of(&p->integer, grp, gp + 1);
    }
    *count = n;
    return pos;
}

static long gcd_l(long a, long b) { return b == 0 ? a : gcd_l(b, a % b); }

/* the common interval of grouping positions, or 0 when they are irregular */
static long regular_interval(const long *idx, size_t n)
{
    if (n == 0) return 0;
    long factor = idx[0];
    for (size_t i = 1; i < n; i++) factor = gcd_l(factor, idx[i]);
    for (size_t k = 1; k <= n; k++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            if (idx[i] == (long)k * factor) found = true;
        if (!found) return 0;
    }
    return factor;
}

/* F&O 4.7.4 */
static void analyse_parts(const nf_props *pr, const nf_parts *p, nf_vars *v)
{
    memset(v, 0, sizeof *v);
    v->int_groups = grouping_positions(pr, p, &p->integer, false, &v->n_int_groups);
    v->regular = regular_interval(v->int_groups, v->n_int_groups);
    v->frac_groups = grouping_positions(pr, p, &p->fraction, true, &v->n_frac_groups);
    v->min_int = (long)count_family(pr, &p->integer, false);
    v->scaling = v->min_int;
    v->min_frac = (long)count_family(pr, &p->fraction, false);
    v->max_frac = (long)count_family(pr, &p->fraction, true);
    if (v->min_int == 0 && v->max_frac == 0) {
        if (p->has_exponent) v->min_frac = v->max_frac = 1;
        else v->min_int = 1;
    }
    if (p->has_exponent && v->min_int == 0 && cps_contains(&p->integer, &pr->p[P_DIGIT]))
        v->min_int = 1;
    if (v->min_int == 0 && v->min_frac == 0) v->min_frac = 1;
    v->min_exp = p->has_exponent ? (long)count_family(pr, &p->exponent, false) : 0;
    cps_set(&v->prefix, p->prefix.c, p->prefix.n);
    cps_set(&v->suffix, p->suffix.c, p->suffix.n);
    cps_set(&v->picture, p->sub.c, p->sub.n);
}

static void vars_copy(nf_vars *dst, const nf_vars *src)
{
    *dst = *src;
    dst->int_groups = malloc((src->n_int_groups + 1) * sizeof(long));
    dst->frac_groups = malloc((src->n_frac_groups + 1) * sizeof(long));
    if (!dst->int_groups || !dst->frac_groups) abort();
    if (src->n_int_groups) memcpy(dst->int_groups, src->int_groups, src->n_int_groups * sizeof(long));
    if (src->n_frac_groups) memcpy(dst->frac_groups, src->frac_groups, src->n_frac_groups * sizeof(long));
    memset(&dst->prefix, 0, sizeof dst->prefix);
    memset(&dst->suffix, 0, sizeof dst->suffix);
    memset(&dst->picture, 0, sizeof dst->picture);
    cps_set(&dst->prefix, src->prefix.c, src->prefix.n);
    cps_set(&dst->suffix, src->suffix.c, src->suffix.n);
    cps_set(&dst->picture, src->picture.c, src->picture.n);
}

/* abs(value).toFixed(dp) in the picture's digit family */
static void make_string(const nf_props *pr, double value, long dp, jfmt_cps *out)
{
    char *s = js_to_fixed(fabs(value), (int)dp);
    out->n = 0;
    for (const char *q = s; *q; q++) {
        unsigned c = (unsigned char)*q;
        if (!pr->zero_is_ascii && c >= '0' && c <= '9') c = pr->family[c - '0'];
        jfmt_cps_push(out, c);
    }
    free(s);
}

/* F&O 4.7.5: the number through the analysed sub-picture */
static void format_with(const nf_props *pr, const nf_vars *pic, double value, jfmt_cps *out)
{
    const jfmt_cps *zero = &pr->p[P_ZERO], *dec = &pr->p[P_DECIMAL], *grp = &pr->p[P_GROUPING];
    double adjusted = value;
    if (cps_contains(&pic->picture, &pr->p[P_PERCENT])) adjusted = value * 100;
    else if (cps_contains(&pic->picture, &pr->p[P_PERMILLE])) adjusted = value * 1000;

    double mantissa = adjusted;
    long exponent = 0;
    bool has_exp = pic->min_exp != 0;
    if (has_exp && mantissa != 0 && isfinite(mantissa)) {
        double maxm = pow(10, (double)pic->scaling), minm = pow(10, (double)(pic->scaling - 1));
        while (fabs(mantissa) < minm) { mantissa *= 10; exponent--; }
        while (fabs(mantissa) > maxm) { mantissa /= 10; exponent++; }
    }
    double rounded = js_round(mantissa, (int)pic->max_frac);

    jfmt_cps sv = {0};
    make_string(pr, rounded, pic->max_frac, &sv);
    jfmt_cps dot = {0};
    jfmt_cps_push(&dot, '.');
    long dpos = cps_index_of(&sv, &dot, 0);
    if (dpos == -1) {
        jfmt_cps_append(&sv, dec->c, dec->n);
    } else {
        jfmt_cps tail = {0};
        cps_substring(&tail, &sv, dpos + 1, (long)sv.n);
        sv.n = (size_t)dpos;
        jfmt_cps_append(&sv, dec->c, dec->n);
        jfmt_cps_append(&sv, tail.c, tail.n);
        jfmt_cps_free(&tail);
    }
    jfmt_cps_free(&dot);
    /* strip leading and trailing zeros, then pad back to the minimum sizes */
    size_t lead = 0;
    while (lead < sv.n && cps_char_is(&sv, (long)lead, zero)) lead++;
    if (zero->n == 1 && lead) {
        memmove(sv.c, sv.c + lead, (sv.n - lead) * sizeof *sv.c);
        sv.n -= lead;
    }
    while (zero->n == 1 && sv.n && sv.c[sv.n - 1] == zero->c[0]) sv.n--;

    dpos = cps_index_of(&sv, dec, 0);
    long pad_left = pic->min_int - dpos;
    long pad_right = pic->min_frac - ((long)sv.n - dpos - 1);
    jfmt_cps padded = {0};
    for (long i = 0; i < pad_left; i++) jfmt_cps_append(&padded, zero->c, zero->n);
    jfmt_cps_append(&padded, sv.c, sv.n);
    for (long i = 0; i < pad_right; i++) jfmt_cps_append(&padded, zero->c, zero->n);
    jfmt_cps_free(&sv);
    sv = padded;

    dpos = cps_index_of(&sv, dec, 0);
    if (pic->regular > 0) {
        long groups = (dpos - 1) / pic->regular;
        for (long g = 1; g <= groups; g++) cps_insert(&sv, dpos - g * pic->regular, grp);
    } else {
        for (size_t i = 0; i < pic->n_int_groups; i++) {
            cps_insert(&sv, dpos - pic->int_groups[i], grp);
            dpos++;
        }
    }
    dpos = cps_index_of(&sv, dec, 0);
    for (size_t i = 0; i < pic->n_frac_groups; i++)
        cps_insert(&sv, pic->frac_groups[i] + dpos + 1, grp);

    dpos = cps_index_of(&sv, dec, 0);
    if (!cps_contains(&pic->picture, dec) || dpos == (long)sv.n - 1) {
        if (sv.n) sv.n--;
    }
    if (has_exp) {
        jfmt_cps se = {0};
        make_string(pr, (double)exponent, 0, &se);
        jfmt_cps_append(&sv, pr->p[P_EXPONENT].c, pr->p[P_EXPONENT].n);
        if (exponent < 0) jfmt_cps_append(&sv, pr->p[P_MINUS].c, pr->p[P_MINUS].n);
        for (long i = (long)se.n; i < pic->min_exp; i++) jfmt_cps_append(&sv, zero->c, zero->n);
        jfmt_cps_append(&sv, se.c, se.n);
        jfmt_cps_free(&se);
    }
    out->n = 0;
    jfmt_cps_append(out, pic->prefix.c, pic->prefix.n);
    jfmt_cps_append(out, sv.c, sv.n);
    jfmt_cps_append(out, pic->suffix.c, pic->suffix.n);
    jfmt_cps_free(&sv);
}

/* picture.split(pattern-separator), JS semantics (an empty separator splits
 * into single characters) */
static size_t split_subpictures(const jfmt_cps *pic, const jfmt_cps *sep, jfmt_cps *out, size_t max)
{
    size_t n = 0;
    if (sep->n == 0) {
        for (size_t i = 0; i < pic->n; i++, n++)
            if (n < max) { memset(&out[n], 0, sizeof out[n]); cps_set(&out[n], pic->c + i, 1); }
        return n;
    }
    long start = 0;
    for (;;) {
        long at = cps_index_of(pic, sep, start);
        long end = at == -1 ? (long)pic->n : at;
        if (n < max) {
            memset(&out[n], 0, sizeof out[n]);
            cps_substring(&out[n], pic, start, end);
        }
        n++;
        if (at == -1) break;
        start = at + (long)sep->n;
    }
    return n;
}

json_t *jsonata_fn_formatNumber(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    if (nargs < 1 || !args[0]) return NULL;
    if (!json_is_number(args[0])) return jfmt_fail(err, "T0410", "Argument 1 of function \"formatNumber\" does not match function signature");
    if (nargs < 2 || !json_is_string(args[1]))
        return jfmt_fail(err, "T0410", "Argument 2 of function \"formatNumber\" does not match function signature");
    double value = crm_num_value(args[0]);
    nf_props pr;
    props_init(&pr, nargs > 2 ? args[2] : NULL);
    jfmt_cps picture = {0};
    jfmt_cps_from_utf8(&picture, json_string_value(args[1]), json_string_length(args[1]));

    jfmt_cps subs[2];
    size_t nsub = split_subpictures(&picture, &pr.p[P_PATTERN], subs, 2);
    jfmt_cps_free(&picture);
    size_t kept = nsub < 2 ? nsub : 2;
    json_t *result = NULL;
    if (nsub > 2) {
        jfmt_fail(err, "D3080", "%s", nf_message("D3080"));
        goto done;
    }
    nf_parts parts[2];
    for (size_t i = 0; i < kept; i++) split_parts(&pr, &subs[i], &parts[i]);
    const char *code = NULL;
    for (size_t i = 0; i < kept && !code; i++) code = validate_parts(&pr, &parts[i]);
    if (code) {
        jfmt_fail(err, code, "%s", nf_message(code));
    } else {
        nf_vars vars[2];
        for (size_t i = 0; i < kept; i++) analyse_parts(&pr, &parts[i], &vars[i]);
        if (kept == 1) {
            vars_copy(&vars[1], &vars[0]);
            cps_insert(&vars[1].prefix, 0, &pr.p[P_MINUS]);
        }
        jfmt_cps out = {0};
        format_with(&pr, value >= 0 ? &vars[0] : &vars[1], value, &out);
        char *s = jfmt_cps_utf8(&out, 0, out.n);
        result = json_string(s);
        free(s);
        jfmt_cps_free(&out);
        vars_free(&vars[0]);
        vars_free(&vars[1]);
    }
    for (size_t i = 0; i < kept; i++) parts_free(&parts[i]);
done:
    for (size_t i = 0; i < kept; i++) jfmt_cps_free(&subs[i]);
    props_free(&pr);
    return result;
}

/* $formatBase ------------------------------------------------------------------- */

/* Number.prototype.toString(radix) of an integer-valued double */
static char *js_int_to_radix(double v, int radix)
{
    char nb[40];
    if (!isfinite(v) || radix == 10) return strdup(crm_fmt_number(v, nb));
    strbuf sb = SB_INIT;
    bool neg = v < 0;
    double x = fabs(v);
    char rev[1100];
    size_t n = 0;
    /* V8 writes zeros for the digits a double cannot hold (>= 2^53) */
    while (x / radix >= 9007199254740992.0 && n < sizeof rev - 100) {
        x /= radix;
        rev[n++] = '0';
    }
    do {
        double d = fmod(x, radix);
        rev[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[(int)d];
        x = (x - d) / radix;
    } while (x >= 1 && n < sizeof rev);
    if (neg) sb_putc(&sb, '-');
    while (n) sb_putc(&sb, rev[--n]);
    return sb_take(&sb);
}

json_t *jsonata_fn_formatBase(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    if (nargs < 1 || !args[0]) return NULL;
    if (!json_is_number(args[0])) return jfmt_fail(err, "T0410", "Argument 1 of function \"formatBase\" does not match function signature");
    double value = js_round(crm_num_value(args[0]), 0);
    double radix = 10;
    if (nargs > 1 && args[1]) {
        if (!json_is_number(args[1])) return jfmt_fail(err, "T0410", "Argument 2 of function \"formatBase\" does not match function signature");
        radix = js_round(crm_num_value(args[1]), 0);
    }
    if (!(radix >= 2 && radix <= 36)) {
        char nb[40];
        const char *shown = isfinite(radix) ? crm_fmt_number(radix, nb) : "null"; /* JSON.stringify */
        return jfmt_fail(err, "D3100", "The radix of the formatBase function must be between 2 and 36.  It was given %s", shown);
    }
    char *s = js_int_to_radix(value, (int)radix);
    json_t *r = json_string(s);
    free(s);
    return r;
}
