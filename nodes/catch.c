/* catch.c: Node-RED's catch node (spec §3.3). The engine's routing
 * (runtime/routing.c) picks the catch nodes an error reaches and builds the
 * message; the node only passes it on. */
#include "passthrough.h"

const crm_node_type crm_type_catch = {.abi = CRM_ABI_VERSION, .type = "catch", .input = crm_passthrough_input};
