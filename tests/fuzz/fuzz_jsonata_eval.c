/* fuzz_jsonata_eval.c: libFuzzer target for the JSONata evaluator. The input
 * is an expression, a NUL byte, then JSON text for the input document (absent
 * or invalid: a small fixed document). Evaluation runs with limits like a
 * node's (a deadline and the default depth), and must return a value or an
 * error code, never crash, leak, or grow without bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata.h"
#include "value.h"

static const char fallback[] =
    "{\"payload\":{\"a\":[1,2,{\"b\":\"x\"}],\"s\":\"hello\",\"n\":-3.5,\"t\":true,\"z\":null},"
    "\"topic\":\"sensors/12/temp\",\"arr\":[[1,2],[3,[4,5]],{\"k\":\"v\"}],\"o\":{\"p\":{\"q\":1}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t elen = nul ? (size_t)(nul - data) : size;
    char *expr = malloc(elen + 1);
    if (!expr) return 0;
    memcpy(expr, data, elen);
    expr[elen] = 0;
    jsonata_error err;
    jsonata *e = jsonata_compile(expr, &err);
    free(expr);
    if (!e) {
        if (!err.code[0]) abort();
        return 0;
    }
    char perr[128];
    json_t *input = NULL;
    if (nul && size - elen > 1) input = crm_parse((const char *)nul + 1, size - elen - 1, perr, sizeof perr);
    if (!input) input = crm_parse(fallback, sizeof fallback - 1, perr, sizeof perr);
    /* small caps keep one input cheap; the defaults are tested in test_jsonata_limits */
    jsonata_limits lim = {.timeout_ms = 25, .max_string = 64 << 10, .max_items = 10000};
    json_t *result = NULL;
    if (jsonata_eval(e, input, NULL, &lim, &result, &err) == 0) {
        json_decref(result);
    } else if (!err.code[0]) {
        abort();
    }
    json_decref(input);
    jsonata_free(e);
    return 0;
}
