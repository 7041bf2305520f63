/* yaml.h: YAML text to values and back, as js-yaml 4 (Node-RED 4.1.15's
 * yaml node) does it.
 *
 * Loading parses with libyaml (opened with dlopen on first use, so flows
 * without YAML pay nothing for it) and resolves plain scalars with
 * js-yaml's default schema: null (~ null Null NULL, empty), booleans
 * (true/True/TRUE, false...; not yes/no/on/off), integers (decimal, 0x, 0o,
 * 0b), floats (.inf, .nan, exponents), timestamps (as ISO strings, what a
 * Date becomes in JSON) and << merge keys. Dumping writes js-yaml's dump()
 * text byte for byte: 2-space indent, block style, 'single' quotes where a
 * plain scalar would read back as another type, literal | and folded >
 * blocks for multi-line and long strings, "double" quotes with escapes for
 * unprintable characters.
 */
#ifndef CRM_YAML_H
#define CRM_YAML_H

#include <jansson.h>
#include <stddef.h>

/* yaml.load(text). Returns a NEW reference, NULL for undefined (an empty
 * document) with *err NULL, or NULL with *err malloc'd: js-yaml's e.message
 * ("missed comma between flow collection entries (2:1)\n\n 1 | ..."). */
json_t *crm_yaml_load(const char *text, size_t len, char **err);
/* yaml.dump(v): malloc'd text ending in "\n", or "" for undefined. */
char *crm_yaml_dump(const json_t *v);

#endif
