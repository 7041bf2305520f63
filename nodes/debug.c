/* debug.c: Node-RED's debug node (spec §3.2). Without an editor sidebar, what
 * the sidebar would show goes to the log as one readable line
 * ("[debug:name] msg.payload : string[5] : hello"); `console` logs what
 * Node-RED logs (the value, or util.inspect of it); `tostatus` sets the node
 * status as Node-RED does (auto, msg property, jsonata, throttled counter). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "comms.h"

#define STATUS_LENGTH 32 /* debugStatusLength */

typedef struct {
    bool active, sidebar, console, tostatus, whole;
    char *property;      /* the property shown (msg path), NULL for whole msg */
    crm_path *path;
    crm_typed *expr;     /* targetType jsonata */
    char *expr_text;
    char *status_type;   /* auto, msg, jsonata, counter */
    crm_path *status_path;
    crm_typed *status_expr;
    double counter, last_time;
    crm_timer *counter_timer;
    char *last_status; /* fill, shape and text of the status last sent */
} debug_state;

static char *format_value(const json_t *v, char *fmt, size_t fmtlen)
{
    if (!v) {
        snprintf(fmt, fmtlen, "undefined");
        return strdup("(undefined)");
    }
    if (json_is_string(v)) {
        snprintf(fmt, fmtlen, "string[%zu]", json_string_length(v));
        size_t n = json_string_length(v);
        if (n > 1000) {
            char *s = malloc(1004);
            memcpy(s, json_string_value(v), 1000);
            strcpy(s + 1000, "...");
            return s;
        }
        return strdup(json_string_value(v));
    }
    if (json_is_number(v)) snprintf(fmt, fmtlen, "number");
    else if (json_is_boolean(v)) snprintf(fmt, fmtlen, "boolean");
    else if (json_is_null(v)) {
        snprintf(fmt, fmtlen, "null");
        return strdup("null");
    } else if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        snprintf(fmt, fmtlen, "buffer[%zu]", n);
        size_t shown = n > 500 ? 500 : n;
        char *s = malloc(shown * 2 + 4);
        for (size_t i = 0; i < shown; i++) sprintf(s + 2 * i, "%02x", d[i]);
        strcpy(s + shown * 2, n > shown ? "..." : "");
        return s;
    } else if (json_is_array(v)) snprintf(fmt, fmtlen, "array[%zu]", json_array_size(v));
    else snprintf(fmt, fmtlen, "Object");
    if (json_is_number(v) || json_is_boolean(v)) return crm_to_string(v);
    return crm_stringify(v, 0);
}

/* node.status only when fill, shape or text changed (Node-RED compares the
 * JSON of the three). */
static void set_status(crm_node *n, debug_state *s, const char *fill, const char *shape, const char *text)
{
    size_t len = strlen(fill) + strlen(shape) + strlen(text) + 3;
    char *key = malloc(len);
    snprintf(key, len, "%s\n%s\n%s", fill, shape, text);
    if (s->last_status && !strcmp(s->last_status, key)) {
        free(key);
        return;
    }
    free(s->last_status);
    s->last_status = key;
    crm_node_status(n, fill, shape, text);
}

static void show_counter(crm_node *n, void *arg)
{
    debug_state *s = crm_node_data(n);
    if (arg) s->counter_timer = NULL; /* the timer fired */
    char text[32];
    snprintf(text, sizeof text, "%.0f", s->counter);
    crm_node_status(n, "blue", "ring", text);
}

/* A counter status at most every 100 ms: a burst shows its last count
 * 200 ms after it ends. */
static void count(crm_node *n, debug_state *s)
{
    double now = crm_wall_ms(), since = now - s->last_time;
    s->last_time = now;
    s->counter++;
    if (since > 100) {
        show_counter(n, NULL); /* a deferred update still pending shows too, as in Node-RED */
        return;
    }
    crm_timer_cancel(s->counter_timer);
    s->counter_timer = crm_timer_start(n, 200, 0, show_counter, s);
}

/* A field of an object as status text: String() of it, dflt when falsy. */
static char *field_text(const json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return crm_truthy(v) ? crm_to_string(v) : strdup(dflt);
}

static void replace(char **dst, char *val)
{
    free(*dst);
    *dst = val;
}

/* false when Node-RED's handler would have thrown (then the message is
 * not done). */
static bool show_status(crm_node *n, debug_state *s, const json_t *msg, const json_t *shown)
{
    json_t *v = NULL;
    bool automatic = !strcmp(s->status_type, "auto");
    if (s->status_expr) {
        char *err = NULL;
        if (crm_typed_eval(n, s->status_expr, msg, &v, &err) < 0) {
            free(err);
            crm_node_error(n, NULL, "Invalid JSONata expression: %s", s->expr_text ? s->expr_text : "null");
            return true;
        }
    } else if (automatic) {
        v = json_incref(s->whole ? json_object_get(msg, "payload") : (json_t *)shown);
    } else if (s->status_path) {
        bool throws;
        v = json_incref(crm_path_get(s->status_path, msg, msg, &throws));
    }
    char *fill = strdup("grey"), *shape = strdup("dot");
    char *text = json_is_string(v) ? strdup(json_string_value(v)) : crm_inspect(v, 2);
    if (json_is_object(v) && crm_truthy(json_object_get(v, "fill")) && crm_truthy(json_object_get(v, "shape")) &&
        crm_truthy(json_object_get(v, "text"))) {
        replace(&fill, crm_to_string(json_object_get(v, "fill")));
        replace(&shape, crm_to_string(json_object_get(v, "shape")));
        replace(&text, crm_to_string(json_object_get(v, "text")));
    }
    json_decref(v);
    json_t *err = automatic ? json_object_get(msg, "error") : NULL, *st = automatic ? json_object_get(msg, "status") : NULL;
    if (err) {
        json_t *m = json_object_get(err, "message");
        replace(&fill, strdup("red"));
        replace(&text, m ? crm_to_string(m) : NULL);
    }
    if (st) {
        replace(&fill, field_text(st, "fill", "grey"));
        replace(&shape, field_text(st, "shape", "ring"));
        replace(&text, field_text(st, "text", ""));
    }
    bool ok = text != NULL;
    if (!ok) { /* msg.error without a message: Node-RED's handler throws on it */
        crm_node_error(n, msg, "TypeError: Cannot read properties of undefined (reading 'length')");
    } else {
        size_t len = strlen(text), cut = crm_utf16_prefix(text, len, STATUS_LENGTH);
        if (cut < len) { /* st.substr(0, 32) + "...": room for the dots first */
            text = realloc(text, cut + 4);
            memcpy(text + cut, "...", 4);
        }
        set_status(n, s, fill, shape, text);
    }
    free(fill), free(shape), free(text);
    return ok;
}

/* What Node-RED's console option logs: a string as it is (on a line of its
 * own when it has several), anything else as util.inspect shows it. */
static void log_console(crm_node *n, const json_t *v)
{
    if (json_is_string(v)) {
        const char *t = json_string_value(v);
        crm_node_log(n, CRM_LOG_INFO, "%s%s", strchr(t, '\n') ? "\n" : "", t);
        return;
    }
    bool object = v && (json_is_object(v) || json_is_array(v) || json_is_null(v));
    char *text = crm_inspect(v, object ? 10 : 2);
    crm_node_log(n, CRM_LOG_INFO, "%s%s", object ? "\n" : "", text);
    free(text);
}

/* The topic as the editor's debug sidebar heads a message with it: only a
 * truthy msg.topic, as String() shows it, cut so that the heading stays
 * within 120 characters ("topic... : msg.payload : string[5]"). NULL when
 * the sidebar shows none. */
static char *sidebar_topic(const json_t *msg, const debug_state *s, const char *fmt)
{
    const json_t *topic = json_object_get(msg, "topic");
    if (!crm_truthy(topic)) return NULL;
    char *t = crm_to_string(topic);
    size_t info = strlen(" : msg") + (s->whole || s->expr ? 0 : 1 + crm_utf16_len(s->property, strlen(s->property))) +
                  strlen(" : ") + strlen(fmt);
    size_t max = info < 120 ? 120 - info : 0;
    size_t len = strlen(t);
    if (crm_utf16_len(t, len) > max) {
        size_t cut = crm_utf16_prefix(t, len, max);
        char *c = malloc(cut + 4);
        memcpy(c, t, cut);
        memcpy(c + cut, "...", 4);
        free(t);
        t = c;
    }
    return t;
}

static void debug_input(crm_node *n, json_t *msg)
{
    debug_state *s = crm_node_data(n);
    const char *sid = json_string_value(json_object_get(json_object_get(json_object_get(msg, "status"), "source"), "id"));
    if (sid && !strcmp(sid, crm_node_id(n))) {
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    json_t *shown = NULL;
    bool failed = false;
    if (s->whole) {
        shown = json_incref(msg);
    } else if (s->expr) {
        char *err = NULL;
        if (crm_typed_eval(n, s->expr, msg, &shown, &err) < 0) {
            free(err);
            failed = true;
        }
    } else if (s->path) {
        bool throws;
        shown = json_incref(crm_path_get(s->path, msg, msg, &throws));
    }
    bool handled = true;
    if (s->tostatus) {
        if (!strcmp(s->status_type, "counter")) count(n, s);
        else if (failed && !strcmp(s->status_type, "auto")) crm_node_error(n, NULL, "Invalid JSONata expression: %s", s->expr_text);
        else handled = show_status(n, s, msg, shown);
    }
    /* Node-RED reports a failed expression without the message (no catch
     * node sees it) and never calls done for it */
    if (failed) crm_node_error(n, NULL, "Invalid JSONata expression: %s", s->expr_text);
    if (handled && !failed) {
        if (s->console) log_console(n, shown);
        /* the editor's debug sidebar (comms.c), when one is connected */
        if (s->active && s->sidebar) crm_comms_debug(n, msg, s->whole || s->expr ? NULL : s->property, shown);
        if (s->active && s->sidebar && !s->console) {
            char fmt[32];
            char *text = format_value(shown, fmt, sizeof fmt);
            char *topic = sidebar_topic(msg, s, fmt);
            crm_node_log(n, CRM_LOG_INFO, "%s%s%s%s : %s : %s", topic ? topic : "", topic ? " : " : "",
                         s->whole || s->expr ? "msg" : "msg.", s->whole || s->expr ? "" : s->property, fmt, text);
            free(topic);
            free(text);
        }
        crm_node_done(n, msg);
    }
    json_decref(shown);
    json_decref(msg);
}

static int debug_create(crm_node *n, const json_t *config)
{
    debug_state *s = calloc(1, sizeof *s);
    crm_node_set_data(n, s);
    json_t *active = json_object_get(config, "active");
    s->active = !active || json_is_null(active) || crm_truthy(active);
    s->sidebar = crm_cfg_bool(config, "tosidebar", true);
    s->console = crm_cfg_bool(config, "console", false);
    s->tostatus = crm_cfg_bool(config, "tostatus", false);
    json_t *complete = json_object_get(config, "complete");
    const char *c = json_is_string(complete) ? json_string_value(complete)
                    : json_is_boolean(complete) ? (json_is_true(complete) ? "true" : "false") : "false";
    const char *tt = crm_cfg_str(config, "targetType", "");
    char *err = NULL;
    if (!strcmp(c, "true") || !strcmp(tt, "full")) {
        s->whole = true;
    } else if (!strcmp(tt, "jsonata")) {
        json_t *e = json_string(c);
        s->expr = crm_typed_new(n, "jsonata", e, &err);
        json_decref(e);
        if (!s->expr) {
            crm_node_config_error(n, "complete", "%s", err ? err : "invalid JSONata");
            free(err);
            return -1;
        }
    } else {
        s->property = strdup(!strcmp(c, "false") || !*c ? "payload" : c);
        s->path = crm_path_parse(s->property, &err);
        if (!s->path) {
            crm_node_config_error(n, "complete", "%s", err ? err : "invalid property");
            free(err);
            return -1;
        }
    }
    s->status_type = strdup(crm_cfg_str(config, "statusType", "auto"));
    /* Node-RED's statusVal defaults to the shown property ("true" for the
     * whole message, none for an expression) */
    const char *sv = crm_cfg_str(config, "statusVal", "");
    if (s->tostatus && !strcmp(s->status_type, "jsonata") && *sv) {
        json_t *e = json_string(sv);
        s->status_expr = crm_typed_new(n, "jsonata", e, &err);
        json_decref(e);
        if (!s->status_expr) {
            crm_node_config_error(n, "statusVal", "%s", err ? err : "invalid JSONata");
            free(err);
            return -1;
        }
    } else if (strcmp(s->status_type, "auto") && strcmp(s->status_type, "counter")) {
        /* any other status reads a property: statusVal, by default the
         * shown one ("true" for the whole message, none for an expression) */
        if (!*sv) sv = s->expr ? NULL : s->whole ? c : s->property;
        if (sv && !(s->status_path = crm_path_parse(sv, &err))) {
            free(err); /* Node-RED's getMessageProperty throws: undefined */
            err = NULL;
        }
    }
    if (s->expr) s->expr_text = strdup(c);
    s->last_time = crm_wall_ms();
    free(err);
    return 0;
}

static void debug_close(crm_node *n)
{
    debug_state *s = crm_node_data(n);
    if (!s) return;
    free(s->property);
    crm_path_free(s->path);
    crm_typed_free(s->expr);
    free(s->status_type);
    crm_path_free(s->status_path);
    crm_typed_free(s->status_expr);
    free(s->expr_text);
    free(s->last_status);
    free(s);
    crm_node_set_data(n, NULL);
}

static void set_active(crm_node *n, void *arg)
{
    debug_state *s = crm_node_data(n);
    if (s) s->active = arg != NULL;
}

void crm_debug_set_active(crm_node *n, bool on)
{
    if (!strcmp(crm_node_type_name(n), "debug")) crm_node_post(n, set_active, on ? (void *)1 : NULL);
}

const crm_node_type crm_type_debug = {
    .abi = CRM_ABI_VERSION,
    .type = "debug",
    .flags = CRM_TYPE_KEEPS_NAME, /* Node-RED's debug sets this.name = n.name */
    .create = debug_create,
    .input = debug_input,
    .close = debug_close,
};
