/* link_in.c: Node-RED's link in node (spec §3.4): messages from paired link
 * out nodes (wired by the loader, §1.6) and link calls go on unchanged. */
#include "passthrough.h"

const crm_node_type crm_type_link_in = {.abi = CRM_ABI_VERSION, .type = "link in", .input = crm_passthrough_input};
