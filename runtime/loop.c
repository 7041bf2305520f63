/* loop.c: one event loop per flow (tab).
 *
 * Node-RED's ordering comes from one FIFO of setImmediate callbacks. Each loop
 * keeps exactly that: a ring buffer of pending deliveries, run in order, one
 * handler at a time, so a message's descendants run breadth-first. Work from
 * other threads (HTTP server, curl, other loops) lands in an inbox guarded by
 * a mutex, swapped into the FIFO in one go; an eventfd wakes a loop only when
 * it sleeps. Timers live in a binary heap on the loop; a timerfd armed for
 * the earliest one wakes it: the wait's own timeout would not do, since the
 * kernel lets it run late by a thousandth of its length (0.1 ms on a 100 ms
 * delay, a tenth of a millisecond on every answer of a delayed HTTP flow).
 *
 * The loop sleeps in epoll_wait on one epoll instance holding the eventfd,
 * the timerfd and every watched descriptor (level-triggered, so a watch
 * behaves as it did under poll(2): its handler runs on every turn while the
 * descriptor stays ready). A turn costs the kernel the ready descriptors,
 * not all the watched ones (10,000 idle websocket clients cost nothing).
 * epoll watches a file description, poll a descriptor number; the
 * differences that follow are handled in "File descriptor watches" below.
 *
 * Timers count from the loop's clock (crm_loop_now), which, like Node's
 * loop time, stands still during a turn. A turn that a wake-up started
 * begins at the wake-up call (another thread's message, the timerfd's due
 * time), not at the later moment the kernel ran the loop: on this kind of
 * machine that is 0.05-0.2 ms, which a 100 ms delay would otherwise add to
 * every message it holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "engine.h"

/* Kept to 32 bytes: a hop writes one into the ring and reads it back. */
typedef struct {
    crm_node *node;
    void (*fn)(crm_node *, void *);      /* NULL: a delivery of msg to node's input */
    union {
        json_t *msg;
        void *arg;
    };
    void (*drop)(void *);                /* fn jobs: instead of fn when the node closed */
} job;

/* A hand-off to another loop, held until the running handler returns. */
typedef struct {
    job j;
    crm_loop *target;
} outjob;

typedef struct {
    job *items;
    size_t head, len, cap;
} jobq;

struct crm_timer {
    double due;
    double repeat;
    crm_timer_fn fn;
    void *arg;
    crm_node *node;
    crm_loop *loop;
    size_t heap_index;
    crm_timer *next_of_node, *prev_of_node;
};

struct crm_loop {
    crm_runtime *rt;
    char *name;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    jobq fifo;
    pthread_mutex_t lock;  /* guards inbox and sleeping */
    jobq inbox;
    outjob *outbox;        /* this loop's hand-offs to other loops, flushed after each job */
    size_t noutbox, capoutbox;
    json_t **graveyard;    /* messages released while a handler runs, freed when it returns */
    size_t ngrave, capgrave;
    bool sleeping;
    int budget;            /* deliveries left in this turn (crm_loop_run_next_delivery too) */
    double woken_at;       /* crm_now_ms() when a sender woke the sleeping loop, or 0 */
    double turn_ms;        /* the loop's clock for the current turn (crm_loop_now) */
    atomic_bool inbox_pending;
    atomic_bool busy;
    int efd;
    int tfd;          /* timerfd for the earliest timer, or -1 (then the wait's timeout) */
    int epfd;         /* epoll instance: efd, tfd and the watches; -1 until the first watch
                         (a loop without watches waits in ppoll on efd and tfd: a tab
                         costs two descriptors, as the loader counts) */
    double tfd_due;   /* what tfd is armed for, 0: disarmed */
    crm_timer **heap;
    size_t nheap, capheap;
    struct wslot *slots;   /* watches by slot (epoll's data names slot and generation) */
    size_t nslots, capslots;
    uint32_t *freeslots;   /* slots free for reuse */
    size_t nfree, capfree;
    crm_watch **dead;      /* cancelled watches, freed before the next wait */
    size_t ndead, capdead;
    crm_watch **dirty;     /* watches whose events changed, applied before the next wait */
    size_t ndirty, capdirty;
    crm_watch **always;    /* descriptors epoll refuses (regular files): always ready, as in poll */
    size_t nalways, capalways;
    unsigned *fdrefs;      /* live registrations per descriptor number */
    size_t capfdrefs;
    bool rebuild;          /* a stale registration fired: make a new epoll instance */
    struct epoll_event *evs;
    int capevs;
    unsigned char *readbuf; /* crm_loop_read_buffer: made on first use */
    /* for /metrics: written by the loop's thread, read by a scrape */
    double inbox_since;    /* when the inbox got its first job (under lock) */
    _Atomic uint64_t busy_ns, inbox_lag_ns, inbox_lag_max_ns, inbox_batches;
    _Atomic uint64_t timer_late_ns, timer_late_max_ns, timers_run;
};

struct crm_watch {
    int fd;
    int regfd;        /* the descriptor registered with epoll: fd, or a dup of it, or -1 */
    unsigned events;
    unsigned armed;   /* the events epoll has (events may differ until the next wait) */
    uint32_t slot;
    bool dirty, always;
    crm_watch_fn fn;
    void *arg;
    crm_node *node;
    crm_loop *loop;
    bool dead;
    crm_watch *next_of_node, *prev_of_node;
};

struct wslot {
    crm_watch *w;     /* NULL: free */
    uint32_t gen;     /* bumped when the slot is freed */
};

static _Thread_local crm_loop *current_loop;
static void flush_outbox(crm_loop *l);
static void bury(crm_loop *l);

/* Deliveries a loop runs before it looks at timers and its inbox again. */
#define TURN_JOBS 1024
/* how long a loop sleeps after work before it gives its free memory back */
#define ALLOC_IDLE_MS 50
/* and the code pages too when no timer of the loop is due sooner than this */
#define CODE_QUIET_MS 200

crm_loop *crm_loop_current(void) { return current_loop; }

/* A socket's read lands here before its bytes are copied out. One per loop,
 * not a static __thread array: a thread's static TLS is zeroed, so resident,
 * in every thread of the process (two 64 kB arrays were 128 kB per thread). */
unsigned char *crm_loop_read_buffer(void)
{
    crm_loop *l = current_loop;
    if (!l) return NULL;
    if (!l->readbuf) l->readbuf = malloc(CRM_LOOP_READ_BUFFER);
    return l->readbuf;
}

double crm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double crm_loop_now(void)
{
    crm_loop *l = current_loop;
    return l ? l->turn_ms : crm_now_ms();
}

double crm_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return floor(ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
}

/* FIFO ---------------------------------------------------------------------- */

static __attribute__((noinline)) void jobq_grow(jobq *q)
{
    size_t cap = q->cap ? q->cap * 2 : 256;
    job *items = malloc(cap * sizeof *items);
    if (!items) abort();
    for (size_t i = 0; i < q->len; i++) items[i] = q->items[(q->head + i) & (q->cap - 1)];
    free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = cap;
}

/* The next free slot, for the caller to fill in place. */
static inline job *jobq_slot(jobq *q)
{
    if (q->len == q->cap) jobq_grow(q);
    job *slot = &q->items[(q->head + q->len) & (q->cap - 1)]; /* cap is a power of two */
    q->len++;
    return slot;
}

static void jobq_push(jobq *q, job j)
{
    *jobq_slot(q) = j;
}

static bool jobq_pop(jobq *q, job *out)
{
    if (!q->len) return false;
    *out = q->items[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return true;
}

/* Timers (binary min-heap on due time) ----------------------------------------- */

static void heap_swap(crm_loop *l, size_t a, size_t b)
{
    crm_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_index = a;
    l->heap[b]->heap_index = b;
}

static void heap_up(crm_loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->due <= l->heap[i]->due) break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(crm_loop *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && l->heap[a]->due < l->heap[m]->due) m = a;
        if (b < l->nheap && l->heap[b]->due < l->heap[m]->due) m = b;
        if (m == i) break;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_push(crm_loop *l, crm_timer *t)
{
    if (l->nheap == l->capheap) {
        l->capheap = l->capheap ? l->capheap * 2 : 64;
        l->heap = realloc(l->heap, l->capheap * sizeof *l->heap);
        if (!l->heap) abort();
    }
    t->heap_index = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->heap_index);
}

static void heap_remove(crm_loop *l, crm_timer *t)
{
    size_t i = t->heap_index;
    l->nheap--;
    if (i != l->nheap) {
        l->heap[i] = l->heap[l->nheap];
        l->heap[i]->heap_index = i;
        heap_down(l, i);
        heap_up(l, i);
    }
}

static void timer_unlink_node(crm_timer *t)
{
    if (t->prev_of_node) t->prev_of_node->next_of_node = t->next_of_node;
    else if (t->node) t->node->timers = t->next_of_node;
    if (t->next_of_node) t->next_of_node->prev_of_node = t->prev_of_node;
    t->prev_of_node = t->next_of_node = NULL;
}

void crm_assert_on_loop(const crm_node *n, const char *fn)
{
    crm_loop *l = n->loop;
    if (current_loop == l || !l || !l->running) return;
    fprintf(stderr, "carmine: %s() called for node %s (%s) off its loop thread\n", fn, n->id, n->type->type);
    abort();
}

static crm_timer *timer_new(crm_node *n, double due, double repeat_ms, crm_timer_fn fn, void *arg)
{
    CRM_ASSERT_ON_LOOP(n);
    crm_loop *l = n->loop;
    crm_timer *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->due = due;
    t->repeat = repeat_ms > 0 ? repeat_ms : 0;
    t->fn = fn;
    t->arg = arg;
    t->node = n;
    t->loop = l;
    t->next_of_node = n->timers;
    if (n->timers) n->timers->prev_of_node = t;
    n->timers = t;
    heap_push(l, t);
    return t;
}

crm_timer *crm_timer_start(crm_node *n, double delay_ms, double repeat_ms, crm_timer_fn fn, void *arg)
{
    return timer_new(n, crm_loop_now() + (delay_ms >= 0 ? delay_ms : 0), repeat_ms, fn, arg);
}

crm_timer *crm_timer_start_at(crm_node *n, double due_ms, crm_timer_fn fn, void *arg)
{
    return timer_new(n, isnan(due_ms) ? crm_loop_now() : due_ms, 0, fn, arg);
}

void crm_timer_cancel(crm_timer *t)
{
    if (!t) return;
    heap_remove(t->loop, t);
    timer_unlink_node(t);
    free(t);
}

void crm_timers_cancel_node(crm_node *n)
{
    while (n->timers) crm_timer_cancel(n->timers);
}

void crm_timers_cancel_all(crm_node *n) { crm_timers_cancel_node(n); }

/* Adds ms to a nanosecond sum and keeps its largest (loop thread only). */
static void stat_time(_Atomic uint64_t *sum, _Atomic uint64_t *max, double ms)
{
    uint64_t ns = ms > 0 ? (uint64_t)(ms * 1e6) : 0;
    CRM_STAT_BUMP(*sum, ns);
    if (ns > CRM_STAT_GET(*max)) atomic_store_explicit(max, ns, memory_order_relaxed);
}

static void run_due_timers(crm_loop *l)
{
    double now = crm_now_ms();
    while (l->nheap && l->heap[0]->due <= now) {
        crm_timer *t = l->heap[0];
        stat_time(&l->timer_late_ns, &l->timer_late_max_ns, now - t->due);
        CRM_STAT_BUMP(l->timers_run, 1);
        /* a timer's handler never sees the clock before its due time */
        if (t->due > l->turn_ms) l->turn_ms = t->due;
        if (t->repeat > 0) {
            /* keep the cadence: the next tick is due one period after this one */
            t->due += t->repeat;
            if (t->due < now) t->due = now + t->repeat;
            heap_down(l, 0);
            t->fn(t->node, t->arg);
        } else {
            heap_remove(l, t);
            timer_unlink_node(t);
            crm_timer_fn fn = t->fn;
            crm_node *n = t->node;
            void *arg = t->arg;
            free(t);
            fn(n, arg);
        }
    }
}


/* File descriptor watches ------------------------------------------------------------
 *
 * poll(2) watched a descriptor number; epoll watches the file description
 * behind it, which outlives close() while another descriptor refers to it (a
 * child that inherited it, a dup). So:
 * - epoll's data is a slot number and that slot's generation, never a
 *   pointer: an event of a registration that outlived its watch (the caller
 *   closed fd before cancelling while the description lived on elsewhere) finds
 *   another generation, is ignored, and the loop moves to a new epoll instance
 *   holding only live watches (rare: callers cancel first, as carmine.h asks);
 * - cancelling removes the registration by number unless a live watch holds
 *   that number now (fd was closed and the number reused: removing would
 *   silence the new one);
 * - two watches of one description on one loop: the second registers a dup;
 * - descriptors epoll refuses (EPERM: regular files) are always ready, as
 *   poll reports them;
 * - crm_watch_events takes effect at the next wait (one epoll_ctl for any
 *   number of changes in a turn), and a handler sees only the events its
 *   watch asks for now (plus POLLERR, POLLHUP). */

#define EV_EFD UINT64_MAX
#define EV_TFD (UINT64_MAX - 1)
#define EV_MASK (POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLRDHUP)

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    p = realloc(p, c * size);
    if (!p) abort();
    *cap = c;
    return p;
}

static uint64_t watch_id(crm_loop *l, crm_watch *w)
{
    return (uint64_t)l->slots[w->slot].gen << 32 | w->slot;
}

static void fdref(crm_loop *l, int fd, int d)
{
    if (fd < 0) return;
    if ((size_t)fd >= l->capfdrefs) {
        size_t old = l->capfdrefs;
        l->fdrefs = grow(l->fdrefs, &l->capfdrefs, (size_t)fd + 1, sizeof *l->fdrefs);
        memset(l->fdrefs + old, 0, (l->capfdrefs - old) * sizeof *l->fdrefs);
    }
    l->fdrefs[fd] += (unsigned)d;
}

static void set_always(crm_loop *l, crm_watch *w)
{
    w->always = true;
    l->always = grow(l->always, &l->capalways, l->nalways + 1, sizeof *l->always);
    l->always[l->nalways++] = w;
}

/* Registers w with the loop's epoll instance. */
static void watch_register(crm_loop *l, crm_watch *w)
{
    struct epoll_event ev = {.events = w->events & (EV_MASK | POLLERR | POLLHUP), .data.u64 = watch_id(l, w)};
    w->armed = w->events;
    w->regfd = w->fd;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0) {
        fdref(l, w->regfd, 1);
        return;
    }
    w->regfd = -1;
    if (errno == EPERM) {
        set_always(l, w);
    } else if (errno == EEXIST) {
        int d = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
        if (d >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, d, &ev) == 0) {
            w->regfd = d;
            fdref(l, d, 1);
        } else if (d >= 0) {
            close(d);
        }
    }
    /* EBADF and the like: poll would have answered POLLNVAL, which no
     * handler here acts on; the watch stays silent */
}

static void watch_unregister(crm_loop *l, crm_watch *w)
{
    if (w->always) {
        for (size_t i = 0; i < l->nalways; i++)
            if (l->always[i] == w) {
                l->always[i] = l->always[--l->nalways];
                break;
            }
        w->always = false;
    }
    if (w->regfd < 0) return;
    fdref(l, w->regfd, -1);
    if (!l->fdrefs[w->regfd]) epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->regfd, NULL);
    if (w->regfd != w->fd) close(w->regfd);
    w->regfd = -1;
}

static void add_own_fds(crm_loop *l);

crm_watch *crm_watch_fd(crm_node *n, int fd, unsigned events, crm_watch_fn fn, void *arg)
{
    CRM_ASSERT_ON_LOOP(n);
    crm_loop *l = n->loop;
    if (fd < 0 || !fn || !l) return NULL;
    if (l->epfd < 0) {
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
            crm_log(l->rt, CRM_LOG_ERROR, n, "cannot watch a descriptor: epoll_create1: %s", strerror(errno));
            return NULL;
        }
        add_own_fds(l);
    }
    crm_watch *w = calloc(1, sizeof *w);
    if (!w) abort();
    *w = (crm_watch){.fd = fd, .regfd = -1, .events = events, .fn = fn, .arg = arg, .node = n, .loop = l};
    if (l->nfree) {
        w->slot = l->freeslots[--l->nfree];
    } else {
        l->slots = grow(l->slots, &l->capslots, l->nslots + 1, sizeof *l->slots);
        l->slots[l->nslots] = (struct wslot){0};
        w->slot = (uint32_t)l->nslots++;
    }
    l->slots[w->slot].w = w;
    watch_register(l, w);
    w->next_of_node = n->watches;
    if (n->watches) n->watches->prev_of_node = w;
    n->watches = w;
    return w;
}

void crm_watch_events(crm_watch *w, unsigned events)
{
    if (!w || w->dead || w->events == events) return;
    w->events = events;
    if (w->dirty || w->events == w->armed) return;
    crm_loop *l = w->loop;
    w->dirty = true;
    l->dirty = grow(l->dirty, &l->capdirty, l->ndirty + 1, sizeof *l->dirty);
    l->dirty[l->ndirty++] = w;
}

void crm_watch_cancel(crm_watch *w)
{
    if (!w || w->dead) return;
    crm_loop *l = w->loop;
    w->dead = true;
    watch_unregister(l, w);
    l->dead = grow(l->dead, &l->capdead, l->ndead + 1, sizeof *l->dead);
    l->dead[l->ndead++] = w;
    if (w->prev_of_node) w->prev_of_node->next_of_node = w->next_of_node;
    else w->node->watches = w->next_of_node;
    if (w->next_of_node) w->next_of_node->prev_of_node = w->prev_of_node;
    w->next_of_node = w->prev_of_node = NULL;
}

void crm_watches_cancel_node(crm_node *n)
{
    while (n->watches) crm_watch_cancel(n->watches);
}

/* Frees cancelled watches; never while their loop dispatches. */
static void free_dead_watches(crm_loop *l)
{
    for (size_t i = 0; i < l->ndead; i++) {
        crm_watch *w = l->dead[i];
        struct wslot *s = &l->slots[w->slot];
        s->w = NULL;
        s->gen++;
        l->freeslots = grow(l->freeslots, &l->capfree, l->nfree + 1, sizeof *l->freeslots);
        l->freeslots[l->nfree++] = w->slot;
        free(w);
    }
    l->ndead = 0;
}

/* Hands epoll the events changed since the last wait. */
static void apply_dirty(crm_loop *l)
{
    for (size_t i = 0; i < l->ndirty; i++) {
        crm_watch *w = l->dirty[i];
        w->dirty = false;
        if (w->dead || w->events == w->armed) continue;
        w->armed = w->events;
        if (w->regfd < 0) continue;
        struct epoll_event ev = {.events = w->events & (EV_MASK | POLLERR | POLLHUP), .data.u64 = watch_id(l, w)};
        epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->regfd, &ev);
    }
    l->ndirty = 0;
}

static void add_own_fds(crm_loop *l)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_EFD};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &ev);
    if (l->tfd >= 0) {
        ev.data.u64 = EV_TFD;
        epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev);
    }
}

/* A registration outlived its watch: a new epoll instance with the live ones. */
static void rebuild_epoll(crm_loop *l)
{
    l->rebuild = false;
    int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return;
    close(l->epfd);
    l->epfd = fd;
    add_own_fds(l);
    for (size_t i = 0; i < l->nslots; i++) {
        crm_watch *w = l->slots[i].w;
        if (!w || w->dead) continue;
        watch_unregister(l, w);
        watch_register(l, w);
    }
}

/* Calls the handler of each ready descriptor. Watches cancelled meanwhile
 * are marked dead and freed only before the next wait. */
static void dispatch_watch(crm_loop *l, crm_watch *w, unsigned re)
{
    re &= w->events | POLLERR | POLLHUP;
    if (!re || w->dead || w->node->closed) return;
    w->fn(w->node, w->fd, re, w->arg);
    if (l->noutbox) flush_outbox(l);
    if (l->ngrave) bury(l);
}

static void dispatch_watches(crm_loop *l, int nev)
{
    for (int i = 0; i < nev; i++) {
        uint64_t id = l->evs[i].data.u64;
        if (id == EV_EFD || id == EV_TFD) continue;
        uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
        crm_watch *w = slot < l->nslots ? l->slots[slot].w : NULL;
        if (!w || l->slots[slot].gen != gen) {
            l->rebuild = true;
            continue;
        }
        dispatch_watch(l, w, l->evs[i].events);
    }
    /* regular files: ready whenever asked, as poll(2) reports them */
    for (size_t i = 0; i < l->nalways; i++) {
        crm_watch *w = l->always[i];
        dispatch_watch(l, w, w->events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM));
    }
}

/* Deliveries -------------------------------------------------------------------------- */

static void run_job(job *j)
{
    crm_node *n = j->node;
    if (j->fn) {
        if (!n || !n->closed) j->fn(n, j->arg);
        else if (j->drop) j->drop(j->arg);
        return;
    }
    crm_node_stats_take(&n->stats);
    if (n->closed || !n->type->input) {
        json_decref(j->msg);
        return;
    }
    n->type->input(n, j->msg);
}

void crm_loop_deliver_now(crm_node *n, json_t *msg)
{
    crm_loop *l = n->loop;
    if (current_loop != l || !l->running || !pthread_equal(l->thread, pthread_self())) {
        crm_loop_deliver(n, msg);
        return;
    }
    CRM_STAT_BUMP(n->stats.queued, 1);
    job j = {.node = n, .msg = msg};
    run_job(&j);
}

bool crm_loop_run_next_delivery(void)
{
    crm_loop *l = current_loop;
    if (!l || !l->running || !pthread_equal(l->thread, pthread_self()) || !l->fifo.len || l->budget <= 0 ||
        atomic_load_explicit(&l->stop, memory_order_relaxed))
        return false;
    if (l->fifo.items[l->fifo.head].fn) return false; /* posted work waits for the loop */
    job j;
    jobq_pop(&l->fifo, &j);
    l->budget--;
    run_job(&j);
    if (l->noutbox) flush_outbox(l);
    if (l->ngrave) bury(l);
    return true;
}

/* Work for the end of the turn (crm_loop_at_turn_end), per thread. */
typedef struct {
    void (*fn)(void *);
    void *arg;
} turn_hook;
static __thread turn_hook turn_hooks[8];
static __thread int nturn_hooks;

bool crm_loop_at_turn_end(void (*fn)(void *), void *arg)
{
    crm_loop *l = current_loop;
    /* only on the thread running the loop (crm_loop_call_sync also lends a
     * stopped loop to the caller's thread, which has no turns) */
    if (!l || !l->running || !pthread_equal(l->thread, pthread_self()) ||
        nturn_hooks == (int)(sizeof turn_hooks / sizeof *turn_hooks))
        return false;
    turn_hooks[nturn_hooks++] = (turn_hook){fn, arg};
    return true;
}

static void run_turn_hooks(crm_loop *l)
{
    for (int i = 0; i < nturn_hooks; i++) { /* a hook may add another */
        turn_hook h = turn_hooks[i];
        h.fn(h.arg);
    }
    nturn_hooks = 0;
    if (l->noutbox) flush_outbox(l);
    if (l->ngrave) bury(l);
}

static void wake(crm_loop *l)
{
    uint64_t one = 1;
    ssize_t r = write(l->efd, &one, sizeof one);
    (void)r;
}

static void outbox_push(crm_loop *from, crm_loop *target, job j)
{
    if (from->noutbox == from->capoutbox) {
        from->capoutbox = from->capoutbox ? from->capoutbox * 2 : 64;
        from->outbox = realloc(from->outbox, from->capoutbox * sizeof *from->outbox);
        if (!from->outbox) abort();
    }
    from->outbox[from->noutbox++] = (outjob){j, target};
}

static void post_job(crm_loop *l, job j)
{
    if (current_loop == l) {
        jobq_push(&l->fifo, j);
        return;
    }
    if (current_loop) {
        /* held back until the running handler returns: the sender may still
         * use the message (crm_node_done) until then */
        outbox_push(current_loop, l, j);
        return;
    }
    pthread_mutex_lock(&l->lock);
    if (!l->inbox.len) l->inbox_since = crm_now_ms();
    jobq_push(&l->inbox, j);
    atomic_store_explicit(&l->inbox_pending, true, memory_order_release);
    bool sleeping = l->sleeping;
    if (sleeping) l->woken_at = crm_now_ms();
    l->sleeping = false;
    pthread_mutex_unlock(&l->lock);
    if (sleeping) wake(l);
}

/* nodeInputQueueMaxLength reached: the new message is dropped (counted,
 * and a warning once per node). */
static __attribute__((noinline)) void queue_full(crm_node *n, json_t *msg)
{
    CRM_STAT_ADD(n->stats.dropped, 1);
    if (!atomic_exchange(&n->stats.drop_warned, true))
        crm_log(n->rt, CRM_LOG_WARN, n,
                "input queue full (%zu messages, nodeInputQueueMaxLength): dropping new messages to this node "
                "(counted in carmine_node_messages_dropped_total; warned once)",
                n->queue_max);
    crm_loop_release(msg);
}

void crm_loop_deliver(crm_node *n, json_t *msg)
{
    crm_loop *l = n->loop;
    if (n->queue_max && crm_node_queue_depth(&n->stats) >= n->queue_max) {
        queue_full(n, msg);
        return;
    }
    if (current_loop == l) {
        CRM_STAT_BUMP(n->stats.queued, 1);
        /* the hop of a chain: filled in place, field by field (a job built
         * on the stack and copied in stalls the store buffer) */
        job *j = jobq_slot(&l->fifo);
        j->node = n;
        j->fn = NULL;
        j->msg = msg;
        return;
    }
    CRM_STAT_ADD(n->stats.queued_remote, 1);
    post_job(l, (job){.node = n, .msg = msg});
}

void crm_loop_post(crm_loop *l, crm_node *n, void (*fn)(crm_node *, void *), void *arg)
{
    post_job(l, (job){.node = n, .fn = fn, .arg = arg});
}

void crm_node_post(crm_node *n, void (*fn)(crm_node *n, void *arg), void *arg)
{
    crm_loop_post(n->loop, n, fn, arg);
}

void crm_node_post_ex(crm_node *n, void (*fn)(crm_node *n, void *arg), void (*drop)(void *arg), void *arg)
{
    post_job(n->loop, (job){.node = n, .fn = fn, .drop = drop, .arg = arg});
}

void crm_loop_release(json_t *msg)
{
    crm_loop *l = current_loop;
    if (!l || !msg) {
        json_decref(msg);
        return;
    }
    if (l->ngrave == l->capgrave) {
        l->capgrave = l->capgrave ? l->capgrave * 2 : 64;
        l->graveyard = realloc(l->graveyard, l->capgrave * sizeof *l->graveyard);
        if (!l->graveyard) abort();
    }
    l->graveyard[l->ngrave++] = msg;
}

static void bury(crm_loop *l)
{
    for (size_t i = 0; i < l->ngrave; i++) json_decref(l->graveyard[i]);
    l->ngrave = 0;
}

static void flush_outbox(crm_loop *l)
{
    crm_loop *saved = current_loop;
    current_loop = NULL;
    /* nothing lands in the outbox meanwhile: current_loop is NULL */
    for (size_t i = 0; i < l->noutbox; i++) post_job(l->outbox[i].target, l->outbox[i].j);
    l->noutbox = 0;
    current_loop = saved;
}

static void take_inbox(crm_loop *l)
{
    pthread_mutex_lock(&l->lock);
    atomic_store_explicit(&l->inbox_pending, false, memory_order_relaxed);
    if (l->inbox.len) {
        stat_time(&l->inbox_lag_ns, &l->inbox_lag_max_ns, crm_now_ms() - l->inbox_since);
        CRM_STAT_BUMP(l->inbox_batches, 1);
    }
    if (!l->fifo.len) {
        /* the usual case: the whole batch in one swap, so senders on other
         * threads wait for the lock as briefly as possible */
        jobq t = l->fifo;
        l->fifo = l->inbox;
        l->inbox = t;
    } else {
        job j;
        while (jobq_pop(&l->inbox, &j)) jobq_push(&l->fifo, j);
    }
    pthread_mutex_unlock(&l->lock);
}

/* Arms the loop's timerfd for an absolute due time (crm_now_ms's clock);
 * false when there is no timerfd and poll's timeout has to do. */
static bool arm_timerfd(crm_loop *l, double due)
{
    if (l->tfd < 0) return false;
    if (due == l->tfd_due) return true;
    double sec = floor(due / 1000);
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)sec;
    /* rounded up: firing before the due time would only cost another turn */
    its.it_value.tv_nsec = (long)ceil((due - sec * 1000) * 1e6);
    if (its.it_value.tv_nsec >= 1000000000L) {
        its.it_value.tv_sec += 1;
        its.it_value.tv_nsec -= 1000000000L;
    }
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1; /* 0 disarms */
    if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) return false;
    l->tfd_due = due;
    return true;
}

/* epoll_pwait2 (nanosecond timeout) where the kernel has it (Linux 5.11);
 * epoll_wait with the timeout rounded up to milliseconds where it answers
 * ENOSYS (older kernels, valgrind), which would otherwise spin this loop. */
static int loop_epoll_wait(int epfd, struct epoll_event *evs, int n, const struct timespec *tsp)
{
    static bool no_pwait2;
    if (!__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
        int r = epoll_pwait2(epfd, evs, n, tsp, NULL);
        if (r >= 0 || errno != ENOSYS) return r;
        __atomic_store_n(&no_pwait2, true, __ATOMIC_RELAXED);
    }
    int ms = -1;
    if (tsp) {
        long long t = (long long)tsp->tv_sec * 1000 + (tsp->tv_nsec + 999999) / 1000000;
        ms = t > INT_MAX ? INT_MAX : (int)t;
    }
    return epoll_wait(epfd, evs, n, ms);
}

static void *loop_main(void *arg)
{
    crm_loop *l = arg;
    current_loop = l;
    /* timers are due to the millisecond (delay nodes, rate limits): ask the
     * kernel not to coalesce our wake-ups (its default slack is 50 us) */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    double woke = 0; /* when the loop was woken out of its last sleep, or 0 */
    double awake_since = crm_now_ms(); /* for busy_ns */
    /* woken since the allocator last gave memory back: the next sleep is cut
     * to ALLOC_IDLE_MS, and if nothing comes meanwhile, crm_alloc_idle and
     * crm_idle_release_code (alloc.c: that one once in 10 s at most) */
    bool worked = true, idle_wait = false;
    while (!atomic_load(&l->stop)) {
        /* the clock never goes back: a timer armed in the last turn may be
         * due before that turn's clock */
        double t = crm_now_ms();
        if (woke && woke < t) t = woke;
        if (t > l->turn_ms) l->turn_ms = t;
        woke = 0;
        if (atomic_load_explicit(&l->inbox_pending, memory_order_acquire)) take_inbox(l);
        if (l->nheap) run_due_timers(l);
        if (l->noutbox) flush_outbox(l);
        if (l->ngrave) bury(l);
        job j;
        /* a turn runs up to TURN_JOBS deliveries, those queued meanwhile
         * included, before timers and the inbox get their turn */
        if (l->fifo.len) atomic_store_explicit(&l->busy, true, memory_order_relaxed);
        for (l->budget = TURN_JOBS; l->budget-- > 0 && jobq_pop(&l->fifo, &j);) {
            run_job(&j);
            if (l->noutbox) flush_outbox(l);
            if (l->ngrave) bury(l);
        }
        if (nturn_hooks) { /* then a turn more: what they did may have made timers due (a 0 ms close) */
            run_turn_hooks(l);
            continue;
        }
        if (l->fifo.len) continue;
        atomic_store(&l->busy, false);

        pthread_mutex_lock(&l->lock);
        if (l->inbox.len || atomic_load(&l->stop)) {
            pthread_mutex_unlock(&l->lock);
            continue;
        }
        l->sleeping = true;
        pthread_mutex_unlock(&l->lock);

        CRM_STAT_BUMP(l->busy_ns, (uint64_t)((crm_now_ms() - awake_since) * 1e6));
        struct timespec ts = {0}, *tsp = NULL;
        if (l->nheap && !arm_timerfd(l, l->heap[0]->due)) {
            double wait = l->heap[0]->due - crm_now_ms();
            if (wait < 0) wait = 0;
            ts.tv_sec = (time_t)(wait / 1000);
            ts.tv_nsec = (long)((wait - ts.tv_sec * 1000.0) * 1e6);
            tsp = &ts;
        }
        if (l->ndirty) apply_dirty(l); /* before the free: it may name cancelled watches */
        if (l->ndead) free_dead_watches(l);
        if (l->rebuild) rebuild_epoll(l);
        if (l->nalways) { /* ts, not a compound literal: that one's life ends with the if */
            ts = (struct timespec){0};
            tsp = &ts;
        }
        idle_wait = false;
        if (worked && (!tsp || tsp->tv_sec > 0 || tsp->tv_nsec > ALLOC_IDLE_MS * 1000000L)) {
            ts = (struct timespec){0, ALLOC_IDLE_MS * 1000000L};
            tsp = &ts;
            idle_wait = true;
        }
        int nw = (int)(l->nslots - l->nfree) + 2;
        if (nw > 1024) nw = 1024;
        if (nw > l->capevs) {
            l->capevs = nw;
            l->evs = realloc(l->evs, (size_t)nw * sizeof *l->evs);
            if (!l->evs) abort();
        }
        int r;
        if (l->epfd >= 0) {
            r = loop_epoll_wait(l->epfd, l->evs, l->capevs, tsp);
        } else {
            struct pollfd p[2] = {{l->efd, POLLIN, 0}, {l->tfd, POLLIN, 0}};
            r = ppoll(p, l->tfd >= 0 ? 2 : 1, tsp, NULL);
            if (r > 0) {
                r = 0;
                if (p[0].revents) l->evs[r++].data.u64 = EV_EFD;
                if (l->tfd >= 0 && p[1].revents) l->evs[r++].data.u64 = EV_TFD;
            }
        }
        awake_since = crm_now_ms();
        if (r > 0) {
            worked = true;
        } else if (idle_wait && r == 0) {
            crm_alloc_idle();
            /* not with a timer due soon: a release can take milliseconds */
            if (!l->nheap || l->heap[0]->due - crm_now_ms() > CODE_QUIET_MS) crm_idle_release_code();
            worked = false;
        }
        int nfd = 0; /* watched descriptors among the events */
        for (int i = 0; i < r; i++) {
            uint64_t v, id = l->evs[i].data.u64;
            if (id == EV_EFD) {
                ssize_t rr = read(l->efd, &v, sizeof v);
                (void)rr;
            } else if (id == EV_TFD) {
                ssize_t rr = read(l->tfd, &v, sizeof v);
                (void)rr;
                woke = l->tfd_due;
                l->tfd_due = 0;
            } else {
                nfd++;
            }
        }
        pthread_mutex_lock(&l->lock);
        l->sleeping = false;
        if (l->woken_at && (!woke || l->woken_at < woke)) woke = l->woken_at;
        l->woken_at = 0;
        pthread_mutex_unlock(&l->lock);
        if (nfd || l->nalways) {
            /* descriptor handlers run on the clock of this wake-up */
            double now = crm_now_ms();
            if (now > l->turn_ms) l->turn_ms = now;
            dispatch_watches(l, r > 0 ? r : 0);
        }
    }
    if (nturn_hooks) run_turn_hooks(l);
    current_loop = NULL;
    crm_path_thread_done();
    return NULL;
}

crm_loop *crm_loop_new(crm_runtime *rt, const char *name)
{
    crm_loop *l = calloc(1, sizeof *l);
    if (!l) abort();
    l->rt = rt;
    l->name = strdup(name ? name : "");
    pthread_mutex_init(&l->lock, NULL);
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    l->epfd = -1;
    return l;
}

int crm_loop_start(crm_loop *l)
{
    atomic_store(&l->stop, false);
    if (pthread_create(&l->thread, NULL, loop_main, l)) return -1;
    l->running = true;
    return 0;
}

void crm_loop_stats_read(crm_loop *l, crm_loop_stats *o)
{
    o->name = l->name;
    o->busy_s = CRM_STAT_GET(l->busy_ns) / 1e9;
    o->inbox_lag_sum_s = CRM_STAT_GET(l->inbox_lag_ns) / 1e9;
    o->inbox_lag_max_s = CRM_STAT_GET(l->inbox_lag_max_ns) / 1e9;
    o->inbox_batches = CRM_STAT_GET(l->inbox_batches);
    o->timer_late_sum_s = CRM_STAT_GET(l->timer_late_ns) / 1e9;
    o->timer_late_max_s = CRM_STAT_GET(l->timer_late_max_ns) / 1e9;
    o->timers_run = CRM_STAT_GET(l->timers_run);
}

bool crm_loop_idle(crm_loop *l)
{
    pthread_mutex_lock(&l->lock);
    bool idle = l->inbox.len == 0 && !atomic_load(&l->busy) && (l->sleeping || !l->running);
    pthread_mutex_unlock(&l->lock);
    return idle;
}

void crm_loop_stop(crm_loop *l)
{
    if (!l->running) return;
    atomic_store(&l->stop, true);
    wake(l);
    pthread_join(l->thread, NULL);
    l->running = false;
}

/* Posted work after stop is dropped, deliveries released. */
static void drop_job(job *j)
{
    if (j->fn) {
        if (j->drop) j->drop(j->arg);
        return;
    }
    json_decref(j->msg);
}

static void purge_queue(jobq *q)
{
    job j;
    size_t n = q->len;
    /* pop all, push back those of live nodes, in order */
    for (size_t i = 0; i < n && jobq_pop(q, &j); i++) {
        if (j.node && j.node->closed) drop_job(&j);
        else jobq_push(q, j);
    }
}

void crm_loop_purge_closed(crm_loop *l)
{
    current_loop = l;
    purge_queue(&l->fifo);
    pthread_mutex_lock(&l->lock);
    purge_queue(&l->inbox);
    pthread_mutex_unlock(&l->lock);
    size_t k = 0;
    for (size_t i = 0; i < l->noutbox; i++) {
        outjob *o = &l->outbox[i];
        if (o->j.node && o->j.node->closed) drop_job(&o->j);
        else l->outbox[k++] = *o;
    }
    l->noutbox = k;
    bury(l);
    current_loop = NULL;
}

/* Runs what is still queued on the calling thread (after the thread stopped),
 * so close handlers and queued posts do not leak. */
static void drain(crm_loop *l)
{
    current_loop = l;
    take_inbox(l);
    job j;
    for (;;) {
        /* a drop callback may queue more */
        if (jobq_pop(&l->fifo, &j)) drop_job(&j);
        else if (l->noutbox) drop_job(&l->outbox[--l->noutbox].j);
        else break;
    }
    current_loop = NULL;
}

void crm_loop_free(crm_loop *l)
{
    if (!l) return;
    crm_loop_stop(l);
    drain(l);
    while (l->nheap) {
        crm_timer *t = l->heap[0];
        heap_remove(l, t);
        timer_unlink_node(t);
        free(t);
    }
    free(l->heap);
    for (size_t i = 0; i < l->nslots; i++)
        if (l->slots[i].w && !l->slots[i].w->dead) crm_watch_cancel(l->slots[i].w);
    l->ndirty = 0;
    free_dead_watches(l);
    free(l->slots);
    free(l->freeslots);
    free(l->dead);
    free(l->dirty);
    free(l->always);
    free(l->fdrefs);
    free(l->evs);
    free(l->readbuf);
    if (l->epfd >= 0) close(l->epfd);
    free(l->fifo.items);
    free(l->inbox.items);
    free(l->outbox);
    bury(l);
    free(l->graveyard);
    close(l->efd);
    if (l->tfd >= 0) close(l->tfd);
    pthread_mutex_destroy(&l->lock);
    free(l->name);
    free(l);
}

/* Runs fn on the loop's thread and waits for it (controlling thread only). */
typedef struct {
    void (*fn)(crm_node *, void *);
    crm_node *node;
    void *arg;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
} sync_call;

static void sync_trampoline(crm_node *n, void *arg)
{
    sync_call *s = arg;
    (void)n;
    s->fn(s->node, s->arg);
    pthread_mutex_lock(&s->m);
    s->done = true;
    pthread_cond_signal(&s->c);
    pthread_mutex_unlock(&s->m);
}

void crm_loop_call_sync(crm_loop *l, crm_node *n, void (*fn)(crm_node *, void *), void *arg)
{
    if (!l->running || current_loop == l) {
        crm_loop *saved = current_loop;
        current_loop = l;
        fn(n, arg);
        if (l->noutbox) flush_outbox(l);
        if (l->ngrave) bury(l);
        current_loop = saved;
        return;
    }
    if (current_loop) flush_outbox(current_loop);
    sync_call s = {fn, n, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    crm_loop_post(l, NULL, sync_trampoline, &s);
    pthread_mutex_lock(&s.m);
    while (!s.done) pthread_cond_wait(&s.c, &s.m);
    pthread_mutex_unlock(&s.m);
}
