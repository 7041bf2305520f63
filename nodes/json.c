/* json.c: the Node-RED "json" node (core/parsers/70-JSON.js), Node-RED
 * 4.1.15's semantics.
 *
 * A string or Buffer at `property` is parsed (action "" or "obj"), any other
 * object, number or boolean is stringified (action "" or "str", indented by
 * 4 when `pretty`); the other direction passes the value unchanged. A message
 * without the property passes on. With msg.schema the value is validated
 * (runtime/jsonschema.c, ajv's wording): a valid message loses msg.schema, an
 * invalid one gets msg.schemaError and goes to catch nodes as
 * "JSON Schema error: data/a must be number". The compiled schema is kept
 * until a message brings a different one (Node-RED compares them as JSON text).
 * Quirk kept: action "str" with a schema parses msg[property] with the
 * property name taken literally (not as a path).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "net/netutil.h"
#include "json_text.h"
#include "jsonschema.h"
#include "strbuf.h"
#include "undefined_read.h"

typedef enum { ACT_AUTO, ACT_STR, ACT_OBJ } json_action;

typedef struct {
    json_action action;
    int indent;
    char *property;
    size_t proplen;
    bool plain;            /* property is one name (payload): found by a walk over msg, see json_input */
    crm_path *path;
    strbuf out;            /* the text of a stringify, reused from message to message */
    char *schema_text;     /* JSON.stringify of the schema compiled below */
    crm_jschema *compiled;
} json_node;

static int json_create(crm_node *n, const json_t *cfg)
{
    json_node *s = calloc(1, sizeof *s);
    if (!s) return -1;
    const char *a = crm_cfg_str(cfg, "action", "");
    s->action = !strcmp(a, "str") ? ACT_STR : !strcmp(a, "obj") ? ACT_OBJ : ACT_AUTO;
    s->indent = crm_truthy(json_object_get(cfg, "pretty")) ? 4 : 0;
    const char *p = crm_cfg_str(cfg, "property", "");
    s->property = strdup(*p ? p : "payload");
    s->proplen = strlen(s->property);
    s->plain = s->proplen > 0 && !(s->property[0] >= '0' && s->property[0] <= '9');
    for (const char *c = s->property; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '$'))
            s->plain = false;
    char *err = NULL;
    s->path = crm_path_parse(s->property, &err);
    crm_node_set_data(n, s);
    if (!s->path) {
        crm_node_config_error(n, "property", "%s", err ? err : "invalid property");
        free(err);
        return -1;
    }
    return 0;
}

/* The text of a string or Buffer value. */
static const char *text_of(const json_t *v, size_t *len)
{
    if (json_is_string(v)) {
        *len = json_string_length(v);
        return json_string_value(v);
    }
    return (const char *)crm_buf_data(v, len);
}

/* JSON.parse(text): NULL and *err ("Unexpected token ...") on a syntax error. */
static json_t *js_parse(const char *text, size_t len, char **err)
{
    char e[128];
    json_t *v = crm_parse(text, len, e, sizeof e);
    if (!v) {
        *err = crm_json_error(text, len);
        if (!*err) *err = strdup("Unexpected end of JSON input");
    }
    return v;
}

/* Validates v; on failure sets msg.schemaError and reports the error. */
static bool valid_or_report(crm_node *n, json_node *s, json_t *msg, const json_t *v)
{
    json_t *errors = NULL;
    int r = crm_jschema_validate(s->compiled, v, &errors);
    if (r > 0) return true;
    if (r < 0) { /* the RangeError ajv throws */
        crm_node_error(n, msg, "Maximum call stack size exceeded");
        return false;
    }
    char *text = crm_jschema_errors_text(errors);
    json_object_set_new(msg, "schemaError", errors);
    crm_node_error(n, msg, "JSON Schema error: %s", text);
    free(text);
    return false;
}

static void pass(crm_node *n, json_t *msg, bool validated)
{
    if (validated) json_object_del(msg, "schema");
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

static void json_input(crm_node *n, json_t *msg)
{
    json_node *s = crm_node_data(n);
    bool validate = false;
    /* A property that is one name (the usual "payload") of a message of a
     * few members: one walk over the members finds it and msg.schema, and
     * its value is replaced in place, where three lookups by name would hash
     * each key (msg is a plain object: a property read is a member read, and
     * the values set here are new, so no cycle to break) */
    json_t *schema = NULL;
    void *prop_it = NULL;
    bool walked = s->plain && json_object_size(msg) <= 16 && !crm_is_buf(msg) && !crm_is_handle(msg);
    if (walked) {
        for (void *it = json_object_iter(msg); it; it = json_object_iter_next(msg, it)) {
            size_t kl = json_object_iter_key_len(it);
            const char *k = json_object_iter_key(it);
            if (kl == s->proplen && !memcmp(k, s->property, kl)) prop_it = it;
            if (kl == 6 && !memcmp(k, "schema", 6)) schema = json_object_iter_value(it);
        }
    } else {
        schema = json_object_get(msg, "schema");
    }
    if (crm_truthy(schema)) {
        char *text = crm_stringify(schema, 0);
        if (!s->schema_text || !text || strcmp(text, s->schema_text)) {
            crm_jschema_free(s->compiled);
            free(s->schema_text);
            s->schema_text = NULL;
            char *err = NULL;
            s->compiled = crm_jschema_compile(schema, &err);
            free(err);
            if (!s->compiled) {
                free(text);
                crm_node_error(n, msg, "JSON Schema error: failed to compile schema");
                json_decref(msg);
                return;
            }
            s->schema_text = text;
        } else {
            free(text);
        }
        validate = true;
    }
    bool throws = false;
    json_t *value = walked ? (prop_it ? json_object_iter_value(prop_it) : NULL) : crm_path_get(s->path, msg, msg, &throws);
    if (throws) {
        crm_undefined_read_error(n, s->property, msg);
        json_decref(msg);
        return;
    }
    if (!value) {
        pass(n, msg, false);
        return;
    }
    if (json_is_string(value) || crm_is_buf(value)) {
        size_t len;
        const char *text = text_of(value, &len);
        char *err = NULL;
        if (s->action != ACT_STR) {
            json_t *parsed = js_parse(text, len, &err);
            if (!parsed) {
                crm_node_error(n, msg, "%s", err);
                free(err);
                json_decref(msg);
                return;
            }
            if (walked) json_object_iter_set_new(msg, prop_it, parsed);
            else crm_path_set(s->path, msg, msg, parsed, true);
            if (validate && !valid_or_report(n, s, msg, walked ? parsed : crm_path_get(s->path, msg, msg, &throws))) {
                json_decref(msg);
                return;
            }
            pass(n, msg, validate);
            return;
        }
        if (validate) {
            /* JSON.parse(msg[node.property]): the property name taken literally,
             * outside the node's try: a failure is the handler's exception */
            const json_t *lit = json_object_get(msg, s->property);
            json_t *parsed = NULL;
            if (lit && (json_is_string(lit) || crm_is_buf(lit))) {
                const char *t = text_of(lit, &len);
                parsed = js_parse(t, len, &err);
                free(err);
                if (!parsed) {
                    char *se = crm_json_syntax_error(t, len);
                    crm_node_error(n, msg, "%s", se);
                    free(se);
                }
            } else {
                char *ls = crm_to_string(lit);
                char *se = crm_json_syntax_error(ls, strlen(ls));
                crm_node_error(n, msg, "%s", se);
                free(se);
                free(ls);
            }
            if (!parsed) {
                json_decref(msg);
                return;
            }
            bool ok = valid_or_report(n, s, msg, parsed);
            json_decref(parsed);
            if (!ok) {
                json_decref(msg);
                return;
            }
        }
        pass(n, msg, validate);
        return;
    }
    /* an object (arrays, null, Buffers), a number or a boolean */
    if (s->action == ACT_OBJ) {
        if (validate && !valid_or_report(n, s, msg, value)) {
            json_decref(msg);
            return;
        }
        pass(n, msg, validate);
        return;
    }
    if (crm_is_buf(value)) {
        crm_node_warn(n, "Ignored non-object payload");
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (validate && !valid_or_report(n, s, msg, value)) {
        json_decref(msg);
        return;
    }
    s->out.len = 0;
    crm_stringify_append(&s->out, value, s->indent);
    const char *text = s->out.data ? s->out.data : "";
    size_t len = s->out.len;
    json_t *str = crm_utf8_valid(text, len) ? json_stringn_nocheck(text, len) : json_string(text);
    if (s->out.cap > (1u << 20)) sb_free(&s->out); /* keep no big buffer for ever */
    if (walked) json_object_iter_set_new(msg, prop_it, str);
    else crm_path_set(s->path, msg, msg, str, true);
    pass(n, msg, validate);
}

static void json_close(crm_node *n)
{
    json_node *s = crm_node_data(n);
    if (!s) return;
    crm_path_free(s->path);
    crm_jschema_free(s->compiled);
    free(s->schema_text);
    free(s->property);
    sb_free(&s->out);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_json = {
    .abi = CRM_ABI_VERSION,
    .type = "json",
    .create = json_create,
    .input = json_input,
    .close = json_close,
};
