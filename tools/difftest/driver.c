#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "value.h"
#include "mustache.h"
#include "jsonschema.h"
/* driver.c: reads JSON lines, {"t": template, "v": view} (runtime/mustache.c)
 * or {"s": schema, "d": data} (runtime/jsonschema.c), and prints one result
 * line each, in the shape tools/difftest/gen.js records from mustache.js and
 * ajv. Built and run by tools/difftest.sh. */
int main(void)
{
    char *line = NULL; size_t cap = 0; ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_t *c = crm_parse(line, (size_t)n, NULL, 0);
        json_t *out = json_object();
        if (json_object_get(c, "t")) {
            const char *t = json_string_value(json_object_get(c, "t"));
            char *err = NULL;
            crm_mustache *m = crm_mustache_parse(t, strlen(t), &err);
            if (!m) json_object_set_new(out, "err", json_string(err));
            else { char *r = crm_mustache_write(m, json_object_get(c, "v"), NULL); json_object_set_new(out, "r", json_string(r)); free(r); }
            free(err); crm_mustache_free(m);
        } else {
            char *err = NULL;
            crm_jschema *s = crm_jschema_compile(json_object_get(c, "s"), &err);
            if (!s) json_object_set_new(out, "compile", json_false());
            else {
                json_t *errs = NULL;
                int ok = crm_jschema_validate(s, json_object_get(c, "d"), &errs);
                if (ok < 0) json_object_set_new(out, "compile", json_false());
                else json_object_set_new(out, "valid", json_boolean(ok));
                if (ok == 0) json_object_set_new(out, "errors", errs);
                crm_jschema_free(s);
            }
            free(err);
        }
        char *o = crm_stringify(out, 0); puts(o); free(o);
        json_decref(out); json_decref(c);
    }
    return 0;
}
