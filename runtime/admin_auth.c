/* admin_auth.c: settings.adminAuth, Node-RED's "credentials" type, for the
 * Admin API of an instance and of the supervisor. Users with bcrypt password
 * hashes (what `node-red admin hash-pw` prints) log in with POST /auth/token
 * (OAuth2 password grant, clients node-red-admin and node-red-editor) and
 * get a bearer token; every admin route then needs a token whose scope has
 * its permission ("flows.read", "flows.write", "inject.write", ...), or
 * adminAuth.default's permissions for requests without one. Answers are
 * Node-RED 4.1.15's: 401 "Unauthorized" with WWW-Authenticate, 403
 * invalid_grant, {} from GET /auth/login when adminAuth is off.
 *
 * Sessions are kept in userDir/.sessions.json, in Node-RED's format
 * ({token: {user, client, scope, accessToken, expires}}), so that they
 * survive a restart as Node-RED's do, and so that the replicas of a
 * supervisor and the supervisor itself (one userDir) know each other's
 * tokens: behind a load balancer the next request may reach another
 * replica. Every check compares the file's identity (inode, size, mtime)
 * with what was read last and reads it again when it changed; a change is
 * made under an flock on userDir/.sessions.json.lock, on what the file
 * holds by then. When the file cannot be written, a token still works on
 * the process that issued it. The "strategy" type and functions (users(),
 * tokens()) need JavaScript and are refused at start. */
#include <crypt.h>
#include <fcntl.h>
#include <nettle/base64.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_auth.h"
#include "http.h"
#include "value.h"

#define DEFAULT_EXPIRY_S 604800 /* a week, Node-RED's sessionExpiryTime */
#define LOGIN_WINDOW_MS 600000  /* 10 minutes */
#define LOGIN_ATTEMPTS 5

typedef struct {
    char *token;
    char *user;
    char *client;
    json_t *scope;
    double expires; /* wall ms */
} session;

/* What identifies one version of the sessions file. */
typedef struct {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_version;

typedef struct {
    char *user;
    double at;
} attempt;

struct crm_admin_auth {
    json_t *users;        /* [{username, password, permissions}] */
    json_t *anon;         /* default.permissions, or NULL */
    double expiry_s;
    pthread_mutex_t mu;   /* sessions, attempts: server threads share them */
    session *sessions;
    size_t nsessions, capsessions;
    attempt *attempts;
    size_t nattempts, capattempts;
    char *path;           /* userDir/.sessions.json */
    char *lock_path;
    file_version seen;    /* the version the sessions were read from */
};

static void problem(strbuf *err, const char *what)
{
    sb_printf(err, "settings.adminAuth: %s", what);
}

crm_admin_auth *crm_admin_auth_new(const json_t *settings, strbuf *err)
{
    const json_t *cfg = json_object_get(settings, "adminAuth");
    if (!cfg || json_is_null(cfg)) return NULL;
    if (!json_is_object(cfg)) {
        problem(err, "must be an object {type: \"credentials\", users: [...]}");
        return NULL;
    }
    const char *type = json_string_value(json_object_get(cfg, "type"));
    if (!type || strcmp(type, "credentials")) {
        problem(err, "only type \"credentials\" is supported (\"strategy\" needs a JavaScript module)");
        return NULL;
    }
    const json_t *users = json_object_get(cfg, "users");
    if (!json_is_array(users)) {
        problem(err, "users must be an array of {username, password (a bcrypt hash), permissions}");
        return NULL;
    }
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) {
        const char *name = json_string_value(json_object_get(u, "username"));
        const char *hash = json_string_value(json_object_get(u, "password"));
        const json_t *perm = json_object_get(u, "permissions");
        if (!name || !hash || strncmp(hash, "$2", 2) || !(json_is_string(perm) || json_is_array(perm))) {
            sb_printf(err, "settings.adminAuth.users[%zu]: needs username, password (a bcrypt hash, \"$2b$...\") and "
                           "permissions (\"*\", \"read\" or a list)", i);
            return NULL;
        }
    }
    const json_t *def = json_object_get(json_object_get(cfg, "default"), "permissions");
    const json_t *exp = json_object_get(cfg, "sessionExpiryTime");
    crm_admin_auth *a = calloc(1, sizeof *a);
    if (!a) abort();
    a->users = json_deep_copy(users);
    a->anon = def ? json_deep_copy(def) : NULL;
    a->expiry_s = json_is_number(exp) && json_number_value(exp) > 0 ? json_number_value(exp) : DEFAULT_EXPIRY_S;
    pthread_mutex_init(&a->mu, NULL);
    a->path = crm_userdir_file(settings, ".sessions.json");
    a->lock_path = crm_userdir_file(settings, ".sessions.json.lock");
    return a;
}

static void drop_session(session *s)
{
    free(s->token);
    free(s->user);
    free(s->client);
    json_decref(s->scope);
}

static void drop_sessions(crm_admin_auth *a)
{
    for (size_t i = 0; i < a->nsessions; i++) drop_session(&a->sessions[i]);
    a->nsessions = 0;
}

static void add_session(crm_admin_auth *a, session s)
{
    if (a->nsessions == a->capsessions) {
        a->capsessions = a->capsessions ? 2 * a->capsessions : 8;
        a->sessions = realloc(a->sessions, a->capsessions * sizeof *a->sessions);
        if (!a->sessions) abort();
    }
    a->sessions[a->nsessions++] = s;
}

static file_version version_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return (file_version){0};
    return (file_version){true, st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

static bool same_version(const file_version *x, const file_version *y)
{
    return x->exists == y->exists && (!x->exists || (x->dev == y->dev && x->ino == y->ino && x->size == y->size &&
                                                      x->mtime.tv_sec == y->mtime.tv_sec &&
                                                      x->mtime.tv_nsec == y->mtime.tv_nsec));
}

/* Under a->mu: the sessions are the file's when it changed since it was
 * last read (another process issued or revoked a token). Expired sessions
 * are left out. */
static void sessions_sync(crm_admin_auth *a, double now)
{
    file_version v = version_of(a->path);
    if (same_version(&v, &a->seen)) return;
    a->seen = v;
    drop_sessions(a);
    json_t *all = v.exists ? json_load_file(a->path, 0, NULL) : NULL;
    const char *token;
    json_t *e;
    json_object_foreach(all, token, e) {
        const char *user = json_string_value(json_object_get(e, "user"));
        const char *client = json_string_value(json_object_get(e, "client"));
        const json_t *scope = json_object_get(e, "scope");
        const json_t *expires = json_object_get(e, "expires");
        if (!user || !scope || !json_is_number(expires) || json_number_value(expires) < now) continue;
        add_session(a, (session){strdup(token), strdup(user), strdup(client ? client : ""), json_deep_copy(scope),
                                 json_number_value(expires)});
    }
    json_decref(all);
}

/* Under a->mu, with the file locked: writes the sessions; false when it
 * cannot. */
static bool sessions_save(crm_admin_auth *a)
{
    json_t *all = json_object();
    for (size_t i = 0; i < a->nsessions; i++) {
        const session *s = &a->sessions[i];
        json_object_set_new(all, s->token, json_pack("{s:s,s:s,s:O,s:s,s:I}", "user", s->user, "client", s->client,
                                                     "scope", s->scope, "accessToken", s->token, "expires",
                                                     (json_int_t)s->expires));
    }
    char *text = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    bool ok = text && crm_write_file(a->path, text, 0600) == 0;
    free(text);
    if (ok) a->seen = version_of(a->path);
    return ok;
}

/* Takes a->mu and the file's lock (-1 when there is no lock to be had:
 * then the change is made in memory and on the file all the same) and
 * brings the sessions up to date. */
static int sessions_begin(crm_admin_auth *a, double now)
{
    pthread_mutex_lock(&a->mu);
    int fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
        close(fd);
        fd = -1;
    }
    sessions_sync(a, now);
    return fd;
}

/* changed: whether there is anything to write. */
static void sessions_end(crm_admin_auth *a, int fd, bool changed)
{
    if (changed) sessions_save(a);
    if (fd >= 0) close(fd); /* and with it the lock */
    pthread_mutex_unlock(&a->mu);
}

void crm_admin_auth_free(crm_admin_auth *a)
{
    if (!a) return;
    drop_sessions(a);
    for (size_t i = 0; i < a->nattempts; i++) free(a->attempts[i].user);
    free(a->path);
    free(a->lock_path);
    free(a->sessions);
    free(a->attempts);
    json_decref(a->users);
    json_decref(a->anon);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* Node-RED's permissions.hasPermission. */
static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix) && (n == m || s[n - m - 1] == '.');
}

static bool has_permission(const json_t *scope, const json_t *permission)
{
    if (json_is_string(permission) && !*json_string_value(permission)) return true;
    size_t i;
    json_t *e;
    if (json_is_array(permission)) {
        json_array_foreach(permission, i, e) if (!has_permission(scope, e)) return false;
        return true;
    }
    if (json_is_array(scope)) {
        json_array_foreach(scope, i, e) if (has_permission(e, permission)) return true;
        return false;
    }
    const char *s = json_string_value(scope), *p = json_string_value(permission);
    if (!s || !p) return false;
    if (!strcmp(s, "*") || !strcmp(s, p)) return true;
    if (!strcmp(s, "read") || !strcmp(s, "*.read")) return ends_with(p, "read");
    if (!strcmp(s, "write") || !strcmp(s, "*.write")) return ends_with(p, "write");
    return false;
}

static void reply_text(crm_admin_reply *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = strdup(text);
    r->len = strlen(text);
}

static void reply_unauthorized(crm_admin_reply *r)
{
    reply_text(r, 401, "Unauthorized");
    r->www_authenticate = "Bearer realm=\"Users\"";
}

/* The token of an Authorization header as passport-http-bearer reads it
 * (Node's parser has trimmed the value's trailing blanks): the value split
 * at single spaces must give two parts, and the scheme is matched without
 * regard to case (/^Bearer$/i; RFC 7235 §2.1), so "bearer T" and "BEARER T"
 * are "Bearer T". Copies the token into out (NULL when the scheme is another
 * or the token empty); *malformed when the value is not two parts
 * (passport answers 400). */
static char *bearer_token(const char *auth, char *out, size_t cap, bool *malformed)
{
    size_t len = strlen(auth);
    while (len && (auth[len - 1] == ' ' || auth[len - 1] == '\t')) len--;
    const char *sp = memchr(auth, ' ', len);
    *malformed = !sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - auth));
    size_t tlen = sp ? len - (size_t)(sp + 1 - auth) : 0;
    if (*malformed || sp - auth != 6 || strncasecmp(auth, "Bearer", 6) || !tlen || tlen >= cap) return NULL;
    memcpy(out, sp + 1, tlen);
    out[tlen] = 0;
    return out;
}

/* The live session of a token, under a->mu; NULL when unknown. */
static const session *find_session(crm_admin_auth *a, const char *token, double now)
{
    sessions_sync(a, now);
    for (size_t i = 0; i < a->nsessions; i++) {
        session *s = &a->sessions[i];
        if (strcmp(s->token, token)) continue;
        if (s->expires < now) {
            drop_session(s);
            *s = a->sessions[--a->nsessions];
            return NULL;
        }
        return s;
    }
    return NULL;
}

/* Node-RED's needsPermission: passport's strategies bearer, tokens, anon in
 * turn. A valid token gives its scope; otherwise, whatever was wrong with the
 * header, adminAuth.default's permissions apply when there are some; else
 * 400 for a header that is not two parts (bearer's own failure status comes
 * first), 401 with bearer's challenge for the rest. */
bool crm_admin_auth_allow(crm_admin_auth *a, const json_t *headers, const char *permission, crm_admin_reply *r)
{
    if (!a) return true;
    const char *auth = json_string_value(json_object_get(headers, "authorization"));
    bool malformed = false;
    char buf[512];
    const char *token = auth ? bearer_token(auth, buf, sizeof buf, &malformed) : NULL;
    json_t *perm = json_string(permission);
    bool ok = false, found = false;
    if (token) {
        pthread_mutex_lock(&a->mu);
        const session *s = find_session(a, token, crm_wall_ms());
        if (s && s->scope) {
            found = true;
            ok = has_permission(s->scope, perm);
        }
        pthread_mutex_unlock(&a->mu);
    }
    if (!found && a->anon) {
        found = true;
        ok = has_permission(a->anon, perm);
    }
    json_decref(perm);
    if (!found) {
        if (malformed) {
            reply_text(r, 400, "Bad Request");
        } else {
            reply_unauthorized(r);
            if (token) r->www_authenticate = "Bearer realm=\"Users\", error=\"invalid_token\"";
        }
        return false;
    }
    if (!ok) { /* Node-RED: res.status(401).end() */
        r->status = 401;
        r->body = strdup("");
        r->len = 0;
    }
    return ok;
}

/* An urlencoded or JSON body as an object of strings. */
static json_t *form(const json_t *headers, const char *body, size_t len)
{
    const char *ct = json_string_value(json_object_get(headers, "content-type"));
    json_t *f = ct && strstr(ct, "json") ? crm_parse(body, len, NULL, 0) : crm_http_parse_query(body, len);
    if (!json_is_object(f)) {
        json_decref(f);
        f = json_object();
    }
    return f;
}

static const char *field(const json_t *f, const char *k)
{
    const char *v = json_string_value(json_object_get(f, k));
    return v ? v : "";
}

/* The password check takes as long for a user name nobody has as for a
 * known one with a wrong password: an unknown name is checked against the
 * first user's hash (same cost) and refused whatever the result. */
static const json_t *check_user(crm_admin_auth *a, const char *name, const char *password)
{
    size_t i;
    json_t *u, *match = NULL;
    json_array_foreach(a->users, i, u) if (!match && !strcmp(field(u, "username"), name)) match = u;
    const char *hash = field(match ? match : json_array_get(a->users, 0), "password");
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    /* crypt_rn, not crypt_r: sanitizers intercept crypt_r, and their
     * stand-in lets the linker drop libcrypt */
    const char *h = crypt_rn(password, hash, &cd, (int)sizeof cd);
    /* compared in full, whatever the first difference */
    size_t n = strlen(hash);
    unsigned diff = !h || strlen(h) != n;
    for (size_t k = 0; h && k < n && k < strlen(h); k++) diff |= (unsigned)(h[k] ^ hash[k]);
    return diff || !match ? NULL : match;
}

/* Node-RED allows 5 logins per user name in 10 minutes, then refuses. */
static bool too_many_attempts(crm_admin_auth *a, const char *user, double now)
{
    size_t k = 0, count = 0;
    for (size_t i = 0; i < a->nattempts; i++) {
        if (a->attempts[i].at + LOGIN_WINDOW_MS > now) a->attempts[k++] = a->attempts[i];
        else free(a->attempts[i].user);
    }
    a->nattempts = k;
    if (a->nattempts == a->capattempts) {
        a->capattempts = a->capattempts ? 2 * a->capattempts : 16;
        a->attempts = realloc(a->attempts, a->capattempts * sizeof *a->attempts);
        if (!a->attempts) abort();
    }
    a->attempts[a->nattempts++] = (attempt){strdup(user), now};
    for (size_t i = 0; i < a->nattempts; i++) count += !strcmp(a->attempts[i].user, user);
    return count > LOGIN_ATTEMPTS;
}

static void forget_attempts(crm_admin_auth *a, const char *user)
{
    size_t k = 0;
    for (size_t i = 0; i < a->nattempts; i++) {
        if (strcmp(a->attempts[i].user, user)) a->attempts[k++] = a->attempts[i];
        else free(a->attempts[i].user);
    }
    a->nattempts = k;
}

/* Node-RED 4.1.15's tokens: 128 random bytes in base64 (tokens.js). */
static char *new_token(void)
{
    uint8_t raw[128];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) return NULL;
    char *t = malloc(BASE64_ENCODE_RAW_LENGTH(sizeof raw) + 1);
    if (!t) return NULL;
    base64_encode_raw(t, sizeof raw, raw);
    t[BASE64_ENCODE_RAW_LENGTH(sizeof raw)] = 0;
    return t;
}

/* oauth2orize's password exchange with Node-RED's passwordTokenExchange. */
static void token(crm_admin_auth *a, const json_t *headers, const char *body, size_t len, crm_admin_reply *r)
{
    json_t *f = form(headers, body, len);
    const char *client = field(f, "client_id");
    if (strcmp(client, "node-red-admin") && strcmp(client, "node-red-editor")) {
        json_decref(f);
        reply_unauthorized(r);
        return;
    }
    const char *grant = json_string_value(json_object_get(f, "grant_type"));
    if (!grant || strcmp(grant, "password")) {
        char text[300];
        snprintf(text, sizeof text, "Unsupported grant type: %s", grant ? grant : "undefined");
        crm_admin_reply_json(r, 501,
                             json_pack("{s:s,s:s}", "error", "unsupported_grant_type", "error_description", text));
        json_decref(f);
        return;
    }
    const char *user = field(f, "username");
    double now = crm_wall_ms();
    pthread_mutex_lock(&a->mu);
    bool refused = too_many_attempts(a, user, now);
    pthread_mutex_unlock(&a->mu);
    if (refused) {
        crm_admin_reply_json(r, 500, json_pack("{s:s,s:s}", "error", "server_error", "error_description",
                                               "Too many login attempts. Wait 10 minutes and try again"));
        json_decref(f);
        return;
    }
    const json_t *u = check_user(a, user, field(f, "password"));
    /* the scope asked for, space-separated; "": the user's permissions; no
     * scope at all matches no permission (Node-RED, checked on 4.1.15) */
    bool scoped = json_object_get(f, "scope") != NULL;
    json_t *scope = json_array();
    char *s = strdup(field(f, "scope"));
    for (char *save = NULL, *w = strtok_r(s, " ", &save); w; w = strtok_r(NULL, " ", &save))
        json_array_append_new(scope, json_string(w));
    free(s);
    if (u && scoped && !json_array_size(scope)) {
        json_decref(scope);
        scope = json_deep_copy(json_object_get(u, "permissions"));
    }
    char *t = u && scoped && has_permission(json_object_get(u, "permissions"), scope) ? new_token() : NULL;
    if (!t) {
        crm_admin_reply_json(r, 403, json_pack("{s:s,s:s}", "error", "invalid_grant", "error_description",
                                               "Invalid resource owner credentials"));
        json_decref(scope);
        json_decref(f);
        return;
    }
    int lock = sessions_begin(a, now);
    forget_attempts(a, user);
    add_session(a, (session){strdup(t), strdup(user), strdup(client), scope, now + a->expiry_s * 1000});
    sessions_end(a, lock, true);
    crm_admin_reply_json(r, 200, json_pack("{s:s,s:f,s:s}", "access_token", t, "expires_in", a->expiry_s,
                                           "token_type", "Bearer"));
    free(t);
    json_decref(f);
}

static void revoke_session(crm_admin_auth *a, const json_t *headers, const char *body, size_t len, crm_admin_reply *r)
{
    json_t *f = form(headers, body, len);
    const char *t = field(f, "token");
    int lock = sessions_begin(a, crm_wall_ms());
    bool found = false;
    for (size_t i = 0; i < a->nsessions && !found; i++) {
        if (strcmp(a->sessions[i].token, t)) continue;
        drop_session(&a->sessions[i]);
        a->sessions[i] = a->sessions[--a->nsessions];
        found = true;
    }
    sessions_end(a, lock, found);
    json_decref(f);
    r->status = 200;
    r->body = strdup("");
    r->len = 0;
}

bool crm_admin_auth_route(crm_admin_auth *a, const char *method, const char *path, const json_t *headers,
                          const char *body, size_t len, crm_admin_reply *r)
{
    if (!strcmp(method, "GET") && !strcmp(path, "/auth/login")) {
        crm_admin_reply_json(r, 200, a ? json_pack("{s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "type", "credentials",
                                                   "prompts", "id", "username", "type", "text", "label",
                                                   "user.username", "id", "password", "type", "password", "label",
                                                   "user.password")
                                         : json_object());
        return true;
    }
    if (!a || strcmp(method, "POST")) return false;
    if (!strcmp(path, "/auth/token")) {
        token(a, headers, body, len, r);
        return true;
    }
    if (!strcmp(path, "/auth/revoke")) {
        if (crm_admin_auth_allow(a, headers, "", r)) revoke_session(a, headers, body, len, r);
        return true;
    }
    return false;
}

json_t *crm_admin_auth_user(crm_admin_auth *a, const json_t *headers)
{
    if (!a) return NULL;
    const char *auth = json_string_value(json_object_get(headers, "authorization"));
    if (!auth) return a->anon ? json_pack("{s:b,s:O}", "anonymous", 1, "permissions", a->anon) : NULL;
    json_t *out = NULL;
    pthread_mutex_lock(&a->mu);
    bool malformed;
    char buf[512];
    const char *token = bearer_token(auth, buf, sizeof buf, &malformed);
    const session *s = token ? find_session(a, token, crm_wall_ms()) : NULL;
    size_t i;
    json_t *u;
    if (s) json_array_foreach(a->users, i, u) {
        if (!strcmp(field(u, "username"), s->user))
            out = json_pack("{s:s,s:O}", "username", s->user, "permissions", json_object_get(u, "permissions"));
    }
    pthread_mutex_unlock(&a->mu);
    return out;
}
