/* yaml.c: the Node-RED "yaml" node (core/parsers/70-YAML.js, 4.1.15).
 *
 * A string property is parsed as YAML (js-yaml's load, on libyaml:
 * runtime/yaml), an object or array is written as YAML text (js-yaml's
 * dump). Buffers and other types are dropped with Node-RED's warnings; a
 * message without the property passes on unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "yaml/yaml.h"

typedef struct {
    crm_path *path;
} yaml_state;

static int yaml_create(crm_node *n, const json_t *cfg)
{
    const char *prop = crm_cfg_str(cfg, "property", "");
    char *err = NULL;
    crm_path *p = crm_path_parse(*prop ? prop : "payload", &err);
    if (!p) {
        crm_node_config_error(n, "property", "%s", err ? err : "invalid property");
        free(err);
        return -1;
    }
    yaml_state *s = calloc(1, sizeof *s);
    s->path = p;
    crm_node_set_data(n, s);
    return 0;
}

static void yaml_close(crm_node *n)
{
    yaml_state *s = crm_node_data(n);
    if (!s) return;
    crm_path_free(s->path);
    free(s);
}

static void yaml_input(crm_node *n, json_t *msg)
{
    yaml_state *s = crm_node_data(n);
    bool throws = false;
    json_t *v = crm_path_get(s->path, msg, msg, &throws);
    if (!v) {
        crm_node_send(n, 0, json_incref(msg));
        crm_node_done(n, msg);
    } else if (json_is_string(v)) {
        char *err = NULL;
        json_t *out = crm_yaml_load(json_string_value(v), json_string_length(v), &err);
        if (err) {
            crm_node_error(n, msg, "%s", err);
            free(err);
        } else {
            crm_path_set(s->path, msg, msg, out, true); /* NULL (undefined) deletes */
            crm_node_send(n, 0, json_incref(msg));
            crm_node_done(n, msg);
        }
    } else if (crm_is_buf(v)) {
        crm_node_warn(n, "Ignored non-object payload");
        crm_node_done(n, msg);
    } else if (json_is_object(v) || json_is_array(v) || json_is_null(v)) {
        char *text = crm_yaml_dump(v);
        crm_path_set(s->path, msg, msg, json_string(text), true);
        free(text);
        crm_node_send(n, 0, json_incref(msg));
        crm_node_done(n, msg);
    } else {
        crm_node_warn(n, "Ignored unsupported payload type");
        crm_node_done(n, msg);
    }
    json_decref(msg);
}

const crm_node_type crm_type_yaml = {
    .abi = CRM_ABI_VERSION,
    .type = "yaml",
    .create = yaml_create,
    .input = yaml_input,
    .close = yaml_close,
};
