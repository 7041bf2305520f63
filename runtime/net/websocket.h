/* websocket.h: the WebSocket protocol (RFC 6455) without I/O: the opening
 * handshake's key, frames written and an incremental frame parser that
 * joins fragments and checks what RFC 6455 requires (masking by the
 * client, control frames short and whole, UTF-8 text, known opcodes, no
 * extension bits). Pure functions on buffers, so the parser can be fuzzed. */
#ifndef CRM_WEBSOCKET_H
#define CRM_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

enum { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8, WS_OP_PING = 9, WS_OP_PONG = 10 };

typedef enum { WS_NONE, WS_TEXT, WS_BINARY, WS_PING, WS_PONG, WS_CLOSE, WS_ERROR } crm_ws_event;

typedef struct {
    strbuf in;       /* bytes received, not yet parsed from off on */
    size_t off;
    strbuf msg;      /* the fragments of the message being received */
    int msg_op;      /* its opcode, 0 when none */
    bool server;     /* frames from the peer must be masked (we are the server) */
    size_t max;      /* the largest message accepted */
    bool failed;
} crm_ws_parser;

void crm_ws_parser_init(crm_ws_parser *p, bool server, size_t max);
void crm_ws_parser_free(crm_ws_parser *p);
/* Adds received bytes. */
void crm_ws_feed(crm_ws_parser *p, const void *data, size_t len);
/* The next complete event, or WS_NONE when more bytes are needed. *data
 * and *len are the message or control payload (borrowed until the next
 * call). WS_CLOSE: *code is the peer's close code (1005 when none), data
 * the reason. WS_ERROR: *code is the close code to answer with (1002
 * protocol error, 1007 bad UTF-8, 1009 too big); the parser stops there. */
crm_ws_event crm_ws_next(crm_ws_parser *p, const unsigned char **data, size_t *len, int *code);

/* The header of one final unmasked frame (a server's) of len bytes, written
 * to h: its length (2, 4 or 10). */
size_t crm_ws_frame_header(unsigned char h[10], int opcode, size_t len);
/* Appends one final frame; mask: a client's frame (random key). */
void crm_ws_frame(strbuf *out, int opcode, const void *data, size_t len, bool mask);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)). */
void crm_ws_accept_key(const char *key, char out[29]);
/* A random Sec-WebSocket-Key (24 characters and a NUL). */
void crm_ws_new_key(char out[25]);

#endif
