/* global_config.c: Node-RED's global-config node (spec §1.3). Its env is read
 * by the loader; at run time it does nothing. */
#include "carmine.h"

const crm_node_type crm_type_global_config = {.abi = CRM_ABI_VERSION, .type = "global-config"};
