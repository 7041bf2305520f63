/* test_timers.c: loop timers fire in due order and never before their due
 * time, also when a later-armed timer is due first, when the earliest one
 * is cancelled, and for a repeating timer; the loop sleeps on a timerfd, so
 * these pin down how it is armed and re-armed. Timers count from the loop's
 * clock (crm_loop_now): it stands still during a turn and, when another
 * thread woke the loop, stands at the moment of the wake-up call;
 * crm_timer_start_at takes absolute due times on the same clock. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "unit.h"

#define MAX_FIRES 64

typedef struct {
    double due;
    int tag;
} probe_timer;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int fired_tag[MAX_FIRES];
static double fired_early[MAX_FIRES]; /* due - now at the call: > 0 means early */
static int nfired;
static crm_timer *cancel_me;
static double clock_seen[3]; /* the "clock" scenario: loop clock, real clock, loop clock again */

static void record(int tag, double due)
{
    double now = crm_now_ms();
    pthread_mutex_lock(&mu);
    if (nfired < MAX_FIRES) {
        fired_tag[nfired] = tag;
        fired_early[nfired] = due - now;
        nfired++;
    }
    pthread_mutex_unlock(&mu);
}

static void on_fire(crm_node *n, void *arg)
{
    (void)n;
    probe_timer *p = arg;
    record(p->tag, p->due);
    free(p);
}

static probe_timer *arm(crm_node *n, double ms, int tag)
{
    probe_timer *p = malloc(sizeof *p);
    p->tag = tag;
    p->due = crm_loop_now() + ms;
    crm_timer_start(n, ms, 0, on_fire, p);
    return p;
}

static int ticks;
static double tick_due;
static crm_timer *ticker;

static void on_tick(crm_node *n, void *arg)
{
    (void)arg;
    record(100 + ticks, tick_due);
    tick_due += 7;
    if (++ticks == 3) {
        crm_timer_cancel(ticker);
        ticker = NULL;
    }
    (void)n;
}

/* msg.payload names the scenario. */
static void probe_input(crm_node *n, json_t *msg)
{
    const char *what = json_string_value(json_object_get(msg, "payload"));
    if (what && !strcmp(what, "order")) {
        /* armed late-first: each new one is due before the armed head */
        arm(n, 40, 3);
        arm(n, 25, 2);
        arm(n, 3, 1);
        arm(n, 25.5, 22);
    } else if (what && !strcmp(what, "cancel-head")) {
        probe_timer *p = malloc(sizeof *p);
        p->tag = 99;
        p->due = crm_loop_now() + 2;
        cancel_me = crm_timer_start(n, 2, 0, on_fire, p);
        arm(n, 15, 4);
        crm_timer_cancel(cancel_me); /* the timerfd was armed for it */
        free(p);
    } else if (what && !strcmp(what, "clock")) {
        clock_seen[0] = crm_loop_now();
        clock_seen[1] = crm_now_ms();
        while (crm_now_ms() < clock_seen[1] + 0.5) {
        }
        clock_seen[2] = crm_loop_now(); /* the same turn: unchanged */
        arm(n, 10, 5);
    } else if (what && !strcmp(what, "at")) {
        /* absolute due times: one ahead, one already past (fires next turn) */
        probe_timer *p = malloc(sizeof *p), *q = malloc(sizeof *q);
        p->tag = 7;
        p->due = crm_loop_now() + 6;
        q->tag = 6;
        q->due = crm_loop_now() - 50;
        crm_timer_start_at(n, p->due, on_fire, p);
        crm_timer_start_at(n, q->due, on_fire, q);
    } else if (what && !strcmp(what, "repeat")) {
        tick_due = crm_loop_now() + 7;
        ticker = crm_timer_start(n, 7, 7, on_tick, NULL);
    }
    json_decref(msg);
}

static const crm_node_type probe_type = {
    .abi = CRM_ABI_VERSION,
    .type = "timer-probe",
    .input = probe_input,
};

static void wait_fires(int want)
{
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&mu);
        int n = nfired;
        pthread_mutex_unlock(&mu);
        if (n >= want) return;
        usleep(5000);
    }
}

static void reset(void)
{
    pthread_mutex_lock(&mu);
    nfired = 0;
    pthread_mutex_unlock(&mu);
}

int main(void)
{
    CHECK(crm_register_type(&probe_type) == 0);
    /* port 0: any free port, so that tests running side by side never collide */
    json_t *settings = json_pack("{s:i}", "port", 0);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *flows = json_loads("[{\"id\":\"t\",\"type\":\"tab\"},"
                               "{\"id\":\"p\",\"type\":\"timer-probe\",\"z\":\"t\",\"wires\":[]}]",
                               0, NULL);
    CHECK(crm_runtime_load(rt, flows, 0, NULL) == 0);
    CHECK(crm_runtime_start(rt) == 0);

    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "order"));
    wait_fires(4);
    CHECK(nfired == 4);
    int want[] = {1, 2, 22, 3};
    for (int i = 0; i < 4 && i < nfired; i++) {
        CHECK(fired_tag[i] == want[i]);
        CHECK(fired_early[i] <= 0);
    }

    reset();
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "cancel-head"));
    wait_fires(1);
    usleep(30000); /* the cancelled one must not come late either */
    CHECK(nfired == 1);
    CHECK(nfired >= 1 && fired_tag[0] == 4);
    CHECK(nfired >= 1 && fired_early[0] <= 0);

    /* the loop sleeps: the message wakes it, and its clock stands at the
     * call, not at the later moment the loop thread ran */
    reset();
    usleep(20000);
    double before = crm_now_ms();
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "clock"));
    double after = crm_now_ms();
    wait_fires(1);
    CHECK(nfired == 1);
    CHECK(clock_seen[0] >= before && clock_seen[0] <= after);
    CHECK(clock_seen[1] >= clock_seen[0]);
    CHECK(clock_seen[2] == clock_seen[0]);
    CHECK(nfired >= 1 && fired_tag[0] == 5 && fired_early[0] <= 0);
    CHECK(crm_loop_now() >= after); /* off the loop: the real clock */

    reset();
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "at"));
    wait_fires(2);
    CHECK(nfired == 2);
    CHECK(nfired == 2 && fired_tag[0] == 6 && fired_tag[1] == 7);
    CHECK(nfired == 2 && fired_early[1] <= 0);

    reset();
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "repeat"));
    wait_fires(3);
    usleep(30000);
    CHECK(nfired == 3);
    for (int i = 0; i < nfired; i++) {
        CHECK(fired_tag[i] == 100 + i);
        CHECK(fired_early[i] <= 0);
    }

    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    json_decref(flows);
    UNIT_DONE();
}
