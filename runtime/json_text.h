/* json_text.h: internal (not part of the plugin API) entry points of the
 * JSON writer in value.c, for built-in nodes that keep a buffer of their own. */
#ifndef CRM_JSON_TEXT_H
#define CRM_JSON_TEXT_H

#include "carmine.h"
#include "strbuf.h"

/* JSON.stringify(v, null, indent) appended to sb (as crm_stringify writes it). */
void crm_stringify_append(strbuf *sb, const json_t *v, int indent);

#endif
