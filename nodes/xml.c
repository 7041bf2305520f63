/* xml.c: the Node-RED "xml" node (core/parsers/70-XML.js, 4.1.15).
 *
 * A string property is parsed into xml2js's object shape (runtime/xml, on
 * libxml2), an object is written as XML as xml2js's Builder writes it.
 * msg.options, when it is an object, is handed to xml2js in Node-RED and
 * changed by it (async, attrkey, charkey are set on it): the same fields
 * are set here. Other types are dropped with Node-RED's warning.
 */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "xml/xml.h"

typedef struct {
    crm_path *path;
    char *attrkey, *charkey; /* "" when unset */
} xml_state;

static int xml_create(crm_node *n, const json_t *cfg)
{
    const char *prop = crm_cfg_str(cfg, "property", "");
    char *err = NULL;
    crm_path *p = crm_path_parse(*prop ? prop : "payload", &err);
    if (!p) {
        crm_node_config_error(n, "property", "%s", err ? err : "invalid property");
        free(err);
        return -1;
    }
    xml_state *s = calloc(1, sizeof *s);
    s->path = p;
    s->attrkey = strdup(crm_cfg_str(cfg, "attr", ""));
    s->charkey = strdup(crm_cfg_str(cfg, "chr", ""));
    crm_node_set_data(n, s);
    return 0;
}

static void xml_close(crm_node *n)
{
    xml_state *s = crm_node_data(n);
    if (!s) return;
    crm_path_free(s->path);
    free(s->attrkey);
    free(s->charkey);
    free(s);
}

/* options.attrkey = node.attrkey || options.attrkey || '$' (and charkey) */
static void set_key(json_t *options, const char *field, const char *node_value, const char *def)
{
    json_t *cur = json_object_get(options, field);
    if (*node_value) json_object_set_new(options, field, json_string(node_value));
    else if (!crm_truthy(cur)) json_object_set_new(options, field, json_string(def));
}

static void xml_input(crm_node *n, json_t *msg)
{
    xml_state *s = crm_node_data(n);
    bool throws = false;
    json_t *v = crm_path_get(s->path, msg, msg, &throws);
    json_t *options = json_object_get(msg, "options");
    if (!json_is_object(options) || crm_is_buf(options)) options = NULL;
    if (!v) {
        crm_node_send(n, 0, json_incref(msg));
        crm_node_done(n, msg);
    } else if (json_is_object(v) || json_is_array(v) || json_is_null(v)) {
        if (options) json_object_set_new(options, "async", json_false());
        char *err = NULL;
        char *text = crm_xml_build(v, options, &err);
        if (!text) {
            crm_node_error(n, msg, "%s", err);
            free(err);
        } else {
            crm_path_set(s->path, msg, msg, json_string(text), true);
            free(text);
            crm_node_send(n, 0, json_incref(msg));
            crm_node_done(n, msg);
        }
    } else if (json_is_string(v)) {
        crm_xml_opts o;
        crm_xml_opts_default(&o);
        if (options) {
            crm_xml_opts_from(&o, options);
            json_object_set_new(options, "async", json_true());
            set_key(options, "attrkey", s->attrkey, "$");
            set_key(options, "charkey", s->charkey, "_");
            o.attrkey = json_string_value(json_object_get(options, "attrkey"));
            o.charkey = json_string_value(json_object_get(options, "charkey"));
        } else {
            o.attrkey = *s->attrkey ? s->attrkey : "$";
            o.charkey = *s->charkey ? s->charkey : "_";
        }
        char *err = NULL;
        json_t *out = crm_xml_parse(json_string_value(v), json_string_length(v), &o, &err);
        if (!out) {
            crm_node_error(n, msg, "%s", err);
            free(err);
        } else {
            crm_path_set(s->path, msg, msg, out, true);
            crm_node_send(n, 0, json_incref(msg));
            crm_node_done(n, msg);
        }
    } else {
        crm_node_warn(n, "This node only handles xml strings or js objects.");
        crm_node_done(n, msg);
    }
    json_decref(msg);
}

const crm_node_type crm_type_xml = {
    .abi = CRM_ABI_VERSION,
    .type = "xml",
    .create = xml_create,
    .input = xml_input,
    .close = xml_close,
};
