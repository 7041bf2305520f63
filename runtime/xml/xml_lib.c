/* xml_lib.c: see xml_lib.h. */
#include "xml/xml_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static crm_xml_lib_t lib;
static bool ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void quiet(void *ctx, const char *fmt, ...)
{
    (void)ctx;
    (void)fmt;
}

static void quiet_structured(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

static void load(void)
{
    void *h = dlopen("libxml2.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "carmine: cannot load libxml2.so.2 (%s): xml and html nodes will fail\n", dlerror());
        return;
    }
    *(void **)&lib.readMemory = dlsym(h, "xmlReadMemory");
    *(void **)&lib.htmlReadMemory = dlsym(h, "htmlReadMemory");
    *(void **)&lib.freeDoc = dlsym(h, "xmlFreeDoc");
    *(void **)&lib.docGetRootElement = dlsym(h, "xmlDocGetRootElement");
    *(void **)&lib.getLastError = dlsym(h, "xmlGetLastError");
    *(void **)&lib.resetLastError = dlsym(h, "xmlResetLastError");
    *(void **)&lib.setStructuredErrorFunc = dlsym(h, "xmlSetStructuredErrorFunc");
    *(void **)&lib.setGenericErrorFunc = dlsym(h, "xmlSetGenericErrorFunc");
    *(void **)&lib.newDocNode = dlsym(h, "xmlNewDocNode");
    *(void **)&lib.addPrevSibling = dlsym(h, "xmlAddPrevSibling");
    *(void **)&lib.unlinkNode = dlsym(h, "xmlUnlinkNode");
    *(void **)&lib.addChild = dlsym(h, "xmlAddChild");
    ok = lib.readMemory && lib.htmlReadMemory && lib.freeDoc && lib.docGetRootElement && lib.getLastError &&
         lib.resetLastError && lib.setStructuredErrorFunc && lib.setGenericErrorFunc && lib.newDocNode &&
         lib.addPrevSibling && lib.unlinkNode && lib.addChild;
}

const crm_xml_lib_t *crm_xml_lib(void)
{
    pthread_once(&once, load);
    if (!ok) return NULL;
    /* libxml2 keeps error handlers per thread: silence this thread's */
    static __thread bool quieted;
    if (!quieted) {
        lib.setGenericErrorFunc(NULL, quiet);
        lib.setStructuredErrorFunc(NULL, quiet_structured);
        quieted = true;
    }
    return &lib;
}
