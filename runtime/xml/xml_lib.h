/* xml_lib.h: libxml2, opened with dlopen on first use.
 *
 * libxml2 pulls ICU and liblzma into a process: a few megabytes of
 * resident memory that flows without xml or html nodes should not pay.
 * The few libxml2 functions Carmine calls are reached through this table;
 * the tree structures (xmlNode, xmlAttr...) are read directly from the
 * headers. Thread-safe; NULL when libxml2.so.2 cannot be loaded.
 */
#ifndef CRM_XML_LIB_H
#define CRM_XML_LIB_H

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

typedef struct {
    xmlDocPtr (*readMemory)(const char *buf, int size, const char *url, const char *enc, int options);
    htmlDocPtr (*htmlReadMemory)(const char *buf, int size, const char *url, const char *enc, int options);
    void (*freeDoc)(xmlDocPtr doc);
    xmlNodePtr (*docGetRootElement)(const xmlDoc *doc);
    const xmlError *(*getLastError)(void);
    void (*resetLastError)(void);
    void (*setStructuredErrorFunc)(void *ctx, xmlStructuredErrorFunc handler);
    void (*setGenericErrorFunc)(void *ctx, xmlGenericErrorFunc handler);
    xmlNodePtr (*newDocNode)(xmlDocPtr doc, xmlNsPtr ns, const xmlChar *name, const xmlChar *content);
    xmlNodePtr (*addPrevSibling)(xmlNodePtr cur, xmlNodePtr elem);
    void (*unlinkNode)(xmlNodePtr cur);
    xmlNodePtr (*addChild)(xmlNodePtr parent, xmlNodePtr cur);
} crm_xml_lib_t;

const crm_xml_lib_t *crm_xml_lib(void);

/* The tbody HTML implies around rows written directly in a table, added
 * under n and its following siblings (html_tree.c). */
void crm_html_imply_tbody(const crm_xml_lib_t *x, xmlNode *n);

#endif
