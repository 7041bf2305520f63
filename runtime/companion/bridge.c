/* bridge.c: a hosted node's stand-in in Carmine. It has the hosted node's
 * id and wires: its input goes to the companion, and what the hosted node
 * sends, its errors (for catch nodes) and its status (for status nodes)
 * come back through it (process.c delivers them on its loop). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "companion.h"
#include "companion_int.h"
#include "engine.h"
#include "net/netutil.h"

static void bridge_start(crm_node *n) { crm_companion_start(n); }

/* Messages cross as JSON text (companion_int.h): what JSON has no text for
 * crosses as a token object {TOKEN: ...}, which the other side turns back
 * into the value. A plain object shaped like a Buffer's JSON stays a plain
 * object: only real Buffers become the Buffer token. */

json_t *crm_companion_unbase64(const char *s, size_t n)
{
    strbuf out = {0};
    crm_base64_decode(s, n, &out);
    json_t *b = crm_buf_new(out.data, out.len);
    sb_free(&out);
    return b;
}

static void put_token(strbuf *sb, const char *token)
{
    sb_puts(sb, "{");
    crm_put_json_string(sb, token, strlen(token));
    sb_putc(sb, ':');
}

static void put_value(strbuf *sb, const json_t *v, int depth)
{
    char nb[32];
    switch (json_typeof(v)) {
    case JSON_STRING: crm_put_json_string(sb, json_string_value(v), json_string_length(v)); return;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = crm_num_value(v);
        if (isfinite(d)) {
            sb_puts(sb, crm_fmt_number(d, nb));
        } else { /* NaN, Infinity, -Infinity */
            put_token(sb, CRM_COMPANION_NUM_TOKEN);
            sb_printf(sb, "\"%s\"}", isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
        }
        return;
    }
    case JSON_TRUE: sb_puts(sb, "true"); return;
    case JSON_FALSE: sb_puts(sb, "false"); return;
    case JSON_NULL: sb_puts(sb, "null"); return;
    case JSON_ARRAY: {
        sb_putc(sb, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sb_putc(sb, ',');
            if (depth < 512) put_value(sb, json_array_get(v, i), depth + 1);
            else sb_puts(sb, "null");
        }
        sb_putc(sb, ']');
        return;
    }
    case JSON_OBJECT: break;
    }
    if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        put_token(sb, CRM_COMPANION_BUF_TOKEN);
        sb_putc(sb, '"');
        crm_base64_encode(d, n, sb);
        sb_puts(sb, "\"}");
        return;
    }
    if (crm_is_handle(v)) { /* a token for the live handle (msg.res) */
        put_token(sb, CRM_COMPANION_RES_TOKEN);
        sb_printf(sb, "%lld}", crm_handle_id(v));
        return;
    }
    crm_entry stackbuf[16], *ents;
    size_t cnt = crm_js_entries(v, stackbuf, 16, &ents);
    sb_putc(sb, '{');
    for (size_t i = 0; i < cnt; i++) {
        if (i) sb_putc(sb, ',');
        crm_put_json_string(sb, ents[i].key, ents[i].len);
        sb_putc(sb, ':');
        if (depth < 512) put_value(sb, ents[i].val, depth + 1);
        else sb_puts(sb, "null");
    }
    sb_putc(sb, '}');
    if (ents != stackbuf) free(ents);
}

void crm_companion_put(strbuf *sb, const json_t *v) { put_value(sb, v, 0); }

char *crm_companion_text(const json_t *v)
{
    if (!v) return NULL;
    strbuf sb = SB_INIT;
    put_value(&sb, v, 0);
    return sb_take(&sb);
}

static void bridge_input(crm_node *n, json_t *msg)
{
    strbuf line = SB_INIT;
    sb_puts(&line, "{\"t\":\"in\",\"id\":");
    crm_put_json_string(&line, crm_node_id(n), strlen(crm_node_id(n)));
    sb_puts(&line, ",\"msg\":");
    put_value(&line, msg, 0);
    sb_puts(&line, "}\n");
    json_decref(msg);
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
