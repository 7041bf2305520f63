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

static void bridge_start(crm_node *n) { crm_companion_start(n); }

/* Messages cross as JSON text (companion_int.h): what JSON has no text for
 * crosses as a token object {TOKEN: ...}, which the other side turns back
 * into the value. A plain object shaped like a Buffer's JSON stays a plain
 * object: only real Buffers become the Buffer token. */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(strbuf *sb, const unsigned char *d, size_t n)
{
    sb_putc(sb, '"');
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=', i + 2 < n ? b64[v & 63] : '='};
        sb_putn(sb, q, 4);
    }
    sb_putc(sb, '"');
}

json_t *crm_companion_unbase64(const char *s, size_t n)
{
    unsigned char *out = malloc(n / 4 * 3 + 3);
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = s[i] ? strchr(b64, s[i]) : NULL;
        if (!p) continue; /* '=' padding (and nothing else: the companion writes Buffer's base64) */
        acc = acc << 6 | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    json_t *b = crm_buf_new(out, len);
    free(out);
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
        put_base64(sb, d, n);
        sb_putc(sb, '}');
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
