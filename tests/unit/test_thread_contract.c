/* test_thread_contract.c: the node API's thread contract is checked in
 * builds without NDEBUG: a status, send or timer call for a node from a
 * thread other than its loop, once the flows run, aborts naming the call,
 * where it would otherwise race the loop. The same calls on the loop, and
 * before the flows start, are fine. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "runtime.h"
#include "unit.h"

static void noop_timer(crm_node *n, void *arg)
{
    (void)n;
    (void)arg;
}

static void probe_input(crm_node *n, json_t *msg)
{
    /* on the loop: allowed */
    crm_node_status(n, "green", "dot", "ok");
    crm_timer_start(n, 1000, 0, noop_timer, NULL);
    crm_node_send(n, 0, msg);
}

static int probe_create(crm_node *n, const json_t *cfg)
{
    (void)cfg;
    crm_node_status(n, NULL, NULL, "loading"); /* before the loops run: allowed */
    return 0;
}

static const crm_node_type probe_type = {
    .abi = CRM_ABI_VERSION, .type = "contract-probe", .create = probe_create, .input = probe_input};

/* Runs what(node) in a child process; returns the signal that ended it, or 0. */
static int in_child(crm_node *n, void (*what)(crm_node *))
{
    pid_t pid = fork();
    if (pid == 0) {
        /* the report goes to stderr; keep the test's output clean */
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        what(n);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static void off_loop_status(crm_node *n) { crm_node_status(n, NULL, NULL, "from main"); }
static void off_loop_send(crm_node *n) { crm_node_send(n, 0, json_object()); }
static void off_loop_timer(crm_node *n) { crm_timer_start(n, 10, 0, noop_timer, NULL); }

int main(void)
{
    CHECK(crm_register_type(&probe_type) == 0);
    json_t *settings = json_pack("{s:i}", "port", 0);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *flows = json_loads("[{\"id\":\"t\",\"type\":\"tab\"},"
                               "{\"id\":\"p\",\"type\":\"contract-probe\",\"z\":\"t\",\"wires\":[[]]}]",
                               0, NULL);
    CHECK(crm_runtime_load(rt, flows, 0, NULL) == 0);
    CHECK(crm_runtime_start(rt) == 0);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "x"));
    usleep(20000);
    crm_node *n = crm_runtime_find(rt, "p");
    CHECK(n != NULL);
#ifndef NDEBUG
    if (n) {
        CHECK(in_child(n, off_loop_status) == SIGABRT);
        CHECK(in_child(n, off_loop_send) == SIGABRT);
        CHECK(in_child(n, off_loop_timer) == SIGABRT);
    }
#endif
    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    json_decref(flows);
    UNIT_DONE();
}
