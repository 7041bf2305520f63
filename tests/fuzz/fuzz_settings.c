/* fuzz_settings.c: libFuzzer target for the settings file: the input is a
 * settings file (any bytes); when it is a JSON object it goes through what
 * `carmine -s FILE` does with one before anything listens: the runtime
 * (log levels, ports, userDir, contextStorage with every store's module and
 * config checked, functionGlobalContext), adminAuth (users, permissions,
 * default), the HTTP server's settings (roots, limits, threads, CORS...),
 * credentials (credentialSecret), then a small flow that reads settings and
 * env is loaded in check mode. No store is opened (no Redis to reach, no
 * directory created where the input says) and userDir is a fixed scratch
 * directory. Must never crash or leak. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_auth.h"
#include "httpd.h"
#include "runtime.h"

static const char *FLOWS =
    "[{\"id\":\"t1\",\"type\":\"tab\",\"label\":\"T\",\"env\":[{\"name\":\"A\",\"value\":\"x\",\"type\":\"str\"}]},"
    "{\"id\":\"i1\",\"type\":\"inject\",\"z\":\"t1\",\"x\":1,\"y\":1,\"props\":[{\"p\":\"payload\"}],"
    "\"payload\":\"${A}\",\"payloadType\":\"str\",\"repeat\":\"\",\"crontab\":\"\",\"once\":false,\"wires\":[[\"c1\"]]},"
    "{\"id\":\"c1\",\"type\":\"change\",\"z\":\"t1\",\"x\":1,\"y\":1,\"rules\":[{\"t\":\"set\",\"p\":\"x\",\"pt\":\"global\","
    "\"to\":\"#:(file)::y\",\"tot\":\"global\"}],\"wires\":[[\"h1\"]]},"
    "{\"id\":\"h1\",\"type\":\"http in\",\"z\":\"t1\",\"x\":1,\"y\":1,\"url\":\"/q\",\"method\":\"get\",\"wires\":[[\"r1\"]]},"
    "{\"id\":\"r1\",\"type\":\"http response\",\"z\":\"t1\",\"x\":1,\"y\":1,\"statusCode\":\"\",\"headers\":{},\"wires\":[]}]";

static char userdir[64];

static void quiet(void *ctx, crm_log_level lvl, const char *id, const char *type, const char *text)
{
    (void)ctx;
    (void)lvl;
    (void)id;
    (void)type;
    (void)text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!userdir[0]) {
        snprintf(userdir, sizeof userdir, "/tmp/carmine-fuzz-settings-%d", (int)getpid());
        mkdir(userdir, 0700);
    }
    json_t *settings = crm_parse((const char *)data, size, NULL, 0);
    if (!json_is_object(settings)) {
        json_decref(settings);
        return 0;
    }
    json_object_set_new(settings, "userDir", json_string(userdir));
    json_object_set_new(settings, "_checkOnly", json_true());
    json_object_del(settings, "pluginsDir");
    crm_runtime *rt = crm_runtime_new(settings);
    if (rt) {
        crm_runtime_set_log_hook(rt, quiet, NULL);
        const json_t *s = crm_runtime_settings(rt);
        strbuf err = SB_INIT;
        crm_admin_auth *a = crm_admin_auth_new(s, &err);
        crm_admin_auth_free(a);
        sb_free(&err);
        crm_httpd *h = crm_httpd_new(s);
        if (h) crm_httpd_free(h);
        json_t *creds = NULL;
        strbuf cerr = SB_INIT;
        char flows_path[128];
        snprintf(flows_path, sizeof flows_path, "%s/flows.json", userdir);
        if (crm_credentials_load(flows_path, s, &creds, &cerr) == 0) crm_runtime_set_credentials(rt, creds);
        sb_free(&cerr);
        json_t *flows = crm_parse(FLOWS, strlen(FLOWS), NULL, 0);
        strbuf problems = SB_INIT;
        crm_runtime_load(rt, flows, CRM_LOAD_CHECK_ONLY, &problems);
        sb_free(&problems);
        json_decref(flows);
        crm_runtime_free(rt);
    }
    json_decref(settings);
    return 0;
}
