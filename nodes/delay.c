/* delay.c: the Node-RED "delay" node (core/function/89-delay.js), with the
 * semantics of Node-RED 4.1.15 described in spec §3.9, quirks included.
 *
 * Modes and the state they use:
 *  - delay / delayv / random: pending messages in a list kept in arrival
 *    order (flush releases the oldest first). "delay" has one fixed timeout,
 *    so arrival order is also due order: one loop timer armed for the head of
 *    the list serves every pending message (O(1) per message, which matters at
 *    1000 msg/s in flight). delayv and random give each message its own loop
 *    timer because their due times do not follow arrival order.
 *  - rate (queue or drop), queue, timed: a FIFO (a ring buffer) and one
 *    repeating loop timer. Like Node-RED, the rate queue has no bound unless
 *    settings.nodeMessageBufferMaxLength is set (then a full queue is emptied
 *    and an error raised): by default a source that outruns the rate grows it
 *    without end. The queue/timed buffers hold one entry per topic.
 *  - burst (Node-RED 5.x only; 4.1.15 has no such mode): a sliding window of
 *    slots, each freed `window` ms after its message passed; kept in the same
 *    due-ordered list as "delay".
 *
 * done() is called exactly where Node-RED calls it (§2.5), including the
 * places where Node-RED calls it twice for one message.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

/* Node's setTimeout turns NaN and delays past 2^31-1 ms into 1 ms. */
#define TIMEOUT_MAX 2147483647.0

typedef enum { M_DELAY, M_DELAYV, M_RANDOM, M_RATE, M_BURST, M_QUEUE, M_TIMED } delay_mode;

/* A message waiting for its delay (or, in burst mode, one occupied slot). */
typedef struct pend {
    struct pend *prev, *next;
    json_t *msg;        /* NULL for burst slots */
    double due;         /* crm_loop_now() clock: when it is released */
    crm_timer *timer;   /* own timer (delayv, random) */
    bool status_after;  /* delayv: whether the send updates the status */
} pend;

/* A buffered message of the rate/queue modes. done() is reported with orig
 * when the queued copy differs from the message that arrived. */
typedef struct {
    json_t *msg;
    json_t *orig;
} qent;

typedef struct {
    qent *v;
    size_t cap, head, len;
} deque;

typedef struct {
    delay_mode mode;
    bool drop, allowrate, two_outputs;
    double timeout;            /* ms, as Node-RED computes it (may be NaN) */
    double rand_first, rand_diff;
    double fixedrate;          /* ms between messages, from the config */
    json_t *rate_js;           /* current rate as the JS value (msg.rate may be a string) */
    double rate;               /* Number(rate_js) */
    json_t *burst_js;          /* burst count, the raw config "rate" */
    double burst_window;

    pend *first, *last;        /* delay/delayv/random messages, burst slots */
    size_t npend;
    crm_timer *head_timer;     /* delay, burst: armed for first->due */
    double head_due;

    deque buf;                 /* rate, queue, timed */
    size_t max_kept;           /* nodeMessageBufferMaxLength (rate queue only); 0: no limit */
    crm_timer *interval;
    bool has_last;
    double last_sent;
    crm_timer *busy;           /* debounce of the depth status */

    double inflight;           /* burst */
    uint64_t rng;              /* random mode: xorshift64 state */
} delay_state;

/* JavaScript conversions ------------------------------------------------------ */

/* a === b: primitives by value, objects and arrays by identity. */
static bool js_strict_eq(const json_t *a, const json_t *b)
{
    if (!a || !b) return a == b;
    if (json_is_number(a) && json_is_number(b)) return crm_num_value(a) == crm_num_value(b);
    if (json_typeof(a) != json_typeof(b)) return false;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    if (json_is_object(a) || json_is_array(a)) return a == b;
    return true; /* true, false, null */
}

static bool has_key(const json_t *msg, const char *key) { return json_object_get(msg, key) != NULL; }

/* Math.min(Math.floor(flush), len) for a numeric flush, NaN included. */
static double flush_count(const json_t *flush, double len)
{
    if (!json_is_number(flush)) return len;
    double f = floor(crm_num_value(flush));
    return (isnan(f) || f < len) ? f : len;
}

/* The delay a Node setTimeout really waits. Below 1 ms we keep the fraction
 * (Node rounds up to 1 ms); NaN and overflow give 1 ms as in Node. */
static double js_timeout(double ms)
{
    if (!(ms <= TIMEOUT_MAX)) return 1;
    return ms < 0 ? 0 : ms;
}

/* The period a Node setInterval really uses: never below 1 ms. */
static double js_interval(double ms) { return (ms >= 1 && ms <= TIMEOUT_MAX) ? ms : 1; }

/* Status ------------------------------------------------------------------------ */

static void status_count(crm_node *n, const char *shape, size_t count)
{
    char text[32];
    snprintf(text, sizeof text, "%zu", count);
    crm_node_status(n, "blue", shape, text);
}

static void status_clear(crm_node *n) { crm_node_status(n, NULL, NULL, NULL); }

/* Deque ------------------------------------------------------------------------- */

static qent *dq_at(deque *d, size_t i) { return &d->v[(d->head + i) % d->cap]; }

static void dq_grow(deque *d)
{
    if (d->len < d->cap) return;
    size_t cap = d->cap ? d->cap * 2 : 16;
    qent *v = malloc(cap * sizeof *v);
    if (!v) abort();
    for (size_t i = 0; i < d->len; i++) v[i] = *dq_at(d, i);
    free(d->v);
    d->v = v;
    d->cap = cap;
    d->head = 0;
}

static void dq_push_back(deque *d, qent e)
{
    dq_grow(d);
    *dq_at(d, d->len++) = e;
}

static void dq_push_front(deque *d, qent e)
{
    dq_grow(d);
    d->head = (d->head + d->cap - 1) % d->cap;
    d->v[d->head] = e;
    d->len++;
}

static qent dq_shift(deque *d)
{
    qent e = d->v[d->head];
    d->head = (d->head + 1) % d->cap;
    d->len--;
    return e;
}

static void qent_free(qent e)
{
    json_decref(e.msg);
    json_decref(e.orig);
}

/* Empties the buffer; with done, each message's done() is called first. */
static void dq_clear(crm_node *n, deque *d, bool done)
{
    while (d->len) {
        qent e = dq_shift(d);
        if (done) crm_node_done(n, e.orig ? e.orig : e.msg);
        qent_free(e);
    }
}

/* Sends a buffered entry and reports it done, as msgInfo.send + done. */
static void qent_send(crm_node *n, qent e)
{
    json_t *msg = e.msg;
    crm_node_send(n, 0, msg); /* stolen; valid until this callback returns */
    crm_node_done(n, e.orig ? e.orig : msg);
    json_decref(e.orig);
}

/* Pending list (delay, delayv, random, burst) ------------------------------------------ */

static void pend_append(delay_state *s, pend *e)
{
    e->prev = s->last;
    e->next = NULL;
    if (s->last) s->last->next = e;
    else s->first = e;
    s->last = e;
    s->npend++;
}

static void pend_unlink(delay_state *s, pend *e)
{
    if (e->prev) e->prev->next = e->next;
    else s->first = e->next;
    if (e->next) e->next->prev = e->prev;
    else s->last = e->prev;
    s->npend--;
    if (e->timer) {
        crm_timer_cancel(e->timer);
        e->timer = NULL;
    }
}

static void head_fire(crm_node *n, void *arg);

/* Keeps the shared timer armed for the head of the list (delay, burst). */
static void head_rearm(crm_node *n, delay_state *s)
{
    if (s->head_timer && (!s->first || s->head_due != s->first->due)) {
        crm_timer_cancel(s->head_timer);
        s->head_timer = NULL;
    }
    if (!s->head_timer && s->first) {
        s->head_due = s->first->due;
        s->head_timer = crm_timer_start_at(n, s->head_due, head_fire, s);
    }
}

/* The timer of one pending message ran out, or a flush triggered it. */
static void pend_release(crm_node *n, delay_state *s, pend *e)
{
    pend_unlink(s, e);
    json_t *msg = e->msg;
    if (s->mode == M_DELAY && s->timeout > 1000) status_count(n, "dot", s->npend);
    if (s->mode == M_DELAYV && s->npend == 0) status_clear(n);
    crm_node_send(n, 0, msg);
    if (s->mode == M_DELAYV && e->status_after) status_count(n, "dot", s->npend);
    if (s->mode == M_RANDOM && s->timeout >= 1000) status_count(n, "dot", s->npend);
    crm_node_done(n, msg);
    free(e);
}

/* A pending message is cancelled (reset, close): done, never sent. */
static void pend_cancel(crm_node *n, delay_state *s, pend *e)
{
    pend_unlink(s, e);
    if (e->msg) {
        crm_node_done(n, e->msg);
        json_decref(e->msg);
    }
    free(e);
}

static void burst_slot_free(crm_node *n, delay_state *s, pend *e)
{
    pend_unlink(s, e);
    free(e);
    if (s->inflight == crm_to_number(s->burst_js)) crm_node_status(n, "green", "ring", "");
    s->inflight -= 1;
}

static void head_fire(crm_node *n, void *arg)
{
    delay_state *s = arg;
    s->head_timer = NULL; /* a fired one-shot timer is gone */
    double now = crm_now_ms();
    while (s->first && s->first->due <= now) {
        if (s->mode == M_BURST) burst_slot_free(n, s, s->first);
        else pend_release(n, s, s->first);
    }
    head_rearm(n, s);
}

static void own_fire(crm_node *n, void *arg)
{
    pend *e = arg;
    e->timer = NULL;
    pend_release(n, crm_node_data(n), e);
}

/* clearDelayList: every pending message is done and dropped. */
static void pend_clear_all(crm_node *n, delay_state *s, bool reset_status)
{
    while (s->first) pend_cancel(n, s, s->first);
    if (reset_status) crm_node_status(n, "blue", "ring", "0");
    else status_clear(n);
}

/* flushDelayList: releases the oldest pending messages at once. */
static void pend_flush(crm_node *n, delay_state *s, const json_t *flush)
{
    double len = flush_count(flush, (double)s->npend);
    for (double i = 0; i < len && s->first; i++) pend_release(n, s, s->first);
    status_count(n, "dot", s->npend);
}

/* delay / delayv / random input ---------------------------------------------------------- */

/* Math.random(): uniform in [0, 1). */
static double next_random(delay_state *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (double)(s->rng >> 11) / 9007199254740992.0;
}

static double message_wait(delay_state *s, const json_t *msg, bool *status_after)
{
    *status_after = true;
    if (s->mode == M_DELAY) return s->timeout;
    if (s->mode == M_RANDOM) return s->rand_first + s->rand_diff * next_random(s);
    double d = s->timeout;
    const json_t *dv = json_object_get(msg, "delay");
    if (dv && !isnan(crm_parse_float_value(dv))) d = crm_parse_float_value(dv);
    if (d < 0) d = 0;
    *status_after = d >= 0; /* false only for NaN, as in Node-RED */
    return d;
}

/* reset / flush / status after a message joined the list (or was cleared). */
static void timed_controls(crm_node *n, delay_state *s, json_t *msg, bool has_flush, bool has_reset, bool status_after)
{
    if (s->mode == M_DELAY) {
        if (has_reset) pend_clear_all(n, s, true);
        else if (has_flush) {
            pend_flush(n, s, json_object_get(msg, "flush"));
            crm_node_done(n, msg);
        } else if (s->timeout > 1000) status_count(n, "dot", s->npend);
        head_rearm(n, s);
        return;
    }
    /* delayv and random process both reset and flush */
    if (has_reset) pend_clear_all(n, s, true);
    if (has_flush) {
        pend_flush(n, s, json_object_get(msg, "flush"));
        crm_node_done(n, msg);
    }
    /* random looks at the fixed timeout, not at its range (Node-RED's slip) */
    bool show = s->mode == M_DELAYV ? status_after : s->timeout >= 1000;
    if (show) status_count(n, "dot", s->npend);
}

static void timed_input(crm_node *n, delay_state *s, json_t *msg)
{
    bool has_flush = has_key(msg, "flush"), has_reset = has_key(msg, "reset");
    bool status_after;
    double wait = js_timeout(message_wait(s, msg, &status_after));
    json_incref(msg); /* held until the end: done() may follow a send */
    if (json_object_size(msg) == 2 && has_flush) {
        crm_node_done(n, msg); /* a bare flush is cleared at once */
        json_decref(msg);
    } else {
        pend *e = calloc(1, sizeof *e);
        if (!e) abort();
        e->msg = msg;
        e->due = crm_loop_now() + wait;
        e->status_after = status_after;
        pend_append(s, e);
        if (s->mode != M_DELAY) e->timer = crm_timer_start(n, wait, 0, own_fire, e);
    }
    timed_controls(n, s, msg, has_flush, has_reset, status_after);
    json_decref(msg);
}

/* rate ------------------------------------------------------------------------------------ */

static void report_depth_fire(crm_node *n, void *arg)
{
    delay_state *s = arg;
    s->busy = NULL;
    status_count(n, "dot", s->buf.len);
}

/* Status of the queue depth, at most every 500 ms. */
static void report_depth(crm_node *n, delay_state *s)
{
    if (!s->busy) s->busy = crm_timer_start(n, 500, 0, report_depth_fire, s);
}

static void stop_interval(delay_state *s)
{
    crm_timer_cancel(s->interval);
    s->interval = NULL;
}

/* sendMsgFromBuffer: one message per tick; the timer stops once idle. */
static void rate_tick(crm_node *n, void *arg)
{
    delay_state *s = arg;
    if (s->buf.len == 0) stop_interval(s);
    if (s->buf.len > 0) {
        qent e = dq_shift(&s->buf);
        if (json_object_size(e.msg) > 1) qent_send(n, e);
        else qent_free(e);
    }
    report_depth(n, s);
}

static void start_interval(crm_node *n, delay_state *s, crm_timer_fn fn)
{
    double p = js_interval(s->rate);
    s->interval = crm_timer_start(n, p, p, fn, s);
}

static void set_rate(delay_state *s, const json_t *r)
{
    json_decref(s->rate_js);
    s->rate_js = crm_deep_copy(r);
    s->rate = crm_to_number(r);
}

static void restore_rate(delay_state *s)
{
    json_decref(s->rate_js);
    s->rate_js = crm_num(s->fixedrate);
    s->rate = s->fixedrate;
}

/* msg.rate counts when allowed and parseFloat() accepts it. */
static const json_t *usable_rate(const delay_state *s, const json_t *msg)
{
    const json_t *r = json_object_get(msg, "rate");
    return (s->allowrate && r && !isnan(crm_parse_float_value(r))) ? r : NULL;
}

/* A message joins the queue while the timer runs. */
static void rate_enqueue(crm_node *n, delay_state *s, json_t *M, qent e)
{
    const json_t *r = usable_rate(s, e.msg);
    if (r && !js_strict_eq(s->rate_js, r)) {
        set_rate(s, r);
        stop_interval(s);
        start_interval(n, s, rate_tick);
    }
    if (s->max_kept > 0 && s->buf.len >= s->max_kept) {
        dq_clear(n, &s->buf, false);
        crm_node_error(n, e.msg, "too many pending messages in delay node");
        qent_free(e);
    } else {
        if (json_is_true(json_object_get(M, "toFront"))) dq_push_front(&s->buf, e);
        else dq_push_back(&s->buf, e);
        report_depth(n, s);
    }
}

/* The timer is idle: the message passes at once and the timer starts. */
static void rate_first(crm_node *n, delay_state *s, json_t *M, qent e)
{
    const json_t *r = usable_rate(s, e.msg);
    if (r) set_rate(s, r);
    if (has_key(M, "reset")) {
        if (has_key(M, "flush")) dq_push_back(&s->buf, e);
        else qent_free(e);
    } else {
        crm_node_send(n, 0, e.msg);
        json_decref(e.orig);
    }
    report_depth(n, s);
    start_interval(n, s, rate_tick);
    crm_node_done(n, M);
}

static void rate_flush(crm_node *n, delay_state *s, json_t *M)
{
    const json_t *flush = json_object_get(M, "flush");
    double len = flush_count(flush, (double)s->buf.len);
    if (len == 0) {
        stop_interval(s);
    } else {
        for (; len > 0 && s->buf.len; len--) {
            qent e = dq_shift(&s->buf);
            json_object_del(e.msg, "flush");
            json_object_del(e.msg, "reset");
            if (json_object_size(e.msg) > 1) qent_send(n, e);
            else qent_free(e); /* dropped without done, as Node-RED does */
        }
        stop_interval(s);
        start_interval(n, s, rate_tick);
    }
    status_count(n, "dot", s->buf.len);
    crm_node_done(n, M);
}

/* Queue intermediate messages (drop:false). The queued message is a clone
 * without `flush` in Node-RED; we copy only when it would differ from the
 * message (flush or reset present), since nobody else holds the original. */
static void rate_queue_input(crm_node *n, delay_state *s, json_t *M)
{
    qent e = {NULL, NULL};
    if (has_key(M, "flush") || has_key(M, "reset")) {
        e.msg = crm_deep_copy(M);
        json_object_del(e.msg, "flush");
        e.orig = json_incref(M);
    } else {
        e.msg = json_incref(M);
    }
    if (json_object_size(e.msg) > 1) {
        if (s->interval) rate_enqueue(n, s, M, e);
        else rate_first(n, s, M, e);
    } else {
        qent_free(e);
    }
    if (has_key(M, "flush")) rate_flush(n, s, M);
}

/* Drop intermediate messages, or send them to the second output. */
static void rate_drop_input(crm_node *n, delay_state *s, json_t *M)
{
    const json_t *r = usable_rate(s, M);
    if (r) set_rate(s, r);
    double now = crm_now_ms();
    if (!s->has_last || now - s->last_sent > s->rate) {
        s->has_last = true;
        s->last_sent = now;
        crm_node_send(n, 0, json_incref(M));
    } else if (s->two_outputs) {
        crm_node_send(n, 1, json_incref(M));
    }
    crm_node_done(n, M);
}

static void rate_input(crm_node *n, delay_state *s, json_t *M)
{
    bool has_reset = has_key(M, "reset");
    if (!s->drop) rate_queue_input(n, s, M);
    else if (!has_reset) rate_drop_input(n, s, M);
    if (has_reset) {
        if (!has_key(M, "flush")) {
            stop_interval(s);
            s->has_last = false;
        }
        dq_clear(n, &s->buf, false);
        restore_rate(s);
        crm_node_status(n, "blue", "ring", "0");
        crm_node_done(n, M);
    }
    json_decref(M);
}

/* burst (Node-RED 5.x) ----------------------------------------------------------------------- */

static void burst_input(crm_node *n, delay_state *s, json_t *msg)
{
    if (has_key(msg, "reset")) {
        while (s->first) pend_cancel(n, s, s->first);
        head_rearm(n, s);
        s->inflight = 0;
        crm_node_status(n, "green", "ring", "");
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (s->inflight < crm_to_number(s->burst_js)) {
        s->inflight += 1;
        crm_node_send(n, 0, json_incref(msg));
        pend *e = calloc(1, sizeof *e);
        if (!e) abort();
        e->due = crm_loop_now() + js_timeout(s->burst_window);
        pend_append(s, e);
        head_rearm(n, s);
    } else {
        if (s->two_outputs) crm_node_send(n, 1, json_incref(msg));
        crm_node_status(n, "red", "dot", "");
    }
    crm_node_done(n, msg);
    json_decref(msg);
}

/* queue / timed (per topic) ----------------------------------------------------------------- */

/* The periodic release: the oldest entry (queue) or all of them (timed). */
static void topic_tick(crm_node *n, void *arg)
{
    delay_state *s = arg;
    if (s->mode == M_QUEUE) {
        if (s->buf.len > 0) qent_send(n, dq_shift(&s->buf));
    } else {
        while (s->buf.len > 0) qent_send(n, dq_shift(&s->buf));
    }
    report_depth(n, s);
}

/* Replaces the buffered entry of the same topic in place, or appends. */
static void topic_store(crm_node *n, delay_state *s, json_t *msg)
{
    const json_t *topic = json_object_get(msg, "topic");
    for (size_t i = 0; i < s->buf.len; i++) {
        qent *e = dq_at(&s->buf, i);
        if (!js_strict_eq(topic, json_object_get(e->msg, "topic"))) continue;
        json_t *old = e->msg;
        if (s->two_outputs) crm_node_send(n, 1, json_incref(old));
        crm_node_done(n, old);
        json_decref(old);
        e->msg = json_incref(msg);
        return;
    }
    dq_push_back(&s->buf, (qent){json_incref(msg), NULL});
    report_depth(n, s);
}

/* Returns false when Node-RED would throw (numeric flush beyond the queue). */
static bool topic_flush(crm_node *n, delay_state *s, json_t *msg)
{
    const json_t *flush = json_object_get(msg, "flush");
    double len = (double)s->buf.len;
    if (json_is_number(flush)) len = floor(crm_num_value(flush)); /* no min(): Node-RED's slip */
    for (; len > 0; len--) {
        if (!s->buf.len) {
            crm_node_error(n, msg, "TypeError: Cannot read properties of undefined (reading 'msg')");
            return false;
        }
        qent e = dq_shift(&s->buf);
        json_object_del(e.msg, "flush");
        json_object_del(e.msg, "reset");
        if (json_object_size(e.msg) > 2) qent_send(n, e);
        else qent_free(e);
    }
    status_clear(n);
    crm_node_done(n, msg);
    return true;
}

static void topic_input(crm_node *n, delay_state *s, json_t *msg)
{
    const json_t *r = usable_rate(s, msg);
    if (r && !js_strict_eq(s->rate_js, r)) {
        set_rate(s, r);
        stop_interval(s);
        /* Node-RED restarts it with the rate mode's tick: one message per
         * tick even in timed mode, and it stops once the queue is empty. */
        start_interval(n, s, rate_tick);
    }
    if (!has_key(msg, "topic")) json_object_set_new(msg, "topic", json_string("_none_"));
    topic_store(n, s, msg);
    if (has_key(msg, "flush") && !topic_flush(n, s, msg)) {
        json_decref(msg);
        return;
    }
    if (has_key(msg, "reset")) {
        dq_clear(n, &s->buf, true);
        restore_rate(s);
        crm_node_status(n, NULL, NULL, "reset");
        crm_node_done(n, msg);
    }
    json_decref(msg);
}

/* Config ------------------------------------------------------------------------------------ */

/* timeoutUnits / randomUnits: plural names; anything else means seconds. */
static double duration_unit_ms(const char *units)
{
    static const struct { const char *name; double ms; } table[] = {
        {"milliseconds", 1}, {"minutes", 60000}, {"hours", 3600000}, {"days", 86400000},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(units, table[i].name)) return table[i].ms;
    return 1000;
}

/* rateUnits: singular names; anything else means second. */
static double rate_unit_ms(const char *units)
{
    static const struct { const char *name; double ms; } table[] = {
        {"minute", 60000}, {"hour", 3600000}, {"day", 86400000},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(units, table[i].name)) return table[i].ms;
    return 1000;
}

static bool parse_mode(const char *s, delay_mode *m)
{
    static const char *names[] = {"delay", "delayv", "random", "rate", "burst", "queue", "timed"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) {
            *m = (delay_mode)i;
            return true;
        }
    return false;
}

static void read_rates(delay_state *s, const json_t *cfg)
{
    double unit = rate_unit_ms(crm_cfg_str(cfg, "rateUnits", "second"));
    const json_t *rate = json_object_get(cfg, "rate");
    double nb = crm_to_number(json_object_get(cfg, "nbRateUnits"));
    s->fixedrate = unit / crm_to_number(rate) * (nb > 0 ? nb : 1);
    s->burst_window = nb * unit;
    s->burst_js = rate ? crm_deep_copy(rate) : NULL;
    restore_rate(s);
}

/* settings.nodeMessageBufferMaxLength: a positive number bounds the rate queue. */
static size_t max_kept_setting(crm_node *n)
{
    const json_t *v = json_object_get(crm_node_settings(n), "nodeMessageBufferMaxLength");
    double d = crm_to_number(v);
    return (d >= 1 && d < 1e15) ? (size_t)d : 0;
}

static int delay_create(crm_node *n, const json_t *cfg)
{
    delay_mode mode;
    const char *ptype = crm_cfg_str(cfg, "pauseType", "delay");
    if (!parse_mode(ptype, &mode)) {
        crm_node_config_error(n, "pauseType", "unknown pause type \"%s\"", ptype);
        return -1;
    }
    delay_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->mode = mode;
    s->rng = (uint64_t)(crm_wall_ms() * 1000.0) ^ (uint64_t)(uintptr_t)s ^ 0x9E3779B97F4A7C15ull;
    if (!s->rng) s->rng = 1;
    s->timeout = crm_to_number(json_object_get(cfg, "timeout")) *
                 duration_unit_ms(crm_cfg_str(cfg, "timeoutUnits", "seconds"));
    double runit = duration_unit_ms(crm_cfg_str(cfg, "randomUnits", "seconds"));
    s->rand_first = crm_to_number(json_object_get(cfg, "randomFirst")) * runit;
    s->rand_diff = crm_to_number(json_object_get(cfg, "randomLast")) * runit - s->rand_first;
    read_rates(s, cfg);
    s->drop = crm_truthy(json_object_get(cfg, "drop"));
    s->allowrate = crm_truthy(json_object_get(cfg, "allowrate"));
    const json_t *outputs = json_object_get(cfg, "outputs");
    s->two_outputs = json_is_number(outputs) && crm_num_value(outputs) == 2; /* === 2 */
    s->max_kept = max_kept_setting(n);
    crm_node_set_data(n, s);
    return 0;
}

static void delay_start(crm_node *n)
{
    delay_state *s = crm_node_data(n);
    if (s->mode == M_QUEUE || s->mode == M_TIMED) start_interval(n, s, topic_tick);
    else if (s->mode == M_BURST) crm_node_status(n, "green", "ring", "");
}

static void delay_input(crm_node *n, json_t *msg)
{
    delay_state *s = crm_node_data(n);
    switch (s->mode) {
    case M_DELAY:
    case M_DELAYV:
    case M_RANDOM: timed_input(n, s, msg); break;
    case M_RATE: rate_input(n, s, msg); break;
    case M_BURST: burst_input(n, s, msg); break;
    case M_QUEUE:
    case M_TIMED: topic_input(n, s, msg); break;
    }
}

static void delay_close(crm_node *n)
{
    delay_state *s = crm_node_data(n);
    if (!s) return;
    crm_timer_cancel(s->head_timer);
    s->head_timer = NULL;
    stop_interval(s);
    crm_timer_cancel(s->busy);
    s->busy = NULL;
    if (s->mode == M_BURST) {
        while (s->first) pend_cancel(n, s, s->first);
        status_clear(n);
    } else if (s->mode <= M_RANDOM) {
        pend_clear_all(n, s, false);
    } else {
        dq_clear(n, &s->buf, true);
        status_clear(n);
    }
    free(s->buf.v);
    json_decref(s->rate_js);
    json_decref(s->burst_js);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_delay = {
    .abi = CRM_ABI_VERSION,
    .type = "delay",
    .create = delay_create,
    .start = delay_start,
    .input = delay_input,
    .close = delay_close,
    .flags = CRM_TYPE_KEEPS_NAME, /* Node-RED's delay sets this.name = n.name */
};
