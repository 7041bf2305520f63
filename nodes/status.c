/* status.c: Node-RED's status node (spec §2.7, §3.3). The engine's routing
 * builds {status:{fill, shape, text, source}}; the node passes it on. */
#include "passthrough.h"

const crm_node_type crm_type_status = {.abi = CRM_ABI_VERSION, .type = "status", .input = crm_passthrough_input};
