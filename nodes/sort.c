/* sort.c: the Node-RED "sort" node (core/sequence/18-sort.js), Node-RED
 * 4.1.15's semantics.
 *
 * targetType "msg": the array at msg.<target> is sorted in place (by the
 * elements, or by a JSONata key evaluated on each element); a message whose
 * property is not an array is not sent. targetType "seq": messages with
 * msg.parts (id and index) are kept per parts.id until parts.count of them
 * arrived, then sent sorted (by a msg property or a JSONata key on each
 * message) with parts.index renumbered. Keys compare as JavaScript's `>` and
 * `===` do (Number() first with as_num), in V8's stable order: binary
 * insertion after the first run below 64 elements, as V8's TimSort does, a
 * stable merge sort above. settings.nodeMessageBufferMaxLength bounds the
 * kept messages: over it the oldest group is dropped with "Too many pending
 * messages in sort node" on its last message. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "undefined_read.h"

typedef struct group {
    char *id;
    json_t **msgs;
    size_t n, cap;
    double count; /* NaN until a part carries parts.count */
    unsigned long seq_no;
    struct group *next;
} group;

typedef struct {
    bool seq;      /* targetType "seq" */
    int dir;       /* 1 ascending, -1 descending */
    bool as_num;
    char *target;  /* msg mode: the property holding the array */
    crm_path *target_path;
    char *key_prop; /* seq mode without JSONata: the msg property */
    crm_path *key_path;
    crm_typed *key_exp; /* JSONata key, or NULL */
    bool broken;        /* the expression did not compile: messages are ignored */
    group *groups;
    unsigned long next_seq;
    size_t pending;
    size_t max_kept;
} sort_node;

/* JavaScript comparison ------------------------------------------------------------ */

typedef struct {
    const json_t *item; /* the element or message */
    json_t *key;        /* its sort value (owned; NULL: undefined) */
} keyed;

/* ToPrimitive: objects, arrays and Buffers become their String(). */
static json_t *prim(const json_t *v)
{
    if (v && (json_is_object(v) || json_is_array(v))) {
        char *s = crm_to_string(v);
        json_t *r = json_string(s);
        if (!r) r = json_stringn(s, strlen(s));
        free(s);
        return r;
    }
    return v ? json_incref((json_t *)v) : NULL;
}

/* a > b: 1, a < b: -1, else 0 (equal or NaN involved). */
static int js_order(const json_t *a, const json_t *b)
{
    json_t *pa = prim(a), *pb = prim(b);
    int r;
    if (json_is_string(pa) && json_is_string(pb)) {
        size_t la = json_string_length(pa), lb = json_string_length(pb);
        int c = memcmp(json_string_value(pa), json_string_value(pb), la < lb ? la : lb);
        r = c < 0 ? -1 : c > 0 ? 1 : la < lb ? -1 : la > lb ? 1 : 0;
    } else {
        double x = crm_to_number(pa), y = crm_to_number(pb);
        r = x > y ? 1 : x < y ? -1 : 0;
    }
    json_decref(pa);
    json_decref(pb);
    return r;
}

/* a === b (objects only by identity). */
static bool js_strict_eq(const json_t *a, const json_t *b)
{
    if (!a || !b) return a == b;
    if (json_is_object(a) || json_is_array(a)) return a == b;
    if (json_is_number(a) && json_is_number(b)) return crm_num_value(a) == crm_num_value(b);
    if (json_typeof(a) != json_typeof(b)) return false;
    return crm_equal(a, b);
}

/* Node-RED's comparison function: 0, dir or -dir. */
static int compare(const sort_node *s, const keyed *x, const keyed *y)
{
    if (s->as_num) {
        double a = crm_to_number(x->key), b = crm_to_number(y->key);
        if (a == b) return 0;
        if (a > b) return s->dir;
        return -s->dir;
    }
    if (js_strict_eq(x->key, y->key)) return 0;
    if (js_order(x->key, y->key) > 0) return s->dir;
    return -s->dir;
}

static void merge_sort(const sort_node *s, keyed *a, keyed *tmp, size_t n)
{
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(s, a, tmp, h);
    merge_sort(s, a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = compare(s, &a[j], &a[i]) < 0 ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

/* Array.prototype.sort(comparefn) as V8 does it for what Node-RED sorts. */
static void js_sort(const sort_node *s, keyed *a, size_t n)
{
    if (n < 2) return;
    if (n >= 64) {
        keyed *tmp = malloc(n * sizeof *tmp);
        merge_sort(s, a, tmp, n);
        free(tmp);
        return;
    }
    /* CountAndMakeRun */
    size_t run = 2;
    bool desc = compare(s, &a[1], &a[0]) < 0;
    for (size_t i = 2; i < n; i++) {
        int o = compare(s, &a[i], &a[i - 1]);
        if (desc ? o >= 0 : o < 0) break;
        run++;
    }
    if (desc)
        for (size_t i = 0, j = run - 1; i < j; i++, j--) {
            keyed t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    /* BinaryInsertionSort */
    for (size_t start = run; start < n; start++) {
        keyed pivot = a[start];
        size_t left = 0, right = start;
        while (left < right) {
            size_t mid = left + ((right - left) >> 1);
            if (compare(s, &pivot, &a[mid]) < 0) right = mid;
            else left = mid + 1;
        }
        memmove(&a[left + 1], &a[left], (start - left) * sizeof *a);
        a[left] = pivot;
    }
}

/* Keys for items: JSONata on each, or the given getter. -1 with *err. */
static int eval_keys(crm_node *n, sort_node *s, keyed *k, size_t cnt, char **err)
{
    for (size_t i = 0; i < cnt; i++) {
        char *e = NULL;
        if (crm_typed_eval(n, s->key_exp, k[i].item, &k[i].key, &e) < 0) {
            /* JSONata's errors are plain objects: err.toString() */
            free(e);
            *err = strdup("Invalid JSONata expression in sort node: [object Object]");
            return -1;
        }
    }
    return 0;
}

static void free_keys(keyed *k, size_t n)
{
    for (size_t i = 0; i < n; i++) json_decref(k[i].key);
    free(k);
}

/* Config ----------------------------------------------------------------------------- */

static int sort_create(crm_node *n, const json_t *cfg)
{
    sort_node *s = calloc(1, sizeof *s);
    if (!s) return -1;
    crm_node_set_data(n, s);
    s->dir = !strcmp(crm_cfg_str(cfg, "order", "ascending"), "descending") ? -1 : 1;
    s->as_num = crm_truthy(json_object_get(cfg, "as_num"));
    s->seq = strcmp(crm_cfg_str(cfg, "targetType", ""), "msg") != 0;
    const char *t = crm_cfg_str(cfg, "target", "");
    s->target = strdup(*t ? t : "payload");
    const char *kt = crm_cfg_str(cfg, s->seq ? "seqKeyType" : "msgKeyType", "");
    const char *sk = crm_cfg_str(cfg, "seqKey", "");
    s->key_prop = strdup(*sk ? sk : "payload");
    char *err = NULL;
    if (!strcmp(kt, "jsonata")) {
        const json_t *expr = json_object_get(cfg, s->seq ? "seqKey" : "msgKey");
        json_t *e = expr ? json_incref((json_t *)expr) : json_string("");
        s->key_exp = crm_typed_new(n, "jsonata", e, &err);
        json_decref(e);
        if (!s->key_exp) {
            /* Node-RED logs it and never listens for input */
            crm_node_log(n, CRM_LOG_ERROR, "Invalid JSONata expression in sort node: [object Object]");
            free(err);
            s->broken = true;
            return 0;
        }
    }
    s->target_path = crm_path_parse(s->target, &err);
    /* seqKey is a property only when the key is not an expression (Node-RED
     * reads it as one only then) */
    if (s->target_path && !s->key_exp) s->key_path = crm_path_parse(s->key_prop, &err);
    if (!s->target_path || (!s->key_exp && !s->key_path)) {
        crm_node_config_error(n, s->target_path ? "seqKey" : "target", "%s", err ? err : "invalid property");
        free(err);
        return -1;
    }
    const json_t *max = json_object_get(crm_node_settings(n), "nodeMessageBufferMaxLength");
    double m = max ? crm_to_number(max) : 0;
    s->max_kept = m > 0 ? (size_t)m : 0;
    return 0;
}

/* Property mode ------------------------------------------------------------------------ */

static void sort_property(crm_node *n, sort_node *s, json_t *msg)
{
    bool throws = false;
    json_t *data = crm_path_get(s->target_path, msg, msg, &throws);
    if (throws) {
        crm_undefined_read_error(n, s->target, msg);
        json_decref(msg);
        return;
    }
    if (!json_is_array(data)) {
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    size_t cnt = json_array_size(data);
    keyed *k = calloc(cnt ? cnt : 1, sizeof *k);
    for (size_t i = 0; i < cnt; i++) {
        k[i].item = json_array_get(data, i);
        if (!s->key_exp) k[i].key = json_incref(json_array_get(data, i));
    }
    char *err = NULL;
    if (s->key_exp && eval_keys(n, s, k, cnt, &err) < 0) {
        crm_node_error(n, msg, "%s", err);
        free(err);
        free_keys(k, cnt);
        json_decref(msg);
        return;
    }
    js_sort(s, k, cnt);
    json_t *sorted = json_array();
    for (size_t i = 0; i < cnt; i++) json_array_append((json_t *)sorted, (json_t *)k[i].item);
    free_keys(k, cnt);
    json_array_clear(data);
    json_array_extend(data, sorted);
    json_decref(sorted);
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

/* Sequence mode ------------------------------------------------------------------------ */

static void group_free(group *g)
{
    for (size_t i = 0; i < g->n; i++) json_decref(g->msgs[i]);
    free(g->msgs);
    free(g->id);
    free(g);
}

static void unlink_group(sort_node *s, group *g)
{
    for (group **p = &s->groups; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            return;
        }
}

static void sort_group(crm_node *n, sort_node *s, group *g)
{
    keyed *k = calloc(g->n, sizeof *k);
    for (size_t i = 0; i < g->n; i++) {
        k[i].item = g->msgs[i];
        if (!s->key_exp) {
            bool throws = false;
            json_t *v = crm_path_get(s->key_path, g->msgs[i], g->msgs[i], &throws);
            k[i].key = v ? json_incref(v) : NULL;
        }
    }
    char *err = NULL;
    if (s->key_exp && eval_keys(n, s, k, g->n, &err) < 0) {
        /* the error on the last message, done() for the others */
        crm_node_error(n, g->msgs[g->n - 1], "%s", err);
        free(err);
        for (size_t i = 0; i + 1 < g->n; i++) crm_node_done(n, g->msgs[i]);
        free_keys(k, g->n);
        return;
    }
    js_sort(s, k, g->n);
    for (size_t i = 0; i < g->n; i++) {
        json_t *m = (json_t *)k[i].item;
        json_t *parts = json_object_get(m, "parts");
        if (json_is_object(parts)) json_object_set_new(parts, "index", crm_num((double)i));
        json_incref(m);
        crm_node_send(n, 0, m);
        crm_node_done(n, m);
    }
    free_keys(k, g->n);
}

static size_t remove_oldest(crm_node *n, sort_node *s)
{
    group *oldest = NULL;
    for (group *g = s->groups; g; g = g->next)
        if (!oldest || g->seq_no < oldest->seq_no) oldest = g;
    if (!oldest) return 0;
    crm_node_error(n, oldest->msgs[oldest->n - 1], "Too many pending messages in sort node");
    for (size_t i = 0; i + 1 < oldest->n; i++) crm_node_done(n, oldest->msgs[i]);
    size_t cnt = oldest->n;
    unlink_group(s, oldest);
    group_free(oldest);
    return cnt;
}

static void sort_sequence(crm_node *n, sort_node *s, json_t *msg)
{
    json_t *parts = json_object_get(msg, "parts");
    if (!json_is_object(parts) || !json_object_get(parts, "id") || !json_object_get(parts, "index")) {
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    char *gid = crm_to_string(json_object_get(parts, "id"));
    group *g = s->groups, *last = NULL;
    for (; g; last = g, g = g->next)
        if (!strcmp(g->id, gid)) break;
    if (!g) {
        g = calloc(1, sizeof *g);
        g->id = gid;
        g->count = NAN;
        g->seq_no = s->next_seq++;
        if (last) last->next = g;
        else s->groups = g;
    } else {
        free(gid);
    }
    if (g->n == g->cap) g->msgs = realloc(g->msgs, (g->cap = g->cap ? g->cap * 2 : 8) * sizeof *g->msgs);
    g->msgs[g->n++] = msg;
    json_t *count = json_object_get(parts, "count");
    if (count) g->count = json_is_number(count) ? crm_num_value(count) : NAN;
    s->pending++;
    if (g->count == (double)g->n) {
        unlink_group(s, g);
        s->pending -= g->n;
        sort_group(n, s, g);
        group_free(g);
    } else if (s->max_kept && s->pending > s->max_kept) {
        s->pending -= remove_oldest(n, s);
    }
}

static void sort_input(crm_node *n, json_t *msg)
{
    sort_node *s = crm_node_data(n);
    if (s->broken) {
        json_decref(msg);
        return;
    }
    if (!s->seq) sort_property(n, s, msg);
    else sort_sequence(n, s, msg);
}

static void sort_close(crm_node *n)
{
    sort_node *s = crm_node_data(n);
    if (!s) return;
    while (s->groups) {
        group *g = s->groups;
        s->groups = g->next;
        for (size_t i = 0; i < g->n; i++) crm_node_done(n, g->msgs[i]);
        group_free(g);
    }
    crm_typed_free(s->key_exp);
    crm_path_free(s->target_path);
    crm_path_free(s->key_path);
    free(s->target);
    free(s->key_prop);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_sort = {
    .abi = CRM_ABI_VERSION,
    .type = "sort",
    .create = sort_create,
    .input = sort_input,
    .close = sort_close,
};
