/* uring.c: see uring.h. The ring is set up with raw system calls (no
 * liburing: a few dozen lines, and no dependency). Operations carry
 * MSG_DONTWAIT, so io_uring completes them during the submitting call
 * (-EAGAIN instead of arming a poll and finishing later in the
 * background): when io_uring_enter returns, every buffer is the caller's
 * again. */
#include "net/uring.h"

#include <errno.h>
#include <stdbool.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_ptr, *cq_ptr;
    size_t sq_size, cq_size, sqes_size;
    void *scratch;
    size_t scratch_size;
    unsigned id;        /* unique among the process's rings */
    bool files_tried;   /* the sparse table of fixed files was asked for */
    int *free_slots, nfree;
} ring;

#define FIXED_FILES 4096 /* registered descriptors per ring at most */
static atomic_uint ring_ids;

static __thread ring *my_ring;
static __thread bool unavailable; /* tried on this thread, and failed */
static pthread_key_t ring_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void ring_free(void *p)
{
    ring *r = p;
    if (!r) return;
    free(r->scratch);
    free(r->free_slots);
    if (r->sqes && r->sqes != MAP_FAILED) munmap(r->sqes, r->sqes_size);
    if (r->cq_ptr && r->cq_ptr != MAP_FAILED && r->cq_ptr != r->sq_ptr) munmap(r->cq_ptr, r->cq_size);
    if (r->sq_ptr && r->sq_ptr != MAP_FAILED) munmap(r->sq_ptr, r->sq_size);
    if (r->fd >= 0) close(r->fd);
    free(r);
}

static void make_key(void)
{
    if (pthread_key_create(&ring_key, ring_free)) unavailable = true;
}

static ring *ring_new(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, CRM_URING_MAX, &p);
    if (fd < 0) return NULL;
    if (!(p.features & IORING_FEAT_NATIVE_WORKERS)) { /* before 5.12: keep to send(2) */
        close(fd);
        return NULL;
    }
    ring *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return NULL;
    }
    r->fd = fd;
    r->id = atomic_fetch_add(&ring_ids, 1) + 1;
    r->sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    bool single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single && r->cq_size > r->sq_size) r->sq_size = r->cq_size;
    r->sq_ptr = mmap(NULL, r->sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (r->sq_ptr == MAP_FAILED) goto fail;
    r->cq_ptr = single ? r->sq_ptr
                       : mmap(NULL, r->cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (r->cq_ptr == MAP_FAILED) goto fail;
    r->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) goto fail;
    char *sq = r->sq_ptr, *cq = r->cq_ptr;
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return r;
fail:
    ring_free(r);
    return NULL;
}

static ring *get_ring(void)
{
    if (unavailable) return NULL;
    if (my_ring) return my_ring;
    if (getenv("CARMINE_NO_URING")) { /* the tests run both ways */
        unavailable = true;
        return NULL;
    }
    pthread_once(&key_once, make_key);
    if (!unavailable) my_ring = ring_new();
    if (!my_ring) {
        unavailable = true;
        return NULL;
    }
    pthread_setspecific(ring_key, my_ring); /* closed when the thread ends */
    return my_ring;
}

static int enter(int fd, unsigned submit, unsigned wait)
{
    return (int)syscall(__NR_io_uring_enter, fd, submit, wait, wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
}

bool crm_uring_run(crm_uring_op *ops, int n)
{
    if (n <= 0) return true;
    if (n > CRM_URING_MAX) return false;
    ring *r = get_ring();
    if (!r) return false;
    unsigned tail = *r->sq_tail, mask = *r->sq_mask;
    for (int i = 0; i < n; i++) {
        unsigned idx = (tail + (unsigned)i) & mask;
        struct io_uring_sqe *e = &r->sqes[idx];
        memset(e, 0, sizeof *e);
        e->opcode = ops[i].op == CRM_URING_SEND ? IORING_OP_SEND : IORING_OP_RECV;
        if (ops[i].fixed > 0) {
            e->fd = ops[i].fixed - 1;
            e->flags = IOSQE_FIXED_FILE;
        } else e->fd = ops[i].fd;
        e->addr = (uint64_t)(uintptr_t)ops[i].buf;
        e->len = (unsigned)ops[i].len;
        e->msg_flags = MSG_DONTWAIT | (ops[i].op == CRM_URING_SEND ? MSG_NOSIGNAL : 0);
        e->user_data = (uint64_t)i;
        r->sq_array[idx] = idx;
    }
    atomic_store_explicit((_Atomic unsigned *)r->sq_tail, tail + (unsigned)n, memory_order_release);
    int got;
    do got = enter(r->fd, (unsigned)n, (unsigned)n);
    while (got < 0 && errno == EINTR);
    if (got != n) {
        /* none taken (or, never seen, some): this thread stops using the
         * ring; what it took still completes, and the caller redoes only
         * what this call reports as not done */
        if (got < 0) got = 0;
        for (int i = got; i < n; i++) ops[i].res = -EAGAIN;
        unavailable = true;
        if (!got) return false;
    }
    /* every operation completes inline (MSG_DONTWAIT); collect them all */
    int done = 0;
    while (done < got) {
        unsigned head = *r->cq_head;
        unsigned ctail = atomic_load_explicit((_Atomic unsigned *)r->cq_tail, memory_order_acquire);
        for (; head != ctail; head++) {
            struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
            if (c->user_data < (uint64_t)n) ops[c->user_data].res = c->res;
            done++;
        }
        atomic_store_explicit((_Atomic unsigned *)r->cq_head, head, memory_order_release);
        if (done < got) {
            int e;
            do e = enter(r->fd, 0, (unsigned)(got - done));
            while (e < 0 && errno == EINTR);
        }
    }
    return true;
}

void *crm_uring_scratch(size_t size)
{
    ring *r = get_ring();
    if (!r) return NULL;
    if (r->scratch_size != size) {
        free(r->scratch);
        r->scratch = malloc(size);
        r->scratch_size = r->scratch ? size : 0;
    }
    return r->scratch;
}

static int files_update(ring *r, int slot, int fd)
{
    struct io_uring_files_update u;
    memset(&u, 0, sizeof u);
    u.offset = (unsigned)slot;
    u.fds = (uint64_t)(uintptr_t)&fd;
    int k;
    do k = (int)syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_FILES_UPDATE, &u, 1);
    while (k < 0 && errno == EINTR);
    return k;
}

bool crm_uring_register(int fd, crm_uring_file *f)
{
    f->ring = 0;
    f->slot = 0;
    ring *r = get_ring();
    if (!r || fd < 0) return false;
    if (!r->files_tried) { /* a table of empty slots (Linux 5.19), filled one by one */
        r->files_tried = true;
        struct io_uring_rsrc_register rr;
        memset(&rr, 0, sizeof rr);
        rr.nr = FIXED_FILES;
        rr.flags = IORING_RSRC_REGISTER_SPARSE;
        r->free_slots = malloc(FIXED_FILES * sizeof *r->free_slots);
        if (r->free_slots && syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_FILES2, &rr, sizeof rr) == 0)
            for (int i = FIXED_FILES - 1; i >= 0; i--) r->free_slots[r->nfree++] = i;
    }
    if (!r->nfree) return false;
    int slot = r->free_slots[--r->nfree];
    if (files_update(r, slot, fd) != 1) {
        r->free_slots[r->nfree++] = slot;
        return false;
    }
    f->ring = r->id;
    f->slot = slot + 1;
    return true;
}

void crm_uring_unregister(crm_uring_file *f)
{
    if (!f->slot) return;
    ring *r = my_ring;
    /* a slot that did not empty is not used again */
    if (r && r->id == f->ring && files_update(r, f->slot - 1, -1) == 1) r->free_slots[r->nfree++] = f->slot - 1;
    f->ring = 0;
    f->slot = 0;
}

int crm_uring_fixed(const crm_uring_file *f)
{
    ring *r = my_ring;
    return f->slot && r && r->id == f->ring ? f->slot : 0;
}
