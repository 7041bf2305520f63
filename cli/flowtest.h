/* flowtest.h: `carmine test FILE|DIR...`, the runner of flow test cases
 * (../shared/FLOWTEST.md) on the embedded engine (runtime.h). */
#ifndef CRM_FLOWTEST_H
#define CRM_FLOWTEST_H

/* argv[0] is "test". Prints one TAP-like line per case and a last line
 * "N passed, N failed, N skipped". Returns 0 when no case failed, 1 when
 * one did, 2 on a usage error. */
int crm_flowtest_main(int argc, char **argv);

#endif
