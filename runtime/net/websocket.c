/* websocket.c: see websocket.h. */
#include "websocket.h"

#include <nettle/sha1.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "net/netutil.h"

void crm_ws_parser_init(crm_ws_parser *p, bool server, size_t max)
{
    memset(p, 0, sizeof *p);
    p->server = server;
    p->max = max;
}

void crm_ws_parser_free(crm_ws_parser *p)
{
    sb_free(&p->in);
    sb_free(&p->msg);
}

void crm_ws_feed(crm_ws_parser *p, const void *data, size_t len)
{
    if (p->off && p->off == p->in.len) p->in.len = p->off = 0;
    else if (p->off > 65536 && p->off * 2 > p->in.len) {
        memmove(p->in.data, p->in.data + p->off, p->in.len - p->off);
        p->in.len -= p->off;
        p->off = 0;
    }
    sb_putn(&p->in, data, len);
}

static crm_ws_event fail(crm_ws_parser *p, int *code, int c)
{
    p->failed = true;
    *code = c;
    return WS_ERROR;
}

static bool valid_close_code(int c)
{
    if (c >= 3000 && c <= 4999) return true;
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014);
}

crm_ws_event crm_ws_next(crm_ws_parser *p, const unsigned char **data, size_t *len, int *code)
{
    *data = NULL;
    *len = 0;
    *code = 0;
    for (;;) {
        if (p->failed) return WS_NONE;
        size_t avail = p->in.len - p->off;
        unsigned char *b = (unsigned char *)p->in.data + p->off;
        if (avail < 2) return WS_NONE;
        bool fin = b[0] & 0x80;
        int op = b[0] & 0x0F;
        bool masked = b[1] & 0x80;
        uint64_t plen = b[1] & 0x7F;
        size_t hl = 2;
        if (b[0] & 0x70) return fail(p, code, 1002); /* no extension was agreed */
        if (masked != p->server) return fail(p, code, 1002);
        if (plen == 126) {
            if (avail < 4) return WS_NONE;
            plen = ((uint64_t)b[2] << 8) | b[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10) return WS_NONE;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = (plen << 8) | b[2 + i];
            if (plen >> 63) return fail(p, code, 1002);
            hl = 10;
        }
        bool control = op & 0x8;
        if (control && (!fin || plen > 125)) return fail(p, code, 1002);
        if (!control && op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY) return fail(p, code, 1002);
        if (control && op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG) return fail(p, code, 1002);
        if (!control) {
            if (op == WS_OP_CONT && !p->msg_op) return fail(p, code, 1002);
            if (op != WS_OP_CONT && p->msg_op) return fail(p, code, 1002);
            if (p->msg.len + plen > p->max) return fail(p, code, 1009);
        }
        size_t mk = masked ? 4 : 0;
        if (avail < hl + mk + plen) return WS_NONE;
        unsigned char *pl = b + hl + mk;
        if (masked) {
            const unsigned char *key = b + hl;
            for (uint64_t i = 0; i < plen; i++) pl[i] ^= key[i & 3];
        }
        p->off += hl + mk + (size_t)plen;
        if (control) {
            *data = pl;
            *len = (size_t)plen;
            if (op == WS_OP_PING) return WS_PING;
            if (op == WS_OP_PONG) return WS_PONG;
            if (plen == 1) return fail(p, code, 1002);
            if (plen >= 2) {
                int c = (pl[0] << 8) | pl[1];
                if (!valid_close_code(c)) return fail(p, code, 1002);
                if (!crm_utf8_valid(pl + 2, (size_t)plen - 2)) return fail(p, code, 1007);
                *code = c;
                *data = pl + 2;
                *len = (size_t)plen - 2;
            } else *code = 1005;
            p->failed = true; /* nothing follows a close */
            return WS_CLOSE;
        }
        if (op != WS_OP_CONT) p->msg_op = op;
        if (fin && !p->msg.len) { /* a whole message in one frame: no copy */
            int mop = p->msg_op;
            p->msg_op = 0;
            if (mop == WS_OP_TEXT && !crm_utf8_valid(pl, (size_t)plen)) return fail(p, code, 1007);
            *data = pl;
            *len = (size_t)plen;
            return mop == WS_OP_TEXT ? WS_TEXT : WS_BINARY;
        }
        sb_putn(&p->msg, (const char *)pl, (size_t)plen);
        if (!fin) continue;
        int mop = p->msg_op;
        p->msg_op = 0;
        size_t ml = p->msg.len;
        p->msg.len = 0; /* the bytes stay readable until the next call */
        if (mop == WS_OP_TEXT && !crm_utf8_valid(p->msg.data, ml)) return fail(p, code, 1007);
        *data = (const unsigned char *)(p->msg.data ? p->msg.data : "");
        *len = ml;
        return mop == WS_OP_TEXT ? WS_TEXT : WS_BINARY;
    }
}

size_t crm_ws_frame_header(unsigned char h[10], int opcode, size_t len)
{
    size_t hl = 2;
    h[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) h[1] = (unsigned char)len;
    else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    return hl;
}

void crm_ws_frame(strbuf *out, int opcode, const void *data, size_t len, bool mask)
{
    unsigned char h[14];
    size_t hl = crm_ws_frame_header(h, opcode, len);
    if (!mask) {
        sb_putn(out, (const char *)h, hl);
        sb_putn(out, data, len);
        return;
    }
    h[1] |= 0x80;
    unsigned char key[4];
    if (getrandom(key, 4, 0) != 4) memset(key, 0x5a, 4);
    memcpy(h + hl, key, 4);
    sb_putn(out, (const char *)h, hl + 4);
    size_t at = out->len;
    sb_putn(out, data, len);
    unsigned char *d = (unsigned char *)out->data + at;
    for (size_t i = 0; i < len; i++) d[i] ^= key[i & 3];
}

void crm_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    struct sha1_ctx ctx;
    uint8_t dig[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, strlen(key), (const uint8_t *)key);
    sha1_update(&ctx, sizeof guid - 1, (const uint8_t *)guid);
    sha1_digest(&ctx, sizeof dig, dig);
    strbuf b = SB_INIT;
    crm_base64_encode(dig, sizeof dig, &b);
    memcpy(out, b.data, 28);
    out[28] = 0;
    sb_free(&b);
}

void crm_ws_new_key(char out[25])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != sizeof r) memset(r, 7, sizeof r);
    strbuf b = SB_INIT;
    crm_base64_encode(r, sizeof r, &b);
    memcpy(out, b.data, 24);
    out[24] = 0;
    sb_free(&b);
}
