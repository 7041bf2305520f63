/* mqtt_load.c: the load of bench_mqtt.sh. One libmosquitto client publishes
 * N messages ("1".."N") on IN_TOPIC at QoS Q, keeping at most WINDOW of them
 * ahead of what came back; another, subscribed to OUT_TOPIC at QoS Q,
 * counts them. Both sockets on one poll loop (no threads). Prints the
 * messages per second from the first publish to the N-th arrival (or, after
 * 120 s, of what arrived).
 *   mqtt_load PORT QOS N IN_TOPIC OUT_TOPIC [WINDOW]
 * cc -O2 -o mqtt_load mqtt_load.c -lmosquitto */
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long received;
static int subscribed, connected;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_message(struct mosquitto *m, void *o, const struct mosquitto_message *msg)
{
    (void)m, (void)o, (void)msg;
    received++;
}
static void on_subscribe(struct mosquitto *m, void *o, int mid, int n, const int *q)
{
    (void)m, (void)o, (void)mid, (void)n, (void)q;
    subscribed = 1;
}
static void on_connect(struct mosquitto *m, void *o, int rc)
{
    (void)m, (void)o;
    if (rc == 0) connected++;
}

static void pump(struct mosquitto **c, int n, int ms)
{
    struct pollfd p[2];
    for (int i = 0; i < n; i++) {
        p[i].fd = mosquitto_socket(c[i]);
        p[i].events = POLLIN | (mosquitto_want_write(c[i]) ? POLLOUT : 0);
    }
    if (poll(p, (nfds_t)n, ms) < 0) return;
    for (int i = 0; i < n; i++) {
        if (p[i].revents & (POLLIN | POLLERR | POLLHUP)) mosquitto_loop_read(c[i], 64);
        if (p[i].revents & POLLOUT) mosquitto_loop_write(c[i], 64);
        mosquitto_loop_misc(c[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mqtt_load PORT QOS N IN_TOPIC OUT_TOPIC [WINDOW]\n");
        return 2;
    }
    int port = atoi(argv[1]), qos = atoi(argv[2]);
    long n = atol(argv[3]), window = argc > 6 ? atol(argv[6]) : 2000;
    mosquitto_lib_init();
    struct mosquitto *c[2] = {mosquitto_new(NULL, true, NULL), mosquitto_new(NULL, true, NULL)};
    mosquitto_max_inflight_messages_set(c[0], 0);
    for (int i = 0; i < 2; i++) {
        mosquitto_connect_callback_set(c[i], on_connect);
        if (mosquitto_connect(c[i], "127.0.0.1", port, 60)) {
            fprintf(stderr, "mqtt_load: cannot connect\n");
            return 1;
        }
    }
    mosquitto_message_callback_set(c[1], on_message);
    mosquitto_subscribe_callback_set(c[1], on_subscribe);
    double t_end = now() + 10;
    while (connected < 2 && now() < t_end) pump(c, 2, 50);
    mosquitto_subscribe(c[1], NULL, argv[5], qos);
    while (!subscribed && now() < t_end) pump(c, 2, 50);
    long sent = 0;
    char buf[32];
    double t0 = now(), deadline = t0 + 120;
    while (received < n && now() < deadline) {
        while (sent < n && sent - received < window) {
            int len = snprintf(buf, sizeof buf, "%ld", sent + 1);
            if (mosquitto_publish(c[0], NULL, argv[4], len, buf, qos, false)) break;
            sent++;
        }
        pump(c, 2, 100);
    }
    double t1 = now();
    printf("%.0f\n", (double)received / (t1 - t0));
    if (received < n) fprintf(stderr, "mqtt_load: %ld of %ld arrived\n", received, n);
    mosquitto_destroy(c[0]);
    mosquitto_destroy(c[1]);
    return 0;
}
