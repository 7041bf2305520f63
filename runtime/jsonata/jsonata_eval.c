/* jsonata_eval.c: the JSONata evaluator and the public compile/eval API.
 *
 * Semantics follow jsonata-js 2.x (evaluate, evaluatePath/Step/TupleStep,
 * filters, group-by, order-by, lambdas with tail calls, partial
 * application, transforms). Every evaluation function returns a NEW
 * reference (NULL = undefined); on error it sets E->failed and the error and
 * returns NULL, so callers test E->failed after each call. Frames and
 * function values are owned by the evaluation and freed when it ends.
 * Values reached from the input are "stable" and may be held without
 * references (borrowed arrays, borrowed operands and call arguments: see
 * jsonata_int.h and docs/jsonata.md), which keeps jansson's atomic
 * refcounts off the hot paths. */
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

/* Frames and functions that live until the evaluation ends are counted: an
 * evaluation that piles up more of them (runaway recursion the trampoline
 * cannot run in constant memory) fails with U1001 instead of growing without
 * bound. 2 million of them is some 300 MB. */
#define MAX_KEPT_ALLOCS 2000000u

static void count_alloc(jeval *E)
{
    if (++E->nalloc > MAX_KEPT_ALLOCS) jeval_fail(E, "U1001", 0, NULL, NULL);
}

jframe *jframe_new(jeval *E, jframe *parent)
{
    count_alloc(E);
    jframe *f = calloc(1, sizeof *f);
    f->parent = parent;
    f->b = f->inl;
    f->cap = 2;
    f->next_alloc = E->frames;
    E->frames = f;
    return f;
}

/* A lambda call's frame: released as soon as the call returns unless a
 * closure captured it, so $map over many items does not pile frames up;
 * released frames are reused. */
static jframe *call_frame_new(jeval *E, jframe *parent)
{
    jframe *f = E->spare_frames;
    if (f) {
        E->spare_frames = f->next_alloc;
    } else {
        f = malloc(sizeof *f);
        f->b = f->inl;
        f->cap = 2;
    }
    f->parent = parent;
    f->n = 0;
    f->captured = false;
    f->borrowed = 0;
    f->next_alloc = NULL;
    return f;
}

static void frame_release(jeval *E, jframe *f)
{
    if (f->captured) {
        count_alloc(E);
        f->next_alloc = E->frames;
        E->frames = f;
        return;
    }
    for (int i = 0; i < f->n; i++)
        if (!(i < 32 && (f->borrowed >> i) & 1)) jv_decref(f->b[i].val);
    f->next_alloc = E->spare_frames;
    E->spare_frames = f;
}

/* Takes references on the call arguments a frame chain holds borrowed (they
 * must outlive the call that lent them), without marking it captured. */
static void own_args(jframe *f)
{
    for (; f && !f->captured; f = f->parent) {
        for (int i = 0; i < f->n && i < 32; i++)
            if ((f->borrowed >> i) & 1) jv_incref(f->b[i].val);
        f->borrowed = 0;
    }
}

/* A thunk: the pending tail call a lambda body returns (see apply_fn). */
static inline jfunc *as_thunk(json_t *v)
{
    jfunc *f = (jfunc *)v;
    return jv_is_func(v) && f->kind == F_LAMBDA && f->node && f->node->thunk ? f : NULL;
}

/* A call or block frame whose scope ends while a thunk made in it is still to
 * be run: released by the trampoline once it has evaluated the tail call's
 * function and arguments, so tail recursion runs in constant memory. */
static void hold_frame(jfunc *th, jframe *f)
{
    f->next_alloc = th->held;
    th->held = f;
}

static void capture(jframe *f)
{
    for (; f && !f->captured; f = f->parent) {
        f->captured = true;
        for (int i = 0; i < f->n && i < 32; i++)
            if ((f->borrowed >> i) & 1) jv_incref(f->b[i].val);
        f->borrowed = 0;
    }
}

void jframe_bind(jframe *f, const char *name, json_t *v)
{
    for (int i = 0; i < f->n; i++) {
        if (!strcmp(f->b[i].name, name)) {
            if (i < 32 && (f->borrowed >> i) & 1) f->borrowed &= ~(1u << i);
            else jv_decref(f->b[i].val);
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

/* Binds a call argument without a reference (see jframe.borrowed). */
static void frame_bind_arg(jframe *f, const char *name, json_t *v)
{
    int before = f->n;
    jframe_bind(f, name, v);
    if (f->n > before && before < 32) f->borrowed |= 1u << before;
    else if (f->n == before) jv_incref(v); /* a repeated parameter name: keep it simple */
}

/* A binding of the frames or of the caller's bindings, or NULL. */
static json_t *bound(jeval *E, jframe *f, const char *name)
{
    for (; f; f = f->parent)
        for (int i = 0; i < f->n; i++)
            if (f->b[i].name[0] == name[0] && !strcmp(f->b[i].name, name)) return f->b[i].val;
    if (E->user)
        for (int i = 0; i < E->user->n; i++)
            if (!strcmp(E->user->b[i].name, name)) return E->user->b[i].val;
    return NULL;
}

/* jframe_lookup for a variable node: its built-in was found at compile time. */
static json_t *lookup_var(jeval *E, jframe *f, const jnode *var)
{
    json_t *v = bound(E, f, var->str);
    if (v) return v;
    return var->builtin ? var->builtin : jbuiltin_value(var->str); /* unmarked: a very deep AST */
}

json_t *jframe_lookup(jeval *E, jframe *f, const char *name)
{
    json_t *v = bound(E, f, name);
    return v ? v : jbuiltin_value(name);
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
    count_alloc(E);
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
static json_t *eval_filter(jeval *E, jnode *pred, json_t *input, jframe *env, bool borrowed);
static json_t *eval_group(jeval *E, jgroup *g, json_t *input, jframe *env);
static json_t *eval_sort(jeval *E, jnode *n, json_t *input, jframe *env);
static json_t *apply_fn(jeval *E, json_t *proc, json_t **args, int nargs, json_t *input, int position,
                        const char *name);

/* json_object_get(obj, name->str). Objects of the same shape keep their
 * keys in the same order, so the key is first looked for at the position it
 * had last time through jansson's iterators, which costs about half of
 * jansson's hashed lookup for small objects. */
#define KEY_HINT_MAX 6

static inline bool same_bytes(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static inline __attribute__((always_inline)) json_t *obj_get(json_t *obj, jnode *name)
{
    size_t kl = name->slen ? (size_t)name->slen : strlen(name->str); /* 0: unmarked (very deep AST) */
    int hint = __atomic_load_n(&name->key_hint, __ATOMIC_RELAXED);
    if (hint > 0) {
        void *it = json_object_iter(obj);
        for (int i = 1; i < hint && it; i++) it = json_object_iter_next(obj, it);
        if (it) {
            const char *k = json_object_iter_key(it);
            if (same_bytes(k, name->str, kl) && json_object_iter_key_len(it) == kl) return json_object_iter_value(it);
        }
    }
    json_t *v = json_object_getn(obj, name->str, kl);
    if (!v) return crm_error_member(obj, name->str, kl); /* err.message */
    if (json_object_size(obj) <= KEY_HINT_MAX) {
        int pos = 1;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it), pos++) {
            if (json_object_iter_key_len(it) == kl && same_bytes(json_object_iter_key(it), name->str, kl)) {
                __atomic_store_n(&name->key_hint, pos, __ATOMIC_RELAXED);
                break;
            }
        }
    }
    return v;
}

/* fn.lookup. stable: input is a stable value, so what is found is too and
 * the sequence built for an array input can borrow it. */
static json_t *lookup(const json_t *input, jnode *key, bool stable)
{
    if (!input) return NULL;
    if (jv_is_arr(input)) {
        bool items_stable = stable || jseq_stable(input);
        json_t *r = items_stable ? jseq_borrowed() : jseq_new();
        for (size_t i = 0; i < jv_len(input); i++) {
            json_t *x = lookup(jv_at(input, i), key, items_stable);
            if (!x) continue;
            if (jv_is_arr(x)) {
                bool xs = jseq_stable(x);
                for (size_t j = 0; j < jv_len(x); j++) {
                    if (xs) jarr_push_stable((jarr *)r, jv_at(x, j));
                    else jarr_push_ref((jarr *)r, jv_at(x, j));
                }
                jv_decref(x);
            } else {
                jarr_push((jarr *)r, x);
            }
        }
        return r;
    }
    if (json_is_object(input)) return jv_incref(obj_get((json_t *)input, key));
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
            res = eval_filter(E, step->stages[s].expr, res, env, false);
        }
    }
    return res;
}

/* Appends a step's result to the step's output, flattening arrays (but not
 * constructed ones). res_stable: res is a stable value held without a
 * reference; otherwise res is an owned reference, consumed. */
static void push_flat(jarr *out, json_t *res, bool res_stable)
{
    if (!jv_is_arr(res) || (res->type == JT_ARR && ((jarr *)res)->cons)) {
        if (res_stable) jarr_push_stable(out, res);
        else jarr_push(out, res);
        return;
    }
    bool items_stable = res_stable || jseq_stable(res);
    size_t m = jv_len(res);
    for (size_t j = 0; j < m; j++) {
        if (items_stable) jarr_push_stable(out, jv_at(res, j));
        else jarr_push_ref(out, jv_at(res, j));
    }
    if (!res_stable) jv_decref(res);
}

/* A name step over one item: *stable tells whether the result is a stable
 * value held without a reference (else it is an owned reference). */
static json_t *name_step(jnode *step, json_t *item, bool item_stable, bool *stable)
{
    if (json_is_object(item)) {
        json_t *r = obj_get(item, step);
        *stable = item_stable;
        return item_stable ? r : jv_incref(r);
    }
    *stable = false;
    json_t *res = lookup(item, step, item_stable);
    if (res && res->type == JT_ARR) res = unwrap_seq(step, res);
    return res;
}

/* in_stable: the items of input are stable values. */
static json_t *eval_step(jeval *E, jnode *step, json_t *input, bool in_stable, jframe *env, bool last)
{
    if (step->type == N_SORT) {
        json_t *r = eval_sort(E, step, input, env);
        if (E->failed) return NULL;
        return apply_stages(E, step, r, env);
    }
    /* results are flattened as they come; the first defined one is kept
     * because a lone array result of the last step stays unflattened */
    jarr *out = (jarr *)jseq_borrowed(); /* owns references from the first owned push on */
    json_t *first = NULL;
    size_t count = 0, n = jv_len(input);
    bool name_only = step->type == N_NAME && !step->npreds && !step->group && !step->keep_array;
    for (size_t i = 0; i < n; i++) {
        json_t *item = jv_at(input, i), *res;
        bool res_stable = false;
        if (name_only) {
            res = name_step(step, item, in_stable, &res_stable);
            for (int s = 0; s < step->nstages; s++) {
                res = eval_filter(E, step->stages[s].expr, res, env, res_stable);
                res_stable = false;
                if (E->failed) goto fail;
            }
        } else {
            json_t *saved = E->stable_item;
            if (in_stable) E->stable_item = item;
            res = jeval_node(E, step, item, env);
            E->stable_item = saved;
            if (E->failed) goto fail;
            if (res && (res == E->input || (in_stable && res == item))) {
                jv_decref(res); /* still alive: stable */
                res_stable = true;
            }
            for (int s = 0; s < step->nstages; s++) {
                res = eval_filter(E, step->stages[s].expr, res, env, res_stable);
                res_stable = false;
                if (E->failed) goto fail;
            }
        }
        if (!res) continue;
        if (count++ == 0) first = jv_incref(res);
        push_flat(out, res, res_stable);
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

/* Whether v is known to be stable (see JT_ARR): pointer identity with a
 * stable value is proof enough, since stable values outlive the evaluation. */
static inline bool jeval_stable(const jeval *E, const json_t *v)
{
    return v && (v == E->input || v == E->stable_item);
}

typedef enum { WALK_FALLBACK, WALK_DONE, WALK_ARRAY } walk_end;

/* Walks a simple path over objects without taking references. WALK_DONE:
 * *out is the result (borrowed; NULL = undefined). WALK_ARRAY: the walk met
 * the array *out at step *at (not the last), the general algorithm goes on
 * from the step after it; *stable tells whether that array is stable.
 * WALK_FALLBACK: the general algorithm must start from scratch. */
static walk_end walk_simple_path(jeval *E, jnode *n, json_t *input, jframe *env, json_t **out, int *at,
                                 bool *stable)
{
    json_t *cur = input;
    int i = 0;
    *out = NULL;
    if (n->items[0]->type == N_VARIABLE) {
        if (!n->items[0]->str[0]) return WALK_FALLBACK;
        cur = lookup_var(E, env, n->items[0]);
        i = 1;
        if (!cur) return WALK_DONE;
    }
    if (jv_is_arr(cur)) return WALK_FALLBACK;
    bool from_stable = jeval_stable(E, cur);
    for (; i < n->nitems; i++) {
        if (!json_is_object(cur)) return WALK_DONE;
        json_t *next = obj_get(cur, n->items[i]);
        if (!next) return WALK_DONE;
        if (json_is_array(next) && i < n->nitems - 1) {
            *out = next;
            *at = i;
            *stable = from_stable;
            return WALK_ARRAY;
        }
        cur = next;
    }
    *out = cur;
    return WALK_DONE;
}

/* A literal or a simple path (no side effects, nothing to own). */
static bool pure_operand(const jnode *n)
{
    if (n->npreds || n->group || n->keep_array) return false;
    return n->type == N_NUMBER || n->type == N_STRING || n->type == N_VALUE || (n->type == N_PATH && n->simple);
}

/* An operand's value without taking a reference when it is a literal or a
 * simple path over objects: *owned tells whether the caller must release
 * it. A borrowed value stays valid until something rebinds a variable, so
 * an operator borrows its left operand only when the right one is pure. */
static json_t *eval_operand(jeval *E, jnode *n, json_t *input, jframe *env, bool *owned)
{
    if (pure_operand(n)) {
        if (n->type != N_PATH) {
            *owned = false;
            return n->value;
        }
        json_t *v;
        int at;
        bool st;
        if (walk_simple_path(E, n, input, env, &v, &at, &st) == WALK_DONE) {
            *owned = false;
            return v;
        }
    }
    *owned = true;
    return jeval_node(E, n, input, env);
}

/* The left operand of a binary operator: borrowed only when evaluating the
 * right one cannot rebind a variable under it. */
static json_t *eval_left(jeval *E, jnode *n, json_t *input, jframe *env, bool *owned)
{
    if (pure_operand(n->rhs)) return eval_operand(E, n->lhs, input, env, owned);
    *owned = true;
    return jeval_node(E, n->lhs, input, env);
}

static json_t *eval_path(jeval *E, jnode *n, json_t *input, jframe *env)
{
    json_t *inseq;
    bool in_stable; /* the items of inseq are stable */
    int first_step = 0;
    json_t *fast = NULL;
    walk_end w = n->simple ? walk_simple_path(E, n, input, env, &fast, &first_step, &in_stable) : WALK_FALLBACK;
    if (w == WALK_DONE) return jv_incref(fast);
    if (w == WALK_ARRAY) {
        /* the steps up to the array yield one object each: go on from the array's items */
        inseq = jv_incref(fast);
        first_step++;
    } else if (jv_is_arr(input) && n->items[0]->type != N_VARIABLE) {
        inseq = jv_incref(input);
        in_stable = jseq_stable(input) || jeval_stable(E, input);
    } else {
        inseq = jseq_of(jv_incref(input));
        in_stable = jeval_stable(E, input);
    }
    json_t *result = NULL, *tuples = NULL;
    bool tuple_stream = false;
    for (int i = first_step; i < n->nitems; i++) {
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
            result = eval_step(E, step, inseq, in_stable, env, i == n->nitems - 1);
        }
        if (E->failed) goto fail;
        if (!tuple_stream && (!result || (jv_is_arr(result) && jv_len(result) == 0))) break;
        if (!step->focus) {
            jv_decref(inseq);
            inseq = jv_incref(result);
            in_stable = jseq_stable(inseq);
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

/* Steals input, or borrows it when it is a stable value (borrowed): then,
 * as when input is a borrowed sequence, the results borrow their items. */
static json_t *eval_filter(jeval *E, jnode *pred, json_t *input, jframe *env, bool borrowed)
{
    bool tup = input && input->type == JT_ARR && ((jarr *)input)->tuple;
    if (!input) return jseq_new();
    if (!jv_is_arr(input)) input = borrowed ? jseq_of_stable(input) : jseq_of(input);
    else if (borrowed) input = jv_incref(input);
    bool stable = borrowed || jseq_stable(input);
    jarr *results = (jarr *)(stable ? jseq_borrowed() : jseq_new());
    results->tuple = tup;
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
            jarr_push_stable(results, item); /* a reference unless results borrow */
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
        json_t *saved = E->stable_item;
        if (stable) E->stable_item = item;
        json_t *res = jeval_node(E, pred, ctx, fenv);
        E->stable_item = saved;
        if (E->failed) {
            jv_decref(input);
            jv_decref(&results->h);
            return NULL;
        }
        bool keep = false;
        if (jv_is_num(res) && !isnan(jv_num(res))) {
            double ii = floor(jv_num(res));
            if (ii < 0) ii += (double)n;
            keep = ii == (double)i;
        } else if (jv_is_arr_of_num(res) && jv_len(res) > 0) {
            for (size_t k = 0; k < jv_len(res); k++) {
                double ii = floor(jv_num(jv_at(res, k)));
                if (ii < 0) ii += (double)n;
                if (ii == (double)i) jarr_push_stable(results, item);
            }
        } else {
            keep = jv_truthy(res);
        }
        if (keep) jarr_push_stable(results, item);
        jv_decref(res);
    }
    jv_decref(input);
    return &results->h;
}

/* Group-by / object constructor -------------------------------------------- */

/* fn.append(acc, item) without the quadratic copying: *acc becomes an
 * array this evaluation owns (flagged by *owned) on the second item; the
 * array borrows the items when they are stable (item_stable). */
static void acc_push_flat(jarr *a, json_t *v, bool stable)
{
    if (jv_is_arr(v)) {
        bool items_stable = stable || jseq_stable(v);
        for (size_t i = 0; i < jv_len(v); i++) {
            if (items_stable) jarr_push_stable(a, jv_at(v, i));
            else jarr_push_ref(a, jv_at(v, i));
        }
    } else if (stable) {
        jarr_push_stable(a, v);
    } else {
        jarr_push_ref(a, v);
    }
}

static void acc_append(json_t **acc, bool *owned, json_t *item, bool item_stable)
{
    if (!*acc) {
        *acc = jv_incref(item);
        *owned = false;
        return;
    }
    if (!item) return;
    if (!*owned) {
        jarr *r = jarr_new(4);
        r->borrowed = item_stable; /* the first item came from the same input */
        acc_push_flat(r, *acc, item_stable);
        jv_decref(*acc);
        *acc = &r->h;
        *owned = true;
    }
    acc_push_flat((jarr *)*acc, item, item_stable);
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
            acc_append(&r->b[slot].val, &owned[slot], t->b[k].val, false);
        }
    }
    free(owned);
    return &r->h;
}

typedef struct {
    json_t *key;        /* owned string */
    json_t *data;
    int expr_index;
    bool owned;
} group_entry;

/* The groups by key, in order of first appearance: an open-addressing
 * table of entry positions (jansson objects as indexes cost a hash of the
 * key plus an allocation per group). */
typedef struct {
    group_entry *entries;
    size_t n, cap;
    size_t *slots; /* entry position + 1; 0 = free */
    size_t nslots; /* a power of two */
} group_index;

static size_t key_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

static size_t *group_slot(group_index *gi, const char *k, size_t kl)
{
    size_t mask = gi->nslots - 1, i = key_hash(k, kl) & mask;
    for (;; i = (i + 1) & mask) {
        size_t *slot = &gi->slots[i];
        if (!*slot) return slot;
        const json_t *key = gi->entries[*slot - 1].key;
        if (json_string_length(key) == kl && !memcmp(json_string_value(key), k, kl)) return slot;
    }
}

static group_entry *group_add(group_index *gi, size_t *slot, json_t *key)
{
    if (gi->n == gi->cap) {
        gi->cap = gi->cap ? gi->cap * 2 : 8;
        gi->entries = realloc(gi->entries, gi->cap * sizeof *gi->entries);
    }
    group_entry *ge = &gi->entries[gi->n++];
    ge->key = key;
    *slot = gi->n;
    if (gi->n * 2 > gi->nslots) { /* keep the table at most half full */
        free(gi->slots);
        gi->nslots *= 2;
        gi->slots = calloc(gi->nslots, sizeof *gi->slots);
        for (size_t i = 0; i < gi->n; i++) {
            const json_t *k = gi->entries[i].key;
            *group_slot(gi, json_string_value(k), json_string_length(k)) = i + 1;
        }
    }
    return ge;
}

/* Evaluates the key expressions over the input and fills gi; false on error. */
static bool group_collect(jeval *E, jgroup *g, json_t *in, bool reduce, bool stable, jframe *env,
                          group_index *gi)
{
    size_t n = jv_len(in);
    /* an empty input groups one undefined item (a literal object still comes
     * out), but an empty tuple stream nothing: Node-RED 4.1.15 gives {} for
     * x#$i{"k": 1} when x matches nothing */
    size_t count = n == 0 && !reduce ? 1 : n;
    for (size_t i = 0; i < count; i++) {
        json_t *item = n == 0 ? NULL : jv_at(in, i);
        jframe *ienv = reduce ? frame_from_tuple(E, env, item) : env;
        json_t *saved = E->stable_item;
        if (stable) E->stable_item = item;
        for (int p = 0; p < g->n; p++) {
            bool kown;
            json_t *key = eval_operand(E, g->keys[p], reduce ? tuple_get(item, "@") : item, ienv, &kown);
            if (E->failed) break;
            if (key && !json_is_string(key)) {
                jeval_fail(E, "T1003", g->position, NULL, key);
                if (kown) jv_decref(key);
                break;
            }
            if (!key) continue;
            size_t *slot = group_slot(gi, json_string_value(key), json_string_length(key));
            if (*slot) {
                group_entry *ge = &gi->entries[*slot - 1];
                if (ge->expr_index != p) jeval_fail(E, "D1009", g->position, NULL, key);
                else acc_append(&ge->data, &ge->owned, item, stable);
                if (kown) jv_decref(key);
                if (E->failed) break;
            } else {
                group_entry *ge = group_add(gi, slot, kown ? key : jv_incref(key));
                ge->data = jv_incref(item);
                ge->expr_index = p;
                ge->owned = false;
            }
        }
        E->stable_item = saved;
        if (E->failed) return false;
    }
    return true;
}

static json_t *eval_group(jeval *E, jgroup *g, json_t *input, jframe *env)
{
    bool reduce = input && input->type == JT_ARR && ((jarr *)input)->tuple;
    bool stable;
    json_t *in;
    if (jv_is_arr(input)) {
        in = jv_incref(input);
        stable = jseq_stable(input);
    } else {
        in = jseq_of(jv_incref(input));
        stable = jeval_stable(E, input);
    }
    group_index gi = {NULL, 0, 0, calloc(16, sizeof(size_t)), 16};
    json_t *result = NULL;
    if (!group_collect(E, g, in, reduce, stable, env, &gi)) goto done;
    result = json_object();
    for (size_t e = 0; e < gi.n; e++) {
        group_entry *ge = &gi.entries[e];
        json_t *ctx = ge->data;
        jframe *venv = env;
        json_t *reduced = NULL;
        if (reduce) {
            /* an empty tuple stream (the path matched nothing) groups one undefined item */
            reduced = reduce_tuples(ge->data);
            ctx = reduced ? tuple_get(reduced, "@") : NULL;
            venv = jframe_new(E, env);
            const jtuple *t = reduced && reduced->type == JT_TUPLE ? (const jtuple *)reduced : NULL;
            for (int q = 0; t && q < t->n; q++)
                if (strcmp(t->b[q].name, "@")) jframe_bind(venv, t->b[q].name, jv_incref(t->b[q].val));
        }
        json_t *saved = E->stable_item;
        if (stable && !ge->owned) E->stable_item = ctx; /* a single item of the input */
        json_t *v = jeval_node(E, g->vals[ge->expr_index], ctx, venv);
        E->stable_item = saved;
        jv_decref(reduced);
        if (E->failed) {
            json_decref(result);
            result = NULL;
            goto done;
        }
        if (v) {
            if (jv_is_func(v)) E->nfuncs++;
            json_object_setn_new_nocheck(result, json_string_value(ge->key), json_string_length(ge->key),
                                         jv_take_json(v));
        }
    }
done:
    for (size_t i = 0; i < gi.n; i++) {
        jv_decref(gi.entries[i].data);
        jv_decref(gi.entries[i].key);
    }
    free(gi.entries);
    free(gi.slots);
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
    if (!jv_string_fits(E, sb.len)) {
        sb_free(&sb);
        return NULL;
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
    if (size > (double)E->max_items) { /* below jsonata-js's 1e7 when the limit is lower */
        json_t *v = json_real((double)E->max_items);
        jeval_fail(E, "U1004", n->position, NULL, v);
        json_decref(v);
        return NULL;
    }
    jarr *res = jarr_new((size_t)size);
    res->seq = 1;
    for (double x = a; x <= b; x++) res->v[res->n++] = json_real(x);
    return &res->h;
}

/* The text of a '&' chain: on the stack while it is short. */
typedef struct {
    char *data;
    size_t len, cap;
    char local[200];
} cbuf;

static void cb_putn(cbuf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        if (b->data == b->local) {
            b->data = malloc(cap);
            memcpy(b->data, b->local, b->len);
        } else {
            b->data = realloc(b->data, cap);
        }
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* $string of an integral number below 1e15, as jv_stringify prints it,
 * without going through printf. */
static bool put_integer(cbuf *b, double d)
{
    if (!(d == floor(d) && fabs(d) < 1e15)) return false;
    char tmp[24];
    cb_putn(b, tmp, jv_fmt_integer(d, tmp));
    return true;
}

/* Appends the string value of one operand of '&'; a nested '&' chain
 * ("a & b & c") is appended in place rather than building intermediate
 * strings. Returns false on error. */
static bool concat_plain(jnode *n)
{
    return n->type == N_BINARY && n->op == OP_CONCAT && !n->npreds && !n->group && !n->keep_array;
}

static bool concat_into(jeval *E, jnode *n, json_t *input, jframe *env, cbuf *b)
{
    if (concat_plain(n))
        return concat_into(E, n->lhs, input, env, b) && concat_into(E, n->rhs, input, env, b);
    bool own;
    json_t *v = eval_operand(E, n, input, env, &own); /* used before anything else runs */
    if (E->failed) return false;
    if (!v) return true;
    bool ok = true;
    if (json_is_string(v)) {
        if (!jv_string_fits(E, b->len + json_string_length(v))) {
            if (own) jv_decref(v);
            return false;
        }
        cb_putn(b, json_string_value(v), json_string_length(v));
    } else if (!(json_is_real(v) && put_integer(b, json_real_value(v)))) {
        char *s = jv_stringify(E, v, false);
        if (E->failed) ok = false;
        else if (s && !jv_string_fits(E, b->len + strlen(s))) ok = false;
        else if (s) cb_putn(b, s, strlen(s));
        free(s);
    }
    if (own) jv_decref(v);
    return ok;
}

static json_t *eval_concat_chain(jeval *E, jnode *n, json_t *input, jframe *env)
{
    cbuf b;
    b.data = b.local;
    b.len = 0;
    b.cap = sizeof b.local;
    json_t *r = NULL;
    if (concat_into(E, n->lhs, input, env, &b) && concat_into(E, n->rhs, input, env, &b))
        r = json_stringn_nocheck(b.data, b.len);
    if (b.data != b.local) free(b.data);
    return r;
}

static json_t *eval_arith(jeval *E, jnode *n, json_t *input, jframe *env)
{
    bool lown, rown;
    json_t *l;
    l = eval_left(E, n, input, env, &lown);
    if (E->failed) return NULL;
    json_t *r = eval_operand(E, n->rhs, input, env, &rown);
    double a = l ? jv_num(l) : 0, b = r ? jv_num(r) : 0;
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
    bool lown, rown;
    if (n->op == OP_AND || n->op == OP_OR) {
        json_t *l = eval_operand(E, n->lhs, input, env, &lown);
        if (E->failed) return NULL;
        bool lb = jv_truthy(l);
        if (lown) jv_decref(l);
        if (n->op == OP_AND && !lb) return json_false();
        if (n->op == OP_OR && lb) return json_true();
        json_t *r = eval_operand(E, n->rhs, input, env, &rown);
        if (E->failed) return NULL;
        bool rb = jv_truthy(r);
        if (rown) jv_decref(r);
        return json_boolean(rb);
    }
    json_t *l;
    l = eval_left(E, n, input, env, &lown);
    if (E->failed) return NULL;
    json_t *r = eval_operand(E, n->rhs, input, env, &rown);
    if (E->failed) {
        if (lown) jv_decref(l);
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
    if (lown) jv_decref(l);
    if (rown) jv_decref(r);
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
    if (!jv_is_func(v)) return 0;
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
    jframe *env = call_frame_new(E, f->env);
    for (int i = 0; i < f->node->nparams; i++) frame_bind_arg(env, f->node->params[i], i < nargs ? args[i] : NULL);
    json_t *r = jeval_node(E, f->node->body, f->input, env);
    jfunc *th = as_thunk(r);
    if (th) hold_frame(th, env);
    else frame_release(E, env);
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
    json_t *vbuf[8];
    if (f->sig && f->kind != F_PARTIAL) {
        va = jsig_validate(E, f->sig, args, nargs, input, &nva, fname, position, vbuf, 8);
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
        /* built-ins that may multiply their input ($base64encode, $encodeUrl, ...) */
        if (!E->failed && json_is_string(res) && !jv_string_fits(E, json_string_length(res))) {
            json_decref(res);
            res = NULL;
        }
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
        if (va != vbuf) free(va);
    }
    return res;
}

static json_t *apply_fn(jeval *E, json_t *proc, json_t **args, int nargs, json_t *input, int position,
                        const char *name)
{
    json_t *res = apply_inner(E, proc, args, nargs, input, position, name);
    jfunc *th;
    while ((th = as_thunk(res)) != NULL) {
        /* the thunk was the last function made (its body's last act): when it
         * still heads the list nothing else refers to it, and it is freed here */
        bool mine = E->funcs == th;
        if (mine) E->funcs = th->next_alloc;
        jnode *call = th->node->body;
        json_t *next = E->failed ? NULL : jeval_node(E, call->proc, th->input, th->env);
        int na = call->nitems;
        json_t **ev = calloc((size_t)na + 1, sizeof(json_t *));
        for (int i = 0; i < na && !E->failed; i++) ev[i] = jeval_node(E, call->items[i], th->input, th->env);
        const char *pn = proc_name(call->proc);
        if (!E->failed && !jv_is_func(next)) {
            if (!next && call->proc->type == N_PATH && pn && frame_has(E, th->env, pn))
                jeval_fail(E, "T1005", call->position, pn, NULL);
            else
                jeval_fail(E, "T1006", call->position, pn, NULL);
        }
        json_t *thinput = jv_incref(th->input);
        while (th->held) {
            jframe *f = th->held;
            th->held = f->next_alloc;
            frame_release(E, f);
        }
        if (mine) {
            jfunc_free(th);
            E->nalloc--;
        }
        res = NULL;
        if (!E->failed) res = apply_inner(E, next, ev, na, thinput, call->position, pn);
        jv_decref(thinput);
        for (int i = 0; i < na; i++) jv_decref(ev[i]);
        free(ev);
        jv_decref(next);
        if (E->failed && !as_thunk(res)) return NULL;
    }
    return res;
}

json_t *japply(jeval *E, json_t *fn, json_t **args, int nargs, json_t *context, int position)
{
    return apply_fn(E, fn, args, nargs, context, position, NULL);
}

/* Aggregates over a simple path ---------------------------------------------
 * $sum(a.b), $count(a.b), $max, $min, $average of a path of plain names
 * are computed while walking the input, without building the sequence or
 * validating the signature. Anything off the plain case (an array nested
 * in an array, a value of another type, a result out of range) gives up,
 * and the call is evaluated the general way: the path has no side effects. */
enum { AGG_NONE, AGG_SUM, AGG_COUNT, AGG_MAX, AGG_MIN, AGG_AVG };

typedef struct {
    int kind;
    bool bail;
    size_t emitted;     /* defined results of the last step */
    bool last_array;    /* the last of them was an array */
    size_t n;           /* items */
    double total, best;
} agg_state;

static inline void agg_item(agg_state *st, json_t *v)
{
    st->n++;
    if (st->kind == AGG_COUNT) return;
    if (!json_is_real(v)) {
        st->bail = true;
        return;
    }
    double d = json_real_value(v);
    if (!isfinite(d)) { /* NaN/Infinity: the built-ins' own rules */
        st->bail = true;
        return;
    }
    st->total += d;
    if (st->n == 1 || (st->kind == AGG_MAX ? d > st->best : d < st->best)) st->best = d;
}

static void agg_walk(agg_state *st, jnode *path, int i, json_t *obj)
{
    json_t *v = obj_get(obj, path->items[i]);
    if (!v) return;
    if (i == path->nitems - 1) {
        st->emitted++;
        st->last_array = json_is_array(v);
        if (!st->last_array) {
            agg_item(st, v);
            return;
        }
        size_t m = json_array_size(v);
        for (size_t k = 0; k < m && !st->bail; k++) agg_item(st, json_array_get(v, k));
        return;
    }
    if (json_is_object(v)) {
        agg_walk(st, path, i + 1, v);
    } else if (json_is_array(v)) {
        size_t m = json_array_size(v);
        for (size_t k = 0; k < m && !st->bail; k++) {
            json_t *e = json_array_get(v, k);
            if (json_is_object(e)) agg_walk(st, path, i + 1, e);
            else if (json_is_array(e)) st->bail = true;
        }
    }
}

static int aggregate_kind(const jnode *n)
{
    if (n->type != N_FUNCTION || n->nitems != 1 || n->npreds || n->group) return AGG_NONE;
    const jnode *p = n->proc, *arg = n->items[0];
    if (p->type == N_PATH && p->nitems == 1 && !p->npreds && !p->group) p = p->items[0];
    if (p->type != N_VARIABLE || !p->builtin || p->npreds || p->group) return AGG_NONE;
    if (arg->type != N_PATH || !arg->simple || arg->items[0]->type != N_NAME || arg->npreds || arg->group ||
        arg->keep_array)
        return AGG_NONE;
    static const char *names[] = {NULL, "sum", "count", "max", "min", "average"};
    for (int k = AGG_SUM; k <= AGG_AVG; k++)
        if (!strcmp(p->str, names[k])) return k;
    return AGG_NONE;
}

/* true when settled, with *out the result (new reference) */
static bool eval_aggregate(jeval *E, jnode *n, json_t *input, jframe *env, json_t **out)
{
    const jnode *p = n->proc->type == N_PATH ? n->proc->items[0] : n->proc;
    if (lookup_var(E, env, p) != p->builtin) return false; /* shadowed */
    if (input && (input->type == JT_TUPLE || (input->type == JT_ARR && ((jarr *)input)->tuple))) return false;
    agg_state st = {n->agg, false, 0, false, 0, 0, 0};
    jnode *path = n->items[0];
    if (jv_is_arr(input)) {
        for (size_t k = 0; k < jv_len(input) && !st.bail; k++) {
            json_t *e = jv_at(input, k);
            if (json_is_object(e)) agg_walk(&st, path, 0, e);
            else if (jv_is_arr(e)) st.bail = true;
        }
    } else if (json_is_object(input)) {
        agg_walk(&st, path, 0, input);
    }
    if (st.bail) return false;
    /* the argument: undefined, or a (possibly empty) array of st.n items */
    bool undefined = st.emitted == 0 || (st.n == 0 && !(st.emitted == 1 && st.last_array));
    *out = NULL;
    switch (st.kind) {
    case AGG_COUNT: *out = json_real(undefined ? 0 : (double)st.n); break;
    case AGG_SUM:
        if (!undefined) {
            if (!isfinite(st.total)) return false;
            *out = json_real(st.total == 0 ? 0.0 : st.total);
        }
        break;
    case AGG_MAX:
    case AGG_MIN:
        if (st.n) {
            if (!isfinite(st.best)) return false;
            *out = json_real(st.best == 0 ? 0.0 : st.best);
        }
        break;
    case AGG_AVG:
        if (st.n) {
            double a = st.total / (double)st.n;
            if (!isfinite(a)) return false;
            *out = json_real(a == 0 ? 0.0 : a);
        }
        break;
    }
    return true;
}

static json_t *eval_function(jeval *E, jnode *n, json_t *input, jframe *env, json_t *applyto, bool has_applyto)
{
    json_t *fused;
    if (n->agg && !has_applyto && eval_aggregate(E, n, input, env, &fused)) return fused;
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
        if (result && result->refcount != 1) {
            /* a $clone that returns a shared value (the input itself, say): the
             * updates below must not mutate what others hold, stable values above all */
            json_t *j = jv_to_json(result);
            jv_decref(result);
            result = crm_deep_copy(j);
            json_decref(j);
        }
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
    case N_NAME: r = lookup(input, n, input == E->input); break;
    case N_STRING:
    case N_NUMBER:
    case N_VALUE: r = jv_incref(n->value); break;
    case N_WILDCARD: r = eval_wildcard(input); break;
    case N_DESCENDANT: r = eval_descendants(input); break;
    case N_PARENT: r = jv_incref(jframe_lookup(E, env, n->slot->label)); break;
    case N_CONDITION: {
        bool own;
        json_t *c = eval_operand(E, n->cond, input, env, &own);
        if (E->failed) break;
        bool t = jv_truthy(c);
        if (own) jv_decref(c);
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
        /* released at the end unless a closure captured it (as a call's frame) */
        jframe *f = call_frame_new(E, env);
        for (int i = 0; i < n->nitems; i++) {
            jv_decref(r);
            r = jeval_node(E, n->items[i], input, f);
            if (E->failed) break;
        }
        jfunc *th = E->failed ? NULL : as_thunk(r);
        if (th) hold_frame(th, f);
        else frame_release(E, f);
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
            r = jv_incref(lookup_var(E, env, n));
            if (jv_is_func(r)) E->nfuncs++;
        }
        break;
    case N_LAMBDA: {
        jfunc *f = jfunc_new(E, F_LAMBDA);
        f->node = n;
        f->input = jv_incref(input);
        f->env = env;
        /* a thunk is run by the trampoline before its frames go (hold_frame) */
        if (n->thunk) own_args(env);
        else capture(env);
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
        r = eval_filter(E, n->preds[i].expr, r, env, false);
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
    if (n->type == N_NAME && n->str) n->slen = (int)strlen(n->str);
    if (n->type == N_VARIABLE && n->str && n->str[0]) n->builtin = jbuiltin_value(n->str);
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
    n->agg = aggregate_kind(n);
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
    E.spare_frames = NULL;
    E.funcs = NULL;
    E.nfuncs = 0;
    E.depth = 0;
    E.nalloc = 0;
    E.cells = 0;
    E.max_string = limits && limits->max_string ? limits->max_string : JSONATA_MAX_STRING;
    E.max_items = limits && limits->max_items ? limits->max_items : JSONATA_MAX_ITEMS;
    jeval *prev_eval = jv_cur_eval;
    jv_cur_eval = &E;
    E.max_depth = 0;
    E.deadline = 0;
    E.ticks = 0;
    E.now_ms = 0;
    E.root = NULL;
    E.input = (json_t *)input;
    E.stable_item = NULL;
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
        jarr *w = (jarr *)jseq_of_stable(in);
        w->outer = 1;
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
        if (r->type == JT_ARR || r->type == JT_TUPLE) r = jv_take_json(r);
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
    for (jframe *f = E.spare_frames; f;) {
        jframe *nx = f->next_alloc;
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
    jv_cur_eval = prev_eval;
    *result = r;
    return rc;
}
