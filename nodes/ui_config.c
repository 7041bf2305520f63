/* ui_config.c: the dashboard's config node types (ui_base, ui_tab, ui_group,
 * ui_spacer): inert, they describe layout for the dashboard page. */
#include "carmine.h"

const crm_node_type crm_type_ui_base = {.abi = CRM_ABI_VERSION, .type = "ui_base"};
const crm_node_type crm_type_ui_tab = {.abi = CRM_ABI_VERSION, .type = "ui_tab"};
const crm_node_type crm_type_ui_group = {.abi = CRM_ABI_VERSION, .type = "ui_group"};
const crm_node_type crm_type_ui_spacer = {.abi = CRM_ABI_VERSION, .type = "ui_spacer"};
