/* mqtt.h: Carmine's MQTT client (issue 17), libmosquitto driven by a node's
 * event loop.
 *
 * One crm_mqtt is one connection to one broker, owned by one node (the
 * mqtt-broker config node) and touched only on that node's loop thread:
 * every function here must be called there, and every handler runs there.
 * libmosquitto never gets a thread of its own (no mosquitto_loop_start): its
 * socket is watched with crm_watch_fd (POLLIN, plus POLLOUT while
 * mosquitto_want_write()), and a one-second crm timer runs
 * mosquitto_loop_misc() (keepalive pings). Connecting is asynchronous
 * (mosquitto_connect_bind_async); only the name lookup of a host that is not
 * an address may block the loop, as getaddrinfo does.
 *
 * Reconnecting: after a lost connection or a failed attempt the client tries
 * again every reconnect_ms (Node-RED: settings.mqttReconnectTime, 5000), as
 * MQTT.js does, until crm_mqtt_disconnect().
 *
 * MQTT v5 properties cross this interface as JSON objects with the names
 * Node-RED uses on messages: responseTopic, correlationData (a Buffer),
 * contentType, messageExpiryInterval, payloadFormatIndicator, userProperties
 * (an object of strings), willDelayInterval (wills), reasonString.
 * libmosquitto itself is loaded with dlopen on first use (mosq_shim.c).
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
     * rc: libmosquitto's reason (0 for a clean disconnect). */
    void (*state)(void *arg, crm_mqtt_state st, int rc);
    void (*message)(void *arg, const crm_mqtt_message *m);
    /* After the messages of one read burst: hand them on in a batch. */
    void (*burst_end)(void *arg);
} crm_mqtt_handlers;

/* Whether libmosquitto could be loaded. Any thread. */
bool crm_mqtt_available(void);

/* A new client for owner's loop (nothing is sent yet). Options are copied.
 * NULL with *err (malloc'd) when libmosquitto is missing or refuses them. */
crm_mqtt *crm_mqtt_new(crm_node *owner, const crm_mqtt_options *o, const crm_mqtt_handlers *h, void *arg, char **err);
/* Starts connecting (asynchronously) unless connected or connecting. */
void crm_mqtt_connect(crm_mqtt *c);
/* Disconnects cleanly (DISCONNECT sent after what is queued) and stops
 * reconnecting; the handler sees DISCONNECTED when a connection was up. */
void crm_mqtt_disconnect(crm_mqtt *c);
crm_mqtt_state crm_mqtt_get_state(const crm_mqtt *c);
/* Whether the server accepted the connection as MQTT v5. */
bool crm_mqtt_v5(const crm_mqtt *c);
/* PUBLISH; props (borrowed) ignored before v5. 0, or a libmosquitto error
 * (crm_mqtt_strerror) when not connected or the arguments are refused. */
int crm_mqtt_publish(crm_mqtt *c, const char *topic, const void *payload, size_t len, int qos, bool retain,
                     const json_t *props);
/* SUBSCRIBE one filter. v5 only: nl, rap, rh (0..2) and subid (> 0: the
 * subscription identifier). 0 or a libmosquitto error. */
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
