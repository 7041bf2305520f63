/* fuzz_flows_check.c: libFuzzer target for the flow loader, the path of
 * `carmine check` (and of a supervisor validating a POSTed deploy): the input
 * is a flows file (any bytes); it is parsed, and when it is JSON, loaded with
 * CRM_LOAD_CHECK_ONLY into a runtime that opens no context store. Loading
 * must refuse or accept, never crash, leak, overflow the stack (a subflow
 * that contains itself did) or take unbounded time. Flows with a function
 * node are left out: checking one compiles its code in JavaScriptCore, and
 * LeakSanitizer's scan, which libFuzzer runs after an input that kept
 * memory, dies on JavaScriptCore's heap ("Tracer caught signal 11"); the
 * function node's check is covered by the flow tests instead. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static void quiet(void *ctx, crm_log_level lvl, const char *id, const char *type, const char *text)
{
    (void)ctx;
    (void)lvl;
    (void)id;
    (void)type;
    (void)text;
}

/* Whether any object in v has "type": "function". */
static bool has_function_node(const json_t *v)
{
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (type && !strcmp(type, "function")) return true;
        json_object_foreach((json_t *)v, k, e) if (has_function_node(e)) return true;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (has_function_node(e)) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *flows = crm_parse((const char *)data, size, err, sizeof err);
    if (!flows) return 0;
    if (has_function_node(flows)) {
        json_decref(flows);
        return 0;
    }
    /* few request slots: an http in node makes the server, whose slots are
     * allocated up front */
    json_t *settings = json_pack("{s:b,s:i,s:i}", "_checkOnly", 1, "port", 0, "maxRequestsInFlight", 16);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    if (!rt) abort(); /* nothing here can make it fail */
    crm_runtime_set_log_hook(rt, quiet, NULL);
    strbuf problems = SB_INIT;
    int rc = crm_runtime_load(rt, flows, CRM_LOAD_CHECK_ONLY, &problems);
    if (rc && !problems.len) abort(); /* a refusal always says why */
    sb_free(&problems);
    crm_runtime_free(rt);
    json_decref(flows);
    return 0;
}
