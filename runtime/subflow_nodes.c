/* subflow_nodes.c: the two node types the loader makes for a subflow
 * instance (not registered: the loader uses them directly, as Node-RED's
 * runtime keeps subflows in its own Subflow.js). The loader flattens the
 * subflow's nodes into the instance's own flow; the instance node itself
 * forwards each message to the nodes wired from the subflow's input. */
#include "carmine.h"

static void instance_input(crm_node *n, json_t *msg)
{
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

const crm_node_type crm_type_subflow_instance = {
    .abi = CRM_ABI_VERSION, .type = "subflow", .input = instance_input};

/* The subflow's status output: a message reaching it sets the instance's
 * status (spec §2.7): a string payload is the text; an object payload with
 * text, fill or shape (or an empty one) is used as it is; any other payload is
 * shown as text cut to 32 characters; without a payload, msg.status is used. */
#include <stdlib.h>
#include <string.h>

static void set_from(crm_node *inst, const json_t *st)
{
    const char *fill = json_string_value(json_object_get(st, "fill"));
    const char *shape = json_string_value(json_object_get(st, "shape"));
    json_t *t = json_object_get(st, "text");
    char *text = t ? crm_to_string(t) : NULL;
    crm_node_status(inst, fill, shape, text);
    free(text);
}

static void subflow_status_input(crm_node *n, json_t *msg)
{
    crm_node *inst = crm_node_find(n, crm_node_data(n));
    json_t *p = json_object_get(msg, "payload");
    if (!inst) {
        json_decref(msg);
        return;
    }
    if (json_is_string(p)) {
        crm_node_status(inst, NULL, NULL, json_string_value(p));
    } else if (json_is_object(p) && !crm_is_buf(p) &&
               (!json_object_size(p) || json_object_get(p, "text") || json_object_get(p, "fill") ||
                json_object_get(p, "shape"))) {
        set_from(inst, p);
    } else if (p) {
        /* util.inspect, cut at 32 UTF-16 units as substr cuts it */
        char *s = crm_inspect(p, 2);
        size_t len = strlen(s);
        if (crm_utf16_len(s, len) > 32) {
            size_t cut = crm_utf16_prefix(s, len, 32);
            char *c = malloc(cut + 4);
            memcpy(c, s, cut);
            memcpy(c + cut, "...", 4);
            free(s);
            s = c;
        }
        crm_node_status(inst, NULL, NULL, s);
        free(s);
    } else if (json_is_object(json_object_get(msg, "status"))) {
        json_t *st = json_object_get(msg, "status");
        const char *text = json_string_value(json_object_get(st, "text"));
        if (text && !strncmp(text, "common.", 7)) {
            /* a message catalogue key of Node-RED's own: as Node-RED qualifies it */
            char *q = malloc(strlen(text) + 10);
            strcpy(q, "node-red:");
            strcat(q, text);
            json_object_set_new(st, "text", json_string(q));
            free(q);
        }
        set_from(inst, st);
    }
    json_decref(msg);
}

static int subflow_status_create(crm_node *n, const json_t *config)
{
    crm_node_set_data(n, strdup(crm_cfg_str(config, "instance", "")));
    return 0;
}

static void subflow_status_close(crm_node *n)
{
    free(crm_node_data(n));
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_subflow_status = {.abi = CRM_ABI_VERSION,
                                               .type = "subflow status",
                                               .create = subflow_status_create,
                                               .input = subflow_status_input,
                                               .close = subflow_status_close};
