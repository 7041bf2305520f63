/* yaml_types.h: js-yaml's default schema for plain scalars (internal to
 * runtime/yaml). */
#ifndef CRM_YAML_TYPES_H
#define CRM_YAML_TYPES_H

#include <jansson.h>
#include <stdbool.h>

/* Whether a plain scalar s would load as something other than a string
 * (null, bool, int, float, timestamp, merge key). */
bool crm_yaml_resolves(const char *s);
/* The value of plain scalar s under the implicit types, or NULL when it
 * is a string. *merge is set for "<<". */
json_t *crm_yaml_implicit(const char *s, bool *merge);
/* Tag resolvers for explicit !!null, !!bool, !!int, !!float, !!timestamp:
 * NULL when s does not resolve. */
json_t *crm_yaml_null(const char *s);
json_t *crm_yaml_bool(const char *s);
json_t *crm_yaml_int(const char *s);
json_t *crm_yaml_float(const char *s);
json_t *crm_yaml_timestamp(const char *s);

#endif
