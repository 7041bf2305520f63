/* comment.c: Node-RED's comment and unknown nodes (spec §3.6): no input, no
 * output, no behaviour. They exist so flows that hold them load. */
#include "carmine.h"

const crm_node_type crm_type_comment = {.abi = CRM_ABI_VERSION, .type = "comment"};
const crm_node_type crm_type_unknown = {.abi = CRM_ABI_VERSION, .type = "unknown"};
