/* http_in.c: Node-RED's http in (spec §3.10). The node only registers its
 * route; the server (runtime/httpd.c) parses each request on its own threads
 * and hands the finished message, {req, res, payload}, to this node's loop,
 * where it is sent on. The node has no input and never answers by itself. */
#include <string.h>
#include <strings.h>

#include "http.h"
#include "httpd.h"

static void on_request(crm_node *n, json_t *msg) { crm_node_send(n, 0, msg); }

static bool known_method(const char *m)
{
    static const char *ok[] = {"get", "post", "put", "delete", "patch"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strcasecmp(m, ok[i])) return true;
    return false;
}

static int http_in_create(crm_node *n, const json_t *cfg)
{
    crm_httpd *h = crm_node_httpd(n);
    if (h && !crm_httpd_node_root(h)) {
        crm_node_warn(n, "Cannot create http-in node when httpNodeRoot set to false");
        return 0;
    }
    const char *url = crm_cfg_str(cfg, "url", "");
    if (!*url) {
        crm_node_warn(n, "missing path");
        return 0;
    }
    const char *method = crm_cfg_str(cfg, "method", "get");
    if (!known_method(method)) return 0; /* Node-RED registers no route for other methods */
    unsigned flags = 0;
    if (crm_cfg_bool(cfg, "upload", false)) flags |= CRM_HTTP_UPLOAD;
    if (crm_cfg_bool(cfg, "skipBodyParsing", false)) flags |= CRM_HTTP_RAW_BODY;
    int rc = crm_http_route_add(n, method, url, flags, on_request);
    if (rc == -1) {
        crm_node_config_error(n, "url", "cannot use the path \"%s\"", url);
        return -1;
    }
    if (rc == -3) crm_node_warn(n, "no HTTP server: the route %s is not served (see the HTTP settings errors)", url);
    return 0;
}

static void http_in_close(crm_node *n) { crm_http_route_remove(n); }

const crm_node_type crm_type_http_in = {
    .abi = CRM_ABI_VERSION,
    .type = "http in",
    .create = http_in_create,
    .close = http_in_close,
};
