/* dashboard_render.c: a chart's series as CSV and as a standalone SVG image
 * (dashboard.h), so results can be exported headless, without a browser.
 *
 * The SVG follows what the dashboard page draws: a title, a y axis with
 * "nice" ticks (from 0, or ymin/ymax when configured), a time x axis for
 * line charts (HH:MM:SS, local time unless useUTC), one polyline per series
 * broken at null points (gaps), and a legend. Non-line chart types are drawn
 * as grouped vertical bars.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dashboard.h"
#include "strbuf.h"

static const char *default_colors[] = {"#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#98df8a",
                                       "#d62728", "#ff9896", "#9467bd", "#c5b0d5"};

/* Shared helpers ------------------------------------------------------------------------------ */

static bool is_line(const json_t *meta)
{
    const char *t = json_string_value(json_object_get(meta, "chartType"));
    return !t || !*t || !strcmp(t, "line");
}

static const json_t *series_of(const json_t *values) { return json_object_get(values, "series"); }
static const json_t *data_of(const json_t *values) { return json_object_get(values, "data"); }
static const json_t *labels_of(const json_t *values) { return json_object_get(values, "labels"); }

static double num_or_nan(const json_t *v) { return json_is_number(v) ? crm_num_value(v) : NAN; }

static void put_number(strbuf *sb, double d)
{
    char buf[32];
    sb_puts(sb, crm_fmt_number(d, buf));
}

static void put_name(strbuf *sb, const json_t *v, void (*escape)(strbuf *, const char *))
{
    char *s = v ? crm_to_string(v) : strdup("");
    escape(sb, s ? s : "");
    free(s);
}

/* CSV ------------------------------------------------------------------------------------------- */

static void csv_field(strbuf *sb, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        sb_puts(sb, s);
        return;
    }
    sb_putc(sb, '"');
    for (; *s; s++) {
        if (*s == '"') sb_putc(sb, '"');
        sb_putc(sb, *s);
    }
    sb_putc(sb, '"');
}

static void iso_time(strbuf *sb, double ms)
{
    if (!isfinite(ms)) return;
    time_t t = (time_t)floor(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    sb_printf(sb, "%s.%03dZ", buf, (int)(ms - (double)t * 1000));
}

static void csv_value(strbuf *sb, const json_t *v)
{
    if (json_is_number(v)) put_number(sb, crm_num_value(v));
}

static void csv_line(strbuf *sb, const json_t *values)
{
    sb_puts(sb, "series,timestamp,time,value\n");
    const json_t *series = series_of(values), *data = data_of(values);
    for (size_t s = 0; s < json_array_size(data); s++) {
        const json_t *points = json_array_get(data, s);
        for (size_t i = 0; i < json_array_size(points); i++) {
            const json_t *p = json_array_get(points, i);
            double x = num_or_nan(json_object_get(p, "x"));
            put_name(sb, json_array_get(series, s), csv_field);
            sb_putc(sb, ',');
            if (isfinite(x)) put_number(sb, x);
            sb_putc(sb, ',');
            iso_time(sb, x);
            sb_putc(sb, ',');
            csv_value(sb, json_object_get(p, "y"));
            sb_putc(sb, '\n');
        }
    }
}

static void csv_table(strbuf *sb, const json_t *values)
{
    const json_t *series = series_of(values), *data = data_of(values), *labels = labels_of(values);
    sb_puts(sb, "label");
    for (size_t s = 0; s < json_array_size(series); s++) {
        sb_putc(sb, ',');
        put_name(sb, json_array_get(series, s), csv_field);
    }
    sb_putc(sb, '\n');
    for (size_t l = 0; l < json_array_size(labels); l++) {
        put_name(sb, json_array_get(labels, l), csv_field);
        for (size_t s = 0; s < json_array_size(series); s++) {
            sb_putc(sb, ',');
            csv_value(sb, json_array_get(json_array_get(data, s), l));
        }
        sb_putc(sb, '\n');
    }
}

char *crm_dash_csv(const json_t *meta, const json_t *values, size_t *len)
{
    strbuf sb = SB_INIT;
    if (is_line(meta)) csv_line(&sb, values);
    else csv_table(&sb, values);
    *len = sb.len;
    return sb_take(&sb);
}

/* SVG ------------------------------------------------------------------------------------------- */

typedef struct {
    int w, h;
    double left, right, top, bottom; /* plot area in pixels */
    double x0, x1, y0, y1;           /* data ranges */
} frame;

static void xml_text(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_puts(sb, "&lt;"); break;
        case '>': sb_puts(sb, "&gt;"); break;
        case '&': sb_puts(sb, "&amp;"); break;
        case '"': sb_puts(sb, "&quot;"); break;
        default: sb_putc(sb, *s);
        }
    }
}

static const char *color_at(const json_t *meta, size_t i)
{
    const json_t *colors = json_object_get(meta, "colors");
    const char *c = json_string_value(json_array_get(colors, i % (json_array_size(colors) ? json_array_size(colors) : 1)));
    if (c && *c) return c;
    return default_colors[i % (sizeof default_colors / sizeof *default_colors)];
}

static double sx(const frame *f, double x) { return f->left + (x - f->x0) / (f->x1 - f->x0) * (f->right - f->left); }
static double sy(const frame *f, double y) { return f->bottom - (y - f->y0) / (f->y1 - f->y0) * (f->bottom - f->top); }

/* 1, 2 or 5 times a power of ten, near range/target. */
static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static bool cfg_number(const json_t *meta, const char *key, double *out)
{
    const json_t *v = json_object_get(meta, key);
    if (json_is_number(v)) *out = crm_num_value(v);
    else if (json_is_string(v) && *json_string_value(v)) *out = crm_str_to_number(json_string_value(v));
    else return false;
    return isfinite(*out);
}

/* The y range: from 0 (or below) to the largest value, rounded out to ticks. */
static void y_range(frame *f, const json_t *meta, double lo, double hi)
{
    if (!isfinite(lo)) lo = hi = 0;
    lo = fmin(lo, 0);
    if (hi <= lo) hi = lo + 1;
    hi += (hi - lo) * 0.04; /* keep the top value off the frame */
    double step = nice_step(hi - lo, 5);
    f->y0 = floor(lo / step) * step;
    f->y1 = ceil(hi / step) * step;
    cfg_number(meta, "ymin", &f->y0);
    cfg_number(meta, "ymax", &f->y1);
    if (f->y1 <= f->y0) f->y1 = f->y0 + 1;
}

static void y_axis(strbuf *sb, const frame *f)
{
    double step = nice_step(f->y1 - f->y0, 5);
    for (double v = ceil(f->y0 / step) * step; v <= f->y1 + step * 1e-9; v += step) {
        double y = sy(f, v);
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>", f->left, y,
                  f->right, y);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">", f->left - 6, y + 4);
        put_number(sb, fabs(v) < step * 1e-9 ? 0 : v);
        sb_puts(sb, "</text>\n");
    }
}

static void time_label(strbuf *sb, double ms, bool utc)
{
    time_t t = (time_t)floor(ms / 1000);
    struct tm tm;
    if (utc) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    char buf[16];
    strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    sb_puts(sb, buf);
}

static void x_time_axis(strbuf *sb, const frame *f, bool utc)
{
    static const double steps_s[] = {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400};
    double span_s = (f->x1 - f->x0) / 1000, step = steps_s[0];
    for (size_t i = 0; i < sizeof steps_s / sizeof *steps_s && span_s / steps_s[i] > 8; i++)
        step = i + 1 < sizeof steps_s / sizeof *steps_s ? steps_s[i + 1] : steps_s[i];
    step *= 1000;
    for (double v = ceil(f->x0 / step) * step; v <= f->x1; v += step) {
        double x = sx(f, v);
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>", x, f->top, x,
                  f->bottom);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">", x, f->bottom + 16);
        time_label(sb, v, utc);
        sb_puts(sb, "</text>\n");
    }
}

static bool point_xy(const json_t *p, double *x, double *y)
{
    *x = num_or_nan(json_object_get(p, "x"));
    *y = num_or_nan(json_object_get(p, "y"));
    return isfinite(*x) && isfinite(*y);
}

static void line_ranges(frame *f, const json_t *meta, const json_t *data)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY, x, y;
    for (size_t s = 0; s < json_array_size(data); s++) {
        const json_t *points = json_array_get(data, s);
        for (size_t i = 0; i < json_array_size(points); i++) {
            if (!point_xy(json_array_get(points, i), &x, &y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    }
    if (!isfinite(xlo)) xlo = xhi = 0;
    if (xhi - xlo < 1000) xhi = xlo + 1000;
    f->x0 = xlo, f->x1 = xhi;
    y_range(f, meta, ylo, yhi);
}

/* One series: a polyline per run of points between gaps (null y). */
static void line_series(strbuf *sb, const frame *f, const json_t *points, const char *color, bool step, bool dot)
{
    bool open = false;
    double px = 0, py = 0, x, y;
    for (size_t i = 0; i < json_array_size(points); i++) {
        if (!point_xy(json_array_get(points, i), &x, &y)) {
            if (open) sb_puts(sb, "\"/>\n");
            open = false;
            continue;
        }
        double X = sx(f, x), Y = sy(f, fmin(fmax(y, f->y0), f->y1));
        if (!open) {
            sb_printf(sb, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
            open = true;
        } else if (step) {
            sb_printf(sb, "%.1f,%.1f ", X, py);
        }
        sb_printf(sb, "%.1f,%.1f ", X, Y);
        px = X, py = Y;
    }
    (void)px;
    if (open) sb_puts(sb, "\"/>\n");
    for (size_t i = 0; dot && i < json_array_size(points); i++)
        if (point_xy(json_array_get(points, i), &x, &y))
            sb_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", sx(f, x), sy(f, y), color);
}

static void draw_line_chart(strbuf *sb, frame *f, const json_t *meta, const json_t *values)
{
    const json_t *data = data_of(values);
    line_ranges(f, meta, data);
    y_axis(sb, f);
    x_time_axis(sb, f, json_is_true(json_object_get(meta, "useUTC")));
    const char *interp = json_string_value(json_object_get(meta, "interpolate"));
    bool step = interp && !strcmp(interp, "step");
    bool dot = crm_truthy(json_object_get(meta, "dot"));
    for (size_t s = 0; s < json_array_size(data); s++)
        line_series(sb, f, json_array_get(data, s), color_at(meta, s), step, dot);
}

static void draw_bar_chart(strbuf *sb, frame *f, const json_t *meta, const json_t *values)
{
    const json_t *data = data_of(values), *labels = labels_of(values);
    size_t nseries = json_array_size(data), nlabels = json_array_size(labels);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t s = 0; s < nseries; s++)
        for (size_t l = 0; l < nlabels; l++) {
            double v = num_or_nan(json_array_get(json_array_get(data, s), l));
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    y_range(f, meta, lo, hi);
    y_axis(sb, f);
    if (!nlabels || !nseries) return;
    double slot = (f->right - f->left) / (double)nlabels, bar = slot * 0.8 / (double)nseries;
    for (size_t l = 0; l < nlabels; l++) {
        double x = f->left + slot * (double)l + slot * 0.1;
        for (size_t s = 0; s < nseries; s++) {
            double v = num_or_nan(json_array_get(json_array_get(data, s), l));
            if (!isfinite(v)) continue;
            double y0 = sy(f, fmax(f->y0, 0)), y = sy(f, fmin(fmax(v, f->y0), f->y1));
            sb_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                      x + bar * (double)s, fmin(y, y0), bar, fabs(y0 - y), color_at(meta, nseries > 1 ? s : l));
        }
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">", x + slot * 0.4,
                  f->bottom + 16);
        put_name(sb, json_array_get(labels, l), xml_text);
        sb_puts(sb, "</text>\n");
    }
}

static void legend(strbuf *sb, const frame *f, const json_t *meta, const json_t *values)
{
    const json_t *series = series_of(values);
    double x = f->left;
    for (size_t s = 0; s < json_array_size(series); s++) {
        char *name = crm_to_string(json_array_get(series, s));
        sb_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, (double)f->h - 22,
                  color_at(meta, s));
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", x + 16, (double)f->h - 12);
        xml_text(sb, name ? name : "");
        sb_puts(sb, "</text>\n");
        x += 40 + 7.0 * (double)(name ? strlen(name) : 0);
        free(name);
    }
}

char *crm_dash_svg(const json_t *meta, const json_t *values, int width, int height, size_t *len)
{
    strbuf sb = SB_INIT;
    bool show_legend = crm_truthy(json_object_get(meta, "legend")) &&
                       !(json_is_string(json_object_get(meta, "legend")) &&
                         !strcmp(json_string_value(json_object_get(meta, "legend")), "false"));
    frame f = {.w = width, .h = height, .left = 56, .right = width - 20, .top = 36,
               .bottom = height - (show_legend ? 52 : 30)};
    sb_printf(&sb,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
              width, height, width, height);
    sb_printf(&sb, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", width / 2);
    put_name(&sb, json_object_get(meta, "label"), xml_text);
    sb_puts(&sb, "</text>\n");
    if (is_line(meta)) draw_line_chart(&sb, &f, meta, values);
    else draw_bar_chart(&sb, &f, meta, values);
    sb_printf(&sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
              f.left, f.top, f.right - f.left, f.bottom - f.top);
    if (!json_array_size(data_of(values))) {
        sb_printf(&sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\" fill=\"#888\">", width / 2,
                  height / 2);
        put_name(&sb, json_object_get(meta, "nodata"), xml_text);
        sb_puts(&sb, "</text>\n");
    }
    if (show_legend) legend(&sb, &f, meta, values);
    sb_puts(&sb, "</svg>\n");
    *len = sb.len;
    return sb_take(&sb);
}
