/* supervisor.h: high availability on one machine (docs/ha.md).
 *   carmine --replicas N FLOWS.json   a supervisor runs N replica processes
 *                                      sharing the HTTP port (SO_REUSEPORT),
 *                                      restarts the ones that die, rolls
 *                                      deploys one replica at a time
 *   carmine deploy FLOWS.json --to URL the pipeline step: POST /flows (v2,
 *                                      with the rev read first)
 */
#ifndef CRM_SUPERVISOR_H
#define CRM_SUPERVISOR_H

#include <jansson.h>

/* settings: the complete settings object the command line built (borrowed);
 * flows_path: the flows file, rewritten by deploys as Node-RED rewrites
 * its flows file. admin_port: -1 for the default (HTTP port + 1). Returns
 * the process exit status. */
int crm_supervisor_main(const json_t *settings, const char *flows_path, int replicas, int admin_port);

/* `carmine deploy` (argv[0] is "deploy"). */
int crm_deploy_main(int argc, char **argv);

/* SHA-256 hex of JSON.stringify(flows): the Admin API's rev (out: 65 bytes). */
void crm_flows_rev(const json_t *flows, char *out);

#endif
