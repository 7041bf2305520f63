/* admin_auth.h: settings.adminAuth for the Admin API (admin_auth.c). */
#ifndef CRM_ADMIN_AUTH_H
#define CRM_ADMIN_AUTH_H

#include <stdbool.h>

#include "carmine.h"
#include "httpd.h"
#include "strbuf.h"

typedef struct crm_admin_auth crm_admin_auth;

/* NULL when settings has no adminAuth, or when it is refused (then err says
 * why, naming the setting). */
crm_admin_auth *crm_admin_auth_new(const json_t *settings, strbuf *err);
void crm_admin_auth_free(crm_admin_auth *a);
/* GET /auth/login, POST /auth/token, POST /auth/revoke: true when it
 * answered. a may be NULL (adminAuth off: /auth/login answers {}). */
bool crm_admin_auth_route(crm_admin_auth *a, const char *method, const char *path, const json_t *headers,
                          const char *body, size_t len, crm_admin_reply *r);
/* Whether the request (its headers) may use a route that needs permission
 * ("flows.read", ...); when not, r holds the answer (401 or 400). Always
 * true when a is NULL. Any server thread. */
bool crm_admin_auth_allow(crm_admin_auth *a, const json_t *headers, const char *permission, crm_admin_reply *r);
/* GET /settings' "user": {username, permissions} for a token's user,
 * {anonymous, permissions} without one; NULL when adminAuth is off. */
json_t *crm_admin_auth_user(crm_admin_auth *a, const json_t *headers);
/* The permission an Admin API route needs (Node-RED's), or NULL. */
const char *crm_admin_permission(const char *method, const char *path);

#endif
