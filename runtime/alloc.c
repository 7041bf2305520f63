/* alloc.c: the allocator, and the process's memory upkeep when idle.
 *
 * A build without sanitizers links Debian's libmimalloc, which replaces
 * malloc, free and the rest for the whole process (its library comes before
 * libc in the link): a message hop is mostly jansson values, an allocation
 * each (two for an object or a string), and mimalloc's thread-local free
 * lists take a third off the instructions of a json or csv hop. Values cross
 * threads (a message to another tab, an HTTP body read on the server's
 * thread); mimalloc takes a free from another thread. -Dmimalloc=false keeps
 * glibc's malloc.
 *
 * What either costs in memory is kept bounded here. mimalloc gives pages
 * back to the system some milliseconds after they empty (decommit_delay), but
 * only on the owning thread's next malloc or free; glibc gives back only the
 * top of a heap on free. So loop.c calls crm_alloc_idle once a loop has been
 * idle for a moment after work, and the CLI once the flows have started:
 * mi_collect, or malloc_trim(0), which returns the free pages inside glibc's
 * heaps as well. Threads that are not loops (JavaScriptCore's, libmicrohttpd's
 * own) are not reached by mi_collect: after traffic through a function node
 * mimalloc keeps about 8 MB more than glibc (docs/benchmarks.md, 14:10 UTC
 * section). Sanitizer builds (ASan, TSan, the fuzzers) keep their own malloc:
 * there crm_alloc_idle does nothing.
 *
 * crm_idle_release_code: the pages of machine code and read-only data of the
 * executable and the libraries linked to it leave the process's mapping when
 * a loop has gone idle (at most once in 10 s) (MADV_DONTNEED on private, read-only file
 * mappings: nothing is lost, the page cache keeps them and the next message
 * faults back in the few it runs, as runtime/js/sandbox.c does for
 * JavaScriptCore's). Most of them ran once: loading the flows, the node
 * types' set-up, the libraries' initialisers (GnuTLS and p11-kit, loaded by
 * libmicrohttpd, about 1.5 MB), each mapped 64 kB at a time by the kernel's
 * fault-around; they were most of the idle RSS (docs/benchmarks.md, "Idle
 * memory: what is resident").
 */
#include "alloc.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef CRM_MIMALLOC
#include <mimalloc.h>

bool crm_alloc_is_mimalloc(void) { return true; }

void crm_alloc_idle(void)
{
    mi_collect(true);
}
#else
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <malloc.h>
#define TRIM() malloc_trim(0)
#else
#define TRIM() ((void)0)
#endif

bool crm_alloc_is_mimalloc(void) { return false; }

void crm_alloc_idle(void)
{
    TRIM();
}
#endif

/* The code ranges: whole pages of the read-only segments of every object
 * loaded when they are first looked up (the executable, its libraries, and
 * any library opened with dlopen by then), each made undeletable
 * (RTLD_NODELETE) so that its pages stay its own for the process's life. */
#define MAX_RANGES 256
static struct {
    uintptr_t lo, hi, base;
    const char *name; /* the library's, or NULL for the executable */
    bool still; /* seen again after the pinning */
} ranges[MAX_RANGES];
static int nranges;
static pthread_once_t ranges_once = PTHREAD_ONCE_INIT;

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (info->dlpi_addr == (uintptr_t)getauxval(AT_SYSINFO_EHDR)) return 0; /* the vDSO: no file */
    const char *name = NULL; /* copied with its first range */
    uintptr_t relro_lo = 0, relro_hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_GNU_RELRO) {
            relro_lo = info->dlpi_addr + p->p_vaddr;
            relro_hi = relro_lo + p->p_memsz;
        } else if (p->p_type == PT_DYNAMIC) { /* relocations written into the code: leave it */
            for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + p->p_vaddr); d->d_tag != DT_NULL; d++)
                if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL))) return 0;
        }
    }
    for (int i = 0; i < info->dlpi_phnum && nranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || (p->p_flags & PF_W)) continue;
        uintptr_t lo = info->dlpi_addr + p->p_vaddr, hi = lo + p->p_filesz;
        if (relro_hi > lo && relro_lo < hi) continue;
        /* whole pages only: a page shared with a neighbouring (written) segment is that one's */
        lo = (lo + page - 1) & ~(page - 1);
        hi &= ~(page - 1);
        if (hi <= lo) continue;
        if (!name && info->dlpi_name && *info->dlpi_name && !(name = strdup(info->dlpi_name))) return 0;
        ranges[nranges].lo = lo;
        ranges[nranges].hi = hi;
        ranges[nranges].base = info->dlpi_addr;
        ranges[nranges].name = name;
        ranges[nranges].still = false;
        nranges++;
    }
    return 0;
}

/* After the pinning: the object is still there, at the same address. */
static int see_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : NULL;
    for (int i = 0; i < nranges; i++)
        if (ranges[i].base == info->dlpi_addr && (name ? ranges[i].name && !strcmp(name, ranges[i].name) : !ranges[i].name))
            ranges[i].still = true;
    return 0;
}

/* Keeps the ranges marked in keep[], freeing the names no kept range holds
 * (one object's ranges are consecutive and share their name). */
static void keep_ranges(const bool *keep)
{
    int n = 0;
    for (int i = 0; i < nranges; i++) {
        bool last_of_name = i + 1 == nranges || ranges[i + 1].name != ranges[i].name;
        bool name_kept = keep[i] || (n > 0 && ranges[n - 1].name == ranges[i].name && ranges[i].name);
        if (keep[i]) ranges[n++] = ranges[i];
        if (last_of_name && !name_kept && ranges[i].name) free((void *)ranges[i].name);
    }
    nranges = n;
}

static void find_ranges(void)
{
    bool keep[MAX_RANGES];
    dl_iterate_phdr(add_object, NULL);
    /* outside the iteration (it holds the loader's lock): a library that
     * cannot be pinned (being closed meanwhile) is left out */
    const char *last = NULL;
    bool pinned = false;
    for (int i = 0; i < nranges; i++) {
        if (ranges[i].name && ranges[i].name != last) {
            last = ranges[i].name;
            void *h = dlopen(last, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
            pinned = h != NULL;
            if (h) dlclose(h);
        }
        keep[i] = !ranges[i].name || pinned;
    }
    keep_ranges(keep);
    dl_iterate_phdr(see_object, NULL);
    for (int i = 0; i < nranges; i++) keep[i] = ranges[i].still;
    keep_ranges(keep);
}

/* A release costs 1-10 ms of CPU (the kernel unmaps a thousand pages or so
 * and tells the other cores), the pages faulted back afterwards a few
 * microseconds each: once in RELEASE_EVERY_MS at most, whichever loop goes
 * idle first. The first one comes once the flows have started and the loops
 * have been idle for a moment. */
#define RELEASE_EVERY_MS 10000
static _Atomic int64_t last_release_ms = INT64_MIN / 2;

/* Under a debugger: its breakpoints are written into copies of code pages,
 * which a release would drop. */
static bool traced(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) return false;
    char line[256];
    long pid = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "TracerPid:", 10)) {
            pid = atol(line + 10);
            break;
        }
    fclose(f);
    return pid != 0;
}

void crm_idle_release_code(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* not in sanitizer builds (as the trim above): their instrumented code
     * faults back many times slower, which test_watch's CPU check caught */
    return;
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, last = atomic_load(&last_release_ms);
    if (now - last < RELEASE_EVERY_MS || !atomic_compare_exchange_strong(&last_release_ms, &last, now)) return;
    if (traced()) return;
    pthread_once(&ranges_once, find_ranges);
    for (int i = 0; i < nranges; i++) madvise((void *)ranges[i].lo, ranges[i].hi - ranges[i].lo, MADV_DONTNEED);
}
