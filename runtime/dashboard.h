/* dashboard.h: the dashboard of a runtime, as ui_chart nodes see it.
 *
 * A ui_chart registers itself with crm_dash_chart_new(); the chart node then
 * owns the routes of the dashboard on the flows' HTTP server (below
 * httpNodeRoot, as node-red-dashboard mounts on RED.httpNode):
 *   GET /ui                          the page (dashboard/index.html, built in)
 *   GET /ui/api/charts               every chart of this server: [{id, label, tab, group, ...}]
 *   GET /ui/api/chart/<id>.json      {version, state}; ?since=V waits (long poll)
 *                                    until the state is newer than V
 *   GET /ui/api/chart/<id>.csv       the series as CSV
 *   GET /ui/api/chart/<id>.svg       the chart as an SVG image
 * Every chart registers /ui and /ui/api/charts; the server answers with the
 * first one registered, so the page stays up while any chart exists. The
 * per-chart routes run on the chart's own loop, where its state lives, so the
 * state needs no lock.
 *
 * The state is node-red-dashboard's: [] (cleared) or [{series, data, labels}],
 * data[i] holding {x: ms, y: number|null} points for a line chart and one
 * value per label otherwise.
 */
#ifndef CRM_DASHBOARD_H
#define CRM_DASHBOARD_H

#include <stddef.h>

#include "carmine.h"

typedef struct crm_dash_chart crm_dash_chart;

/* The config (borrowed) of the node with this id, config nodes included
 * (ui_group, ui_tab), or NULL. Any time after the flows loaded. */
const json_t *crm_dash_node_config(crm_node *from, const char *id);

/* Registers chart n: meta (stolen) is what the page and the renderers need
 * (id, label, chartType, colors, ymin, ymax, legend, dot, xformat, useUTC,
 * interpolate, nodata, tab, group, order, width, height). Returns NULL when
 * the chart cannot be served (no HTTP server, httpNodeRoot false, an id
 * unusable in a URL): it is logged and the node works without a page.
 * From create(). */
crm_dash_chart *crm_dash_chart_new(crm_node *n, json_t *meta);
/* The chart's state changed: values (borrowed: the {series, data, labels}
 * object the chart owns, NULL once cleared) is what the routes serve until
 * the next call; the chart changes it only on its loop, between calls.
 * Wakes long polls. On the chart's loop; c may be NULL. */
void crm_dash_chart_update(crm_dash_chart *c, const json_t *values);
/* Unregisters (routes, pending polls answered 503) and frees. From close();
 * NULL is fine. */
void crm_dash_chart_free(crm_dash_chart *c);

/* Renderers (dashboard_render.c), pure functions of meta and values (both
 * borrowed; values NULL: no data). malloc'd text, length in *len. */
/* Line charts: "series,timestamp,time,value" rows (time ISO-8601 UTC; an
 * empty value is a gap). Other charts: "label,<series>..." rows. */
char *crm_dash_csv(const json_t *meta, const json_t *values, size_t *len);
/* A standalone SVG image (width x height pixels) of the chart: axes, grid,
 * one line or bar group per series, legend, title. */
char *crm_dash_svg(const json_t *meta, const json_t *values, int width, int height, size_t *len);

#endif
