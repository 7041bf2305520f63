/* http_proxy.c: the `http proxy` config node. Its state, as crm_node_data()
 * returns it, is a crm_proxy_options (runtime/httpclient.h) that http request
 * applies to its transfers. */
#include <stdlib.h>

#include "carmine.h"
#include "httpclient.h"

static int proxy_create(crm_node *n, const json_t *cfg)
{
    crm_proxy_options *o = calloc(1, sizeof *o);
    char *err = NULL;
    if (!o || crm_proxy_options_from_config(o, cfg, &err) < 0) {
        crm_node_config_error(n, "url", "%s", err ? err : "out of memory");
        free(err);
        free(o);
        return -1;
    }
    crm_node_set_data(n, o);
    return 0;
}

static void proxy_close(crm_node *n)
{
    crm_proxy_options *o = crm_node_data(n);
    if (!o) return;
    crm_proxy_options_clear(o);
    free(o);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_http_proxy = {
    .abi = CRM_ABI_VERSION, .type = "http proxy", .create = proxy_create, .close = proxy_close};
