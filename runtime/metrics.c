/* metrics.c: GET /metrics under httpAdminRoot (settings.metrics), in the
 * Prometheus text exposition format 0.0.4 (docs/metrics.md lists every
 * family). Nothing here runs per message: the counters are written where
 * the work happens (crm_node_stats, the loops, the HTTP routes, the
 * context stores) by their owning threads, and a scrape reads them racily
 * on an HTTP server thread; each is one aligned word, so a read sees an old
 * or a new value, never a torn one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "metrics.h"

bool crm_metrics_enabled_in(const json_t *settings)
{
    const json_t *m = json_object_get(settings, "metrics");
    if (json_is_object(m)) return json_is_true(json_object_get(m, "enabled"));
    return json_is_true(m);
}

bool crm_metrics_enabled(const crm_runtime *rt) { return crm_metrics_enabled_in(rt->settings); }

size_t crm_queue_max_setting(const json_t *settings)
{
    double d = crm_to_number(json_object_get(settings, "nodeInputQueueMaxLength"));
    return d >= 1 && d < 1e15 ? (size_t)d : 0;
}

void crm_prom_label(strbuf *sb, const char *name, const char *value, bool first)
{
    if (!first) sb_putc(sb, ',');
    sb_puts(sb, name);
    sb_puts(sb, "=\"");
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\') sb_puts(sb, "\\\\");
        else if (*p == '"') sb_puts(sb, "\\\"");
        else if (*p == '\n') sb_puts(sb, "\\n");
        else sb_putc(sb, *p);
    }
    sb_putc(sb, '"');
}

void crm_prom_family(strbuf *sb, const char *name, const char *type, const char *help)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The tab a node runs in: subflow instances climb to their parent's. */
const char *crm_node_tab(const crm_node *n)
{
    const crm_flow *f = n->flow;
    while (f && f->is_subflow && f->parent) f = f->parent;
    return f && f->id ? f->id : (n->z ? n->z : "");
}

static void node_labels(strbuf *sb, const crm_node *n)
{
    sb_putc(sb, '{');
    crm_prom_label(sb, "id", n->id, true);
    crm_prom_label(sb, "type", crm_node_type_name(n), false);
    if (n->name && *n->name) crm_prom_label(sb, "name", n->name, false);
    crm_prom_label(sb, "flow", crm_node_tab(n), false);
    sb_putc(sb, '}');
}

typedef enum { N_IN, N_OUT, N_ERR, N_DROP, N_DEPTH, N_HWM } node_field;

static uint64_t node_value(crm_node *n, node_field f)
{
    crm_node_stats *s = &n->stats;
    switch (f) {
    case N_IN: return CRM_STAT_GET(s->in);
    case N_OUT: return CRM_STAT_GET(s->out);
    case N_ERR: return CRM_STAT_GET(s->errors);
    case N_DROP: return CRM_STAT_GET(s->dropped);
    case N_DEPTH: return crm_node_queue_depth(s);
    case N_HWM: return CRM_STAT_GET(s->hwm);
    }
    return 0;
}

static void node_family(strbuf *sb, crm_runtime *rt, const char *name, const char *type, const char *help,
                        node_field f)
{
    crm_prom_family(sb, name, type, help);
    for (size_t i = 0; i < rt->nnodes; i++) {
        crm_node *n = rt->nodes[i];
        if (n->is_config && !n->type->input && !n->nports) continue; /* a config node */
        sb_puts(sb, name);
        node_labels(sb, n);
        sb_printf(sb, " %llu\n", (unsigned long long)node_value(n, f));
    }
}

static void loop_family(strbuf *sb, const crm_loop_stats *ls, size_t n, const char *name, const char *type,
                        const char *help, int which)
{
    crm_prom_family(sb, name, type, help);
    for (size_t i = 0; i < n; i++) {
        const crm_loop_stats *s = &ls[i];
        if (which == 2) { /* summaries: _sum and _count */
            bool timers = strstr(name, "timer") != NULL;
            sb_printf(sb, "%s_sum{", name);
            crm_prom_label(sb, "flow", s->name, true);
            sb_printf(sb, "} %.9f\n%s_count{", timers ? s->timer_late_sum_s : s->inbox_lag_sum_s, name);
            crm_prom_label(sb, "flow", s->name, true);
            sb_printf(sb, "} %llu\n", (unsigned long long)(timers ? s->timers_run : s->inbox_batches));
            continue;
        }
        sb_printf(sb, "%s{", name);
        crm_prom_label(sb, "flow", s->name, true);
        double v = which == 0 ? s->busy_s : which == 3 ? s->inbox_lag_max_s : s->timer_late_max_s;
        sb_printf(sb, "} %.9f\n", v);
    }
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

char *crm_metrics_render(crm_runtime *rt, size_t *len)
{
    strbuf sb = SB_INIT;
    node_family(&sb, rt, "carmine_node_messages_in_total", "counter",
                "Messages taken off the node's input queue (handled, or discarded when it had closed).", N_IN);
    node_family(&sb, rt, "carmine_node_messages_out_total", "counter", "Messages the node sent (one per port and call).",
                N_OUT);
    node_family(&sb, rt, "carmine_node_errors_total", "counter",
                "node.error calls: errors the node reported, caught or logged.", N_ERR);
    node_family(&sb, rt, "carmine_node_messages_dropped_total", "counter",
                "Messages refused because the node's input queue held nodeInputQueueMaxLength.", N_DROP);
    node_family(&sb, rt, "carmine_node_queue_depth", "gauge", "Messages waiting in the node's input queue.", N_DEPTH);
    node_family(&sb, rt, "carmine_node_queue_depth_max", "gauge",
                "The largest input-queue depth since start (high-water mark).", N_HWM);

    crm_loop_stats *ls = calloc(rt->nloops ? rt->nloops : 1, sizeof *ls);
    for (size_t i = 0; ls && i < rt->nloops; i++) crm_loop_stats_read(rt->loops[i], &ls[i]);
    size_t nl = ls ? rt->nloops : 0;
    loop_family(&sb, ls, nl, "carmine_loop_busy_seconds_total", "counter",
                "Time the flow's loop thread spent out of poll (running handlers, timers, descriptors).", 0);
    loop_family(&sb, ls, nl, "carmine_loop_inbox_lag_seconds", "summary",
                "Lag: from a message queued by another thread (HTTP server, other flows) into the loop's empty "
                "inbox to the loop taking it; one observation per batch.",
                2);
    loop_family(&sb, ls, nl, "carmine_loop_inbox_lag_seconds_max", "gauge", "The largest inbox lag since start.", 3);
    loop_family(&sb, ls, nl, "carmine_loop_timer_lateness_seconds", "summary",
                "Lateness: from a timer's due time to its handler running.", 2);
    loop_family(&sb, ls, nl, "carmine_loop_timer_lateness_seconds_max", "gauge", "The largest timer lateness since start.",
                4);
    free(ls);

    if (rt->httpd) crm_httpd_metrics((struct crm_httpd *)rt->httpd, &sb);
    crm_context_metrics(rt, &sb);

    crm_prom_family(&sb, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sb_printf(&sb, "process_resident_memory_bytes %ld\n", rss_bytes());
    *len = sb.len;
    return sb_take(&sb);
}
