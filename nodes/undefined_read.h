/* undefined_read.h: the text of the TypeError JavaScript throws when
 * RED.util.getMessageProperty walks a property expression through undefined
 * (json, range, template...): "Cannot read properties of undefined
 * (reading 'b')" names the segment read from the first undefined prefix. */
#ifndef CRM_UNDEFINED_READ_H
#define CRM_UNDEFINED_READ_H
#include <stdlib.h>
#include <string.h>

#include "carmine.h"

/* The name JavaScript reports when reading `expr` from msg throws: the
 * segment read from the first undefined prefix. */
static inline char *crm_failed_key(const char *expr, const json_t *msg)
{
    size_t n = strlen(expr);
    char quote = 0;
    for (size_t i = 1; i <= n; i++) {
        char c = expr[i];
        if (quote) {
            if (c == quote) quote = 0;
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = c;
            continue;
        }
        if (c != '.' && c != '[' && c) continue;
        char *prefix = strndup(expr, i);
        crm_path *p = crm_path_parse(prefix, NULL);
        bool throws = false;
        bool undef = p && !crm_path_get(p, msg, msg, &throws);
        crm_path_free(p);
        free(prefix);
        if (undef && c) {
            size_t a = i + 1, b = a;
            while (b < n && expr[b] != '.' && expr[b] != '[' && expr[b] != ']') b++;
            if (c == '[' && a < n && (expr[a] == '"' || expr[a] == '\'')) {
                a++;
                b = a;
                while (b < n && expr[b] != expr[a - 1]) b++;
            }
            return strndup(expr + a, b - a);
        }
    }
    return strdup(expr);
}

/* crm_node_error with that TypeError for expr on msg. */
static inline void crm_undefined_read_error(crm_node *n, const char *expr, const json_t *msg)
{
    char *key = crm_failed_key(expr, msg);
    crm_node_error(n, msg, "TypeError: Cannot read properties of undefined (reading '%s')", key);
    free(key);
}
#endif
