/* mqtt.h: Carmine's MQTT client (issue 17): MQTT 3.1, 3.1.1 and 5 on a
 * node's event loop, with Carmine's own codec (mqtt_codec.h) over
 * runtime/net's connections: TCP, TLS (GnuTLS, tcpconn.h) and WebSocket
 * (ws:// and wss://, websocket.h).
 *
 * One crm_mqtt is one connection to one broker, owned by one node (the
 * mqtt-broker config node) and touched only on that node's loop thread:
 * every function here must be called there, and every handler runs there.
 * Reads take whatever the socket holds (many packets per read); what is
 * sent during one loop turn (publishes, acknowledgements) leaves in one
 * write at the turn's end. Only the name lookup of a host that is not an
 * address may block the loop, as getaddrinfo does.
 *
 * Session rules as MQTT.js (Node-RED's client) follows them: QoS 1 and 2
 * publishes stay in flight until acknowledged and are sent again (DUP) on
 * the next connection; at most the server's Receive Maximum are in flight
 * (the rest wait in order); QoS 2 messages arrive at PUBREL; PINGREQ after
 * keepalive seconds without sending, the connection dropped when the
 * PINGRESP does not come within keepalive seconds more.
 *
 * Reconnecting: after a lost connection or a failed attempt the client tries
 * again every reconnect_ms (Node-RED: settings.mqttReconnectTime, 5000), as
 * MQTT.js does, until crm_mqtt_disconnect().
 *
 * MQTT v5 properties cross this interface as JSON objects with the names
 * Node-RED uses on messages: responseTopic, correlationData (a Buffer),
 * contentType, messageExpiryInterval, payloadFormatIndicator, userProperties
 * (an object of strings), willDelayInterval (wills), reasonString; CONNECT's
 * as MQTT.js names them (sessionExpiryInterval, receiveMaximum,
 * requestResponseInformation, requestProblemInformation, userProperties...).
 */
#ifndef CRM_MQTT_H
#define CRM_MQTT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carmine.h"
#include "httpclient.h" /* crm_tls_options */

typedef struct crm_mqtt crm_mqtt;

typedef enum { CRM_MQTT_DISCONNECTED, CRM_MQTT_CONNECTING, CRM_MQTT_CONNECTED } crm_mqtt_state;

typedef struct crm_mqtt_options {
    const char *host;      /* name or address; "localhost" when NULL/"" */
    int port;              /* 1883 when 0 */
    const char *client_id; /* required */
    int keepalive;         /* seconds */
    bool clean;            /* clean session / clean start */
    int version;           /* 3 (MQTT 3.1), 4 (3.1.1) or 5 */
    const char *username, *password; /* NULL: none */
    bool tls;                        /* mqtts */
    const crm_tls_options *tls_opts; /* CA/cert/key; NULL: the system CAs */
    bool verify;                     /* verify the server certificate */
    /* the will (last will and testament); will_topic NULL: none */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
    const json_t *will_props; /* v5 properties (borrowed; may be NULL) */
    double reconnect_ms;      /* 5000 when 0 */
    const json_t *connect_props; /* v5 CONNECT properties (borrowed, copied) */
    const char *ws_path;         /* WebSocket transport (ws:// or, with tls, wss://) to this path; NULL: MQTT over TCP */
} crm_mqtt_options;

/* A received PUBLISH, valid during the message handler only. */
typedef struct crm_mqtt_message {
    const char *topic;
    const unsigned char *payload;
    size_t len;
    int qos;
    bool retain;
    const json_t *props;    /* v5 properties (borrowed), NULL without */
    const uint32_t *subids; /* v5 subscription identifiers carried */
    int nsubids;
} crm_mqtt_message;

typedef struct crm_mqtt_handlers {
    /* The connection changed state: CONNECTING (each attempt), CONNECTED
     * (CONNACK accepted), DISCONNECTED (a connection was lost or closed).
     * rc: a CRM_MQTT_ERR_* or reason code (0 for a clean disconnect). */
    void (*state)(void *arg, crm_mqtt_state st, int rc);
    void (*message)(void *arg, const crm_mqtt_message *m);
    /* After the messages of one read burst: hand them on in a batch. */
    void (*burst_end)(void *arg);
    /* An attempt failed (refused, lost or closed before its CONNACK) and no
     * connection has been up since crm_mqtt_connect: MQTT.js's 'close'
     * while Node-RED's broker node is still "connecting". */
    void (*connect_failed)(void *arg);
} crm_mqtt_handlers;

/* Errors of the functions below (crm_mqtt_strerror). */
enum { CRM_MQTT_ERR_NO_CONN = 1, CRM_MQTT_ERR_INVAL, CRM_MQTT_ERR_LOST, CRM_MQTT_ERR_PROTOCOL, CRM_MQTT_ERR_KEEPALIVE };

/* A new client for owner's loop (nothing is sent yet). Options are copied.
 * NULL with *err (malloc'd) when they are refused (TLS credentials). */
crm_mqtt *crm_mqtt_new(crm_node *owner, const crm_mqtt_options *o, const crm_mqtt_handlers *h, void *arg, char **err);
/* Starts connecting (asynchronously) unless connected or connecting. */
void crm_mqtt_connect(crm_mqtt *c);
/* Disconnects cleanly (DISCONNECT sent after what is queued) and stops
 * reconnecting; the handler sees DISCONNECTED when a connection was up. */
void crm_mqtt_disconnect(crm_mqtt *c);
crm_mqtt_state crm_mqtt_get_state(const crm_mqtt *c);
/* Whether the server accepted the connection as MQTT v5. */
bool crm_mqtt_v5(const crm_mqtt *c);
/* The Topic Alias Maximum of the server's CONNACK (0: none, or not v5). */
int crm_mqtt_topic_alias_max(const crm_mqtt *c);
/* PUBLISH; props (borrowed) ignored before v5. With v5 a topicAlias
 * property is sent, and topic may then be "" (the alias stands for it). 0, or a CRM_MQTT_ERR_*
 * (crm_mqtt_strerror) when not connected or the arguments are refused. */
int crm_mqtt_publish(crm_mqtt *c, const char *topic, const void *payload, size_t len, int qos, bool retain,
                     const json_t *props);
/* SUBSCRIBE one filter. v5 only: nl, rap, rh (0..2) and subid (> 0: the
 * subscription identifier). 0 or a CRM_MQTT_ERR_*. */
int crm_mqtt_subscribe(crm_mqtt *c, const char *filter, int qos, bool nl, bool rap, int rh, uint32_t subid);
int crm_mqtt_unsubscribe(crm_mqtt *c, const char *filter);
const char *crm_mqtt_strerror(int rc);
/* Disconnects (waiting at most wait_ms for queued packets to leave) and
 * frees. NULL is fine. */
void crm_mqtt_free(crm_mqtt *c, double wait_ms);

/* Does a topic filter (with + and #, and $share/NAME/ prefixes) match a
 * topic name? As Node-RED's matchTopic. Any thread. */
bool crm_mqtt_topic_match(const char *filter, const char *topic);
/* Node-RED's isValidSubscriptionTopic / isValidPublishTopic. Any thread. */
bool crm_mqtt_valid_filter(const char *filter);
bool crm_mqtt_valid_topic(const char *topic);

#endif
