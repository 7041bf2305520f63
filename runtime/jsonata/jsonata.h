/* jsonata.h: the public API of Carmine's JSONata 2.x engine (C, over jansson).
 *
 * A compiled expression is immutable and may be evaluated from many threads at
 * once. Values follow runtime/value.h: numbers are json_real, undefined is
 * NULL (distinct from json null). */
#ifndef CRM_JSONATA_H
#define CRM_JSONATA_H

#include <jansson.h>
#include <stddef.h>

typedef struct jsonata jsonata; /* a compiled expression: immutable, usable from many threads at once */

/* code like "S0201", "T2001", "D3030"; message as jsonata-js words it */
typedef struct {
    char code[8];
    int position;
    char message[256];
} jsonata_error;

/* A native function: args borrowed (NULL = undefined); returns a NEW ref or
 * NULL (undefined); on error sets err->code/message and returns NULL. */
typedef json_t *(*jsonata_native)(void *ctx, json_t **args, size_t nargs, jsonata_error *err);

jsonata *jsonata_compile(const char *expr, jsonata_error *err); /* NULL on error */
void jsonata_free(jsonata *e);

typedef struct jsonata_frame jsonata_frame; /* variable bindings for one evaluation */
jsonata_frame *jsonata_frame_new(void);
/* name without $; value borrowed (a reference is taken) */
void jsonata_frame_bind(jsonata_frame *f, const char *name, json_t *value);
/* signature: a jsonata signature like "<s?:x>", or NULL */
void jsonata_frame_bind_fn(jsonata_frame *f, const char *name, const char *signature,
                           jsonata_native fn, void *ctx);
void jsonata_frame_free(jsonata_frame *f);

/* Limits of one evaluation. timeout_ms and max_depth: 0 = none (U1001 when
 * exceeded). max_string (bytes of one string) and max_items (items of one
 * array): 0 = the defaults below (U1003 / U1004 when exceeded); a NULL
 * limits pointer means the defaults too. */
typedef struct {
    double timeout_ms;
    int max_depth;
    size_t max_string;
    size_t max_items;
} jsonata_limits;

#define JSONATA_MAX_STRING ((size_t)128 << 20) /* 128 MiB */
#define JSONATA_MAX_ITEMS ((size_t)10000000)
/* the default deadline of expressions in nodes (setting jsonataTimeout, ms) */
#define JSONATA_DEFAULT_TIMEOUT_MS 5000

/* Evaluates e against input (borrowed, NULL = undefined). Returns 0 with
 * *result a NEW ref (NULL = undefined), or -1 with err. frame and limits may be
 * NULL. */
int jsonata_eval(const jsonata *e, const json_t *input, const jsonata_frame *frame,
                 const jsonata_limits *limits, json_t **result, jsonata_error *err);

/* `carmine jsonata --suite DIR [--expect-failures FILE]`: prints one line per
 * failing case, then "N passed, N failed"; returns 0 when every failure is
 * listed in the expected-failures file. */
int jsonata_run_suite(const char *dir, const char *expected_failures_file);

/* `carmine jsonata EXPR [FILE]`: evaluates against JSON from FILE or stdin and
 * prints the result (2-space indent) or "CODE at position P: message". */
int jsonata_cli(const char *expr, const char *file);

#endif
