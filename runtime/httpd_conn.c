/* httpd_conn.c: the server's connections (who waits, who is busy, which
 * gives way under pressure) and its timeouts (the reaper thread). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "engine.h"
#include "http_internal.h"
#include "metrics.h"
#include "runtime.h"

#include "httpd_internal.h"

/* Connections ------------------------------------------------------------------------ */

/* A connection is either busy with a request (from its complete head to
 * its answer) or waiting: for its first request head, or idle between
 * keep-alive requests. Waiting connections cost a descriptor and hold
 * nothing that is lost when closed, so they are what gives way:
 *   - a request head not complete within httpHeadersTimeout (Node.js's
 *     headersTimeout, 60 s) closes the connection; an idle keep-alive
 *     connection counts from the end of its last answer;
 *   - when the connections reach evict_at (some room short of the limit),
 *     each new one closes the oldest waiting one, so a client that sends
 *     its request at once always finds a place however many connections
 *     trickle their heads a byte at a time (slowloris) or sit idle; when
 *     none is waiting (all busy), the new connection is closed.
 * The waiting list is in the order the connections started waiting, so
 * the oldest is at its head: O(1) for each step. libmicrohttpd calls the
 * CLOSED notification before it closes the descriptor, under conns_mu as
 * the evictions are, so a shutdown() never reaches a reused descriptor. */

static conn_link *link_of(conn_entry *e, size_t off) { return (conn_link *)((char *)e + off); }

/* off: offsetof(conn_entry, wait or body), the link the list uses */
static void list_unlink(conn_list *l, conn_entry *e, size_t off)
{
    conn_link *k = link_of(e, off);
    if (k->prev) link_of(k->prev, off)->next = k->next;
    else l->head = k->next;
    if (k->next) link_of(k->next, off)->prev = k->prev;
    else l->tail = k->prev;
    k->prev = k->next = NULL;
    l->n--;
}

static void list_push(conn_list *l, conn_entry *e, size_t off)
{
    conn_link *k = link_of(e, off);
    k->prev = l->tail;
    k->next = NULL;
    if (l->tail) link_of(l->tail, off)->next = e;
    else l->head = e;
    l->tail = e;
    l->n++;
}

static void wait_unlink(crm_httpd *h, conn_entry *e)
{
    if (!e->listed) return;
    list_unlink(&h->waiting, e, offsetof(conn_entry, wait));
    e->listed = false;
}

static void wait_push(crm_httpd *h, conn_entry *e, double now)
{
    if (e->listed || e->evicted) return;
    e->since = now;
    list_push(&h->waiting, e, offsetof(conn_entry, wait));
    e->listed = true;
}

/* A request body still coming (Node.js's requestTimeout, 300 s): a client
 * that trickles it a byte at a time holds its connection and its request
 * memory only until httpBodyTimeout after its head. */
static void body_unlink(crm_httpd *h, conn_entry *e)
{
    if (!e->in_body) return;
    list_unlink(&h->bodies, e, offsetof(conn_entry, body));
    e->in_body = false;
}

static void body_push(crm_httpd *h, conn_entry *e, double now)
{
    if (e->in_body || e->evicted) return;
    e->body_since = now;
    list_push(&h->bodies, e, offsetof(conn_entry, body));
    e->in_body = true;
}

/* Under conns_mu: the server thread that owns the connection sees the
 * shutdown as an end of stream and closes it. */
static void shut_locked(crm_httpd *h, conn_entry *e)
{
    wait_unlink(h, e);
    body_unlink(h, e);
    e->evicted = true;
    h->nevicting++;
    shutdown(e->fd, SHUT_RDWR);
}

/* shut_locked for a connection waiting for a head, counted for the log */
static void evict_locked(crm_httpd *h, conn_entry *e)
{
    shut_locked(h, e);
    h->evicted++;
}

static void log_evictions(crm_httpd *h, double now)
{
    pthread_mutex_lock(&h->conns_mu);
    unsigned long long n = h->evicted - h->evicted_logged;
    bool due = n && now - h->last_evict_log >= 10000;
    if (due) {
        h->evicted_logged = h->evicted;
        h->last_evict_log = now;
    }
    size_t open = h->nconns;
    pthread_mutex_unlock(&h->conns_mu);
    if (due)
        httpd_log(h, CRM_LOG_WARN,
             "closed %llu connections that sent no complete request head in time (httpHeadersTimeout %.0f ms) "
             "or gave way to new ones (%zu open, limit %zu)",
             n, h->head_timeout_ms, open, h->conn_limit);
}

void httpd_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    crm_httpd *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_entry *e = calloc(1, sizeof *e);
        *socket_context = e;
        if (!e) return;
        e->fd = ci ? ci->connect_fd : -1;
        httpd_recv_track(e->fd, true);
        double now = httpd_mono_ms();
        pthread_mutex_lock(&h->conns_mu);
        h->nconns++;
        while (h->nconns - h->nevicting > h->evict_at && h->waiting.head) evict_locked(h, h->waiting.head);
        if (h->nconns - h->nevicting > h->evict_at) evict_locked(h, e); /* all busy: no room */
        else wait_push(h, e, now);
        while (h->waiting.n > h->max_waiting) evict_locked(h, h->waiting.head);
        pthread_mutex_unlock(&h->conns_mu);
        return;
    }
    conn_entry *e = *socket_context;
    if (!e) return;
    *socket_context = NULL;
    httpd_recv_track(e->fd, false);
    pthread_mutex_lock(&h->conns_mu);
    wait_unlink(h, e);
    body_unlink(h, e);
    if (e->evicted) h->nevicting--;
    h->nconns--;
    pthread_mutex_unlock(&h->conns_mu);
    free(e->upgrade_buf);
    free(e);
}

/* libmicrohttpd 0.9.75 forwards an upgraded TLS connection (wss://)
 * through buffers taken from the connection's memory pool, but its
 * response header build has given the whole pool to the write buffer
 * (connection_maximize_write_buffer) and the upgrade does not get it
 * back: it falls back to its 8-byte emergency buffer, 4 bytes each way,
 * and a 2 MB message took 60-100 s (30,000 sendto calls of 4 bytes in
 * 12 s). A standalone MHD program shows the same, whatever the pool size
 * or daemon flags. The handle's four buffer fields are set here to a
 * buffer of our own, only on that exact version and only when they hold
 * exactly the emergency buffer (pointers into the handle 4 bytes apart,
 * sizes 4, nothing buffered), so another layout is left alone. The
 * buffer is freed with the connection (NOTIFY_CLOSED comes after
 * libmicrohttpd cleaned the upgraded connection up). */
static conn_entry *conn_of(struct MHD_Connection *c);
#define UPGRADE_BUF_HALF 32768
struct urh_0975 { /* the head of struct MHD_UpgradeResponseHandle in 0.9.75 (x86-64/aarch64 LP64) */
    void *connection, *next, *prev, *next_cleanup, *prev_cleanup, *next_ready;
    char *in_buffer, *out_buffer;
    size_t in_buffer_size, out_buffer_size, in_buffer_used, out_buffer_used;
};
#define URH_0975_EBUF 128 /* offset of e_buf[8] */

void crm_httpd_upgrade_buffers(struct MHD_Connection *c, struct MHD_UpgradeResponseHandle *urh)
{
    static int known = -1;
    if (known < 0) known = sizeof(void *) == 8 && sizeof(size_t) == 8 && !strcmp(MHD_get_version(), "0.9.75");
    if (!known || !urh) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return; /* plain http: no forwarding */
    conn_entry *e = conn_of(c);
    if (!e || e->upgrade_buf) return;
    struct urh_0975 u;
    memcpy(&u, urh, sizeof u);
    char *ebuf = (char *)urh + URH_0975_EBUF;
    if (u.in_buffer != ebuf || u.out_buffer != ebuf + 4 || u.in_buffer_size != 4 || u.out_buffer_size != 4 ||
        u.in_buffer_used || u.out_buffer_used)
        return;
    char *buf = malloc(2 * UPGRADE_BUF_HALF);
    if (!buf) return;
    e->upgrade_buf = buf;
    u.in_buffer = buf;
    u.out_buffer = buf + UPGRADE_BUF_HALF;
    u.in_buffer_size = u.out_buffer_size = UPGRADE_BUF_HALF;
    memcpy(urh, &u, sizeof u);
}

static conn_entry *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's request head is complete: it is busy now. */
void httpd_conn_head_done(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    pthread_mutex_lock(&h->conns_mu);
    wait_unlink(h, e);
    pthread_mutex_unlock(&h->conns_mu);
}

/* Its request has a body to come: it must be complete in time. */
void httpd_conn_body_started(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e || h->body_timeout_ms <= 0) return;
    double now = httpd_mono_ms();
    pthread_mutex_lock(&h->conns_mu);
    body_push(h, e, now);
    pthread_mutex_unlock(&h->conns_mu);
}

/* Its request's body is complete (or no longer read). */
void httpd_conn_body_done(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    pthread_mutex_lock(&h->conns_mu);
    body_unlink(h, e);
    pthread_mutex_unlock(&h->conns_mu);
}

/* Its request is answered: it waits for the next one (keep-alive). */
void httpd_conn_idle(crm_httpd *h, struct MHD_Connection *c)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    double now = httpd_mono_ms();
    pthread_mutex_lock(&h->conns_mu);
    wait_push(h, e, now);
    pthread_mutex_unlock(&h->conns_mu);
}

/* The reaper's part: closes connections past httpHeadersTimeout, and
 * those whose request body is not complete within httpBodyTimeout. */
static void reap_heads(crm_httpd *h)
{
    double now = httpd_mono_ms();
    unsigned long long bodies = 0;
    pthread_mutex_lock(&h->conns_mu);
    if (h->head_timeout_ms > 0)
        while (h->waiting.head && h->waiting.head->since + h->head_timeout_ms <= now) evict_locked(h, h->waiting.head);
    if (h->body_timeout_ms > 0)
        while (h->bodies.head && h->bodies.head->body_since + h->body_timeout_ms <= now) {
            shut_locked(h, h->bodies.head);
            h->body_expired++;
        }
    if (h->body_expired != h->body_expired_logged) {
        bodies = h->body_expired - h->body_expired_logged;
        h->body_expired_logged = h->body_expired;
    }
    pthread_mutex_unlock(&h->conns_mu);
    if (bodies)
        httpd_log(h, CRM_LOG_WARN, "closed %llu connections whose request body was not complete within %.0f ms (httpBodyTimeout)",
             bodies, h->body_timeout_ms);
    log_evictions(h, now);
}


/* Timeouts --------------------------------------------------------------------------- */

static void reap(crm_httpd *h)
{
    req_state *expired[64];
    size_t n;
    do {
        n = 0;
        double now = httpd_mono_ms();
        pthread_mutex_lock(&h->slots_lock);
        for (size_t i = 0; i < h->max_inflight && n < 64 && h->inflight; i++) {
            req_state *r = h->slots[i];
            if (r && r->deadline > 0 && r->deadline <= now) {
                httpd_slot_claim_locked(h, r);
                expired[n++] = r;
            }
        }
        pthread_mutex_unlock(&h->slots_lock);
        for (size_t i = 0; i < n; i++) {
            httpd_log(h, CRM_LOG_WARN, "%s %s: no http response within %.0f ms (httpRequestTimeout): answered 504",
                 expired[i]->method, expired[i]->uri, h->timeout_ms);
            httpd_deliver(expired[i], 504, httpd_status_response(504));
        }
    } while (n == 64);
}

void *httpd_reaper_main(void *arg)
{
    crm_httpd *h = arg;
    double tick = h->timeout_ms > 0 ? h->timeout_ms / 4 : 1000;
    if (h->head_timeout_ms > 0 && h->head_timeout_ms / 4 < tick) tick = h->head_timeout_ms / 4;
    if (h->body_timeout_ms > 0 && h->body_timeout_ms / 4 < tick) tick = h->body_timeout_ms / 4;
    if (tick < 20) tick = 20;
    if (tick > 1000) tick = 1000;
    pthread_mutex_lock(&h->reaper_mu);
    while (!atomic_load(&h->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)(tick * 1e6);
        ts.tv_sec += ns / 1000000000LL;
        ts.tv_nsec = ns % 1000000000LL;
        pthread_cond_timedwait(&h->reaper_cv, &h->reaper_mu, &ts);
        if (atomic_load(&h->stopping)) break;
        pthread_mutex_unlock(&h->reaper_mu);
        if (h->timeout_ms > 0) reap(h);
        reap_heads(h);
        pthread_mutex_lock(&h->reaper_mu);
    }
    pthread_mutex_unlock(&h->reaper_mu);
    return NULL;
}
