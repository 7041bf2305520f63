/* uring.h: many non-blocking socket sends or receives in one system call
 * (io_uring), for the end of a loop turn that has one to do on each of many
 * connections (tcpconn.c). A system call's entry and exit cost more than a
 * microsecond on a paravirtualised guest, a loopback send of a small
 * message little more: one call for a turn's 60 sends instead of 60 halves
 * what the echo of a websocket message costs the kernel. Internal to the
 * runtime. */
#ifndef CRM_URING_H
#define CRM_URING_H

#include <stdbool.h>
#include <stddef.h>

#define CRM_URING_MAX 128 /* operations in one call at most */

enum { CRM_URING_SEND, CRM_URING_RECV };

typedef struct {
    int fd, op;
    void *buf;
    size_t len;
    long res;  /* set: bytes sent or received (0: the peer's end), or -errno */
    int fixed; /* crm_uring_fixed() of fd's registration, 0: none (fd is used) */
} crm_uring_op;

/* A descriptor registered in the calling thread's ring (io_uring's fixed
 * files): its operations skip the kernel's lookup of the file and the
 * reference taken on it (fget/fput, 2-3 % of the echo's CPU). The ring holds
 * a reference to the file, so crm_uring_unregister comes before close(fd),
 * always. Zeroed: not registered. */
typedef struct {
    unsigned ring; /* which ring (rings end with their threads) */
    int slot;      /* its index + 1, 0 when not registered */
} crm_uring_file;

/* Registers fd in the calling thread's ring: false when io_uring, fixed
 * files or a free slot are missing (then f stays zeroed: use fd). */
bool crm_uring_register(int fd, crm_uring_file *f);
/* Drops the ring's reference (before close(fd)). From another thread than
 * the registering one, or once that thread ended (its ring closed and let
 * the files go), it only zeroes f. */
void crm_uring_unregister(crm_uring_file *f);
/* What crm_uring_op.fixed takes: f's slot + 1 when f is registered in the
 * calling thread's ring, else 0. */
int crm_uring_fixed(const crm_uring_file *f);

/* Runs the n (<= CRM_URING_MAX) operations, each as send(2) or recv(2)
 * with MSG_DONTWAIT (MSG_NOSIGNAL for sends) would, in one system call on
 * the calling thread's ring (made on first use, closed when the thread
 * ends). Every operation has finished when it returns: the buffers are
 * free again. false when io_uring is not there (an old kernel, disabled by
 * sysctl or a seccomp filter): none of them ran, the caller does them one
 * by one. The environment variable CARMINE_NO_URING (any value) makes it
 * always false (tests/net runs both ways). */
bool crm_uring_run(crm_uring_op *ops, int n);

/* size bytes of memory of the calling thread's (NULL without io_uring),
 * the same on every call with the same size, freed when the thread ends:
 * buffers for a batch of receives. */
void *crm_uring_scratch(size_t size);

#endif
