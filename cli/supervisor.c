/* supervisor.c: `carmine --replicas N FLOWS.json` (docs/ha.md).
 *
 * The supervisor is one thread of control (the main loop below) that owns
 * the replica processes: it starts N copies of `carmine -s SETTINGS FLOWS`
 * whose settings add reusePort, so the kernel spreads connections over
 * them; reads their stdout+stderr through a pipe each and re-prints every
 * line tagged with the replica's slot; notices that a replica is ready by
 * the line `carmine: running ...` that the command prints once its flows
 * have started (it cannot ask /readyz: the shared port answers from any
 * replica); restarts a replica that dies, with a doubling backoff; and on
 * SIGTERM/SIGINT asks every replica to drain and waits for them.
 *
 * Deploys (supervisor_api.c) hand new flows to the main loop, which writes
 * the flows file and replaces the replicas one slot at a time: a new
 * process for the slot first, the old one is told to drain only once the
 * new one is ready, so N replicas serve at every moment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_auth.h"
#include "supervisor_int.h"

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void sup_log(supervisor *s, const char *fmt, ...)
{
    (void)s;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[supervisor] %s\n", text);
}

/* Replica processes ------------------------------------------------------------------ */

/* The environment of a replica: ours plus its slot and the lease file.
 * Built before fork: the child of a threaded process may only exec. */
static char **replica_env(supervisor *s, int slot)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 3, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CARMINE_REPLICA=", 16) && strncmp(environ[i], "CARMINE_LEASE_FILE=", 19))
            env[k++] = environ[i];
    if (asprintf(&env[k++], "CARMINE_REPLICA=%d", slot) < 0) env[--k] = NULL;
    if (asprintf(&env[k++], "CARMINE_LEASE_FILE=%s", s->lease_path) < 0) env[--k] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env[i]; i++)
        if (!strncmp(env[i], "CARMINE_REPLICA=", 16) || !strncmp(env[i], "CARMINE_LEASE_FILE=", 19)) free(env[i]);
    free(env);
}

static replica *slot_entry(supervisor *s)
{
    for (size_t i = 0; i < s->nr; i++)
        if (s->r[i].free) return &s->r[i];
    if (s->nr == sizeof s->r / sizeof s->r[0]) return NULL;
    return &s->r[s->nr++];
}

/* Starts a process for slot into e (a free entry or one waiting out its backoff). */
static int start_process(supervisor *s, replica *e, int slot)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        sup_log(s, "replica %d: cannot create a pipe: %s", slot, strerror(errno));
        return -1;
    }
    char **env = replica_env(s, slot);
    char *argv[] = {"carmine", "-s", s->settings_path, s->flows_path, NULL};
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a replica never outlives its supervisor */
        if (getppid() != me) _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(s->exe, argv, env);
        _exit(127);
    }
    close(p[1]);
    free_env(env);
    if (pid < 0) {
        close(p[0]);
        sup_log(s, "replica %d: cannot fork: %s", slot, strerror(errno));
        return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    e->free = false;
    e->slot = slot;
    e->pid = pid;
    e->out = p[0];
    e->llen = 0;
    e->state = R_STARTING;
    e->retiring = false;
    e->gen = s->gen;
    e->started = now_ms();
    return 0;
}

replica *sup_spawn(supervisor *s, int slot)
{
    replica *e = slot_entry(s);
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    e->backoff = s->backoff_min;
    if (start_process(s, e, slot) < 0) {
        e->free = true;
        return NULL;
    }
    return e;
}

static void on_line(supervisor *s, replica *e, const char *line)
{
    fprintf(stderr, "[replica %d] %s\n", e->slot, line);
    if (e->state == R_STARTING && !strncmp(line, "carmine: running ", 17)) {
        e->state = R_READY;
        sup_log(s, "replica %d (pid %d) ready in %.0f ms", e->slot, (int)e->pid, now_ms() - e->started);
    }
}

/* Reads what a replica printed; returns false at end of file. */
static bool pump(supervisor *s, replica *e)
{
    char buf[8192];
    for (;;) {
        ssize_t n = read(e->out, buf, sizeof buf);
        if (n == 0) return false;
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || e->llen == sizeof e->line - 1) {
                e->line[e->llen] = 0;
                on_line(s, e, e->line);
                e->llen = 0;
                if (buf[i] == '\n') continue;
            }
            e->line[e->llen++] = buf[i];
        }
    }
}

static void close_output(supervisor *s, replica *e)
{
    if (e->out < 0) return;
    pump(s, e);
    if (e->llen) {
        e->line[e->llen] = 0;
        on_line(s, e, e->line);
        e->llen = 0;
    }
    close(e->out);
    e->out = -1;
}

static void describe_exit(int status, char *out, size_t cap)
{
    if (WIFSIGNALED(status)) snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
}

static void reaped(supervisor *s, replica *e, int status)
{
    close_output(s, e);
    char why[128];
    describe_exit(status, why, sizeof why);
    double up = (now_ms() - e->started) / 1000;
    if (e->retiring || s->stopping) {
        sup_log(s, "replica %d (pid %d) stopped: %s", e->slot, (int)e->pid, why);
        e->free = true;
        e->pid = 0;
        return;
    }
    if (s->deploy_new == e) {
        snprintf(s->deploy_error, sizeof s->deploy_error, "replica %d did not start with the new flows: %s", e->slot, why);
        s->deploy_new = NULL;
        s->deploy_failed = true;
        e->free = true;
        e->pid = 0;
        return;
    }
    /* a replica that ran a while starts over at the shortest backoff */
    if (up * 1000 >= s->backoff_reset) e->backoff = s->backoff_min;
    e->restarts++;
    if (e->slot >= 1 && e->slot <= MAX_REPLICAS) s->slot_restarts[e->slot]++;
    e->restart_at = now_ms() + e->backoff;
    sup_log(s, "replica %d (pid %d) died after %.1f s: %s; restart %d in %.0f ms", e->slot, (int)e->pid, up, why,
            e->restarts, e->backoff);
    e->backoff = e->backoff * 2 > s->backoff_max ? s->backoff_max : e->backoff * 2;
    e->pid = 0;
    e->state = R_BACKOFF;
}

static void reap_children(supervisor *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->nr; i++)
            if (!s->r[i].free && s->r[i].pid == pid) reaped(s, &s->r[i], status);
        pthread_mutex_unlock(&s->mu);
    }
}

static void restart_due(supervisor *s)
{
    double t = now_ms();
    for (size_t i = 0; i < s->nr; i++) {
        replica *e = &s->r[i];
        if (e->free || e->state != R_BACKOFF || t < e->restart_at || s->stopping) continue;
        int restarts = e->restarts;
        double backoff = e->backoff;
        if (start_process(s, e, e->slot) < 0) {
            e->restart_at = t + e->backoff;
            continue;
        }
        e->restarts = restarts;
        e->backoff = backoff;
        sup_log(s, "replica %d restarted (pid %d)", e->slot, (int)e->pid);
    }
}

static void drain(replica *e)
{
    e->retiring = true;
    if (e->pid > 0) {
        e->state = R_DRAINING;
        kill(e->pid, SIGTERM);
    } else {
        e->free = true;
    }
}

/* Rolling deploy -------------------------------------------------------------------------- */

/* A deploy that failed (a new replica died at load or was not ready in
 * time) leaves the previous flows in force: the flows file, its credentials
 * and the rev go back, and the slots already replaced are rolled back (a
 * roll back that fails is not rolled back in turn). The old replicas of
 * the other slots never stopped. */
static void roll_back(supervisor *s)
{
    int replaced = s->deploy_slot - 1;
    json_decref(s->flows);
    s->flows = s->prev_flows;
    s->prev_flows = NULL;
    crm_flows_rev(s->flows, s->rev);
    if (sup_write_flows(s, s->flows) < 0)
        sup_log(s, "deploy %u: cannot write %s back: %s", s->gen, s->flows_path, strerror(errno));
    if (s->prev_creds) {
        strbuf e = SB_INIT;
        if (crm_credentials_save(s->flows_path, s->settings, s->prev_creds, &e) < 0)
            sup_log(s, "deploy %u: cannot write the credentials back: %s", s->gen, e.data ? e.data : "");
        sb_free(&e);
    }
    size_t len = strlen(s->deploy_error);
    snprintf(s->deploy_error + len, sizeof s->deploy_error - len, "; the previous flows (rev %.12s) stay in force%s",
             s->rev, replaced > 0 ? ", the replicas already replaced are rolled back" : "");
    if (replaced > 0) {
        json_decref(s->pending);
        json_decref(s->pending_creds);
        s->pending = json_incref(s->flows);
        s->pending_creds = NULL;
        s->pending_rollback = true;
    }
}

static void deploy_finish(supervisor *s, bool ok)
{
    if (!ok && !s->stopping && s->prev_flows && !s->rolling_back) roll_back(s);
    if (ok) sup_log(s, "deploy %u done: every replica runs rev %.12s", s->gen, s->rev);
    else sup_log(s, "deploy %u failed: %s", s->gen, s->deploy_error);
    json_decref(s->prev_flows);
    json_decref(s->prev_creds);
    s->prev_flows = s->prev_creds = NULL;
    s->deploy_slot = 0;
    s->deploy_new = NULL;
    s->deploy_done = s->deploy_seq;
    pthread_cond_broadcast(&s->cv);
}

/* One step of the roll; called from the main loop with mu held. */
static void deploy_step(supervisor *s)
{
    if (!s->deploy_slot) return;
    if (s->deploy_failed) {
        deploy_finish(s, false);
        return;
    }
    if (s->deploy_slot > s->n) {
        deploy_finish(s, true);
        return;
    }
    if (!s->deploy_new) {
        s->deploy_new = sup_spawn(s, s->deploy_slot);
        if (!s->deploy_new) {
            snprintf(s->deploy_error, sizeof s->deploy_error, "cannot start a replica for slot %d", s->deploy_slot);
            deploy_finish(s, false);
            return;
        }
        s->deploy_started = now_ms();
        sup_log(s, "deploy %u: replica %d (pid %d) starting with rev %.12s", s->gen, s->deploy_slot,
                (int)s->deploy_new->pid, s->rev);
        return;
    }
    if (s->deploy_new->state != R_READY) {
        if (now_ms() - s->deploy_started > s->ready_timeout) {
            snprintf(s->deploy_error, sizeof s->deploy_error, "replica %d not ready after %.0f ms", s->deploy_slot,
                     s->ready_timeout);
            kill(s->deploy_new->pid, SIGKILL);
            s->deploy_new->retiring = true;
            deploy_finish(s, false);
        }
        return;
    }
    for (size_t i = 0; i < s->nr; i++) {
        replica *e = &s->r[i];
        if (!e->free && e != s->deploy_new && e->slot == s->deploy_slot && !e->retiring) {
            sup_log(s, "deploy %u: replica %d (pid %d) replaced, draining", s->gen, e->slot, (int)e->pid);
            drain(e);
        }
    }
    s->deploy_slot++;
    s->deploy_new = NULL;
}

/* Set up ---------------------------------------------------------------------------------------- */

static int free_port(const char *host)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, host && *host ? host : "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* net.ipv4.tcp_migrate_req: with it, connections queued on the listener of
 * a replica that dies move to the others instead of being reset. */
static void tcp_migrate_req(supervisor *s, bool want)
{
    const char *path = "/proc/sys/net/ipv4/tcp_migrate_req";
    FILE *f = fopen(path, "r");
    if (!f) {
        sup_log(s, "net.ipv4.tcp_migrate_req: not in this kernel; connections queued on a replica that dies are reset");
        return;
    }
    int v = -1;
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
    if (v == 0 && want) {
        f = fopen(path, "w");
        if (f && fputs("1\n", f) >= 0 && fclose(f) == 0) {
            sup_log(s, "net.ipv4.tcp_migrate_req: was 0, set to 1 (setting supervisor.tcpMigrateReq)");
            return;
        }
        if (f) fclose(f);
        sup_log(s, "net.ipv4.tcp_migrate_req is 0 and cannot be set (%s): connections queued on a replica that dies "
                   "are reset", strerror(errno));
        return;
    }
    sup_log(s, "net.ipv4.tcp_migrate_req = %d", v);
}

/* Writes the flows file as Node-RED does (the previous one kept as .NAME.backup). */
int sup_write_flows(supervisor *s, const json_t *flows)
{
    char backup[4200];
    const char *slash = strrchr(s->flows_path, '/');
    if (slash) snprintf(backup, sizeof backup, "%.*s/.%s.backup", (int)(slash - s->flows_path), s->flows_path, slash + 1);
    else snprintf(backup, sizeof backup, ".%s.backup", s->flows_path);
    if (link(s->flows_path, backup) < 0 && errno == EEXIST) {
        unlink(backup);
        if (link(s->flows_path, backup) < 0) { /* best effort */ }
    }
    char *text = crm_stringify(flows, 4);
    int rc = crm_write_file(s->flows_path, text, 0644);
    free(text);
    return rc;
}

static int write_replica_settings(supervisor *s, const char *admin_host)
{
    json_t *rs = crm_deep_copy(s->settings);
    json_object_set_new(rs, "port", json_real(s->port));
    json_object_set_new(rs, "reusePort", json_true());
    char url[300];
    snprintf(url, sizeof url, "http://%s:%d/", admin_host, s->admin_port);
    json_object_set_new(rs, "supervisorUrl", json_string(url));
    char *text = crm_stringify(rs, 2);
    json_decref(rs);
    int rc = crm_write_file(s->settings_path, text, 0644);
    free(text);
    return rc;
}

static int setup(supervisor *s, const json_t *settings, const char *flows_path, int replicas, int admin_port)
{
    s->settings = crm_deep_copy(settings);
    s->flows_path = strdup(flows_path);
    s->n = replicas;
    s->t0 = now_ms();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->deploy_mu, NULL);
    const json_t *cfg = json_object_get(settings, "supervisor");
    s->backoff_min = crm_cfg_num(cfg, "restartBackoffMs", 100);
    s->backoff_max = crm_cfg_num(cfg, "restartBackoffMaxMs", 10000);
    s->backoff_reset = crm_cfg_num(cfg, "restartResetMs", 10000);
    s->ready_timeout = crm_cfg_num(cfg, "readyTimeoutMs", 30000);
    s->stop_timeout = crm_cfg_num(cfg, "stopTimeoutMs", 30000);
    if (s->backoff_min < 1) s->backoff_min = 1;
    ssize_t n = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
    if (n <= 0) {
        sup_log(s, "cannot find the carmine executable: %s", strerror(errno));
        return -1;
    }
    s->exe[n] = 0;
    json_t *port = json_object_get(settings, "port");
    if (!port) port = json_object_get(settings, "uiPort");
    s->port = port ? (int)json_number_value(port) : 1880;
    const char *host = json_string_value(json_object_get(settings, "host"));
    if (s->port == 0) s->port = free_port(host);
    const char *admin_host = crm_cfg_str(cfg, "adminHost", "127.0.0.1");
    if (admin_port < 0) admin_port = (int)crm_cfg_num(cfg, "adminPort", s->port + 1);
    s->admin_port = admin_port ? admin_port : free_port(admin_host);
    char dir[] = "/tmp/carmine-supervisor-XXXXXX";
    if (!mkdtemp(dir)) {
        sup_log(s, "cannot create a state directory: %s", strerror(errno));
        return -1;
    }
    s->state_dir = strdup(dir);
    if (asprintf(&s->settings_path, "%s/settings.json", dir) < 0 || asprintf(&s->lease_path, "%s/lease", dir) < 0)
        return -1;
    if (write_replica_settings(s, admin_host) < 0) {
        sup_log(s, "cannot write %s: %s", s->settings_path, strerror(errno));
        return -1;
    }
    tcp_migrate_req(s, crm_cfg_bool(cfg, "tcpMigrateReq", true));
    return sup_api_start(s, admin_host);
}

static void cleanup(supervisor *s)
{
    if (s->api) {
        crm_httpd_stop(s->api);
        sup_editor_stop(s);
        crm_httpd_free(s->api);
    }
    crm_admin_auth_free(s->auth);
    if (s->state_dir) {
        unlink(s->settings_path);
        unlink(s->lease_path);
        rmdir(s->state_dir);
    }
    free(s->state_dir);
    free(s->settings_path);
    free(s->lease_path);
    free(s->flows_path);
    json_decref(s->settings);
    json_decref(s->flows);
    json_decref(s->pending);
    json_decref(s->pending_creds);
    json_decref(s->prev_flows);
    json_decref(s->prev_creds);
}

/* Main loop -------------------------------------------------------------------------------------- */

static bool any_running(supervisor *s)
{
    for (size_t i = 0; i < s->nr; i++)
        if (!s->r[i].free && s->r[i].pid > 0) return true;
    return false;
}

static void begin_stop(supervisor *s, int sig, double *deadline)
{
    sup_log(s, "%s: draining %d replicas", sig == SIGINT ? "SIGINT" : "SIGTERM", s->n);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    if (s->deploy_slot) {
        snprintf(s->deploy_error, sizeof s->deploy_error, "the supervisor is stopping");
        deploy_finish(s, false);
    }
    pthread_cond_broadcast(&s->cv);
    for (size_t i = 0; i < s->nr; i++)
        if (!s->r[i].free) drain(&s->r[i]);
    pthread_mutex_unlock(&s->mu);
    *deadline = now_ms() + s->stop_timeout;
}

static void handle_signals(supervisor *s, int sfd, double *deadline)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) reap_children(s);
        else if (!s->stopping) begin_stop(s, (int)si.ssi_signo, deadline);
    }
}

static int poll_timeout(supervisor *s)
{
    double t = now_ms(), next = t + 100;
    for (size_t i = 0; i < s->nr; i++)
        if (!s->r[i].free && s->r[i].state == R_BACKOFF && s->r[i].restart_at < next) next = s->r[i].restart_at;
    return next <= t ? 0 : (int)(next - t) + 1;
}

static void run(supervisor *s, int sfd)
{
    double deadline = 0;
    for (;;) {
        struct pollfd pf[1 + sizeof s->r / sizeof s->r[0]];
        replica *who[sizeof s->r / sizeof s->r[0]];
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (size_t i = 0; i < s->nr; i++)
            if (!s->r[i].free && s->r[i].out >= 0) {
                who[n - 1] = &s->r[i];
                pf[n++] = (struct pollfd){.fd = s->r[i].out, .events = POLLIN};
            }
        poll(pf, n, poll_timeout(s));
        pthread_mutex_lock(&s->mu);
        for (nfds_t i = 1; i < n; i++)
            if (pf[i].revents && !pump(s, who[i - 1])) {
                close(who[i - 1]->out);
                who[i - 1]->out = -1;
            }
        pthread_mutex_unlock(&s->mu);
        handle_signals(s, sfd, &deadline);
        pthread_mutex_lock(&s->mu);
        restart_due(s);
        if (!s->stopping && !s->deploy_slot && s->pending) sup_begin_deploy(s);
        deploy_step(s);
        bool running = any_running(s);
        pthread_mutex_unlock(&s->mu);
        if (s->stopping && !running) return;
        if (s->stopping && now_ms() > deadline && deadline > 0) {
            sup_log(s, "replicas still running after %.0f ms: killing them", s->stop_timeout);
            for (size_t i = 0; i < s->nr; i++)
                if (!s->r[i].free && s->r[i].pid > 0) kill(s->r[i].pid, SIGKILL);
            deadline = 0;
        }
    }
}

int crm_supervisor_main(const json_t *settings, const char *flows_path, int replicas, int admin_port)
{
    if (replicas < 1 || replicas > MAX_REPLICAS) {
        fprintf(stderr, "carmine: --replicas %d: must be 1 to %d\n", replicas, MAX_REPLICAS);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts */
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    static supervisor sup;
    supervisor *s = &sup;
    s->deploy_new = NULL;
    int rc = 1;
    if (sfd >= 0 && sup_load_flows(s, flows_path, settings) == 0 &&
        setup(s, settings, flows_path, replicas, admin_port) == 0) {
        sup_log(s, "%d replicas of %s on port %d (rev %.12s); status and deploys on http://127.0.0.1:%d/", replicas,
                flows_path, s->port, s->rev, s->admin_port);
        pthread_mutex_lock(&s->mu);
        for (int i = 1; i <= replicas; i++)
            if (!sup_spawn(s, i)) sup_log(s, "replica %d: not started", i);
        pthread_mutex_unlock(&s->mu);
        run(s, sfd);
        sup_log(s, "stopped");
        rc = 0;
    }
    if (sfd >= 0) close(sfd);
    cleanup(s);
    return rc;
}
