/* unit.h: the few macros the unit tests share. Each test program prints one
 * line per failed check and exits non-zero when any check failed. */
#ifndef CRM_UNIT_H
#define CRM_UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_failures, unit_checks;

#define CHECK(cond) do { unit_checks++; if (!(cond)) { unit_failures++; \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); unit_checks++; \
    if (!_a || !_b || strcmp(_a, _b)) { unit_failures++; \
    fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, _b ? _b : "(null)", _a ? _a : "(null)"); } } while (0)
#define UNIT_DONE() do { printf("%d checks, %d failed\n", unit_checks, unit_failures); \
    return unit_failures ? 1 : 0; } while (0)
#endif
