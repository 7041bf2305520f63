/* junction.c: Node-RED's junction (spec §3.5): one input, one output, every
 * message sent on unchanged. */
#include "passthrough.h"

const crm_node_type crm_type_junction = {
    .abi = CRM_ABI_VERSION, .type = "junction", .input = crm_passthrough_input};
