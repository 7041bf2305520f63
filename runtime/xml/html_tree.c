/* html_tree.c: what parse5 (cheerio's parser, so Node-RED's html node's)
 * does to a document that libxml2's HTML parser leaves as written: a tr
 * directly in a table goes into an implied tbody, as HTML's "in table"
 * insertion mode puts it, so "tbody tr" selects it and a table's html
 * shows the tbody. */
#include <stdbool.h>
#include <strings.h>

#include "xml_lib.h"

static bool named(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcasecmp((const char *)n->name, name);
}

/* A run of rows (and the text between them) shares one tbody; any other
 * element (caption, colgroup, thead, tbody, tfoot) ends the run. */
static void imply_tbody(const crm_xml_lib_t *x, xmlNode *table)
{
    xmlNode *body = NULL;
    for (xmlNode *c = table->children, *next; c; c = next) {
        next = c->next;
        if (named(c, "tr")) {
            if (!body) {
                body = x->newDocNode(table->doc, NULL, (const xmlChar *)"tbody", NULL);
                if (!body) return;
                x->addPrevSibling(c, body);
            }
        } else if (c->type == XML_ELEMENT_NODE) {
            body = NULL;
            continue;
        } else if (!body) {
            continue;
        }
        x->unlinkNode(c);
        x->addChild(body, c); /* may merge a text node into the last one (and free it) */
    }
}

void crm_html_imply_tbody(const crm_xml_lib_t *x, xmlNode *n)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (named(n, "table")) imply_tbody(x, n);
        crm_html_imply_tbody(x, n->children);
    }
}
