/* test_watch.c: descriptor watches on a node's loop (crm_watch_fd): the
 * handler runs on the loop when a pipe becomes readable, a handler may send
 * messages and cancel watches (its own included), POLLOUT can be switched on
 * and off, and closing the flow cancels what is left. The loop waits in
 * epoll, which watches file descriptions rather than numbers: two watches of
 * one descriptor both run, a descriptor closed before its watch is cancelled
 * and its number reused leaves the new watch working (and the old
 * registration, alive through a dup, calls nobody), and a regular file is
 * always ready, as poll(2) reports it. */
#include <fcntl.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static void epoll_step(crm_node *n, const char *what);

static void probe_input(crm_node *n, json_t *msg)
{
    const char *what = json_string_value(json_object_get(msg, "payload"));
    if (what && !strcmp(what, "watch")) {
        wr = crm_watch_fd(n, pipefd[0], POLLIN, on_readable, NULL);
        w_other = crm_watch_fd(n, pipe2fd[0], POLLIN, on_other, NULL);
    } else if (what && !strcmp(what, "write")) {
        w_write = crm_watch_fd(n, pipe2fd[1], POLLOUT, on_writable, NULL);
    } else if (what) {
        epoll_step(n, what);
    }
    json_decref(msg);
}

/* the epoll cases */
static int twin_calls[2], old_calls, new_calls, file_calls;
static int pa[2], pb[2], newwriter = -1, keep = -1, filefd = -1;
static crm_watch *w_twin[2], *w_old, *w_new, *w_file;

static void on_twin(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)fd;
    (void)revents;
    int i = (int)(intptr_t)arg;
    pthread_mutex_lock(&mu);
    twin_calls[i]++;
    pthread_mutex_unlock(&mu);
    crm_watch_cancel(w_twin[i]); /* once each: the data stays in the pipe */
}

static void on_count(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)revents;
    char buf[16];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&mu);
    (*(int *)arg)++;
    pthread_mutex_unlock(&mu);
}

static void on_file(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)n;
    (void)fd;
    (void)arg;
    pthread_mutex_lock(&mu);
    if (revents & POLLIN) file_calls++;
    int c = file_calls;
    pthread_mutex_unlock(&mu);
    if (c >= 3) crm_watch_cancel(w_file);
}

static void epoll_step(crm_node *n, const char *what)
{
    if (!strcmp(what, "twin")) {
        w_twin[0] = crm_watch_fd(n, pa[0], POLLIN, on_twin, (void *)0);
        w_twin[1] = crm_watch_fd(n, pa[0], POLLIN, on_twin, (void *)1);
    } else if (!strcmp(what, "old")) {
        w_old = crm_watch_fd(n, pb[0], POLLIN, on_count, &old_calls);
    } else if (!strcmp(what, "reuse")) {
        /* closed before its watch is cancelled, while a dup keeps the pipe
         * open; the number goes to a new pipe, watched; then the old watch
         * is cancelled */
        int num = pb[0], np[2];
        keep = dup(num);
        close(num);
        if (pipe2(np, O_NONBLOCK) < 0) return;
        if (np[0] != num) {
            dup2(np[0], num);
            close(np[0]);
        }
        pthread_mutex_lock(&mu); /* main reads it through counter() */
        newwriter = np[1];
        pthread_mutex_unlock(&mu);
        w_new = crm_watch_fd(n, num, POLLIN, on_count, &new_calls);
        crm_watch_cancel(w_old);
    } else if (!strcmp(what, "file")) {
        w_file = crm_watch_fd(n, filefd, POLLIN, on_file, NULL);
    }
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

    /* two watches of one descriptor */
    CHECK(pipe2(pa, O_NONBLOCK) == 0);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "twin"));
    usleep(20000);
    CHECK(write(pa[1], "t", 1) == 1);
    for (int i = 0; i < 200 && (counter(&twin_calls[0]) < 1 || counter(&twin_calls[1]) < 1); i++) usleep(5000);
    CHECK(counter(&twin_calls[0]) == 1 && counter(&twin_calls[1]) == 1);

    /* a descriptor number closed and reused before the old watch's cancel */
    CHECK(pipe2(pb, O_NONBLOCK) == 0);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "old"));
    usleep(20000);
    CHECK(write(pb[1], "o", 1) == 1);
    for (int i = 0; i < 200 && counter(&old_calls) < 1; i++) usleep(5000);
    CHECK(counter(&old_calls) == 1);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "reuse"));
    for (int i = 0; i < 200 && counter(&newwriter) < 0; i++) usleep(5000);
    usleep(20000);
    CHECK(counter(&newwriter) >= 0 && write(newwriter, "n", 1) == 1);
    for (int i = 0; i < 200 && counter(&new_calls) < 1; i++) usleep(5000);
    CHECK(counter(&new_calls) == 1);
    /* the old pipe (alive through keep) becomes readable: its registration
     * outlived the watch; nobody is called, and the loop does not spin on it */
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    CHECK(write(pb[1], "o", 1) == 1);
    usleep(100000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    CHECK(counter(&old_calls) == 1);
    CHECK((c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6 < 30); /* ms of CPU in 100 ms */
    CHECK(write(newwriter, "n", 1) == 1);
    for (int i = 0; i < 200 && counter(&new_calls) < 2; i++) usleep(5000);
    CHECK(counter(&new_calls) == 2);

    /* a regular file is always readable, as poll(2) says */
    char tmpl[] = "/tmp/test_watch_XXXXXX";
    filefd = mkstemp(tmpl);
    CHECK(filefd >= 0);
    unlink(tmpl);
    crm_runtime_send(rt, "p", json_pack("{s:s}", "payload", "file"));
    for (int i = 0; i < 200 && counter(&file_calls) < 3; i++) usleep(5000);
    usleep(20000);
    CHECK(counter(&file_calls) == 3);
    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    json_decref(flows);
    close(keep);
    close(filefd);
    UNIT_DONE();
}
