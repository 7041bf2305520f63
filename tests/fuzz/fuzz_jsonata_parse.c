/* fuzz_jsonata_parse.c: libFuzzer target for the JSONata parser. The input is
 * an expression (any bytes); compiling it must either succeed or fail with an
 * error code, never crash, leak or take unbounded time or stack. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *expr = malloc(size + 1);
    if (!expr) return 0;
    memcpy(expr, data, size);
    expr[size] = 0;
    jsonata_error err;
    jsonata *e = jsonata_compile(expr, &err);
    if (e) {
        jsonata_free(e);
    } else if (!err.code[0]) {
        abort(); /* a refusal always carries a code */
    }
    free(expr);
    return 0;
}
