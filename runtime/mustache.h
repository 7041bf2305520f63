/* mustache.h: templates rendered as mustache.js 4.2 (the version Node-RED
 * 4.1.15 ships) renders them: {{name}} HTML-escaped, {{{name}}} and
 * {{& name}} raw, sections, inverted sections, dotted names, the implicit
 * iterator {{.}}, comments, set delimiters, standalone-line stripping, the
 * same parse errors ("Unclosed tag at 12"). Partials render as nothing (Node-RED
 * passes none). Values are JSON (value.h); lambdas do not exist. */
#ifndef CRM_MUSTACHE_H
#define CRM_MUSTACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

typedef struct crm_mustache crm_mustache;

/* Parses text (len bytes). NULL and *err malloc'd (mustache.js's message) on
 * a syntax error. Any thread. */
crm_mustache *crm_mustache_parse(const char *text, size_t len, char **err);
void crm_mustache_free(crm_mustache *m);
/* Calls fn with the name of every tag that is not text (sections included,
 * recursively), in template order, as Node-RED's extractTokens sees them. */
void crm_mustache_names(const crm_mustache *m, void (*fn)(const char *name, void *arg), void *arg);

/* Whether the template has a partial tag ({{> name}}) at any depth. */
bool crm_mustache_has_partial(const crm_mustache *m);

/* What a name that no view on the stack has resolves to: a borrowed value or
 * NULL (undefined). Node-RED's template answers flow./global./env. names. */
typedef const json_t *(*crm_mustache_fallback)(const char *name, void *arg);

typedef struct {
    crm_mustache_fallback fallback; /* may be NULL */
    void *arg;
    /* Node-RED's template with output "json": strings found from the root
     * view (not inside a section) get \\ \n \t \r \f \b escaped first. */
    bool json_escape_root;
} crm_mustache_opts;

/* Renders m with view (borrowed) as the root context; malloc'd text. */
char *crm_mustache_write(const crm_mustache *m, const json_t *view, const crm_mustache_opts *opts);
/* The same, appended to out (a strbuf a caller may reuse between renderings). */
void crm_mustache_write_sb(const crm_mustache *m, const json_t *view, const crm_mustache_opts *opts, strbuf *out);

#endif
