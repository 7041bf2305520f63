/* tcpconn.h: a non-blocking TCP connection on a node's loop, as Node's
 * net.Socket behaves for the tcp and websocket nodes: connect or adopt an
 * accepted socket, write (queued while the kernel's buffer is full), end
 * (close after the queue is flushed) or destroy (close now). Callbacks run
 * on the node's loop; on_close runs once, on a later loop turn, after which
 * the connection is freed. Call every function from the node's loop. */
#ifndef CRM_TCPCONN_H
#define CRM_TCPCONN_H

#include <stdbool.h>
#include <stddef.h>

#include "carmine.h"

typedef struct crm_conn crm_conn;

typedef struct {
    void (*on_connect)(crm_conn *c, void *arg);
    void (*on_data)(crm_conn *c, const unsigned char *data, size_t len, void *arg);
    /* the peer ended its side (Node's 'end'); the connection then closes */
    void (*on_end)(crm_conn *c, void *arg);
    /* closed; err is 0 or the errno that closed it (connect failures too) */
    void (*on_close)(crm_conn *c, int err, void *arg);
} crm_conn_cbs;

/* Starts connecting to host:port (names are resolved at once). NULL only
 * when out of memory; failures arrive as on_close(err). */
crm_conn *crm_conn_connect(crm_node *n, const char *host, int port, const crm_conn_cbs *cbs, void *arg);
/* A connected socket (accepted): the connection owns fd. */
crm_conn *crm_conn_adopt(crm_node *n, int fd, const crm_conn_cbs *cbs, void *arg);
void crm_conn_write(crm_conn *c, const void *data, size_t len);
/* The same for the concatenation of n buffers (a frame's header and its
 * payload): with nothing queued, sent from them in one sendmsg, and only
 * what did not leave is copied. */
struct iovec;
void crm_conn_writev(crm_conn *c, const struct iovec *iov, int n);
/* Closes once everything written has left. */
void crm_conn_end(crm_conn *c);
/* Closes now; on_close follows on a later turn. */
void crm_conn_destroy(crm_conn *c);
/* Closes and frees now without any callback (for a node's close()). */
void crm_conn_free(crm_conn *c);
bool crm_conn_connected(const crm_conn *c);
/* The peer's address as Node shows remoteAddress ("::ffff:127.0.0.1") and port. */
const char *crm_conn_remote(const crm_conn *c, int *port);
/* Bytes queued, not yet written. */
size_t crm_conn_pending(const crm_conn *c);
void crm_conn_set_arg(crm_conn *c, void *arg);
/* Stops (false) or resumes reading (backpressure). */
void crm_conn_pause(crm_conn *c, bool paused);

/* TLS (GnuTLS: libmicrohttpd has it loaded already). Credentials from a
 * tls-config node's options (runtime/httpclient.h) as Node's
 * tls.createSecureContext takes them: key and cert, ca replacing the
 * system's roots. server: for a listening side. NULL with *err (malloc'd,
 * Node's wording). Reference counted: every connection using it holds one. */
struct crm_tls_options;
typedef struct crm_tls crm_tls;
crm_tls *crm_tls_new(const struct crm_tls_options *o, bool server, char **err);
/* The credentials of the tls-config node with id, as seen from n; NULL
 * when there is no such node (*err NULL) or they fail (*err set). */
crm_tls *crm_tls_of_node(crm_node *n, const char *id, bool server, char **err);
void crm_tls_unref(crm_tls *t);
/* Whether a tls-config node asks to check the server's certificate
 * (verifyservercert, Node's rejectUnauthorized), and its servername. */
bool crm_tls_verify(const crm_tls *t);
/* Makes c a TLS connection; call right after crm_conn_connect or
 * crm_conn_adopt. A client sends host (or the config's servername) as SNI
 * unless it is an IP address (host NULL: no SNI, no checks) and, when verify, checks the server's
 * certificate and name as Node's tls.connect does. on_connect runs once
 * the handshake is done, for accepted connections too; writes before that
 * are queued. The handshake runs on the loop's poll, never blocking. */
void crm_conn_start_tls(crm_conn *c, crm_tls *t, const char *host, bool verify);
/* When TLS closed the connection (on_close's err is EPROTO): String(err)
 * of Node's error ("Error: self-signed certificate"); else NULL. */
const char *crm_conn_error(const crm_conn *c);
/* The call on_close's err came from, as Node names it in the error's text
 * ("read ECONNRESET"): "read", "write" or "connect" (a connect that failed
 * on the socket); NULL when it came from none of them (a name that did not
 * resolve, no socket, TLS: see crm_conn_error). */
const char *crm_conn_error_op(const crm_conn *c);

/* Whether the calling thread runs n's loop at this moment (a node of the
 * same flow as n): what n's loop would do later in this turn can be done
 * now, without a job. */
bool crm_on_loop_of(const crm_node *n);

/* A listening socket on port (all addresses, IPv6 dual stack like Node's
 * listen(port), IPv4 when IPv6 is not there); -1 with errno. */
int crm_tcp_listen(int port, const char *host);

#endif
