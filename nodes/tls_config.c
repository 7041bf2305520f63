/* tls_config.c: the `tls-config` config node. It holds the TLS options that
 * http request, the tcp nodes and websocket-client apply; its state, as
 * crm_node_data() returns it, is a crm_tls_options (runtime/httpclient.h).
 * As Node-RED's (core/network/05-tls.js): a cert without a key (or the
 * other way round), or a file that cannot be read, is logged and leaves the
 * node without cert, key and ca (servername, ALPN and the check remain). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "httpclient.h"
#include "net/netutil.h"

static void drop_files(crm_tls_options *o)
{
    char **f[] = {&o->cert_file, &o->key_file, &o->ca_file, &o->cert_pem, &o->key_pem, &o->ca_pem};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
}

/* Node-RED's checks: 0, or -1 after logging what it logs. */
static int check_files(crm_node *n, const crm_tls_options *o)
{
    if (o->cert_file || o->key_file || o->ca_file) {
        if (!o->cert_file != !o->key_file) {
            crm_node_error(n, NULL, "No certificate/key file provided");
            return -1;
        }
        const char *paths[] = {o->cert_file, o->key_file, o->ca_file};
        for (size_t i = 0; i < 3; i++) {
            if (!paths[i]) continue;
            FILE *f = fopen(paths[i], "r");
            if (!f) {
                char *e = crm_sys_error(errno, "open", paths[i]);
                crm_node_error(n, NULL, "Error: %s", e ? e : "");
                free(e);
                return -1;
            }
            fclose(f);
        }
    } else if (!o->cert_pem != !o->key_pem) {
        crm_node_error(n, NULL, "No certificate/key file provided");
        return -1;
    }
    return 0;
}

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
    if (check_files(n, o) < 0) drop_files(o);
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
