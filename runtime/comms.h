/* comms.h: the editor's /comms WebSocket (comms.c), as Node-RED 4.1.15's
 * editor-api comms and runtime api comms: every connection gets every
 * message published ([{topic, data}, ...] arrays), a subscribe only replays
 * the retained messages its topic matches (MQTT-like + and /#), "hb" every
 * webSocketKeepAliveTime (15 s), {"auth": token} when adminAuth is on.
 * Publishing takes a lock briefly and wakes the comms thread, which does all
 * the socket I/O: loop threads never wait on a client. Internal: not part of
 * the plugin API. */
#ifndef CRM_COMMS_H
#define CRM_COMMS_H

#include <stdbool.h>

#include "carmine.h"

struct crm_runtime;
typedef struct crm_comms crm_comms;

/* Listens on httpAdminRoot + "comms" (unless the admin API is off or
 * disableEditor is set). NULL when not listening. */
crm_comms *crm_comms_start(struct crm_runtime *rt);
/* Closes the connections and stops the thread. NULL is fine. */
void crm_comms_free(crm_comms *c);
/* data stolen. retain: kept for later subscribers (a NULL data removes it). */
void crm_comms_publish(crm_comms *c, const char *topic, json_t *data, bool retain);

/* For nodes. Whether an editor is connected (to skip encoding work). */
bool crm_comms_wanted(crm_node *n);
/* The debug node's sidebar message: value (borrowed, NULL: undefined) is
 * msg's shown property (property NULL: the whole message or an
 * expression), encoded as RED.util.encodeObject does (maxLength
 * debugMaxLength, 1000). */
void crm_comms_debug(crm_node *n, const json_t *msg, const char *property, const json_t *value);
/* A node's warning or error as the debug sidebar shows it (Node-RED's
 * debug node forwards WARN and ERROR log entries): {level 30|20, id, type,
 * msg, _alias?, z?, name?, path, format}. Any thread. */
void crm_comms_log(const crm_node *n, crm_log_level lvl, const char *text);
/* The same for an Error (Node-RED's node.error(err) with an Error object):
 * shown as encodeObject shows one (format "error"), with extra's code,
 * cause and stack (borrowed, may be NULL). */
void crm_comms_log_error(const crm_node *n, crm_log_level lvl, const char *text, const json_t *extra);
/* status/<id> as Node-RED publishes a node's status (retained). */
void crm_comms_status(crm_node *n, const json_t *status);

/* nodes/debug.c: POST /debug/:id/enable|disable (any thread; other node
 * types are left alone, as Node-RED's flag on them has no effect). */
void crm_debug_set_active(crm_node *n, bool on);

#endif
