/* tls_config.c: the `tls-config` config node. It holds the TLS options that
 * http request (and any other client node) applies; its state, as
 * crm_node_data() returns it, is a crm_tls_options (runtime/httpclient.h). */
#include <stdlib.h>

#include "carmine.h"
#include "httpclient.h"

static int tls_create(crm_node *n, const json_t *cfg)
{
    crm_tls_options *o = calloc(1, sizeof *o);
    char *err = NULL;
    if (!o || crm_tls_options_from_config(o, cfg, &err) < 0) {
        crm_node_config_error(n, "tls", "%s", err ? err : "out of memory");
        free(err);
        free(o);
        return -1;
    }
    crm_node_set_data(n, o);
    return 0;
}

static void tls_close(crm_node *n)
{
    crm_tls_options *o = crm_node_data(n);
    if (!o) return;
    crm_tls_options_clear(o);
    free(o);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_tls_config = {
    .abi = CRM_ABI_VERSION, .type = "tls-config", .create = tls_create, .close = tls_close};
