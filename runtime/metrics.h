/* metrics.h: GET /metrics (docs/metrics.md), the Prometheus text exposition
 * format 0.0.4, and the input-queue limit (nodeInputQueueMaxLength). The
 * counters live beside what they count (crm_node_stats and the loops'
 * in engine.h, the HTTP routes' in httpd.c, the context stores'); this
 * file gathers them into one text. Internal to the runtime. */
#ifndef CRM_METRICS_H
#define CRM_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

struct crm_runtime;
struct crm_httpd;

/* settings.metrics: true, or an object with "enabled": true. */
bool crm_metrics_enabled_in(const json_t *settings);
bool crm_metrics_enabled(const struct crm_runtime *rt);
/* The whole text of GET /metrics, malloc'd (its length in *len). Any
 * thread: counters are read racily, one word each. */
char *crm_metrics_render(struct crm_runtime *rt, size_t *len);
/* settings.nodeInputQueueMaxLength: a positive integer, else 0 (no limit). */
size_t crm_queue_max_setting(const json_t *settings);
/* The id of the tab a node runs in (a subflow instance's node: its
 * parent tab's). */
struct crm_node;
const char *crm_node_tab(const struct crm_node *n);
/* A label value, quoted and escaped (\\, \", \n) as the format asks. */
void crm_prom_label(strbuf *sb, const char *name, const char *value, bool first);
/* "# HELP" and "# TYPE" lines of a family. */
void crm_prom_family(strbuf *sb, const char *name, const char *type, const char *help);
/* The HTTP routes' families (requests by route and status, the latency
 * histogram, the flows' pending requests and 503s). httpd.c. */
void crm_httpd_metrics(struct crm_httpd *h, strbuf *sb);
/* The context stores' operations (context.c). */
void crm_context_metrics(struct crm_runtime *rt, strbuf *sb);

#endif
