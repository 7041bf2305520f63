/* batch.c: the Node-RED "batch" node (core/sequence/19-batch.js), Node-RED
 * 4.1.15's semantics.
 *
 * Every batch is sent as a sequence: each message gets msg.parts (created
 * when missing, else its own parts object updated) with id = the _msgid of
 * the batch's first message, index and count.
 *  - count: every `count` messages (or a part that ends a sequence, with
 *    honourParts); with `overlap` the last messages are kept for the next
 *    batch and the sent ones are copies. count <= overlap: an error at start,
 *    then messages are ignored.
 *  - interval: what arrived in each interval (seconds); with
 *    allowEmptySequence an empty interval sends {payload: null} as a one-part
 *    sequence.
 *  - concat: the first complete sequence of every listed topic, joined in
 *    the topics' order (copies); messages of other topics are ignored.
 * msg.reset drops what is pending. settings.nodeMessageBufferMaxLength bounds
 * the pending messages as Node-RED does ("too many pending messages in batch
 * node"). done() is called where Node-RED calls it. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

typedef enum { B_COUNT, B_INTERVAL, B_CONCAT, B_NONE } batch_mode;

typedef struct {
    json_t **v;
    size_t n, cap;
} mlist;

typedef struct cgroup {
    char *gid;
    mlist msgs;
    double count;
    struct cgroup *next;
} cgroup;

typedef struct {
    char *topic;
    cgroup *groups; /* in arrival order of their first part */
} ctopic;

typedef struct {
    batch_mode mode;
    double count, overlap;
    bool honour_parts, eof;
    double interval_ms;
    bool allow_empty;
    crm_timer *timer;
    mlist pending;  /* count and interval modes */
    size_t pending_count;
    ctopic *topics; /* concat: the configured topics (duplicates kept) */
    size_t ntopics;
    size_t max_kept;
} batch_node;

static void ml_push(mlist *l, json_t *m)
{
    if (l->n == l->cap) l->v = realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 16) * sizeof *l->v);
    l->v[l->n++] = m;
}

static void ml_done_all(crm_node *n, mlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        crm_node_done(n, l->v[i]);
        json_decref(l->v[i]);
    }
    l->n = 0;
}

/* send_msgs: parts set, each message sent (a copy when clone). The messages
 * stay the caller's. */
static void send_msgs(crm_node *n, json_t **msgs, size_t cnt, bool clone)
{
    if (!cnt) return;
    json_t *id = json_object_get(msgs[0], "_msgid");
    id = id ? json_incref(id) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        json_t *m = clone ? crm_deep_copy(msgs[i]) : json_incref(msgs[i]);
        json_t *parts = json_object_get(m, "parts");
        if (!parts) {
            parts = json_object();
            json_object_set_new(m, "parts", parts);
        }
        if (json_is_object(parts)) {
            if (id) json_object_set(parts, "id", id);
            else json_object_del(parts, "id");
            json_object_set_new(parts, "index", crm_num((double)i));
            json_object_set_new(parts, "count", crm_num((double)cnt));
        }
        crm_node_send(n, 0, m);
    }
    json_decref(id);
}

/* A message with msg.reset (present, whatever its value). */
static bool has_reset(const json_t *msg) { return json_object_get(msg, "reset") != NULL; }

/* Over nodeMessageBufferMaxLength: the last pending message gets the error,
 * the others done(). */
static void overflow(crm_node *n, batch_node *s)
{
    if (!s->max_kept || s->pending_count <= s->max_kept || !s->pending.n) return;
    json_t *last = s->pending.v[--s->pending.n];
    crm_node_error(n, last, "too many pending messages in batch node");
    json_decref(last);
    ml_done_all(n, &s->pending);
    s->pending_count = 0;
}

/* Count -------------------------------------------------------------------------------- */

static void count_input(crm_node *n, batch_node *s, json_t *msg)
{
    json_t *parts = json_object_get(msg, "parts");
    if (s->honour_parts && parts) {
        double idx = crm_num_value(json_object_get(parts, "index"));
        json_t *c = json_object_get(parts, "count");
        if (json_is_number(c) && idx + 1 == crm_num_value(c)) s->eof = true;
    }
    ml_push(&s->pending, msg);
    s->pending_count++;
    if ((double)s->pending.n == s->count || s->eof) {
        size_t cnt = s->pending.n;
        bool overlap = s->overlap > 0;
        send_msgs(n, s->pending.v, cnt, overlap);
        size_t keep = (size_t)s->overlap;
        if (keep > cnt) keep = cnt;
        for (size_t i = 0; i + keep < cnt; i++) {
            crm_node_done(n, s->pending.v[i]);
            json_decref(s->pending.v[i]);
        }
        /* queue.slice(-overlap): the last `overlap` messages stay */
        memmove(s->pending.v, s->pending.v + (cnt - keep), keep * sizeof *s->pending.v);
        s->pending.n = keep;
        s->pending_count = 0;
        s->eof = false;
    }
    overflow(n, s);
}

/* Interval ----------------------------------------------------------------------------- */

static void interval_tick(crm_node *n, void *arg)
{
    (void)arg;
    batch_node *s = crm_node_data(n);
    if (s->pending.n) {
        send_msgs(n, s->pending.v, s->pending.n, false);
        ml_done_all(n, &s->pending);
    } else if (s->allow_empty) {
        char id[17];
        crm_make_id(id);
        json_t *m = json_pack("{s:n,s:{s:s,s:o,s:o}}", "payload", "parts", "id", id, "index", crm_num(0), "count",
                              crm_num(1));
        crm_node_send(n, 0, m);
    }
    s->pending_count = 0;
}

static void interval_start(crm_node *n, batch_node *s)
{
    if (s->interval_ms > 0) s->timer = crm_timer_start(n, s->interval_ms, s->interval_ms, interval_tick, NULL);
}

/* Concat ------------------------------------------------------------------------------- */

static ctopic *find_topic(batch_node *s, const char *t)
{
    for (size_t i = 0; i < s->ntopics; i++)
        if (!strcmp(s->topics[i].topic, t)) return &s->topics[i];
    return NULL;
}

static void cgroup_free(cgroup *g, crm_node *n, bool done)
{
    for (size_t i = 0; i < g->msgs.n; i++) {
        if (done) crm_node_done(n, g->msgs.v[i]);
        json_decref(g->msgs.v[i]);
    }
    free(g->msgs.v);
    free(g->gid);
    free(g);
}

static void concat_clear(crm_node *n, batch_node *s)
{
    for (size_t i = 0; i < s->ntopics; i++) {
        /* duplicated topics share one pending entry: only the first owns it */
        if (find_topic(s, s->topics[i].topic) != &s->topics[i]) continue;
        while (s->topics[i].groups) {
            cgroup *g = s->topics[i].groups;
            s->topics[i].groups = g->next;
            cgroup_free(g, n, true);
        }
    }
    s->pending_count = 0;
}

static void try_concat(crm_node *n, batch_node *s)
{
    for (size_t i = 0; i < s->ntopics; i++) {
        cgroup *g = find_topic(s, s->topics[i].topic)->groups;
        if (!g || g->count != (double)g->msgs.n) return;
    }
    mlist all = {0};
    for (size_t i = 0; i < s->ntopics; i++) {
        cgroup *g = find_topic(s, s->topics[i].topic)->groups;
        for (size_t k = 0; k < g->msgs.n; k++) ml_push(&all, json_incref(g->msgs.v[k]));
    }
    for (size_t i = 0; i < s->ntopics; i++) {
        ctopic *t = find_topic(s, s->topics[i].topic);
        cgroup *g = t->groups;
        if (!g) continue;
        t->groups = g->next;
        cgroup_free(g, n, false);
    }
    send_msgs(n, all.v, all.n, true);
    s->pending_count -= all.n < s->pending_count ? all.n : s->pending_count;
    ml_done_all(n, &all);
    free(all.v);
}

static bool same_id(const json_t *a, const json_t *b)
{
    const json_t *x = json_object_get(a, "id"), *y = json_object_get(b, "id");
    if (!x || !y) return !x && !y;
    return crm_equal(x, y) && !json_is_object(x) && !json_is_array(x);
}

static void concat_input(crm_node *n, batch_node *s, json_t *msg)
{
    json_t *topic = json_object_get(msg, "topic");
    ctopic *t = json_is_string(topic) ? find_topic(s, json_string_value(topic)) : NULL;
    if (!t) { /* not one of the topics: dropped, never done */
        json_decref(msg);
        return;
    }
    json_t *parts = json_object_get(msg, "parts");
    if (!json_is_object(parts) || !json_object_get(parts, "id") || !json_object_get(parts, "index") ||
        !json_object_get(parts, "count")) {
        crm_node_error(n, msg, "no parts property in message");
        json_decref(msg);
        return;
    }
    char *gid = crm_to_string(json_object_get(parts, "id"));
    cgroup *g = t->groups, *last = NULL;
    for (; g; last = g, g = g->next)
        if (!strcmp(g->gid, gid)) break;
    if (!g) {
        g = calloc(1, sizeof *g);
        g->gid = gid;
        g->count = NAN;
        if (last) last->next = g;
        else t->groups = g;
    } else {
        free(gid);
    }
    ml_push(&g->msgs, msg);
    if (isnan(g->count)) {
        json_t *c = json_object_get(parts, "count");
        g->count = json_is_number(c) ? crm_num_value(c) : NAN;
    }
    s->pending_count++;
    if (s->max_kept && s->pending_count > s->max_kept) {
        /* every pending message is done; those whose msg.id matches the new
         * message's (undefined === undefined included) with the error */
        for (size_t i = 0; i < s->ntopics; i++) {
            if (find_topic(s, s->topics[i].topic) != &s->topics[i]) continue;
            while (s->topics[i].groups) {
                cgroup *x = s->topics[i].groups;
                s->topics[i].groups = x->next;
                for (size_t k = 0; k < x->msgs.n; k++) {
                    if (same_id(x->msgs.v[k], msg))
                        crm_node_error(n, x->msgs.v[k], "too many pending messages in batch node");
                    else
                        crm_node_done(n, x->msgs.v[k]);
                }
                cgroup_free(x, n, false);
            }
        }
        s->pending_count = 0;
        return;
    }
    try_concat(n, s);
}

/* Node --------------------------------------------------------------------------------- */

/* Number(n.x || def) */
static double cfg_or(const json_t *cfg, const char *key, double def)
{
    const json_t *v = json_object_get(cfg, key);
    return crm_truthy(v) ? crm_to_number(v) : def;
}

static int batch_create(crm_node *n, const json_t *cfg)
{
    batch_node *s = calloc(1, sizeof *s);
    if (!s) return -1;
    crm_node_set_data(n, s);
    const char *mode = crm_cfg_str(cfg, "mode", "");
    s->mode = !*mode || !strcmp(mode, "count") ? B_COUNT
              : !strcmp(mode, "interval")      ? B_INTERVAL
              : !strcmp(mode, "concat")        ? B_CONCAT
                                               : B_NONE;
    s->honour_parts = crm_truthy(json_object_get(cfg, "honourParts"));
    s->count = cfg_or(cfg, "count", 1);
    s->overlap = cfg_or(cfg, "overlap", 0);
    s->interval_ms = cfg_or(cfg, "interval", 0) * 1000;
    s->allow_empty = crm_truthy(json_object_get(cfg, "allowEmptySequence"));
    if (s->mode == B_CONCAT) {
        const json_t *tl = json_object_get(cfg, "topics");
        size_t cnt = json_is_array(tl) ? json_array_size(tl) : 0;
        s->topics = calloc(cnt ? cnt : 1, sizeof *s->topics);
        for (size_t i = 0; i < cnt; i++) {
            char *t = crm_to_string(json_object_get(json_array_get(tl, i), "topic"));
            s->topics[s->ntopics++].topic = t;
        }
    }
    const json_t *max = json_object_get(crm_node_settings(n), "nodeMessageBufferMaxLength");
    double m = max ? crm_to_number(max) : 0;
    s->max_kept = m > 0 ? (size_t)m : 0;
    return 0;
}

static void batch_start(crm_node *n)
{
    batch_node *s = crm_node_data(n);
    if (s->mode == B_COUNT && s->count <= s->overlap) {
        crm_node_log(n, CRM_LOG_ERROR, "Invalid count and overlap");
        s->mode = B_NONE;
    } else if (s->mode == B_NONE) {
        crm_node_log(n, CRM_LOG_ERROR, "unexpected mode");
    } else if (s->mode == B_INTERVAL) {
        interval_start(n, s);
    }
}

static void batch_input(crm_node *n, json_t *msg)
{
    batch_node *s = crm_node_data(n);
    if (s->mode == B_NONE) { /* no input handler in Node-RED */
        json_decref(msg);
        return;
    }
    if (has_reset(msg)) {
        if (s->mode == B_CONCAT) {
            concat_clear(n, s);
        } else {
            if (s->mode == B_INTERVAL) {
                crm_timer_cancel(s->timer);
                s->timer = NULL;
            }
            ml_done_all(n, &s->pending);
            s->pending_count = 0;
        }
        crm_node_done(n, msg);
        json_decref(msg);
        if (s->mode == B_INTERVAL) interval_start(n, s);
        return;
    }
    if (s->mode == B_COUNT) {
        count_input(n, s, msg);
    } else if (s->mode == B_INTERVAL) {
        ml_push(&s->pending, msg);
        s->pending_count++;
        overflow(n, s);
    } else {
        concat_input(n, s, msg);
    }
}

static void batch_close(crm_node *n)
{
    batch_node *s = crm_node_data(n);
    if (!s) return;
    crm_timer_cancel(s->timer);
    ml_done_all(n, &s->pending);
    free(s->pending.v);
    if (s->topics) concat_clear(n, s);
    for (size_t i = 0; i < s->ntopics; i++) free(s->topics[i].topic);
    free(s->topics);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_batch = {
    .abi = CRM_ABI_VERSION,
    .type = "batch",
    .create = batch_create,
    .start = batch_start,
    .input = batch_input,
    .close = batch_close,
};
