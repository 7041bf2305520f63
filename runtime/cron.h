/* cron.h: crontab expressions as Node-RED's inject node reads them
 * (cronosjs): 5 fields (minute hour day-of-month month day-of-week) or 6 with
 * a leading seconds field; lists, ranges, steps, names; local time. */
#ifndef CRM_CRON_H
#define CRM_CRON_H
#include <time.h>

typedef struct crm_cron crm_cron;
/* NULL and *err (malloc'd) on a bad expression. */
crm_cron *crm_cron_parse(const char *expr, char **err);
/* The first matching second strictly after `after`, or 0 if none within 5 years. */
time_t crm_cron_next(const crm_cron *c, time_t after);
void crm_cron_free(crm_cron *c);
#endif
