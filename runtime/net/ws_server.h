/* ws_server.h: WebSocket listeners on Carmine's HTTP server. A listener
 * node claims a path; the HTTP server's upgrade hook (httpd.c) asks this
 * table about each upgrade request, answers the handshake (101 with
 * Sec-WebSocket-Accept, or 400 for a bad one) and hands the socket to the
 * listener's loop. Thread-safe. */
#ifndef CRM_WS_SERVER_H
#define CRM_WS_SERVER_H

#include <stddef.h>

#include "carmine.h"

typedef struct {
    int fd;              /* the connection's own descriptor: close it */
    void *urh;           /* https: libmicrohttpd's handle of the upgraded connection (it
                            forwards TLS records to and from fd): crm_ws_socket_release
                            it once fd is closed; NULL over plain http */
    struct crm_runtime *rt;
    size_t extra_len;    /* bytes read past the handshake */
    char extra[];
} crm_ws_socket;

/* Tells libmicrohttpd an https websocket connection is over (sock->urh of
 * an accepted socket; NULL is fine). Not after the server stopped (it
 * closed those connections itself): skipped while the runtime stops. */
void crm_ws_socket_release(struct crm_runtime *rt, void *urh);

/* accept(listener, sock) runs on the listener's loop and owns sock (free it). */
typedef void (*crm_ws_accept_fn)(crm_node *listener, void *sock);

/* Claims path (the full path, httpNodeRoot included); -1 when another
 * listener has it. */
int crm_ws_listen(const char *path, crm_node *listener, crm_ws_accept_fn accept);
void crm_ws_unlisten(const char *path, crm_node *listener);

/* A listener that is not a node: fn(ctx, sock) runs on the HTTP server's
 * thread that finished the handshake and owns sock (free it). Unlisten
 * before ctx goes; a connection whose handshake is finishing meanwhile is
 * dropped. */
typedef void (*crm_ws_raw_fn)(void *ctx, crm_ws_socket *sock);
int crm_ws_listen_raw(const char *path, crm_ws_raw_fn fn, void *ctx);
void crm_ws_unlisten_raw(const char *path, void *ctx);

#endif
