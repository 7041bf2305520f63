/* first_answer.c: how long a server takes from exec to its first HTTP 200,
 * and how much memory it then holds. Starts CMD, polls GET PATH on
 * 127.0.0.1:PORT every 0.2 ms, prints the time to the first 200; then, when
 * SETTLE_MS > 0, waits that long and prints the resident memory (VmRSS)
 * of the process. Stops CMD (SIGTERM, then SIGKILL) before exiting.
 *
 *   first_answer PORT PATH SETTLE_MS CMD [ARGS...]
 * Output: "first_answer_ms 12.3" and "rss_kb 5432"; exit 1 when no 200
 * came within 60 s. CMD's output goes to $FIRST_ANSWER_LOG or /dev/null.
 * Built by tools/bench/run.sh with plain gcc (loopback only).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One GET; true when the answer's status is 200. */
static int got_200(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char req[512];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[32] = "";
        if (write(fd, req, (size_t)n) == n) {
            ssize_t got = 0, r;
            while (got < 12 && (r = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += r;
            buf[got] = 0;
            ok = !strncmp(buf, "HTTP/1.1 200", 12) || !strncmp(buf, "HTTP/1.0 200", 12);
        }
    }
    close(fd);
    return ok;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    fclose(f);
    return kb;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: first_answer PORT PATH SETTLE_MS CMD [ARGS...]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char *path = argv[2];
    int settle = atoi(argv[3]);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        const char *log = getenv("FIRST_ANSWER_LOG");
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    double first = -1;
    while (now_ms() - t0 < 60000) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "first_answer: %s exited before answering\n", argv[4]);
            return 1;
        }
        if (got_200(port, path)) {
            first = now_ms() - t0;
            break;
        }
        usleep(200);
    }
    if (first < 0) {
        fprintf(stderr, "first_answer: no 200 from :%d%s within 60 s\n", port, path);
        stop(pid);
        return 1;
    }
    printf("first_answer_ms %.1f\n", first);
    if (settle > 0) {
        usleep((useconds_t)settle * 1000);
        printf("rss_kb %ld\n", rss_kb(pid));
    }
    fflush(stdout);
    stop(pid);
    return 0;
}
