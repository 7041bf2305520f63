/* weak_stubs.c: TEMPORARY stand-ins, weak symbols, so the engine links while
 * the HTTP server and the JSONata engine are being written in parallel. The
 * real (strong) definitions replace them automatically. To be deleted. */
#include <stdio.h>

#include "httpd.h"
#include "jsonata.h"

__attribute__((weak)) crm_httpd *crm_httpd_new(const json_t *settings) { (void)settings; return NULL; }
__attribute__((weak)) int crm_httpd_start(crm_httpd *h) { (void)h; return -1; }
__attribute__((weak)) int crm_httpd_port(const crm_httpd *h) { (void)h; return 0; }
__attribute__((weak)) void crm_httpd_stop(crm_httpd *h) { (void)h; }
__attribute__((weak)) void crm_httpd_free(crm_httpd *h) { (void)h; }
__attribute__((weak)) void crm_httpd_set_admin(crm_httpd *h, crm_admin_fn fn, void *ctx) { (void)h; (void)fn; (void)ctx; }
__attribute__((weak)) void crm_httpd_set_log(crm_httpd *h, crm_httpd_log_fn fn, void *ctx) { (void)h; (void)fn; (void)ctx; }
__attribute__((weak)) int jsonata_run_suite(const char *dir, const char *f) { (void)dir; (void)f; fputs("jsonata: not built yet\n", stderr); return 1; }
__attribute__((weak)) int jsonata_cli(const char *e, const char *f) { (void)e; (void)f; fputs("jsonata: not built yet\n", stderr); return 1; }
#include "jsonata_int.h"
__attribute__((weak)) json_t *jbuiltin_value(const char *name) { (void)name; return NULL; }
__attribute__((weak)) json_t *jfn_regex_exec(jeval *E, jfunc *re, const char *s, size_t len, size_t from) { (void)E; (void)re; (void)s; (void)len; (void)from; return NULL; }
