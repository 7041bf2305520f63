/* sanitizer_options.c: defaults the carmine binary gives AddressSanitizer when
 * it is built with it (ASAN_OPTIONS still overrides them).
 *
 * intercept_tls_get_addr=0: JavaScriptCore's libraries, once dlopen'd, leave
 * LeakSanitizer's record of dynamic TLS blocks holding a bogus 32 GB range
 * (seen with GCC 12's libasan on glibc 2.36: "DTLS 8 at 0x200000080-
 * 0xa00001182"); the leak scan at exit then faults in its tracer and the
 * process ends with "LeakSanitizer has encountered a fatal error" and status 1
 * after any flow with a function node. Without the interception the scan
 * still covers static TLS and every thread's stack. */
#if defined(__SANITIZE_ADDRESS__)
#define CRM_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRM_ASAN_BUILD 1
#endif
#endif

#ifdef CRM_ASAN_BUILD
const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void) { return "intercept_tls_get_addr=0"; }
#endif
