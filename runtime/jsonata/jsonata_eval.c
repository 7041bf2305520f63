/* jsonata_eval.c: the JSONata evaluator and the public compile/eval API.
 *
 * Semantics follow jsonata-js 2.x (evaluate, evaluatePath/Step/TupleStep,
 * filters, group-by, order-by, lambdas with tail calls, partial
 * application, transforms). Every evaluation function returns a NEW
 * reference (NULL = undefined); on error it sets E->failed and the error and
 * returns NULL, so callers test E->failed after each call. Frames and
 * function values are owned by the evaluation and freed when it ends. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jsonata_int.h"

static json_t placeholder_v = {JSON_NULL, (size_t)-1};
json_t *const JA_PLACEHOLDER = &placeholder_v;

double jnow_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}

double jeval_now(jeval *E)
{
    if (E->now_ms == 0) E->now_ms = jnow_ms();
    return E->now_ms;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

bool jeval_fail(jeval *E, const char *code, int position, const char *token, const json_t *value)
{
    if (!E->failed) {
        jerr_std(E->err, code, position, token, value, 0);
        E->failed = true;
    }
    return false;
}

/* Frames -------------------------------------------------------------------- */

jframe *jframe_new(jeval *E, jframe *parent)
{
    jframe *f = calloc(1, sizeof *f);
    f->parent = parent;
    f->b = f->inl;
    f->cap = 2;
    f->next_alloc = E->frames;
    E->frames = f;
    return f;
}

/* A lambda call's frame: freed as soon as the call returns unless a
 * closure captured it, so $map over many items does not pile frames up. */
static jframe *call_frame_new(jframe *parent)
{
    jframe *f = calloc(1, sizeof *f);
    f->parent = parent;
    f->b = f->inl;
    f->cap = 2;
    return f;
}

static void frame_release(jeval *E, jframe *f)
{
    if (f->captured) {
        f->next_alloc = E->frames;
        E->frames = f;
        return;
    }
    for (int i = 0; i < f->n; i++) jv_decref(f->b[i].val);
    if (f->b != f->inl) free(f->b);
    free(f);
}

static void capture(jframe *f)
{
    for (; f && !f->captured; f = f->parent) f->captured = true;
}

void jframe_bind(jframe *f, const char *name, json_t *v)
{
    for (int i = 0; i < f->n; i++) {
        if (!strcmp(f->b[i].name, name)) {
            jv_decref(f->b[i].val);
            f->b[i].val = v;
            return;
        }
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        if (f->b == f->inl) {
            f->b = malloc((size_t)f->cap * sizeof(jbinding));
            memcpy(f->b, f->inl, sizeof f->inl);
        } else {
            f->b = realloc(f->b, (size_t)f->cap * sizeof(jbinding));
        }
    }
    f->b[f->n].name = name;
    f->b[f->n].val = v;
    f->n++;
}

json_t *jframe_lookup(jeval *E, jframe *f, const char *name)
{
    for (; f; f = f->parent)
        for (int i = 0; i < f->n; i++)
            if (f->b[i].name[0] == name[0] && !strcmp(f->b[i].name, name)) return f->b[i].val;
    if (E->user)
        for (int i = 0; i < E->user->n; i++)
            if (!strcmp(E->user->b[i].name, name)) return E->user->b[i].val;
    return jbuiltin_value(name);
}

static bool frame_has(jeval *E, jframe *f, const char *name)
{
    for (; f; f = f->parent)
        for (int i = 0; i < f->n; i++)
            if (!strcmp(f->b[i].name, name)) return f->b[i].val != NULL;
    return jframe_lookup(E, NULL, name) != NULL;
}

jfunc *jfunc_new(jeval *E, fkind kind)
{
    jfunc *fn = calloc(1, sizeof *fn);
    fn->h.type = JT_FUNC;
    fn->h.refcount = (size_t)-1;
    fn->kind = kind;
    fn->next_alloc = E->funcs;
    E->funcs = fn;
    E->nfuncs++;
    return fn;
}

static void jfunc_free(jfunc *fn)
{
    jv_decref(fn->input);
    for (int i = 0; i < fn->npargs; i++)
        if (fn->pargs[i] != JA_PLACEHOLDER) jv_decref(fn->pargs[i]);
    free(fn->pargs);
    free(fn);
}

/* Tuples -------------------------------------------------------------------- */

static jtuple *tuple_new(void)
{
    jtuple *t = calloc(1, sizeof *t);
    t->h.type = JT_TUPLE;
    t->h.refcount = 1;
    return t;
}

static void tuple_set(jtuple *t, const char *name, json_t *v) /* steals v */
{
    for (int i = 0; i < t->n; i++) {
        if (!strcmp(t->b[i].name, name)) {
            jv_decref(t->b[i].val);
            t->b[i].val = v;
            return;
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4;
        t->b = realloc(t->b, (size_t)t->cap * sizeof(jbinding));
    }
    t->b[t->n].name = name;
    t->b[t->n].val = v;
    t->n++;
}

static json_t *tuple_get(const json_t *tv, const char *name)
{
    const jtuple *t = (const jtuple *)tv;
    if (!tv || tv->type != JT_TUPLE) return NULL;
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->b[i].name, name)) return t->b[i].val;
    return NULL;
}

static jtuple *tuple_copy(const json_t *tv)
{
    const jtuple *s = (const jtuple *)tv;
    jtuple *t = tuple_new();
    for (int i = 0; i < s->n; i++) tuple_set(t, s->b[i].name, jv_incref(s->b[i].val));
    return t;
}

static jframe *frame_from_tuple(jeval *E, jframe *env, const json_t *tv)
{
    jframe *f = jframe_new(E, env);
    const jtuple *t = (const jtuple *)tv;
    if (!tv || tv->type != JT_TUPLE) return f;
    for (int i = 0; i < t->n; i++) jframe_bind(f, t->b[i].name, jv_incref(t->b[i].val));
    return f;
}

/* Numbers ------------------------------------------------------------------- */

json_t *jv_number(jeval *E, double d, int position)
{
    if (!isfinite(d)) {
        json_t *v = crm_num(d);
        char b[32];
        jeval_fail(E, "D1001", position, NULL, NULL);
        snprintf(E->err->message, sizeof E->err->message, "Number out of range: %s", crm_fmt_number(d, b));
        (void)v;
        return NULL;
    }
    return json_real(d == 0 ? 0.0 : d);
}

static bool is_numeric(jeval *E, const json_t *v)
{
    if (!jv_is_num(v)) return false;
    double d = jv_num(v);
    if (isnan(d)) return false;
    if (!isfinite(d)) return jeval_fail(E, "D1001", 0, NULL, NULL);
    return true;
}

/* Sequence helpers ------------------------------------------------------------ */

static json_t *as_seq(json_t *v) /* steals v; a sequence (or array) to iterate */
{
    if (jv_is_arr(v)) return v;
    return jseq_of(v);
}

static json_t *unwrap_seq(jnode *n, json_t *r)
{
    if (r && r->type == JT_ARR) {
        jarr *a = (jarr *)r;
        if (!a->seq || a->tuple) return r;
        if (n->keep_array) a->keep = 1;
        if (a->n == 0) {
            jv_decref(r);
            return NULL;
        }
        if (a->n == 1 && !a->keep) {
            json_t *x = jv_incref(a->v[0]);
            jv_decref(r);
            return x;
        }
    }
    return r;
}

/* Forward declarations */
static json_t *eval_path(jeval *E, jnode *n, json_t *input, jframe *env);
static json_t *eval_filter(jeval *E, jnode *pred, json_t *input, jframe *env);
static json_t *eval_group(jeval *E, jgroup *g, json_t *input, jframe *env);
static json_t *eval_sort(jeval *E, jnode *n, json_t *input, jframe *env);
static json_t *apply_fn(jeval *E, json_t *proc, json_t **args, int nargs, json_t *input, int position,
                        const char *name);

/* fn.lookup */
static json_t *lookup(const json_t *input, const char *key)
{
    if (!input) return NULL;
    if (jv_is_arr(input)) {
        json_t *r = jseq_new();
        for (size_t i = 0; i < jv_len(input); i++) {
            json_t *x = lookup(jv_at(input, i), key);
            if (!x) continue;
            if (jv_is_arr(x)) {
                for (size_t j = 0; j < jv_len(x); j++) jarr_push_ref((jarr *)r, jv_at(x, j));
                jv_decref(x);
            } else {
                jarr_push((jarr *)r, x);
            }
        }
        return r;
    }
    if (json_is_object(input)) return jv_incref(json_object_get(input, key));
    return NULL;
}

/* Steps --------------------------------------------------------------------- */

static json_t *apply_stages(jeval *E, jnode *step, json_t *res, jframe *env)
{
    for (int s = 0; s < step->nstages && !E->failed; s++) {
        if (step->stages[s].is_index) {
            jarr *a = (jarr *)res;
            if (res && res->type == JT_ARR)
                for (size_t i = 0; i < a->n; i++)
                    if (a->v[i] && a->v[i]->type == JT_TUPLE)
                        tuple_set((jtuple *)a->v[i], step->stages[s].var, json_real((double)i));
        } else {
            res = eval_filter(E, step->stages[s].expr, res, env);
        }
    }
    return res;
}

static json_t *eval_step(jeval *E, jnode *step, json_t *input, jframe *env, bool last)
{
    if (step->type == N_SORT) {
        json_t *r = eval_sort(E, step, input, env);
        if (E->failed) return NULL;
        return apply_stages(E, step, r, env);
    }
    /* results are flattened as they come; the first defined one is kept
     * because a lone array result of the last step stays unflattened */
    jarr *out = (jarr *)jseq_new();
    json_t *first = NULL;
    size_t count = 0, n = jv_len(input);
    bool plain_name = step->type == N_NAME && !step->nstages && !step->npreds && !step->group && !step->keep_array;
    for (size_t i = 0; i < n; i++) {
        json_t *item = jv_at(input, i), *res;
        if (plain_name) {
            res = json_is_object(item) ? jv_incref(json_object_get(item, step->str)) : lookup(item, step->str);
            if (res && res->type == JT_ARR) res = unwrap_seq(step, res);
        } else {
            res = jeval_node(E, step, item, env);
            if (E->failed) goto fail;
            for (int s = 0; s < step->nstages; s++) {
                res = eval_filter(E, step->stages[s].expr, res, env);
                if (E->failed) goto fail;
            }
        }
        if (!res) continue;
        if (count++ == 0) first = jv_incref(res);
        if (!jv_is_arr(res) || (res->type == JT_ARR && ((jarr *)res)->cons)) {
            jarr_push(out, res);
        } else {
            size_t m = jv_len(res);
            for (size_t j = 0; j < m; j++) jarr_push_ref(out, jv_at(res, j));
            jv_decref(res);
        }
    }
    if (last && count == 1 && jv_is_arr(first) && !jv_is_seq(first)) {
        jv_decref(&out->h);
        return first;
    }
    jv_decref(first);
    return &out->h;
fail:
    jv_decref(first);
    jv_decref(&out->h);
    return NULL;
}

static json_t *eval_tuple_step(jeval *E, jnode *step, json_t *input, json_t *tuples, jframe *env)
{
    if (step->type == N_SORT) {
        json_t *r;
        if (tuples) {
            r = eval_sort(E, step, tuples, env);
        } else {
            json_t *sorted = eval_sort(E, step, input, env);
            if (E->failed) return NULL;
            jarr *ts = (jarr *)jseq_new();
            ts->tuple = 1;
            for (size_t i = 0; sorted && i < jv_len(sorted); i++) {
                jtuple *t = tuple_new();
                tuple_set(t, "@", jv_incref(jv_at(sorted, i)));
                if (step->index) tuple_set(t, step->index, json_real((double)i));
                jarr_push(ts, &t->h);
            }
            jv_decref(sorted);
            r = &ts->h;
        }
        if (E->failed) return NULL;
        return apply_stages(E, step, r, env);
    }
    bool own_tuples = false;
    if (!tuples) {
        jarr *ts = (jarr *)jseq_new();
        ts->tuple = 1;
        for (size_t i = 0; i < jv_len(input); i++) {
            jtuple *t = tuple_new();
            tuple_set(t, "@", jv_incref(jv_at(input, i)));
            jarr_push(ts, &t->h);
        }
        tuples = &ts->h;
        own_tuples = true;
    }
    jarr *result = (jarr *)jseq_new();
    result->tuple = 1;
    jarr *tb = (jarr *)tuples;
    for (size_t e = 0; e < tb->n; e++) {
        json_t *tup = tb->v[e];
        jframe *stepenv = frame_from_tuple(E, env, tup);
        json_t *focus = tuple_get(tup, "@");
        json_t *res = jeval_node(E, step, focus, stepenv);
        if (E->failed) goto fail;
        if (!res) continue;
        if (!jv_is_arr(res)) res = jseq_of(res);
        bool res_tuples = res->type == JT_ARR && ((jarr *)res)->tuple;
        size_t m = jv_len(res);
        for (size_t b = 0; b < m; b++) {
            jtuple *t = tuple_copy(tup);
            json_t *item = jv_at(res, b);
            if (res_tuples) {
                const jtuple *rt = (const jtuple *)item;
                for (int k = 0; k < rt->n; k++) tuple_set(t, rt->b[k].name, jv_incref(rt->b[k].val));
            } else {
                if (step->focus) {
                    tuple_set(t, step->focus, jv_incref(item));
                    tuple_set(t, "@", jv_incref(focus));
                } else {
                    tuple_set(t, "@", jv_incref(item));
                }
                if (step->index) tuple_set(t, step->index, json_real((double)b));
                if (step->ancestor) tuple_set(t, step->ancestor->label, jv_incref(focus));
            }
            jarr_push(result, &t->h);
        }
        jv_decref(res);
    }
    if (own_tuples) jv_decref(tuples);
    return apply_stages(E, step, &result->h, env);
fail:
    if (own_tuples) jv_decref(tuples);
    jv_decref(&result->h);
    return NULL;
}

/* A path of plain names over objects, possibly starting at a variable: the
 * hot case (msg.payload.x, $v.b). */
static bool plain_step(const jnode *s)
{
    return !s->nstages && !s->npreds && !s->group && !s->tuple && !s->focus && !s->index && !s->keep_array &&
           !s->ancestor;
}

static bool simple_path(jnode *n)
{
    for (int i = 0; i < n->nitems; i++) {
        jnode *s = n->items[i];
        if (!((s->type == N_NAME || (i == 0 && s->type == N_VARIABLE)) && plain_step(s))) return false;
    }
    return !n->keep_singleton_array && !n->group && !n->tuple;
}

/* Returns true with *out set when the walk settles the path; false to fall
 * back to the general algorithm (an array on the way). */
static bool walk_simple_path(jeval *E, jnode *n, json_t *input, jframe *env, json_t **out)
{
    json_t *cur = input;
    int i = 0;
    *out = NULL;
    if (n->items[0]->type == N_VARIABLE) {
        const char *name = n->items[0]->str;
        if (!name[0]) return false;
        cur = jframe_lookup(E, env, name);
        i = 1;
        if (!cur) return true;
    }
    if (jv_is_arr(cur)) return false;
    for (; i < n->nitems; i++) {
        if (!json_is_object(cur)) return true;
        json_t *next = json_object_get(cur, n->items[i]->str);
        if (!next) return true;
        if (json_is_array(next) && i < n->nitems - 1) return false;
        cur = next;
    }
    *out = jv_incref(cur);
    return true;
}

static json_t *eval_path(jeval *E, jnode *n, json_t *input, jframe *env)
{
    json_t *fast;
    if (n->simple && walk_simple_path(E, n, input, env, &fast)) return fast;
    json_t *inseq;
    if (jv_is_arr(input) && n->items[0]->type != N_VARIABLE) inseq = jv_incref(input);
    else inseq = jseq_of(jv_incref(input));
    json_t *result = NULL, *tuples = NULL;
    bool tuple_stream = false;
    for (int i = 0; i < n->nitems; i++) {
        jnode *step = n->items[i];
        if (step->tuple) tuple_stream = true;
        if (i == 0 && step->consarray) {
            jv_decref(result);
            result = jeval_node(E, step, inseq, env);
        } else if (tuple_stream) {
            json_t *nt = eval_tuple_step(E, step, inseq, tuples, env);
            jv_decref(tuples);
            tuples = nt;
        } else {
            jv_decref(result);
            result = eval_step(E, step, inseq, env, i == n->nitems - 1);
        }
        if (E->failed) goto fail;
        if (!tuple_stream && (!result || (jv_is_arr(result) && jv_len(result) == 0))) break;
        if (!step->focus) {
            jv_decref(inseq);
            inseq = jv_incref(result);
            if (inseq && !jv_is_arr(inseq)) inseq = jseq_of(inseq);
            if (!inseq) inseq = jseq_new();
        }
    }
    jv_decref(inseq);
    if (tuple_stream) {
        jv_decref(result);
        if (n->tuple) {
            result = tuples;
            tuples = NULL;
        } else {
            jarr *r = (jarr *)jseq_new();
            for (size_t i = 0; tuples && i < jv_len(tuples); i++)
                jarr_push_ref(r, tuple_get(jv_at(tuples, i), "@"));
            result = &r->h;
        }
    }
    if (n->keep_singleton_array && result) {
        if (result->type == JT_ARR && ((jarr *)result)->cons && !((jarr *)result)->seq) {
            result = jseq_of(result);
        } else if (!jv_is_arr(result)) {
            result = jseq_of(result);
        } else if (result->type != JT_ARR) {
            jarr *c = jarr_new(jv_len(result));
            c->seq = 1;
            for (size_t i = 0; i < jv_len(result); i++) jarr_push_ref(c, jv_at(result, i));
            jv_decref(result);
            result = &c->h;
        }
        ((jarr *)result)->keep = 1;
    }
    if (n->group) {
        json_t *g = eval_group(E, n->group, tuple_stream ? tuples : result, env);
        jv_decref(result);
        result = g;
    }
    jv_decref(tuples);
    return result;
fail:
    jv_decref(inseq);
    jv_decref(result);
    jv_decref(tuples);
    return NULL;
}

/* Filters ------------------------------------------------------------------- */

static json_t *eval_filter(jeval *E, jnode *pred, json_t *input, jframe *env)
{
    /* steals input */
    bool tup = input && input->type == JT_ARR && ((jarr *)input)->tuple;
    jarr *results = (jarr *)jseq_new();
    results->tuple = tup;
    if (!input) return &results->h;
    input = as_seq(input);
    size_t n = jv_len(input);
    if (pred->type == N_NUMBER) {
        double idx = floor(pred->num);
        if (idx < 0) idx += (double)n;
        if (idx >= 0 && idx < (double)n) {
            json_t *item = jv_at(input, (size_t)idx);
            if (jv_is_arr(item)) {
                jv_decref(&results->h);
                json_t *r = jv_incref(item);
                jv_decref(input);
                return r;
            }
            jarr_push_ref(results, item);
        }
        jv_decref(input);
        return &results->h;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = jv_at(input, i), *ctx = item;
        jframe *fenv = env;
        if (tup) {
            ctx = tuple_get(item, "@");
            fenv = frame_from_tuple(E, env, item);
        }
        json_t *res = jeval_node(E, pred, ctx, fenv);
        if (E->failed) {
            jv_decref(input);
            jv_decref(&results->h);
            return NULL;
        }
        if (jv_is_num(res) && !isnan(jv_num(res))) {
            double ii = floor(jv_num(res));
            if (ii < 0) ii += (double)n;
            if (ii == (double)i) jarr_push_ref(results, item);
        } else if (jv_is_arr_of_num(res) && jv_len(res) > 0) {
            for (size_t k = 0; k < jv_len(res); k++) {
                double ii = floor(jv_num(jv_at(res, k)));
                if (ii < 0) ii += (double)n;
                if (ii == (double)i) jarr_push_ref(results, item);
            }
        } else if (jv_truthy(res)) {
            jarr_push_ref(results, item);
        }
        jv_decref(res);
    }
    jv_decref(input);
    return &results->h;
}

/* Group-by / object constructor -------------------------------------------- */

/* fn.append(acc, item) without the quadratic copying: *acc becomes an
 * array this evaluation owns (flagged by *owned) on the second item. */
static void acc_push_flat(jarr *a, json_t *v)
{
    if (jv_is_arr(v))
        for (size_t i = 0; i < jv_len(v); i++) jarr_push_ref(a, jv_at(v, i));
    else
        jarr_push_ref(a, v);
}

static void acc_append(json_t **acc, bool *owned, json_t *item)
{
    if (!*acc) {
        *acc = jv_incref(item);
        *owned = false;
        return;
    }
    if (!item) return;
    if (!*owned) {
        jarr *r = jarr_new(4);
        acc_push_flat(r, *acc);
        jv_decref(*acc);
        *acc = &r->h;
        *owned = true;
    }
    acc_push_flat((jarr *)*acc, item);
}

static json_t *reduce_tuples(json_t *ts)
{
    if (!jv_is_arr(ts)) return jv_incref(ts);
    jtuple *r = tuple_copy(jv_at(ts, 0));
    int cap = r->n + 8;
    bool *owned = calloc((size_t)cap, sizeof(bool));
    for (size_t i = 1; i < jv_len(ts); i++) {
        const jtuple *t = (const jtuple *)jv_at(ts, i);
        for (int k = 0; k < t->n; k++) {
            int slot = -1;
            for (int q = 0; q < r->n; q++)
                if (!strcmp(r->b[q].name, t->b[k].name)) slot = q;
            if (slot < 0) {
                tuple_set(r, t->b[k].name, NULL);
                slot = r->n - 1;
                if (r->n > cap) {
                    owned = realloc(owned, sizeof(bool) * (size_t)(cap * 2));
                    memset(owned + cap, 0, sizeof(bool) * (size_t)cap);
                    cap *= 2;
                }
            }
            acc_append(&r->b[slot].val, &owned[slot], t->b[k].val);
        }
    }
    free(owned);
    return &r->h;
}

typedef struct {
    json_t *data;
    int expr_index;
    bool owned;
} group_entry;

static json_t *eval_group(jeval *E, jgroup *g, json_t *input, jframe *env)
{
    bool reduce = input && input->type == JT_ARR && ((jarr *)input)->tuple;
    json_t *in = jv_is_arr(input) ? jv_incref(input) : jseq_of(jv_incref(input));
    size_t n = jv_len(in);
    json_t *index = json_object(); /* key -> position in entries */
    group_entry *entries = NULL;
    size_t nentries = 0, capentries = 0;
    json_t *result = NULL;
    size_t count = n == 0 ? 1 : n;
    for (size_t i = 0; i < count; i++) {
        json_t *item = n == 0 ? NULL : jv_at(in, i);
        jframe *ienv = reduce ? frame_from_tuple(E, env, item) : env;
        for (int p = 0; p < g->n; p++) {
            json_t *key = jeval_node(E, g->keys[p], reduce ? tuple_get(item, "@") : item, ienv);
            if (E->failed) goto done;
            if (key && !json_is_string(key)) {
                jeval_fail(E, "T1003", g->position, NULL, key);
                jv_decref(key);
                goto done;
            }
            if (!key) continue;
            json_t *pos = json_object_get(index, json_string_value(key));
            if (pos) {
                group_entry *ge = &entries[(size_t)json_integer_value(pos)];
                if (ge->expr_index != p) {
                    jeval_fail(E, "D1009", g->position, NULL, key);
                    jv_decref(key);
                    goto done;
                }
                acc_append(&ge->data, &ge->owned, item);
            } else {
                if (nentries == capentries) {
                    capentries = capentries ? capentries * 2 : 8;
                    entries = realloc(entries, capentries * sizeof *entries);
                }
                entries[nentries].data = jv_incref(item);
                entries[nentries].expr_index = p;
                entries[nentries].owned = false;
                json_object_set_new(index, json_string_value(key), json_integer((json_int_t)nentries));
                nentries++;
            }
            jv_decref(key);
        }
    }
    result = json_object();
    const char *k;
    json_t *pos;
    json_object_foreach(index, k, pos) {
        group_entry *ge = &entries[(size_t)json_integer_value(pos)];
        json_t *ctx = ge->data;
        jframe *venv = env;
        json_t *reduced = NULL;
        if (reduce) {
            reduced = reduce_tuples(ge->data);
            ctx = tuple_get(reduced, "@");
            venv = jframe_new(E, env);
            const jtuple *t = (const jtuple *)reduced;
            for (int q = 0; q < t->n; q++)
                if (strcmp(t->b[q].name, "@")) jframe_bind(venv, t->b[q].name, jv_incref(t->b[q].val));
        }
        json_t *v = jeval_node(E, g->vals[ge->expr_index], ctx, venv);
        jv_decref(reduced);
        if (E->failed) {
            json_decref(result);
            result = NULL;
            goto done;
        }
        if (v) {
            json_object_set_new(result, k, jv_to_json(v));
            if (jv_is_func(v)) E->nfuncs++;
            jv_decref(v);
        }
    }
done:
    for (size_t i = 0; i < nentries; i++) jv_decref(entries[i].data);
    free(entries);
    json_decref(index);
    jv_decref(in);
    return result;
}

/* Order-by ----------------------------------------------------------------- */

typedef struct {
    jeval *E;
    jnode *n;
    jframe *env;
    bool tuples;
} sort_ctx;

static int sort_cmp(sort_ctx *c, json_t *a, json_t *b) /* >0: swap */
{
    jeval *E = c->E;
    int comp = 0;
    for (int t = 0; comp == 0 && t < c->n->nterms; t++) {
        jsortterm *term = &c->n->terms[t];
        json_t *ctx = a;
        jframe *env = c->env;
        if (c->tuples) {
            ctx = tuple_get(a, "@");
            env = frame_from_tuple(E, c->env, a);
        }
        json_t *aa = jeval_node(E, term->expr, ctx, env);
        if (E->failed) return 0;
        ctx = b;
        env = c->env;
        if (c->tuples) {
            ctx = tuple_get(b, "@");
            env = frame_from_tuple(E, c->env, b);
        }
        json_t *bb = jeval_node(E, term->expr, ctx, env);
        if (E->failed) {
            jv_decref(aa);
            return 0;
        }
        if (!aa) {
            comp = bb ? 1 : 0;
        } else if (!bb) {
            comp = -1;
        } else if (!(jv_is_num(aa) || jv_is_str(aa)) || !(jv_is_num(bb) || jv_is_str(bb))) {
            jeval_fail(E, "T2008", c->n->position, NULL, !(jv_is_num(aa) || jv_is_str(aa)) ? aa : bb);
        } else if (jv_is_num(aa) != jv_is_num(bb)) {
            jeval_fail(E, "T2007", c->n->position, NULL, aa);
        } else {
            if (jv_is_num(aa)) {
                double x = jv_num(aa), y = jv_num(bb);
                comp = x == y ? 0 : x < y ? -1 : 1;
            } else {
                int r = strcmp(json_string_value(aa), json_string_value(bb));
                comp = r == 0 ? 0 : r < 0 ? -1 : 1;
            }
            if (term->descending) comp = -comp;
        }
        jv_decref(aa);
        jv_decref(bb);
        if (E->failed) return 0;
    }
    return comp;
}

static void msort(sort_ctx *c, json_t **v, json_t **tmp, size_t n)
{
    if (n < 2 || c->E->failed) return;
    size_t mid = n / 2;
    msort(c, v, tmp, mid);
    msort(c, v + mid, tmp, n - mid);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        if (sort_cmp(c, v[i], v[j]) > 0) tmp[k++] = v[j++];
        else tmp[k++] = v[i++];
        if (c->E->failed) return;
    }
    while (i < mid) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(json_t *));
}

static json_t *eval_sort(jeval *E, jnode *n, json_t *input, jframe *env)
{
    if (!input) return NULL;
    sort_ctx c = {E, n, env, input->type == JT_ARR && ((jarr *)input)->tuple};
    size_t len = jv_len(input);
    jarr *r = jarr_new(len);
    r->seq = 1;
    r->tuple = c.tuples;
    for (size_t i = 0; i < len; i++) jarr_push_ref(r, jv_at(input, i));
    json_t **tmp = malloc((len + 1) * sizeof(json_t *));
    msort(&c, r->v, tmp, len);
    free(tmp);
    if (E->failed) {
        jv_decref(&r->h);
        return NULL;
    }
    return &r->h;
}

/* Operators ------------------------------------------------------------------ */

static json_t *eval_numeric(jeval *E, jnode *n, json_t *l, json_t *r)
{
    if (l && !is_numeric(E, l)) {
        jeval_fail(E, "T2001", n->position, n->str, l);
        return NULL;
    }
    if (r && !is_numeric(E, r)) {
        jeval_fail(E, "T2002", n->position, n->str, r);
        return NULL;
    }
    if (!l || !r) return NULL;
    double a = jv_num(l), b = jv_num(r), x = 0;
    switch (n->op) {
    case OP_ADD: x = a + b; break;
    case OP_SUB: x = a - b; break;
    case OP_MUL: x = a * b; break;
    case OP_DIV: x = a / b; break;
    case OP_MOD: x = fmod(a, b); break;
    default: break;
    }
    return crm_num(x);
}

static json_t *eval_compare(jeval *E, jnode *n, json_t *l, json_t *r)
{
    bool lc = !l || jv_is_num(l) || jv_is_str(l);
    bool rc = !r || jv_is_num(r) || jv_is_str(r);
    if (!lc || !rc) {
        jeval_fail(E, "T2010", n->position, n->str, !lc ? l : r);
        return NULL;
    }
    if (!l || !r) return NULL;
    if (jv_is_num(l) != jv_is_num(r)) {
        jeval_fail(E, "T2009", n->position, n->str, l);
        return NULL;
    }
    int c;
    if (jv_is_num(l)) {
        double a = jv_num(l), b = jv_num(r);
        if (isnan(a) || isnan(b)) return json_false();
        c = a < b ? -1 : a > b ? 1 : 0;
    } else {
        size_t la = json_string_length(l), lb = json_string_length(r);
        int m = memcmp(json_string_value(l), json_string_value(r), la < lb ? la : lb);
        c = m ? m : (la < lb ? -1 : la > lb ? 1 : 0);
    }
    bool res = false;
    switch (n->op) {
    case OP_LT: res = c < 0; break;
    case OP_LE: res = c <= 0; break;
    case OP_GT: res = c > 0; break;
    case OP_GE: res = c >= 0; break;
    default: break;
    }
    return json_boolean(res);
}

static json_t *eval_concat(jeval *E, json_t *l, json_t *r, int position)
{
    strbuf sb = SB_INIT;
    sb_puts(&sb, "");
    json_t *parts[2] = {l, r};
    for (int i = 0; i < 2; i++) {
        if (!parts[i]) continue;
        if (jv_is_num(parts[i]) && !isfinite(jv_num(parts[i]))) {
            sb_free(&sb);
            jeval_fail(E, "D3001", position, NULL, parts[i]);
            return NULL;
        }
        char *s = jv_stringify(E, parts[i], false);
        if (E->failed) {
            sb_free(&sb);
            return NULL;
        }
        if (s) sb_puts(&sb, s);
        free(s);
    }
    json_t *v = json_stringn_nocheck(sb.data, sb.len);
    sb_free(&sb);
    return v;
}

static json_t *eval_range(jeval *E, jnode *n, json_t *l, json_t *r)
{
    if (l && (!jv_is_num(l) || jv_num(l) != floor(jv_num(l)) || !isfinite(jv_num(l)))) {
        jeval_fail(E, "T2003", n->position, NULL, l);
        return NULL;
    }
    if (r && (!jv_is_num(r) || jv_num(r) != floor(jv_num(r)) || !isfinite(jv_num(r)))) {
        jeval_fail(E, "T2004", n->position, NULL, r);
        return NULL;
    }
    if (!l || !r) return NULL;
    double a = jv_num(l), b = jv_num(r);
    if (a > b) return NULL;
    double size = b - a + 1;
    if (size > 1e7) {
        json_t *v = json_real(size);
        jeval_fail(E, "D2014", n->position, NULL, v);
        json_decref(v);
        return NULL;
    }
    jarr *res = jarr_new((size_t)size);
    res->seq = 1;
    for (double x = a; x <= b; x++) res->v[res->n++] = json_real(x);
    return &res->h;
}

/* Appends the string value of one operand of '&' to sb; a nested '&' chain
 * ("a & b & c") is appended in place rather than building intermediate
 * strings. Returns false on error. */
static bool concat_plain(jnode *n)
{
    return n->type == N_BINARY && n->op == OP_CONCAT && !n->npreds && !n->group && !n->keep_array;
}

static bool concat_into(jeval *E, jnode *n, json_t *input, jframe *env, strbuf *sb)
{
    if (concat_plain(n))
        return concat_into(E, n->lhs, input, env, sb) && concat_into(E, n->rhs, input, env, sb);
    json_t *v = jeval_node(E, n, input, env);
    if (E->failed) return false;
    if (!v) return true;
    if (json_is_string(v)) {
        sb_putn(sb, json_string_value(v), json_string_length(v));
    } else {
        char *s = jv_stringify(E, v, false);
        if (E->failed) {
            jv_decref(v);
            return false;
        }
        if (s) sb_puts(sb, s);
        free(s);
    }
    jv_decref(v);
    return true;
}

static json_t *eval_concat_chain(jeval *E, jnode *n, json_t *input, jframe *env)
{
    strbuf sb = SB_INIT;
    sb_putn(&sb, "", 0);
    json_t *r = NULL;
    if (concat_into(E, n->lhs, input, env, &sb) && concat_into(E, n->rhs, input, env, &sb))
        r = json_stringn_nocheck(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

/* The value of a numeric operand, without touching refcounts when it is a
 * literal (the hot case `1000 / msg.payload`). */
static bool num_operand(jeval *E, jnode *n, json_t *input, jframe *env, json_t **v, double *d)
{
    if (n->type == N_NUMBER && !n->npreds && !n->group) {
        *v = n->value; /* borrowed */
        *d = n->num;
        return false;
    }
    *v = jeval_node(E, n, input, env);
    *d = *v ? jv_num(*v) : 0;
    return true;
}

static json_t *eval_arith(jeval *E, jnode *n, json_t *input, jframe *env)
{
    json_t *l, *r;
    double a, b;
    bool lown = num_operand(E, n->lhs, input, env, &l, &a);
    if (E->failed) return NULL;
    bool rown = num_operand(E, n->rhs, input, env, &r, &b);
    json_t *res = NULL;
    if (!E->failed) {
        if (l && !is_numeric(E, l)) {
            jeval_fail(E, "T2001", n->position, n->str, l);
        } else if (r && !is_numeric(E, r)) {
            jeval_fail(E, "T2002", n->position, n->str, r);
        } else if (l && r) {
            double x = 0;
            switch (n->op) {
            case OP_ADD: x = a + b; break;
            case OP_SUB: x = a - b; break;
            case OP_MUL: x = a * b; break;
            case OP_DIV: x = a / b; break;
            case OP_MOD: x = fmod(a, b); break;
            default: break;
            }
            res = crm_num(x);
        }
    }
    if (lown) jv_decref(l);
    if (rown) jv_decref(r);
    return E->failed ? NULL : res;
}

static json_t *eval_binary(jeval *E, jnode *n, json_t *input, jframe *env)
{
    if (n->op == OP_CONCAT) return eval_concat_chain(E, n, input, env);
    if (n->op >= OP_ADD && n->op <= OP_MOD) return eval_arith(E, n, input, env);
    json_t *l = jeval_node(E, n->lhs, input, env);
    if (E->failed) return NULL;
    if (n->op == OP_AND || n->op == OP_OR) {
        bool lb = jv_truthy(l);
        jv_decref(l);
        if (n->op == OP_AND && !lb) return json_false();
        if (n->op == OP_OR && lb) return json_true();
        json_t *r = jeval_node(E, n->rhs, input, env);
        if (E->failed) return NULL;
        bool rb = jv_truthy(r);
        jv_decref(r);
        return json_boolean(rb);
    }
    json_t *r = jeval_node(E, n->rhs, input, env);
    if (E->failed) {
        jv_decref(l);
        return NULL;
    }
    json_t *res = NULL;
    switch (n->op) {
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD:
        res = eval_numeric(E, n, l, r);
        break;
    case OP_EQ:
    case OP_NE:
        if (!l || !r) res = json_false();
        else res = json_boolean(jv_deep_equal(l, r) == (n->op == OP_EQ));
        break;
    case OP_LT: case OP_LE: case OP_GT: case OP_GE:
        res = eval_compare(E, n, l, r);
        break;
    case OP_CONCAT:
        res = eval_concat(E, l, r, n->position);
        break;
    case OP_RANGE:
        res = eval_range(E, n, l, r);
        break;
    case OP_IN:
        if (!l || !r) {
            res = json_false();
        } else if (jv_is_arr(r)) {
            bool found = false;
            for (size_t i = 0; i < jv_len(r) && !found; i++) found = jv_deep_equal(jv_at(r, i), l) &&
                                                                   !jv_is_arr(l) && !json_is_object(l);
            res = json_boolean(found);
        } else {
            res = json_boolean(jv_deep_equal(r, l) && !jv_is_arr(l) && !json_is_object(l));
        }
        break;
    default:
        break;
    }
    jv_decref(l);
    jv_decref(r);
    return res;
}

/* Array and object constructors --------------------------------------------- */

static json_t *eval_array(jeval *E, jnode *n, json_t *input, jframe *env)
{
    jarr *res = jarr_new((size_t)n->nitems);
    for (int i = 0; i < n->nitems; i++) {
        jnode *item = n->items[i];
        json_t *v = jeval_node(E, item, input, env);
        if (E->failed) {
            jv_decref(&res->h);
            return NULL;
        }
        if (!v) continue;
        if (item->type == N_ARRAY) {
            jarr_push(res, v);
        } else if (jv_is_arr(v)) {
            for (size_t k = 0; k < jv_len(v); k++) jarr_push_ref(res, jv_at(v, k));
            jv_decref(v);
        } else {
            jarr_push(res, v);
        }
    }
    if (n->consarray) res->cons = 1;
    return &res->h;
}

/* Descendants and wildcard --------------------------------------------------- */

static void flatten_into(jarr *out, json_t *v)
{
    if (jv_is_arr(v)) {
        for (size_t i = 0; i < jv_len(v); i++) flatten_into(out, jv_at(v, i));
    } else {
        jarr_push_ref(out, v);
    }
}

static json_t *eval_wildcard(json_t *input)
{
    jarr *r = (jarr *)jseq_new();
    if (input && input->type == JT_ARR && ((jarr *)input)->outer && jv_len(input) > 0) input = jv_at(input, 0);
    if (input && json_is_object(input) && !crm_is_buf(input)) {
        const char *k;
        json_t *v;
        json_object_foreach(input, k, v) {
            if (jv_is_arr(v)) flatten_into(r, v);
            else jarr_push_ref(r, v);
        }
    } else if (jv_is_arr(input)) {
        for (size_t i = 0; i < jv_len(input); i++) {
            json_t *v = jv_at(input, i);
            if (jv_is_arr(v)) flatten_into(r, v);
            else jarr_push_ref(r, v);
        }
    }
    return &r->h;
}

static void descend(jarr *out, json_t *v)
{
    if (!jv_is_arr(v)) jarr_push_ref(out, v);
    if (jv_is_arr(v)) {
        for (size_t i = 0; i < jv_len(v); i++) descend(out, jv_at(v, i));
    } else if (v && json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) descend(out, x);
    }
}

static json_t *eval_descendants(json_t *input)
{
    if (!input) return NULL;
    jarr *r = (jarr *)jseq_new();
    descend(r, input);
    if (r->n == 1) {
        json_t *x = jv_incref(r->v[0]);
        jv_decref(&r->h);
        return x;
    }
    return &r->h;
}

/* Functions ------------------------------------------------------------------ */

int jfunc_arity(const json_t *v)
{
    const jfunc *f = (const jfunc *)v;
    switch (f->kind) {
    case F_LAMBDA: return f->node ? f->node->nparams : 0;
    case F_BUILTIN: return f->def->arity_hint;
    case F_PARTIAL: {
        int c = 0;
        for (int i = 0; i < f->npargs; i++)
            if (f->pargs[i] == JA_PLACEHOLDER) c++;
        return c;
    }
    case F_CHAIN: return 1;
    case F_TRANSFORM: return 1;
    case F_REGEX: return 1;
    case F_NATIVE: return f->sig ? f->sig->nparams : 1;
    }
    return 0;
}

static const char *proc_name(jnode *proc)
{
    if (proc->type == N_PATH && proc->nitems > 0) return proc->items[0]->str;
    return proc->str;
}

static json_t *apply_lambda(jeval *E, jfunc *f, json_t **args, int nargs)
{
    jframe *env = call_frame_new(f->env);
    for (int i = 0; i < f->node->nparams; i++)
        jframe_bind(env, f->node->params[i], i < nargs ? jv_incref(args[i]) : NULL);
    json_t *r = jeval_node(E, f->node->body, f->input, env);
    frame_release(E, env);
    return r;
}

static json_t *transform_apply(jeval *E, jfunc *f, json_t *obj);

static json_t *apply_inner(jeval *E, json_t *proc, json_t **args, int nargs, json_t *input, int position,
                           const char *name)
{
    if (!jv_is_func(proc)) {
        jeval_fail(E, "T1006", position, name, NULL);
        return NULL;
    }
    jfunc *f = (jfunc *)proc;
    const char *fname = name ? name : f->def ? f->def->name : f->name;
    json_t **va = args;
    int nva = nargs;
    bool own = false;
    if (f->sig && f->kind != F_PARTIAL) {
        va = jsig_validate(E, f->sig, args, nargs, input, &nva, fname, position);
        if (!va) return NULL;
        own = true;
    }
    json_t *res = NULL;
    switch (f->kind) {
    case F_LAMBDA:
        res = apply_lambda(E, f, va, nva);
        break;
    case F_BUILTIN:
        res = f->def->fn(E, va, nva, input);
        if (E->failed && E->err->position == 0) E->err->position = position;
        break;
    case F_NATIVE: {
        json_t **ja = calloc((size_t)nva + 1, sizeof(json_t *));
        for (int i = 0; i < nva; i++) ja[i] = jv_is_func(va[i]) ? NULL : jv_to_json(va[i]);
        jsonata_error nerr;
        memset(&nerr, 0, sizeof nerr);
        res = f->native(f->nctx, ja, (size_t)nva, &nerr);
        for (int i = 0; i < nva; i++) json_decref(ja[i]);
        free(ja);
        if (nerr.code[0]) {
            *E->err = nerr;
            if (!E->err->position) E->err->position = position;
            E->failed = true;
            json_decref(res);
            res = NULL;
        } else if (res) {
            crm_normalize_numbers(res);
        }
        break;
    }
    case F_PARTIAL: {
        json_t **full = calloc((size_t)f->npargs + 1, sizeof(json_t *));
        int ai = 0;
        for (int i = 0; i < f->npargs; i++)
            full[i] = f->pargs[i] == JA_PLACEHOLDER ? (ai < nargs ? args[ai++] : NULL) : f->pargs[i];
        jfunc *t = f->target;
        if (t->kind == F_LAMBDA) res = apply_lambda(E, t, full, f->npargs);
        else res = apply_fn(E, &t->h, full, f->npargs, input, position, fname);
        free(full);
        break;
    }
    case F_CHAIN: {
        json_t *mid = apply_fn(E, &f->f1->h, va, nva, input, position, NULL);
        if (!E->failed) res = apply_fn(E, &f->f2->h, &mid, 1, input, position, NULL);
        jv_decref(mid);
        break;
    }
    case F_TRANSFORM:
        res = transform_apply(E, f, nva > 0 ? va[0] : NULL);
        break;
    case F_REGEX: {
        json_t *s = nva > 0 ? va[0] : NULL;
        if (jv_is_str(s)) res = jfn_regex_exec(E, f, json_string_value(s), json_string_length(s), 0);
        break;
    }
    }
    if (own) {
        for (int i = 0; i < nva; i++) jv_decref(va[i]);
        free(va);
    }
    return res;
}

static json_t *apply_fn(jeval *E, json_t *proc, json_t **args, int nargs, json_t *input, int position,
                        const char *name)
{
    json_t *res = apply_inner(E, proc, args, nargs, input, position, name);
    while (!E->failed && jv_is_func(res) && ((jfunc *)res)->kind == F_LAMBDA && ((jfunc *)res)->node &&
           ((jfunc *)res)->node->thunk) {
        jfunc *th = (jfunc *)res;
        jnode *call = th->node->body;
        json_t *next = jeval_node(E, call->proc, th->input, th->env);
        if (E->failed) return NULL;
        int na = call->nitems;
        json_t **ev = calloc((size_t)na + 1, sizeof(json_t *));
        for (int i = 0; i < na; i++) {
            ev[i] = jeval_node(E, call->items[i], th->input, th->env);
            if (E->failed) break;
        }
        if (!E->failed) {
            if (!jv_is_func(next)) {
                const char *pn = proc_name(call->proc);
                if (!next && call->proc->type == N_PATH && pn && frame_has(E, th->env, pn))
                    jeval_fail(E, "T1005", call->position, pn, NULL);
                else
                    jeval_fail(E, "T1006", call->position, pn, NULL);
                res = NULL;
            } else {
                res = apply_inner(E, next, ev, na, th->input, call->position, proc_name(call->proc));
            }
        }
        for (int i = 0; i < na; i++) jv_decref(ev[i]);
        free(ev);
        jv_decref(next);
        if (E->failed) return NULL;
    }
    return res;
}

json_t *japply(jeval *E, json_t *fn, json_t **args, int nargs, json_t *context, int position)
{
    return apply_fn(E, fn, args, nargs, context, position, NULL);
}

static json_t *eval_function(jeval *E, jnode *n, json_t *input, jframe *env, json_t *applyto, bool has_applyto)
{
    json_t *proc = jeval_node(E, n->proc, input, env);
    if (E->failed) return NULL;
    const char *pname = proc_name(n->proc);
    if (!proc && n->proc->type == N_PATH && pname && frame_has(E, env, pname)) {
        jeval_fail(E, "T1005", n->position, pname, NULL);
        return NULL;
    }
    int na = n->nitems + (has_applyto ? 1 : 0);
    json_t *stackargs[8];
    json_t **args = na <= 8 ? stackargs : calloc((size_t)na, sizeof(json_t *));
    int k = 0;
    if (has_applyto) args[k++] = jv_incref(applyto);
    for (int i = 0; i < n->nitems; i++) {
        args[k] = jeval_node(E, n->items[i], input, env);
        k++;
        if (E->failed) break;
    }
    json_t *res = NULL;
    if (!E->failed) {
        if (!jv_is_func(proc)) {
            jeval_fail(E, "T1006", n->position, pname, NULL);
        } else {
            jframe *saved = E->cur_env;
            E->cur_env = env;
            res = apply_fn(E, proc, args, na, input, n->position, pname);
            E->cur_env = saved;
        }
    }
    for (int i = 0; i < k; i++) jv_decref(args[i]);
    if (args != stackargs) free(args);
    jv_decref(proc);
    return res;
}

static json_t *eval_partial(jeval *E, jnode *n, json_t *input, jframe *env)
{
    json_t **args = calloc((size_t)n->nitems + 1, sizeof(json_t *));
    for (int i = 0; i < n->nitems; i++) {
        if (n->items[i]->type == N_PLACEHOLDER) {
            args[i] = JA_PLACEHOLDER;
        } else {
            args[i] = jeval_node(E, n->items[i], input, env);
            if (E->failed) {
                for (int j = 0; j < i; j++)
                    if (args[j] != JA_PLACEHOLDER) jv_decref(args[j]);
                free(args);
                return NULL;
            }
        }
    }
    json_t *proc = jeval_node(E, n->proc, input, env);
    const char *pname = proc_name(n->proc);
    if (!E->failed && !jv_is_func(proc)) {
        if (!proc && n->proc->type == N_PATH && pname && frame_has(E, env, pname))
            jeval_fail(E, "T1007", n->position, pname, NULL);
        else
            jeval_fail(E, "T1008", n->position, pname, NULL);
    }
    if (E->failed) {
        for (int j = 0; j < n->nitems; j++)
            if (args[j] != JA_PLACEHOLDER) jv_decref(args[j]);
        free(args);
        jv_decref(proc);
        return NULL;
    }
    jfunc *f = jfunc_new(E, F_PARTIAL);
    f->target = (jfunc *)proc;
    f->pargs = args;
    f->npargs = n->nitems;
    f->name = pname;
    /* a lambda takes only as many arguments as it declares */
    if (f->target->kind == F_LAMBDA && f->target->node && f->npargs < f->target->node->nparams) {
        int np = f->target->node->nparams;
        f->pargs = realloc(f->pargs, sizeof(json_t *) * (size_t)np);
        for (int i = f->npargs; i < np; i++) f->pargs[i] = NULL;
        f->npargs = np;
    }
    return &f->h;
}

static json_t *eval_apply(jeval *E, jnode *n, json_t *input, jframe *env)
{
    json_t *lhs = jeval_node(E, n->lhs, input, env);
    if (E->failed) return NULL;
    if (n->rhs->type == N_FUNCTION) {
        json_t *r = eval_function(E, n->rhs, input, env, lhs, true);
        jv_decref(lhs);
        return r;
    }
    json_t *fn = jeval_node(E, n->rhs, input, env);
    if (E->failed) {
        jv_decref(lhs);
        return NULL;
    }
    json_t *res = NULL;
    if (!jv_is_func(fn)) {
        jeval_fail(E, "T2006", n->position, NULL, fn);
    } else if (jv_is_func(lhs)) {
        jfunc *c = jfunc_new(E, F_CHAIN);
        c->f1 = (jfunc *)lhs;
        c->f2 = (jfunc *)fn;
        res = &c->h;
    } else {
        res = apply_fn(E, fn, &lhs, 1, input, n->position, NULL);
    }
    jv_decref(lhs);
    jv_decref(fn);
    return res;
}

/* Transform ------------------------------------------------------------------- */

static json_t *transform_apply(jeval *E, jfunc *f, json_t *obj)
{
    if (!obj) return NULL;
    jnode *n = f->node;
    json_t *clonefn = jframe_lookup(E, f->env, "clone");
    if (!jv_is_func(clonefn)) {
        jeval_fail(E, "T2013", n->position, NULL, NULL);
        return NULL;
    }
    json_t *result;
    if (((jfunc *)clonefn)->kind == F_BUILTIN) {
        json_t *j = jv_to_json(obj);
        result = crm_deep_copy(j);
        json_decref(j);
    } else {
        result = apply_fn(E, clonefn, &obj, 1, NULL, n->position, "clone");
        if (E->failed) return NULL;
    }
    json_t *matches = jeval_node(E, n->lhs, result, f->env);
    if (E->failed) goto fail;
    if (matches) {
        matches = as_seq(matches);
        for (size_t i = 0; i < jv_len(matches); i++) {
            json_t *m = jv_at(matches, i);
            json_t *upd = jeval_node(E, n->rhs, m, f->env);
            if (E->failed) goto failm;
            if (upd) {
                if (!json_is_object(upd)) {
                    jeval_fail(E, "T2011", n->rhs->position, NULL, upd);
                    jv_decref(upd);
                    goto failm;
                }
                if (m && json_is_object(m)) {
                    const char *k;
                    json_t *v;
                    json_object_foreach(upd, k, v) json_object_set(m, k, v);
                }
                jv_decref(upd);
            }
            if (n->del) {
                json_t *del = jeval_node(E, n->del, m, f->env);
                if (E->failed) goto failm;
                if (del) {
                    json_t *d = jv_is_arr(del) ? jv_incref(del) : jseq_of(jv_incref(del));
                    if (!jv_is_arr_of_str(d)) {
                        jeval_fail(E, "T2012", n->del->position, NULL, del);
                        jv_decref(d);
                        jv_decref(del);
                        goto failm;
                    }
                    if (m && json_is_object(m))
                        for (size_t k = 0; k < jv_len(d); k++) json_object_del(m, json_string_value(jv_at(d, k)));
                    jv_decref(d);
                    jv_decref(del);
                }
            }
        }
        jv_decref(matches);
    }
    return result;
failm:
    jv_decref(matches);
fail:
    jv_decref(result);
    return NULL;
}

static jsig *tsig;
static void *tarena;
static pthread_once_t tsig_once = PTHREAD_ONCE_INIT;

static void tsig_init(void)
{
    int ep;
    jsonata_error e;
    tsig = jsig_parse("<(oa):o>", &tarena, &ep, &e);
}

/* The evaluator --------------------------------------------------------------- */

/* The C stack an evaluation may use: deep non-tail recursion fails with
 * U1001 instead of overflowing a thread's stack (glibc's default is 8 MB). */
#define STACK_BUDGET (3u << 20)

static bool check_limits(jeval *E, jnode *n)
{
    int maxd = E->max_depth ? E->max_depth : 100000;
    char here;
    if (E->depth > maxd || (size_t)(E->stack_base - &here) > STACK_BUDGET) {
        jeval_fail(E, "U1001", n->position, NULL, NULL);
        return false;
    }
    if (E->deadline > 0 && (++E->ticks & 63) == 0 && mono_ms() > E->deadline) {
        jeval_fail(E, "U1001", n->position, NULL, NULL);
        snprintf(E->err->message, sizeof E->err->message,
                 "Expression evaluation timeout: Check for infinite loop");
        return false;
    }
    return true;
}

json_t *jeval_node(jeval *E, jnode *n, json_t *input, jframe *env)
{
    E->depth++;
    if (!check_limits(E, n)) {
        E->depth--;
        return NULL;
    }
    json_t *r = NULL;
    switch (n->type) {
    case N_PATH: r = eval_path(E, n, input, env); break;
    case N_BINARY: r = eval_binary(E, n, input, env); break;
    case N_NEG: {
        json_t *v = jeval_node(E, n->lhs, input, env);
        if (E->failed) break;
        if (!v) break;
        if (jv_is_num(v)) {
            r = crm_num(-jv_num(v));
        } else {
            jeval_fail(E, "D1002", n->position, "-", v);
        }
        jv_decref(v);
        break;
    }
    case N_ARRAY: r = eval_array(E, n, input, env); break;
    case N_OBJECT: {
        jgroup g = {n->keys, n->vals, n->npairs, n->position};
        r = eval_group(E, &g, input, env);
        break;
    }
    case N_NAME: r = lookup(input, n->str); break;
    case N_STRING:
    case N_NUMBER:
    case N_VALUE: r = jv_incref(n->value); break;
    case N_WILDCARD: r = eval_wildcard(input); break;
    case N_DESCENDANT: r = eval_descendants(input); break;
    case N_PARENT: r = jv_incref(jframe_lookup(E, env, n->slot->label)); break;
    case N_CONDITION: {
        json_t *c = jeval_node(E, n->cond, input, env);
        if (E->failed) break;
        bool t = jv_truthy(c);
        jv_decref(c);
        if (t) r = jeval_node(E, n->then, input, env);
        else if (n->els) r = jeval_node(E, n->els, input, env);
        break;
    }
    case N_COALESCE:
    case N_ELVIS: {
        json_t *c = jeval_node(E, n->cond, input, env);
        if (E->failed) break;
        bool keep = n->type == N_COALESCE ? c != NULL : jv_truthy(c);
        if (keep) {
            r = c;
        } else {
            jv_decref(c);
            r = jeval_node(E, n->els, input, env);
        }
        break;
    }
    case N_BLOCK: {
        jframe *f = jframe_new(E, env);
        for (int i = 0; i < n->nitems; i++) {
            jv_decref(r);
            r = jeval_node(E, n->items[i], input, f);
            if (E->failed) break;
        }
        break;
    }
    case N_BIND: {
        json_t *v = jeval_node(E, n->rhs, input, env);
        if (E->failed) break;
        jframe_bind(env, n->str, jv_incref(v));
        r = v;
        break;
    }
    case N_REGEX: {
        jfunc *f = jfunc_new(E, F_REGEX);
        f->re = n->re;
        f->re_src = n->re_src;
        f->position = n->position;
        r = &f->h;
        break;
    }
    case N_FUNCTION: r = eval_function(E, n, input, env, NULL, false); break;
    case N_VARIABLE:
        if (n->str[0] == 0) {
            if (input && input->type == JT_ARR && ((jarr *)input)->outer) r = jv_incref(jv_at(input, 0));
            else r = jv_incref(input);
        } else {
            r = jv_incref(jframe_lookup(E, env, n->str));
            if (jv_is_func(r)) E->nfuncs++;
        }
        break;
    case N_LAMBDA: {
        jfunc *f = jfunc_new(E, F_LAMBDA);
        f->node = n;
        f->input = jv_incref(input);
        f->env = env;
        capture(env);
        f->sig = n->sig;
        r = &f->h;
        break;
    }
    case N_PARTIAL: r = eval_partial(E, n, input, env); break;
    case N_APPLY: r = eval_apply(E, n, input, env); break;
    case N_SORT: r = eval_sort(E, n, input, env); break;
    case N_TRANSFORM: {
        jfunc *f = jfunc_new(E, F_TRANSFORM);
        f->node = n;
        f->env = env;
        capture(env);
        pthread_once(&tsig_once, tsig_init);
        f->sig = tsig;
        r = &f->h;
        break;
    }
    default:
        break;
    }
    if (E->failed) {
        jv_decref(r);
        E->depth--;
        return NULL;
    }
    for (int i = 0; i < n->npreds; i++) {
        r = eval_filter(E, n->preds[i].expr, r, env);
        if (E->failed) {
            E->depth--;
            return NULL;
        }
    }
    if (n->group && n->type != N_PATH) {
        json_t *g = eval_group(E, n->group, r, env);
        jv_decref(r);
        r = g;
        if (E->failed) {
            E->depth--;
            return NULL;
        }
    }
    E->depth--;
    return unwrap_seq(n, r);
}

json_t *jfn_eval_expr(jeval *E, const char *expr, json_t *focus, json_t *context)
{
    void *arena = NULL;
    jsonata_error perr;
    memset(&perr, 0, sizeof perr);
    jnode *ast = jsonata_parse(expr, &arena, &perr);
    if (!ast) {
        ja_arena_free(arena);
        json_t *m = jv_strz(perr.message);
        jeval_fail(E, "D3120", 0, NULL, m);
        snprintf(E->err->message, sizeof E->err->message, "Syntax error in expression passed to function eval: %.180s",
                 perr.message);
        json_decref(m);
        return NULL;
    }
    jsonata_mark_simple(ast, 0);
    E->arenas = realloc(E->arenas, sizeof(void *) * (size_t)(E->narenas + 1));
    E->arenas[E->narenas++] = arena;
    json_t *input = context, *wrapped = NULL;
    if (focus) {
        input = focus;
        if (json_is_array(focus)) {
            jarr *w = jarr_new(1);
            w->seq = 1;
            w->outer = 1;
            jarr_push_ref(w, focus);
            wrapped = &w->h;
            input = wrapped;
        }
    }
    json_t *r = jeval_node(E, ast, input, E->cur_env ? E->cur_env : E->global);
    jv_decref(wrapped);
    if (E->failed) {
        char inner[180];
        snprintf(inner, sizeof inner, "%.170s", E->err->message);
        snprintf(E->err->code, sizeof E->err->code, "D3121");
        snprintf(E->err->message, sizeof E->err->message,
                 "Dynamic error evaluating the expression passed to function eval: %s", inner);
        return NULL;
    }
    return r;
}

void jsonata_mark_simple(jnode *n, int depth)
{
    if (!n || depth > 10000) return;
    if (n->type == N_PATH) n->simple = simple_path(n);
    jnode *kids[] = {n->lhs, n->rhs, n->del, n->cond, n->then, n->els, n->proc, n->body};
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++) jsonata_mark_simple(kids[i], depth + 1);
    for (int i = 0; i < n->nitems; i++) jsonata_mark_simple(n->items[i], depth + 1);
    for (int i = 0; i < n->npairs; i++) {
        jsonata_mark_simple(n->keys[i], depth + 1);
        jsonata_mark_simple(n->vals[i], depth + 1);
    }
    for (int i = 0; i < n->npreds; i++) jsonata_mark_simple(n->preds[i].expr, depth + 1);
    for (int i = 0; i < n->nstages; i++) jsonata_mark_simple(n->stages[i].expr, depth + 1);
    for (int i = 0; i < n->nterms; i++) jsonata_mark_simple(n->terms[i].expr, depth + 1);
    if (n->group)
        for (int i = 0; i < n->group->n; i++) {
            jsonata_mark_simple(n->group->keys[i], depth + 1);
            jsonata_mark_simple(n->group->vals[i], depth + 1);
        }
}

/* Public API ------------------------------------------------------------------- */

jsonata *jsonata_compile(const char *expr, jsonata_error *err)
{
    jsonata_error tmp;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    jsonata *e = calloc(1, sizeof *e);
    e->ast = jsonata_parse(expr ? expr : "", &e->arena, err);
    if (!e->ast) {
        ja_arena_free(e->arena);
        free(e);
        return NULL;
    }
    e->src = strdup(expr ? expr : "");
    jsonata_mark_simple(e->ast, 0);
    return e;
}

void jsonata_free(jsonata *e)
{
    if (!e) return;
    ja_arena_free(e->arena);
    free(e->src);
    free(e);
}

jsonata_frame *jsonata_frame_new(void) { return calloc(1, sizeof(jsonata_frame)); }

static void user_bind(jsonata_frame *f, const char *name, json_t *v)
{
    for (int i = 0; i < f->n; i++) {
        if (!strcmp(f->b[i].name, name)) {
            if (jv_is_func(f->b[i].val)) {
                ja_arena_free(((jfunc *)f->b[i].val)->sig_arena);
                free(f->b[i].val);
            } else {
                json_decref(f->b[i].val);
            }
            f->b[i].val = v;
            return;
        }
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->b = realloc(f->b, (size_t)f->cap * sizeof *f->b);
    }
    f->b[f->n].name = strdup(name);
    f->b[f->n].val = v;
    f->n++;
}

void jsonata_frame_bind(jsonata_frame *f, const char *name, json_t *value)
{
    if (!f || !name) return;
    user_bind(f, name, json_incref(value));
}

void jsonata_frame_bind_fn(jsonata_frame *f, const char *name, const char *signature, jsonata_native fn,
                           void *ctx)
{
    if (!f || !name || !fn) return;
    jfunc *jf = calloc(1, sizeof *jf);
    jf->h.type = JT_FUNC;
    jf->h.refcount = (size_t)-1;
    jf->kind = F_NATIVE;
    jf->native = fn;
    jf->nctx = ctx;
    if (signature) {
        void *arena = NULL;
        int ep;
        jsonata_error e;
        jf->sig = jsig_parse(signature, &arena, &ep, &e);
        jf->sig_arena = arena;
    }
    user_bind(f, name, &jf->h);
}

void jsonata_frame_free(jsonata_frame *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->b[i].name);
        json_t *v = f->b[i].val;
        if (jv_is_func(v)) {
            jfunc *jf = (jfunc *)v;
            ja_arena_free(jf->sig_arena);
            free(jf);
        } else {
            json_decref(v);
        }
    }
    free(f->b);
    free(f);
}

/* The final result must be plain JSON: sequences become arrays, functions
 * are dropped (JSON.stringify semantics). */
static json_t *scrub(json_t *v)
{
    if (!v) return NULL;
    if (jv_is_func(v)) return NULL;
    if (v->type == JT_ARR || v->type == JT_TUPLE) {
        json_t *j = jv_to_json(v);
        jv_decref(v);
        return scrub(j);
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i);
            if (jv_is_func(x)) {
                json_array_set_new(v, i, json_null());
            } else if (json_is_array(x) || json_is_object(x)) {
                json_t *y = scrub(json_incref(x));
                if (y != x) json_array_set_new(v, i, y ? y : json_null());
                else json_decref(y);
            }
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, x) {
            if (jv_is_func(x)) {
                json_object_del(v, k);
            } else if (json_is_array(x) || json_is_object(x)) {
                json_t *y = scrub(json_incref(x));
                json_decref(y);
            }
        }
    }
    return v;
}

int jsonata_eval(const jsonata *e, const json_t *input, const jsonata_frame *frame, const jsonata_limits *limits,
                 json_t **result, jsonata_error *err)
{
    jsonata_error tmp;
    if (!err) err = &tmp;
    /* no memset: this runs once per message and the structs are large */
    err->code[0] = 0;
    err->message[0] = 0;
    err->position = 0;
    *result = NULL;
    if (!e) {
        jerr_set(err, "S0500", 0, "no expression");
        return -1;
    }
    jeval E;
    E.failed = false;
    E.frames = NULL;
    E.funcs = NULL;
    E.nfuncs = 0;
    E.depth = 0;
    E.max_depth = 0;
    E.deadline = 0;
    E.ticks = 0;
    E.now_ms = 0;
    E.root = NULL;
    E.cur_env = NULL;
    E.arenas = NULL;
    E.narenas = 0;
    char base;
    E.stack_base = &base;
    E.err = err;
    E.user = frame;
    if (limits) {
        E.max_depth = limits->max_depth;
        if (limits->timeout_ms > 0) E.deadline = mono_ms() + limits->timeout_ms;
    }
    jframe global;
    global.parent = NULL;
    global.next_alloc = NULL;
    global.n = 0;
    global.captured = true; /* lives on this stack frame, never released */
    global.b = global.inl;
    global.cap = 2;
    E.global = &global;
    json_t *in = (json_t *)input;
    jframe_bind(&global, "$", jv_incref(in));
    json_t *wrapped = NULL;
    if (in && json_is_array(in)) {
        jarr *w = jarr_new(1);
        w->seq = 1;
        w->outer = 1;
        jarr_push_ref(w, in);
        wrapped = &w->h;
        in = wrapped;
    }
    E.root = in;
    json_t *r = jeval_node(&E, e->ast, in, &global);
    jv_decref(wrapped);
    int rc = 0;
    if (E.failed) {
        jv_decref(r);
        r = NULL;
        rc = -1;
    } else if (r) {
        if (r->type == JT_ARR || r->type == JT_TUPLE) {
            json_t *j = jv_to_json(r);
            jv_decref(r);
            r = j;
        }
        if (E.nfuncs) r = scrub(r);
    }
    for (int i = 0; i < global.n; i++) jv_decref(global.b[i].val);
    if (global.b != global.inl) free(global.b);
    for (jframe *f = E.frames; f;) {
        jframe *nx = f->next_alloc;
        for (int i = 0; i < f->n; i++) jv_decref(f->b[i].val);
        if (f->b != f->inl) free(f->b);
        free(f);
        f = nx;
    }
    for (int i = 0; i < E.narenas; i++) ja_arena_free(E.arenas[i]);
    free(E.arenas);
    for (jfunc *f = E.funcs; f;) {
        jfunc *nx = f->next_alloc;
        jfunc_free(f);
        f = nx;
    }
    *result = r;
    return rc;
}
