/* link_out.c: Node-RED's link out node (spec §3.4). In "link" mode it sends
 * to every paired link in (the loader computed its wires); in "return" mode it
 * pops msg._linkSource and hands the message back to that link call. */
#include <string.h>

#include "link.h"

static void link_out_input(crm_node *n, json_t *msg)
{
    const char *mode = crm_node_data(n);
    if (!mode) {
        crm_node_send(n, 0, msg);
        crm_node_done(n, msg);
        return;
    }
    json_t *stack = json_object_get(msg, "_linkSource");
    size_t len = json_is_array(stack) ? json_array_size(stack) : 0;
    json_t *top = len ? json_incref(json_array_get(stack, len - 1)) : NULL;
    crm_node *call = top ? crm_node_find(n, json_string_value(json_object_get(top, "node"))) : NULL;
    if (!call) {
        crm_node_warn(n, "Missing return node information");
        crm_node_done(n, msg);
        json_decref(top);
        json_decref(msg);
        return;
    }
    json_array_remove(stack, len - 1);
    if (json_array_size(stack) == 0) json_object_del(msg, "_linkSource");
    crm_link_call_return(n, call, json_string_value(json_object_get(top, "id")), msg);
    crm_node_done(n, msg);
    json_decref(top);
}

static int link_out_create(crm_node *n, const json_t *config)
{
    const char *mode = crm_cfg_str(config, "mode", "link");
    /* the state pointer doubles as the mode flag: non-NULL means return mode */
    crm_node_set_data(n, !strcmp(mode, "return") ? (void *)"return" : NULL);
    return 0;
}

const crm_node_type crm_type_link_out = {
    .abi = CRM_ABI_VERSION, .type = "link out", .create = link_out_create, .input = link_out_input};
