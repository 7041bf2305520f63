/* complete.c: Node-RED's complete node (spec §3.3): fires when a node in its
 * scope calls done; the engine builds the message with msg.complete. */
#include "passthrough.h"

static int complete_create(crm_node *n, const json_t *config)
{
    json_t *scope = json_object_get(config, "scope");
    if (!json_is_array(scope) || !json_array_size(scope))
        crm_node_warn(n, "scope undefined");
    return 0;
}

const crm_node_type crm_type_complete = {
    .abi = CRM_ABI_VERSION, .type = "complete", .create = complete_create, .input = crm_passthrough_input};
