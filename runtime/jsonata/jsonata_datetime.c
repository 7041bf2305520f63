/* jsonata_datetime.c: $formatInteger, $parseInteger, $fromMillis and
 * $toMillis: XPath F&O format-integer / format-dateTime picture strings
 * (words, ordinals, roman numerals, letters, month and day names, timezone
 * offsets) and parsing timestamps back with a picture, as jsonata-js does.
 *
 * Date arithmetic reproduces JavaScript's Date (proleptic Gregorian UTC,
 * Date.UTC's normalisation of out-of-range fields, TimeClip) so that results
 * match Node-RED to the millisecond. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "jsonata_fmt.h"

#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "strbuf.h"
#include "value.h"

#define MS_PER_DAY 86400000.0

/* Messages --------------------------------------------------------------------- */

/* JSON.stringify of a string, for the {{value}} of error messages (malloc'd) */
static char *json_quote(const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return q ? q : strdup("\"\"");
}

static void fail_value(jsonata_error *err, const char *code, const char *fmt, const char *value)
{
    char *q = json_quote(value);
    jfmt_fail(err, code, fmt, q);
    free(q);
}

static void fail_sequence(jsonata_error *err, const char *token)
{
    fail_value(err, "D3130", "Formatting or parsing an integer as a sequence starting with %s is not supported by this implementation", token);
}

static void fail_d3131(jsonata_error *err)
{
    jfmt_fail(err, "D3131", "In a decimal digit pattern, all digits must be from the same decimal group");
}

static void fail_d3136(jsonata_error *err)
{
    jfmt_fail(err, "D3136", "The date/time picture string is missing specifiers required to parse the timestamp");
}

/* Integer pictures (F&O 4.6) ---------------------------------------------------- */

enum { F_DECIMAL, F_LETTERS, F_ROMAN, F_WORDS, F_SEQUENCE };
enum { C_LOWER, C_UPPER, C_TITLE };

typedef struct {
    long pos;
    unsigned ch;
} isep;

typedef struct {
    int primary;
    int tcase;
    bool ordinal;
    unsigned zero;          /* zero of the decimal digit family */
    long mandatory, optional;
    bool regular;
    long reg_pos;
    unsigned reg_char;
    isep *seps;             /* irregular separators, as met right to left */
    size_t nseps;
    char *token;            /* the unsupported numbering sequence */
    long parse_width;       /* digits to read when parsing (0 = any) */
} ifmt;

static void ifmt_free(ifmt *f)
{
    free(f->seps);
    free(f->token);
    memset(f, 0, sizeof *f);
}

static const unsigned decimal_groups[] = {
    0x30, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66,
    0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946,
    0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0,
    0xA9F0, 0xAA50, 0xABF0, 0xFF10
};

static unsigned digit_group(unsigned c)
{
    for (size_t i = 0; i < sizeof decimal_groups / sizeof *decimal_groups; i++)
        if (c >= decimal_groups[i] && c <= decimal_groups[i] + 9) return decimal_groups[i];
    return 0;
}

static long gcd_l(long a, long b) { return b == 0 ? a : gcd_l(b, a % b); }

/* Same character at the same interval all along: then the grouping repeats. */
static long regular_repeat(const isep *seps, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 1; i < n; i++)
        if (seps[i].ch != seps[0].ch) return 0;
    long factor = seps[0].pos;
    for (size_t i = 1; i < n; i++) factor = gcd_l(factor, seps[i].pos);
    for (size_t k = 1; k <= n; k++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            if (seps[i].pos == (long)k * factor) found = true;
        if (!found) return 0;
    }
    return factor;
}

/* the decimal-digit-pattern, read right to left for separator positions */
static int analyse_decimal(ifmt *f, const char *primary, jsonata_error *err)
{
    jfmt_cps cp = {0};
    jfmt_cps_from_utf8(&cp, primary, strlen(primary));
    long pos = 0;
    for (size_t k = cp.n; k > 0; k--) {
        unsigned c = cp.c[k - 1];
        unsigned g = digit_group(c);
        if (g) {
            f->mandatory++;
            pos++;
            if (!f->zero) {
                f->zero = g;
            } else if (g != f->zero) {
                jfmt_cps_free(&cp);
                fail_d3131(err);
                return -1;
            }
        } else if (c == '#') {
            pos++;
            f->optional++;
        } else {
            isep *ns = realloc(f->seps, (f->nseps + 1) * sizeof *ns);
            if (!ns) abort();
            f->seps = ns;
            f->seps[f->nseps].pos = pos;
            f->seps[f->nseps].ch = c;
            f->nseps++;
        }
    }
    jfmt_cps_free(&cp);
    if (f->mandatory > 0) {
        f->primary = F_DECIMAL;
        long reg = regular_repeat(f->seps, f->nseps);
        if (reg > 0) {
            f->regular = true;
            f->reg_pos = reg;
            f->reg_char = f->seps[0].ch;
        }
    } else {
        f->primary = F_SEQUENCE;
        f->token = strdup(primary);
    }
    return 0;
}

static int analyse_integer_picture(const char *picture, ifmt *f, jsonata_error *err)
{
    memset(f, 0, sizeof *f);
    f->primary = F_DECIMAL;
    f->tcase = C_LOWER;
    f->zero = 0x30;
    const char *semi = strrchr(picture, ';');
    size_t plen = semi ? (size_t)(semi - picture) : strlen(picture);
    char *primary = strndup(picture, plen);
    if (!primary) abort();
    if (semi && semi[1] == 'o') f->ordinal = true;
    int rc = 0;
    if (!strcmp(primary, "A") || !strcmp(primary, "a")) {
        f->primary = F_LETTERS;
        f->tcase = primary[0] == 'A' ? C_UPPER : C_LOWER;
    } else if (!strcmp(primary, "I") || !strcmp(primary, "i")) {
        f->primary = F_ROMAN;
        f->tcase = primary[0] == 'I' ? C_UPPER : C_LOWER;
    } else if (!strcmp(primary, "W")) {
        f->primary = F_WORDS;
        f->tcase = C_UPPER;
    } else if (!strcmp(primary, "Ww")) {
        f->primary = F_WORDS;
        f->tcase = C_TITLE;
    } else if (!strcmp(primary, "w")) {
        f->primary = F_WORDS;
    } else {
        f->zero = 0;
        rc = analyse_decimal(f, primary, err);
        if (!f->zero) f->zero = 0x30;
    }
    free(primary);
    return rc;
}

/* Integer formatting ------------------------------------------------------------------ */

static const char *const few[] = {
    "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
    "Eleven", "Twelve", "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen"
};
static const char *const ordinals[] = {
    "Zeroth", "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth",
    "Eleventh", "Twelfth", "Thirteenth", "Fourteenth", "Fifteenth", "Sixteenth", "Seventeenth", "Eighteenth", "Nineteenth"
};
static const char *const decades[] = {
    "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety", "Hundred"
};
static const char *const magnitudes[] = {"Thousand", "Million", "Billion", "Trillion"};

static int small_index(double num, int max)
{
    int i = (int)num;
    return i < 0 ? 0 : i > max ? max : i;
}

static void words_lookup(strbuf *sb, double num, bool prev, bool ord)
{
    if (num <= 19) {
        if (prev) sb_puts(sb, " and ");
        sb_puts(sb, ord ? ordinals[small_index(num, 19)] : few[small_index(num, 19)]);
    } else if (num < 100) {
        int tens = (int)floor(num / 10);
        double rem = fmod(num, 10);
        if (prev) sb_puts(sb, " and ");
        const char *dec = decades[small_index(tens - 2, 8)];
        if (rem > 0) {
            sb_puts(sb, dec);
            sb_putc(sb, '-');
            words_lookup(sb, rem, false, ord);
        } else if (ord) {
            sb_putn(sb, dec, strlen(dec) - 1);
            sb_puts(sb, "ieth");
        } else {
            sb_puts(sb, dec);
        }
    } else if (num < 1000) {
        int hundreds = (int)floor(num / 100);
        double rem = fmod(num, 100);
        if (prev) sb_puts(sb, ", ");
        sb_puts(sb, few[small_index(hundreds, 19)]);
        sb_puts(sb, " Hundred");
        if (rem > 0) words_lookup(sb, rem, true, ord);
        else if (ord) sb_puts(sb, "th");
    } else {
        int mag = (int)floor(log10(num) / 3);
        if (mag > 4) mag = 4;
        double factor = pow(10, mag * 3);
        double mant = floor(num / factor);
        double rem = num - mant * factor;
        if (prev) sb_puts(sb, ", ");
        words_lookup(sb, mant, false, false);
        sb_putc(sb, ' ');
        sb_puts(sb, magnitudes[mag - 1]);
        if (rem > 0) words_lookup(sb, rem, true, ord);
        else if (ord) sb_puts(sb, "th");
    }
}

static void put_case(strbuf *sb, const char *s, int tcase)
{
    for (; *s; s++) {
        char c = *s;
        if (tcase == C_UPPER) c = (char)toupper((unsigned char)c);
        else if (tcase == C_LOWER) c = (char)tolower((unsigned char)c);
        sb_putc(sb, c);
    }
}

static const struct { int value; const char *numeral; } roman_numerals[] = {
    {1000, "m"}, {900, "cm"}, {500, "d"}, {400, "cd"}, {100, "c"}, {90, "xc"}, {50, "l"},
    {40, "xl"}, {10, "x"}, {9, "ix"}, {5, "v"}, {4, "iv"}, {1, "i"}
};

/* decimal digits, padded, regrouped and in the picture's digit family */
static void format_decimal(strbuf *out, double value, const ifmt *f)
{
    char nb[40];
    crm_fmt_number(value, nb);
    jfmt_cps s = {0};
    for (long i = (long)strlen(nb); i < f->mandatory; i++) jfmt_cps_push(&s, '0');
    for (const char *p = nb; *p; p++) jfmt_cps_push(&s, (unsigned char)*p);
    if (f->zero != 0x30) {
        for (size_t i = 0; i < s.n; i++)
            s.c[i] = s.c[i] + f->zero - 0x30;
    }
    if (f->regular) {
        long n = ((long)s.n - 1) / f->reg_pos;
        for (long ii = n; ii > 0; ii--) {
            long pos = (long)s.n - ii * f->reg_pos;
            jfmt_cps_push(&s, 0);
            memmove(s.c + pos + 1, s.c + pos, (s.n - 1 - (size_t)pos) * sizeof *s.c);
            s.c[pos] = f->reg_char;
        }
    } else {
        for (size_t k = f->nseps; k > 0; k--) {
            long pos = (long)s.n - f->seps[k - 1].pos;
            if (pos < 0) {
                /* substr(0, pos) is empty and substr(pos) counts from the end */
                long keep = (long)s.n + pos < 0 ? 0 : (long)s.n + pos;
                memmove(s.c, s.c + keep, (s.n - (size_t)keep) * sizeof *s.c);
                s.n -= (size_t)keep;
                pos = 0;
            }
            jfmt_cps_push(&s, 0);
            memmove(s.c + pos + 1, s.c + pos, (s.n - 1 - (size_t)pos) * sizeof *s.c);
            s.c[pos] = f->seps[k - 1].ch;
        }
    }
    char *text = jfmt_cps_utf8(&s, 0, s.n);
    sb_puts(out, text);
    free(text);
    if (f->ordinal) {
        unsigned last = s.n ? s.c[s.n - 1] : 0;
        const char *suffix = last == '1' ? "st" : last == '2' ? "nd" : last == '3' ? "rd" : "th";
        if (s.n > 1 && s.c[s.n - 2] == '1') suffix = "th";
        sb_puts(out, suffix);
    }
    jfmt_cps_free(&s);
}

/* _formatInteger of jsonata-js; returns -1 with err set */
static int format_integer(strbuf *out, double value, const ifmt *f, jsonata_error *err)
{
    if (f->primary == F_SEQUENCE) {
        fail_sequence(err, f->token);
        return -1;
    }
    bool negative = value < 0;
    value = fabs(value);
    if (negative) sb_putc(out, '-');
    if (!isfinite(value) && f->primary != F_DECIMAL) {
        if (isnan(value) && f->primary != F_WORDS) return 0; /* no letters, no numerals */
        jfmt_fail(err, "D1001", "Number out of range"); /* JS recurses without end */
        return -1;
    }
    switch (f->primary) {
    case F_LETTERS: {
        char rev[300];
        size_t n = 0;
        while (value > 0 && n < sizeof rev) {
            rev[n++] = (char)((f->tcase == C_UPPER ? 'A' : 'a') + (int)fmod(value - 1, 26));
            value = floor((value - 1) / 26);
        }
        while (n) sb_putc(out, rev[--n]);
        break;
    }
    case F_ROMAN:
        if (value >= 1e7) { /* jsonata-js (node) runs out of stack about here */
            jfmt_fail(err, "D1001", "Number out of range");
            return -1;
        }
        for (size_t i = 0; i < sizeof roman_numerals / sizeof *roman_numerals; i++) {
            while (value >= roman_numerals[i].value) {
                put_case(out, roman_numerals[i].numeral, f->tcase == C_UPPER ? C_UPPER : C_LOWER);
                value -= roman_numerals[i].value;
            }
        }
        break;
    case F_WORDS: {
        strbuf w = SB_INIT;
        words_lookup(&w, value, false, f->ordinal);
        put_case(out, w.data ? w.data : "", f->tcase);
        sb_free(&w);
        break;
    }
    default:
        format_decimal(out, value, f);
        break;
    }
    return 0;
}

/* Integer parsing ------------------------------------------------------------------------ */

typedef struct {
    const char *word;
    double value;
} word_value;

/* jsonata-js's wordValues, in its insertion order (also the regex order) */
static word_value g_words[80];
static size_t g_nwords;
static char g_lower[80][24];
static pthread_once_t g_words_once = PTHREAD_ONCE_INIT;

static void add_word(const char *w, double v)
{
    size_t i = g_nwords++;
    size_t k = 0;
    for (; w[k] && k < sizeof g_lower[i] - 1; k++) g_lower[i][k] = (char)tolower((unsigned char)w[k]);
    g_lower[i][k] = 0;
    g_words[i].word = g_lower[i];
    g_words[i].value = v;
}

static void build_words(void)
{
    for (int i = 0; i < 20; i++) add_word(few[i], i);
    for (int i = 0; i < 20; i++) add_word(ordinals[i], i);
    for (int i = 0; i < 9; i++) {
        char ieth[24];
        size_t len = strlen(decades[i]);
        snprintf(ieth, sizeof ieth, "%.*sieth", (int)(len - 1), decades[i]);
        add_word(decades[i], (i + 2) * 10);
        add_word(ieth, (i + 2) * 10);
    }
    add_word("hundredth", 100);
    for (int i = 0; i < 4; i++) {
        char th[24];
        snprintf(th, sizeof th, "%sth", magnitudes[i]);
        add_word(magnitudes[i], pow(10, (i + 1) * 3));
        add_word(th, pow(10, (i + 1) * 3));
    }
}

static const word_value *words_table(size_t *n)
{
    pthread_once(&g_words_once, build_words);
    *n = g_nwords;
    return g_words;
}

/* wordValues[part], NaN when unknown (JS: undefined, which poisons the sum) */
static double word_value_of(const char *w, size_t len)
{
    size_t n;
    const word_value *t = words_table(&n);
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].word) == len && !strncmp(t[i].word, w, len)) return t[i].value;
    return NAN;
}

/* the separator of text.split(/,\s|\sand\s|[\s\\-]/) at s (its length in
 * bytes), or 0; \s is JavaScript's white space, Unicode included */
static size_t words_separator(const char *s)
{
    size_t sp;
    if (s[0] == ',' && (sp = crm_js_space_at(s + 1))) return 1 + sp;
    if ((sp = crm_js_space_at(s))) {
        size_t sp2 = !strncmp(s + sp, "and", 3) ? crm_js_space_at(s + sp + 3) : 0;
        return sp2 ? sp + 3 + sp2 : sp;
    }
    if (s[0] == '\\' || s[0] == '-') return 1;
    return 0;
}

/* wordsToNumber of jsonata-js: a stack of segments, summed */
static double words_to_number(const char *text)
{
    double segs[64];
    size_t nseg = 1;
    segs[0] = 0;
    const char *start = text, *p = text;
    for (;;) {
        size_t sep = *p ? words_separator(p) : 0;
        if (*p && !sep) { p++; continue; }
        double value = word_value_of(start, (size_t)(p - start));
        if (value < 100) {
            double top = segs[--nseg];
            if (top >= 1000) {
                segs[nseg++] = top;
                top = 0;
            }
            if (nseg < 63) segs[nseg++] = top + value;
        } else {
            double top = segs[nseg - 1];
            segs[nseg - 1] = top * value;
        }
        if (!*p) break;
        p += sep;
        start = p;
    }
    double sum = 0;
    for (size_t i = 0; i < nseg; i++) sum += segs[i];
    return sum;
}

static double roman_to_decimal(const char *roman)
{
    double decimal = 0, max = 1;
    for (size_t i = strlen(roman); i > 0; i--) {
        double v;
        switch (roman[i - 1]) {
        case 'M': v = 1000; break;
        case 'D': v = 500; break;
        case 'C': v = 100; break;
        case 'L': v = 50; break;
        case 'X': v = 10; break;
        case 'V': v = 5; break;
        case 'I': v = 1; break;
        default: return NAN;
        }
        if (v < max) decimal -= v;
        else { max = v; decimal += v; }
    }
    return decimal;
}

static double letters_to_decimal(const char *letters, char a)
{
    jfmt_cps cp = {0};
    jfmt_cps_from_utf8(&cp, letters, strlen(letters));
    double decimal = 0;
    for (size_t i = 0; i < cp.n; i++)
        decimal += ((double)cp.c[cp.n - i - 1] - a + 1) * pow(26, (double)i);
    jfmt_cps_free(&cp);
    return decimal;
}

/* the parse() of jsonata-js's integer matcher */
static double parse_integer_with(const ifmt *f, const char *value)
{
    switch (f->primary) {
    case F_LETTERS:
        return letters_to_decimal(value, f->tcase == C_UPPER ? 'A' : 'a');
    case F_ROMAN: {
        char *up = strdup(value);
        if (!up) abort();
        if (f->tcase != C_UPPER)
            for (char *p = up; *p; p++) *p = (char)toupper((unsigned char)*p);
        double r = roman_to_decimal(up);
        free(up);
        return r;
    }
    case F_WORDS: {
        char *low = strdup(value);
        if (!low) abort();
        for (char *p = low; *p; p++) *p = (char)tolower((unsigned char)*p);
        double r = words_to_number(low);
        free(low);
        return r;
    }
    default: break;
    }
    jfmt_cps d = {0};
    jfmt_cps_from_utf8(&d, value, strlen(value));
    if (f->ordinal) d.n = d.n >= 2 ? d.n - 2 : 0;
    size_t k = 0;
    for (size_t i = 0; i < d.n; i++) {
        unsigned c = d.c[i];
        /* jsonata-js strips only ',' from a regular grouping */
        if (f->regular && c == ',') continue;
        bool is_sep = false;
        for (size_t s = 0; !f->regular && s < f->nseps; s++)
            if (f->seps[s].ch == c) is_sep = true;
        if (is_sep) continue;
        if (f->zero != 0x30) c = c - f->zero + 0x30;
        d.c[k++] = c;
    }
    d.n = k;
    char *digits = jfmt_cps_utf8(&d, 0, d.n);
    jfmt_cps_free(&d);
    double r = crm_parse_int(digits, 0);
    free(digits);
    return r;
}

/* the regex that recognises an integer of this picture inside a timestamp */
static int integer_regex(strbuf *re, const ifmt *f, jsonata_error *err)
{
    bool upper = f->tcase == C_UPPER;
    switch (f->primary) {
    case F_LETTERS: sb_puts(re, upper ? "[A-Z]+" : "[a-z]+"); break;
    case F_ROMAN: sb_puts(re, upper ? "[MDCLXVI]+" : "[mdclxvi]+"); break;
    case F_WORDS: {
        size_t n;
        const word_value *t = words_table(&n);
        sb_puts(re, "(?:");
        for (size_t i = 0; i < n; i++) {
            sb_puts(re, t[i].word);
            sb_putc(re, '|');
        }
        sb_puts(re, "and|[\\-, ])+");
        break;
    }
    case F_DECIMAL:
        sb_puts(re, "[0-9]");
        if (f->parse_width > 0) sb_printf(re, "{%ld}", f->parse_width);
        else sb_putc(re, '+');
        if (f->ordinal) sb_puts(re, "(?:th|st|nd|rd)");
        break;
    default:
        fail_sequence(err, f->token);
        return -1;
    }
    return 0;
}

/* JavaScript Date arithmetic ------------------------------------------------------- */

static double days_from_civil(double y, int m, int d)
{
    y -= m <= 2;
    double era = floor(y / 400);
    double yoe = y - era * 400;
    int mp = (m + 9) % 12;
    double doy = floor((153 * mp + 2) / 5) + d - 1;
    double doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy;
    return era * 146097 + doe - 719468;
}

typedef struct {
    bool valid;
    double t;               /* ms since the epoch */
    double year;
    int month;              /* 0-11 */
    int day;                /* 1-31 */
    int wday;               /* 0 = Sunday */
    int hours, minutes, seconds, ms;
} jdate;

static double time_clip(double t)
{
    if (!isfinite(t) || fabs(t) > 8.64e15) return NAN;
    return trunc(t) + 0.0;
}

static jdate date_from_ms(double t)
{
    jdate d = {0};
    t = time_clip(t);
    d.t = t;
    if (isnan(t)) return d;
    d.valid = true;
    double days = floor(t / MS_PER_DAY);
    double msday = t - days * MS_PER_DAY;
    d.wday = (int)fmod(fmod(days + 4, 7) + 7, 7);
    double z = days + 719468;
    double era = floor(z / 146097);
    double doe = z - era * 146097;
    double yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365);
    double doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100));
    int mp = (int)floor((5 * doy + 2) / 153);
    d.day = (int)(doy - floor((153 * mp + 2) / 5) + 1);
    d.month = mp < 10 ? mp + 2 : mp - 10;
    d.year = yoe + era * 400 + (d.month <= 1);
    d.hours = (int)floor(msday / 3600000);
    d.minutes = (int)fmod(floor(msday / 60000), 60);
    d.seconds = (int)fmod(floor(msday / 1000), 60);
    d.ms = (int)fmod(msday, 1000);
    return d;
}

/* MakeDate(MakeDay(...), MakeTime(...)) with JS normalisation of every field */
static double make_date(double y, double m, double d, double h, double mi, double s, double ms)
{
    double f[7] = {y, m, d, h, mi, s, ms};
    for (int i = 0; i < 7; i++) {
        if (!isfinite(f[i])) return NAN;
        f[i] = trunc(f[i]);
    }
    double ym = f[0] + floor(f[1] / 12);
    int mn = (int)(f[1] - floor(f[1] / 12) * 12);
    if (fabs(ym) > 400000) return NAN;
    double day = days_from_civil(ym, mn + 1, 1) + f[2] - 1;
    double time = f[3] * 3600000 + f[4] * 60000 + f[5] * 1000 + f[6];
    return time_clip(day * MS_PER_DAY + time);
}

/* Date.UTC: years 0-99 mean 1900-1999 */
static double date_utc(double y, double m, double d, double h, double mi, double s, double ms)
{
    if (isfinite(y) && trunc(y) >= 0 && trunc(y) <= 99) y = 1900 + trunc(y);
    return make_date(y, m, d, h, mi, s, ms);
}

static double date_ymd(double y, double m) { return date_utc(y, m, 1, 0, 0, 0, 0); }

/* ISO 8601: week 1 is the one with the first Thursday; F&O uses the same rule
 * for the first week of a month */
static double start_of_first_week(double year, int month)
{
    double first = date_ymd(year, month);
    jdate d = date_from_ms(first);
    int dow = d.wday == 0 ? 7 : d.wday;
    return dow > 4 ? first + (8 - dow) * MS_PER_DAY : first - (dow - 1) * MS_PER_DAY;
}

static double delta_weeks(double start, double end) { return (end - start) / (MS_PER_DAY * 7) + 1; }

/* A component value: a number, or a string for P ("am"/"pm") and C/E ("ISO"). */
typedef struct {
    bool defined;
    const char *str;
    double num;
} cval;

static cval num_val(double v) { return (cval){true, NULL, v}; }

static cval fragment(const jdate *date, unsigned component)
{
    if (!date->valid && component != 'C' && component != 'E' && component != 'Z' && component != 'z')
        return component == 'P' ? (cval){true, "am", NAN} : num_val(NAN);
    switch (component) {
    case 'Y': return num_val(date->year);
    case 'M': return num_val(date->month + 1);
    case 'D': return num_val(date->day);
    case 'd': {
        double today = date_utc(date->year, date->month, date->day, 0, 0, 0, 0);
        return num_val((today - date_ymd(date->year, 0)) / MS_PER_DAY + 1);
    }
    case 'F': return num_val(date->wday == 0 ? 7 : date->wday);
    case 'W': {
        double sow = start_of_first_week(date->year, 0);
        double today = date_utc(date->year, date->month, date->day, 0, 0, 0, 0);
        double week = delta_weeks(sow, today);
        if (week > 52) {
            if (today >= start_of_first_week(date->year + 1, 0)) week = 1;
        } else if (week < 1) {
            week = delta_weeks(start_of_first_week(date->year - 1, 0), today);
        }
        return num_val(floor(week));
    }
    case 'w': {
        double sow = start_of_first_week(date->year, date->month);
        double today = date_utc(date->year, date->month, date->day, 0, 0, 0, 0);
        double week = delta_weeks(sow, today);
        double ny = date->month == 11 ? date->year + 1 : date->year;
        double py = date->month == 0 ? date->year - 1 : date->year;
        if (week > 4) {
            if (today >= start_of_first_week(ny, (date->month + 1) % 12)) week = 1;
        } else if (week < 1) {
            week = delta_weeks(start_of_first_week(py, (date->month + 11) % 12), today);
        }
        return num_val(floor(week));
    }
    case 'X': {
        if (date->t < start_of_first_week(date->year, 0)) return num_val(date->year - 1);
        if (date->t >= start_of_first_week(date->year + 1, 0)) return num_val(date->year + 1);
        return num_val(date->year);
    }
    case 'x': {
        double ny = date->month == 11 ? date->year + 1 : date->year;
        int nm = (date->month + 1) % 12;
        if (date->t < start_of_first_week(date->year, date->month)) return num_val((date->month + 11) % 12 + 1);
        if (date->t >= start_of_first_week(ny, nm)) return num_val(nm + 1);
        return num_val(date->month + 1);
    }
    case 'H': return num_val(date->hours);
    case 'h': {
        int h = date->hours % 12;
        return num_val(h == 0 ? 12 : h);
    }
    case 'P': return (cval){true, date->hours >= 12 ? "pm" : "am", 0};
    case 'm': return num_val(date->minutes);
    case 's': return num_val(date->seconds);
    case 'f': return num_val(date->ms);
    case 'C':
    case 'E': return (cval){true, "ISO", 0};
    default: return (cval){false, NULL, 0};
    }
}

/* Date/time pictures (F&O 9.8.4) ---------------------------------------------------- */

typedef struct {
    bool literal;
    char *text;             /* literal text */
    unsigned component;     /* 0 for an empty marker */
    char *pres1;
    char pres2;
    int names;              /* 0 = none, else 1 + C_LOWER/C_UPPER/C_TITLE */
    bool has_width;
    long wmin, wmax;        /* -1 = not given */
    bool has_ifmt;
    ifmt ifmt;
    long n;                 /* year digits kept, -1 = all */
} dpart;

typedef struct {
    dpart *p;
    size_t n;
} dpicture;

static void dpicture_free(dpicture *pic)
{
    for (size_t i = 0; i < pic->n; i++) {
        free(pic->p[i].text);
        free(pic->p[i].pres1);
        if (pic->p[i].has_ifmt) ifmt_free(&pic->p[i].ifmt);
    }
    free(pic->p);
    pic->p = NULL;
    pic->n = 0;
}

static dpart *dpicture_add(dpicture *pic)
{
    dpart *np = realloc(pic->p, (pic->n + 1) * sizeof *np);
    if (!np) abort();
    pic->p = np;
    dpart *d = &pic->p[pic->n++];
    memset(d, 0, sizeof *d);
    d->wmin = d->wmax = -1;
    d->n = -1;
    return d;
}

static void add_literal(dpicture *pic, const char *s, size_t len)
{
    if (!len) return;
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    for (size_t i = 0; i < len; i++) {
        sb_putc(&sb, s[i]);
        if (s[i] == ']' && i + 1 < len && s[i + 1] == ']') i++; /* ]] is ] */
    }
    dpart *d = dpicture_add(pic);
    d->literal = true;
    d->text = sb_take(&sb);
}

static long parse_width(const char *wm, size_t len)
{
    if (len == 1 && wm[0] == '*') return -1;
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < 31 ? len : 31), wm);
    double v = crm_parse_int(buf, 0);
    return isnan(v) || v < 0 || v > 1000 ? -1 : (long)v;
}

static size_t utf8_len_at(const char *s)
{
    unsigned char c = (unsigned char)*s;
    if (!c) return 0;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    for (size_t i = 1; i < n; i++)
        if (!s[i]) return i;
    return n;
}

static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i += utf8_len_at(s + i) ? utf8_len_at(s + i) : 1) n++;
    return n;
}

static const char *default_presentation(unsigned c)
{
    switch (c) {
    case 'Y': case 'M': case 'D': case 'd': case 'W': case 'w': case 'X': case 'x':
    case 'H': case 'h': case 'f': return "1";
    case 'F': case 'P': case 'C': case 'E': return "n";
    case 'm': case 's': return "01";
    case 'Z': case 'z': return "01:01";
    default: return NULL;
    }
}

static bool is_integer_component(unsigned c)
{
    return c && c < 128 && strchr("YMDdFWwXxHhmsf", (int)c);
}

/* one [marker] (whitespace already removed); returns -1 with err set */
static int analyse_marker(dpicture *pic, const char *marker, jsonata_error *err)
{
    size_t mlen = strlen(marker);
    size_t clen = utf8_len_at(marker);
    jfmt_cps cc = {0};
    jfmt_cps_from_utf8(&cc, marker, clen);
    unsigned comp = cc.n ? cc.c[0] : 0;
    jfmt_cps_free(&cc);
    const char *comma = strrchr(marker, ',');
    bool has_width = comma != NULL;
    long wmin = -1, wmax = -1;
    size_t pend = mlen;
    if (comma) {
        const char *wm = comma + 1;
        const char *dash = strchr(wm, '-');
        if (!dash) {
            wmin = parse_width(wm, strlen(wm));
        } else {
            wmin = parse_width(wm, (size_t)(dash - wm));
            wmax = parse_width(dash + 1, strlen(dash + 1));
        }
        pend = (size_t)(comma - marker);
    }
    /* marker.substring(1, comma): JS swaps the bounds when comma is 0 */
    size_t pstart = clen, pstop = pend;
    if (pstop < pstart) { pstart = pend; pstop = clen; }
    char *pres = strndup(marker + pstart, pstop - pstart);
    if (!pres) abort();
    size_t plen = strlen(pres);
    char pres2 = 0;
    char *pres1;
    if (utf8_count(pres, plen) > 1 && strchr("atco", pres[plen - 1])) {
        pres2 = pres[plen - 1];
        pres1 = strndup(pres, plen - 1);
        free(pres);
    } else if (plen > 0) {
        pres1 = pres;
    } else {
        free(pres);
        const char *def = default_presentation(comp);
        pres1 = def ? strdup(def) : NULL;
        if (!def) {
            char cs[8] = {0};
            memcpy(cs, marker, clen < 7 ? clen : 7);
            fail_value(err, "D3132", "Unknown component specifier %s in date/time picture string", cs);
            return -1;
        }
    }
    if (!pres1) abort();
    dpart *d = dpicture_add(pic);
    d->component = comp;
    d->pres1 = pres1;
    d->pres2 = pres2;
    d->has_width = has_width;
    d->wmin = wmin;
    d->wmax = wmax;
    if (pres1[0] == 'n') {
        d->names = 1 + C_LOWER;
    } else if (pres1[0] == 'N') {
        d->names = 1 + (pres1[1] == 'n' ? C_TITLE : C_UPPER);
    } else if (is_integer_component(comp)) {
        char pattern[256];
        snprintf(pattern, sizeof pattern, pres2 ? "%s;%c" : "%s", pres1, pres2);
        d->has_ifmt = true;
        if (analyse_integer_picture(pattern, &d->ifmt, err) < 0) return -1;
        if (wmin >= 0 && d->ifmt.mandatory < wmin) d->ifmt.mandatory = wmin;
        if (comp == 'Y') {
            d->n = -1;
            if (wmax >= 0) {
                d->n = wmax;
                d->ifmt.mandatory = wmax;
            } else {
                long w = d->ifmt.mandatory + d->ifmt.optional;
                if (w >= 2) d->n = w;
            }
        }
        /* two integers with nothing between need fixed widths to parse */
        if (pic->n >= 2) {
            dpart *prev = &pic->p[pic->n - 2];
            if (prev->has_ifmt) prev->ifmt.parse_width = prev->ifmt.mandatory;
        }
    }
    if (comp == 'Z' || comp == 'z') {
        if (d->has_ifmt) ifmt_free(&d->ifmt);
        d->has_ifmt = true;
        if (analyse_integer_picture(pres1, &d->ifmt, err) < 0) return -1;
    }
    return 0;
}

static int analyse_datetime_picture(const char *picture, dpicture *pic, jsonata_error *err)
{
    memset(pic, 0, sizeof *pic);
    size_t len = strlen(picture), start = 0, pos = 0;
    while (pos < len) {
        if (picture[pos] != '[') { pos++; continue; }
        if (picture[pos + 1] == '[') {
            add_literal(pic, picture + start, pos - start);
            add_literal(pic, "[", 1);
            pos += 2;
            start = pos;
            continue;
        }
        add_literal(pic, picture + start, pos - start);
        const char *close = strchr(picture + pos, ']');
        if (!close) {
            jfmt_fail(err, "D3135", "No matching closing bracket ']' in date/time picture string");
            return -1;
        }
        strbuf m = SB_INIT;
        sb_puts(&m, "");
        for (const char *q = picture + pos + 1; q < close;) { /* marker.replace(/\s+/g, '') */
            size_t sp = crm_js_space_at(q);
            if (sp && q + sp <= close) q += sp;
            else sb_putc(&m, *q++);
        }
        char *marker = sb_take(&m);
        int rc = analyse_marker(pic, marker, err);
        free(marker);
        if (rc < 0) return -1;
        pos = (size_t)(close - picture) + 1;
        start = pos;
    }
    add_literal(pic, picture + start, pos - start);
    return 0;
}

/* Formatting dates -------------------------------------------------------------------- */

static const char *const day_names[] = {"", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
static const char *const month_names[] = {"January", "February", "March", "April", "May", "June", "July",
                                          "August", "September", "October", "November", "December"};

static int format_timezone(strbuf *out, const dpart *mk, double oh, double om, jsonata_error *err)
{
    double offset = oh * 100 + om;
    strbuf v = SB_INIT;
    sb_puts(&v, "");
    int rc = 0;
    if (mk->ifmt.regular) {
        rc = format_integer(&v, offset, &mk->ifmt, err);
    } else {
        long digits = mk->ifmt.mandatory;
        if (digits == 1 || digits == 2) {
            rc = format_integer(&v, oh, &mk->ifmt, err);
            if (rc == 0 && om != 0) {
                ifmt two;
                analyse_integer_picture("00", &two, err);
                sb_putc(&v, ':');
                rc = format_integer(&v, floor(om), &two, err);
                ifmt_free(&two);
            }
        } else if (digits == 3 || digits == 4) {
            rc = format_integer(&v, offset, &mk->ifmt, err);
        } else {
            jfmt_fail(err, "D3134", "The timezone integer format specifier cannot have more than four digits");
            rc = -1;
        }
    }
    if (rc == 0) {
        if (offset == 0 && mk->pres2 == 't') {
            sb_putc(out, 'Z');
        } else {
            if (mk->component == 'z') sb_puts(out, "GMT");
            if (offset >= 0) sb_putc(out, '+');
            sb_puts(out, v.data);
        }
    }
    sb_free(&v);
    return rc;
}

static int format_names(strbuf *out, const dpart *mk, double value, jsonata_error *err)
{
    const char *name;
    if (mk->component == 'M' || mk->component == 'x') {
        name = value >= 1 && value <= 12 ? month_names[(int)value - 1] : "undefined";
    } else if (mk->component == 'F') {
        name = value >= 1 && value <= 7 ? day_names[(int)value] : "undefined";
    } else {
        char cs[2] = {(char)mk->component, 0};
        fail_value(err, "D3133", "The 'name' modifier can only be applied to months and days in the date/time picture string, not %s", cs);
        return -1;
    }
    size_t len = strlen(name);
    if (mk->has_width && mk->wmax >= 0 && (long)len > mk->wmax) len = (size_t)mk->wmax;
    char *cut = strndup(name, len);
    if (!cut) abort();
    put_case(out, cut, mk->names - 1);
    free(cut);
    return 0;
}

static int format_component(strbuf *out, const jdate *date, const dpart *mk, double oh, double om,
                            jsonata_error *err)
{
    cval v = fragment(date, mk->component);
    unsigned c = mk->component;
    if (c && c < 128 && strchr("YMDdFWwXxHhms", (int)c)) {
        double value = v.num;
        if (c == 'Y' && mk->n != -1) value = fmod(value, pow(10, (double)mk->n));
        if (mk->names) return format_names(out, mk, value, err);
        if (!mk->has_ifmt) { sb_puts(out, "undefined"); return 0; }
        return format_integer(out, value, &mk->ifmt, err);
    }
    if (c == 'f') return mk->has_ifmt ? format_integer(out, v.num, &mk->ifmt, err) : 0;
    if (c == 'Z' || c == 'z') return format_timezone(out, mk, oh, om, err);
    if (c == 'P') {
        put_case(out, v.str, mk->names == 1 + C_UPPER ? C_UPPER : -1);
        return 0;
    }
    sb_puts(out, v.defined && v.str ? v.str : "undefined");
    return 0;
}

static char *format_datetime(double millis, const char *picture, const char *timezone, jsonata_error *err)
{
    double oh = 0, om = 0;
    if (timezone) {
        double offset = crm_parse_int(timezone, 0);
        oh = floor(offset / 100);
        om = fmod(offset, 100);
    }
    dpicture pic;
    const char *p = picture ? picture : "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]";
    if (analyse_datetime_picture(p, &pic, err) < 0) {
        dpicture_free(&pic);
        return NULL;
    }
    jdate date = date_from_ms(millis + (60 * oh + om) * 60 * 1000);
    strbuf out = SB_INIT;
    sb_puts(&out, "");
    for (size_t i = 0; i < pic.n; i++) {
        if (pic.p[i].literal) {
            sb_puts(&out, pic.p[i].text);
        } else if (format_component(&out, &date, &pic.p[i], oh, om, err) < 0) {
            sb_free(&out);
            dpicture_free(&pic);
            return NULL;
        }
    }
    dpicture_free(&pic);
    return sb_take(&out);
}

/* Parsing dates ------------------------------------------------------------------------ */

static void regex_escape(strbuf *re, const char *s)
{
    for (; *s; s++) {
        if (strchr(".*+?^${}()|[]\\", *s)) sb_putc(re, '\\');
        sb_putc(re, *s);
    }
}

/* the timezone separator character when the offset picture has one */
static bool tz_separator(const dpart *mk, unsigned *sep)
{
    if (!mk->ifmt.regular) return false;
    *sep = mk->ifmt.reg_char;
    return true;
}

static int build_regex(const dpicture *pic, strbuf *re, jsonata_error *err)
{
    sb_putc(re, '^');
    for (size_t i = 0; i < pic->n; i++) {
        const dpart *mk = &pic->p[i];
        sb_putc(re, '(');
        if (mk->literal) {
            regex_escape(re, mk->text);
        } else if (mk->component == 'Z' || mk->component == 'z') {
            unsigned sep;
            if (mk->component == 'z') sb_puts(re, "GMT");
            sb_puts(re, "[-+][0-9]+");
            if (tz_separator(mk, &sep)) {
                if (sep < 128 && !isalnum((int)sep)) sb_putc(re, '\\');
                sb_put_utf8(re, sep);
                sb_puts(re, "[0-9]+");
            }
        } else if (mk->component == 'f') {
            sb_puts(re, "[0-9]+");
        } else if (mk->has_ifmt) {
            if (integer_regex(re, &mk->ifmt, err) < 0) return -1;
        } else if (mk->component == 'M' || mk->component == 'x' || mk->component == 'F' || mk->component == 'P') {
            sb_puts(re, "[a-zA-Z]+");
        } else {
            char cs[8] = {0};
            if (mk->component < 128) cs[0] = (char)mk->component;
            fail_value(err, "D3133", "The 'name' modifier can only be applied to months and days in the date/time picture string, not %s", cs);
            return -1;
        }
        sb_putc(re, ')');
    }
    sb_putc(re, '$');
    return 0;
}

static double parse_tz(const dpart *mk, const char *value)
{
    if (mk->component == 'z') value += strlen(value) >= 3 ? 3 : strlen(value);
    unsigned sep;
    double hours = 0, minutes = 0;
    if (tz_separator(mk, &sep)) {
        const char *s = strchr(value, (int)sep);
        if (!s) return NAN;
        char *h = strndup(value, (size_t)(s - value));
        if (!h) abort();
        hours = crm_parse_int(h, 0);
        minutes = crm_parse_int(s + 1, 0);
        free(h);
    } else if (strlen(value) - 1 <= 2) {
        hours = crm_parse_int(value, 0);
    } else {
        char h[4] = {value[0], value[1], value[2], 0};
        hours = crm_parse_int(h, 0);
        minutes = crm_parse_int(value + 3, 0);
    }
    return hours * 60 + minutes;
}

/* fractional seconds are a fraction: "5" is 500 ms, digits past ms dropped;
 * computed as jsonata-js does (parseFloat('0.' + 3 digits) * 1000, which
 * Date.UTC then truncates: ".57" gives 569) */
static double parse_fraction(const char *value)
{
    char buf[8] = "0.";
    size_t n = 0;
    while (n < 3 && isdigit((unsigned char)value[n])) {
        buf[2 + n] = value[n];
        n++;
    }
    buf[2 + n] = 0;
    return strtod(buf, NULL) * 1000;
}

static cval parse_name(const dpart *mk, const char *value)
{
    if (mk->component == 'P') {
        if (!strcmp(value, "am") || !strcmp(value, "AM")) return num_val(0);
        if (!strcmp(value, "pm") || !strcmp(value, "PM")) return num_val(1);
        return (cval){false, NULL, 0};
    }
    bool months = mk->component == 'M' || mk->component == 'x';
    int count = months ? 12 : 7;
    for (int i = 0; i < count; i++) {
        const char *name = months ? month_names[i] : day_names[i + 1];
        size_t len = strlen(name);
        if (mk->has_width && mk->wmax > 0 && (long)len > mk->wmax) len = (size_t)mk->wmax;
        if (strlen(value) == len && !strncmp(name, value, len)) return num_val(months ? i + 1 : i + 1);
    }
    return (cval){false, NULL, 0};
}

enum { K_Y, K_X, K_M, K_x, K_W, K_w, K_d, K_D, K_F, K_P, K_H, K_h, K_m, K_s, K_f, K_Z, K_z, K_COUNT };
static const char comp_keys[] = "YXMxWwdDFPHhmsfZz";

typedef struct {
    bool assigned[K_COUNT];
    cval v[K_COUNT];
} comps;

static int key_of(unsigned c)
{
    const char *k = c && c < 128 ? strchr(comp_keys, (int)c) : NULL;
    return k ? (int)(k - comp_keys) : -1;
}

static bool truthy(const comps *cs, char c)
{
    int k = key_of((unsigned char)c);
    if (k < 0 || !cs->v[k].defined) return false;
    if (cs->v[k].str) return cs->v[k].str[0] != 0;
    return cs->v[k].num != 0 && !isnan(cs->v[k].num);
}

static int mask_of(const comps *cs, const char *keys)
{
    int mask = 0;
    for (const char *p = keys; *p; p++) mask = (mask << 1) | (truthy(cs, *p) ? 1 : 0);
    return mask;
}

static bool is_type(int type, int mask) { return !(~type & mask) && (type & mask); }

static double comp_num(const comps *cs, char c)
{
    int k = key_of((unsigned char)c);
    if (k < 0 || !cs->v[k].defined || cs->v[k].str) return NAN;
    return cs->v[k].num;
}

/* F&O's rules for which components make a timestamp, with the gaps before the
 * first given one taken from now and those after it set to their minimum */
static json_t *assemble_timestamp(comps *cs, double now_ms, jsonata_error *err)
{
    int dmask = mask_of(cs, "YXMxWwdD");
    bool dateA = is_type(161, dmask);
    bool dateB = !dateA && is_type(130, dmask);
    bool dateC = is_type(84, dmask);
    bool dateD = !dateC && is_type(72, dmask);
    int tmask = mask_of(cs, "PHhmsf");
    bool timeA = is_type(23, tmask);
    bool timeB = !timeA && is_type(47, tmask);
    char order[16];
    snprintf(order, sizeof order, "%s%s", dateB ? "YD" : dateC ? "XxwF" : dateD ? "XWF" : "YMD",
             timeB ? "Phmsf" : "Hmsf");
    jdate now = date_from_ms(now_ms);
    bool started = false, ended = false;
    for (const char *p = order; *p; p++) {
        int k = key_of((unsigned char)*p);
        if (!cs->v[k].defined) {
            if (started) {
                cs->v[k] = num_val(strchr("MDd", *p) ? 1 : 0);
                ended = true;
            } else {
                cs->v[k] = fragment(&now, (unsigned char)*p);
            }
        } else {
            started = true;
            if (ended) {
                fail_d3136(err);
                return NULL;
            }
        }
    }
    double M = comp_num(cs, 'M');
    M = M > 0 ? M - 1 : 0;
    double D = comp_num(cs, 'D');
    if (dateB) {
        jdate derived = date_from_ms(date_ymd(comp_num(cs, 'Y'), 0) + (comp_num(cs, 'd') - 1) * MS_PER_DAY);
        M = derived.valid ? derived.month : NAN;
        D = derived.valid ? derived.day : NAN;
    }
    if (dateC || dateD) {
        fail_d3136(err);
        return NULL;
    }
    double H = comp_num(cs, 'H');
    if (timeB) {
        double h = comp_num(cs, 'h');
        H = h == 12 ? 0 : h;
        if (comp_num(cs, 'P') == 1) H += 12;
    }
    double millis = date_utc(comp_num(cs, 'Y'), M, D, H, comp_num(cs, 'm'), comp_num(cs, 's'), comp_num(cs, 'f'));
    if (truthy(cs, 'Z') || truthy(cs, 'z'))
        millis -= (truthy(cs, 'Z') ? comp_num(cs, 'Z') : comp_num(cs, 'z')) * 60 * 1000;
    return crm_num(millis);
}

static json_t *parse_datetime(const char *timestamp, size_t tslen, const char *picture, double now_ms,
                              jsonata_error *err)
{
    dpicture pic;
    if (analyse_datetime_picture(picture, &pic, err) < 0) {
        dpicture_free(&pic);
        return NULL;
    }
    strbuf re = SB_INIT;
    sb_puts(&re, "");
    json_t *result = NULL;
    if (build_regex(&pic, &re, err) < 0) goto out;
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re.data, PCRE2_ZERO_TERMINATED,
                                     PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff, NULL);
    if (!code) goto out; /* a picture JS could not compile either: no match */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = md ? pcre2_match(code, (PCRE2_SPTR)timestamp, tslen, 0, 0, md, NULL) : -1;
    if (rc > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        comps cs;
        memset(&cs, 0, sizeof cs);
        size_t nassigned = 0;
        for (size_t i = 0; i < pic.n && (int)(i + 1) < rc; i++) {
            const dpart *mk = &pic.p[i];
            if (mk->literal || ov[2 * (i + 1)] == PCRE2_UNSET) continue;
            char *val = strndup(timestamp + ov[2 * (i + 1)], ov[2 * (i + 1) + 1] - ov[2 * (i + 1)]);
            if (!val) abort();
            cval v;
            if (mk->component == 'Z' || mk->component == 'z') v = num_val(parse_tz(mk, val));
            else if (mk->component == 'f') v = num_val(parse_fraction(val));
            else if (mk->has_ifmt) v = num_val(parse_integer_with(&mk->ifmt, val));
            else v = parse_name(mk, val);
            free(val);
            int k = key_of(mk->component);
            if (k < 0) continue;
            if (!cs.assigned[k]) nassigned++;
            cs.assigned[k] = true;
            cs.v[k] = v;
        }
        if (nassigned > 0) result = assemble_timestamp(&cs, now_ms, err);
    }
    if (md) pcre2_match_data_free(md);
    pcre2_code_free(code);
out:
    sb_free(&re);
    dpicture_free(&pic);
    return result;
}

/* ISO 8601 without a picture: jsonata-js checks its regex, then Date.parse */
static pcre2_code *g_iso_re;
static pthread_once_t g_iso_once = PTHREAD_ONCE_INIT;

static void compile_iso(void)
{
    int ecode;
    PCRE2_SIZE eoff;
    g_iso_re = pcre2_compile((PCRE2_SPTR) "^\\d{4}(-[01]\\d)?(-[0-3]\\d)?(T[0-2]\\d:[0-5]\\d:[0-5]\\d)?(\\.\\d+)?([+-][0-2]\\d:?[0-5]\\d|Z)?$",
                             PCRE2_ZERO_TERMINATED, 0, &ecode, &eoff, NULL);
}

static bool iso_matches(const char *s, size_t len)
{
    pthread_once(&g_iso_once, compile_iso);
    if (!g_iso_re) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(g_iso_re, NULL);
    if (!md) return false;
    int rc = pcre2_match(g_iso_re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}

static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return false;
        v = v * 10 + (*p)[i] - '0';
    }
    *p += n;
    *out = v;
    return true;
}

/* Date.parse of the ISO forms: date-only is UTC, date-time without an offset
 * is local time (as in JavaScript). NaN when not understood. */
static double date_parse_iso(const char *s)
{
    int y, mo = 1, d = 1, h = 0, mi = 0, se = 0, oh = 0, om = 0;
    double ms = 0;
    bool has_time = false, has_offset = false, utc = false;
    int sign = 1;
    const char *p = s;
    if (!take_digits(&p, 4, &y)) return NAN;
    if (*p == '-') {
        p++;
        if (!take_digits(&p, 2, &mo)) return NAN;
        if (*p == '-') {
            p++;
            if (!take_digits(&p, 2, &d)) return NAN;
        }
    }
    if (*p == 'T') {
        p++;
        has_time = true;
        if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi) || *p++ != ':' ||
            !take_digits(&p, 2, &se))
            return NAN;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p)) return NAN;
            /* V8 keeps milliseconds: ".5" is 500, further digits dropped */
            for (int k = 0; k < 3; k++) {
                ms *= 10;
                if (isdigit((unsigned char)*p)) ms += *p++ - '0';
            }
            while (isdigit((unsigned char)*p)) p++;
        }
    }
    if (*p == 'Z') {
        p++;
        utc = true;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!take_digits(&p, 2, &oh)) return NAN;
        if (*p == ':') p++;
        if (!take_digits(&p, 2, &om)) return NAN;
        has_offset = true;
    }
    if (*p) return NAN;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || se > 59) return NAN;
    if (h == 24 && (mi || se || ms)) return NAN;
    double t = make_date(y, mo - 1, d, h, mi, se, ms);
    if (has_offset) return t - sign * (oh * 60 + om) * 60000.0;
    if (utc || !has_time) return t;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    tm.tm_isdst = -1;
    time_t local = mktime(&tm);
    if (local == (time_t)-1) return NAN;
    return (double)local * 1000 + ms;
}

static double clock_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000 + (double)(tv.tv_usec / 1000);
}

/* Natives ---------------------------------------------------------------------- */

static bool arg_string(json_t **args, size_t nargs, size_t i, const char **out)
{
    *out = NULL;
    if (i >= nargs || !args[i]) return true;
    if (!json_is_string(args[i])) return false;
    *out = json_string_value(args[i]);
    return true;
}

static json_t *signature_error(jsonata_error *err, int index, const char *fn)
{
    return jfmt_fail(err, "T0410", "Argument %d of function \"%s\" does not match function signature", index, fn);
}

json_t *jsonata_fn_formatInteger(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    if (nargs < 1 || !args[0]) return NULL;
    if (!json_is_number(args[0])) return signature_error(err, 1, "formatInteger");
    const char *picture;
    if (!arg_string(args, nargs, 1, &picture) || !picture) return signature_error(err, 2, "formatInteger");
    ifmt f;
    if (analyse_integer_picture(picture, &f, err) < 0) {
        ifmt_free(&f);
        return NULL;
    }
    strbuf out = SB_INIT;
    sb_puts(&out, "");
    json_t *r = NULL;
    if (format_integer(&out, floor(crm_num_value(args[0])), &f, err) == 0) r = json_string(out.data);
    sb_free(&out);
    ifmt_free(&f);
    return r;
}

json_t *jsonata_fn_parseInteger(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    if (nargs < 1 || !args[0]) return NULL;
    if (!json_is_string(args[0])) return signature_error(err, 1, "parseInteger");
    const char *picture;
    if (!arg_string(args, nargs, 1, &picture) || !picture) return signature_error(err, 2, "parseInteger");
    ifmt f;
    if (analyse_integer_picture(picture, &f, err) < 0) {
        ifmt_free(&f);
        return NULL;
    }
    json_t *r = NULL;
    if (f.primary == F_SEQUENCE) fail_sequence(err, f.token);
    else r = crm_num(parse_integer_with(&f, json_string_value(args[0])));
    ifmt_free(&f);
    return r;
}

json_t *jsonata_fn_fromMillis(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    if (nargs < 1 || !args[0]) return NULL;
    if (!json_is_number(args[0])) return signature_error(err, 1, "fromMillis");
    const char *picture, *timezone;
    if (!arg_string(args, nargs, 1, &picture)) return signature_error(err, 2, "fromMillis");
    if (!arg_string(args, nargs, 2, &timezone)) return signature_error(err, 3, "fromMillis");
    char *s = format_datetime(crm_num_value(args[0]), picture, timezone, err);
    if (!s) return NULL;
    json_t *r = json_string(s);
    free(s);
    return r;
}

json_t *jsonata_fn_toMillis(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    if (nargs < 1 || !args[0]) return NULL;
    if (!json_is_string(args[0])) return signature_error(err, 1, "toMillis");
    const char *picture;
    if (!arg_string(args, nargs, 1, &picture)) return signature_error(err, 2, "toMillis");
    const char *ts = json_string_value(args[0]);
    size_t len = json_string_length(args[0]);
    if (!picture) {
        if (!iso_matches(ts, len)) {
            fail_value(err, "D3110", "The argument of the toMillis function must be an ISO 8601 formatted timestamp. Given %s", ts);
            return NULL;
        }
        return crm_num(date_parse_iso(ts));
    }
    double now = ctx ? *(const double *)ctx : clock_ms();
    return parse_datetime(ts, len, picture, now, err);
}
