/* link.h: what link out (return mode) needs from link call. */
#ifndef CRM_LINK_H
#define CRM_LINK_H
#include "carmine.h"

/* Hands msg (stolen) back to the link call node `call` for the call event_id,
 * from the link out `from`: at once when both share a flow (so a loop),
 * else posted to call's own loop. msg stays valid until from's handler
 * returns. */
void crm_link_call_return(crm_node *from, crm_node *call, const char *event_id, json_t *msg);
#endif
