/* yaml_types.c: the implicit types of js-yaml's default schema: what a
 * plain scalar resolves to, in js-yaml's order (null, bool, int, float,
 * timestamp, merge). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "value.h"
#include "yaml/yaml_types.h"

json_t *crm_yaml_null(const char *s)
{
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) return json_null();
    return NULL;
}

json_t *crm_yaml_bool(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return json_false();
    return NULL;
}

static int digit_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 99;
}

json_t *crm_yaml_int(const char *s)
{
    const char *p = s;
    double sign = 1;
    if (!*p) return NULL;
    if (*p == '-' || *p == '+') {
        if (*p == '-') sign = -1;
        p++;
    }
    int base = 10;
    if (p[0] == '0' && p[1] == 0) return crm_num(0); /* parseYamlInteger: "-0" is 0 */
    if (p[0] == '0' && (p[1] == 'b' || p[1] == 'x' || p[1] == 'o')) {
        base = p[1] == 'b' ? 2 : p[1] == 'x' ? 16 : 8;
        p += 2;
    }
    if (!*p) return NULL;
    double v = 0;
    for (const char *q = p; *q; q++) {
        int d = digit_val(*q);
        if (d >= base) return NULL;
        v = v * base + d;
    }
    if (!isfinite(v)) return NULL;
    if (base == 10) v = strtod(p, NULL); /* parseInt(value, 10): correctly rounded */
    return crm_num(sign * v);
}

/* ^(?:[-+]?(?:[0-9]+)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$ */
json_t *crm_yaml_float(const char *s)
{
    const char *p = s;
    double sign = 1;
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) return crm_num(NAN);
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (*p != '.' && !(*p >= '0' && *p <= '9')) return NULL;
    }
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) return crm_num(sign * INFINITY);
    const char *q = p;
    if (*q >= '0' && *q <= '9') {
        while (*q >= '0' && *q <= '9') q++;
        if (*q == '.') {
            q++;
            while (*q >= '0' && *q <= '9') q++;
        }
    } else if (*q == '.' && p == s) {
        q++;
        const char *d = q;
        while (*q >= '0' && *q <= '9') q++;
        if (q == d) return NULL;
    } else {
        return NULL;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '-' || *q == '+') q++;
        const char *d = q;
        while (*q >= '0' && *q <= '9') q++;
        if (q == d) return NULL;
    }
    if (*q) return NULL;
    double v = strtod(p, NULL);
    if (!isfinite(v)) return NULL;
    return crm_num(sign * v);
}

static int num2(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + p[i] - '0';
    }
    return v;
}

static int digits(const char **p, int min, int max)
{
    int v = 0, n = 0;
    while (n < max && **p >= '0' && **p <= '9') {
        v = v * 10 + **p - '0';
        (*p)++;
        n++;
    }
    return n < min ? -1 : v;
}

/* Days from 1970-01-01 (proleptic Gregorian), as Date.UTC does. */
static double days_from_civil(double y, double m /* 0-based, may overflow */, double d)
{
    y += floor(m / 12);
    m = fmod(m, 12);
    if (m < 0) m += 12;
    int mm = (int)m + 1;
    double yy = y - (mm <= 2);
    double era = floor(yy / 400);
    double yoe = yy - era * 400;
    double doy = floor((153 * (mm + (mm > 2 ? -3 : 9)) + 2) / 5) + d - 1;
    double doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy;
    return era * 146097 + doe - 719468;
}

json_t *crm_yaml_timestamp(const char *s)
{
    const char *p = s;
    int year = digits(&p, 4, 4);
    if (year < 0 || *p++ != '-') return NULL;
    int month, day, hour = -1, min = 0, sec = 0, frac = 0, tzh = 0, tzm = 0, tzsign = 0;
    /* date only: exactly two-digit month and day */
    if (strlen(p) == 5 && p[2] == '-' && (month = num2(p, 2)) >= 0 && (day = num2(p + 3, 2)) >= 0) {
        p += 5;
    } else {
        if ((month = digits(&p, 1, 2)) < 0 || *p++ != '-') return NULL;
        if ((day = digits(&p, 1, 2)) < 0) return NULL;
        if (*p == 'T' || *p == 't') p++;
        else if (*p == ' ' || *p == '\t') while (*p == ' ' || *p == '\t') p++;
        else return NULL;
        if ((hour = digits(&p, 1, 2)) < 0 || *p++ != ':') return NULL;
        if ((min = digits(&p, 2, 2)) < 0 || *p++ != ':') return NULL;
        if ((sec = digits(&p, 2, 2)) < 0) return NULL;
        if (*p == '.') {
            p++;
            int n = 0;
            char f[4] = "000";
            while (*p >= '0' && *p <= '9') {
                if (n < 3) f[n] = *p;
                n++;
                p++;
            }
            frac = atoi(f);
        }
        while (*p == ' ' || *p == '\t') p++;
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            tzsign = *p == '-' ? -1 : 1;
            p++;
            if ((tzh = digits(&p, 1, 2)) < 0) return NULL;
            if (*p == ':') {
                p++;
                if ((tzm = digits(&p, 2, 2)) < 0) return NULL;
            }
        }
        if (*p) return NULL;
    }
    if (*p) return NULL;
    double ms = days_from_civil(year, month - 1, day) * 86400000.0;
    if (hour >= 0) ms += ((hour * 60.0 + min) * 60 + sec) * 1000 + frac;
    if (tzsign) ms -= tzsign * (tzh * 60.0 + tzm) * 60000;
    /* Date.prototype.toJSON: the ISO string */
    time_t t = (time_t)floor(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    int msr = (int)(ms - floor(ms / 1000) * 1000);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, msr);
    return json_string(buf);
}

json_t *crm_yaml_implicit(const char *s, bool *merge)
{
    json_t *v;
    if (merge) *merge = false;
    if ((v = crm_yaml_null(s)) || (v = crm_yaml_bool(s)) || (v = crm_yaml_int(s)) || (v = crm_yaml_float(s)) ||
        (v = crm_yaml_timestamp(s)))
        return v;
    if (!strcmp(s, "<<") && merge) *merge = true;
    return NULL;
}

bool crm_yaml_resolves(const char *s)
{
    if (!strcmp(s, "<<")) return true;
    json_t *v = crm_yaml_implicit(s, NULL);
    json_decref(v);
    return v != NULL;
}
