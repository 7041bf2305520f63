/* test_admin_auth.c: adminAuth as Node-RED 4.1.15 answers it (the answers
 * below were compared with a running Node-RED using the same settings):
 * logins with a bcrypt hash made by bcryptjs, scopes against permissions,
 * anonymous defaults, 401/400/403 cases, revoke, the login-attempt limit,
 * and settings refused with a reason. Sessions live in userDir/.sessions.json
 * (Node-RED's format): processes sharing a userDir (a supervisor's replicas)
 * and a restarted process know each other's tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_auth.h"
#include "unit.h"

/* bcryptjs.hashSync("secretpw", 8) */
static const char *HASH = "$2b$08$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2";

static crm_admin_reply reply;

static void clear(void)
{
    free(reply.body);
    memset(&reply, 0, sizeof reply);
}

/* POST /auth/token with an urlencoded body; the token, or NULL. */
static char *login(crm_admin_auth *a, const char *client, const char *user, const char *pw, const char *scope)
{
    char body[256];
    snprintf(body, sizeof body, "client_id=%s&grant_type=password&scope=%s&username=%s&password=%s", client, scope,
             user, pw);
    json_t *h = json_pack("{s:s}", "content-type", "application/x-www-form-urlencoded");
    clear();
    CHECK(crm_admin_auth_route(a, "POST", "/auth/token", h, body, strlen(body), &reply));
    json_decref(h);
    json_t *j = reply.status == 200 ? json_loadb(reply.body, reply.len, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "access_token"));
    char *out = t ? strdup(t) : NULL;
    if (j) CHECK(json_number_value(json_object_get(j, "expires_in")) == 604800);
    json_decref(j);
    return out;
}

/* Whether a request with this token (NULL: none) may use permission. */
static bool allowed(crm_admin_auth *a, const char *token, const char *permission)
{
    json_t *h = json_object();
    if (token) json_object_set_new(h, "authorization", json_sprintf("Bearer %s", token));
    clear();
    bool ok = crm_admin_auth_allow(a, h, permission, &reply);
    json_decref(h);
    return ok;
}

/* Whether a request with this Authorization header (as sent) may use permission. */
static bool allowed_header(crm_admin_auth *a, const char *value, const char *permission)
{
    json_t *h = json_pack("{s:s}", "authorization", value);
    clear();
    bool ok = crm_admin_auth_allow(a, h, permission, &reply);
    json_decref(h);
    return ok;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* POST /auth/revoke of a token, with that token; it answers 200. */
static void revoke_token(crm_admin_auth *a, const char *token)
{
    char body[400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", token);
    json_t *h = json_pack("{s:s,s:o}", "content-type", "application/json", "authorization",
                          json_sprintf("Bearer %s", token));
    clear();
    CHECK(crm_admin_auth_route(a, "POST", "/auth/revoke", h, body, strlen(body), &reply));
    CHECK(reply.status == 200);
    json_decref(h);
}

static crm_admin_auth *make(const char *settings_text, strbuf *err)
{
    json_t *s = json_loads(settings_text, 0, NULL);
    crm_admin_auth *a = crm_admin_auth_new(s, err);
    json_decref(s);
    return a;
}

static void remove_dir(const char *dir)
{
    char p[300];
    const char *names[] = {".sessions.json", ".sessions.json.lock"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Two processes' worth of adminAuth on one userDir, a restart, a file
 * written by Node-RED. */
static void shared_sessions(const char *text, const char *dir)
{
    strbuf err = SB_INIT;
    crm_admin_auth *a1 = make(text, &err), *a2 = make(text, &err);
    CHECK(a1 && a2);
    char *t1 = login(a1, "node-red-admin", "admin", "secretpw", "*");
    CHECK(t1 != NULL);
    CHECK(allowed(a2, t1, "flows.write")); /* issued by the other one */
    char *t2 = login(a2, "node-red-editor", "reader", "secretpw", "read");
    CHECK(t2 != NULL);
    CHECK(allowed(a1, t2, "flows.read") && !allowed(a1, t2, "flows.write"));
    CHECK(allowed(a1, t1, "flows.write")); /* a1's own survives a2's write */

    char path[300];
    snprintf(path, sizeof path, "%s/.sessions.json", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    json_t *file = json_load_file(path, 0, NULL);
    json_t *e = json_object_get(file, t1);
    CHECK_STR(json_string_value(json_object_get(e, "user")), "admin");
    CHECK_STR(json_string_value(json_object_get(e, "client")), "node-red-admin");
    CHECK_STR(json_string_value(json_object_get(e, "accessToken")), t1);
    CHECK(json_is_integer(json_object_get(e, "expires")));
    json_decref(file);

    /* revoked on one, refused by the other */
    revoke_token(a2, t1);
    CHECK(!allowed(a1, t1, "flows.read"));
    CHECK(allowed(a1, t2, "flows.read"));

    /* a restart keeps the live one */
    crm_admin_auth_free(a1);
    crm_admin_auth_free(a2);
    a1 = make(text, &err);
    CHECK(allowed(a1, t2, "flows.read"));
    CHECK(!allowed(a1, t1, "flows.read"));
    crm_admin_auth_free(a1);

    /* what Node-RED writes: a scope string; an expired session is refused */
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"tokA\":{\"user\":\"admin\",\"client\":\"node-red-admin\",\"scope\":\"*\","
              "\"accessToken\":\"tokA\",\"expires\":99999999999999},"
              "\"tokB\":{\"user\":\"admin\",\"client\":\"node-red-admin\",\"scope\":\"*\","
              "\"accessToken\":\"tokB\",\"expires\":1000}}",
              f);
        fclose(f);
    }
    a1 = make(text, &err);
    CHECK(allowed(a1, "tokA", "flows.write"));
    CHECK(!allowed(a1, "tokB", "flows.read") && reply.status == 401);
    CHECK(!allowed(a1, t2, "flows.read")); /* gone with the file's old content */
    crm_admin_auth_free(a1);
    free(t1);
    free(t2);
    sb_free(&err);
}

/* Settings with an admin and a reader, sessions kept in dir. */
static void two_users(char *text, size_t size, const char *dir)
{
    snprintf(text, size,
             "{\"userDir\":\"%s\",\"adminAuth\":{\"type\":\"credentials\",\"users\":["
             "{\"username\":\"admin\",\"password\":\"%s\",\"permissions\":\"*\"},"
             "{\"username\":\"reader\",\"password\":\"%s\",\"permissions\":\"read\"}]}}",
             dir, HASH, HASH);
}

int main(void)
{
    strbuf err = SB_INIT;
    char text[1024];
    char dir[] = "/tmp/carmine-auth-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    two_users(text, sizeof text, dir);
    shared_sessions(text, dir);
    remove_dir(dir);
    strcpy(dir, "/tmp/carmine-auth-XXXXXX");
    CHECK(mkdtemp(dir) != NULL); /* a fresh userDir for the rest */
    two_users(text, sizeof text, dir);
    crm_admin_auth *a = make(text, &err);
    CHECK(a != NULL && err.len == 0);

    /* no adminAuth: everything allowed, /auth/login says {} */
    CHECK(make("{}", &err) == NULL && err.len == 0);
    CHECK(crm_admin_auth_allow(NULL, NULL, "flows.write", &reply));
    clear();
    CHECK(crm_admin_auth_route(NULL, "GET", "/auth/login", NULL, "", 0, &reply));
    CHECK(reply.status == 200 && reply.body && !strcmp(reply.body, "{}"));
    clear();
    CHECK(crm_admin_auth_route(a, "GET", "/auth/login", NULL, "", 0, &reply));
    CHECK(reply.body && strstr(reply.body, "\"type\":\"credentials\"") && strstr(reply.body, "user.password"));

    /* without a token: 401 with WWW-Authenticate */
    CHECK(!allowed(a, NULL, "flows.read"));
    CHECK(reply.status == 401 && reply.www_authenticate && !strcmp(reply.body, "Unauthorized"));
    /* a malformed or unknown token */
    CHECK(!allowed(a, "", "flows.read"));
    CHECK(reply.status == 400);
    CHECK(!allowed(a, "nonsense", "flows.read"));
    CHECK(reply.status == 401);

    /* logins */
    char *t = login(a, "node-red-admin", "admin", "wrong", "*");
    CHECK(t == NULL && reply.status == 403 && strstr(reply.body, "invalid_grant"));
    t = login(a, "bogus", "admin", "secretpw", "*");
    CHECK(t == NULL && reply.status == 401);
    char *admin = login(a, "node-red-admin", "admin", "secretpw", "*");
    CHECK(admin && strlen(admin) == 172);
    /* a read-only user cannot ask for more than it has */
    t = login(a, "node-red-editor", "reader", "secretpw", "*");
    CHECK(t == NULL && reply.status == 403);
    char *reader = login(a, "node-red-editor", "reader", "secretpw", "read");
    CHECK(reader != NULL);
    /* an empty scope is the user's permissions; none at all matches nothing */
    t = login(a, "node-red-editor", "reader", "secretpw", "");
    CHECK(t != NULL);
    free(t);
    json_t *hf = json_pack("{s:s}", "content-type", "application/x-www-form-urlencoded");
    const char *noscope = "client_id=node-red-admin&grant_type=password&username=reader&password=secretpw";
    clear();
    CHECK(crm_admin_auth_route(a, "POST", "/auth/token", hf, noscope, strlen(noscope), &reply));
    CHECK(reply.status == 403);
    const char *nogrant = "client_id=node-red-admin&username=reader&password=secretpw";
    clear();
    CHECK(crm_admin_auth_route(a, "POST", "/auth/token", hf, nogrant, strlen(nogrant), &reply));
    CHECK(reply.status == 501 && strstr(reply.body, "Unsupported grant type: undefined"));
    json_decref(hf);

    /* GET /settings' user: the user's permissions, whatever the token's scope */
    json_t *h0 = json_object();
    json_object_set_new(h0, "authorization", json_sprintf("Bearer %s", reader));
    json_t *u = crm_admin_auth_user(a, h0);
    json_t *want = json_pack("{s:s,s:s}", "username", "reader", "permissions", "read");
    CHECK(json_equal(u, want));
    json_decref(want);
    json_decref(u);
    json_decref(h0);
    CHECK(crm_admin_auth_user(a, NULL) == NULL); /* no default: no anonymous user */
    CHECK(allowed(a, admin, "flows.write"));
    CHECK(allowed(a, admin, "inject.write"));
    CHECK(allowed(a, reader, "flows.read"));
    CHECK(allowed(a, reader, "settings.read"));
    CHECK(!allowed(a, reader, "flows.write"));
    CHECK(reply.status == 401 && reply.len == 0);

    /* the scheme is case-insensitive (RFC 7235 §2.1; passport-http-bearer
     * matches /^Bearer$/i); the header must be two parts split at single
     * spaces, else 400; another scheme is no token: 401 with the challenge */
    char hv[400];
    snprintf(hv, sizeof hv, "bearer %s", admin);
    CHECK(allowed_header(a, hv, "flows.write"));
    snprintf(hv, sizeof hv, "BEARER %s", admin);
    CHECK(allowed_header(a, hv, "flows.write"));
    snprintf(hv, sizeof hv, "Bearer  %s", admin);
    CHECK(!allowed_header(a, hv, "flows.read") && reply.status == 400);
    snprintf(hv, sizeof hv, "Bearer %s x", admin);
    CHECK(!allowed_header(a, hv, "flows.read") && reply.status == 400);
    CHECK(!allowed_header(a, "Basic YWRtaW46c2VjcmV0cHc=", "flows.read"));
    CHECK(reply.status == 401 && reply.www_authenticate && !strcmp(reply.www_authenticate, "Bearer realm=\"Users\""));
    CHECK(!allowed_header(a, "Bearer nonsense", "flows.read"));
    CHECK(reply.status == 401 && reply.www_authenticate &&
          !strcmp(reply.www_authenticate, "Bearer realm=\"Users\", error=\"invalid_token\""));
    snprintf(hv, sizeof hv, "bearer %s", reader);
    json_t *hl = json_pack("{s:s}", "authorization", hv);
    u = crm_admin_auth_user(a, hl);
    CHECK_STR(json_string_value(json_object_get(u, "username")), "reader");
    json_decref(u);
    json_decref(hl);

    /* the password check takes as long for an unknown user name as for a
     * known one with a wrong password (it told them apart: ~0 ms against a
     * bcrypt's time); three of each, each name used once (the attempt limit) */
    double known = 1e9, unknown = 1e9; /* the fastest of each: a stall of a loaded machine only adds */
    for (int i = 0; i < 3; i++) {
        char name[32];
        double t0 = now_ms();
        free(login(a, "node-red-admin", "reader", "wrong", "*"));
        double t1 = now_ms();
        snprintf(name, sizeof name, "nobody%d", i);
        free(login(a, "node-red-admin", name, "wrong", "*"));
        double t2 = now_ms();
        CHECK(reply.status == 403);
        if (t1 - t0 < known) known = t1 - t0;
        if (t2 - t1 < unknown) unknown = t2 - t1;
    }
    printf("password check: known user %.1f ms, unknown user %.1f ms (fastest of 3 each)\n", known, unknown);
    CHECK(unknown > known * 0.5);

    /* revoke: the token stops working */
    revoke_token(a, admin);
    CHECK(!allowed(a, admin, "flows.read"));
    CHECK(reply.status == 401);

    /* five failed logins per user name, then even the right password waits */
    for (int i = 0; i < 5; i++) free(login(a, "node-red-admin", "admin", "wrong", "*"));
    t = login(a, "node-red-admin", "admin", "secretpw", "*");
    CHECK(t == NULL && reply.status == 500 && strstr(reply.body, "Too many login attempts"));
    free(t);
    free(admin);
    free(reader);
    crm_admin_auth_free(a);

    /* anonymous users get default.permissions */
    snprintf(text, sizeof text,
             "{\"userDir\":\"%s\",\"adminAuth\":{\"type\":\"credentials\",\"users\":[],"
             "\"default\":{\"permissions\":\"read\"}}}",
             dir);
    a = make(text, &err);
    CHECK(a != NULL);
    CHECK(allowed(a, NULL, "flows.read"));
    CHECK(!allowed(a, NULL, "flows.write"));
    /* passport falls through bearer to anon: a token nobody knows, another
     * scheme or a malformed header get the default permissions too */
    CHECK(allowed(a, "nonsense", "flows.read"));
    CHECK(allowed_header(a, "Basic YWRtaW46c2VjcmV0cHc=", "flows.read"));
    CHECK(allowed_header(a, "Bearer", "flows.read"));
    CHECK(!allowed(a, "nonsense", "flows.write") && reply.status == 401 && reply.len == 0);
    u = crm_admin_auth_user(a, NULL);
    CHECK(json_is_true(json_object_get(u, "anonymous")));
    CHECK_STR(json_string_value(json_object_get(u, "permissions")), "read");
    json_decref(u);
    crm_admin_auth_free(a);

    /* refused settings name the setting */
    CHECK(make("{\"adminAuth\":{\"type\":\"strategy\"}}", &err) == NULL);
    CHECK(err.data && strstr(err.data, "settings.adminAuth") && strstr(err.data, "credentials"));
    sb_free(&err);
    CHECK(make("{\"adminAuth\":{\"type\":\"credentials\",\"users\":[{\"username\":\"x\",\"password\":\"plain\"}]}}",
               &err) == NULL);
    CHECK(err.data && strstr(err.data, "users[0]") && strstr(err.data, "bcrypt"));
    sb_free(&err);
    clear();
    remove_dir(dir);
    UNIT_DONE();
}
