/* process.c: the companion process and its channel.
 *
 * One companion per Carmine process. The first bridge node to start owns it:
 * it spawns `node companion.js` (posix_spawn, fd 3 one end of a unix socket
 * pair, stdout joined to stderr), watches the socket and a pidfd with
 * crm_watch_fd on its loop, and restarts a process that died with a backoff
 * (250 ms doubling to 8 s; back to 250 ms once it ran 10 s), giving it its
 * part of the flows again. Every line either way is one JSON object
 * (companion.js describes them). Bridges on other loops queue their lines
 * here and post one flush to the owner's loop; lines queued while the
 * process is down wait for the next one (up to 64 MB, then dropped). When
 * the owner closes, the socket is closed (companion.js exits on EOF),
 * SIGTERM follows, and the process is reaped. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "companion.h"
#include "companion_int.h"
#include "comms.h"
#include "engine.h"
#include "httpd.h"

extern char **environ;

#define QUEUE_MAX (64u << 20)
#define HOLD_MAX_MS 30000 /* inject nodes held for a companion that is not ready start anyway */

static struct {
    pthread_mutex_t lock;
    json_t *part, *creds; /* the companion's flows, its credentials */
    char *userdir;
    crm_node *owner;
    pid_t pid;
    int fd, pidfd;
    crm_watch *wfd, *wpid;
    crm_timer *restart;
    strbuf out; /* queued lines; out_off bytes of it are written */
    size_t out_off;
    bool flush_posted, dropping;
    bool redeploy; /* the process is stopped for new flows: restart at once */
    strbuf in; /* a partial line read */
    int backoff_ms;
    double spawned_at;
    bool ready;             /* its flows run (its "ready" line since the last spawn) */
    crm_node **held;        /* inject nodes whose start waits for that (crm_companion_hold_start) */
    size_t nheld, capheld;
    crm_timer *hold_timer;  /* HOLD_MAX_MS after a spawn, on the owner's loop */
} C = {.lock = PTHREAD_MUTEX_INITIALIZER, .pid = -1, .fd = -1, .pidfd = -1, .backoff_ms = 250};

static void redeploy_job(crm_node *n, void *arg)
{
    (void)n;
    (void)arg;
    if (C.pid > 0) {
        C.redeploy = true;
        kill(C.pid, SIGTERM); /* on_exit starts the next one with the new part */
    }
}

void crm_companion_set_part(const json_t *flows, const json_t *creds, const char *userdir)
{
    pthread_mutex_lock(&C.lock);
    /* a deploy that keeps the owner running: the companion restarts with
     * its new part (one that removes the owner stops it: a bridge that
     * starts or gets a message next starts the new one) */
    crm_node *post = C.owner && C.part && (!json_equal(C.part, (json_t *)flows) || !json_equal(C.creds, (json_t *)creds))
                         ? C.owner
                         : NULL;
    if (post) C.ready = false; /* it restarts: the deploy's new injects wait for it */
    json_decref(C.part);
    json_decref(C.creds);
    free(C.userdir);
    C.part = json_deep_copy(flows);
    C.creds = json_deep_copy(creds);
    /* absolute: Node-RED resolves a relative userDir elsewhere */
    C.userdir = realpath(userdir && *userdir ? userdir : ".", NULL);
    pthread_mutex_unlock(&C.lock);
    crm_companion_ctx_scopes(flows);
    if (post) crm_node_post(post, redeploy_job, NULL);
}

/* Paths ----------------------------------------------------------------------- */

static char *first_existing(const char *env, const char *const *candidates, int mode)
{
    const char *e = getenv(env);
    if (e && *e) return access(e, mode) ? NULL : strdup(e);
    for (size_t i = 0; candidates[i]; i++)
        if (!access(candidates[i], mode)) return strdup(candidates[i]);
    return NULL;
}

char *crm_companion_script_path(void)
{
    static const char *const c[] = {CRM_SOURCE_ROOT "/runtime/companion/companion.js", CRM_DATADIR "/carmine/companion.js",
                                    NULL};
    return first_existing("CARMINE_COMPANION_JS", c, R_OK);
}

char *crm_companion_modules_path(void)
{
    static const char *const c[] = {CRM_SOURCE_ROOT "/.deps/companion/node_modules",
                                    CRM_DATADIR "/carmine/companion/node_modules", NULL};
    char *p = first_existing("CARMINE_COMPANION_MODULES", c, R_OK);
    if (!p) return NULL;
    char *pkg;
    if (asprintf(&pkg, "%s/node-red/package.json", p) < 0 || access(pkg, R_OK)) {
        free(p);
        p = NULL;
    }
    free(pkg);
    return p;
}

char *crm_companion_node_path(void)
{
    const char *e = getenv("CARMINE_NODE");
    if (e && *e) return access(e, X_OK) ? NULL : strdup(e);
    const char *path = getenv("PATH");
    char *dirs = strdup(path ? path : "/usr/bin:/bin"), *save = NULL, *r = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !r; d = strtok_r(NULL, ":", &save)) {
        char *p;
        if (asprintf(&p, "%s/node", d) < 0) continue;
        if (!access(p, X_OK)) r = p;
        else free(p);
    }
    free(dirs);
    return r;
}

static json_t *revive(json_t *v);

/* Messages: JSON text with tokens for Buffers, NaN/Infinity and msg.res ---- */

json_t *crm_companion_revive(json_t *v)
{
    return revive(v);
}

static json_t *revive(json_t *v)
{
    if (json_is_object(v)) {
        json_t *tok = json_object_size(v) == 1 ? json_object_get(v, CRM_COMPANION_RES_TOKEN) : NULL;
        if (json_is_number(tok)) { /* msg.res, live again */
            json_t *h = crm_handle_new((long long)crm_num_value(tok));
            json_decref(v);
            return h;
        }
        const char *num = json_object_size(v) == 1 ? json_string_value(json_object_get(v, CRM_COMPANION_NUM_TOKEN)) : NULL;
        if (num) { /* NaN, Infinity, -Infinity */
            json_t *d = crm_num(!strcmp(num, "Infinity") ? INFINITY : !strcmp(num, "-Infinity") ? -INFINITY : NAN);
            json_decref(v);
            return d;
        }
        json_t *b64 = json_object_size(v) == 1 ? json_object_get(v, CRM_COMPANION_BUF_TOKEN) : NULL;
        if (json_is_string(b64)) { /* a Buffer */
            json_t *buf = crm_companion_unbase64(json_string_value(b64), json_string_length(b64));
            json_decref(v);
            return buf;
        }
        const char *k;
        json_t *e;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, e) {
            json_t *r = revive(json_incref(e));
            if (r != e) json_object_set(v, k, r);
            json_decref(r);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i), *r = revive(json_incref(e));
            if (r != e) json_array_set(v, i, r);
            json_decref(r);
        }
    }
    return v;
}

/* The channel ----------------------------------------------------------------- */

static void spawn(crm_node *owner);

/* Writes what it can (owner's loop, lock held). */
static void flush_locked(void)
{
    while (C.fd >= 0 && C.out_off < C.out.len) {
        ssize_t w = write(C.fd, C.out.data + C.out_off, C.out.len - C.out_off);
        if (w > 0) C.out_off += (size_t)w;
        else if (w < 0 && errno == EINTR) continue;
        else break;
    }
    if (C.out_off == C.out.len) {
        C.out.len = 0;
        C.out_off = 0;
        if (C.out.data) C.out.data[0] = 0;
    } else if (C.out_off > (1u << 20)) {
        memmove(C.out.data, C.out.data + C.out_off, C.out.len - C.out_off);
        C.out.len -= C.out_off;
        C.out_off = 0;
    }
    if (C.wfd) crm_watch_events(C.wfd, POLLIN | (C.out_off < C.out.len ? POLLOUT : 0));
}

/* Puts ctx lines ahead of the queued lines not yet begun (lock held). */
static void put_ahead(const strbuf *ctx)
{
    size_t at = C.out_off;
    if (at > 0 && C.out.data[at - 1] != '\n') { /* a line half written goes on first */
        char *nl = memchr(C.out.data + at, '\n', C.out.len - at);
        at = nl ? (size_t)(nl - C.out.data) + 1 : C.out.len;
    }
    if (at < C.out.len && !strncmp(C.out.data + at, "{\"t\":\"flows\"", 12)) { /* the flows line stays first */
        char *nl = memchr(C.out.data + at, '\n', C.out.len - at);
        at = nl ? (size_t)(nl - C.out.data) + 1 : C.out.len;
    }
    strbuf q = SB_INIT;
    sb_putn(&q, C.out.data + C.out_off, at - C.out_off);
    sb_putn(&q, ctx->data, ctx->len);
    sb_putn(&q, C.out.data + at, C.out.len - at);
    sb_free(&C.out);
    C.out = q;
    C.out_off = 0;
}

static void flush_job(crm_node *n, void *arg)
{
    (void)arg;
    strbuf ctx = SB_INIT;
    pthread_mutex_lock(&C.lock);
    C.flush_posted = false;
    pthread_mutex_unlock(&C.lock);
    crm_companion_ctx_take(n->rt, &ctx); /* context changes first (ctx.c) */
    pthread_mutex_lock(&C.lock);
    if (ctx.len) put_ahead(&ctx);
    flush_locked();
    pthread_mutex_unlock(&C.lock);
    sb_free(&ctx);
}

void crm_companion_kick(void)
{
    crm_node *post = NULL;
    pthread_mutex_lock(&C.lock);
    if (C.owner && !C.flush_posted) {
        C.flush_posted = true;
        post = C.owner;
    }
    pthread_mutex_unlock(&C.lock);
    if (post) crm_node_post(post, flush_job, NULL);
}

void crm_companion_queue(crm_node *from, char *line, size_t len)
{
    crm_node *post = NULL;
    pthread_mutex_lock(&C.lock);
    if (!C.owner) { /* its owner was removed by a deploy: this bridge takes over (on its loop) */
        pthread_mutex_unlock(&C.lock);
        crm_companion_start(from);
        pthread_mutex_lock(&C.lock);
    }
    if (C.out.len - C.out_off + len > QUEUE_MAX) {
        bool first = !C.dropping;
        C.dropping = true;
        pthread_mutex_unlock(&C.lock);
        if (first) crm_node_warn(from, "[companion] 64 MB of messages wait for it: dropping messages");
        return;
    }
    C.dropping = false;
    sb_putn(&C.out, line, len);
    /* one write per batch: the flush runs after the handlers queued so far */
    if (!C.flush_posted) {
        C.flush_posted = true;
        post = C.owner;
    }
    pthread_mutex_unlock(&C.lock);
    if (post) crm_node_post(post, flush_job, NULL);
}

typedef struct {
    int kind; /* 0 out, 1 error, 2 status, 3 complete */
    int port;
    json_t *msg;
    json_t *source; /* the source of an error or status inside a hosted subflow instance, or NULL */
} item;

static void item_free(void *arg)
{
    item *it = arg;
    json_decref(it->msg);
    json_decref(it->source);
    free(it);
}

static void deliver(crm_node *n, void *arg)
{
    item *it = arg;
    if (it->kind == 0) {
        crm_node_send(n, it->port, it->msg);
        it->msg = NULL;
    } else if (it->kind == 1) {
        json_t *err = json_object_get(it->msg, "error");
        const char *text = json_string_value(json_object_get(err, "message"));
        char *t = text ? strdup(text) : crm_to_string(err);
        /* what Node-RED put beside message and source (code, stack, cause:
         * the hosted node's error was an Error) goes on msg.error here too */
        json_t *extra = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(err, k, x) if (strcmp(k, "message") && strcmp(k, "source")) json_object_set(extra, k, x);
        if (it->source) json_object_set(extra, "source", it->source); /* catch nodes see the node inside the subflow */
        json_incref(err);
        json_object_del(it->msg, "error");
        crm_node_error_with(n, it->msg, t, json_object_size(extra) ? extra : NULL);
        json_decref(extra);
        json_decref(err);
        free(t);
    } else if (it->kind == 3) {
        crm_node_done(n, it->msg);
    } else if (it->source) {
        /* status nodes see the node inside the subflow, as in Node-RED; the
         * instance's own status (shown in the editor) is not this one */
        crm_route_status_as(n, it->msg, it->source);
    } else if (it->kind == 4) {
        /* the editor's status of the hosted node (Node-RED's node-status
         * event: also what a node shows while its flow starts, before any
         * status node could see it) */
        json_t *st = json_object();
        const char *keys[] = {"fill", "shape", "text"};
        for (int i = 0; i < 3; i++) {
            json_t *x = json_object_get(it->msg, keys[i]);
            if (x) json_object_set(st, keys[i], x);
        }
        crm_comms_status(n, st);
        json_decref(st);
    } else { /* what the hosted node's status nodes see */
        json_t *st = json_object();
        const char *keys[] = {"fill", "shape", "text"};
        for (int i = 0; i < 3; i++) {
            json_t *x = json_object_get(it->msg, keys[i]);
            if (json_is_string(x)) json_object_set(st, keys[i], x);
        }
        crm_route_status(n, st);
        json_decref(st);
    }
    item_free(it);
}

/* A hosted node's log entry (node.log/warn/error without a message), as
 * Node-RED prints it and, warnings and errors, shows it in the debug
 * sidebar; a node Carmine has no bridge for (a config node, a node inside a
 * hosted subflow) is printed with its type and name. */
/* Holding inject nodes ---------------------------------------------------------
 * Node-RED starts every node before any inject fires (their timers count
 * from then). The native inject nodes of flows with hosted nodes start when
 * the companion is ready, so an inject "once after 0.1 s" reaches hosted
 * nodes that exist, as in Node-RED; flows without hosted nodes have no
 * owner here and never wait. */

static void start_held(crm_node *n, void *arg)
{
    (void)arg;
    if (!n->closed) n->type->start(n);
}

static void release_held(void)
{
    pthread_mutex_lock(&C.lock);
    crm_node **h = C.held;
    size_t nh = C.nheld;
    C.held = NULL;
    C.nheld = C.capheld = 0;
    pthread_mutex_unlock(&C.lock);
    for (size_t i = 0; i < nh; i++) crm_node_post(h[i], start_held, NULL);
    free(h);
}

static void hold_timeout(crm_node *owner, void *arg)
{
    (void)arg;
    C.hold_timer = NULL;
    pthread_mutex_lock(&C.lock);
    size_t nh = C.nheld;
    pthread_mutex_unlock(&C.lock);
    if (nh)
        crm_log(owner->rt, CRM_LOG_WARN, NULL, "[companion] not ready after %d s: %zu inject node(s) start without it",
                HOLD_MAX_MS / 1000, nh);
    release_held();
}

bool crm_companion_hold_start(crm_node *n)
{
    pthread_mutex_lock(&C.lock);
    bool hold = C.owner && !C.ready;
    if (hold && C.nheld == C.capheld) {
        size_t cap = C.capheld ? 2 * C.capheld : 16;
        crm_node **h = realloc(C.held, cap * sizeof *h);
        if (h) {
            C.held = h;
            C.capheld = cap;
        } else {
            hold = false; /* no memory: it starts now */
        }
    }
    if (hold) C.held[C.nheld++] = n;
    pthread_mutex_unlock(&C.lock);
    return hold;
}

void crm_companion_forget_held(void)
{
    pthread_mutex_lock(&C.lock);
    free(C.held);
    C.held = NULL;
    C.nheld = C.capheld = 0;
    pthread_mutex_unlock(&C.lock);
}

static void companion_log(crm_node *owner, const json_t *m)
{
    int level = (int)crm_num_value(json_object_get(m, "level"));
    crm_log_level lvl = level <= 20 ? CRM_LOG_ERROR : level <= 30 ? CRM_LOG_WARN : level <= 40 ? CRM_LOG_INFO
                      : level <= 50 ? CRM_LOG_DEBUG : CRM_LOG_TRACE;
    const char *text = json_string_value(json_object_get(m, "text"));
    const char *id = json_string_value(json_object_get(m, "id"));
    crm_node *target = id ? crm_node_find(owner, id) : NULL;
    if (!text) text = "";
    if (target && target->type == &crm_companion_bridge_type) {
        json_t *err = json_object_get(m, "err");
        if (json_is_object(err)) crm_log_error_object(owner->rt, lvl, target, text, err);
        else crm_log(owner->rt, lvl, target, "%s", text);
    } else {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *name = json_string_value(json_object_get(m, "name"));
        crm_log(owner->rt, lvl, NULL, "[%s:%s] %s", type ? type : "", name && *name ? name : id ? id : "", text);
    }
}

static void handle_line(crm_node *owner, const char *line, size_t len)
{
    char err[160];
    json_t *m = crm_parse(line, len, err, sizeof err);
    if (!json_is_object(m)) {
        crm_log(owner->rt, CRM_LOG_WARN, NULL, "[companion] bad line: %s", err);
        json_decref(m);
        return;
    }
    const char *t = json_string_value(json_object_get(m, "t"));
    const char *id = json_string_value(json_object_get(m, "id"));
    if (t && !strcmp(t, "http")) {
        crm_companion_proxy_prefixes(json_object_get(m, "prefixes"));
    } else if (t && !strcmp(t, "cs")) {
        crm_companion_ctx_apply(owner->rt, m);
    } else if (t && !strcmp(t, "log")) {
        companion_log(owner, m);
    } else if (t && !strcmp(t, "ready")) {
        crm_log(owner->rt, CRM_LOG_INFO, NULL, "[companion] ready (pid %d)", (int)C.pid);
        pthread_mutex_lock(&C.lock);
        C.ready = true;
        pthread_mutex_unlock(&C.lock);
        crm_timer_cancel(C.hold_timer);
        C.hold_timer = NULL;
        crm_companion_proxy_ready();
        release_held();
    } else if (t && id) {
        int kind = !strcmp(t, "out")        ? 0
                   : !strcmp(t, "error")    ? 1
                   : !strcmp(t, "status")   ? 2
                   : !strcmp(t, "ns")       ? 4
                   : !strcmp(t, "complete") ? 3
                                            : -1;
        crm_node *target = crm_node_find(owner, id);
        /* a node inside a hosted subflow instance INST has the id INST-ID
         * (INST-J-ID inside an instance J in it): its error or status comes
         * through the instance's bridge */
        bool inner = false;
        if (!target && (kind == 1 || kind == 2)) {
            char *pre = strdup(id), *dash;
            while (!target && (dash = strrchr(pre, '-'))) {
                *dash = 0;
                crm_node *b = crm_node_find(owner, pre);
                if (b && b->type == &crm_companion_bridge_type) target = b;
            }
            free(pre);
            inner = target != NULL;
        }
        if (kind >= 0 && target && target->type == &crm_companion_bridge_type) {
            item *it = calloc(1, sizeof *it);
            it->kind = kind;
            if (inner) {
                json_t *src = kind == 1 ? json_object_get(json_object_get(json_object_get(m, "msg"), "error"), "source")
                                        : json_object_get(m, "source");
                if (json_is_object(src)) it->source = json_deep_copy(src);
            }
            it->port = (int)crm_num_value(json_object_get(m, "p"));
            json_t *v = json_object_get(m, kind == 2 || kind == 4 ? "status" : "msg");
            it->msg = kind == 2 || kind == 4 ? json_incref(v) : revive(json_incref(v));
            if (!json_is_object(it->msg)) item_free(it);
            else crm_node_post_ex(target, deliver, item_free, it);
        } else if (kind == 1) {
            json_t *e = json_object_get(json_object_get(m, "msg"), "error");
            crm_log(owner->rt, CRM_LOG_ERROR, NULL, "[companion] %s: %s", id,
                    json_string_value(json_object_get(e, "message")) ? json_string_value(json_object_get(e, "message"))
                                                                     : "error");
        }
    }
    json_decref(m);
}

static void on_channel(crm_node *owner, int fd, unsigned revents, void *arg)
{
    (void)arg;
    if (revents & POLLOUT) {
        pthread_mutex_lock(&C.lock);
        flush_locked();
        pthread_mutex_unlock(&C.lock);
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR))) return;
    char buf[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                /* the process is gone or going: the pidfd says when */
                crm_watch_cancel(C.wfd);
                C.wfd = NULL;
            }
            break;
        }
        size_t start = 0;
        for (size_t i = 0; i < (size_t)r; i++) {
            if (buf[i] != '\n') continue;
            if (C.in.len) {
                sb_putn(&C.in, buf + start, i - start);
                handle_line(owner, C.in.data, C.in.len);
                C.in.len = 0;
            } else if (i > start) {
                handle_line(owner, buf + start, i - start);
            }
            start = i + 1;
        }
        if (start < (size_t)r) sb_putn(&C.in, buf + start, (size_t)r - start);
    }
}

static void close_channel(void)
{
    crm_watch_cancel(C.wfd);
    crm_watch_cancel(C.wpid);
    C.wfd = C.wpid = NULL;
    if (C.fd >= 0) close(C.fd);
    if (C.pidfd >= 0) close(C.pidfd);
    C.fd = C.pidfd = -1;
    sb_free(&C.in);
    /* a line cut by the crash is dropped; whole lines wait for the next process */
    if (C.out_off < C.out.len) {
        char *nl = C.out_off ? memchr(C.out.data + C.out_off, '\n', C.out.len - C.out_off) : NULL;
        size_t from = C.out_off ? (nl ? (size_t)(nl - C.out.data) + 1 : C.out.len) : 0;
        /* the old flows line is not sent twice */
        strbuf rest = SB_INIT;
        sb_putn(&rest, C.out.data + from, C.out.len - from);
        sb_free(&C.out);
        C.out = rest;
    } else {
        sb_free(&C.out);
    }
    C.out_off = 0;
}

static void respawn(crm_node *owner, void *arg)
{
    (void)arg;
    C.restart = NULL;
    spawn(owner);
}

static void on_exit_fd(crm_node *owner, int fd, unsigned revents, void *arg)
{
    (void)fd;
    (void)revents;
    (void)arg;
    int st = 0;
    pid_t r = waitpid(C.pid, &st, WNOHANG);
    if (r == 0) return;
    pthread_mutex_lock(&C.lock);
    close_channel();
    pthread_mutex_unlock(&C.lock);
    C.pid = -1;
    if (C.redeploy) { /* asked to stop for new flows */
        C.redeploy = false;
        crm_log(owner->rt, CRM_LOG_INFO, NULL, "[companion] restarting with the deployed flows");
        spawn(owner);
        return;
    }
    if (crm_now_ms() - C.spawned_at > 10000) C.backoff_ms = 250;
    char how[64];
    if (r > 0 && WIFSIGNALED(st)) snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(st));
    else snprintf(how, sizeof how, "exited with status %d", r > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    crm_log(owner->rt, CRM_LOG_ERROR, NULL, "[companion] %s; restarting it in %d ms", how, C.backoff_ms);
    C.restart = crm_timer_start(owner, C.backoff_ms, 0, respawn, NULL);
    if (C.backoff_ms < 8000) C.backoff_ms *= 2;
}

/* The companion's HTTP server (proxy.c): its listening socket as fd 4 and
 * Carmine's roots, so its apps mount where Carmine's are:
 * CARMINE_COMPANION_HTTP={"fd":4,"nodeRoot":"/","adminRoot":"/"} (a root
 * false when disabled). NULL without an HTTP server or socket. */
static char *http_env(crm_runtime *rt, int lfd)
{
    crm_httpd *h = crm_runtime_httpd(rt);
    if (lfd < 0 || !h) return NULL;
    const char *nr = crm_httpd_node_root(h), *ar = crm_httpd_admin_root(h);
    json_t *o = json_pack("{s:i,s:o,s:o}", "fd", 4, "nodeRoot", nr ? json_string(nr) : json_false(), "adminRoot",
                          ar ? json_string(ar) : json_false());
    char *text = json_dumps(o, JSON_COMPACT), *e;
    json_decref(o);
    if (!text || asprintf(&e, "CARMINE_COMPANION_HTTP=%s", text) < 0) e = NULL;
    free(text);
    return e;
}

static void spawn(crm_node *owner)
{
    pthread_mutex_lock(&C.lock);
    C.ready = false;
    pthread_mutex_unlock(&C.lock);
    if (!C.hold_timer) C.hold_timer = crm_timer_start(owner, HOLD_MAX_MS, 0, hold_timeout, NULL);
    char *node = crm_companion_node_path(), *js = crm_companion_script_path(), *mods = crm_companion_modules_path();
    int sv[2] = {-1, -1};
    if (!node || !js || !mods || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        pthread_mutex_lock(&C.lock);
        C.ready = true; /* nothing to wait for: injects start now */
        pthread_mutex_unlock(&C.lock);
        release_held();
        crm_log(owner->rt, CRM_LOG_ERROR, NULL, "[companion] cannot start: %s", !node ? "no node executable"
                                                                                  : !js ? "companion.js not found"
                                                                                  : !mods ? "node-red package not found"
                                                                                          : strerror(errno));
        free(node);
        free(js);
        free(mods);
        return;
    }
    /* the environment, plus where things are */
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = calloc(ne + 5, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "CARMINE_COMPANION_", 18)) envp[k++] = environ[i];
    char *e1, *e2, *e3 = "CARMINE_COMPANION_FD=3";
    pthread_mutex_lock(&C.lock);
    if (asprintf(&e1, "CARMINE_COMPANION_MODULES=%s", mods) < 0) e1 = NULL;
    if (asprintf(&e2, "CARMINE_COMPANION_USERDIR=%s", C.userdir ? C.userdir : ".") < 0) e2 = NULL;
    pthread_mutex_unlock(&C.lock);
    envp[k++] = e1;
    envp[k++] = e2;
    envp[k++] = e3;
    int lfd = crm_companion_proxy_listen_fd(owner->rt);
    char *e4 = http_env(owner->rt, lfd);
    if (e4) envp[k++] = e4;
    char *argv[] = {node, js, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    if (e4) posix_spawn_file_actions_adddup2(&fa, lfd, 4);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, node, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    free(e1);
    free(e2);
    free(e4);
    free(envp);
    free(node);
    free(js);
    free(mods);
    if (rc) {
        close(sv[0]);
        crm_log(owner->rt, CRM_LOG_ERROR, NULL, "[companion] cannot start node: %s", strerror(rc));
        return;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    json_t *context = crm_companion_ctx_hello(owner->rt); /* before the lock: it takes the stores' */
    pthread_mutex_lock(&C.lock);
    C.pid = pid;
    C.fd = sv[0];
    C.pidfd = pidfd;
    C.spawned_at = crm_now_ms();
    /* the flows go first, then whatever waited */
    json_t *hello = json_pack("{s:s,s:O,s:O,s:o}", "t", "flows", "flows", C.part ? C.part : json_array(), "credentials",
                              C.creds ? C.creds : json_object(), "context", context);
    char *text = crm_companion_text(hello); /* Buffers in context values as tokens */
    json_decref(hello);
    strbuf q = SB_INIT;
    sb_puts(&q, text);
    sb_putc(&q, '\n');
    free(text);
    /* what waited, but the context changes: the copy in the flows line is newer */
    for (size_t at = C.out_off; at < C.out.len;) {
        char *nl = memchr(C.out.data + at, '\n', C.out.len - at);
        size_t end = nl ? (size_t)(nl - C.out.data) + 1 : C.out.len;
        if (strncmp(C.out.data + at, "{\"t\":\"cx\"", 10)) sb_putn(&q, C.out.data + at, end - at);
        at = end;
    }
    sb_free(&C.out);
    C.out = q;
    C.out_off = 0;
    C.wfd = crm_watch_fd(owner, C.fd, POLLIN, on_channel, NULL);
    if (pidfd >= 0) C.wpid = crm_watch_fd(owner, pidfd, POLLIN, on_exit_fd, NULL);
    flush_locked();
    pthread_mutex_unlock(&C.lock);
    crm_log(owner->rt, CRM_LOG_INFO, NULL, "[companion] started node (pid %d)", (int)pid);
}

void crm_companion_start(crm_node *n)
{
    pthread_mutex_lock(&C.lock);
    bool mine = !C.owner;
    if (mine) {
        C.owner = n;
        C.backoff_ms = 250;
        sb_free(&C.out);
        C.out_off = 0;
    }
    pthread_mutex_unlock(&C.lock);
    if (mine) spawn(n);
}

void crm_companion_stop(crm_node *n)
{
    pthread_mutex_lock(&C.lock);
    if (C.owner != n) {
        pthread_mutex_unlock(&C.lock);
        return;
    }
    C.owner = NULL;
    crm_companion_ctx_stop();
    pid_t pid = C.pid;
    close_channel();
    sb_free(&C.out);
    C.out_off = 0;
    C.flush_posted = false;
    C.pid = -1;
    pthread_mutex_unlock(&C.lock);
    crm_timer_cancel(C.restart);
    C.restart = NULL;
    crm_timer_cancel(C.hold_timer);
    C.hold_timer = NULL;
    crm_companion_forget_held();
    crm_companion_proxy_stop();
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    /* closing the channel already asked it to go; give it a second */
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0) return;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
