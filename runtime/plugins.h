/* plugins.h: loading node types from shared libraries (issue 8; the guide
 * for plugin authors is docs/plugins.md).
 *
 * A plugin is a shared library built against the installed carmine.h (and
 * NOT linked with the engine: the crm_* functions resolve from the carmine
 * executable, which exports them). It exports:
 *
 *   int carmine_plugin_abi(void);
 *       required: returns CRM_ABI_VERSION as the plugin saw it at build time.
 *   const crm_node_type *const *carmine_plugin_types(void);
 *       required: a NULL-terminated list of descriptors that live as long as
 *       the process (static storage in the library). Each descriptor's abi
 *       must be CRM_ABI_VERSION too.
 *   int carmine_plugin_init(void);
 *       optional: called once, after the checks above pass and before any
 *       type is registered (on the loading thread, before any flow exists);
 *       non-zero means failure: the plugin is reported and none of its types
 *       is registered, so flows that use them are refused as unknown types.
 *
 * A plugin library stays loaded for the life of the process (its
 * descriptors are registered by address); one that was refused is unloaded.
 */
#ifndef CRM_PLUGINS_H
#define CRM_PLUGINS_H
#include "strbuf.h"

/* Loads every *.so in dir (in byte order of the names) and registers its
 * node types. Built-in types are registered first, so a plugin cannot
 * replace one. Problems (not a plugin, a missing symbol, an ABI mismatch
 * naming the file and both versions, a type name already taken, a failed
 * init) are written to problems, one line each starting with the file's
 * path; a plugin with a problem registers none of its types. Call from one
 * thread, before loading flows. Returns the number of types registered, or
 * -1 when dir cannot be read. */
int crm_plugins_load_dir(const char *dir, strbuf *problems);

/* Loads one plugin file, as crm_plugins_load_dir does for each. Returns the
 * number of types registered, or -1 on a problem (written to problems). */
int crm_plugins_load_file(const char *path, strbuf *problems);
/* Calls fn for every plugin taken in (not refused), in load order: its
 * file's path and its types. Call after loading (the list does not change
 * once flows run). */
struct crm_node_type;
void crm_plugins_each(void (*fn)(const char *path, const struct crm_node_type *const *types, void *arg), void *arg);
#endif
