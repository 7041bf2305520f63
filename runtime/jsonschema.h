/* jsonschema.h: JSON Schema (draft-07) validation as the json node's ajv 8
 * does it (Node-RED 4.1.15 builds `new Ajv({allErrors: true})`): the same
 * refusals at compile time (strict mode: unknown keywords, any `format`,
 * malformed keyword values), and the same error objects
 * ({instancePath, schemaPath, keyword, params, message}) in the same order.
 * Only local `$ref`s ("#", "#/definitions/x", JSON pointers) are resolved. */
#ifndef CRM_JSONSCHEMA_H
#define CRM_JSONSCHEMA_H

#include <jansson.h>
#include <stdbool.h>

typedef struct crm_jschema crm_jschema;

/* Compiles schema (borrowed; a deep copy is kept). NULL with *err (malloc'd,
 * may be left NULL) when ajv would throw. Any thread. */
crm_jschema *crm_jschema_compile(const json_t *schema, char **err);
void crm_jschema_free(crm_jschema *s);
/* Validates data (borrowed): 1 when valid; 0 when not, with *errors a NEW
 * array of ajv's error objects (errors may be NULL); -1 when ajv's
 * validation would overflow its stack (a $ref cycle that consumes no data:
 * JavaScript's "Maximum call stack size exceeded"). */
int crm_jschema_validate(crm_jschema *s, const json_t *data, json_t **errors);
/* ajv.errorsText(errors): "data/a must be number, data must ...", malloc'd. */
char *crm_jschema_errors_text(const json_t *errors);

#endif
