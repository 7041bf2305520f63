/* carmine_api.h: the markers of Carmine's public API. The engine is built
 * with hidden symbol visibility; only what a public header declares with
 * CRM_API is exported from the carmine executable, so plugins see exactly
 * the documented API (docs/plugins.md) and nothing of the engine's inside. */
#ifndef CARMINE_API_H
#define CARMINE_API_H

#define CRM_API __attribute__((visibility("default")))

#ifdef __cplusplus
#define CRM_BEGIN_DECLS extern "C" {
#define CRM_END_DECLS }
#else
#define CRM_BEGIN_DECLS
#define CRM_END_DECLS
#endif

#endif
