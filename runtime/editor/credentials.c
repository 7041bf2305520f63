/* credentials.c: GET /credentials/:type/:id, what the editor asks when it
 * opens a node with credentials (Node-RED 4.1.15's runtime api
 * flows.getNodeCredentials): the node's stored credentials as its type
 * defines them, a "password" field only as has_<name> (set or not), a
 * "text" field with its value ('' when unset); for a subflow instance
 * has_<name> for every stored one; {} for a node without any. The types'
 * definitions are those Node-RED's core nodes register (registerType's
 * credentials option, keyed by the type with dashes for spaces as Node-RED
 * keys them); other types have none, so {} as in Node-RED for a type that
 * defines none. */
#include <stdlib.h>
#include <string.h>

#include "editor_internal.h"
#include "engine.h"

typedef struct {
    const char *type;
    const char *fields[5]; /* "name" text, "*name" password */
} cred_def;

static const cred_def defs[] = {
    {"http-proxy", {"username", "*password"}},
    {"http-request", {"user", "*password"}},
    {"mqtt-broker", {"user", "*password"}},
    {"tls-config", {"certdata", "keydata", "cadata", "*passphrase"}},
};

static bool set(const json_t *v) { return v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)); }

void crm_editor_credentials(crm_runtime *rt, const char *rest, crm_admin_reply *r)
{
    /* rest: "type/id", the type with its spaces as dashes (the editor's
     * dashedType; Node-RED keys the definitions so: "http%20request" has none) */
    const char *slash = strrchr(rest, '/');
    if (!slash || slash == rest || !slash[1]) {
        ed_reply_text(r, 404, "text/plain; charset=utf-8", strdup("Not Found"));
        return;
    }
    char type[256];
    snprintf(type, sizeof type, "%.*s", (int)(slash - rest), rest);
    const json_t *creds = json_object_get(rt->credentials, slash + 1);
    json_t *out = json_object();
    if (json_is_object(creds)) {
        if (!strncmp(type, "subflow", 7) && (type[7] == 0 || type[7] == ':')) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)creds, k, v) {
                char key[300];
                snprintf(key, sizeof key, "has_%s", k);
                json_object_set_new(out, key, json_boolean(set(v)));
            }
        } else {
            for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
                if (strcmp(defs[i].type, type)) continue;
                for (const char *const *f = defs[i].fields; *f; f++) {
                    if (**f == '*') {
                        char key[64];
                        snprintf(key, sizeof key, "has_%s", *f + 1);
                        json_object_set_new(out, key, json_boolean(set(json_object_get(creds, *f + 1))));
                    } else {
                        const json_t *v = json_object_get(creds, *f);
                        json_object_set_new(out, *f, set(v) ? json_incref((json_t *)v) : json_string(""));
                    }
                }
            }
        }
    }
    crm_admin_reply_json(r, 200, out);
}
