/* msg_speed.c: the contrib node "msg-speed" (node-red-contrib-msg-speed 2.1.0
 * with nr-msg-statistics 1.0.5, spec §3.15): counts the messages that passed
 * in the last `interval` seconds / minutes / hours and reports the count about
 * once a second on output 1; every non-control message goes on, unchanged, on
 * output 2.
 *
 * The accounting is the library's, quirks included: the window is a ring of
 * one-second buckets; buckets close when a message arrives or when a 1 s timer
 * fires, and every arriving message restarts that timer, so while traffic is
 * faster than 1 msg/s the timer never fires; after traffic stops the timer keeps
 * reporting (zeros) every second. Node-RED's clearInterval + setInterval per
 * message is modelled without touching the loop's timer heap on each message:
 * the analyzer keeps the time its next tick is due and one timer chases it.
 *
 * The node never calls done (its handler takes only msg).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

#define TICK_MS 1000.0

typedef struct {
    json_t *topic;          /* the analyzer's topic as given ("all_topics" otherwise) */
    unsigned *buckets;      /* ring of per-second counts */
    size_t cap, head, size; /* head: index of the oldest bucket */
    double in_buffer;       /* sum over the buckets */
    double new_count;       /* messages of the current second */
    bool has_start;
    double start;           /* start of the current second (crm_loop_now) */
    bool paused;
    bool prev_startup;
    double prev_count;
    bool ticking;           /* the 1 s interval runs */
    double next_tick;       /* when it is next due */
    crm_timer *timer;       /* chases next_tick */
} analyzer;

typedef struct {
    char *frequency;        /* config string, as the output messages show it */
    double interval;
    size_t capacity;
    bool estimation, ignore, pause_at_startup, topic_dependent;
    analyzer **an;
    size_t nan, capan;
} speed_state;

/* Analyzer ---------------------------------------------------------------------------- */

static void an_reset(analyzer *a)
{
    a->head = a->size = 0;
    a->in_buffer = a->new_count = 0;
    a->has_start = false;
    a->prev_startup = false;
    a->prev_count = 0;
}

static analyzer *an_new(const speed_state *s, const json_t *topic)
{
    analyzer *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->buckets = calloc(s->capacity, sizeof *a->buckets);
    if (!a->buckets) {
        free(a);
        return NULL;
    }
    a->cap = s->capacity;
    a->topic = crm_deep_copy(topic);
    a->paused = s->pause_at_startup;
    an_reset(a);
    return a;
}

static void an_stop(analyzer *a)
{
    crm_timer_cancel(a->timer);
    a->timer = NULL;
    a->ticking = false;
}

static void an_free(analyzer *a)
{
    an_stop(a);
    json_decref(a->topic);
    free(a->buckets);
    free(a);
}

static void an_status(crm_node *n, const speed_state *s, double count, bool startup)
{
    if (s->topic_dependent) return;
    char text[96];
    if (s->interval == 1) snprintf(text, sizeof text, "%.0f / %s", count, s->frequency);
    else snprintf(text, sizeof text, "%.0f / %.0f %s", count, s->interval, s->frequency);
    if (!startup) crm_node_status(n, "green", "dot", text);
    else crm_node_status(n, "yellow", "ring", s->ignore ? " start ignored" : text);
}

static void an_send(crm_node *n, const speed_state *s, const analyzer *a, double count)
{
    char iaf[96];
    snprintf(iaf, sizeof iaf, "%.0f %s", s->interval, s->frequency);
    json_t *out = json_object();
    json_object_set_new(out, "payload", crm_num(count));
    json_object_set_new(out, "frequency", json_string(s->frequency));
    json_object_set_new(out, "interval", crm_num(s->interval));
    json_object_set_new(out, "intervalAndFrequency", json_string(iaf));
    if (s->topic_dependent) json_object_set_new(out, "topic", crm_deep_copy(a->topic));
    crm_node_send(n, 0, out);
}

/* One whole second ended: its count becomes the newest bucket. */
static void an_close_second(crm_node *n, const speed_state *s, analyzer *a)
{
    if (a->size == a->cap) {
        a->in_buffer -= a->buckets[a->head];
        a->head = (a->head + 1) % a->cap;
        a->size--;
    }
    a->in_buffer += a->new_count;
    a->buckets[(a->head + a->size) % a->cap] = (unsigned)a->new_count;
    a->size++;
    bool startup = a->size < a->cap;
    double count = a->in_buffer;
    if (startup && s->estimation) count = floor(a->in_buffer * (double)a->cap / (double)a->size);
    if (count != a->prev_count || startup != a->prev_startup) {
        an_status(n, s, count, startup);
        a->prev_count = count;
    }
    if (!(s->ignore && startup)) an_send(n, s, a, count);
    a->new_count = 0;
    a->prev_startup = startup;
}

static void an_analyse(crm_node *n, const speed_state *s, analyzer *a, bool counted)
{
    double now = crm_loop_now();
    if (!a->has_start) {
        a->has_start = true;
        a->start = now;
    }
    double seconds = floor((now - a->start) / TICK_MS);
    /* the next bucket starts on a whole second after the previous one */
    double end = a->start + seconds * TICK_MS;
    for (double i = 0; i < seconds; i++) {
        an_close_second(n, s, a);
        a->start = end;
    }
    if (counted) a->new_count += 1;
}

static void an_timer_fire(crm_node *n, void *arg);

static void an_arm(crm_node *n, analyzer *a)
{
    a->timer = crm_timer_start_at(n, a->next_tick, an_timer_fire, a);
}

/* The 1 s interval: a tick runs analyse(null) unless a message moved it. */
static void an_timer_fire(crm_node *n, void *arg)
{
    analyzer *a = arg;
    a->timer = NULL;
    if (!a->ticking) return;
    if (crm_loop_now() >= a->next_tick) {
        an_analyse(n, crm_node_data(n), a, false);
        a->next_tick += TICK_MS;
        if (a->next_tick <= crm_loop_now()) a->next_tick = crm_loop_now() + TICK_MS;
    }
    an_arm(n, a);
}

/* process(msg): analyse, then (re)start the 1 s interval from now. */
static void an_process(crm_node *n, const speed_state *s, analyzer *a, bool counted)
{
    if (a->paused) return;
    an_analyse(n, s, a, counted);
    a->ticking = true;
    a->next_tick = crm_loop_now() + TICK_MS;
    if (!a->timer) an_arm(n, a); /* an armed timer fires early and re-arms */
}

/* Analyzers by topic ------------------------------------------------------------------- */

/* Map.get semantics (SameValueZero): primitives by value and type. */
static bool same_topic(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = crm_num_value(a), y = crm_num_value(b);
        return x == y || (isnan(x) && isnan(y));
    }
    if (json_is_string(a) && json_is_string(b)) return json_equal((json_t *)a, (json_t *)b);
    if (json_is_object(a) || json_is_array(a)) return a == b;
    return json_typeof(a) == json_typeof(b);
}

static void status_topics(crm_node *n, const speed_state *s)
{
    size_t paused = 0;
    for (size_t i = 0; i < s->nan; i++) paused += s->an[i]->paused;
    char text[64];
    if (paused) snprintf(text, sizeof text, "%zu topics (%zu paused)", s->nan, paused);
    else snprintf(text, sizeof text, "%zu topics", s->nan);
    crm_node_status(n, "green", "dot", text);
}

static analyzer *get_analyzer(crm_node *n, speed_state *s, const json_t *topic)
{
    for (size_t i = 0; i < s->nan; i++)
        if (same_topic(s->an[i]->topic, topic)) return s->an[i];
    if (s->nan == s->capan) {
        size_t cap = s->capan ? s->capan * 2 : 4;
        analyzer **v = realloc(s->an, cap * sizeof *v);
        if (!v) return NULL;
        s->an = v;
        s->capan = cap;
    }
    analyzer *a = an_new(s, topic);
    if (!a) return NULL;
    s->an[s->nan++] = a;
    if (s->topic_dependent) status_topics(n, s);
    return a;
}

/* Input --------------------------------------------------------------------------------- */

static bool flag_true(const json_t *msg, const char *key) { return json_is_true(json_object_get(msg, key)); }

/* `!msg.topic || msg.topic == ""` */
static bool no_topic(const json_t *topic)
{
    if (!crm_truthy(topic)) return true;
    if (json_is_array(topic) || json_is_object(topic)) {
        char *str = crm_to_string(topic);
        bool empty = str && !*str;
        free(str);
        return empty;
    }
    return false;
}

static void control(crm_node *n, speed_state *s, json_t *msg, analyzer **list, size_t count)
{
    bool reset = flag_true(msg, "speed_reset"), resume = flag_true(msg, "speed_resume"),
         pause = flag_true(msg, "speed_pause");
    for (size_t i = 0; reset && i < count; i++) an_reset(list[i]);
    for (size_t i = 0; resume && i < count; i++) {
        analyzer *a = list[i];
        if (!a->paused) continue;
        a->paused = false;
        a->has_start = true;
        a->start = crm_loop_now();
        an_process(n, s, a, false);
    }
    for (size_t i = 0; pause && i < count; i++) {
        if (list[i]->paused) continue;
        list[i]->paused = true;
        an_stop(list[i]);
    }
    if (s->topic_dependent) status_topics(n, s);
    else if (list[0]->paused) crm_node_status(n, "yellow", "ring", "paused");
}

static void speed_input(crm_node *n, json_t *msg)
{
    speed_state *s = crm_node_data(n);
    bool is_control = flag_true(msg, "speed_reset") || flag_true(msg, "speed_resume") || flag_true(msg, "speed_pause");
    const json_t *topic = json_object_get(msg, "topic");
    analyzer *one = NULL;
    if (s->topic_dependent && no_topic(topic) && is_control) {
        if (!s->nan) {
            /* the contrib node's `node.warn(...).return` slip throws here */
            crm_node_warn(n, "No topics to be processed");
            crm_node_error(n, msg, "TypeError: Cannot read properties of undefined (reading 'return')");
        } else {
            control(n, s, msg, s->an, s->nan);
        }
        json_decref(msg);
        return;
    }
    json_t *all = json_string("all_topics");
    one = get_analyzer(n, s, (s->topic_dependent && !no_topic(topic)) ? topic : all);
    json_decref(all);
    if (!one) {
        crm_node_error(n, msg, "msg-speed: out of memory");
        json_decref(msg);
        return;
    }
    if (is_control) {
        control(n, s, msg, &one, 1);
        json_decref(msg);
        return;
    }
    an_process(n, s, one, true);
    crm_node_send(n, 1, msg);
}

/* Lifecycle ------------------------------------------------------------------------------ */

/* `v == true` in JavaScript: Number(v) === 1 (null and undefined are never equal). */
static bool loose_true(const json_t *v)
{
    if (!v || json_is_null(v)) return false;
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_number(v)) return crm_num_value(v) == 1;
    char *str = crm_to_string(v);
    bool one = str && crm_str_to_number(str) == 1;
    free(str);
    return one;
}

static int speed_create(crm_node *n, const json_t *cfg)
{
    speed_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->frequency = strdup(crm_cfg_str(cfg, "frequency", "sec"));
    if (!s->frequency) {
        free(s);
        return -1;
    }
    double base = !strcmp(s->frequency, "min") ? 60 : !strcmp(s->frequency, "hour") ? 3600 : 1;
    const json_t *iv = json_object_get(cfg, "interval");
    s->interval = crm_truthy(iv) ? crm_parse_int_value(iv, 0) : 1;
    if (!(s->interval >= 1) || s->interval * base > 1e7) {
        crm_node_config_error(n, "interval", "the interval must be a whole number from 1 (got %s)",
                              json_is_string(iv) ? json_string_value(iv) : "a non-number");
        free(s->frequency);
        free(s);
        return -1;
    }
    s->capacity = (size_t)(s->interval * base);
    s->estimation = loose_true(json_object_get(cfg, "estimation"));
    s->ignore = loose_true(json_object_get(cfg, "ignore"));
    s->pause_at_startup = loose_true(json_object_get(cfg, "pauseAtStartup"));
    s->topic_dependent = crm_truthy(json_object_get(cfg, "topicDependent"));
    crm_node_set_data(n, s);
    return 0;
}

static void speed_start(crm_node *n)
{
    speed_state *s = crm_node_data(n);
    if (s->pause_at_startup) crm_node_status(n, "yellow", "ring", "paused");
}

static void speed_close(crm_node *n)
{
    speed_state *s = crm_node_data(n);
    if (!s) return;
    crm_node_status(n, NULL, NULL, NULL);
    for (size_t i = 0; i < s->nan; i++) an_free(s->an[i]);
    free(s->an);
    free(s->frequency);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_msg_speed = {
    .abi = CRM_ABI_VERSION,
    .type = "msg-speed",
    .create = speed_create,
    .start = speed_start,
    .input = speed_input,
    .close = speed_close,
};
