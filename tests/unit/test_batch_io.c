/* test_batch_io.c: what the batched socket I/O of a loop turn rests on.
 *  - crm_loop_at_turn_end: the hook runs once, on the loop, after the
 *    deliveries of its turn (those they queued included), before the loop
 *    polls again; a thread that runs no loop cannot register one.
 *  - crm_uring_run (runtime/net/uring.c): sends and receives on several
 *    sockets in one call, each as send(2)/recv(2) with MSG_DONTWAIT would:
 *    bytes, -EAGAIN with nothing to read, 0 at the peer's end, -EPIPE on a
 *    socket the peer closed. Skipped where io_uring is not there. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "net/uring.h"
#include "runtime.h"
#include "unit.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int runs, hook_calls, runs_at_hook = -1, registered = -1, hook_arg_ok = -1;

static void more(crm_node *n, void *arg)
{
    (void)n;
    (void)arg;
    pthread_mutex_lock(&mu);
    runs++;
    pthread_mutex_unlock(&mu);
}

static void hook(void *arg)
{
    pthread_mutex_lock(&mu);
    hook_calls++;
    runs_at_hook = runs;
    hook_arg_ok = arg == &hook_calls; /* checked on the main thread: CHECK's counters are not shared */
    pthread_mutex_unlock(&mu);
}

static void probe_input(crm_node *n, json_t *msg)
{
    bool ok = crm_loop_at_turn_end(hook, &hook_calls);
    pthread_mutex_lock(&mu);
    registered = ok;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 3; i++) crm_node_post(n, more, NULL); /* run later in the same turn */
    json_decref(msg);
}

static const crm_node_type probe_type = {.abi = CRM_ABI_VERSION, .type = "turn-probe", .input = probe_input};

static int get(const int *v)
{
    pthread_mutex_lock(&mu);
    int x = *v;
    pthread_mutex_unlock(&mu);
    return x;
}

static void uring_cases(void)
{
    int a[2], b[2], c[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, c) == 0);
    close(c[1]); /* c's peer is gone */
    crm_uring_op ops[3] = {
        {a[0], CRM_URING_SEND, "hello", 5, 99, 0},
        {b[0], CRM_URING_SEND, "worlds", 6, 99, 0},
        {c[0], CRM_URING_SEND, "x", 1, 99, 0},
    };
    if (!crm_uring_run(ops, 3)) {
        printf("# io_uring not available here: its cases skipped\n");
        close(a[0]), close(a[1]), close(b[0]), close(b[1]), close(c[0]);
        return;
    }
    CHECK(ops[0].res == 5);
    CHECK(ops[1].res == 6);
    CHECK(ops[2].res == -EPIPE);
    close(b[0]); /* b: its data, then the end */
    char ba[16] = {0}, bb[16] = {0}, bc[16] = {0}, bd[16] = {0};
    crm_uring_op r[3] = {
        {a[1], CRM_URING_RECV, ba, sizeof ba, 99, 0},
        {b[1], CRM_URING_RECV, bb, sizeof bb, 99, 0},
        {a[0], CRM_URING_RECV, bc, sizeof bc, 99, 0}, /* nothing sent that way */
    };
    CHECK(crm_uring_run(r, 3));
    CHECK(r[0].res == 5 && !memcmp(ba, "hello", 5));
    CHECK(r[1].res == 6 && !memcmp(bb, "worlds", 6));
    CHECK(r[2].res == -EAGAIN);
    crm_uring_op e = {b[1], CRM_URING_RECV, bd, sizeof bd, 99, 0};
    CHECK(crm_uring_run(&e, 1));
    CHECK(e.res == 0);
    /* many at once: more than fit are refused, not cut */
    crm_uring_op many[CRM_URING_MAX + 1];
    for (int i = 0; i <= CRM_URING_MAX; i++) many[i] = (crm_uring_op){a[0], CRM_URING_SEND, "y", 1, 99, 0};
    CHECK(!crm_uring_run(many, CRM_URING_MAX + 1));
    CHECK(crm_uring_run(many, CRM_URING_MAX));
    int sent = 0;
    for (int i = 0; i < CRM_URING_MAX; i++) sent += many[i].res == 1;
    CHECK(sent == CRM_URING_MAX);
    char big[CRM_URING_MAX + 8];
    CHECK(recv(a[1], big, sizeof big, MSG_DONTWAIT) == CRM_URING_MAX);
    close(a[0]), close(a[1]), close(b[1]), close(c[0]);

    /* a registered descriptor (a fixed file): the same sends and receives
     * through its slot; unregistered, then closed, the peer sees the end
     * (the ring let its reference go) */
    int d[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, d) == 0);
    crm_uring_file f = {0, 0};
    if (!crm_uring_register(d[0], &f)) {
        printf("# fixed files not available here: their cases skipped\n");
        CHECK(f.slot == 0 && crm_uring_fixed(&f) == 0);
        close(d[0]), close(d[1]);
        return;
    }
    CHECK(crm_uring_fixed(&f) > 0);
    char bf[16] = {0};
    crm_uring_op fs[2] = {
        {d[0], CRM_URING_SEND, "fixed", 5, 99, crm_uring_fixed(&f)},
        {d[1], CRM_URING_SEND, "back", 4, 99, 0},
    };
    CHECK(crm_uring_run(fs, 2));
    CHECK(fs[0].res == 5 && fs[1].res == 4);
    crm_uring_op fr = {d[0], CRM_URING_RECV, bf, sizeof bf, 99, crm_uring_fixed(&f)};
    CHECK(crm_uring_run(&fr, 1));
    CHECK(fr.res == 4 && !memcmp(bf, "back", 4));
    CHECK(recv(d[1], bf, sizeof bf, MSG_DONTWAIT) == 5 && !memcmp(bf, "fixed", 5));
    crm_uring_unregister(&f);
    CHECK(f.slot == 0 && crm_uring_fixed(&f) == 0);
    close(d[0]);
    CHECK(recv(d[1], bf, sizeof bf, MSG_DONTWAIT) == 0);
    close(d[1]);
    /* the slot is taken again by the next registration */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, d) == 0);
    CHECK(crm_uring_register(d[1], &f));
    crm_uring_op g = {d[1], CRM_URING_SEND, "z", 1, 99, crm_uring_fixed(&f)};
    CHECK(crm_uring_run(&g, 1) && g.res == 1);
    CHECK(recv(d[0], bf, sizeof bf, MSG_DONTWAIT) == 1 && bf[0] == 'z');
    crm_uring_unregister(&f);
    close(d[0]), close(d[1]);
}

int main(void)
{
    CHECK(!crm_loop_at_turn_end(hook, NULL)); /* not a loop's thread */
    CHECK(crm_register_type(&probe_type) == 0);
    json_t *settings = json_pack("{s:i}", "port", 0);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *flows = json_loads("[{\"id\":\"t\",\"type\":\"tab\"},"
                               "{\"id\":\"p\",\"type\":\"turn-probe\",\"z\":\"t\",\"wires\":[]}]",
                               0, NULL);
    CHECK(crm_runtime_load(rt, flows, 0, NULL) == 0);
    CHECK(crm_runtime_start(rt) == 0);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "go"));
    for (int i = 0; i < 400 && get(&hook_calls) < 1; i++) usleep(5000);
    usleep(20000);
    CHECK(get(&registered) == 1);
    CHECK(get(&hook_calls) == 1);
    CHECK(get(&runs_at_hook) == 3); /* after the deliveries queued in the turn */
    CHECK(get(&hook_arg_ok) == 1);
    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    json_decref(flows);
    uring_cases();
    UNIT_DONE();
}
