/* exec.c: Node-RED's `exec` node (core/function/90-exec.js). Runs a command
 * with the payload (or another property) and the "append" text added:
 *  - exec mode (child_process.exec): through a shell, /bin/bash -c when it
 *    exists (as Node-RED sets on Linux), else /bin/sh -c; stdout, stderr and
 *    the return code are sent together on the three outputs when the
 *    command ends.
 *  - spawn mode (child_process.spawn): no shell; the line is split on white
 *    space with "quoted parts" kept together, as Node-RED's regular
 *    expression does; each chunk of stdout/stderr is sent as it arrives, the
 *    return code when the process has ended and its pipes are closed.
 * Output that is valid UTF-8 is a string, anything else a Buffer.
 *
 * Nothing blocks the loop: stdout and stderr are non-blocking pipes and the
 * process's end is seen on its pidfd (pidfd_open), all through
 * crm_watch_fd; the child is reaped there. Each child leads its own process
 * group, so a kill (timer, msg.kill, flow stop) reaches what a shell
 * started too. When the flow stops, children get SIGTERM as in Node-RED,
 * then SIGKILL after a short grace, and are reaped: none is left behind. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "carmine.h"
#include "net/netutil.h"

extern char **environ;

#define CLOSE_GRACE_MS 1000

typedef struct proc {
    struct proc *next;
    crm_node *n;
    pid_t pid;               /* 0: the command could not start */
    int pidfd, out, err, in;
    crm_watch *wpid, *wout, *werr;
    json_t *msg;             /* the message that started it */
    char *cmdline;           /* exec mode: for the error text */
    strbuf obuf, ebuf;       /* exec mode: the whole output */
    bool exited, killed_max;
    int status;              /* waitpid's */
    crm_timer *timer;
} proc;

typedef struct {
    char *cmd, *append, *addpay;
    bool spawn, oldrc;
    double timer_ms;
    double max_buffer;
    const char *shell;
    proc *procs;
} exec_state;

static int sig_number(const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT}, {"SIGILL", SIGILL},
                {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT}, {"SIGBUS", SIGBUS},   {"SIGFPE", SIGFPE},
                {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
                {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM}, {"SIGCHLD", SIGCHLD},
                {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP}, {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN},
                {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},   {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
                {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH}, {"SIGIO", SIGIO},
                {"SIGPWR", SIGPWR},   {"SIGSYS", SIGSYS}};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (!strcasecmp(name, sigs[i].name)) return sigs[i].sig;
    return -1;
}

static const char *sig_name(int sig)
{
    const char *a = sigabbrev_np(sig);
    static __thread char buf[32];
    snprintf(buf, sizeof buf, "SIG%s", a ? a : "UNKNOWN");
    return buf;
}

/* The whole process group when the flow stops (nothing left behind) or the
 * output overflows (Node's exec drops the pipes too); the child alone for
 * msg.kill and the timer, as Node's child.kill(): a grandchild that holds
 * the pipes then delays the return code until it lets go, as in Node-RED. */
static void kill_proc(proc *p, int sig, bool group)
{
    if (p->pid <= 0 || p->exited) return;
    if (!group || kill(-p->pid, sig) < 0) kill(p->pid, sig);
}

static void proc_free(exec_state *s, proc *p)
{
    for (proc **pp = &s->procs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    crm_watch_cancel(p->wpid);
    crm_watch_cancel(p->wout);
    crm_watch_cancel(p->werr);
    crm_timer_cancel(p->timer);
    if (p->pidfd >= 0) close(p->pidfd);
    if (p->out >= 0) close(p->out);
    if (p->err >= 0) close(p->err);
    if (p->in >= 0) close(p->in);
    json_decref(p->msg);
    free(p->cmdline);
    sb_free(&p->obuf);
    sb_free(&p->ebuf);
    free(p);
}

static json_t *output_value(const char *d, size_t len)
{
    if (!d) d = "";
    return crm_utf8_valid(d, len) ? json_stringn(d, len) : crm_buf_new(d, len);
}

/* The bytes as Node's 'binary' (latin1) string, for the error message. */
static void latin1_text(strbuf *out, const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c < 0x80) sb_putc(out, (char)c);
        else {
            sb_putc(out, (char)(0xC0 | (c >> 6)));
            sb_putc(out, (char)(0x80 | (c & 0x3F)));
        }
    }
}

static void finish(exec_state *s, proc *p)
{
    crm_node *n = p->n;
    json_t *msg = p->msg;
    int code = -1, sig = 0;
    if (p->pid <= 0) code = -2; /* ENOENT from spawn */
    else if (WIFEXITED(p->status)) code = WEXITSTATUS(p->status);
    else if (WIFSIGNALED(p->status)) sig = WTERMSIG(p->status);
    if (s->spawn) {
        json_t *pl;
        if (!s->oldrc) {
            pl = json_object();
            json_object_set_new(pl, "code", sig ? json_null() : json_real(code));
            if (sig) json_object_set_new(pl, "signal", json_string(sig_name(sig)));
        } else pl = sig ? json_null() : json_real(code);
        json_object_set_new(msg, "payload", pl);
        if (!sig && code == 0) crm_node_status(n, NULL, NULL, NULL);
        if (sig) crm_node_status(n, "red", "dot", "killed");
        else {
            char t[32];
            snprintf(t, sizeof t, "rc:%d", code);
            crm_node_status(n, code < 0 ? "red" : "yellow", "dot", t);
        }
        json_t *outs[3] = {NULL, NULL, crm_msg_clone(msg)};
        crm_node_send_ports(n, outs, 3);
        crm_node_done(n, msg);
        proc_free(s, p);
        return;
    }
    /* exec mode */
    json_object_del(msg, "payload");
    json_t *msg2 = NULL, *msg3 = NULL;
    if (p->ebuf.len) {
        msg2 = crm_msg_clone(msg);
        json_object_set_new(msg2, "payload", output_value(p->ebuf.data, p->ebuf.len));
    }
    json_object_set_new(msg, "payload", output_value(p->obuf.data, p->obuf.len));
    crm_node_status(n, NULL, NULL, NULL);
    bool failed = sig || code != 0 || p->killed_max;
    if (failed) {
        msg3 = crm_msg_clone(msg);
        json_t *pl = json_object();
        json_object_set_new(pl, "code", sig ? json_null() : json_real(code));
        strbuf m = SB_INIT;
        if (p->killed_max) sb_puts(&m, "stdout maxBuffer length exceeded");
        else {
            sb_printf(&m, "Command failed: %s\n", p->cmdline);
            latin1_text(&m, p->ebuf.data, p->ebuf.len);
        }
        json_object_set_new(pl, "message", json_stringn(m.data, m.len));
        sb_free(&m);
        if (sig) json_object_set_new(pl, "signal", json_string(sig_name(sig)));
        json_object_set_new(msg3, "payload", pl);
        if (sig) crm_node_status(n, "red", "dot", "killed");
        else {
            char t[32];
            snprintf(t, sizeof t, "error:%d", code);
            crm_node_status(n, "red", "dot", t);
        }
    } else if (!s->oldrc) {
        msg3 = crm_msg_clone(msg);
        json_object_set_new(msg3, "payload", json_pack("{s:f}", "code", 0.0));
    }
    if (!msg3) crm_node_status(n, NULL, NULL, NULL);
    else {
        json_object_set_new(msg, "rc", crm_deep_copy(json_object_get(msg3, "payload")));
        if (msg2) json_object_set_new(msg2, "rc", crm_deep_copy(json_object_get(msg3, "payload")));
    }
    json_t *outs[3] = {json_incref(msg), msg2, msg3};
    crm_node_send_ports(n, outs, 3);
    crm_node_done(n, msg);
    proc_free(s, p);
}

static void maybe_finish(exec_state *s, proc *p)
{
    if (p->exited && p->out < 0 && p->err < 0) finish(s, p);
}

static void on_output(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)revents;
    proc *p = arg;
    exec_state *s = crm_node_data(n);
    bool is_err = fd == p->err;
    char buf[65536];
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) return;
        if (k <= 0) break;
        if (s->spawn) {
            json_object_set_new(p->msg, "payload", output_value(buf, (size_t)k));
            json_t *outs[3] = {NULL, NULL, NULL};
            outs[is_err ? 1 : 0] = crm_deep_copy(p->msg);
            crm_node_send_ports(n, outs, 3);
        } else {
            strbuf *b = is_err ? &p->ebuf : &p->obuf;
            sb_putn(b, buf, (size_t)k);
            if ((double)b->len > s->max_buffer && !p->killed_max) {
                p->killed_max = true;
                kill_proc(p, SIGTERM, true);
            }
        }
        if ((size_t)k < sizeof buf) return; /* the rest when poll says so */
    }
    /* end of file */
    if (is_err) {
        crm_watch_cancel(p->werr);
        p->werr = NULL;
        close(p->err);
        p->err = -1;
    } else {
        crm_watch_cancel(p->wout);
        p->wout = NULL;
        close(p->out);
        p->out = -1;
    }
    maybe_finish(s, p);
}

static void on_exit_fd(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)fd, (void)revents;
    proc *p = arg;
    exec_state *s = crm_node_data(n);
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0) return;
    p->exited = true;
    p->status = r > 0 ? st : 0;
    crm_watch_cancel(p->wpid);
    p->wpid = NULL;
    crm_timer_cancel(p->timer);
    p->timer = NULL;
    if (p->in >= 0) close(p->in);
    p->in = -1;
    maybe_finish(s, p);
}

static void on_timeout(crm_node *n, void *arg)
{
    (void)n;
    proc *p = arg;
    p->timer = NULL;
    kill_proc(p, SIGTERM, false);
}

/* Node-RED's split for spawn: /(?:[^\s"]+|"[^"]*")+/g, then quotes around a
 * whole token dropped. */
static char **split_args(const char *line, size_t *count)
{
    size_t cap = 8, k = 0;
    char **v = malloc(cap * sizeof *v);
    const char *p = line;
    for (;;) {
        while (*p && strchr(" \t\n\r\f\v", *p)) p++;
        if (!*p) break;
        const char *start = p;
        for (;;) {
            if (*p && !strchr(" \t\n\r\f\v\"", *p)) p++;
            else if (*p == '"' && strchr(p + 1, '"')) p = strchr(p + 1, '"') + 1;
            else break;
        }
        if (p == start) { /* a lone quote: the regex skips it */
            p++;
            continue;
        }
        size_t len = (size_t)(p - start);
        char *tok = strndup(start, len);
        if (len >= 2 && tok[0] == '"' && tok[len - 1] == '"') {
            memmove(tok, tok + 1, len - 2);
            tok[len - 2] = 0;
        }
        if (k + 2 > cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = tok;
    }
    v[k] = NULL;
    *count = k;
    return v;
}

static void exec_input(crm_node *n, json_t *msg)
{
    exec_state *s = crm_node_data(n);
    json_t *kv = json_object_get(msg, "kill");
    if (kv) {
        const char *sn = json_string_value(kv);
        char up[32] = "SIGTERM";
        if (sn && *sn && !strncasecmp(sn, "SIG", 3) && strlen(sn) < sizeof up) {
            for (size_t i = 0; i <= strlen(sn); i++) up[i] = (char)toupper((unsigned char)sn[i]);
        }
        json_object_set_new(msg, "kill", json_string(up));
        int sig = sig_number(up);
        if (sig < 0) sig = SIGTERM;
        json_t *pidv = json_object_get(msg, "pid");
        proc *target = NULL;
        if (pidv) {
            char *want = crm_to_string(pidv);
            for (proc *p = s->procs; p; p = p->next) {
                char have[32];
                if (p->pid > 0) snprintf(have, sizeof have, "%d", (int)p->pid);
                else snprintf(have, sizeof have, "undefined");
                if (want && !strcmp(want, have) && !p->exited) target = p;
            }
            free(want);
        } else {
            size_t live = 0;
            for (proc *p = s->procs; p; p = p->next)
                if (!p->exited) live++, target = p;
            if (live != 1) target = NULL;
        }
        if (target) {
            kill_proc(target, sig, false);
            crm_node_status(n, "red", "dot", "killed");
        }
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    strbuf line = SB_INIT;
    sb_puts(&line, s->cmd);
    if (s->addpay) {
        json_t *v = crm_msg_get(msg, s->addpay);
        if (v) {
            char *t = crm_to_string(v);
            sb_printf(&line, " %s", t ? t : "");
            free(t);
        }
    }
    if (*s->append) sb_printf(&line, " %s", s->append);

    char **argv;
    size_t argc = 0;
    if (s->spawn) {
        argv = split_args(line.data, &argc);
    } else {
        argv = calloc(4, sizeof *argv);
        argv[0] = strdup(s->shell);
        argv[1] = strdup("-c");
        argv[2] = strdup(line.data);
        argc = 3;
    }
    proc *p = calloc(1, sizeof *p);
    p->n = n;
    p->msg = msg;
    p->pidfd = p->out = p->err = p->in = -1;
    p->cmdline = sb_take(&line);
    p->next = s->procs;
    s->procs = p;

    int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1};
    int rc = ENOENT;
    if (argc > 0 && !pipe2(po, O_CLOEXEC) && !pipe2(pe, O_CLOEXEC) && !pipe2(pi, O_CLOEXEC)) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pi[0], 0);
        posix_spawn_file_actions_adddup2(&fa, po[1], 1);
        posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
        posix_spawnattr_t at;
        posix_spawnattr_init(&at);
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &all);
        posix_spawnattr_setpgroup(&at, 0);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
        rc = posix_spawnp(&p->pid, argv[0], &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
    }
    for (size_t i = 0; i < argc; i++) free(argv[i]);
    free(argv);
    if (po[1] >= 0) close(po[1]);
    if (pe[1] >= 0) close(pe[1]);
    if (pi[0] >= 0) close(pi[0]);
    if (rc != 0) {
        /* Node: 'error' (not shown: the process is already forgotten), then
         * 'close' with code -2 and status "pid:undefined" */
        p->pid = 0;
        if (po[0] >= 0) close(po[0]);
        if (pe[0] >= 0) close(pe[0]);
        if (pi[1] >= 0) close(pi[1]);
        p->exited = true;
        crm_node_status(n, "blue", "dot", "pid:undefined");
        if (!s->spawn) { /* exec: the shell itself is missing */
            p->status = 127 << 8;
            sb_printf(&p->ebuf, "%s: not found\n", s->shell);
        }
        finish(s, p);
        return;
    }
    p->out = po[0];
    p->err = pe[0];
    p->in = pi[1]; /* kept open, as Node's stdin pipe */
    crm_set_nonblock(p->out);
    crm_set_nonblock(p->err);
    char t[32];
    snprintf(t, sizeof t, "pid:%d", (int)p->pid);
    crm_node_status(n, "blue", "dot", t);
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    p->wout = crm_watch_fd(n, p->out, POLLIN, on_output, p);
    p->werr = crm_watch_fd(n, p->err, POLLIN, on_output, p);
    if (p->pidfd >= 0) p->wpid = crm_watch_fd(n, p->pidfd, POLLIN, on_exit_fd, p);
    if (s->timer_ms > 0) p->timer = crm_timer_start(n, s->timer_ms, 0, on_timeout, p);
}

static int exec_create(crm_node *n, const json_t *cfg)
{
    exec_state *s = calloc(1, sizeof *s);
    const char *c = crm_cfg_str(cfg, "command", "");
    while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') c++;
    s->cmd = strdup(c);
    for (size_t l = strlen(s->cmd); l && strchr(" \t\n\r", s->cmd[l - 1]); l--) s->cmd[l - 1] = 0;
    json_t *ap = json_object_get(cfg, "addpay");
    if (!ap || json_is_true(ap)) s->addpay = strdup("payload");
    else if (json_is_string(ap) && *json_string_value(ap)) s->addpay = strdup(json_string_value(ap));
    const char *a = crm_cfg_str(cfg, "append", "");
    while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r') a++;
    s->append = strdup(a);
    for (size_t l = strlen(s->append); l && strchr(" \t\n\r", s->append[l - 1]); l--) s->append[l - 1] = 0;
    json_t *us = json_object_get(cfg, "useSpawn");
    s->spawn = (json_is_string(us) && !strcmp(json_string_value(us), "true")) || json_is_true(us);
    json_t *tv = json_object_get(cfg, "timer");
    s->timer_ms = tv && crm_truthy(tv) ? crm_to_number(tv) * 1000 : 0;
    if (s->timer_ms != s->timer_ms) s->timer_ms = 0;
    json_t *orc = json_object_get(cfg, "oldrc");
    s->oldrc = orc && crm_truthy(orc) && !(json_is_string(orc) && !strcmp(json_string_value(orc), "false"));
    s->max_buffer = crm_cfg_num(crm_node_settings(n), "execMaxBufferSize", 10000000);
    s->shell = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
    crm_node_set_data(n, s);
    return 0;
}

static void exec_close(crm_node *n)
{
    exec_state *s = crm_node_data(n);
    if (!s) return;
    /* SIGTERM as Node-RED, then SIGKILL for what is still there; all reaped */
    for (proc *p = s->procs; p; p = p->next) kill_proc(p, SIGTERM, true);
    double until = crm_now_ms() + CLOSE_GRACE_MS;
    for (proc *p = s->procs; p; p = p->next) {
        if (p->pid <= 0 || p->exited) continue;
        while (waitpid(p->pid, &p->status, WNOHANG) == 0) {
            double left = until - crm_now_ms();
            if (left <= 0) {
                kill(-p->pid, SIGKILL);
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &p->status, 0);
                break;
            }
            struct pollfd pf = {p->pidfd, POLLIN, 0};
            if (p->pidfd < 0 || poll(&pf, 1, (int)(left < 20 ? left + 1 : 20)) < 0) usleep(10000);
        }
        p->exited = true;
        kill(-p->pid, SIGKILL); /* what the child's shell left in its group */
    }
    while (s->procs) proc_free(s, s->procs);
    crm_node_status(n, NULL, NULL, NULL);
    free(s->cmd);
    free(s->append);
    free(s->addpay);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_exec = {
    .abi = CRM_ABI_VERSION,
    .type = "exec",
    .create = exec_create,
    .input = exec_input,
    .close = exec_close,
};
