/* passthrough.h: the input handler shared by the nodes that send every
 * message on unchanged (junction, link in, catch, status, complete). */
#ifndef CRM_PASSTHROUGH_H
#define CRM_PASSTHROUGH_H
#include "carmine.h"

static inline void crm_passthrough_input(crm_node *n, json_t *msg)
{
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}
#endif
