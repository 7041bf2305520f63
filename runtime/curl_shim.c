/* curl_shim.c: libcurl, loaded only when first used.
 *
 * Linking libcurl pulls OpenSSL, nghttp2, Kerberos and more into every
 * process, a few megabytes of resident memory before anything runs; most
 * flows never make an HTTP request. So Carmine does not link libcurl: these
 * definitions of the libcurl functions it calls open libcurl.so.4 with dlopen
 * on first use and forward to it. The variadic setopt calls forward their one
 * argument by the option's type range, as curl.h defines them.
 */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#define CURL_FUNCS(X)                                                                                         \
    X(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                                     \
    X(void, curl_global_cleanup, (void), (), )                                                                  \
    X(CURL *, curl_easy_init, (void), (), NULL)                                                                 \
    X(void, curl_easy_cleanup, (CURL * h), (h), )                                                               \
    X(CURLcode, curl_easy_perform, (CURL * h), (h), CURLE_FAILED_INIT)                                          \
    X(const char *, curl_easy_strerror, (CURLcode c), (c), "libcurl is not available")                         \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s), NULL)            \
    X(void, curl_slist_free_all, (struct curl_slist * l), (l), )                                                \
    X(void, curl_free, (void *p), (p), )                                                                        \
    X(CURLU *, curl_url, (void), (), NULL)                                                                      \
    X(void, curl_url_cleanup, (CURLU * u), (u), )                                                               \
    X(CURLUcode, curl_url_set, (CURLU * u, CURLUPart w, const char *p, unsigned int f), (u, w, p, f),           \
      CURLUE_OUT_OF_MEMORY)                                                                                     \
    X(CURLUcode, curl_url_get, (CURLU * u, CURLUPart w, char **p, unsigned int f), (u, w, p, f),           \
      CURLUE_OUT_OF_MEMORY)                                                                                     \
    X(CURLM *, curl_multi_init, (void), (), NULL)                                                               \
    X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)                                    \
    X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * h), (m, h), CURLM_INTERNAL_ERROR)                    \
    X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * h), (m, h), CURLM_INTERNAL_ERROR)                 \
    X(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running), CURLM_INTERNAL_ERROR)             \
    X(CURLMcode, curl_multi_poll, (CURLM * m, struct curl_waitfd * fds, unsigned int n, int ms, int *ret),      \
      (m, fds, n, ms, ret), CURLM_INTERNAL_ERROR)                                                               \
    X(CURLMcode, curl_multi_wakeup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)                                     \
    X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left), NULL)

#define VARIADIC_FUNCS(X)                                                       \
    X(CURLcode, curl_easy_setopt, CURL *, CURLoption, CURLE_FAILED_INIT)         \
    X(CURLMcode, curl_multi_setopt, CURLM *, CURLMoption, CURLM_INTERNAL_ERROR)

#define POINTER(ret, name, params, args, fail) static ret(*p_##name) params;
CURL_FUNCS(POINTER)
static CURLcode (*p_curl_easy_setopt)(CURL *, CURLoption, ...);
static CURLMcode (*p_curl_multi_setopt)(CURLM *, CURLMoption, ...);
static CURLcode (*p_curl_easy_getinfo)(CURL *, CURLINFO, ...);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *lib;

static void load(void)
{
    lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "carmine: cannot load libcurl.so.4 (%s): HTTP requests will fail\n", dlerror());
        return;
    }
#define RESOLVE(ret, name, params, args, fail) *(void **)&p_##name = dlsym(lib, #name);
    CURL_FUNCS(RESOLVE)
    *(void **)&p_curl_easy_setopt = dlsym(lib, "curl_easy_setopt");
    *(void **)&p_curl_multi_setopt = dlsym(lib, "curl_multi_setopt");
    *(void **)&p_curl_easy_getinfo = dlsym(lib, "curl_easy_getinfo");
}

#define FORWARD(ret, name, params, args, fail) \
    ret name params                            \
    {                                          \
        pthread_once(&once, load);             \
        if (!p_##name) return fail;            \
        return p_##name args;                  \
    }
CURL_FUNCS(FORWARD)

/* Option numbers carry their argument type: long below 10000, a pointer
 * below 20000 (objects) or 30000 (functions), curl_off_t from 30000 on. */
#define SETOPT(ret, name, handle_t, opt_t, fail)                 \
    ret name(handle_t h, opt_t opt, ...)                         \
    {                                                            \
        pthread_once(&once, load);                               \
        if (!p_##name) return fail;                              \
        va_list ap;                                              \
        va_start(ap, opt);                                       \
        ret r;                                                   \
        if (opt < 10000) {                                       \
            long v = va_arg(ap, long);                           \
            r = p_##name(h, opt, v);                             \
        } else if (opt < 30000) {                                \
            void *v = va_arg(ap, void *);                        \
            r = p_##name(h, opt, v);                             \
        } else {                                                 \
            curl_off_t v = va_arg(ap, curl_off_t);               \
            r = p_##name(h, opt, v);                             \
        }                                                        \
        va_end(ap);                                              \
        return r;                                                \
    }
VARIADIC_FUNCS(SETOPT)

/* Every getinfo argument is a pointer to the result. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    pthread_once(&once, load);
    if (!p_curl_easy_getinfo) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *);
    va_end(ap);
    return p_curl_easy_getinfo(h, info, out);
}
