/* mqtt_codec.h: MQTT 3.1, 3.1.1 and 5 packets encoded into and decoded from
 * buffers, without I/O (so it can be unit tested and fuzzed).
 *
 * Encoders append one whole packet to a strbuf. The decoder first frames a
 * packet (fixed header and remaining length) out of the bytes received so
 * far; the per-type decoders then read its body in place (pointers into the
 * received bytes, valid until they are consumed). v5 properties cross as
 * JSON objects with the names MQTT.js (and so Node-RED) gives them:
 * responseTopic, correlationData (a Buffer), contentType,
 * messageExpiryInterval, payloadFormatIndicator (boolean), userProperties
 * (an object of strings), willDelayInterval, sessionExpiryInterval,
 * receiveMaximum, maximumPacketSize, topicAliasMaximum,
 * requestResponseInformation, requestProblemInformation, reasonString,
 * serverKeepAlive, assignedClientIdentifier, ...
 * Protocol versions are the CONNECT's level: 3 (3.1), 4 (3.1.1), 5.
 */
#ifndef CRM_MQTT_CODEC_H
#define CRM_MQTT_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

enum {
    MQTT_CONNECT = 1, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
    MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE, MQTT_UNSUBACK, MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT,
    MQTT_AUTH
};

/* Property contexts: which properties a packet may carry. */
enum { MQTT_PROPS_CONNECT, MQTT_PROPS_WILL, MQTT_PROPS_PUBLISH };

/* Appends v5 properties (their length first) from a JSON object with
 * MQTT.js's names, those allowed in ctx; NULL or {}: a zero length. */
void mqtt_props_encode(strbuf *out, const json_t *props, int ctx);
/* Decodes a properties block (without its length). NULL when there are
 * none; *bad set when the block is malformed. Subscription identifiers go
 * to subids (at most max, count in *nsubids; subids NULL: into the object
 * as subscriptionIdentifier). Repeated user properties are kept as an array. */
json_t *mqtt_props_decode(const unsigned char *p, size_t len, uint32_t *subids, int *nsubids, int max, bool *bad);

/* CONNECT ------------------------------------------------------------------- */
typedef struct mqtt_connect {
    int version; /* 3, 4, 5 */
    const char *client_id;
    int keepalive;
    bool clean;
    const char *username, *password; /* NULL: none */
    const json_t *props;             /* v5 CONNECT properties */
    const char *will_topic;          /* NULL: no will */
    const void *will_payload;
    size_t will_len;
    int will_qos;
    bool will_retain;
    const json_t *will_props;
} mqtt_connect;
void mqtt_enc_connect(strbuf *out, const mqtt_connect *c);

/* PUBLISH: props is an encoded properties block (mqtt_props_encode), NULL
 * for none (v5 then gets a zero length; ignored before v5). */
void mqtt_enc_publish(strbuf *out, int version, const char *topic, size_t tlen, const void *payload, size_t len,
                      int qos, bool retain, bool dup, uint16_t id, const strbuf *props);
/* PUBACK, PUBREC, PUBREL, PUBCOMP with reason 0 (success). */
void mqtt_enc_ack(strbuf *out, int type, uint16_t id);
/* SUBSCRIBE one filter: options as the v5 byte (qos | nl<<2 | rap<<3 | rh<<4,
 * only qos before v5); subid > 0: a subscription identifier (v5). */
void mqtt_enc_subscribe(strbuf *out, int version, uint16_t id, const char *filter, int options, uint32_t subid);
void mqtt_enc_unsubscribe(strbuf *out, int version, uint16_t id, const char *filter);
/* PINGREQ, or DISCONNECT with reason 0. */
void mqtt_enc_simple(strbuf *out, int type);

/* Decoding ------------------------------------------------------------------ */
typedef struct mqtt_packet {
    int type, flags;
    const unsigned char *body; /* the remaining length's bytes */
    size_t len;
} mqtt_packet;

/* Frames the packet at buf: its whole size (> 0), 0 when more bytes are
 * needed, -1 when malformed or larger than max bytes. */
long mqtt_frame(const unsigned char *buf, size_t len, size_t max, mqtt_packet *p);

typedef struct mqtt_publish {
    const char *topic; /* not NUL-terminated */
    size_t tlen;
    int qos;
    bool retain, dup;
    uint16_t id;
    const unsigned char *props; /* v5 properties block (without its length) */
    size_t plen;
    const unsigned char *payload;
    size_t len;
} mqtt_publish;
/* 0, or -1 when malformed. */
int mqtt_dec_publish(const mqtt_packet *p, int version, mqtt_publish *out);
/* CONNACK: session present, the return / reason code, v5 properties. */
int mqtt_dec_connack(const mqtt_packet *p, int version, bool *session, int *rc, const unsigned char **props,
                     size_t *plen);
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK: the packet id and the
 * first reason code (0 when absent; SUBACK: the granted QoS or >= 0x80). */
int mqtt_dec_ack(const mqtt_packet *p, int version, uint16_t *id, int *reason);
/* DISCONNECT from the server (v5): its reason code (0 when absent). */
int mqtt_dec_disconnect(const mqtt_packet *p, int *reason);

/* Variable byte integers (remaining length, properties): bytes written to
 * out (1-4); decoding returns the bytes read, 0 when more are needed, -1
 * when longer than 4 bytes. */
int mqtt_varint_put(unsigned char out[4], uint32_t v);
int mqtt_varint_get(const unsigned char *p, size_t len, uint32_t *v);

/* A v5 / 3.1.1 reason or return code in words. */
const char *mqtt_reason_text(int rc);

#endif
