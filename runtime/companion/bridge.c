/* bridge.c: a hosted node's stand-in in Carmine. It has the hosted node's
 * id and wires: its input goes to the companion, and what the hosted node
 * sends, its errors (for catch nodes) and its status (for status nodes)
 * come back through it (process.c delivers them on its loop). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "companion.h"
#include "companion_int.h"

static void bridge_start(crm_node *n) { crm_companion_start(n); }

static bool nonfinite(const json_t *v) { return json_is_real(v) && !isfinite(crm_num_value(v)); }

/* Does v hold a NaN or an Infinity (which JSON text would turn into null)? */
static bool has_nonfinite(const json_t *v)
{
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, e) if (nonfinite(e) || has_nonfinite(e)) return true;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (nonfinite(e) || has_nonfinite(e)) return true;
    }
    return false;
}

static json_t *num_token(const json_t *v)
{
    double d = crm_num_value(v);
    return json_pack("{s:s}", CRM_COMPANION_NUM_TOKEN, isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
}

/* Replaces them in v (the bridge's own message) by NUM_TOKEN objects. */
static void mark_nonfinite(json_t *v)
{
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, e) {
            if (nonfinite(e)) json_object_set_new(v, k, num_token(e));
            else mark_nonfinite(e);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (nonfinite(e)) json_array_set_new(v, i, num_token(e));
            else mark_nonfinite(e);
        }
    }
}

static void bridge_input(crm_node *n, json_t *msg)
{
    json_t *res = json_object_get(msg, "res");
    if (crm_is_handle(res)) /* a token for the live handle (companion_int.h) */
        json_object_set_new(msg, "res", json_pack("{s:I}", CRM_COMPANION_RES_TOKEN, (json_int_t)crm_handle_id(res)));
    if (has_nonfinite(msg)) mark_nonfinite(msg);
    char *text = crm_stringify(msg, 0);
    json_decref(msg);
    if (!text) return;
    json_t *jid = json_string(crm_node_id(n));
    char *id = json_dumps(jid, JSON_ENCODE_ANY);
    json_decref(jid);
    strbuf line = SB_INIT;
    sb_printf(&line, "{\"t\":\"in\",\"id\":%s,\"msg\":%s}\n", id, text);
    free(id);
    free(text);
    crm_companion_queue(n, line.data, line.len);
    sb_free(&line);
}

static void bridge_close(crm_node *n) { crm_companion_stop(n); }

const crm_node_type crm_companion_bridge_type = {
    .abi = CRM_ABI_VERSION,
    .type = "companion",
    .start = bridge_start,
    .input = bridge_input,
    .close = bridge_close,
};
