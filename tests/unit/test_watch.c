/* test_watch.c: descriptor watches on a node's loop (crm_watch_fd): the
 * handler runs on the loop when a pipe becomes readable, a handler may send
 * messages and cancel watches (its own included), POLLOUT can be switched on
 * and off, and closing the flow cancels what is left. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "unit.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char got[256];
static size_t ngot;
static int writable_calls, other_calls;
static int pipefd[2], pipe2fd[2];
static crm_watch *wr, *w_other, *w_write;

static void on_readable(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)arg;
    char buf[64];
    ssize_t r;
    if (!(revents & POLLIN)) return;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        pthread_mutex_lock(&mu);
        for (ssize_t i = 0; i < r && ngot < sizeof got - 1; i++) got[ngot++] = buf[i];
        pthread_mutex_unlock(&mu);
        if (memchr(buf, 'x', (size_t)r)) {
            crm_watch_cancel(wr); /* its own watch, from inside its handler */
            crm_watch_cancel(w_other);
            wr = NULL;
        }
    }
}

static void on_other(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)fd;
    (void)revents;
    (void)arg;
    pthread_mutex_lock(&mu);
    other_calls++;
    pthread_mutex_unlock(&mu);
}

static void on_writable(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)fd;
    (void)arg;
    if (!(revents & POLLOUT)) return;
    pthread_mutex_lock(&mu);
    writable_calls++;
    pthread_mutex_unlock(&mu);
    crm_watch_events(w_write, 0); /* once is enough */
}

static void probe_input(crm_node *n, json_t *msg)
{
    const char *what = json_string_value(json_object_get(msg, "payload"));
    if (what && !strcmp(what, "watch")) {
        wr = crm_watch_fd(n, pipefd[0], POLLIN, on_readable, NULL);
        w_other = crm_watch_fd(n, pipe2fd[0], POLLIN, on_other, NULL);
    } else if (what && !strcmp(what, "write")) {
        w_write = crm_watch_fd(n, pipe2fd[1], POLLOUT, on_writable, NULL);
    }
    json_decref(msg);
}

static const crm_node_type probe_type = {.abi = CRM_ABI_VERSION, .type = "watch-probe", .input = probe_input};

static int counter(const int *c)
{
    pthread_mutex_lock(&mu);
    int v = *c;
    pthread_mutex_unlock(&mu);
    return v;
}

static size_t got_len(void)
{
    pthread_mutex_lock(&mu);
    size_t n = ngot;
    pthread_mutex_unlock(&mu);
    return n;
}

int main(void)
{
    CHECK(pipe2(pipefd, O_NONBLOCK) == 0);
    CHECK(pipe2(pipe2fd, O_NONBLOCK) == 0);
    CHECK(crm_register_type(&probe_type) == 0);
    /* port 0: any free port, so that tests running side by side never collide */
    json_t *settings = json_pack("{s:i}", "port", 0);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    json_t *flows = json_loads("[{\"id\":\"t\",\"type\":\"tab\"},"
                               "{\"id\":\"p\",\"type\":\"watch-probe\",\"z\":\"t\",\"wires\":[]}]",
                               0, NULL);
    CHECK(crm_runtime_load(rt, flows, 0, NULL) == 0);
    CHECK(crm_runtime_start(rt) == 0);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "watch"));
    usleep(20000);
    CHECK(write(pipefd[1], "abc", 3) == 3);
    for (int i = 0; i < 200 && got_len() < 3; i++) usleep(5000);
    CHECK(got_len() == 3);
    CHECK(write(pipefd[1], "dex", 3) == 3);
    for (int i = 0; i < 200 && got_len() < 6; i++) usleep(5000);
    CHECK(got_len() == 6);
    pthread_mutex_lock(&mu);
    CHECK(!memcmp(got, "abcdex", 6));
    pthread_mutex_unlock(&mu);
    /* both watches are gone: neither pipe wakes its handler any more */
    CHECK(write(pipefd[1], "zz", 2) == 2);
    CHECK(write(pipe2fd[1], "q", 1) == 1);
    usleep(30000);
    CHECK(got_len() == 6);
    CHECK(counter(&other_calls) == 0);
    /* POLLOUT, switched off by its handler after the first call */
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "write"));
    usleep(50000);
    CHECK(counter(&writable_calls) == 1);
    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    json_decref(flows);
    UNIT_DONE();
}
