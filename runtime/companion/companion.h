/* companion.h: the companion, Carmine's face of a Node.js process that runs
 * the node types Carmine has no C code for, unchanged, in Node-RED's own
 * runtime (docs/companion.md).
 *
 * The loader asks crm_companion_split() which nodes are hosted: a node whose
 * type no built-in or plugin provides but a module in the userDir's
 * node_modules does. Those nodes (and the config nodes they reference) go to
 * the companion; in Carmine each hosted node is replaced by a bridge node
 * (crm_companion_bridge_type) with the same id and wires, which forwards its
 * input to the companion and sends what the hosted node sends. A flow whose
 * types are all native never scans the userDir and never starts the process.
 *
 * Threading: split and the module scan run on the loading thread; the bridge
 * nodes follow carmine.h's rules; the first bridge to start owns the child
 * process and its socket (all I/O on its loop, through crm_watch_fd).
 */
#ifndef CRM_COMPANION_H
#define CRM_COMPANION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "carmine.h"
#include "runtime.h"
#include "strbuf.h"

/* The node type of a hosted node's stand-in in Carmine. */
extern const crm_node_type crm_companion_bridge_type;

/* Whether the loader should make the node (a flows.json object) a bridge:
 * the split marked it hosted. */
bool crm_companion_hosted(const json_t *node);

/* Splits flows (borrowed). Returns NULL when no node is hosted (use flows as
 * they are), else a NEW flows array for Carmine: hosted nodes marked (see
 * crm_companion_hosted) with their wires to other hosted nodes removed, and
 * config nodes only hosted nodes use left out. The companion's part is kept
 * for the bridges to start it. Refusals (a hosted node inside a subflow, no
 * Node.js runtime installed) are appended to problems, one line each, and
 * counted in *nproblems. */
json_t *crm_companion_split(crm_runtime *rt, const json_t *flows, unsigned load_flags, strbuf *problems,
                            int *nproblems);

/* What `carmine check` prints after a load: the hosted nodes and their
 * modules, modules listed in the userDir's package.json but not installed
 * (with the `carmine install` line), and a hint for unknown types. */
void crm_companion_report(FILE *out, const char *userdir);

/* An inject node's start (runtime.c, after every other node started): true
 * when it is held until the companion is ready (its start then runs on its
 * loop, or after 30 s without it), as Node-RED starts all nodes before any
 * inject fires; false, start it now: no hosted nodes, or the companion is
 * ready. crm_companion_forget_held drops the held ones (the flows stop). */
bool crm_companion_hold_start(crm_node *n);
void crm_companion_forget_held(void);

/* The type -> module map of the npm modules installed in userdir (NEW
 * object: type name -> module name); an empty object when there are none. */
json_t *crm_companion_scan_modules(const char *userdir);

/* `carmine install PACKAGE`: npm install --save PACKAGE in userdir (a
 * package.json is created when missing). Returns npm's exit status. */
int crm_companion_install(const char *userdir, const char *package);

#endif
