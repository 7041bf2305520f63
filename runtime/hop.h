/* hop.h: internal (not part of the plugin API) entry points for built-in
 * nodes on the per-message path. One walk over a small message finds the
 * member a node reads or replaces and whether the message carries a _msgid,
 * and the send takes that answer instead of hashing "_msgid" again: each
 * lookup by name hashes the key (about 130 instructions in jansson), a walk
 * over a message of three members costs about 220, less than the two
 * lookups it replaces. */
#ifndef CRM_HOP_H
#define CRM_HOP_H

#include "carmine.h"

/* Messages of more members are not walked: two lookups by name are cheaper. */
#define CRM_WALK_MAX 8

/* Whether p is one plain name (msg.payload, msg["a b"]), with that name. */
bool crm_path_one_name(const crm_path *p, const char **name, size_t *len);

/* Whether p starts with a plain name (msg.a.b: a), with that name. */
bool crm_path_first_name(const crm_path *p, const char **name, size_t *len);

/* For a plain object msg of at most CRM_WALK_MAX members (not a Buffer or
 * a handle): true, with *it the iterator of its member called name (NULL
 * when it has none; name may be NULL) and *has_id whether msg._msgid is
 * truthy, as the send asks. false when msg was not walked: ask by name. */
bool crm_msg_walk(json_t *msg, const char *name, size_t len, void **it, bool *has_id);

/* crm_node_send for a message whose _msgid the caller knows to be truthy
 * (has_id, found by crm_msg_walk and not changed since) or not. */
void crm_node_send_known(crm_node *n, int port, json_t *msg, bool has_id);

/* crm_node_send_ports where every non-NULL entry of msgs is one and the same
 * message (one reference each), whose _msgid truthiness is has_id. */
void crm_node_send_same(crm_node *n, json_t **msgs, int nports, bool has_id);

#endif
