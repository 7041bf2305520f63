/* mqtt_codec.c: see mqtt_codec.h. */
#include "mqtt_codec.h"

#include <stdlib.h>
#include <string.h>

#include "value.h"

/* Low-level ------------------------------------------------------------------ */

int mqtt_varint_put(unsigned char out[4], uint32_t v)
{
    int n = 0;
    do {
        unsigned char b = v & 0x7F;
        v >>= 7;
        if (v) b |= 0x80;
        out[n++] = b;
    } while (v && n < 4);
    return n;
}

int mqtt_varint_get(const unsigned char *p, size_t len, uint32_t *v)
{
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        if ((size_t)i >= len) return 0;
        r |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return -1;
}

static void put_varint(strbuf *o, uint32_t v)
{
    unsigned char b[4];
    sb_putn(o, (const char *)b, (size_t)mqtt_varint_put(b, v));
}

static void put16(strbuf *o, unsigned v)
{
    char b[2] = {(char)(v >> 8), (char)(v & 0xFF)};
    sb_putn(o, b, 2);
}

static void put32(strbuf *o, uint32_t v)
{
    char b[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    sb_putn(o, b, 4);
}

/* A length-prefixed string / binary (at most 65535 bytes: longer is cut). */
static void put_bin(strbuf *o, const void *s, size_t len)
{
    if (len > 65535) len = 65535;
    put16(o, (unsigned)len);
    sb_putn(o, s, len);
}

static void put_str(strbuf *o, const char *s) { put_bin(o, s, strlen(s)); }

/* The fixed header for a body of len bytes. */
static void put_header(strbuf *o, int type, int flags, size_t len)
{
    sb_putc(o, (char)((type << 4) | flags));
    put_varint(o, (uint32_t)len);
}

/* Properties ------------------------------------------------------------------ */

enum { P_BYTE, P_BOOL, P_INT16, P_INT32, P_VARINT, P_STRING, P_BINARY, P_PAIR };

typedef struct {
    int id, kind;
    const char *name;
    unsigned ctx; /* bit per MQTT_PROPS_* the client may send it in */
} prop_def;

#define C (1u << MQTT_PROPS_CONNECT)
#define W (1u << MQTT_PROPS_WILL)
#define P (1u << MQTT_PROPS_PUBLISH)
static const prop_def props[] = {
    {0x01, P_BOOL, "payloadFormatIndicator", W | P},
    {0x02, P_INT32, "messageExpiryInterval", W | P},
    {0x03, P_STRING, "contentType", W | P},
    {0x08, P_STRING, "responseTopic", W | P},
    {0x09, P_BINARY, "correlationData", W | P},
    {0x0B, P_VARINT, "subscriptionIdentifier", 0},
    {0x11, P_INT32, "sessionExpiryInterval", C},
    {0x12, P_STRING, "assignedClientIdentifier", 0},
    {0x13, P_INT16, "serverKeepAlive", 0},
    {0x15, P_STRING, "authenticationMethod", C},
    {0x16, P_BINARY, "authenticationData", C},
    {0x17, P_BOOL, "requestProblemInformation", C},
    {0x18, P_INT32, "willDelayInterval", W},
    {0x19, P_BOOL, "requestResponseInformation", C},
    {0x1A, P_STRING, "responseInformation", 0},
    {0x1C, P_STRING, "serverReference", 0},
    {0x1F, P_STRING, "reasonString", 0},
    {0x21, P_INT16, "receiveMaximum", C},
    {0x22, P_INT16, "topicAliasMaximum", C},
    {0x23, P_INT16, "topicAlias", P},
    {0x24, P_BYTE, "maximumQoS", 0},
    {0x25, P_BOOL, "retainAvailable", 0},
    {0x26, P_PAIR, "userProperties", C | W | P},
    {0x27, P_INT32, "maximumPacketSize", C},
    {0x28, P_BOOL, "wildcardSubscriptionAvailable", 0},
    {0x29, P_BOOL, "subscriptionIdentifiersAvailable", 0},
    {0x2A, P_BOOL, "sharedSubscriptionAvailable", 0},
};
#undef C
#undef W
#undef P
#define NPROPS (sizeof props / sizeof *props)

/* A number, or a string parseInt reads (setIntProp); -1 when neither. */
static double int_of(const json_t *v)
{
    if (crm_is_num(v)) return crm_num_value(v);
    if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        while (*s == ' ' || *s == '\t' || *s == '\n') s++;
        double d = (double)strtoll(s, &end, 10);
        if (end != s) return d;
    }
    return -1;
}

static void put_pair(strbuf *o, const char *k, const char *v)
{
    sb_putc(o, 0x26);
    put_str(o, k);
    put_str(o, v);
}

static void encode_one(strbuf *b, const prop_def *d, const json_t *v)
{
    switch (d->kind) {
    case P_BOOL:
        if (json_is_boolean(v) || (json_is_string(v) && (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false")))) {
            sb_putc(b, (char)d->id);
            sb_putc(b, json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), "true")) ? 1 : 0);
        }
        break;
    case P_BYTE:
    case P_INT16:
    case P_INT32:
    case P_VARINT: {
        double n = int_of(v);
        double max = d->kind == P_BYTE ? 255 : d->kind == P_INT16 ? 65535 : d->kind == P_INT32 ? 4294967295.0 : 268435455;
        if (n < 0 || n > max || n != n) break;
        sb_putc(b, (char)d->id);
        if (d->kind == P_BYTE) sb_putc(b, (char)(unsigned)n);
        else if (d->kind == P_INT16) put16(b, (unsigned)n);
        else if (d->kind == P_INT32) put32(b, (uint32_t)n);
        else put_varint(b, (uint32_t)n);
        break;
    }
    case P_STRING:
        if (json_is_string(v) && json_string_length(v)) {
            sb_putc(b, (char)d->id);
            put_bin(b, json_string_value(v), json_string_length(v));
        }
        break;
    case P_BINARY: {
        size_t len = 0;
        const unsigned char *data = crm_is_buf(v) ? crm_buf_data(v, &len) : NULL;
        if (!data && json_is_string(v)) data = (const unsigned char *)json_string_value(v), len = json_string_length(v);
        if (data && len <= 65535) {
            sb_putc(b, (char)d->id);
            put_bin(b, data, len);
        }
        break;
    }
    case P_PAIR:
        if (json_is_object(v)) {
            const char *k;
            json_t *s;
            json_object_foreach((json_t *)v, k, s) {
                if (json_is_string(s)) put_pair(b, k, json_string_value(s));
                else if (json_is_array(s)) { /* MQTT.js: an array sends the name once per value */
                    size_t i;
                    json_t *e;
                    json_array_foreach(s, i, e) if (json_is_string(e)) put_pair(b, k, json_string_value(e));
                }
            }
        }
        break;
    }
}

void mqtt_props_encode(strbuf *out, const json_t *p, int ctx)
{
    strbuf b = SB_INIT;
    if (json_is_object(p))
        for (size_t i = 0; i < NPROPS; i++) {
            if (!(props[i].ctx & (1u << ctx))) continue;
            const json_t *v = json_object_get(p, props[i].name);
            if (v) encode_one(&b, &props[i], v);
        }
    put_varint(out, (uint32_t)b.len);
    if (b.len) sb_putn(out, b.data, b.len);
    sb_free(&b);
}

static uint32_t get16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

json_t *mqtt_props_decode(const unsigned char *p, size_t len, uint32_t *subids, int *nsubids, int max, bool *bad)
{
    json_t *o = NULL, *up = NULL;
    size_t i = 0;
    *bad = false;
    if (nsubids) *nsubids = 0;
    while (i < len) {
        int id = p[i++];
        const prop_def *d = NULL;
        for (size_t k = 0; k < NPROPS; k++)
            if (props[k].id == id) d = &props[k];
        if (!d) goto fail;
        if (!o) o = json_object();
        size_t left = len - i;
        switch (d->kind) {
        case P_BYTE:
        case P_BOOL:
            if (left < 1) goto fail;
            json_object_set_new(o, d->name, d->kind == P_BOOL ? json_boolean(p[i]) : crm_num(p[i]));
            i += 1;
            break;
        case P_INT16:
            if (left < 2) goto fail;
            json_object_set_new(o, d->name, crm_num(get16(p + i)));
            i += 2;
            break;
        case P_INT32:
            if (left < 4) goto fail;
            json_object_set_new(o, d->name, crm_num(get32(p + i)));
            i += 4;
            break;
        case P_VARINT: {
            uint32_t v;
            int n = mqtt_varint_get(p + i, left, &v);
            if (n <= 0) goto fail;
            i += (size_t)n;
            if (subids) {
                if (*nsubids < max) subids[(*nsubids)++] = v;
            } else
                json_object_set_new(o, d->name, crm_num(v));
            break;
        }
        case P_STRING:
        case P_BINARY: {
            if (left < 2 || left - 2 < get16(p + i)) goto fail;
            size_t n = get16(p + i);
            i += 2;
            if (d->kind == P_BINARY) json_object_set_new(o, d->name, crm_buf_new(p + i, n));
            else json_object_set_new(o, d->name, json_stringn((const char *)p + i, n));
            i += n;
            break;
        }
        case P_PAIR: {
            if (left < 2 || left - 2 < get16(p + i)) goto fail;
            size_t kn = get16(p + i);
            const char *k = (const char *)p + i + 2;
            i += 2 + kn;
            left = len - i;
            if (left < 2 || left - 2 < get16(p + i)) goto fail;
            size_t vn = get16(p + i);
            json_t *val = json_stringn((const char *)p + i + 2, vn);
            i += 2 + vn;
            if (!val) goto fail; /* not UTF-8 */
            char *key = strndup(k, kn);
            if (!up) up = json_object();
            json_t *old = json_object_get(up, key);
            if (!old) json_object_set_new(up, key, val);
            else if (json_is_array(old)) json_array_append_new(old, val);
            else json_object_set_new(up, key, json_pack("[Oo]", old, val));
            free(key);
            break;
        }
        }
    }
    if (up) json_object_set_new(o, "userProperties", up);
    return o;
fail:
    *bad = true;
    json_decref(up);
    json_decref(o);
    return NULL;
}

/* Encoders --------------------------------------------------------------------- */

void mqtt_enc_connect(strbuf *out, const mqtt_connect *c)
{
    strbuf b = SB_INIT;
    if (c->version == 3) {
        put_str(&b, "MQIsdp");
        sb_putc(&b, 3);
    } else {
        put_str(&b, "MQTT");
        sb_putc(&b, (char)(c->version == 5 ? 5 : 4));
    }
    int flags = c->clean ? 0x02 : 0;
    if (c->will_topic) flags |= 0x04 | (c->will_qos & 3) << 3 | (c->will_retain ? 0x20 : 0);
    if (c->password) flags |= 0x40;
    if (c->username) flags |= 0x80;
    sb_putc(&b, (char)flags);
    put16(&b, (unsigned)c->keepalive);
    if (c->version == 5) mqtt_props_encode(&b, c->props, MQTT_PROPS_CONNECT);
    put_str(&b, c->client_id ? c->client_id : "");
    if (c->will_topic) {
        if (c->version == 5) mqtt_props_encode(&b, c->will_props, MQTT_PROPS_WILL);
        put_str(&b, c->will_topic);
        put_bin(&b, c->will_payload, c->will_len);
    }
    if (c->username) put_str(&b, c->username);
    if (c->password) put_str(&b, c->password);
    put_header(out, MQTT_CONNECT, 0, b.len);
    sb_putn(out, b.data, b.len);
    sb_free(&b);
}

void mqtt_enc_publish(strbuf *out, int version, const char *topic, size_t tlen, const void *payload, size_t len,
                      int qos, bool retain, bool dup, uint16_t id, const strbuf *props)
{
    size_t plen = version == 5 ? (props && props->len ? props->len : 1) : 0;
    size_t body = 2 + tlen + (qos ? 2 : 0) + plen + len;
    put_header(out, MQTT_PUBLISH, (dup ? 8 : 0) | (qos & 3) << 1 | (retain ? 1 : 0), body);
    put16(out, (unsigned)tlen);
    sb_putn(out, topic, tlen);
    if (qos) put16(out, id);
    if (version == 5) {
        if (props && props->len) sb_putn(out, props->data, props->len);
        else sb_putc(out, 0);
    }
    if (len) sb_putn(out, payload, len);
}

void mqtt_enc_ack(strbuf *out, int type, uint16_t id)
{
    sb_putc(out, (char)(type << 4 | (type == MQTT_PUBREL ? 2 : 0)));
    sb_putc(out, 2);
    put16(out, id);
}

void mqtt_enc_subscribe(strbuf *out, int version, uint16_t id, const char *filter, int options, uint32_t subid)
{
    strbuf b = SB_INIT;
    put16(&b, id);
    if (version == 5) {
        if (subid) {
            unsigned char v[4];
            int n = mqtt_varint_put(v, subid);
            put_varint(&b, (uint32_t)(1 + n));
            sb_putc(&b, 0x0B);
            sb_putn(&b, (const char *)v, (size_t)n);
        } else
            sb_putc(&b, 0);
    }
    put_str(&b, filter);
    sb_putc(&b, (char)(version == 5 ? options : options & 3));
    put_header(out, MQTT_SUBSCRIBE, 2, b.len);
    sb_putn(out, b.data, b.len);
    sb_free(&b);
}

void mqtt_enc_unsubscribe(strbuf *out, int version, uint16_t id, const char *filter)
{
    size_t fl = strlen(filter);
    if (fl > 65535) fl = 65535;
    put_header(out, MQTT_UNSUBSCRIBE, 2, 2 + (version == 5 ? 1 : 0) + 2 + fl);
    put16(out, id);
    if (version == 5) sb_putc(out, 0);
    put_bin(out, filter, fl);
}

void mqtt_enc_simple(strbuf *out, int type)
{
    sb_putc(out, (char)(type << 4));
    sb_putc(out, 0);
}

/* Decoders ----------------------------------------------------------------------- */

long mqtt_frame(const unsigned char *buf, size_t len, size_t max, mqtt_packet *p)
{
    if (len < 2) return 0;
    uint32_t rl;
    int n = mqtt_varint_get(buf + 1, len - 1, &rl);
    if (n < 0) return -1;
    if (n == 0) return 0;
    size_t total = 1 + (size_t)n + rl;
    if (total > max) return -1;
    if (len < total) return 0;
    p->type = buf[0] >> 4;
    p->flags = buf[0] & 0x0F;
    p->body = buf + 1 + n;
    p->len = rl;
    return (long)total;
}

/* Reads a v5 properties block at *i: its bytes and length. */
static int read_props(const unsigned char *b, size_t len, size_t *i, const unsigned char **props, size_t *plen)
{
    uint32_t pl;
    int n = mqtt_varint_get(b + *i, len - *i, &pl);
    if (n <= 0 || len - *i - (size_t)n < pl) return -1;
    *props = b + *i + n;
    *plen = pl;
    *i += (size_t)n + pl;
    return 0;
}

int mqtt_dec_publish(const mqtt_packet *p, int version, mqtt_publish *o)
{
    const unsigned char *b = p->body;
    size_t len = p->len, i = 0;
    memset(o, 0, sizeof *o);
    o->qos = (p->flags >> 1) & 3;
    o->retain = p->flags & 1;
    o->dup = p->flags & 8;
    if (o->qos == 3 || len < 2) return -1;
    o->tlen = get16(b);
    if (len - 2 < o->tlen) return -1;
    o->topic = (const char *)b + 2;
    i = 2 + o->tlen;
    if (o->qos) {
        if (len - i < 2) return -1;
        o->id = (uint16_t)get16(b + i);
        i += 2;
    }
    if (version == 5 && read_props(b, len, &i, &o->props, &o->plen) < 0) return -1;
    o->payload = b + i;
    o->len = len - i;
    return 0;
}

int mqtt_dec_connack(const mqtt_packet *p, int version, bool *session, int *rc, const unsigned char **props, size_t *plen)
{
    *props = NULL;
    *plen = 0;
    if (p->len < 2) return -1;
    *session = p->body[0] & 1;
    *rc = p->body[1];
    size_t i = 2;
    if (version == 5 && p->len > 2 && read_props(p->body, p->len, &i, props, plen) < 0) return -1;
    return 0;
}

int mqtt_dec_ack(const mqtt_packet *p, int version, uint16_t *id, int *reason)
{
    if (p->len < 2) return -1;
    *id = (uint16_t)get16(p->body);
    *reason = 0;
    size_t i = 2;
    if (p->type == MQTT_SUBACK || (p->type == MQTT_UNSUBACK && version == 5)) {
        const unsigned char *pp;
        size_t pl;
        if (version == 5 && read_props(p->body, p->len, &i, &pp, &pl) < 0) return -1;
        if (i < p->len) *reason = p->body[i];
    } else if (p->len > 2)
        *reason = p->body[2];
    return 0;
}

int mqtt_dec_disconnect(const mqtt_packet *p, int *reason)
{
    *reason = p->len ? p->body[0] : 0;
    return 0;
}

const char *mqtt_reason_text(int rc)
{
    switch (rc) {
    case 0: return "Success";
    /* MQTT 3.1.1 CONNACK return codes */
    case 1: return "Connection refused: unacceptable protocol version";
    case 2: return "Connection refused: identifier rejected";
    case 3: return "Connection refused: server unavailable";
    case 4: return "Connection refused: bad user name or password";
    case 5: return "Connection refused: not authorised";
    /* v5 reason codes */
    case 0x80: return "Unspecified error";
    case 0x81: return "Malformed Packet";
    case 0x82: return "Protocol Error";
    case 0x83: return "Implementation specific error";
    case 0x84: return "Unsupported Protocol Version";
    case 0x85: return "Client Identifier not valid";
    case 0x86: return "Bad User Name or Password";
    case 0x87: return "Not authorized";
    case 0x88: return "Server unavailable";
    case 0x89: return "Server busy";
    case 0x8A: return "Banned";
    case 0x8B: return "Server shutting down";
    case 0x8C: return "Bad authentication method";
    case 0x8D: return "Keep Alive timeout";
    case 0x8E: return "Session taken over";
    case 0x8F: return "Topic Filter invalid";
    case 0x90: return "Topic Name invalid";
    case 0x93: return "Receive Maximum exceeded";
    case 0x95: return "Packet too large";
    case 0x97: return "Quota exceeded";
    case 0x99: return "Payload format invalid";
    case 0x9A: return "Retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "Use another server";
    case 0x9D: return "Server moved";
    case 0x9E: return "Shared Subscriptions not supported";
    case 0x9F: return "Connection rate exceeded";
    case 0xA1: return "Subscription Identifiers not supported";
    case 0xA2: return "Wildcard Subscriptions not supported";
    default: return "Unknown reason";
    }
}
