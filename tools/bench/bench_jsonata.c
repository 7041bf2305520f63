/* bench_jsonata.c: nanoseconds per evaluation of a few JSONata expressions
 * that Node-RED flows evaluate per message (compile once, evaluate many).
 * Build (from the project root): gcc -O2 -std=c17 -D_GNU_SOURCE -Iruntime -Iruntime/jsonata
 *   tools/bench/bench_jsonata.c runtime/value.c runtime/strbuf.c runtime/jsonata/[a-z_]*.c
 *   -ljansson -lpcre2-8 -lm -o bench_jsonata */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonata.h"
#include "value.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: steadier on a busy machine */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void bench(const char *expr, const json_t *input, long iters)
{
    jsonata_error err;
    jsonata *e = jsonata_compile(expr, &err);
    if (!e) {
        printf("%-40s compile error %s: %s\n", expr, err.code, err.message);
        return;
    }
    json_t *r = NULL;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        if (jsonata_eval(e, input, NULL, NULL, &r, &err)) {
            printf("%-40s error %s: %s\n", expr, err.code, err.message);
            break;
        }
        json_decref(r);
    }
    double ns = (now_ns() - t0) / (double)iters;
    printf("%-40s %10.0f ns/eval\n", expr, ns);
    jsonata_free(e);
}

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    json_t *msg = json_object();
    json_object_set_new(msg, "payload", json_real(42));
    json_object_set_new(msg, "topic", json_string("sensors/temp"));
    json_t *root = json_object();
    json_object_set_new(root, "msg", msg);
    json_object_set_new(root, "payload", json_real(42));

    json_t *big = json_object();
    json_t *arr = json_array();
    for (int i = 0; i < 1000; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_real(i));
        json_object_set_new(o, "b", json_real(i % 17));
        json_object_set_new(o, "name", json_string(i % 2 ? "odd" : "even"));
        json_array_append_new(arr, o);
    }
    json_object_set_new(big, "a", arr);

    bench("1000 / msg.payload", root, 2000000 * scale);
    bench("payload.x", root, 2000000 * scale);
    bench("msg.payload > 40 ? \"hot\" : \"cold\"", root, 1000000 * scale);
    bench("msg.topic & \"/\" & msg.payload", root, 1000000 * scale);
    bench("$uppercase($substringBefore(msg.topic, \"/\")) & \":\" & $string(msg.payload)", root, 500000 * scale);
    bench("msg.topic ~> $split(\"/\") ~> $reverse() ~> $join(\".\")", root, 500000 * scale);
    bench("$sum(a.b)", big, 2000 * scale);
    bench("a[b > 10].id", big, 2000 * scale);
    bench("$count(a[name = \"odd\"])", big, 2000 * scale);
    bench("a{name: $sum(b)}", big, 500 * scale);
    bench("$map(a, function($v){$v.b * 2})", big, 500 * scale);
    json_decref(root);
    json_decref(big);
    return 0;
}
