/* bench_hops.c: what a message hop costs. Builds a chain of N nodes of one
 * kind (link, or a node of tools/bench/hop-kinds.json: junction, change,
 * function, switch, json, template, csv, csv1000, splitjoin) in one flow,
 * pushes M messages through it and reports deliveries per second and
 * nanoseconds per hop, by the wall clock and by the process's CPU time (the
 * machine may be shared: CPU time per hop is what a busy neighbour disturbs
 * least).
 *   bench_hops KIND [N=10] [M=200000] [WINDOW=64 in flight] [loop|thread]
 * INJECT "loop" (the default) measures the way nodered-chain.js does: the
 * sink sends the next message into the chain's first node as each one
 * arrives, on the flow's own thread. "thread" pushes every message from the
 * benchmark's thread instead, so each one also pays a hand-over between
 * threads (inbox lock, wake-up, allocation on one thread and free on the
 * other): a short chain then measures mostly that hand-over.
 * BENCH_SETTINGS (JSON object) adds settings, e.g. {"metrics": true}.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

static atomic_long received;
static long sent, total;       /* "loop" mode: touched by the flow's thread only, once started */
static bool inject_from_loop;

static json_t *kind_payload; /* the kind's own payload, or NULL: a number */
static long kind_hops;       /* deliveries per message sent into the chain */

/* {payload: i, topic: "bench"}, built directly (json_pack would parse its
 * format string for every message); the kind's payload is copied with
 * crm_deep_copy, as the runtime copies values (jansson's json_deep_copy
 * formats each container's address with snprintf for its loop check, about
 * 2,500 instructions an object: nodered-chain.js's JSON.parse costs V8 far
 * less) */
static json_t *bench_msg(long i)
{
    json_t *msg = json_object();
    json_object_set_new_nocheck(msg, "payload", kind_payload ? crm_deep_copy(kind_payload) : json_real((double)i));
    json_object_set_new_nocheck(msg, "topic", json_string_nocheck("bench"));
    return msg;
}

static void sink_input(crm_node *n, json_t *msg)
{
    static crm_node *first;
    json_decref(msg);
    if (inject_from_loop && sent < total) {
        if (!first) first = crm_node_find(n, "n0");
        crm_node_receive(first, bench_msg(sent++));
    }
    atomic_fetch_add(&received, 1);
}

static const crm_node_type sink = {.abi = CRM_ABI_VERSION, .type = "bench sink", .input = sink_input};

/* A chain of n nodes of one kind, each a copy of the kind's node in
 * hop-kinds.json (shared with nodered-chain.js); NULL for an unknown kind. */
static json_t *chain(const json_t *kinds, const char *kind, int n)
{
    const json_t *spec = json_object_get(kinds, kind);
    if (strcmp(kind, "link") != 0 && (!spec || *kind == '_')) return NULL;
    kind_payload = spec ? json_incref(json_object_get(spec, "payload")) : NULL;
    /* "nodes": taken in turn, "inputs": the messages each gets per message sent */
    const json_t *nodes = spec ? json_object_get(spec, "nodes") : NULL;
    const json_t *inputs = spec ? json_object_get(spec, "inputs") : NULL;
    if (nodes && (!json_is_array(nodes) || !json_array_size(nodes))) return NULL;
    kind_hops = 1; /* into the sink */
    for (int i = 0; i < n; i++) {
        long per = 1;
        if (json_is_array(inputs) && json_array_size(inputs)) per = (long)json_number_value(json_array_get(inputs, (size_t)i % json_array_size(inputs)));
        kind_hops += !strcmp(kind, "link") ? 2 : per;
    }
    const json_t *lines = spec ? json_object_get(spec, "payload_lines") : NULL;
    if (lines) { /* a text: the header, then count lines */
        strbuf sb = SB_INIT;
        sb_puts(&sb, json_string_value(json_object_get(lines, "header")));
        for (json_int_t i = 0; i < json_integer_value(json_object_get(lines, "count")); i++)
            sb_puts(&sb, json_string_value(json_object_get(lines, "line")));
        json_decref(kind_payload);
        kind_payload = json_stringn(sb.data, sb.len);
        sb_free(&sb);
    }
    json_t *flows = json_array();
    json_array_append_new(flows, json_pack("{s:s,s:s,s:s}", "id", "t", "type", "tab", "label", "bench"));
    for (int i = 0; i < n; i++) {
        char id[32], next[32];
        snprintf(id, sizeof id, "n%d", i);
        snprintf(next, sizeof next, i + 1 < n ? "n%d" : "sink", i + 1);
        json_t *node;
        if (!strcmp(kind, "link")) {
            /* a link out / link in pair counts as two hops */
            char in[40];
            snprintf(in, sizeof in, "%s-in", id);
            json_array_append_new(flows, json_pack("{s:s,s:s,s:s,s:i,s:i,s:[s],s:[]}", "id", id, "type", "link out", "z", "t",
                                                   "x", 1, "y", 1, "links", in, "wires"));
            node = json_pack("{s:s,s:s}", "id", in, "type", "link in");
        } else {
            node = json_deep_copy(nodes ? json_array_get(nodes, (size_t)i % json_array_size(nodes)) : json_object_get(spec, "node"));
            json_object_set_new(node, "id", json_string(id));
        }
        json_object_set_new(node, "z", json_string("t"));
        json_object_set_new(node, "x", json_real(1));
        json_object_set_new(node, "y", json_real(1));
        json_object_set_new(node, "wires", json_pack("[[s]]", next));
        json_array_append_new(flows, node);
    }
    json_array_append_new(flows, json_pack("{s:s,s:s,s:s,s:i,s:i,s:[]}", "id", "sink", "type", "bench sink", "z", "t", "x",
                                           1, "y", 1, "wires"));
    return flows;
}

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "junction";
    int n = argc > 2 ? atoi(argv[2]) : 10;
    long m = argc > 3 ? atol(argv[3]) : 200000;
    long window = argc > 4 ? atol(argv[4]) : 64;
    inject_from_loop = argc <= 5 || strcmp(argv[5], "thread") != 0;
    if (n < 1 || m < 1 || window < 1) {
        fprintf(stderr, "usage: bench_hops KIND [N>=1] [M>=1] [WINDOW>=1] [loop|thread]\n");
        return 2;
    }
    json_error_t jerr;
    json_t *kinds = json_load_file(HOP_KINDS, 0, &jerr);
    if (!kinds) {
        fprintf(stderr, "bench_hops: %s: %s\n", HOP_KINDS, jerr.text);
        return 1;
    }
    crm_register_type(&sink);
    json_t *settings = json_pack("{s:i}", "port", 0);
    /* BENCH_SETTINGS='{"metrics":true,"nodeInputQueueMaxLength":1000}': more settings (docs/benchmarks.md) */
    json_t *more = getenv("BENCH_SETTINGS") ? json_loads(getenv("BENCH_SETTINGS"), 0, NULL) : NULL;
    if (json_is_object(more)) json_object_update(settings, more);
    json_decref(more);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *flows = chain(kinds, kind, n);
    if (!flows) {
        fprintf(stderr, "bench_hops: no kind %s in %s\n", kind, HOP_KINDS);
        return 2;
    }
    strbuf problems = SB_INIT;
    if (crm_runtime_load(rt, flows, 0, &problems)) {
        fprintf(stderr, "%s", problems.data);
        return 1;
    }
    json_decref(flows);
    crm_runtime_start(rt);
    long hops = kind_hops;
    double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (inject_from_loop) {
        /* the first WINDOW from here; the sink sends each further one */
        total = m;
        sent = window < m ? window : m;
        for (long i = 0; i < sent; i++) crm_runtime_send(rt, "n0", bench_msg(i));
    } else {
        for (long i = 0; i < m; i++) {
            crm_runtime_send(rt, "n0", bench_msg(i));
            /* bounded in flight, like a real source */
            while (i - atomic_load(&received) > window) usleep(20);
        }
    }
    while (atomic_load(&received) < m) usleep(100);
    double dt = now_s() - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    /* the waiting thread above sleeps in usleep: the CPU time is the flow's */
    printf("%s chain of %d: %ld messages, %.0f msgs/s, %.0f deliveries/s, %.0f ns per hop, %.0f ns CPU per hop\n", kind,
           n, m, m / dt, m * (double)hops / dt, dt * 1e9 / (m * (double)hops), cpu * 1e9 / (m * (double)hops));
    crm_runtime_free(rt);
    sb_free(&problems);
    json_decref(kinds);
    json_decref(kind_payload);
    return 0;
}
