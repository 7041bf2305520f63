/* cron.c: crontab parsing and next-fire computation (see cron.h). Each field
 * is a bit set; the search skips whole days, hours and minutes that cannot
 * match, so finding the next time is cheap even for yearly schedules. */
#include "cron.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct crm_cron {
    uint64_t sec, min, hour, dom, mon, dow;
    bool dom_any, dow_any;
};

static const char *months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

#define VALUE_CAP 1000000

static int value_of(const char **p, const char **names, int nnames, int base)
{
    if (isdigit((unsigned char)**p)) {
        /* saturated past any field's range, without overflowing an int: a
         * step that big gives the range's first value only (cronosjs reads a
         * minute step of 4294967296 so), a value that big is refused below */
        int v = 0;
        while (isdigit((unsigned char)**p)) {
            int d = *(*p)++ - '0';
            v = v > (VALUE_CAP - d) / 10 ? VALUE_CAP : v * 10 + d;
        }
        return v;
    }
    for (int i = 0; names && i < nnames; i++) {
        if (!strncasecmp(*p, names[i], 3)) {
            *p += 3;
            return i + base;
        }
    }
    return -1;
}

static bool parse_field(const char *f, int lo, int hi, const char **names, int nnames, int base, uint64_t *out)
{
    *out = 0;
    const char *p = f;
    while (*p) {
        int a, b, step = 1;
        if (*p == '*' || *p == '?') {
            a = lo;
            b = hi;
            p++;
        } else {
            a = value_of(&p, names, nnames, base);
            if (a < 0) return false;
            b = a;
            if (*p == '-') {
                p++;
                b = value_of(&p, names, nnames, base);
                if (b < 0) return false;
            }
        }
        if (*p == '/') {
            p++;
            step = value_of(&p, NULL, 0, 0);
            if (step <= 0) return false;
            if (a == b && f[0] != '*') b = hi;
        }
        if (a < lo || b > hi || a > b) return false;
        for (int v = a; v <= b; v += step) *out |= 1ULL << v;
        if (*p == ',') p++;
        else if (*p) return false;
    }
    return *out != 0;
}

crm_cron *crm_cron_parse(const char *expr, char **err)
{
    char *fields[7];
    int n = 0;
    char *copy = strdup(expr), *save = NULL;
    for (char *t = strtok_r(copy, " \t", &save); t && n < 7; t = strtok_r(NULL, " \t", &save)) fields[n++] = t;
    crm_cron *c = calloc(1, sizeof *c);
    bool ok = n == 5 || n == 6;
    int i = 0;
    if (ok && n == 6) ok = parse_field(fields[i++], 0, 59, NULL, 0, 0, &c->sec);
    else c->sec = 1;
    ok = ok && parse_field(fields[i], 0, 59, NULL, 0, 0, &c->min);
    ok = ok && parse_field(fields[i + 1], 0, 23, NULL, 0, 0, &c->hour);
    ok = ok && parse_field(fields[i + 2], 1, 31, NULL, 0, 0, &c->dom);
    ok = ok && parse_field(fields[i + 3], 1, 12, months, 12, 1, &c->mon);
    ok = ok && parse_field(fields[i + 4], 0, 7, days, 7, 0, &c->dow);
    if (ok) {
        c->dom_any = fields[i + 2][0] == '*' || fields[i + 2][0] == '?';
        c->dow_any = fields[i + 4][0] == '*' || fields[i + 4][0] == '?';
        if (c->dow & (1ULL << 7)) c->dow |= 1; /* 7 is Sunday too */
    }
    free(copy);
    if (!ok) {
        free(c);
        if (err && asprintf(err, "Invalid cron expression '%s'", expr) < 0) *err = NULL;
        return NULL;
    }
    return c;
}

static bool day_matches(const crm_cron *c, const struct tm *tm)
{
    bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
    if (c->dom_any || c->dow_any) return dom && dow;
    return dom || dow; /* both restricted: either one */
}

time_t crm_cron_next(const crm_cron *c, time_t after)
{
    time_t t = after + 1, limit = after + 5 * 366 * 86400;
    struct tm tm;
    while (t < limit) {
        localtime_r(&t, &tm);
        if (!(c->mon >> (tm.tm_mon + 1) & 1) || !day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!(c->hour >> tm.tm_hour & 1)) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
        } else if (!(c->min >> tm.tm_min & 1)) {
            tm.tm_min++;
            tm.tm_sec = 0;
        } else if (!(c->sec >> tm.tm_sec & 1)) {
            tm.tm_sec++;
        } else {
            return t;
        }
        tm.tm_isdst = -1;
        time_t nt = mktime(&tm);
        t = nt > t ? nt : t + 1;
    }
    return 0;
}

void crm_cron_free(crm_cron *c) { free(c); }
