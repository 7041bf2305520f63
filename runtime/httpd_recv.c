/* httpd_recv.c: whether a client shut its side down, known without a
 * system call per request.
 *
 * A client that sends its request and then its FIN (D12) is closed
 * unanswered (runtime/httpd.c, on_request). Finding the FIN took a
 * recv(MSG_PEEK) per request, one system call in three on the path of an
 * http in -> http response flow (and a system call costs more than the
 * rest of the request on a virtual machine). Linux tells it for free
 * instead: with TCP_INQ set on a socket, every read returns a control
 * message with the bytes left in the socket after it, non-zero also when
 * a FIN is waiting (tcp_inq_hint). So the executable defines recv, which
 * libmicrohttpd calls for every read (its reference binds to this
 * definition, as an LD_PRELOAD one would): for the server's own
 * connections it reads with recvmsg and notes whether anything was left;
 * for every other descriptor it is recvfrom, what glibc's recv is. A
 * request whose last read left nothing needs no check (no FIN had come
 * when it was read: the same moment the peek used to ask); any other
 * (bytes or FIN left, the state unknown, a descriptor past the table)
 * still gets the peek.
 *
 * The state of a descriptor: INQ_NONE (not a server connection), set to
 * INQ_UNKNOWN when libmicrohttpd reports the connection started and
 * TCP_INQ could be set, to INQ_EMPTY or INQ_MORE by each read, back to
 * INQ_NONE when it closes. A number reused by another connection starts
 * from INQ_UNKNOWN again, so a stale state can only cost a peek. */
#undef _FORTIFY_SOURCE /* glibc's fortified recv is an inline definition */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "httpd_internal.h"

#define INQ_FDS 65536
enum { INQ_NONE, INQ_UNKNOWN, INQ_EMPTY, INQ_MORE };
static _Atomic unsigned char inq_state[INQ_FDS];

__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t len, int flags);
__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    if ((unsigned)fd >= INQ_FDS || (flags & MSG_PEEK) ||
        atomic_load_explicit(&inq_state[fd], memory_order_relaxed) == INQ_NONE)
        return recvfrom(fd, buf, len, flags, NULL, NULL);
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char space[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof ctl.space};
    ssize_t n = recvmsg(fd, &m, flags);
    if (n < 0) return n;
    int saved = errno;
    unsigned char st = INQ_MORE; /* no hint, or the end of the stream read: the peek decides */
    if (n > 0) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int inq;
                memcpy(&inq, CMSG_DATA(c), sizeof inq);
                st = inq == 0 ? INQ_EMPTY : INQ_MORE;
            }
        }
    }
    /* only a descriptor still marked ours: its connection may have closed meanwhile */
    unsigned char cur = atomic_load_explicit(&inq_state[fd], memory_order_relaxed);
    if (cur != INQ_NONE) atomic_store_explicit(&inq_state[fd], st, memory_order_relaxed);
    errno = saved;
    return n;
}

void httpd_recv_track(int fd, bool on)
{
    if (fd < 0 || fd >= INQ_FDS) return;
    if (!on) {
        atomic_store_explicit(&inq_state[fd], INQ_NONE, memory_order_relaxed);
        return;
    }
    int one = 1;
    bool ok = setsockopt(fd, SOL_TCP, TCP_INQ, &one, sizeof one) == 0;
    atomic_store_explicit(&inq_state[fd], ok ? INQ_UNKNOWN : INQ_NONE, memory_order_relaxed);
}

bool httpd_client_half_closed(int fd)
{
    if (fd < 0) return false;
    if (fd < INQ_FDS && atomic_load_explicit(&inq_state[fd], memory_order_relaxed) == INQ_EMPTY) return false;
    char b;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}
