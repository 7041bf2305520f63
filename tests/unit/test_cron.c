/* test_cron.c: crontab parsing and next times, expected values printed by
 * cronosjs 1.7 (Node-RED 4.1.15's inject) with CronosExpression.parse(e)
 * .nextDate(2026-01-15T10:30:15Z) under TZ=UTC. A step beyond any range
 * ("*\/4294967296") overflowed an int in the parser (UBSan, issue 22 D10):
 * cronosjs takes it as the range's first value. */
#include <stdlib.h>
#include <time.h>

#include "cron.h"
#include "unit.h"

static const time_t FROM = 1768473015; /* 2026-01-15T10:30:15Z */

/* The next time after FROM as an ISO text, or "throws" when refused. */
static const char *next(const char *expr)
{
    static char out[64];
    char *err = NULL;
    crm_cron *c = crm_cron_parse(expr, &err);
    if (!c) {
        free(err);
        return "throws";
    }
    time_t t = crm_cron_next(c, FROM);
    crm_cron_free(c);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    CHECK_STR(next("*/4294967296 * * * *"), "2026-01-15T11:00:00Z");
    CHECK_STR(next("*/99999999999999999999 * * * *"), "2026-01-15T11:00:00Z");
    CHECK_STR(next("1-5/2147483648 * * * *"), "2026-01-15T11:01:00Z");
    CHECK_STR(next("*/2147483647 */4294967297 * * *"), "2026-01-16T00:00:00Z");
    CHECK_STR(next("0 0 */4294967296 * *"), "2026-02-01T00:00:00Z");
    CHECK_STR(next("30/4294967295 * * * * *"), "2026-01-15T10:30:30Z");
    CHECK_STR(next("99999999999 * * * *"), "throws");
    CHECK_STR(next("1-99999999999 * * * *"), "throws");
    CHECK_STR(next("*/0 * * * *"), "throws");
    CHECK_STR(next("60 * * * *"), "throws");
    CHECK_STR(next("*/5 * * * *"), "2026-01-15T10:35:00Z");
    CHECK_STR(next("5/3 * * * *"), "2026-01-15T10:32:00Z");
    UNIT_DONE();
}
