/* debug.c: Node-RED's debug node (spec §3.2). Without an editor sidebar, what
 * the sidebar would show goes to the log as one readable line
 * ("[debug:name] msg.payload : string[5] : hello"); `tostatus` sets the node
 * status the way Node-RED does (auto, msg property, jsonata, counter). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

typedef struct {
    bool active, sidebar, console, tostatus, whole;
    char *property;      /* the property shown (msg path), NULL for whole msg */
    crm_path *path;
    crm_typed *expr;     /* targetType jsonata */
    char *status_type;   /* auto, msg, jsonata, counter */
    crm_path *status_path;
    crm_typed *status_expr;
    double counter;
    char *last_status;
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

static void show_status(crm_node *n, debug_state *s, const json_t *msg, const json_t *shown)
{
    char text[64];
    if (!strcmp(s->status_type, "counter")) {
        s->counter++;
        snprintf(text, sizeof text, "%.0f", s->counter);
        crm_node_status(n, "blue", "ring", text);
        return;
    }
    json_t *v = NULL;
    const char *fill = "grey", *shape = "dot";
    if (!strcmp(s->status_type, "msg") && s->status_path) {
        bool throws;
        v = json_incref(crm_path_get(s->status_path, msg, msg, &throws));
    } else if (!strcmp(s->status_type, "jsonata") && s->status_expr) {
        char *err = NULL;
        if (crm_typed_eval(n, s->status_expr, msg, &v, &err) < 0) free(err);
    } else {
        json_t *err = json_object_get(msg, "error");
        if (err) {
            fill = "red";
            v = json_incref(json_object_get(err, "message"));
        } else {
            v = json_incref((json_t *)shown);
        }
    }
    char fmt[32];
    char *full = json_is_string(v) ? strdup(json_string_value(v)) : format_value(v, fmt, sizeof fmt);
    if (strlen(full) > 32) strcpy(full + 32, "...");
    if (!s->last_status || strcmp(s->last_status, full)) {
        crm_node_status(n, fill, shape, full);
        free(s->last_status);
        s->last_status = strdup(full);
    }
    free(full);
    json_decref(v);
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
    if (s->whole) {
        shown = json_incref(msg);
    } else if (s->expr) {
        char *err = NULL;
        if (crm_typed_eval(n, s->expr, msg, &shown, &err) < 0) {
            crm_node_error(n, msg, "%s", err ? err : "JSONata error");
            free(err);
        }
    } else if (s->path) {
        bool throws;
        shown = json_incref(crm_path_get(s->path, msg, msg, &throws));
    }
    if (s->tostatus) show_status(n, s, msg, shown);
    if (s->active && (s->sidebar || s->console)) {
        char fmt[32];
        char *text = format_value(shown, fmt, sizeof fmt);
        crm_node_log(n, CRM_LOG_INFO, "%s%s : %s : %s", s->whole || s->expr ? "" : "msg.",
                     s->whole ? "msg" : s->expr ? "(expression)" : s->property, fmt, text);
        free(text);
    }
    json_decref(shown);
    crm_node_done(n, msg);
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
    const char *sv = crm_cfg_str(config, "statusVal", "");
    if (!strcmp(s->status_type, "msg") && *sv) s->status_path = crm_path_parse(sv, &err);
    if (!strcmp(s->status_type, "jsonata") && *sv) {
        json_t *e = json_string(sv);
        s->status_expr = crm_typed_new(n, "jsonata", e, &err);
        json_decref(e);
    }
    free(err);
    return 0;
}

static void debug_start(crm_node *n)
{
    debug_state *s = crm_node_data(n);
    if (s->tostatus && !strcmp(s->status_type, "counter")) crm_node_status(n, "blue", "ring", "0");
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
    free(s->last_status);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_debug = {
    .abi = CRM_ABI_VERSION,
    .type = "debug",
    .create = debug_create,
    .start = debug_start,
    .input = debug_input,
    .close = debug_close,
};
