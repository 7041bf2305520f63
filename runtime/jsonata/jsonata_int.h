/* jsonata_int.h: internals shared by the JSONata engine's files (parser,
 * evaluator, signatures, built-in functions). Not a public header.
 *
 * Runtime values are json_t pointers. Plain JSON values are jansson values
 * (numbers always json_real); NULL is JSONata's "undefined". Three extra kinds
 * live in the same json_t header with type numbers jansson does not use:
 *
 *  - JT_ARR: an array carrying JSONata flags (a sequence, a constructed array
 *    marked "cons", keepSingleton, outerWrapper, tupleStream). Refcounted
 *    with jv_incref/jv_decref; never stored inside a jansson container
 *    (jv_to_json converts it first). A "borrowed" array holds its items
 *    without references: they are "stable" values, i.e. the evaluation's
 *    input or values reached from it by navigation, which outlive the
 *    evaluation and are never mutated by it (jansson's atomic refcounts made
 *    incref/decref of every navigated item the main cost of paths over big
 *    arrays). Pushing an owned value into a borrowed array first takes
 *    references on the items it holds (jarr_own).
 *  - JT_TUPLE: one tuple of a tuple stream (focus value '@' plus bindings).
 *  - JT_FUNC: a function value (lambda, built-in, native, partial,
 *    transform, regex matcher). Functions are owned by the evaluation that
 *    created them (or are static built-ins): their refcount is jansson's
 *    "static" marker so they may sit inside jansson containers; the final
 *    result is scrubbed of them.
 */
#ifndef CRM_JSONATA_INT_H
#define CRM_JSONATA_INT_H

#include <math.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "jsonata.h"
#include "strbuf.h"
#include "value.h"

#define JT_ARR ((json_type)40)
#define JT_TUPLE ((json_type)41)
#define JT_FUNC ((json_type)42)

/* Arrays ------------------------------------------------------------------ */

typedef struct jarr {
    json_t h;
    size_t n, cap;
    json_t **v;          /* owned references, unless borrowed */
    unsigned char borrowed; /* items are parts of the evaluation's input (see below): no references held */
    unsigned char seq;   /* a JSONata sequence (not a JSON array) */
    unsigned char cons;  /* built by an array constructor at a path end */
    unsigned char keep;  /* keepSingleton */
    unsigned char outer; /* outerWrapper */
    unsigned char tuple; /* tupleStream: items are JT_TUPLE */
} jarr;

/* Tuples ------------------------------------------------------------------ */

typedef struct {
    const char *name; /* borrowed from the AST ("@" for the focus) */
    json_t *val;      /* owned */
} jbinding;

typedef struct jtuple {
    json_t h;
    int n, cap;
    jbinding *b;
} jtuple;

/* Signatures -------------------------------------------------------------- */

typedef struct jparam {
    char type;          /* s n b l o a f j x, or '(' for a choice */
    char choice[16];    /* allowed symbols for a choice */
    char subtype;       /* a<s>: the item type, 0 if none */
    bool context;       /* '-': use the context when missing */
    char regex[24];
    char set[16];       /* the symbols the parameter accepts (from regex) */
    unsigned mask;      /* the same as bits (1 << (symbol - 'a')) */
    char quant;         /* 0 (exactly one), '?' or '+' */
} jparam;

typedef struct jsig {
    int nparams;
    jparam p[12];
    pcre2_code *re;     /* the whole signature as jsonata-js's regex */
    bool slow;          /* a parameter the direct matcher does not handle: use re */
    char *text;
} jsig;

/* AST --------------------------------------------------------------------- */

typedef enum {
    N_PATH = 1, N_BINARY, N_NEG, N_ARRAY, N_OBJECT, N_NAME, N_STRING, N_NUMBER, N_VALUE,
    N_WILDCARD, N_DESCENDANT, N_PARENT, N_CONDITION, N_COALESCE, N_ELVIS, N_BLOCK, N_BIND,
    N_REGEX, N_FUNCTION, N_PARTIAL, N_VARIABLE, N_LAMBDA, N_APPLY, N_SORT, N_TRANSFORM,
    N_PLACEHOLDER,
    /* raw parse-tree only */
    R_BINARY, R_UNARY, R_OPERATOR, R_END
} ntype;

typedef enum {
    OP_NONE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_CONCAT, OP_AND, OP_OR, OP_RANGE, OP_IN
} binop;

typedef struct jnode jnode;

typedef struct jslot {
    char label[16];
    int level;
    int index;
} jslot;

typedef struct {
    bool is_index; /* '#$var' stage, else a filter */
    jnode *expr;
    const char *var;
    int position;
} jstage;

typedef struct {
    jnode **keys, **vals;
    int n;
    int position;
} jgroup;

typedef struct {
    jnode *expr;
    bool descending;
} jsortterm;

struct jnode {
    ntype type;
    binop op;
    int position;
    const char *str;    /* name, string, variable name, operator text */
    json_t *value;      /* literal value (owned) */
    double num;
    jnode *lhs, *rhs;   /* binary, bind, apply; transform: pattern/update */
    jnode *del;         /* transform delete clause */
    jnode *cond, *then, *els;
    jnode *proc;        /* function / partial */
    jnode **items;      /* path steps, array items, block items, call args */
    int nitems;
    jnode **keys, **vals; /* object constructor (raw and processed) */
    int npairs;
    jnode *body;        /* lambda */
    const char **params; /* lambda parameter names */
    int nparams;
    jsig *sig;
    bool thunk;
    jstage *preds;      /* predicates (non-step expression) */
    int npreds;
    jstage *stages;     /* stages (a step inside a path) */
    int nstages;
    jgroup *group;
    jsortterm *terms;
    int nterms;
    const char *focus, *index;
    jslot *ancestor;    /* slot this step binds as a parent */
    jslot *slot;        /* parent operator: the slot it reads */
    jslot **seeking;    /* ancestry slots still unresolved */
    int nseeking, capseeking;
    bool keep_array, keep_singleton_array, consarray, tuple;
    bool simple;        /* path of plain names (set after parsing) */
    int slen;           /* N_NAME: strlen(str) (set after parsing) */
    json_t *builtin;    /* N_VARIABLE: the built-in function of that name, if any (set after parsing) */
    int agg;            /* N_FUNCTION: an aggregate over a simple path (see eval_aggregate) */
    int key_hint;       /* N_NAME: 1 + the position the key had in the last object it was found in
                           (a hint shared by all evaluations: relaxed atomic accesses) */
    pcre2_code *re;     /* regex literal */
    const char *re_src;
    /* raw parse tree */
    const char *id;     /* symbol id for raw nodes */
    int lbp;
    int height;         /* levels of the raw tree below and including this node (0: not known) */
    int nchecked;       /* N_PATH: steps already checked by the '.' pass (keeps it linear) */
};

/* A compiled expression */
struct jsonata {
    jnode *ast;
    void *arena;        /* every AST allocation */
    char *src;
};

/* Compile-time arena */
void *ja_alloc(void **arena, size_t n);
char *ja_strndup(void **arena, const char *s, size_t n);
void ja_arena_free(void *arena);
json_t *ja_track_json(void **arena, json_t *v);        /* freed with the arena */
pcre2_code *ja_track_re(void **arena, pcre2_code *re); /* freed with the arena */

/* Marks paths the evaluator may walk directly (jsonata_eval.c). */
void jsonata_mark_simple(jnode *n, int depth);
/* Parser: returns NULL and fills err on failure. */
jnode *jsonata_parse(const char *src, void **arena, jsonata_error *err);

/* Signatures */
jsig *jsig_parse(const char *text, void **arena, int *errpos, jsonata_error *err);
void jsig_free(jsig *s);

/* Errors: set code/message (printf-style message) on err. */
void jerr_set(jsonata_error *err, const char *code, int position, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The jsonata-js message template for a code with {{token}}, {{value}},
 * {{index}} substituted from the given parts (NULL = absent). */
void jerr_std(jsonata_error *err, const char *code, int position, const char *token,
              const json_t *value, int index);

/* Runtime ----------------------------------------------------------------- */

typedef struct jframe jframe;
typedef struct jeval jeval;
typedef struct jfunc jfunc;

typedef json_t *(*jbuiltin_fn)(jeval *E, json_t **args, int nargs, json_t *context);

typedef struct {
    const char *name;
    const char *sig;
    jbuiltin_fn fn;
    int arity_hint;     /* number of declared parameters (for $map etc.) */
} jbuiltin_def;

typedef enum { F_LAMBDA, F_BUILTIN, F_NATIVE, F_PARTIAL, F_TRANSFORM, F_REGEX, F_CHAIN } fkind;

struct jfunc {
    json_t h;
    fkind kind;
    jsig *sig;
    int arity;
    /* lambda */
    jnode *node;
    json_t *input;      /* captured context (owned) */
    jframe *env;
    /* built-in */
    const jbuiltin_def *def;
    /* native (API) */
    jsonata_native native;
    void *nctx;
    const char *name;
    /* partial: target + args (placeholder slots are JA_PLACEHOLDER) */
    jfunc *target;
    json_t **pargs;
    int npargs;
    /* chain f ~> g */
    jfunc *f1, *f2;
    /* regex */
    pcre2_code *re;
    const char *re_src;
    int position;
    void *sig_arena;    /* native: owns sig */
    jframe *held;       /* thunk: call and block frames released once the trampoline has used it */
    jfunc *next_alloc;  /* evaluation-owned list */
};

extern json_t *const JA_PLACEHOLDER;

struct jframe {
    jframe *parent;
    int n, cap;
    jbinding *b;        /* inl until it outgrows it */
    jbinding inl[2];
    bool captured;      /* a closure refers to it: keep until the end */
    unsigned borrowed;  /* bit i: binding i holds no reference (a call's argument, alive during
                           the call); references are taken when a closure captures the frame */
    jframe *next_alloc;
};

struct jsonata_frame {
    int n, cap;
    struct {
        char *name;
        json_t *val;    /* owned; a JT_FUNC (F_NATIVE) for bound functions */
    } *b;
};

struct jeval {
    jsonata_error *err;
    bool failed;
    const jsonata_frame *user;
    jframe *global;     /* holds $$ and user bindings */
    jframe *frames;     /* every frame allocated (freed at the end) */
    jframe *spare_frames; /* released call frames, for reuse */
    jfunc *funcs;       /* every function allocated */
    int nfuncs;
    int depth, max_depth;
    size_t nalloc;      /* frames and functions kept until the end (bounded: see count_alloc) */
    size_t max_string;  /* bytes of one string (U1003) */
    size_t max_items;   /* items of one array (U1004) */
    size_t cells;       /* item slots of the arrays alive now (U1004 past 3 * max_items) */
    double deadline;    /* ms since epoch; 0 none */
    unsigned ticks;
    double now_ms;      /* $now/$millis timestamp, taken on first use */
    json_t *root;
    json_t *input;      /* the input as given: a stable value (see JT_ARR) */
    json_t *stable_item; /* a stable value met lately (see jeval_stable) */
    char *stack_base;   /* address of a local in jsonata_eval */
    jframe *cur_env;    /* environment of the function call in progress ($eval) */
    void **arenas;      /* ASTs compiled by $eval, freed at the end */
    int narenas;
};

/* value helpers */
static inline bool jv_is_arr(const json_t *v) { return v && (json_is_array(v) || v->type == JT_ARR); }
static inline bool jv_is_seq(const json_t *v) { return v && v->type == JT_ARR && ((const jarr *)v)->seq; }
static inline bool jv_is_func(const json_t *v) { return v && v->type == JT_FUNC; }
static inline bool jv_is_num(const json_t *v) { return v && json_is_number(v); }
static inline bool jv_is_str(const json_t *v) { return v && json_is_string(v); }
static inline bool jv_is_obj(const json_t *v) { return v && json_is_object(v); }
static inline size_t jv_len(const json_t *v)
{
    return v->type == JT_ARR ? ((const jarr *)v)->n : json_array_size(v);
}
static inline json_t *jv_at(const json_t *v, size_t i)
{
    if (v->type == JT_ARR) return i < ((const jarr *)v)->n ? ((const jarr *)v)->v[i] : NULL;
    return json_array_get(v, i);
}
static inline double jv_num(const json_t *v) { return crm_num_value(v); }

void jv_free_custom(json_t *v);
static inline json_t *jv_incref(json_t *v)
{
    if (v && v->refcount != (size_t)-1) __atomic_add_fetch(&v->refcount, 1, __ATOMIC_ACQUIRE);
    return v;
}
static inline void jv_decref(json_t *v)
{
    if (!v || v->refcount == (size_t)-1) return;
    if ((int)v->type >= (int)JT_ARR) {
        if (__atomic_sub_fetch(&v->refcount, 1, __ATOMIC_RELEASE) == 0) jv_free_custom(v);
    } else {
        json_decref(v);
    }
}

/* The evaluation running on this thread (for checks deep in value helpers). */
extern __thread jeval *jv_cur_eval;
/* U1003 when a string of len bytes would pass the evaluation's limit; returns false then. */
bool jv_string_fits(jeval *E, size_t len);
/* A lower bound of the bytes v takes as JSON text, stopping early once past limit. */
size_t jv_text_size(const json_t *v, size_t limit);

jarr *jarr_new(size_t cap);
json_t *jseq_new(void);                  /* empty sequence */
json_t *jseq_of(json_t *item);           /* singleton sequence, steals item */
json_t *jseq_borrowed(void);             /* empty borrowed sequence (for stable items) */
json_t *jseq_of_stable(json_t *item);    /* borrowed singleton sequence of a stable value */
void jarr_grow(jarr *a); /* at the evaluation's max_items it fails with U1004 and does not grow */
void jarr_own(jarr *a);                  /* takes references on the items; clears borrowed */
static inline void jarr_push(jarr *a, json_t *v) /* steals v (stored even when NULL) */
{
    if (a->borrowed) jarr_own(a);
    if (a->n == a->cap) {
        jarr_grow(a);
        if (a->n == a->cap) { /* over the limit: the evaluation has failed */
            jv_decref(v);
            return;
        }
    }
    a->v[a->n++] = v;
}
static inline void jarr_push_ref(jarr *a, json_t *v) { jarr_push(a, jv_incref(v)); }
/* v is stable (see JT_ARR above): no reference is needed in a borrowed array */
static inline void jarr_push_stable(jarr *a, json_t *v)
{
    if (a->n == a->cap) {
        jarr_grow(a);
        if (a->n == a->cap) return; /* over the limit: the evaluation has failed */
    }
    if (!a->borrowed) jv_incref(v);
    a->v[a->n++] = v;
}
/* whether the items of a sequence are stable values */
static inline bool jseq_stable(const json_t *s) { return s && s->type == JT_ARR && ((const jarr *)s)->borrowed; }
/* A plain JSON value (jansson only), new ref; functions stay as they are. */
json_t *jv_to_json(json_t *v);
json_t *jv_take_json(json_t *v); /* jv_to_json that consumes v (moving items it alone holds) */
/* A number result: D1001 when not finite. */
json_t *jv_number(jeval *E, double d, int position);
json_t *jv_str(const char *s, size_t n);
json_t *jv_strz(const char *s);
bool jv_deep_equal(const json_t *a, const json_t *b);
bool jv_truthy(const json_t *v);      /* $boolean semantics; false for undefined */
bool jv_is_arr_of_str(const json_t *v);
bool jv_is_arr_of_num(const json_t *v);
/* an integral number below 1e15 in decimal as $string prints it (buf: 24 bytes); returns the length */
size_t jv_fmt_integer(double d, char *buf);
/* $string semantics (JSON.stringify for objects, JS numbers). malloc'd or NULL on error. */
char *jv_stringify(jeval *E, const json_t *v, bool pretty);
/* fn.append: a plain array of a's then b's items (undefined-tolerant); steals both */
json_t *jv_append(json_t *a, json_t *b);

/* Evaluation */
json_t *jeval_node(jeval *E, jnode *n, json_t *input, jframe *env);
json_t *japply(jeval *E, json_t *fn, json_t **args, int nargs, json_t *context, int position);
int jfunc_arity(const json_t *fn);
jframe *jframe_new(jeval *E, jframe *parent);
void jframe_bind(jframe *f, const char *name, json_t *v); /* steals v */
json_t *jframe_lookup(jeval *E, jframe *f, const char *name); /* borrowed */
jfunc *jfunc_new(jeval *E, fkind kind);
bool jeval_fail(jeval *E, const char *code, int position, const char *token, const json_t *value);

/* Built-ins */
const jbuiltin_def *jbuiltin_find(const char *name);
json_t *jbuiltin_value(const char *name); /* static function value or NULL */
json_t *jfn_regex_exec(jeval *E, jfunc *re, const char *s, size_t len, size_t from);
/* validates args against a signature; returns the validated args (owned refs) in buf when it has
 * room for nparams + nargs, else in a malloc'd array, or NULL on error */
json_t **jsig_validate(jeval *E, const jsig *sig, json_t **args, int nargs, json_t *context, int *out_n,
                       const char *fname, int position, json_t **buf, int bufn);
json_t *jfn_eval_expr(jeval *E, const char *expr, json_t *focus, json_t *context);
double jnow_ms(void);
double jeval_now(jeval *E); /* the evaluation's fixed timestamp */

/* UTF-8 / UTF-16 helpers (JS string semantics) */
size_t ju_len16(const char *s, size_t n);
/* byte offset of UTF-16 index i (clamped) */
size_t ju_off16(const char *s, size_t n, size_t i);

#endif
