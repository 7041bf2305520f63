/* ws_server.c: see ws_server.h. */
#include "ws_server.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <unistd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine.h"
#include "httpd.h"
#include "net/websocket.h"

typedef struct {
    char *path;
    crm_node *node;
    crm_ws_accept_fn accept;
    crm_ws_raw_fn raw; /* a listener that is not a node (the editor's /comms) */
    void *raw_ctx;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *tab;
static size_t n, cap;

typedef struct {
    crm_node *node;
    crm_ws_accept_fn accept;
    crm_ws_raw_fn raw;
    void *raw_ctx;
} pending;

void crm_ws_socket_release(crm_runtime *rt, void *urh)
{
    if (!urh) return;
    /* a stop (not a deploy) stops the HTTP server before the nodes close;
     * the server closes its upgraded connections then, and their handles
     * are gone */
    if (rt && __atomic_load_n(&rt->stopping, __ATOMIC_ACQUIRE) && !__atomic_load_n(&rt->redeploying, __ATOMIC_RELAXED))
        return;
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static void drop_socket(void *arg)
{
    crm_ws_socket *s = arg;
    close(s->fd);
    crm_ws_socket_release(s->rt, s->urh);
    free(s);
}

static void on_upgraded(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra, size_t extra_len,
                        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)req_cls;
    crm_httpd_upgrade_buffers(c, urh);
    pending *p = cls;
    crm_ws_socket *s = malloc(sizeof *s + extra_len + 1);
    /* The connection gets its own descriptor. Over plain http libmicrohttpd
     * is done with the upgrade at once: its handle dies with the daemon,
     * which stops before the flows' nodes close. Over https sock is one end
     * of a socketpair whose other end libmicrohttpd's thread forwards to and
     * from the TLS connection, until the handle is released when the
     * connection closes (by the node listener, or by the editor's comms). */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    bool tls = ci && ci->tls_session;
    s->fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    s->urh = tls ? urh : NULL;
    s->rt = p->node ? p->node->rt : NULL;
    if (!tls || s->fd < 0) MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    if (s->fd < 0) {
        free(s);
        free(p);
        return;
    }
    s->extra_len = extra_len;
    if (extra_len) memcpy(s->extra, extra, extra_len);
    /* the listener may have gone since the handshake */
    bool found = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (p->raw ? tab[i].raw == p->raw && tab[i].raw_ctx == p->raw_ctx : tab[i].node == p->node) found = true;
    if (found && p->raw) p->raw(p->raw_ctx, s);
    else if (found) crm_node_post_ex(p->node, (void (*)(crm_node *, void *))p->accept, drop_socket, s);
    pthread_mutex_unlock(&lock);
    if (!found) drop_socket(s);
    free(p);
}

static bool has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = v; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        if (!strncasecmp(p, tok, tl) && (p[tl] == 0 || p[tl] == ',' || p[tl] == ' ')) return true;
        p = strchr(p, ',');
    }
    return false;
}

static struct MHD_Response *bad_request(unsigned *status)
{
    static const char body[] = "Bad Request";
    *status = 400;
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Connection", "close");
    return r;
}

static struct MHD_Response *upgrade(struct MHD_Connection *c, const char *path, unsigned *status)
{
    const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
    if (!up || strcasecmp(up, "websocket")) return NULL;
    pending *p = NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].path, path)) {
            p = malloc(sizeof *p);
            p->node = tab[i].node;
            p->accept = tab[i].accept;
            p->raw = tab[i].raw;
            p->raw_ctx = tab[i].raw_ctx;
            break;
        }
    pthread_mutex_unlock(&lock);
    if (!p) return NULL;
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
    if (!key || strlen(key) != 24 || !ver || (strcmp(ver, "13") && strcmp(ver, "8")) || !conn ||
        !has_token(conn, "upgrade")) {
        free(p);
        return bad_request(status);
    }
    struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgraded, p);
    if (!r) {
        free(p);
        return NULL;
    }
    char acc[29];
    crm_ws_accept_key(key, acc);
    MHD_add_response_header(r, "Upgrade", "websocket");
    MHD_add_response_header(r, "Sec-WebSocket-Accept", acc);
    /* ws's default: the first subprotocol the client offers */
    const char *proto = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Protocol");
    if (proto) {
        while (*proto == ' ') proto++;
        size_t l = strcspn(proto, ", ");
        char *first = strndup(proto, l);
        if (*first) MHD_add_response_header(r, "Sec-WebSocket-Protocol", first);
        free(first);
    }
    *status = MHD_HTTP_SWITCHING_PROTOCOLS;
    return r;
}

/* Adds e (its path strdup'ed here) unless its path is taken: 0 or -1. */
static int add_entry(entry e)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].path, e.path)) {
            pthread_mutex_unlock(&lock);
            return -1;
        }
    if (n == cap) {
        cap = cap ? 2 * cap : 8;
        tab = realloc(tab, cap * sizeof *tab);
    }
    e.path = strdup(e.path);
    tab[n++] = e;
    pthread_mutex_unlock(&lock);
    crm_httpd_set_upgrade_handler(upgrade);
    return 0;
}

int crm_ws_listen(const char *path, crm_node *listener, crm_ws_accept_fn accept)
{
    return add_entry((entry){(char *)path, listener, accept, NULL, NULL});
}

void crm_ws_unlisten(const char *path, crm_node *listener)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].path, path) && tab[i].node == listener) {
            free(tab[i].path);
            tab[i] = tab[--n];
            break;
        }
    pthread_mutex_unlock(&lock);
}

int crm_ws_listen_raw(const char *path, crm_ws_raw_fn fn, void *ctx)
{
    return add_entry((entry){(char *)path, NULL, NULL, fn, ctx});
}

void crm_ws_unlisten_raw(const char *path, void *ctx)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].path, path) && tab[i].raw && tab[i].raw_ctx == ctx) {
            free(tab[i].path);
            tab[i] = tab[--n];
            break;
        }
    pthread_mutex_unlock(&lock);
}
