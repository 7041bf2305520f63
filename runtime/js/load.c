/* load.c: opens libjavascriptcoregtk-4.1 on first use (see js.h). */
#define CRM_JS_NO_MACROS 1
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "js.h"

#define CRM_JS_LIB "libjavascriptcoregtk-4.1.so.0"

crm_jsc_api crm_jsc;

static void *lib_handle;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char *load_error;

/* The watchdog's clock. JavaScriptCore's watchdog (the time limit of
 * crm_js_set_timeout) reads the thread's CPU clock each time a thread
 * enters the VM (WTF::CPUTime::forCurrentThread: clock_gettime of
 * CLOCK_THREAD_CPUTIME_ID, a system call: 2.4 us here, as much as the rest
 * of a small call) and when its timer fires. Node's vm timeout, which
 * Carmine follows, is wall time, and sandbox.c's callback compares the wall
 * clock anyway: the library's clock_gettime slot (its GOT entry) is pointed
 * here, where the thread's CPU clock is the monotonic one (the vDSO, no
 * system call). Other clocks pass through. Without the slot (another
 * build of the library), nothing changes but the cost. */
#if defined(__x86_64__)
static int js_clock_gettime(clockid_t clock, struct timespec *ts)
{
    return clock_gettime(clock == CLOCK_THREAD_CPUTIME_ID ? CLOCK_MONOTONIC : clock, ts);
}

typedef struct {
    uintptr_t base;
    const ElfW(Phdr) *phdr;
    int phnum;
} lib_segments;

static int find_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    lib_segments *seg = arg;
    if (info->dlpi_addr != seg->base) return 0;
    seg->phdr = info->dlpi_phdr;
    seg->phnum = info->dlpi_phnum;
    return 1;
}

static void redirect_cpu_clock(void *lib)
{
    struct link_map *lm = NULL;
    if (dlinfo(lib, RTLD_DI_LINKMAP, &lm) != 0 || !lm) return;
    lib_segments seg = {.base = (uintptr_t)lm->l_addr};
    dl_iterate_phdr(find_segments, &seg);
    if (!seg.phdr) return;
    uintptr_t relro_lo = 0, relro_hi = 0;
    for (int i = 0; i < seg.phnum; i++)
        if (seg.phdr[i].p_type == PT_GNU_RELRO) {
            relro_lo = seg.base + seg.phdr[i].p_vaddr;
            relro_hi = relro_lo + seg.phdr[i].p_memsz;
        }
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *jmprel = NULL;
    size_t pltrelsz = 0;
    /* the loader has made these addresses absolute on most systems */
#define ADDR(d) ((d)->d_un.d_ptr < seg.base ? seg.base + (d)->d_un.d_ptr : (d)->d_un.d_ptr)
    for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym) *)ADDR(d);
        else if (d->d_tag == DT_STRTAB) strtab = (const char *)ADDR(d);
        else if (d->d_tag == DT_JMPREL) jmprel = (const ElfW(Rela) *)ADDR(d);
        else if (d->d_tag == DT_PLTRELSZ) pltrelsz = d->d_un.d_val;
        else if (d->d_tag == DT_PLTREL && d->d_un.d_val != DT_RELA) return;
    }
#undef ADDR
    if (!symtab || !strtab || !jmprel) return;
    for (size_t i = 0; i < pltrelsz / sizeof *jmprel; i++) {
        const ElfW(Rela) *r = &jmprel[i];
        if (ELF64_R_TYPE(r->r_info) != R_X86_64_JUMP_SLOT) continue;
        if (strcmp(strtab + symtab[ELF64_R_SYM(r->r_info)].st_name, "clock_gettime")) continue;
        void **slot = (void **)(seg.base + r->r_offset);
        long page = sysconf(_SC_PAGESIZE);
        void *lo = (void *)((uintptr_t)slot & ~(uintptr_t)(page - 1));
        bool ro = (uintptr_t)slot >= relro_lo && (uintptr_t)slot < relro_hi;
        if (ro && mprotect(lo, (size_t)page, PROT_READ | PROT_WRITE)) return;
        __atomic_store_n(slot, (void *)js_clock_gettime, __ATOMIC_RELEASE);
        if (ro) mprotect(lo, (size_t)page, PROT_READ);
        return;
    }
}
#endif

static void load(void)
{
    /* JavaScriptCore reads its options (JSC_useJIT=0, ...) from the
     * environment when it initialises. Its watchdog must be able to stop
     * optimised code on a loop thread: polling traps (a check on each loop
     * back edge) do that without signals. */
    setenv("JSC_usePollingTraps", "true", 0);
    /* Memory (docs/benchmarks.md, "The function node"): the FTL tier
     * (B3/Air) touches megabytes of the library's code and keeps more JIT
     * data than it earns on a function node's small bodies (the chain is
     * as fast without it); compiling on the loop thread and marking with
     * one thread spares the compiler and marker threads' heaps. Each can
     * be set otherwise from the environment. */
    setenv("JSC_useFTLJIT", "false", 0);
    setenv("JSC_useConcurrentJIT", "false", 0);
    setenv("JSC_numberOfGCMarkers", "1", 0);
    void *lib = lib_handle = dlopen(CRM_JS_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        if (asprintf(&load_error, "cannot load %s (%s): install libjavascriptcoregtk-4.1-0", CRM_JS_LIB, dlerror()) < 0)
            load_error = NULL;
        return;
    }
#define RESOLVE(f)                                                                                   \
    *(void **)&crm_jsc.f = dlsym(lib, #f);                                                           \
    if (!crm_jsc.f) {                                                                                \
        if (asprintf(&load_error, "%s lacks %s: a JavaScriptCore too old or too new", CRM_JS_LIB, #f) < 0) \
            load_error = NULL;                                                                       \
        return;                                                                                      \
    }
    CRM_JSC_FUNCS(RESOLVE)
#undef RESOLVE
#if defined(__x86_64__)
    redirect_cpu_clock(lib);
#endif
}

int crm_js_load(char **err)
{
    pthread_once(&once, load);
    if (!load_error && crm_jsc.JSObjectCallAsFunction) return 0;
    if (err) *err = strdup(load_error ? load_error : "JavaScriptCore could not be loaded");
    return -1;
}

bool crm_js_loaded(void)
{
    return crm_jsc.JSObjectCallAsFunction != NULL;
}

void *crm_js_symbol(const char *name)
{
    return lib_handle ? dlsym(lib_handle, name) : NULL;
}
