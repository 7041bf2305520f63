/* bench_split.c: pushes one message holding an array of N numbers (default
 * 1,000,000) through split -> sink in-process, and prints the time taken and
 * the peak resident memory (getrusage), for the DESIGN.md target "peak memory
 * while 1,000,000 messages pass a split <= 128 MB".
 *
 * Usage: bench_split [N] [--join]
 *   --join  split -> join (auto) -> sink instead: the round trip.
 * The sink is a node type registered here, counting what reaches it.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "carmine.h"
#include "runtime.h"

static atomic_long received;

static void sink_input(crm_node *n, json_t *msg)
{
    atomic_fetch_add(&received, 1);
    crm_node_done(n, msg);
    json_decref(msg);
}

static const crm_node_type bench_sink = {
    .abi = CRM_ABI_VERSION,
    .type = "bench-sink",
    .input = sink_input,
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static long peak_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* CPU time of the process (user + system), steadier than wall time on a
 * shared machine. */
static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static const char *flow_split =
    "[{\"id\":\"t\",\"type\":\"tab\",\"label\":\"bench\"},"
    "{\"id\":\"sp\",\"z\":\"t\",\"type\":\"split\",\"splt\":\"\\\\n\",\"spltType\":\"str\",\"arraySplt\":1,"
    "\"arraySpltType\":\"len\",\"stream\":false,\"addname\":\"\",\"x\":1,\"y\":1,\"wires\":[[\"%s\"]]},"
    "{\"id\":\"jn\",\"z\":\"t\",\"type\":\"join\",\"mode\":\"auto\",\"x\":2,\"y\":1,\"wires\":[[\"sink\"]]},"
    "{\"id\":\"sink\",\"z\":\"t\",\"type\":\"bench-sink\",\"x\":3,\"y\":1,\"wires\":[]}]";

int main(int argc, char **argv)
{
    long n = 1000000;
    bool join = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--join")) join = true;
        else n = atol(argv[i]);
    }
    if (crm_register_type(&bench_sink) < 0) return 1;
    json_t *settings = json_pack("{s:i, s:s}", "port", 0, "logLevel", "warn");
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    char text[2048];
    snprintf(text, sizeof text, flow_split, join ? "jn" : "sink");
    json_error_t jerr;
    json_t *flows = json_loads(text, 0, &jerr);
    strbuf problems = SB_INIT;
    if (!flows || crm_runtime_load(rt, flows, 0, &problems) != 0 || crm_runtime_start(rt) != 0) {
        fprintf(stderr, "bench_split: cannot start the flow: %s\n", problems.data ? problems.data : jerr.text);
        return 1;
    }
    json_decref(flows);
    long base = rss_kb();
    json_t *arr = json_array();
    for (long i = 0; i < n; i++) json_array_append_new(arr, json_real((double)i));
    long with_input = rss_kb();
    json_t *msg = json_object();
    json_object_set_new(msg, "payload", arr);
    double t0 = now_ms(), c0 = cpu_ms();
    crm_runtime_send(rt, "sp", msg);
    long expect = join ? 1 : n;
    while (atomic_load(&received) < expect) usleep(1000);
    crm_runtime_wait_idle(rt, 10000);
    double t1 = now_ms(), c1 = cpu_ms();
    printf("%s: %ld numbers, %ld messages out, %.0f ms wall, %.0f ms cpu (%.2f M parts per cpu-second)\n",
           join ? "split->join->sink" : "split->sink", n, (long)atomic_load(&received), t1 - t0, c1 - c0,
           n / (c1 - c0) / 1e3);
    printf("rss: %.1f MB before the input, %.1f MB with the input array, peak %.1f MB\n", base / 1024.0,
           with_input / 1024.0, peak_kb() / 1024.0);
    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    sb_free(&problems);
    return 0;
}
