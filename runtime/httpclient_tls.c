/* httpclient_tls.c: reading Node-RED's tls-config and http proxy config
 * nodes into the option structs the HTTP client applies to a transfer. */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "httpclient.h"
#include "strbuf.h"

/* A non-empty string member as a malloc'd copy, else NULL. */
static char *str_dup(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? strdup(s) : NULL;
}

int crm_tls_options_from_config(crm_tls_options *o, const json_t *cfg, char **err)
{
    memset(o, 0, sizeof *o);
    *err = NULL;
    if (!json_is_object(cfg)) {
        *err = strdup("tls config is not an object");
        return -1;
    }
    const json_t *cred = json_object_get(cfg, "credentials");
    o->verify = crm_cfg_bool(cfg, "verifyservercert", true);
    /* Uploaded data (credentials) wins over file paths, as in Node-RED. */
    o->cert_pem = str_dup(cred, "certdata");
    o->key_pem = str_dup(cred, "keydata");
    o->ca_pem = str_dup(cred, "cadata");
    o->passphrase = str_dup(cred, "passphrase");
    if (!o->cert_pem) o->cert_file = str_dup(cfg, "cert");
    if (!o->key_pem) o->key_file = str_dup(cfg, "key");
    if (!o->ca_pem) o->ca_file = str_dup(cfg, "ca");
    o->servername = str_dup(cfg, "servername");
    o->alpn = str_dup(cfg, "alpnprotocol");
    return 0;
}

void crm_tls_options_clear(crm_tls_options *o)
{
    free(o->ca_file);
    free(o->cert_file);
    free(o->key_file);
    free(o->ca_pem);
    free(o->cert_pem);
    free(o->key_pem);
    free(o->passphrase);
    free(o->servername);
    free(o->alpn);
    memset(o, 0, sizeof *o);
}

int crm_proxy_options_from_config(crm_proxy_options *o, const json_t *cfg, char **err)
{
    memset(o, 0, sizeof *o);
    *err = NULL;
    if (!json_is_object(cfg)) {
        *err = strdup("proxy config is not an object");
        return -1;
    }
    const json_t *cred = json_object_get(cfg, "credentials");
    o->url = str_dup(cfg, "url");
    o->user = str_dup(cred, "username");
    o->password = str_dup(cred, "password");
    const json_t *np = json_object_get(cfg, "noproxy");
    if (json_is_array(np) && json_array_size(np)) {
        strbuf sb = SB_INIT;
        size_t i;
        json_t *h;
        json_array_foreach(np, i, h) {
            if (!json_is_string(h)) continue;
            if (sb.len) sb_putc(&sb, ',');
            sb_puts(&sb, json_string_value(h));
        }
        o->noproxy = sb.data ? sb_take(&sb) : NULL;
    }
    return 0;
}

void crm_proxy_options_clear(crm_proxy_options *o)
{
    free(o->url);
    free(o->user);
    free(o->password);
    free(o->noproxy);
    memset(o, 0, sizeof *o);
}
