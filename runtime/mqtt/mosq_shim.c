/* mosq_shim.c: libmosquitto, loaded only when a flow uses MQTT.
 *
 * libmosquitto links OpenSSL; most flows never speak MQTT, so Carmine does
 * not link it (as curl_shim.c does for libcurl): these definitions of the
 * libmosquitto functions mqtt.c calls open libmosquitto.so.1 with dlopen on
 * first use and forward to it. When the library is missing every call fails
 * with MOSQ_ERR_NOT_SUPPORTED (or NULL), and crm_mqtt_available() says so.
 */
#include <dlfcn.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>

#include "mqtt.h"

typedef void (*connect_cb)(struct mosquitto *, void *, int, int, const mosquitto_property *);
typedef void (*disconnect_cb)(struct mosquitto *, void *, int, const mosquitto_property *);
typedef void (*message_cb)(struct mosquitto *, void *, const struct mosquitto_message *, const mosquitto_property *);
typedef const mosquitto_property cprop;

#define FAIL MOSQ_ERR_NOT_SUPPORTED
#define MOSQ_FUNCS(X)                                                                                            \
    X(int, mosquitto_lib_init, (void), (), FAIL)                                                                 \
    X(struct mosquitto *, mosquitto_new, (const char *id, bool clean, void *obj), (id, clean, obj), NULL)        \
    X(void, mosquitto_destroy, (struct mosquitto * m), (m), )                                                    \
    X(int, mosquitto_will_set_v5, (struct mosquitto * m, const char *t, int l, const void *p, int q, bool r,      \
                                   mosquitto_property *pr), (m, t, l, p, q, r, pr), FAIL)                        \
    X(int, mosquitto_username_pw_set, (struct mosquitto * m, const char *u, const char *p), (m, u, p), FAIL)     \
    X(int, mosquitto_connect_bind_async, (struct mosquitto * m, const char *h, int port, int ka, const char *b), \
      (m, h, port, ka, b), FAIL)                                                                                 \
    X(int, mosquitto_reconnect_async, (struct mosquitto * m), (m), FAIL)                                         \
    X(int, mosquitto_disconnect_v5, (struct mosquitto * m, int rc, cprop *p), (m, rc, p), FAIL)                  \
    X(int, mosquitto_publish_v5, (struct mosquitto * m, int *mid, const char *t, int l, const void *p, int q,    \
                                  bool r, cprop *pr), (m, mid, t, l, p, q, r, pr), FAIL)                         \
    X(int, mosquitto_subscribe_v5, (struct mosquitto * m, int *mid, const char *s, int q, int o, cprop *p),      \
      (m, mid, s, q, o, p), FAIL)                                                                                \
    X(int, mosquitto_unsubscribe_v5, (struct mosquitto * m, int *mid, const char *s, cprop *p), (m, mid, s, p),  \
      FAIL)                                                                                                      \
    X(int, mosquitto_loop_read, (struct mosquitto * m, int n), (m, n), FAIL)                                     \
    X(int, mosquitto_loop_write, (struct mosquitto * m, int n), (m, n), FAIL)                                    \
    X(int, mosquitto_loop_misc, (struct mosquitto * m), (m), FAIL)                                               \
    X(int, mosquitto_socket, (struct mosquitto * m), (m), -1)                                                    \
    X(bool, mosquitto_want_write, (struct mosquitto * m), (m), false)                                            \
    X(int, mosquitto_int_option, (struct mosquitto * m, enum mosq_opt_t o, int v), (m, o, v), FAIL)              \
    X(int, mosquitto_string_option, (struct mosquitto * m, enum mosq_opt_t o, const char *v), (m, o, v), FAIL)   \
    X(int, mosquitto_tls_set, (struct mosquitto * m, const char *ca, const char *capath, const char *cert,       \
                               const char *key, int (*pw)(char *, int, int, void *)),                            \
      (m, ca, capath, cert, key, pw), FAIL)                                                                      \
    X(int, mosquitto_tls_insecure_set, (struct mosquitto * m, bool v), (m, v), FAIL)                             \
    X(int, mosquitto_tls_opts_set, (struct mosquitto * m, int r, const char *v, const char *c), (m, r, v, c),    \
      FAIL)                                                                                                      \
    X(void, mosquitto_connect_v5_callback_set, (struct mosquitto * m, connect_cb f), (m, f), )                   \
    X(void, mosquitto_disconnect_v5_callback_set, (struct mosquitto * m, disconnect_cb f), (m, f), )             \
    X(void, mosquitto_message_v5_callback_set, (struct mosquitto * m, message_cb f), (m, f), )                   \
    X(const char *, mosquitto_strerror, (int e), (e), "libmosquitto is not available")                          \
    X(const char *, mosquitto_reason_string, (int e), (e), "libmosquitto is not available")                     \
    X(int, mosquitto_property_identifier, (cprop * p), (p), 0)                                                   \
    X(cprop *, mosquitto_property_next, (cprop * p), (p), NULL)                                                  \
    X(void, mosquitto_property_free_all, (mosquitto_property * *p), (p), )                                       \
    X(int, mosquitto_property_add_byte, (mosquitto_property * *p, int id, uint8_t v), (p, id, v), FAIL)          \
    X(int, mosquitto_property_add_int32, (mosquitto_property * *p, int id, uint32_t v), (p, id, v), FAIL)        \
    X(int, mosquitto_property_add_varint, (mosquitto_property * *p, int id, uint32_t v), (p, id, v), FAIL)       \
    X(int, mosquitto_property_add_binary, (mosquitto_property * *p, int id, const void *v, uint16_t l),          \
      (p, id, v, l), FAIL)                                                                                       \
    X(int, mosquitto_property_add_string, (mosquitto_property * *p, int id, const char *v), (p, id, v), FAIL)    \
    X(int, mosquitto_property_add_string_pair, (mosquitto_property * *p, int id, const char *k, const char *v),  \
      (p, id, k, v), FAIL)                                                                                       \
    X(cprop *, mosquitto_property_read_byte, (cprop * p, int id, uint8_t *v, bool s), (p, id, v, s), NULL)       \
    X(cprop *, mosquitto_property_read_int16, (cprop * p, int id, uint16_t *v, bool s), (p, id, v, s), NULL)     \
    X(cprop *, mosquitto_property_read_int32, (cprop * p, int id, uint32_t *v, bool s), (p, id, v, s), NULL)     \
    X(cprop *, mosquitto_property_read_varint, (cprop * p, int id, uint32_t *v, bool s), (p, id, v, s), NULL)    \
    X(cprop *, mosquitto_property_read_binary, (cprop * p, int id, void **v, uint16_t *l, bool s),               \
      (p, id, v, l, s), NULL)                                                                                    \
    X(cprop *, mosquitto_property_read_string, (cprop * p, int id, char **v, bool s), (p, id, v, s), NULL)       \
    X(cprop *, mosquitto_property_read_string_pair, (cprop * p, int id, char **k, char **v, bool s),             \
      (p, id, k, v, s), NULL)

#define POINTER(ret, name, params, args, fail) static ret(*p_##name) params;
MOSQ_FUNCS(POINTER)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *lib;

static void load(void)
{
    lib = dlopen("libmosquitto.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "carmine: cannot load libmosquitto.so.1 (%s): MQTT will not connect\n", dlerror());
        return;
    }
#define RESOLVE(ret, name, params, args, fail) *(void **)&p_##name = dlsym(lib, #name);
    MOSQ_FUNCS(RESOLVE)
    if (p_mosquitto_lib_init) p_mosquitto_lib_init();
}

bool crm_mqtt_available(void)
{
    pthread_once(&once, load);
    return lib != NULL;
}

#define FORWARD(ret, name, params, args, fail) \
    ret name params                            \
    {                                          \
        pthread_once(&once, load);             \
        if (!p_##name) return fail;            \
        return p_##name args;                  \
    }
MOSQ_FUNCS(FORWARD)
