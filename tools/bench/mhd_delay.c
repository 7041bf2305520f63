/* mhd_delay.c: the ceiling for the article's API flow on this machine. A bare
 * libmicrohttpd server that answers every GET with a millisecond timestamp
 * 100 ms after the request arrived, built the way Carmine answers: the
 * connection is suspended, a timer thread resumes it when due, the server
 * thread then queues the answer. No flow, no messages: what is left is
 * libmicrohttpd, the kernel and the wake-ups.
 *
 *   gcc -O2 -o mhd_delay tools/bench/mhd_delay.c -lmicrohttpd -lpthread
 *   ./mhd_delay PORT [DELAY_MS]
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* Every request waits the same time, so arrival order is due order: a ring
 * of pending connections, the head being the next due. */
#define RING 65536

typedef struct {
    struct MHD_Connection *conn;
    double due;
} pending;

static pending ring[RING];
static unsigned head, tail;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static double delay_ms = 100;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

enum { FRESH, WAITING };

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
    static int fresh = FRESH, waiting = WAITING;
    if (*state == NULL) { /* headers only: wait for the end of the request */
        *state = &fresh;
        return MHD_YES;
    }
    if (*state == &fresh) {
        *state = &waiting;
        MHD_suspend_connection(c);
        pthread_mutex_lock(&mu);
        if (tail - head < RING) ring[tail++ % RING] = (pending){c, now_ms() + delay_ms};
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        return MHD_YES;
    }
    char body[32];
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    int n = snprintf(body, sizeof body, "%lld", (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000);
    struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void *timer_thread(void *arg)
{
    (void)arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    pthread_mutex_lock(&mu);
    for (;;) {
        while (head == tail) pthread_cond_wait(&cv, &mu);
        double wait = ring[head % RING].due - now_ms();
        if (wait > 0) {
            pthread_mutex_unlock(&mu);
            struct timespec ts = {(time_t)(wait / 1000), (long)((wait - (time_t)(wait / 1000) * 1000.0) * 1e6)};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&mu);
            continue;
        }
        struct MHD_Connection *c = ring[head++ % RING].conn;
        pthread_mutex_unlock(&mu);
        MHD_resume_connection(c);
        pthread_mutex_lock(&mu);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [DELAY_MS]\n", argv[0]);
        return 2;
    }
    if (argc > 2) delay_ms = atof(argv[2]);
    /* blocked before any thread starts, so that sigwait below takes them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO,
                         (uint16_t)atoi(argv[1]), NULL, NULL, on_request, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_delay: cannot listen on port %s\n", argv[1]);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, timer_thread, NULL);
    int sig;
    sigwait(&set, &sig);
    _exit(0); /* suspended connections would make MHD_stop_daemon abort */
}
