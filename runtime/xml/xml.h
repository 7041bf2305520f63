/* xml.h: XML text to xml2js 0.6's objects and back (Node-RED's xml node).
 *
 * Parsing runs libxml2 (xml_lib.h) and maps the tree as xml2js does with
 * its "0.2" defaults: attributes under attrkey ("$"), text under charkey
 * ("_"; an element with only text becomes the string), child elements in
 * arrays (explicitArray), the root element as the single key. Building
 * writes what xml2js's Builder (xmlbuilder) writes for an object.
 */
#ifndef CRM_XML_H
#define CRM_XML_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *attrkey, *charkey;
    bool explicit_array, explicit_root, trim, normalize, normalize_tags, explicit_charkey, merge_attrs, ignore_attrs;
    const json_t *empty_tag; /* NULL or "": the element's own (blank) text */
} crm_xml_opts;

/* xml2js's defaults["0.2"] with attrkey "$" and charkey "_". */
void crm_xml_opts_default(crm_xml_opts *o);
/* Takes the options xml2js reads from a (borrowed) msg.options object. */
void crm_xml_opts_from(crm_xml_opts *o, const json_t *options);

/* parseString(text). A NEW reference (json null for blank text), or NULL
 * with *err malloc'd in Node-RED's words ("Error: Unexpected close tag
 * ..."). */
json_t *crm_xml_parse(const char *text, size_t len, const crm_xml_opts *o, char **err);

/* new Builder(options).buildObject(v): malloc'd XML text; options is the
 * borrowed msg.options object or NULL for Node-RED's {renderOpts:{pretty:
 * false}}. NULL with *err malloc'd for what xmlbuilder refuses. */
char *crm_xml_build(const json_t *v, const json_t *options, char **err);

#endif
