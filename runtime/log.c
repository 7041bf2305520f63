/* log.c: the runtime's log, formatted as Node-RED prints it
 * ("28 Nov 09:00:00 - [error] [change:name] text"), or handed to a hook. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comms.h"
#include "engine.h"

static const char *level_name[] = {"trace", "debug", "info", "warn", "error"};

crm_log_level crm_log_level_parse(const char *s)
{
    if (!s) return CRM_LOG_INFO;
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, level_name[i])) return (crm_log_level)i;
    if (!strcmp(s, "fatal")) return CRM_LOG_ERROR;
    return CRM_LOG_INFO;
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* err: an uncaught Error's code, stack, cause (crm_log_error_object), or NULL */
static void log_text(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *text, const json_t *err,
                     bool error_object)
{
    if (rt && rt->hook) {
        rt->hook(rt->hook_ctx, lvl, n ? n->id : NULL, n ? n->type->type : NULL, text);
    } else if (!rt || lvl >= rt->log_level) {
        char when[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        /* Node-RED's utilLog: the day of the month unpadded ("6 Dec") */
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        snprintf(when, sizeof when, "%d %s %02d:%02d:%02d", tm.tm_mday, months[tm.tm_mon % 12], tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        pthread_mutex_lock(&log_lock);
        if (n)
            fprintf(stderr, "%s - [%s] [%s:%s] %s\n", when, level_name[lvl], crm_node_type_name(n),
                    n->name && *n->name ? n->name : n->id, text);
        else
            fprintf(stderr, "%s - [%s] %s\n", when, level_name[lvl], text);
        pthread_mutex_unlock(&log_lock);
    }
    /* the editor's debug sidebar shows a node's warnings and errors */
    if (rt && n && lvl >= CRM_LOG_WARN && rt->comms) {
        if (error_object) crm_comms_log_error(n, lvl, text, err);
        else crm_comms_log(n, lvl, text);
    }
}

void crm_vlog(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) return;
    log_text(rt, lvl, n, text, NULL, false);
    free(text);
}

void crm_log_error_object(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *text,
                          const json_t *extra)
{
    log_text(rt, lvl, n, text, extra, true);
}

void crm_log(crm_runtime *rt, crm_log_level lvl, const crm_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    crm_vlog(rt, lvl, n, fmt, ap);
    va_end(ap);
}
