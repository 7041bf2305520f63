/* test_mqtt_codec.c: runtime/mqtt/mqtt_codec.c, packets checked byte by
 * byte against the MQTT 3.1.1 and 5.0 specifications, and decoded back. */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "mqtt/mqtt_codec.h"
#include "unit.h"

static int same(const strbuf *b, const unsigned char *want, size_t n)
{
    if (b->len != n || memcmp(b->data, want, n)) {
        fprintf(stderr, "got %zu bytes:", b->len);
        for (size_t i = 0; i < b->len; i++) fprintf(stderr, " %02x", (unsigned char)b->data[i]);
        fprintf(stderr, "\n");
        return 0;
    }
    return 1;
}

static void varints(void)
{
    static const struct { uint32_t v; int n; unsigned char b[4]; } t[] = {
        {0, 1, {0}}, {127, 1, {0x7F}}, {128, 2, {0x80, 0x01}}, {16383, 2, {0xFF, 0x7F}},
        {16384, 3, {0x80, 0x80, 0x01}}, {2097151, 3, {0xFF, 0xFF, 0x7F}}, {268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        unsigned char b[4];
        CHECK(mqtt_varint_put(b, t[i].v) == t[i].n);
        CHECK(!memcmp(b, t[i].b, (size_t)t[i].n));
        uint32_t v = 1;
        CHECK(mqtt_varint_get(b, (size_t)t[i].n, &v) == t[i].n && v == t[i].v);
        CHECK(mqtt_varint_get(b, (size_t)t[i].n - 1, &v) == 0); /* more needed */
    }
    unsigned char five[] = {0x80, 0x80, 0x80, 0x80, 0x01};
    uint32_t v;
    CHECK(mqtt_varint_get(five, 5, &v) == -1);
}

static void connect_packets(void)
{
    strbuf b = SB_INIT;
    mqtt_enc_connect(&b, &(mqtt_connect){.version = 4, .client_id = "a", .keepalive = 60, .clean = true});
    static const unsigned char v4[] = {0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 'a'};
    CHECK(same(&b, v4, sizeof v4));
    b.len = 0;
    mqtt_enc_connect(&b, &(mqtt_connect){.version = 3, .client_id = "", .keepalive = 0, .clean = false,
                                          .username = "u", .password = "p"});
    static const unsigned char v3[] = {0x10, 20, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0xC0, 0, 0, 0, 0,
                                       0, 1, 'u', 0, 1, 'p'};
    CHECK(same(&b, v3, sizeof v3));
    /* v5: properties in the CONNECT, a will with its own properties */
    json_t *props = json_pack("{s:i, s:b, s:b, s:{s:s}, s:i}", "sessionExpiryInterval", 3600,
                              "requestProblemInformation", 1, "requestResponseInformation", 1, "userProperties", "k",
                              "v", "payloadFormatIndicator", 1 /* not a CONNECT property: left out */);
    json_t *wprops = json_pack("{s:i, s:s}", "willDelayInterval", 5, "contentType", "t");
    b.len = 0;
    mqtt_enc_connect(&b, &(mqtt_connect){.version = 5, .client_id = "c", .keepalive = 30, .clean = true,
                                          .props = props, .will_topic = "w", .will_payload = "x", .will_len = 1,
                                          .will_qos = 1, .will_retain = true, .will_props = wprops});
    static const unsigned char v5[] = {
        0x10, 46, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x2E /* clean, will, qos 1, retain */, 0, 30,
        16, 0x11, 0, 0, 0x0E, 0x10, 0x17, 1, 0x19, 1, 0x26, 0, 1, 'k', 0, 1, 'v', /* properties */
        0, 1, 'c',
        9, 0x03, 0, 1, 't', 0x18, 0, 0, 0, 5, /* will properties */
        0, 1, 'w', 0, 1, 'x'};
    CHECK(same(&b, v5, sizeof v5));
    mqtt_packet p;
    CHECK(mqtt_frame((const unsigned char *)b.data, b.len, 1 << 20, &p) == (long)b.len);
    CHECK(p.type == MQTT_CONNECT && p.len == 46);
    json_decref(props);
    json_decref(wprops);
    sb_free(&b);
}

static void publish_packets(void)
{
    strbuf b = SB_INIT;
    mqtt_enc_publish(&b, 4, "a/b", 3, "hi", 2, 1, true, false, 0x1234, NULL);
    static const unsigned char q1[] = {0x33, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34, 'h', 'i'};
    CHECK(same(&b, q1, sizeof q1));
    mqtt_packet p;
    mqtt_publish m;
    CHECK(mqtt_frame((const unsigned char *)b.data, b.len, 1 << 20, &p) == (long)sizeof q1);
    CHECK(mqtt_dec_publish(&p, 4, &m) == 0);
    CHECK(m.qos == 1 && m.retain && !m.dup && m.id == 0x1234 && m.tlen == 3 && !memcmp(m.topic, "a/b", 3));
    CHECK(m.len == 2 && !memcmp(m.payload, "hi", 2) && m.plen == 0);
    /* partial: more bytes needed at every cut */
    for (size_t cut = 0; cut < b.len; cut++) CHECK(mqtt_frame((const unsigned char *)b.data, cut, 1 << 20, &p) == 0);
    CHECK(mqtt_frame((const unsigned char *)b.data, b.len, 5, &p) == -1); /* larger than allowed */

    /* v5 with properties, QoS 0 (no id), an empty payload */
    json_t *props = json_pack("{s:s, s:o, s:i, s:{s:s, s:[ss]}}", "responseTopic", "r", "correlationData",
                              crm_buf_new("\x01\x02", 2), "messageExpiryInterval", 10, "userProperties", "a", "1",
                              "b", "x", "y");
    strbuf pb = SB_INIT;
    mqtt_props_encode(&pb, props, MQTT_PROPS_PUBLISH);
    b.len = 0;
    mqtt_enc_publish(&b, 5, "t", 1, NULL, 0, 0, false, false, 0, &pb);
    CHECK(mqtt_frame((const unsigned char *)b.data, b.len, 1 << 20, &p) == (long)b.len);
    CHECK(mqtt_dec_publish(&p, 5, &m) == 0);
    CHECK(m.qos == 0 && m.len == 0 && m.plen > 0);
    bool bad;
    uint32_t ids[4];
    int nids;
    json_t *back = mqtt_props_decode(m.props, m.plen, ids, &nids, 4, &bad);
    CHECK(!bad && back);
    CHECK_STR(json_string_value(json_object_get(back, "responseTopic")), "r");
    CHECK(crm_num_value(json_object_get(back, "messageExpiryInterval")) == 10);
    size_t cl;
    const unsigned char *cd = crm_buf_data(json_object_get(back, "correlationData"), &cl);
    CHECK(cd && cl == 2 && cd[0] == 1 && cd[1] == 2);
    json_t *up = json_object_get(back, "userProperties");
    CHECK_STR(json_string_value(json_object_get(up, "a")), "1");
    CHECK(json_array_size(json_object_get(up, "b")) == 2); /* repeated name: both values */
    CHECK_STR(json_string_value(json_array_get(json_object_get(up, "b"), 0)), "x");
    CHECK_STR(json_string_value(json_array_get(json_object_get(up, "b"), 1)), "y");
    json_decref(back);
    json_decref(props);
    sb_free(&pb);

    /* a topic alias goes in a PUBLISH (not in a will) */
    json_t *ta = json_pack("{s:i}", "topicAlias", 3);
    b.len = 0;
    mqtt_props_encode(&b, ta, MQTT_PROPS_PUBLISH);
    static const unsigned char alias[] = {3, 0x23, 0, 3};
    CHECK(same(&b, alias, sizeof alias));
    b.len = 0;
    mqtt_props_encode(&b, ta, MQTT_PROPS_WILL);
    CHECK(b.len == 1 && b.data[0] == 0);
    json_decref(ta);

    /* a subscription identifier arriving on a PUBLISH, and malformed blocks */
    static const unsigned char sid[] = {0x0B, 0x80, 0x01, 0x0B, 0x05};
    back = mqtt_props_decode(sid, sizeof sid, ids, &nids, 4, &bad);
    CHECK(!bad && nids == 2 && ids[0] == 128 && ids[1] == 5);
    json_decref(back);
    static const unsigned char cut[] = {0x08, 0x00, 0x05, 'a'};
    CHECK(!mqtt_props_decode(cut, sizeof cut, ids, &nids, 4, &bad) && bad);
    static const unsigned char unknown[] = {0x7F, 0};
    CHECK(!mqtt_props_decode(unknown, sizeof unknown, ids, &nids, 4, &bad) && bad);
    /* QoS 3 is malformed, so is a topic longer than the packet */
    static const unsigned char q3[] = {0x36, 3, 0, 1, 't'};
    CHECK(mqtt_frame(q3, sizeof q3, 1 << 20, &p) == (long)sizeof q3 && mqtt_dec_publish(&p, 4, &m) == -1);
    static const unsigned char longtopic[] = {0x30, 3, 0, 9, 't'};
    CHECK(mqtt_frame(longtopic, sizeof longtopic, 1 << 20, &p) > 0 && mqtt_dec_publish(&p, 4, &m) == -1);
    sb_free(&b);
}

static void control_packets(void)
{
    strbuf b = SB_INIT;
    mqtt_enc_subscribe(&b, 5, 7, "a/+", 1 | 4 | 8 | (2 << 4), 300);
    static const unsigned char sub5[] = {0x82, 12, 0, 7, 3, 0x0B, 0xAC, 0x02, 0, 3, 'a', '/', '+', 0x2D};
    CHECK(same(&b, sub5, sizeof sub5));
    b.len = 0;
    mqtt_enc_subscribe(&b, 4, 7, "#", 2 | 4, 0); /* v5 options dropped before v5 */
    static const unsigned char sub4[] = {0x82, 6, 0, 7, 0, 1, '#', 2};
    CHECK(same(&b, sub4, sizeof sub4));
    b.len = 0;
    mqtt_enc_unsubscribe(&b, 5, 8, "a");
    static const unsigned char uns5[] = {0xA2, 6, 0, 8, 0, 0, 1, 'a'};
    CHECK(same(&b, uns5, sizeof uns5));
    b.len = 0;
    mqtt_enc_ack(&b, MQTT_PUBREL, 0x0102);
    mqtt_enc_ack(&b, MQTT_PUBACK, 3);
    mqtt_enc_simple(&b, MQTT_PINGREQ);
    mqtt_enc_simple(&b, MQTT_DISCONNECT);
    static const unsigned char acks[] = {0x62, 2, 1, 2, 0x40, 2, 0, 3, 0xC0, 0, 0xE0, 0};
    CHECK(same(&b, acks, sizeof acks));
    sb_free(&b);

    /* CONNACK v5 with a Receive Maximum; SUBACK with its granted QoS */
    static const unsigned char connack[] = {0x20, 6, 1, 0, 3, 0x21, 0, 20};
    mqtt_packet p;
    CHECK(mqtt_frame(connack, sizeof connack, 1 << 20, &p) == (long)sizeof connack);
    bool sp;
    int rc;
    const unsigned char *props;
    size_t plen;
    CHECK(mqtt_dec_connack(&p, 5, &sp, &rc, &props, &plen) == 0 && sp && rc == 0 && plen == 3);
    bool bad;
    json_t *o = mqtt_props_decode(props, plen, NULL, NULL, 0, &bad);
    CHECK(crm_num_value(json_object_get(o, "receiveMaximum")) == 20);
    json_decref(o);
    static const unsigned char refused[] = {0x20, 2, 0, 5};
    CHECK(mqtt_frame(refused, sizeof refused, 1 << 20, &p) > 0 && mqtt_dec_connack(&p, 4, &sp, &rc, &props, &plen) == 0 && rc == 5);
    static const unsigned char suback[] = {0x90, 4, 0, 9, 0, 0x01};
    uint16_t id;
    CHECK(mqtt_frame(suback, sizeof suback, 1 << 20, &p) > 0 && mqtt_dec_ack(&p, 5, &id, &rc) == 0 && id == 9 && rc == 1);
    static const unsigned char puback5[] = {0x40, 3, 0, 4, 0x10};
    CHECK(mqtt_frame(puback5, sizeof puback5, 1 << 20, &p) > 0 && mqtt_dec_ack(&p, 5, &id, &rc) == 0 && id == 4 && rc == 0x10);
    /* two packets in one buffer frame one after the other */
    static const unsigned char two[] = {0xD0, 0, 0x40, 2, 0, 1};
    long k = mqtt_frame(two, sizeof two, 1 << 20, &p);
    CHECK(k == 2 && p.type == MQTT_PINGRESP);
    CHECK(mqtt_frame(two + k, sizeof two - (size_t)k, 1 << 20, &p) == 4 && p.type == MQTT_PUBACK);
    CHECK_STR(mqtt_reason_text(0x87), "Not authorized");
}

/* Every decoder on mutated packets (bit flips, cut, grown lengths): no read
 * outside the input (run under ASan in the sanitizer build), and whatever a
 * decoder accepts stays within the packet. A fixed seed: the same inputs
 * every run. */
static void mutations(void)
{
    strbuf seeds[6];
    for (int i = 0; i < 6; i++) seeds[i] = (strbuf)SB_INIT;
    json_t *props = json_pack("{s:s, s:o, s:i, s:b, s:{s:s, s:[ss]}}", "responseTopic", "r/t", "correlationData",
                              crm_buf_new("abc", 3), "messageExpiryInterval", 60, "payloadFormatIndicator", 1,
                              "userProperties", "a", "1", "b", "x", "y");
    strbuf pb = SB_INIT;
    mqtt_props_encode(&pb, props, MQTT_PROPS_PUBLISH);
    mqtt_enc_publish(&seeds[0], 5, "sensors/1/t", 11, "{\"v\":1}", 7, 2, true, false, 77, &pb);
    mqtt_enc_publish(&seeds[1], 4, "a", 1, "payload", 7, 1, false, true, 9, NULL);
    static const unsigned char connack[] = {0x20, 9, 1, 0, 6, 0x21, 0, 20, 0x13, 0, 30};
    sb_putn(&seeds[2], (const char *)connack, sizeof connack);
    static const unsigned char suback[] = {0x90, 5, 0, 9, 1, 0x0B, 0x01};
    sb_putn(&seeds[3], (const char *)suback, sizeof suback);
    mqtt_enc_ack(&seeds[4], MQTT_PUBREL, 5);
    static const unsigned char disc[] = {0xE0, 2, 0x8E, 0};
    sb_putn(&seeds[5], (const char *)disc, sizeof disc);
    uint64_t x = 0x9E3779B97F4A7C15u;
    unsigned accepted = 0;
    for (int round = 0; round < 60000; round++) {
        const strbuf *sd = &seeds[round % 6];
        size_t n = sd->len;
        unsigned char *b = malloc(n + 8);
        memcpy(b, sd->data, n);
        for (int k = 0; k < 1 + round % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % n);
            switch ((x >> 32) % 4) {
            case 0: b[at] ^= (unsigned char)(1u << ((x >> 40) % 8)); break;
            case 1: b[at] = (unsigned char)(x >> 48); break;
            case 2: n = at ? at : 1; break; /* cut */
            default: b[at] = 0xFF; break;
            }
        }
        unsigned char *in = malloc(n); /* exactly n bytes: ASan sees any overread */
        memcpy(in, b, n);
        free(b);
        mqtt_packet p;
        long k = mqtt_frame(in, n, 1 << 20, &p);
        if (k > 0) {
            CHECK((size_t)k <= n && p.body + p.len <= in + n);
            for (int version = 4; version <= 5; version++) {
                mqtt_publish m;
                if (mqtt_dec_publish(&p, version, &m) == 0) {
                    accepted++;
                    CHECK((const unsigned char *)m.topic + m.tlen <= p.body + p.len);
                    CHECK(m.payload + m.len == p.body + p.len);
                    bool bad;
                    uint32_t ids[4];
                    int nids;
                    json_decref(mqtt_props_decode(m.props, m.plen, ids, &nids, 4, &bad));
                }
                bool sp;
                int rc;
                const unsigned char *pp;
                size_t pl;
                if (mqtt_dec_connack(&p, version, &sp, &rc, &pp, &pl) == 0 && pl) {
                    CHECK(pp + pl <= p.body + p.len);
                    bool bad;
                    json_decref(mqtt_props_decode(pp, pl, NULL, NULL, 0, &bad));
                }
                uint16_t id;
                mqtt_dec_ack(&p, version, &id, &rc);
                mqtt_dec_disconnect(&p, &rc);
            }
        }
        free(in);
    }
    CHECK(accepted > 1000); /* the mutations do reach the decoders */
    for (int i = 0; i < 6; i++) sb_free(&seeds[i]);
    sb_free(&pb);
    json_decref(props);
}

int main(void)
{
    varints();
    connect_packets();
    publish_packets();
    control_packets();
    mutations();
    UNIT_DONE();
}
