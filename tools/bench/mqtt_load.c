/* mqtt_load.c: the load of bench_mqtt.sh. One MQTT 3.1.1 connection
 * publishes N messages ("1".."N") on IN_TOPIC at QoS Q, keeping at most
 * WINDOW of them ahead of what came back; another, subscribed to OUT_TOPIC
 * at QoS Q, counts them (and acknowledges them at QoS 1). Both sockets on
 * one poll loop, no threads, no MQTT library: publishes go out many per
 * write and arrivals are cut out of whatever one read returns, so the load
 * program is not what limits the rate (libmosquitto made five system calls
 * per message); when few messages came back it sleeps 0.2 ms before the
 * next poll, so that each wake-up has many to handle. Prints the messages
 * per second from the first publish to the N-th arrival (or, after 120 s, of what arrived), then the CPU time
 * (user + system, seconds) this program spent, so a run can show that the
 * load is not what limits it.
 *   mqtt_load PORT QOS N IN_TOPIC OUT_TOPIC [WINDOW]
 * cc -O2 -o mqtt_load mqtt_load.c */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct {
    unsigned char *d;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 4096;
        b->d = realloc(b->d, b->cap);
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

static void put_header(buf *b, int byte0, size_t rl)
{
    unsigned char h[5];
    int n = 0;
    h[n++] = (unsigned char)byte0;
    do {
        unsigned char x = rl & 0x7F;
        rl >>= 7;
        h[n++] = (unsigned char)(x | (rl ? 0x80 : 0));
    } while (rl);
    put(b, h, (size_t)n);
}

static void put_str(buf *b, const char *s)
{
    size_t n = strlen(s);
    unsigned char l[2] = {(unsigned char)(n >> 8), (unsigned char)n};
    put(b, l, 2);
    put(b, s, n);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t k = write(fd, b->d + off, b->len - off);
        if (k <= 0) {
            perror("mqtt_load: write");
            exit(1);
        }
        off += (size_t)k;
    }
    b->len = 0;
}

static void send_connect(int fd, const char *id)
{
    buf b = {0}, body = {0};
    put_str(&body, "MQTT");
    unsigned char lv[4] = {4, 0x02, 0, 60};
    put(&body, lv, 4);
    put_str(&body, id);
    put_header(&b, 0x10, body.len);
    put(&b, body.d, body.len);
    send_all(fd, &b);
    free(b.d);
    free(body.d);
}

/* A connection's received bytes, cut into packets. */
typedef struct {
    int fd;
    buf in;
} conn;

/* Reads what is there; calls fn for each whole packet. -1 when closed. */
static int pump(conn *c, void (*fn)(int type, const unsigned char *body, size_t len, void *arg), void *arg)
{
    unsigned char tmp[262144];
    ssize_t k = read(c->fd, tmp, sizeof tmp);
    if (k <= 0) return -1;
    put(&c->in, tmp, (size_t)k);
    size_t off = 0;
    for (;;) {
        size_t avail = c->in.len - off, rl = 0;
        int i = 1, mul = 0;
        if (avail < 2) break;
        for (; i < 5 && (size_t)i < avail; i++) {
            rl |= (size_t)(c->in.d[off + i] & 0x7F) << mul;
            mul += 7;
            if (!(c->in.d[off + i] & 0x80)) break;
        }
        if ((size_t)i >= avail || i == 5) break;
        size_t total = (size_t)i + 1 + rl;
        if (avail < total) break;
        fn(c->in.d[off] >> 4, c->in.d + off + i + 1, rl, arg);
        off += total;
    }
    memmove(c->in.d, c->in.d + off, c->in.len - off);
    c->in.len -= off;
    return 0;
}

static long received;
static int connacks, subacked;
static buf acks; /* PUBACKs the counter owes */

static void on_packet(int type, const unsigned char *body, size_t len, void *arg)
{
    (void)arg;
    if (type == 2) connacks++;
    else if (type == 9) subacked = 1;
    else if (type == 3) {
        received++;
        size_t tl = (size_t)body[0] << 8 | body[1];
        if (len >= tl + 4 && ((const unsigned char *)arg)[0] == 1) { /* QoS 1: acknowledge */
            unsigned char a[4] = {0x40, 2, body[2 + tl], body[3 + tl]};
            put(&acks, a, 4);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mqtt_load PORT QOS N IN_TOPIC OUT_TOPIC [WINDOW]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned char qos = (unsigned char)atoi(argv[2]);
    long n = atol(argv[3]), window = argc > 6 ? atol(argv[6]) : 2000;
    conn c[2] = {{.fd = dial(port)}, {.fd = dial(port)}};
    if (c[0].fd < 0 || c[1].fd < 0) {
        fprintf(stderr, "mqtt_load: cannot connect\n");
        return 1;
    }
    char id[64];
    snprintf(id, sizeof id, "mqtt_load_p%d", (int)getpid());
    send_connect(c[0].fd, id);
    snprintf(id, sizeof id, "mqtt_load_s%d", (int)getpid());
    send_connect(c[1].fd, id);
    double t_end = now() + 10;
    while (connacks < 2 && now() < t_end) {
        struct pollfd p[2] = {{c[0].fd, POLLIN, 0}, {c[1].fd, POLLIN, 0}};
        if (poll(p, 2, 100) < 0) return 1;
        for (int i = 0; i < 2; i++)
            if (p[i].revents && pump(&c[i], on_packet, &qos) < 0) return 1;
    }
    buf b = {0}, body = {0};
    unsigned char pid[2] = {0, 1};
    put(&body, pid, 2);
    put_str(&body, argv[5]);
    put(&body, &qos, 1);
    put_header(&b, 0x82, body.len);
    put(&b, body.d, body.len);
    send_all(c[1].fd, &b);
    while (!subacked && now() < t_end) {
        struct pollfd p = {c[1].fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0 && pump(&c[1], on_packet, &qos) < 0) return 1;
    }
    long sent = 0;
    size_t tl = strlen(argv[4]);
    unsigned char zero = 0;
    double t0 = now(), deadline = t0 + 120;
    while (received < n && now() < deadline) {
        while (sent < n && sent - received < window) { /* a batch of publishes, one write */
            char pl[24];
            int len = snprintf(pl, sizeof pl, "%ld", sent + 1);
            put_header(&b, 0x30 | qos << 1, 2 + tl + (qos ? 2 : 0) + (size_t)len);
            put_str(&b, argv[4]);
            if (qos) {
                uint16_t mid = (uint16_t)(sent % 65535 + 1);
                unsigned char m[2] = {(unsigned char)(mid >> 8), (unsigned char)mid};
                put(&b, m, 2);
            }
            put(&b, pl, (size_t)len);
            sent++;
        }
        if (b.len) send_all(c[0].fd, &b);
        struct pollfd p[2] = {{c[0].fd, POLLIN, 0}, {c[1].fd, POLLIN, 0}};
        if (poll(p, 2, 100) < 0) break;
        long before = received;
        if (p[0].revents && pump(&c[0], on_packet, &zero) < 0) break; /* PUBACKs of our publishes */
        if (p[1].revents && pump(&c[1], on_packet, &qos) < 0) break;
        if (acks.len) send_all(c[1].fd, &acks);
        /* Few arrived: let more gather before the next wake-up (at most
         * 5,000 wake-ups a second, far from starving a window of 2,000),
         * so that the load costs little CPU beside the broker and the
         * runtime it measures. */
        if (received - before < 64 && received < n) {
            struct timespec pause = {0, 200000};
            nanosleep(&pause, NULL);
        }
    }
    double t1 = now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    printf("%.0f %.4f\n", (double)received / (t1 - t0), cpu);
    if (received < n) fprintf(stderr, "mqtt_load: %ld of %ld arrived\n", received, n);
    close(c[0].fd);
    close(c[1].fd);
    return 0;
}
