/* registry.c: the node-type registry. Built-in node types and plugins
 * register the same descriptor through the same call, crm_register_type(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static const crm_node_type **types;
static size_t ntypes, captypes;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

int crm_register_type(const crm_node_type *t)
{
    if (!t || !t->type || t->abi != CRM_ABI_VERSION) return -1;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < ntypes; i++) {
        if (!strcmp(types[i]->type, t->type)) {
            pthread_mutex_unlock(&reg_lock);
            return types[i] == t ? 0 : -1;
        }
    }
    if (ntypes == captypes) {
        captypes = captypes ? captypes * 2 : 64;
        types = realloc(types, captypes * sizeof *types);
    }
    types[ntypes++] = t;
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

const crm_node_type *crm_lookup_type(const char *name)
{
    const crm_node_type *r = NULL;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < ntypes && !r; i++)
        if (!strcmp(types[i]->type, name)) r = types[i];
    pthread_mutex_unlock(&reg_lock);
    return r;
}

/* Every built-in node file exports its descriptors; the build lists them
 * (tools/gen-builtins.sh) in this NULL-terminated array. */
extern const crm_node_type *const crm_builtin_types[];

static void register_all(void)
{
    for (size_t i = 0; crm_builtin_types[i]; i++) crm_register_type(crm_builtin_types[i]);
}

void crm_register_builtins(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_all);
}
