/* httpd_loop.c: libmicrohttpd driven from a flow's loop, or from the
 * server's own thread while it cannot be (see the comment below). */
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

/* Driving from a flow's loop ------------------------------------------------------------ */

_Thread_local crm_httpd *tl_driving;
_Thread_local req_state *tl_deferred;


/* On a small machine (two cores or fewer, no httpThreads set, no TLS;
 * httpOnFlowLoop forces it either way) libmicrohttpd runs without threads
 * of its own (epoll, driven from outside), and two drivers take turns:
 *   - drv_thread, ours, as long as the routes of http in nodes live on more
 *     than one loop (or none), during a deploy and while stopping;
 *   - the loop that holds every route: it watches libmicrohttpd's epoll
 *     descriptor (crm_watch_fd on one of its http in nodes) and calls
 *     MHD_run itself. A request for a route is then turned into a message
 *     and run through the flow right inside the access handler
 *     (httpd_run_inline); when the flow answers at once, as an http in -> change
 *     -> http response flow does, the answer is queued there: no suspend,
 *     no resume, no thread woken, as in a bare libmicrohttpd server.
 * Only the driver calls MHD_run. drv_thread hands over by posting an attach
 * job to the loop (DRV_TO_LOOP) and stops polling; the loop hands back in a
 * detach job (deploys and stops ask for it, crm_httpd_hold) or when its
 * node closes. While the loop drives, admin API requests (a deploy stops
 * that very loop) are suspended and dispatched by drv_thread, whose answer
 * resumes them. */

pthread_mutex_t httpd_token_mu = PTHREAD_MUTEX_INITIALIZER;

void httpd_token_put(drv_token *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1) free(t);
}

typedef struct {
    drv_token *t;
    unsigned gen;
} attach_job;

void httpd_ctl_wake(crm_httpd *h)
{
    uint64_t one = 1;
    if (h->ctl_efd >= 0) {
        ssize_t w = write(h->ctl_efd, &one, sizeof one);
        (void)w;
    }
}

static void on_mhd_soon(crm_node *n, void *arg);
static void drive_now(crm_httpd *h);

static void resume_efd_write(crm_httpd *h)
{
    uint64_t one = 1;
    ssize_t w = write(h->resume_efd, &one, sizeof one);
    (void)w;
}

/* At the end of the driving loop's turn: one MHD_run for the connections
 * resumed during it. The server is reached through its token (it may be
 * stopped and freed meanwhile by another thread once drv_thread took over). */
static void drive_at_turn_end(void *arg)
{
    drv_token *t = arg;
    pthread_mutex_lock(&httpd_token_mu);
    crm_httpd *h = t->h;
    httpd_token_put(t);
    if (!h) {
        pthread_mutex_unlock(&httpd_token_mu);
        return;
    }
    pthread_mutex_lock(&h->drv_mu);
    h->turn_drive = false;
    bool here = h->driver == DRV_LOOP && h->drive_loop && h->drive_loop == crm_loop_current();
    pthread_mutex_unlock(&h->drv_mu);
    if (!here) resume_efd_write(h); /* the driver changed: wake whoever drives now */
    pthread_mutex_unlock(&httpd_token_mu);
    if (here) drive_now(h); /* the server lives while this loop drives it */
}

/* A connection was resumed: the driver must run libmicrohttpd. On the
 * driving loop itself (an answer from its own flow, after a delay or a
 * request elsewhere) that is done at the end of the loop's turn, once for
 * all the answers of the turn, instead of writing the eventfd this loop
 * watches (a write, a wake-up and a read per answer). */
void httpd_wake_driver(crm_httpd *h)
{
    crm_loop *cur = crm_loop_current();
    if (cur) {
        pthread_mutex_lock(&h->drv_mu);
        bool here = h->driver == DRV_LOOP && h->drive_loop == cur;
        bool asked = here && h->turn_drive;
        if (here && !asked) {
            atomic_fetch_add(&h->token->refs, 1);
            if (crm_loop_at_turn_end(drive_at_turn_end, h->token)) asked = h->turn_drive = true;
            else atomic_fetch_sub(&h->token->refs, 1);
        }
        pthread_mutex_unlock(&h->drv_mu);
        if (asked) return;
    }
    resume_efd_write(h);
}

/* On the driving loop. libmicrohttpd may have work left that no descriptor
 * will announce (a pipelined request already read, a connection resumed):
 * its timeout is then 0, and it runs again, a few times here, then from a
 * timer so that the loop's other work gets its turn. */
static void drive_now(crm_httpd *h)
{
    crm_httpd *saved = tl_driving;
    tl_driving = h;
    MHD_UNSIGNED_LONG_LONG to = 1;
    for (int i = 0; i < 8; i++) {
        MHD_run(h->d);
        if (MHD_get_timeout(h->d, &to) != MHD_YES || to > 0) break;
    }
    tl_driving = saved;
    if (to == 0 && !h->drive_soon && h->drive_node) h->drive_soon = crm_timer_start(h->drive_node, 0, 0, on_mhd_soon, h);
}

static void on_mhd_soon(crm_node *n, void *arg)
{
    (void)n;
    crm_httpd *h = arg;
    h->drive_soon = NULL; /* fired: gone */
    drive_now(h);
}

static void on_mhd_ready(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)revents;
    crm_httpd *h = arg;
    if (fd == h->resume_efd) {
        uint64_t v;
        ssize_t rr = read(fd, &v, sizeof v);
        (void)rr;
    }
    drive_now(h);
}

/* libmicrohttpd's own timeouts (idle connections) are checked in MHD_run */
static void on_mhd_tick(crm_node *n, void *arg)
{
    (void)n;
    drive_now(arg);
}

static void attach_on_loop(crm_node *n, void *arg)
{
    attach_job a = *(attach_job *)arg;
    free(arg);
    pthread_mutex_lock(&httpd_token_mu);
    crm_httpd *h = a.t->h;
    httpd_token_put(a.t);
    if (!h) {
        pthread_mutex_unlock(&httpd_token_mu);
        return;
    }
    pthread_mutex_lock(&h->drv_mu);
    bool ok = h->driver == DRV_TO_LOOP && h->attach_gen == a.gen && !h->held && !h->no_attach;
    if (ok) {
        h->drive_watch = crm_watch_fd(n, h->mhd_epfd, POLLIN, on_mhd_ready, h);
        h->resume_watch = crm_watch_fd(n, h->resume_efd, POLLIN, on_mhd_ready, h);
        h->drive_timer = h->drive_watch ? crm_timer_start(n, 1000, 1000, on_mhd_tick, h) : NULL;
        ok = h->drive_watch && h->resume_watch && h->drive_timer;
        if (!ok) {
            crm_watch_cancel(h->drive_watch);
            crm_watch_cancel(h->resume_watch);
            crm_timer_cancel(h->drive_timer);
        }
    }
    if (ok) {
        h->drive_node = n;
        h->drive_loop = n->loop;
        h->driver = DRV_LOOP;
    } else if (h->driver == DRV_TO_LOOP && h->attach_gen == a.gen) {
        h->driver = DRV_THREAD;
    }
    pthread_cond_broadcast(&h->drv_cv);
    pthread_mutex_unlock(&h->drv_mu);
    if (!ok) httpd_ctl_wake(h);
    pthread_mutex_unlock(&httpd_token_mu);
    if (ok) drive_now(h); /* what came meanwhile; the server lives while this loop drives it */
}

static void attach_dropped(void *arg)
{
    attach_job a = *(attach_job *)arg;
    free(arg);
    pthread_mutex_lock(&httpd_token_mu);
    crm_httpd *h = a.t->h;
    httpd_token_put(a.t);
    if (h) {
        pthread_mutex_lock(&h->drv_mu);
        if (h->driver == DRV_TO_LOOP && h->attach_gen == a.gen) h->driver = DRV_THREAD;
        pthread_cond_broadcast(&h->drv_cv);
        pthread_mutex_unlock(&h->drv_mu);
        httpd_ctl_wake(h);
    }
    pthread_mutex_unlock(&httpd_token_mu);
}

/* On the driving loop: drv_thread takes over. */
void httpd_detach_here(crm_httpd *h, bool node_closed)
{
    pthread_mutex_lock(&h->drv_mu);
    if (h->driver == DRV_LOOP && (node_closed || crm_loop_current() == h->drive_loop)) {
        if (!node_closed) {
            crm_watch_cancel(h->drive_watch);
            crm_watch_cancel(h->resume_watch);
            crm_timer_cancel(h->drive_timer);
            crm_timer_cancel(h->drive_soon);
        }
        h->resume_watch = NULL;
        h->drive_soon = NULL;
        h->drive_watch = NULL;
        h->drive_timer = NULL;
        h->drive_node = NULL;
        h->drive_loop = NULL;
        h->driver = DRV_THREAD;
    }
    h->detach_posted = false;
    pthread_cond_broadcast(&h->drv_cv);
    pthread_mutex_unlock(&h->drv_mu);
    httpd_ctl_wake(h);
}

static void detach_job(crm_node *n, void *arg)
{
    (void)n;
    httpd_detach_here(arg, false);
}

/* the node closed first: its watch and timer went with it */
static void detach_dropped(void *arg) { httpd_detach_here(arg, true); }

/* Any thread but drv_thread: returns once drv_thread drives (or will, when
 * it is back from what it runs now). The caller set held or no_attach. */
void httpd_take_back(crm_httpd *h)
{
    if (!h->ext) return;
    pthread_mutex_lock(&h->drv_mu);
    for (;;) {
        if (h->driver == DRV_THREAD) break;
        if (h->driver == DRV_TO_LOOP) { /* the attach job, when it runs, finds a newer generation */
            h->attach_gen++;
            h->driver = DRV_THREAD;
            break;
        }
        if (crm_loop_current() == h->drive_loop) {
            pthread_mutex_unlock(&h->drv_mu);
            httpd_detach_here(h, false);
            pthread_mutex_lock(&h->drv_mu);
            continue;
        }
        if (!h->detach_posted) {
            h->detach_posted = true;
            crm_node_post_ex(h->drive_node, detach_job, detach_dropped, h);
        }
        pthread_cond_wait(&h->drv_cv, &h->drv_mu);
    }
    pthread_mutex_unlock(&h->drv_mu);
    httpd_ctl_wake(h);
}

/* drv_thread, under drv_mu: hands the server to the loop of every route. */
static void maybe_attach_locked(crm_httpd *h)
{
    if (h->driver != DRV_THREAD || h->held || h->no_attach || h->drv_quit) return;
    pthread_rwlock_rdlock(&h->routes_lock);
    crm_node *n = h->attach_node;
    if (n) {
        attach_job *a = malloc(sizeof *a);
        if (a) {
            atomic_fetch_add(&h->token->refs, 1);
            *a = (attach_job){h->token, ++h->attach_gen};
            h->driver = DRV_TO_LOOP;
            crm_node_post_ex(n, attach_on_loop, attach_dropped, a);
        }
    }
    pthread_rwlock_unlock(&h->routes_lock);
}

/* under routes_lock (written) */
void httpd_routes_changed_locked(crm_httpd *h)
{
    crm_node *n = h->nroutes ? h->routes[0].node : NULL;
    for (size_t i = 1; n && i < h->nroutes; i++)
        if (h->routes[i].node->loop != n->loop) n = NULL;
    h->attach_node = n;
}

/* On the driving loop, inside MHD_run: an admin request for drv_thread. */
enum MHD_Result httpd_defer_to_thread(req_state *r)
{
    crm_httpd *h = r->h;
    MHD_suspend_connection(r->conn);
    atomic_fetch_add(&r->refs, 1);
    r->next_deferred = NULL;
    pthread_mutex_lock(&h->drv_mu);
    if (h->deferred_tail) h->deferred_tail->next_deferred = r;
    else h->deferred_head = r;
    h->deferred_tail = r;
    pthread_mutex_unlock(&h->drv_mu);
    httpd_ctl_wake(h);
    return MHD_YES;
}

static void run_deferred(req_state *r)
{
    tl_deferred = r;
    enum MHD_Result ret = httpd_dispatch(r, r->method);
    tl_deferred = NULL;
    if (r->deferred_queued) {
        r->deferred_queued = false;
        httpd_resume_with_answer(r);
    } else if (ret == MHD_NO) {
        r->fail_close = true;
        httpd_resume_with_answer(r);
    }
    httpd_req_release(r);
}

void *httpd_drv_main(void *arg)
{
    crm_httpd *h = arg;
    struct pollfd p[3] = {{.fd = h->ctl_efd, .events = POLLIN},
                          {.fd = h->resume_efd, .events = POLLIN},
                          {.fd = h->mhd_epfd, .events = POLLIN}};
    pthread_mutex_lock(&h->drv_mu);
    while (!h->drv_quit) {
        while (h->deferred_head) {
            req_state *r = h->deferred_head;
            h->deferred_head = r->next_deferred;
            if (!h->deferred_head) h->deferred_tail = NULL;
            pthread_mutex_unlock(&h->drv_mu);
            run_deferred(r);
            pthread_mutex_lock(&h->drv_mu);
        }
        maybe_attach_locked(h);
        /* only this thread moves the driver away from DRV_THREAD */
        bool drive = h->driver == DRV_THREAD;
        pthread_mutex_unlock(&h->drv_mu);
        int timeout = 1000;
        MHD_UNSIGNED_LONG_LONG to;
        if (drive && MHD_get_timeout(h->d, &to) == MHD_YES && to < 1000) timeout = (int)to;
        int n = poll(p, drive ? 3 : 1, timeout);
        for (int i = 0; i < 2 && n > 0; i++) {
            if (!p[i].revents) continue;
            uint64_t v;
            ssize_t rr = read(p[i].fd, &v, sizeof v);
            (void)rr;
        }
        if (drive) MHD_run(h->d);
        pthread_mutex_lock(&h->drv_mu);
    }
    pthread_mutex_unlock(&h->drv_mu);
    return NULL;
}


/* On the loop that drives the server: the message goes to the http in node
 * and the loop's queue runs until the flow answered or has nothing left to
 * run at once (a delay, a request elsewhere). An answer in time is queued
 * right here, as a bare libmicrohttpd server answers; otherwise the
 * connection is suspended and the answer resumes it, as on the threaded
 * path. */
enum MHD_Result httpd_run_inline(req_state *r)
{
    crm_httpd *h = r->h;
    req_snapshot *s = r->pending_sync;
    r->pending_sync = NULL;
    httpd_run_handoff(s->node, s);
    while (!atomic_load_explicit(&r->inline_answered, memory_order_acquire) && crm_loop_run_next_delivery()) {
    }
    pthread_mutex_lock(&h->slots_lock);
    bool ready = r->reply || r->resp;
    if (!ready) MHD_suspend_connection(r->conn);
    r->inline_held = false;
    pthread_mutex_unlock(&h->slots_lock);
    return ready ? httpd_answer_ready(r) : MHD_YES;
}
