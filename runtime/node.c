/* node.c: the node API of carmine.h that is about one node: identity,
 * config reading, send/receive/done, errors, status and log. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "comms.h"
#include "engine.h"
#include "hop.h"
#include "lease.h"

const char *crm_node_id(const crm_node *n) { return n->id; }
const char *crm_node_type_name(const crm_node *n)
{
    /* a subflow instance shows its configured type, "subflow:<id>" */
    const char *t = json_string_value(json_object_get(n->config, "type"));
    return t ? t : n->type->type;
}
const char *crm_node_name(const crm_node *n) { return n->name ? n->name : ""; }
int crm_node_outputs(const crm_node *n) { return n->nports; }
void *crm_node_data(const crm_node *n) { return n->data; }
void crm_node_set_data(crm_node *n, void *data) { n->data = data; }
crm_runtime *crm_node_runtime(const crm_node *n) { return n->rt; }
bool crm_node_watched(const crm_node *n) { return n->watched; }
const json_t *crm_node_settings(const crm_node *n) { return n->rt->settings; }
bool crm_node_holds_lease(const crm_node *n) { return crm_lease_held(n->rt); }

/* Config ---------------------------------------------------------------------- */

const char *crm_cfg_str(const json_t *cfg, const char *key, const char *def)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

double crm_cfg_num(const json_t *cfg, const char *key, double def)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_number(v)) return crm_num_value(v);
    if (json_is_string(v) && *json_string_value(v)) return crm_str_to_number(json_string_value(v));
    return def;
}

bool crm_cfg_bool(const json_t *cfg, const char *key, bool def)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_string(v)) {
        if (!strcmp(json_string_value(v), "true")) return true;
        if (!strcmp(json_string_value(v), "false")) return false;
    }
    return def;
}

/* Set by the loader while a node's create() runs. */
_Thread_local strbuf *crm_config_problems;
_Thread_local int crm_config_problem_count;

void crm_node_config_error(crm_node *n, const char *field, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    crm_config_problem_count++;
    if (crm_config_problems)
        sb_printf(crm_config_problems, "node %s (%s): %s%s%s\n", n->id, n->type->type, field ? field : "",
                  field ? ": " : "", text);
    else
        crm_log(n->rt, CRM_LOG_ERROR, n, "%s%s%s", field ? field : "", field ? ": " : "", text);
}

/* Ids ------------------------------------------------------------------------------ */

static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
    if (!rng_state) {
        if (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state || !rng_state)
            rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&rng_state;
    }
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

char *crm_make_id(char *buf)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) {
        /* round(255 * random) as RED.util.generateId does, in integers on
         * 16 random bits (random = x / 65536): one draw makes four bytes.
         * Every message that enters a flow from outside needs an id. */
        if (!(i & 3)) bits = rng_next();
        unsigned x = (unsigned)(bits & 0xffff);
        bits >>= 16;
        unsigned b = (255u * x + 32768u) >> 16;
        buf[2 * i] = hex[b >> 4];
        buf[2 * i + 1] = hex[b & 15];
    }
    buf[16] = 0;
    return buf;
}

/* Looked up on every send: the length given spares jansson a strlen. */
#define MSGID_KEY "_msgid"
#define MSGID_LEN (sizeof MSGID_KEY - 1)

static bool has_msgid(const json_t *msg)
{
    return crm_truthy(json_object_getn(msg, MSGID_KEY, MSGID_LEN));
}

static void set_msgid(json_t *msg, const char *id)
{
    json_object_setn_new_nocheck(msg, MSGID_KEY, MSGID_LEN, json_stringn_nocheck(id, strlen(id)));
}

/* Sending ---------------------------------------------------------------------------- */

/* The clone rule (§2.3): the first delivery of a send() call gets the
 * original, every later one a deep copy taken now, before any receiver runs. */
/* Delivers in wire order, as Node-RED does (the first wire of the first
 * port gets the message itself, the others copies). The copies are all made
 * before anything is delivered: a receiver on another loop may start on the
 * original at once. */
static void deliver_port(crm_node *n, int port, json_t *msg, bool *first)
{
    int nw = n->nwires[port];
    crm_node **w = n->wires[port];
    bool orig = *first;
    *first = false;
    if (nw == 1 && orig) { /* the common case: one wire, no copy */
        if (w[0]) crm_loop_deliver(w[0], msg);
        else crm_loop_release(msg);
        return;
    }
    json_t *stack[8];
    json_t **copy = nw <= 8 ? stack : malloc((size_t)nw * sizeof *copy);
    if (!copy) { /* out of memory: deliver what can be, in order */
        for (int i = 0; i < nw; i++)
            if (w[i]) crm_loop_deliver(w[i], crm_msg_clone(msg));
        crm_loop_release(msg);
        return;
    }
    for (int i = orig ? 1 : 0; i < nw; i++) copy[i] = w[i] ? crm_msg_clone(msg) : NULL;
    for (int i = 0; i < nw; i++) {
        if (i == 0 && orig) {
            if (w[0]) crm_loop_deliver(w[0], msg);
            else crm_loop_release(msg);
        } else if (copy[i]) {
            crm_loop_deliver(w[i], copy[i]);
        }
    }
    if (!orig) crm_loop_release(msg);
    if (copy != stack) free(copy);
}

void crm_node_send(crm_node *n, int port, json_t *msg)
{
    CRM_ASSERT_ON_LOOP(n);
    if (!msg) return;
    if (port < 0 || port >= n->nports || n->nwires[port] == 0 || !json_is_object(msg)) {
        if (msg && !json_is_object(msg)) crm_node_error(n, NULL, "Node tried to send a message of type %s", crm_typeof(msg));
        crm_loop_release(msg);
        return;
    }
    if (!has_msgid(msg)) {
        char id[17];
        set_msgid(msg, crm_make_id(id));
    }
    CRM_STAT_BUMP(n->stats.out, 1);
    bool first = true;
    deliver_port(n, port, msg, &first);
}

/* Whether msgs[port] can go out: a message that is not an object is
 * reported as Node-RED reports it and freed, one for a port the node does
 * not have is freed. */
static bool sendable(crm_node *n, json_t *m, int port)
{
    if (json_is_object(m) && port < n->nports) return true;
    if (!json_is_object(m)) crm_node_error(n, NULL, "Node tried to send a message of type %s", crm_typeof(m));
    json_decref(m);
    return false;
}

void crm_node_send_ports(crm_node *n, json_t **msgs, int nports)
{
    CRM_ASSERT_ON_LOOP(n);
    /* whether each message carries a _msgid, looked up once (the first
     * SEND_IDS_KNOWN; past them, again where needed) */
    enum { SEND_IDS_KNOWN = 32 };
    bool has[SEND_IDS_KNOWN];
    /* the first message's _msgid, whatever its type (Node-RED copies the
     * value), goes to those without one; a copy, as the messages go out.
     * Made only when a message lacks one (most carry theirs), and before
     * anything is delivered: a receiver on another loop may free shared */
    const json_t *shared = NULL;
    bool need = false;
    for (int i = 0; i < nports; i++) {
        const json_t *v = msgs[i] && json_is_object(msgs[i]) ? json_object_getn(msgs[i], MSGID_KEY, MSGID_LEN) : NULL;
        bool h = crm_truthy(v);
        if (i < SEND_IDS_KNOWN) has[i] = h;
        if (h && !shared) shared = v;
        if (!h && msgs[i] && json_is_object(msgs[i]) && i < n->nports) need = true;
    }
    char fresh[17];
    json_t *id = !need ? NULL : shared ? crm_deep_copy(shared) : json_stringn_nocheck(crm_make_id(fresh), 16);
    bool first = true;
    for (int i = 0; i < nports; i++) {
        json_t *m = msgs[i];
        if (!m) continue;
        if (!sendable(n, m, i)) continue;
        if (!(i < SEND_IDS_KNOWN ? has[i] : has_msgid(m)))
            json_object_setn_new_nocheck(m, MSGID_KEY, MSGID_LEN, crm_deep_copy(id));
        CRM_STAT_BUMP(n->stats.out, 1);
        if (n->nwires[i] == 0) {
            crm_loop_release(m);
            continue;
        }
        deliver_port(n, i, m, &first);
    }
    json_decref(id);
}

void crm_node_send_known(crm_node *n, int port, json_t *msg, bool has_id)
{
    if (!has_id) {
        crm_node_send(n, port, msg);
        return;
    }
    CRM_ASSERT_ON_LOOP(n);
    if (port < 0 || port >= n->nports || n->nwires[port] == 0 || !json_is_object(msg)) {
        crm_node_send(n, port, msg); /* its checks and errors */
        return;
    }
    CRM_STAT_BUMP(n->stats.out, 1);
    bool first = true;
    deliver_port(n, port, msg, &first);
}

void crm_node_send_same(crm_node *n, json_t **msgs, int nports, bool has_id)
{
    if (!has_id) { /* an id to make and set: the general way */
        crm_node_send_ports(n, msgs, nports);
        return;
    }
    CRM_ASSERT_ON_LOOP(n);
    bool first = true;
    for (int i = 0; i < nports; i++) {
        json_t *m = msgs[i];
        if (!m) continue;
        if (!sendable(n, m, i)) continue;
        CRM_STAT_BUMP(n->stats.out, 1);
        if (n->nwires[i] == 0) {
            crm_loop_release(m);
            continue;
        }
        deliver_port(n, i, m, &first);
    }
}

/* a == b for n bytes; 4 to 8 (payload, topic) in two loads each, where
 * memcmp is a call */
static inline bool same_key(const char *a, const char *b, size_t n)
{
    if (n < 4 || n > 8) return !memcmp(a, b, n);
    uint32_t a0, b0, a1, b1;
    memcpy(&a0, a, 4);
    memcpy(&b0, b, 4);
    memcpy(&a1, a + n - 4, 4);
    memcpy(&b1, b + n - 4, 4);
    return a0 == b0 && a1 == b1;
}

bool crm_msg_walk(json_t *msg, const char *name, size_t len, void **found, bool *has_id)
{
    if (!name) len = (size_t)-1; /* no key is that long */
    if (!json_is_object(msg)) return false;
    size_t size = json_object_size(msg);
    if (size > CRM_WALK_MAX || (size == 1 && (crm_is_buf(msg) || crm_is_handle(msg)))) return false;
    void *hit = NULL;
    bool id = false;
    for (void *it = json_object_iter(msg); it; it = json_object_iter_next(msg, it)) {
        size_t kl = json_object_iter_key_len(it);
        if (kl != len && kl != MSGID_LEN) continue;
        const char *k = json_object_iter_key(it);
        if (kl == len && same_key(k, name, len)) hit = it;
        if (kl == MSGID_LEN && !memcmp(k, MSGID_KEY, MSGID_LEN)) {
            const json_t *v = json_object_iter_value(it);
            id = json_is_string(v) ? json_string_length(v) > 0 : crm_truthy(v); /* a string, mostly */
        }
    }
    *found = hit;
    *has_id = id;
    return true;
}

void crm_node_receive(crm_node *target, json_t *msg)
{
    if (!target || target->closed) {
        json_decref(msg);
        return;
    }
    if (!msg || !json_is_object(msg)) {
        json_decref(msg);
        msg = json_object();
    }
    if (!has_msgid(msg)) {
        char id[17];
        set_msgid(msg, crm_make_id(id));
    }
    crm_loop_deliver(target, msg);
}

void crm_node_done(crm_node *n, const json_t *msg)
{
    if (n->watched && msg) crm_route_complete(n, msg);
}

/* Errors, log, status -------------------------------------------------------------------- */

void crm_node_error(crm_node *n, const json_t *msg, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0) text = NULL;
    va_end(ap);
    crm_node_error_with(n, msg, text ? text : "", NULL);
    free(text);
}

void crm_node_error_with(crm_node *n, const json_t *msg, const char *text, const json_t *extra)
{
    bool handled = false;
    if (msg && json_is_object(msg)) crm_route_error_ex(n, msg, text, extra, &handled);
    else CRM_STAT_ADD(n->stats.errors, 1); /* crm_route_error_ex counts those with a message */
    if (!handled && crm_error_is_object(text, extra)) crm_log_error_object(n->rt, CRM_LOG_ERROR, n, text, extra);
    else if (!handled) crm_log(n->rt, CRM_LOG_ERROR, n, "%s", text);
}

bool crm_node_checking(const crm_node *n)
{
    return n->rt && (n->rt->load_flags & CRM_LOAD_CHECK_ONLY);
}

void crm_node_log(crm_node *n, crm_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    crm_vlog(n->rt, lvl, n, fmt, ap);
    va_end(ap);
}

void crm_node_log_error(crm_node *n, crm_log_level lvl, const char *text, const json_t *extra)
{
    crm_log_error_object(n->rt, lvl, n, text ? text : "", extra);
}

void crm_node_status(crm_node *n, const char *fill, const char *shape, const char *text)
{
    CRM_ASSERT_ON_LOOP(n);
    json_t *st = json_object();
    if (fill) json_object_set_new(st, "fill", json_string(fill));
    if (shape) json_object_set_new(st, "shape", json_string(shape));
    if (text) json_object_set_new(st, "text", json_string(text));
    crm_route_status(n, st);
    crm_comms_status(n, st);
    json_decref(st);
}

/* Lookup ----------------------------------------------------------------------------------- */

crm_node *crm_runtime_find(crm_runtime *rt, const char *id)
{
    json_t *ix = json_object_get(rt->node_index, id);
    if (!ix) return NULL;
    return rt->nodes[json_integer_value(ix) - 1];
}

crm_node *crm_node_find(crm_node *from, const char *id)
{
    return id ? crm_runtime_find(from->rt, id) : NULL;
}

bool crm_node_same_flow(const crm_node *a, const crm_node *b) { return a->flow == b->flow; }

bool crm_node_in_subflow(const crm_node *n) { return n->flow && n->flow->is_subflow; }

void crm_each_node_of_type(crm_node *from, const char *type, void (*fn)(crm_node *n, void *arg), void *arg)
{
    crm_runtime *rt = from->rt;
    for (size_t i = 0; i < rt->nnodes; i++)
        if (!strcmp(rt->nodes[i]->type->type, type)) fn(rt->nodes[i], arg);
}
