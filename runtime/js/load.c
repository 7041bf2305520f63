/* load.c: opens libjavascriptcoregtk-4.1 on first use (see js.h). */
#define CRM_JS_NO_MACROS 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "js.h"

#define CRM_JS_LIB "libjavascriptcoregtk-4.1.so.0"

crm_jsc_api crm_jsc;

static void *lib_handle;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char *load_error;

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
