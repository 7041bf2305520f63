/* mqtt_broker.h: between the mqtt-broker config node (mqtt_broker.c) and
 * its mqtt in / mqtt out nodes.
 *
 * The broker node owns one connection (runtime/mqtt/mqtt.h), touched only on
 * the broker node's loop. Its users may run on other loops (other tabs), so
 * everything crossing between them goes through mailboxes: a mailbox holds
 * items for one target node and posts one drain job to the target's loop
 * however many items arrive before it runs (messages reach an mqtt in node
 * in batches, publishes reach the broker in batches).
 */
#ifndef MQTT_BROKER_H
#define MQTT_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carmine.h"

/* Mailboxes ----------------------------------------------------------------- */

/* An item starts with this header (the mailbox links items through it). */
typedef struct mqtt_item {
    struct mqtt_item *next;
} mqtt_item;

typedef struct mqtt_box mqtt_box;
/* Runs on the target's loop for each item, in order; it frees the item. */
typedef void (*mqtt_box_fn)(crm_node *target, mqtt_item *it, void *ctx);

/* A mailbox for target; free_item frees an item never handled. One
 * reference, the creator's. */
mqtt_box *mqtt_box_new(crm_node *target, mqtt_box_fn fn, void (*free_item)(mqtt_item *), void *ctx);
/* Adds an item (any thread) and posts a drain unless one is pending. */
void mqtt_box_put(mqtt_box *b, mqtt_item *it);
/* Adds without posting; mqtt_box_kick() posts later (a read burst). Returns
 * whether the box had nothing waiting for a kick before. */
bool mqtt_box_put_quiet(mqtt_box *b, mqtt_item *it);
void mqtt_box_kick(mqtt_box *b);
void mqtt_box_ref(mqtt_box *b);
/* Drops a reference; the last one frees the box and what it still holds. */
void mqtt_box_unref(mqtt_box *b);
/* No more drains are handled (the target closes). Any thread. */
void mqtt_box_close(mqtt_box *b);

/* The connection ---------------------------------------------------------------- */

typedef struct mqtt_conn mqtt_conn;

/* Payload datatypes of mqtt in (Node-RED's datatype option). */
typedef enum { MQTT_DT_AUTO_DETECT, MQTT_DT_AUTO, MQTT_DT_BUFFER, MQTT_DT_UTF8, MQTT_DT_JSON, MQTT_DT_BASE64 } mqtt_datatype;
mqtt_datatype mqtt_datatype_of(const char *s);

/* A message delivered to an mqtt in node's mailbox: one allocation, the
 * topic (NUL-terminated) and the payload in data[] after the struct. */
typedef struct mqtt_rx {
    mqtt_item hdr;
    char *topic;            /* into data */
    unsigned char *payload; /* into data */
    size_t len;
    int qos;
    bool retain;
    mqtt_datatype dt;
    json_t *props; /* v5 properties (owned) or NULL */
    unsigned char data[];
} mqtt_rx;
void mqtt_rx_free(mqtt_item *it);

/* The broker node with this id, from a user's create() (NULL when missing). */
mqtt_conn *mqtt_conn_find(crm_node *from, const char *broker_id);
/* Fixed at create: any thread. */
bool mqtt_conn_v5(const mqtt_conn *c);
bool mqtt_conn_local(const mqtt_conn *c); /* broker "localhost" or "127.0.0.1": msg._topic */
/* The server's Topic Alias Maximum from the last CONNACK (v5), any thread. */
int mqtt_conn_alias_max(const mqtt_conn *c);
/* Last known state (crm_mqtt_state), any thread. */
int mqtt_conn_state(const mqtt_conn *c);

/* A user node: registered from its create() (before any loop runs). inbox:
 * an mqtt in node's mailbox (NULL for mqtt out). The broker connects when
 * it starts if it has users and autoConnect. */
void mqtt_conn_register(mqtt_conn *c, crm_node *user, mqtt_box *inbox);

/* Subscription of a user: from create() (static topic) or the user's loop
 * (dynamic). Replaces the user's earlier subscription to the same filter. */
typedef struct mqtt_sub_req {
    const char *filter;
    int qos; /* -1: none given (SUBSCRIBE gets 0) */
    bool nl, rap;
    int rh;
    mqtt_datatype dt;
} mqtt_sub_req;
void mqtt_conn_subscribe_now(mqtt_conn *c, crm_node *user, const mqtt_sub_req *r); /* create() only */
void mqtt_conn_subscribe(mqtt_conn *c, crm_node *user, const mqtt_sub_req *r);     /* any thread */
void mqtt_conn_unsubscribe(mqtt_conn *c, crm_node *user, const char *filter);      /* any thread */

/* A publish from a user's loop: everything owned by the item, which is one
 * allocation (mqtt_tx_new): the topic and the payload live in data[]. */
typedef struct mqtt_tx {
    mqtt_item hdr;
    char *topic;            /* into data, NUL-terminated */
    unsigned char *payload; /* into data */
    size_t len;
    int qos;
    bool retain;
    json_t *props;
    unsigned char data[];
} mqtt_tx;
/* A publish item with the topic and len bytes of payload copied in. */
mqtt_tx *mqtt_tx_new(const char *topic, const void *payload, size_t len);
void mqtt_tx_free(mqtt_item *it);
/* The mailbox a user publishes through (one per user; owned by the user,
 * who unrefs it on close). */
mqtt_box *mqtt_conn_outbox(mqtt_conn *c, crm_node *user);

/* The connect / disconnect actions (msg.action), from a user's loop. opts:
 * msg.broker of a connect (borrowed, copied; NULL: none): broker, port,
 * clientid, username, password, keepalive, cleansession, protocolVersion,
 * usetls, birth / close / will ({topic, payload, qos, retain}) replace the
 * config node's before connecting, as Node-RED's setOptions does. */
void mqtt_conn_action(mqtt_conn *c, crm_node *user, bool connect, const json_t *opts);

#endif
