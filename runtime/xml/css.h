/* css.h: CSS selectors over a libxml2 tree, and cheerio's renderings of
 * what they select (Node-RED's html node).
 *
 * Selectors: type and *, #id, .class, [attr], [attr=v] (and ~= ^= $= *=
 * |=, quoted or not, case-sensitive), :first-child, :last-child,
 * :only-child, :first-of-type, :last-of-type, :nth-child(an+b|odd|even),
 * :empty, :not(compound), :contains(text), combinators descendant, >, +, ~
 * and groups with ",". Matches come in document order, each once.
 */
#ifndef CRM_CSS_H
#define CRM_CSS_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

typedef struct crm_css crm_css;

/* NULL with *err malloc'd (css-what's words where known) on a bad selector. */
crm_css *crm_css_parse(const char *sel, char **err);
void crm_css_free(crm_css *c);
/* The elements under root (root included) that match, in document order.
 * *out is malloc'd. */
size_t crm_css_select(const crm_css *c, xmlNode *root, xmlNode ***out);

/* cheerio's $(el).html(): the children as parse5 serialises HTML. */
void crm_html_inner(strbuf *sb, const xmlNode *el);
/* cheerio.load($(el).html().trim(), null, false).xml(): the children,
 * trimmed at both ends, as dom-serializer writes XML. */
void crm_html_inner_xml(strbuf *sb, const xmlNode *el);
/* cheerio's $(el).text(): the text of the descendants, without comments,
 * scripts and styles. */
void crm_html_text(strbuf *sb, const xmlNode *el);

#endif
