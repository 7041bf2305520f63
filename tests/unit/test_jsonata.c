/* test_jsonata.c: unit tests of the JSONata engine's public API: compile once
 * and evaluate many times, undefined versus null, variable bindings, native
 * functions, error codes and positions, limits, and concurrent evaluation of
 * one compiled expression. (The language itself is covered by the official
 * suite: `carmine jsonata --suite`.) */
#include <pthread.h>
#include <stdlib.h>

#include "jsonata.h"
#include "unit.h"
#include "value.h"

static json_t *parse(const char *s)
{
    char err[128];
    return crm_parse(s, strlen(s), err, sizeof err);
}

/* Evaluates expr against JSON text and returns the result as compact JSON
 * text ("undefined" when there is none, "ERR:<code>" on error); malloc'd. */
static char *run(const char *expr, const char *input)
{
    jsonata_error err;
    jsonata *e = jsonata_compile(expr, &err);
    if (!e) {
        char *s = malloc(32);
        snprintf(s, 32, "ERR:%s", err.code);
        return s;
    }
    json_t *in = input ? parse(input) : NULL;
    json_t *r;
    char *out;
    if (jsonata_eval(e, in, NULL, NULL, &r, &err)) {
        out = malloc(32);
        snprintf(out, 32, "ERR:%s", err.code);
    } else {
        out = r ? crm_stringify(r, 0) : strdup("undefined");
        json_decref(r);
    }
    json_decref(in);
    jsonata_free(e);
    return out;
}

#define CHECK_RUN(expr, input, want) do { char *_o = run(expr, input); CHECK_STR(_o, want); free(_o); } while (0)

static void test_basics(void)
{
    CHECK_RUN("1000 / msg.payload", "{\"msg\":{\"payload\":4}}", "250");
    CHECK_RUN("payload.x", "{\"payload\":{\"x\":[1,2]}}", "[1,2]");
    CHECK_RUN("a.b", "{\"a\":[{\"b\":1},{\"b\":2},{\"c\":3}]}", "[1,2]");
    CHECK_RUN("a[b>1].b", "{\"a\":[{\"b\":1},{\"b\":2}]}", "2");
    CHECK_RUN("a[b>1][].b", "{\"a\":[{\"b\":1},{\"b\":2}]}", "[2]");
    CHECK_RUN("\"t=\" & 1.5 & true", NULL, "\"t=1.5true\"");
    CHECK_RUN("x > 3 ? \"big\" : \"small\"", "{\"x\":5}", "\"big\"");
    CHECK_RUN("$sum(a.b)", "{\"a\":[{\"b\":1},{\"b\":2}]}", "3");
    CHECK_RUN("$string(0.1 + 0.2)", NULL, "\"0.3\"");
    CHECK_RUN("a{b: $count($)}", "{\"a\":[{\"b\":\"x\"},{\"b\":\"x\"},{\"b\":\"y\"}]}", "{\"x\":2,\"y\":1}");
    CHECK_RUN("($f := function($n){$n <= 1 ? 1 : $n * $f($n - 1)}; $f(5))", NULL, "120");
    CHECK_RUN("[1..4] ~> $map(function($v){$v * $v})", NULL, "[1,4,9,16]");
    CHECK_RUN("$ ~> |a|{\"c\":1}, [\"b\"]|", "{\"a\":{\"b\":1}}", "{\"a\":{\"c\":1}}");
    CHECK_RUN("$replace(\"abc\", /b/, \"X\")", NULL, "\"aXc\"");
    CHECK_RUN("a.b.%.c", "{\"a\":{\"b\":1,\"c\":2}}", "2");
    CHECK_RUN("$", "[1,2]", "[1,2]");
}

static void test_undefined_null(void)
{
    CHECK_RUN("missing", "{\"a\":1}", "undefined");
    CHECK_RUN("a", "{\"a\":null}", "null");
    CHECK_RUN("a = null", "{\"a\":null}", "true");
    CHECK_RUN("missing = null", "{}", "false");
    CHECK_RUN("$exists(missing)", "{}", "false");
    CHECK_RUN("payload", NULL, "undefined");
    CHECK_RUN("1 + missing", "{}", "undefined");
}

static void test_errors(void)
{
    jsonata_error err;
    CHECK(jsonata_compile("1 +", &err) == NULL);
    CHECK_STR(err.code, "S0207");
    CHECK(jsonata_compile("\"abc", &err) == NULL);
    CHECK_STR(err.code, "S0101");
    CHECK(err.message[0] != 0);
    CHECK_RUN("1 + \"a\"", NULL, "ERR:T2002");
    CHECK_RUN("\"a\" - 1", NULL, "ERR:T2001");
    CHECK_RUN("$number(\"x\")", NULL, "ERR:D3030");
    CHECK_RUN("$sum(\"a\")", NULL, "ERR:T0412");
    CHECK_RUN("$error(\"boom\")", NULL, "ERR:D3137");

    jsonata *e = jsonata_compile("1 + \"a\"", &err);
    json_t *r = NULL;
    CHECK(jsonata_eval(e, NULL, NULL, NULL, &r, &err) == -1);
    CHECK(r == NULL);
    CHECK_STR(err.code, "T2002");
    CHECK(err.position == 3);
    CHECK(strstr(err.message, "right side") != NULL);
    jsonata_free(e);
}

static void test_compile_once(void)
{
    jsonata_error err;
    jsonata *e = jsonata_compile("1000 / msg.payload", &err);
    CHECK(e != NULL);
    for (int i = 1; i <= 1000; i++) {
        json_t *in = json_pack("{s:{s:f}}", "msg", "payload", (double)i);
        json_t *r;
        CHECK(jsonata_eval(e, in, NULL, NULL, &r, &err) == 0);
        CHECK(r && json_is_real(r) && json_real_value(r) == 1000.0 / i);
        json_decref(r);
        json_decref(in);
    }
    jsonata_free(e);
}

static json_t *native_add(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    int *calls = ctx;
    (*calls)++;
    if (nargs < 2 || !json_is_number(args[0]) || !json_is_number(args[1])) {
        snprintf(err->code, sizeof err->code, "X0001");
        snprintf(err->message, sizeof err->message, "add needs two numbers");
        return NULL;
    }
    return json_real(crm_num_value(args[0]) + crm_num_value(args[1]));
}

static json_t *native_ctx(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    (void)err;
    return nargs > 0 && args[0] ? json_incref(args[0]) : json_string("none");
}

static void test_bindings(void)
{
    jsonata_error err;
    int calls = 0;
    jsonata_frame *f = jsonata_frame_new();
    json_t *v = json_real(10);
    jsonata_frame_bind(f, "ten", v);
    json_decref(v);
    jsonata_frame_bind_fn(f, "add", NULL, native_add, &calls);
    jsonata_frame_bind_fn(f, "echo", "<x-:x>", native_ctx, NULL);

    jsonata *e = jsonata_compile("$add($ten, x) & \"/\" & $echo()", &err);
    json_t *in = parse("{\"x\":5}");
    json_t *r;
    CHECK(jsonata_eval(e, in, f, NULL, &r, &err) == 0);
    char *s = r ? crm_stringify(r, 0) : NULL;
    CHECK_STR(s, "\"15/{\\\"x\\\":5}\""); /* $echo() got the context object */
    free(s);
    json_decref(r);
    CHECK(calls == 1);
    jsonata_free(e);

    e = jsonata_compile("$add(\"a\", 1)", &err);
    CHECK(jsonata_eval(e, in, f, NULL, &r, &err) == -1);
    CHECK_STR(err.code, "X0001");
    CHECK_STR(err.message, "add needs two numbers");
    jsonata_free(e);

    e = jsonata_compile("$map([1,2], function($v){$add($v, $ten)})", &err);
    CHECK(jsonata_eval(e, in, f, NULL, &r, &err) == 0);
    s = crm_stringify(r, 0);
    CHECK_STR(s, "[11,12]");
    free(s);
    json_decref(r);
    jsonata_free(e);

    /* a binding shadows a built-in */
    jsonata_frame_bind_fn(f, "string", NULL, native_ctx, NULL);
    e = jsonata_compile("$string(1)", &err);
    CHECK(jsonata_eval(e, in, f, NULL, &r, &err) == 0);
    CHECK(r && json_is_number(r));
    json_decref(r);
    jsonata_free(e);
    json_decref(in);
    jsonata_frame_free(f);
}

static void test_limits(void)
{
    jsonata_error err;
    jsonata *e = jsonata_compile("($f := function($n){$n + $f($n + 1)}; $f(0))", &err);
    jsonata_limits lim = {.max_depth = 200};
    json_t *r;
    CHECK(jsonata_eval(e, NULL, NULL, &lim, &r, &err) == -1);
    CHECK_STR(err.code, "U1001");
    jsonata_free(e);

    e = jsonata_compile("($f := function($n){$f($n + 1)}; $f(0))", &err);
    jsonata_limits t = {.timeout_ms = 50};
    CHECK(jsonata_eval(e, NULL, NULL, &t, &r, &err) == -1);
    CHECK_STR(err.code, "U1001");
    jsonata_free(e);
}

static void test_now(void)
{
    jsonata_error err;
    jsonata *e = jsonata_compile("[$millis(), $millis(), $now() = $now()]", &err);
    json_t *r;
    CHECK(jsonata_eval(e, NULL, NULL, NULL, &r, &err) == 0);
    CHECK(json_array_size(r) == 3);
    CHECK(crm_equal(json_array_get(r, 0), json_array_get(r, 1)));
    CHECK(json_is_true(json_array_get(r, 2)));
    json_decref(r);
    jsonata_free(e);
}

static jsonata *shared_expr;

static void *worker(void *arg)
{
    long id = (long)arg;
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        json_t *in = json_pack("{s:[{s:i},{s:i}]}", "a", "b", (int)id, "b", i);
        crm_normalize_numbers(in);
        json_t *r;
        jsonata_error err;
        if (jsonata_eval(shared_expr, in, NULL, NULL, &r, &err) || !r || crm_num_value(r) != (double)(id + i)) bad++;
        json_decref(r);
        json_decref(in);
    }
    return (void *)bad;
}

static void test_threads(void)
{
    jsonata_error err;
    shared_expr = jsonata_compile("$sum(a.b)", &err);
    pthread_t th[4];
    for (long i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        bad += (long)rv;
    }
    CHECK(bad == 0);
    jsonata_free(shared_expr);
}

int main(void)
{
    test_basics();
    test_undefined_null();
    test_errors();
    test_compile_once();
    test_bindings();
    test_limits();
    test_now();
    test_threads();
    UNIT_DONE();
}
