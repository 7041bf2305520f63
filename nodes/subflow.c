/* subflow.c: a subflow instance as the engine runs it: the loader flattens the
 * subflow's nodes into the instance's own flow; the instance node itself
 * forwards each message to the nodes wired from the subflow's input. */
#include "passthrough.h"

const crm_node_type crm_type_subflow_instance = {
    .abi = CRM_ABI_VERSION, .type = "subflow", .input = crm_passthrough_input};
