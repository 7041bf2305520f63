/* flowtest.c: `carmine test FILE|DIR...` runs flow test cases
 * (../shared/FLOWTEST.md) on the engine through its embedding API alone
 * (runtime.h), the way the Node-RED recorder (../shared/tools/flowtest-record)
 * runs them on Node-RED.
 *
 * Each case gets a fresh runtime on a free port with its own userDir. Nodes of
 * type "helper" are capture sinks registered here; they record every message
 * with its arrival time. By default each case runs in a forked child so that
 * a crash or a hang of the engine fails that case only (the parent enforces a
 * time budget); --no-fork runs everything in-process, for debuggers. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "flowtest.h"
#include "plugins.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flowtest_match.h"
#include "runtime.h"

extern char **environ;

#define DEFAULT_SETTLE_MS 200
/* How long a busy loop may still take to settle after settle_ms. */
#define SETTLE_BUSY_MS 20000
#define HTTP_TIMEOUT_MS 10000L
#define SHOW 200

/* What one case came to. why holds one reason per line. */
typedef enum { FT_PASS, FT_FAIL, FT_SKIP } ft_status;
typedef struct {
    ft_status st;
    strbuf why;
} ft_result;

typedef struct {
    bool verbose;
    bool fork;
    const char *filter;
    json_t *known; /* "file: case" -> reason, from --expect-failures */
    int retries;   /* --retry: runs again a case that failed, for timing on busy machines */
    bool strict;   /* --strict: a skipped case (a node type the runtime lacks) is a failure */
    int n, passed, failed, skipped;
} ft_run;

static void fail(ft_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(ft_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->st = FT_FAIL;
    if (r->why.len) sb_putc(&r->why, '\n');
    sb_vprintf(&r->why, fmt, ap);
    va_end(ap);
}

static void sleep_ms(double ms)
{
    if (!(ms > 0)) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Capture: helper messages and error log entries -------------------------- */

typedef struct {
    char *node;
    json_t *msg;
    double at; /* crm_now_ms() on arrival */
} ft_rec;

typedef struct {
    char *node; /* NULL for runtime-level entries */
    char *text;
} ft_err;

/* The case running now. Loops are threads, so every access takes the lock;
 * one case runs at a time, so one capture serves them all. */
static struct {
    pthread_mutex_t lock;
    ft_rec *recs;
    size_t nrecs, caprecs;
    ft_err *errs;
    size_t nerrs, caperrs;
    bool verbose;
} cap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *grow_array(void *p, size_t *cap_, size_t n, size_t size)
{
    if (n < *cap_) return p;
    size_t c = *cap_ ? *cap_ * 2 : 16;
    void *q = realloc(p, c * size);
    if (!q) abort();
    *cap_ = c;
    return q;
}

static void capture_reset(void)
{
    pthread_mutex_lock(&cap.lock);
    for (size_t i = 0; i < cap.nrecs; i++) {
        free(cap.recs[i].node);
        json_decref(cap.recs[i].msg);
    }
    for (size_t i = 0; i < cap.nerrs; i++) {
        free(cap.errs[i].node);
        free(cap.errs[i].text);
    }
    cap.nrecs = cap.nerrs = 0;
    pthread_mutex_unlock(&cap.lock);
}

static void helper_input(crm_node *n, json_t *msg)
{
    double at = crm_now_ms();
    /* a copy, so that a node keeping a reference cannot change what arrived */
    json_t *copy = crm_deep_copy(msg);
    crm_node_done(n, msg);
    json_decref(msg);
    pthread_mutex_lock(&cap.lock);
    cap.recs = grow_array(cap.recs, &cap.caprecs, cap.nrecs, sizeof *cap.recs);
    cap.recs[cap.nrecs++] = (ft_rec){strdup(crm_node_id(n)), copy, at};
    pthread_mutex_unlock(&cap.lock);
}

static const crm_node_type helper_type = {
    .abi = CRM_ABI_VERSION,
    .type = "helper",
    .input = helper_input,
};

static const char *level_name(crm_log_level lvl)
{
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    return lvl <= CRM_LOG_ERROR ? names[lvl] : "?";
}

static void log_hook(void *ctx, crm_log_level lvl, const char *node_id, const char *node_type, const char *text)
{
    (void)ctx;
    if (cap.verbose)
        fprintf(stderr, "    # log %s %s%s%s%s: %s\n", level_name(lvl), node_type ? "[" : "", node_type ? node_type : "",
                node_type ? ":" : "", node_id ? node_id : "runtime", text ? text : "");
    if (lvl < CRM_LOG_ERROR) return;
    pthread_mutex_lock(&cap.lock);
    cap.errs = grow_array(cap.errs, &cap.caperrs, cap.nerrs, sizeof *cap.errs);
    cap.errs[cap.nerrs++] = (ft_err){node_id ? strdup(node_id) : NULL, strdup(text ? text : "")};
    pthread_mutex_unlock(&cap.lock);
}

/* Loading ------------------------------------------------------------------- */

static bool is_token_char(char c)
{
    return c && !strchr(" \t\n'\"`:,;()[]{}", c);
}

/* Whether word occurs in text as a whole token (type names may hold spaces). */
static bool has_token(const char *text, const char *word)
{
    size_t wl = strlen(word);
    if (!wl) return false;
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        bool start = p == text || !is_token_char(p[-1]);
        if (start && !is_token_char(p[wl])) return true;
    }
    return false;
}

/* The flow's node types that the problems text names: the missing ones.
 * The loader words them "unknown node type 'X' used by ..."; other wordings
 * fall back to looking for the flow's type names in the text. */
static void missing_types(const json_t *flow, const char *problems, strbuf *out, bool *helper_missing)
{
    static const char intro[] = "unknown node type '";
    for (const char *p = strstr(problems, intro); p; p = strstr(p, intro)) {
        p += sizeof intro - 1;
        const char *q = strchr(p, '\'');
        if (!q) break;
        if ((size_t)(q - p) == 6 && !strncmp(p, "helper", 6)) *helper_missing = true;
        sb_printf(out, "%s%.*s", out->len ? ", " : "", (int)(q - p), p);
    }
    if (out->len) return;

    json_t *seen = json_object();
    size_t i;
    json_t *node;
    json_array_foreach(flow, i, node) {
        const char *t = json_string_value(json_object_get(node, "type"));
        if (!t || json_object_get(seen, t) || !has_token(problems, t)) continue;
        json_object_set_new(seen, t, json_true());
        if (!strcmp(t, "helper")) *helper_missing = true;
        sb_printf(out, "%s%s", out->len ? ", " : "", t);
    }
    json_decref(seen);
}

static bool flow_has_helper(const json_t *flow, const char *id)
{
    size_t i;
    json_t *node;
    json_array_foreach(flow, i, node) {
        const char *nid = json_string_value(json_object_get(node, "id"));
        const char *t = json_string_value(json_object_get(node, "type"));
        if (nid && t && !strcmp(nid, id) && !strcmp(t, "helper")) return true;
    }
    return false;
}

/* The process environment with the case's entries over it, as the recorder
 * sets them in process.env for the case. */
static json_t *case_env(const json_t *env)
{
    json_t *o = json_object();
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char *name = strndup(*e, (size_t)(eq - *e));
        json_object_set_new(o, name, ftm_text(eq + 1, strlen(eq + 1)));
        free(name);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v) {
        char *s = crm_to_string(v);
        json_object_set_new(o, k, json_string(s));
        free(s);
    }
    return o;
}

/* HTTP steps ---------------------------------------------------------------- */

typedef struct {
    strbuf body;
    json_t *headers; /* lower-case name -> array of values */
} http_answer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sb_putn(&((http_answer *)ud)->body, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_answer *a = ud;
    size_t len = size * n;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        json_object_clear(a->headers); /* a new response (after a 100 Continue) */
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon) return len;
    char *name = strndup(p, (size_t)(colon - p));
    for (char *c = name; *c; c++) *c = (char)tolower((unsigned char)*c);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    json_t *arr = json_object_get(a->headers, name);
    if (!arr) {
        arr = json_array();
        json_object_set_new(a->headers, name, arr);
    }
    json_array_append_new(arr, ftm_text(v, (size_t)(end - v)));
    free(name);
    return len;
}

static bool has_header(const json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
        if (!strcasecmp(k, name)) return true;
    return false;
}

static struct curl_slist *request_headers(const json_t *req, bool json_body)
{
    struct curl_slist *l = NULL;
    const json_t *headers = json_object_get(req, "headers");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v) {
        char *s = crm_to_string(v);
        strbuf line = SB_INIT;
        /* "Name;" is curl's way to send a header with an empty value */
        if (*s) sb_printf(&line, "%s: %s", k, s);
        else sb_printf(&line, "%s;", k);
        l = curl_slist_append(l, line.data);
        sb_free(&line);
        free(s);
    }
    if (!has_header(headers, "content-type"))
        /* Node's client sends no type for a string body; curl would say form data */
        l = curl_slist_append(l, json_body ? "Content-Type: application/json" : "Content-Type:");
    /* what Node's client (agent: false) sends: no Accept, Connection: close */
    if (!has_header(headers, "accept")) l = curl_slist_append(l, "Accept:");
    if (!has_header(headers, "connection")) l = curl_slist_append(l, "Connection: close");
    l = curl_slist_append(l, "Expect:");
    return l;
}

static void check_answer(const json_t *exp, long status, http_answer *a, double t, const char *label, ft_result *res)
{
    strbuf why = SB_INIT;
    json_t *st = json_object_get(exp, "status");
    if (st && crm_num_value(st) != (double)status)
        fail(res, "%s: status: expected %.0f, got %ld", label, crm_num_value(st), status);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(exp, "headers"), k, v) {
        char *lk = strdup(k);
        for (char *c = lk; *c; c++) *c = (char)tolower((unsigned char)*c);
        json_t *vals = json_object_get(a->headers, lk), *act = NULL;
        if (vals) {
            strbuf j = SB_INIT;
            for (size_t i = 0; i < json_array_size(vals); i++)
                sb_printf(&j, "%s%s", i ? ", " : "", json_string_value(json_array_get(vals, i)));
            act = json_stringn_nocheck(j.data ? j.data : "", j.len);
            sb_free(&j);
        }
        strbuf path = SB_INIT;
        sb_printf(&path, "header %s", k);
        if (!ftm_match(v, act, path.data, &why)) fail(res, "%s: %s", label, why.data);
        sb_free(&why);
        sb_free(&path);
        json_decref(act);
        free(lk);
    }
    json_t *text = ftm_text(a->body.data ? a->body.data : "", a->body.len);
    if (json_object_get(exp, "body") && !ftm_match(json_object_get(exp, "body"), text, "body", &why))
        fail(res, "%s: %s", label, why.data);
    sb_free(&why);
    if (json_object_get(exp, "json")) {
        char err[160];
        json_t *parsed = crm_parse(json_string_value(text), json_string_length(text), err, sizeof err);
        if (!parsed) {
            ftm_show(&why, text, SHOW);
            fail(res, "%s: body: not JSON: %s", label, why.data);
        } else if (!ftm_match(json_object_get(exp, "json"), parsed, "json", &why)) {
            fail(res, "%s: %s", label, why.data);
        }
        sb_free(&why);
        json_decref(parsed);
    }
    json_decref(text);
    if (!ftm_check_time(json_object_get(exp, "$t_ms"), t, "response", &why)) fail(res, "%s: %s", label, why.data);
    sb_free(&why);
}

static void http_step(const json_t *req, const json_t *exp, int port, double t0, const char *label, ft_result *res)
{
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *path = json_string_value(json_object_get(req, "path"));
    const json_t *body = json_object_get(req, "body");
    char *upper = strdup(method ? method : "GET");
    for (char *c = upper; *c; c++) *c = (char)toupper((unsigned char)*c);
    char *payload = NULL;
    size_t plen = 0;
    if (json_is_string(body)) {
        plen = json_string_length(body);
        payload = malloc(plen + 1);
        memcpy(payload, json_string_value(body), plen + 1);
    } else if (body) {
        payload = crm_stringify(body, 0);
        plen = strlen(payload);
    } else if (!strcmp(upper, "POST") || !strcmp(upper, "PUT") || !strcmp(upper, "PATCH")) {
        payload = strdup(""); /* Node's client sends an empty body for these */
    }
    strbuf url = SB_INIT;
    sb_printf(&url, "http://127.0.0.1:%d%s%s", port, path && *path == '/' ? "" : "/", path ? path : "");
    http_answer a = {SB_INIT, json_object()};
    struct curl_slist *hl = request_headers(req, body && !json_is_string(body));
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    if (!strcmp(upper, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (payload) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)plen);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, upper);
    }
    CURLcode rc = curl_easy_perform(h);
    double t = crm_now_ms() - t0;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        fail(res, "%s: no HTTP response: %s", label, curl_easy_strerror(rc));
    else if (exp)
        check_answer(exp, status, &a, t, label, res);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    json_decref(a.headers);
    sb_free(&a.body);
    sb_free(&url);
    free(payload);
    free(upper);
}

/* Running the steps --------------------------------------------------------- */

static void send_step(crm_runtime *rt, const json_t *send, int i, ft_result *res)
{
    const char *node = json_string_value(json_object_get(send, "node"));
    json_t *msg = json_object_get(send, "msg") ? ftm_revive(json_object_get(send, "msg")) : json_object();
    if (!node || !json_is_object(msg)) {
        fail(res, "step %d: send needs {\"node\": ID, \"msg\": {...}}", i);
        json_decref(msg);
        return;
    }
    if (!json_object_get(msg, "_msgid")) { /* node.receive() gives one, as a wire's message has */
        char id[17];
        json_object_set_new(msg, "_msgid", json_string(crm_make_id(id)));
    }
    if (crm_runtime_send(rt, node, msg) != 0) fail(res, "step %d: no active node %s to send to", i, node);
}

static void run_steps(crm_runtime *rt, const json_t *steps, double t0, ft_result *res)
{
    int port = crm_runtime_http_port(rt);
    size_t i;
    json_t *raw;
    json_array_foreach(steps, i, raw) {
        char port_text[16];
        snprintf(port_text, sizeof port_text, "%d", port);
        json_t *st = ftm_subst(raw, "${FLOWTEST_PORT}", port_text);
        json_t *send = json_object_get(st, "send"), *wait = json_object_get(st, "wait"),
               *http = json_object_get(st, "http");
        if (send) {
            send_step(rt, send, (int)i, res);
        } else if (wait) {
            sleep_ms(crm_num_value(wait));
        } else if (json_is_object(http)) {
            strbuf label = SB_INIT;
            const char *m = json_string_value(json_object_get(http, "method"));
            const char *path = json_string_value(json_object_get(http, "path"));
            sb_printf(&label, "step %zu (%s %s)", i, m ? m : "GET", path ? path : "/");
            if (!port) fail(res, "%s: the runtime has no HTTP port", label.data);
            else http_step(http, json_object_get(st, "expect"), port, t0, label.data, res);
            sb_free(&label);
        } else {
            strbuf s = SB_INIT;
            ftm_show(&s, raw, SHOW);
            fail(res, "step %zu: unknown step %s", i, s.data);
            sb_free(&s);
        }
        json_decref(st);
    }
}

/* Checking ------------------------------------------------------------------ */

static void check_helper(const char *id, const json_t *want, double t0, ft_result *res)
{
    size_t nwant = json_array_size(want), got = 0;
    strbuf why = SB_INIT;
    for (size_t r = 0, i = 0; r < cap.nrecs; r++) {
        if (strcmp(cap.recs[r].node, id)) continue;
        got++;
        double t = cap.recs[r].at - t0;
        if (t < 0) t = 0;
        if (i >= nwant) {
            ftm_show(&why, cap.recs[r].msg, SHOW);
            fail(res, "helper %s message %zu: unexpected %s", id, i, why.data);
            sb_free(&why);
            break;
        }
        if (!ftm_match_msg(json_array_get(want, i), cap.recs[r].msg, t, &why)) {
            fail(res, "helper %s message %zu: %s", id, i, why.data);
            strbuf actual = SB_INIT;
            ftm_show(&actual, cap.recs[r].msg, SHOW);
            sb_printf(&res->why, "\n  actual: %s", actual.data);
            sb_free(&actual);
        }
        sb_free(&why);
        i++;
    }
    if (got < nwant) {
        ftm_show(&why, json_array_get(want, got), SHOW);
        fail(res, "helper %s message %zu: missing (expected %s; %zu of %zu arrived)", id, got, why.data, got, nwant);
        sb_free(&why);
    }
}

static void check_errors(const json_t *errors, ft_result *res)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        const char *node = json_string_value(json_object_get(e, "node"));
        const char *re = json_string_value(json_object_get(e, "match"));
        if (!node || !re) {
            fail(res, "errors[%zu] needs {\"node\": ID, \"match\": REGEX}", i);
            continue;
        }
        bool found = false;
        json_t *logged = json_array();
        for (size_t k = 0; k < cap.nerrs && !found; k++) {
            if (!cap.errs[k].node) continue;
            strbuf s = SB_INIT;
            sb_printf(&s, "%s: %s", cap.errs[k].node, cap.errs[k].text);
            json_array_append_new(logged, ftm_text(s.data, s.len));
            sb_free(&s);
            if (strcmp(cap.errs[k].node, node)) continue;
            char *err = NULL;
            int m = ftm_regex_test(re, cap.errs[k].text, strlen(cap.errs[k].text), &err);
            if (m < 0) {
                fail(res, "errors[%zu]: %s", i, err ? err : "bad regular expression");
                free(err);
                found = true; /* reported already */
            }
            found = found || m == 1;
        }
        if (!found) {
            strbuf s = SB_INIT;
            ftm_show(&s, logged, SHOW);
            fail(res, "error of %s matching /%s/ not logged (logged: %s)", node, re, s.data);
            sb_free(&s);
        }
        json_decref(logged);
    }
}

static void check_case(const json_t *c, double t0, ft_result *res)
{
    const json_t *flow = json_object_get(c, "flow");
    const char *id;
    json_t *want;
    pthread_mutex_lock(&cap.lock);
    json_object_foreach(json_object_get(c, "expect"), id, want) {
        if (!flow_has_helper(flow, id)) fail(res, "helper %s: not in the flow", id);
        else if (!json_is_array(want)) fail(res, "expect.%s must be an array of messages", id);
        else check_helper(id, want, t0, res);
    }
    check_errors(json_object_get(c, "errors"), res);
    pthread_mutex_unlock(&cap.lock);
}

/* One case ------------------------------------------------------------------ */

/* When >= 0 (in a forked child), the result is written here as soon as it is
 * known, before the runtime stops: a hang or crash while stopping still
 * reports what the case did. */
static int result_fd = -1;

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void report_early(const ft_result *res)
{
    if (result_fd < 0) return;
    char st = res->st == FT_PASS ? 'P' : res->st == FT_SKIP ? 'S' : 'F';
    write_all(result_fd, &st, 1);
    write_all(result_fd, res->why.data ? res->why.data : "", res->why.len + 1); /* with its NUL */
}

static void runtime_errors(strbuf *out)
{
    pthread_mutex_lock(&cap.lock);
    for (size_t k = 0; k < cap.nerrs; k++)
        sb_printf(out, "\n  %s: %s", cap.errs[k].node ? cap.errs[k].node : "runtime", cap.errs[k].text);
    pthread_mutex_unlock(&cap.lock);
}

/* Appends text's lines to out, each on a new line indented by two. */
static void indent_lines(strbuf *out, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        if (n) {
            sb_puts(out, "\n  ");
            sb_putn(out, text, n);
        }
        text = nl ? nl + 1 : NULL;
    }
}

/* Loads the case; false (with res set) when it cannot start. */
static bool load_case(crm_runtime *rt, const json_t *c, ft_result *res)
{
    const json_t *flow = json_object_get(c, "flow");
    strbuf problems = SB_INIT;
    int rc = crm_runtime_load(rt, flow, CRM_LOAD_IMPLICIT_TAB, &problems);
    const char *text = problems.data ? problems.data : "";
    if (rc == 2) {
        strbuf types = SB_INIT;
        bool helper_missing = false;
        missing_types(flow, text, &types, &helper_missing);
        if (helper_missing) {
            fail(res, "runner bug: the helper type is not registered: %s", text);
        } else {
            res->st = FT_SKIP;
            sb_printf(&res->why, "needs node type %s", types.len ? types.data : text);
            for (char *p = res->why.data; *p; p++)
                if (*p == '\n') *p = ' ';
        }
        sb_free(&types);
    } else if (rc != 0) {
        fail(res, "flow refused:");
        indent_lines(&res->why, text);
    }
    sb_free(&problems);
    if (rc != 0) return false;
    const json_t *ctx = json_object_get(c, "context");
    static const char *const scopes[] = {"global", "flow"};
    for (int s = 0; s < 2; s++) {
        json_t *v = json_object_get(ctx, scopes[s]);
        if (!v) continue;
        json_t *revived = ftm_revive(v);
        if (crm_runtime_context_init(rt, scopes[s], NULL, revived) != 0)
            fail(res, "context: the initial %s context could not be set", scopes[s]);
        json_decref(revived);
    }
    return res->st != FT_FAIL;
}

static json_t *case_settings(const char *userdir)
{
    json_t *s = json_object();
    json_object_set_new(s, "port", json_real(0));
    json_object_set_new(s, "host", json_string("127.0.0.1"));
    json_object_set_new(s, "userDir", json_string(userdir));
    return s;
}

static void run_case(const json_t *as_written, const char *userdir, bool verbose, ft_result *res)
{
    /* files a case writes go under its own userDir: suites running side by side
     * (or the same suite in two builds) never share a path */
    json_t *c = ftm_subst(as_written, "${FLOWTEST_TMP}", userdir);
    capture_reset();
    cap.verbose = verbose;
    json_t *settings = case_settings(userdir);
    json_t *env = json_object_get(c, "env") ? case_env(json_object_get(c, "env")) : NULL;
    crm_runtime *rt = crm_runtime_new(settings);
    if (!rt) {
        fail(res, "crm_runtime_new failed");
        report_early(res);
        json_decref(settings);
        json_decref(env);
        json_decref(c);
        return;
    }
    crm_runtime_set_log_hook(rt, log_hook, NULL);
    if (env) crm_runtime_set_env(rt, env);
    bool started = false;
    if (load_case(rt, c, res)) {
        if (crm_runtime_start(rt) != 0) {
            fail(res, "crm_runtime_start failed");
            runtime_errors(&res->why);
        } else {
            started = true;
            double t0 = crm_now_ms();
            run_steps(rt, json_object_get(c, "steps"), t0, res);
            json_t *settle = json_object_get(c, "settle_ms");
            sleep_ms(settle ? crm_num_value(settle) : DEFAULT_SETTLE_MS);
            /* a loop still working through its queue (a slow machine, a
             * sanitizer build) settles first: what it is delivering was
             * sent within the settle time */
            crm_runtime_wait_idle(rt, SETTLE_BUSY_MS);
            check_case(c, t0, res);
        }
    }
    report_early(res);
    if (started) crm_runtime_stop(rt);
    crm_runtime_free(rt);
    json_decref(settings);
    json_decref(env);
    json_decref(c);
    capture_reset();
}

/* Isolation ----------------------------------------------------------------- */

/* How long a case may take before it counts as hung. */
static double case_budget_ms(const json_t *c)
{
    json_t *settle = json_object_get(c, "settle_ms");
    double ms = 30000 + SETTLE_BUSY_MS + (settle ? crm_num_value(settle) : DEFAULT_SETTLE_MS);
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(c, "steps"), i, st) {
        if (json_object_get(st, "wait")) ms += crm_num_value(json_object_get(st, "wait"));
        if (json_object_get(st, "http")) ms += HTTP_TIMEOUT_MS + 1000;
    }
    return ms;
}

/* Reads the child's report until EOF or the deadline. Returns false on timeout. */
static bool read_report(int fd, strbuf *out, double deadline)
{
    char buf[4096];
    for (;;) {
        double left = deadline - crm_now_ms();
        if (left <= 0) return false;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return true;
        sb_putn(out, buf, (size_t)n);
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define CRM_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRM_LSAN 1
#endif
#endif
#ifdef CRM_LSAN
#include <sanitizer/lsan_interface.h>
static int leak_check(void) { return __lsan_do_recoverable_leak_check(); }
static void lsan_disable(void) { __lsan_disable(); }
static void lsan_enable(void) { __lsan_enable(); }
#else
static int leak_check(void) { return 0; }
static void lsan_disable(void) {}
static void lsan_enable(void) {}
#endif
#define LEAKED_EXIT 23 /* a forked case that leaked */

static void run_case_forked(const json_t *c, const char *userdir, bool verbose, ft_result *res)
{
    int fds[2];
    if (pipe(fds) != 0) {
        fail(res, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fail(res, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        result_fd = fds[1];
        ft_result mine = {FT_PASS, SB_INIT};
        run_case(c, userdir, verbose, &mine);
        /* _exit skips LeakSanitizer's check at exit: run it here, so an
         * ASan build fails a case whose nodes leaked (its report is above),
         * function nodes' cases too (sanitizer_options.c keeps the scan
         * from faulting once JavaScriptCore is loaded). */
        if (leak_check()) _exit(LEAKED_EXIT);
        write_all(fds[1], "Z", 1); /* stopped and freed cleanly */
        _exit(0);
    }
    close(fds[1]);
    strbuf rep = SB_INIT;
    bool in_time = read_report(fds[0], &rep, crm_now_ms() + case_budget_ms(c));
    close(fds[0]);
    if (!in_time) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    size_t textlen = rep.len > 1 ? strnlen(rep.data + 1, rep.len - 1) : 0;
    bool reported = rep.len > 1 && textlen < rep.len - 1;
    bool clean = reported && rep.len == textlen + 3 && rep.data[rep.len - 1] == 'Z';
    if (reported) {
        res->st = rep.data[0] == 'P' ? FT_PASS : rep.data[0] == 'S' ? FT_SKIP : FT_FAIL;
        sb_putn(&res->why, rep.data + 1, textlen);
    }
    const char *when = reported ? " while stopping the runtime" : "";
    if (!in_time)
        fail(res, "timed out%s (no end after %.0f s): the runtime hung", when, case_budget_ms(c) / 1000);
    else if (WIFSIGNALED(status))
        fail(res, "crashed%s: %s", when, strsignal(WTERMSIG(status)));
    else if (!clean && WIFEXITED(status) && WEXITSTATUS(status) == LEAKED_EXIT)
        fail(res, "leaked memory: LeakSanitizer's report is above");
    else if (!clean)
        fail(res, "the case's process ended unexpectedly%s (exit status %d)", when, WEXITSTATUS(status));
    sb_free(&rep);
}

/* Files and output ------------------------------------------------------------ */

static void rm_tree(const char *dir);

static char *make_userdir(void)
{
    const char *tmp = getenv("TMPDIR");
    strbuf sb = SB_INIT;
    sb_printf(&sb, "%s/carmine-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *d = sb_take(&sb);
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void print_reasons(const char *why)
{
    const char *p = why;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        printf("    %.*s\n", (int)n, p);
        p = nl ? nl + 1 : NULL;
    }
}

/* The reason a case is expected to fail ("file.json: case name  # reason"
 * lines of --expect-failures), or NULL. */
static const char *known_failure(const ft_run *run, const char *file, const char *name)
{
    char key[1024];
    snprintf(key, sizeof key, "%s: %s", file, name);
    return json_string_value(json_object_get(run->known, key));
}

static void report(ft_run *run, const char *file, const char *name, const ft_result *res)
{
    run->n++;
    const char *known = known_failure(run, file, name);
    ft_status st = res->st == FT_SKIP && run->strict ? FT_FAIL : res->st;
    if (known && st == FT_FAIL) {
        run->skipped++;
        printf("ok %d - %s: %s # TODO known failure: %s\n", run->n, file, name, known);
        print_reasons(res->why.data);
    } else if (res->st == FT_PASS) {
        if (known) printf("# %s: %s is listed as a known failure but passes now\n", file, name);
        run->passed++;
        printf("ok %d - %s: %s\n", run->n, file, name);
    } else if (st == FT_SKIP) {
        run->skipped++;
        printf("ok %d - %s: %s # skip %s\n", run->n, file, name, res->why.data ? res->why.data : "");
    } else {
        run->failed++;
        printf("not ok %d - %s: %s\n", run->n, file, name);
        print_reasons(res->why.data);
    }
    fflush(stdout);
}

static void run_one(ft_run *run, const char *file, const json_t *c, int idx)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    char fallback[32];
    if (!name) {
        snprintf(fallback, sizeof fallback, "case %d", idx);
        name = fallback;
    }
    if (run->filter && ftm_regex_test(run->filter, name, strlen(name), NULL) != 1) return;
    ft_result res = {FT_PASS, SB_INIT};
    json_t *skip = json_object_get(c, "skip");
    if (skip) {
        res.st = FT_SKIP;
        char *s = crm_to_string(skip);
        sb_puts(&res.why, s);
        free(s);
    } else if (!json_is_object(c) || !json_is_array(json_object_get(c, "flow"))) {
        fail(&res, "a case needs a name and a flow array");
    } else {
        for (int attempt = 0; attempt <= run->retries; attempt++) {
            if (attempt) {
                printf("# %s: %s failed, running it again (retry %d)\n", file, name, attempt);
                print_reasons(res.why.data);
                sb_free(&res.why);
                res = (ft_result){FT_PASS, SB_INIT};
            }
            char *userdir = make_userdir();
            if (!userdir) fail(&res, "cannot create a temporary userDir: %s", strerror(errno));
            else if (run->fork) run_case_forked(c, userdir, run->verbose, &res);
            else run_case(c, userdir, run->verbose, &res);
            if (userdir) rm_tree(userdir);
            free(userdir);
            if (res.st != FT_FAIL) break;
        }
    }
    report(run, file, name, &res);
    sb_free(&res.why);
}

static json_t *read_json_file(const char *path, strbuf *err)
{
    char msg[512];
    json_t *v = crm_parse_file(path, msg, sizeof msg);
    if (!v) sb_puts(err, msg);
    return v;
}

static void run_file(ft_run *run, const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    strbuf err = SB_INIT;
    /* the harness's copy of the file is not the runtime's memory: a forked
     * case's leak check leaves it out */
    lsan_disable();
    json_t *doc = read_json_file(path, &err);
    lsan_enable();
    json_t *cases = json_object_get(doc, "cases");
    if (!json_is_array(cases)) {
        ft_result res = {FT_FAIL, SB_INIT};
        fail(&res, "%s", err.len ? err.data : "not a flow test file: no \"cases\" array");
        report(run, base, "(file)", &res);
        sb_free(&res.why);
    } else {
        int p = run->passed, f = run->failed, s = run->skipped, n = run->n;
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) run_one(run, base, c, (int)i);
        if (run->n > n) /* not for a file whose cases --filter left out */
            printf("# %s: %d passed, %d failed, %d skipped\n", base, run->passed - p, run->failed - f, run->skipped - s);
    }
    sb_free(&err);
    json_decref(doc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(ft_run *run, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        ft_result res = {FT_FAIL, SB_INIT};
        fail(&res, "cannot read the directory: %s", strerror(errno));
        report(run, dir, "(directory)", &res);
        sb_free(&res.why);
        return;
    }
    char **names = NULL;
    size_t n = 0, capn = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".json") || e->d_name[0] == '.') continue;
        names = grow_array(names, &capn, n, sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        strbuf p = SB_INIT;
        sb_printf(&p, "%s/%s", dir, names[i]);
        run_file(run, p.data);
        sb_free(&p);
        free(names[i]);
    }
    free(names);
}

static int load_known(ft_run *run, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "carmine test: --expect-failures %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!run->known) run->known = json_object();
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *hash = strstr(line, "  #");
        const char *why = "listed";
        if (hash) {
            *hash = 0;
            why = hash + 3;
            while (*why == ' ') why++;
        }
        size_t n = strlen(line);
        while (n && line[n - 1] == ' ') line[--n] = 0;
        json_object_set_new(run->known, line, json_string(why));
    }
    fclose(f);
    return 0;
}

static void usage(FILE *to)
{
    fputs("usage: carmine test [--verbose] [--filter REGEX] [--no-fork] [--strict] FILE|DIR...\n"
          "\n"
          "Runs flow test cases (format: docs/flowtest.md). A DIR runs every *.json in it,\n"
          "in name order. Each case runs on a fresh runtime (free port, temporary userDir).\n"
          "Prints one line per case (ok / not ok, with the reasons / ok # skip), a summary per\n"
          "file, and a last line \"N passed, N failed, N skipped\". Exits 1 when a case failed.\n"
          "Cases whose flows use node types the runtime lacks are skipped (failed with --strict).\n"
          "\n"
          "  --verbose       print every log entry of the runtime (to stderr)\n"
          "  --filter REGEX  run only the cases whose name matches (ECMAScript regex)\n"
          "  --no-fork       run cases in this process (for debuggers); by default each case\n"
          "                  runs in a child process, so a crash or hang fails that case only\n"
          "  --expect-failures FILE\n"
          "                  cases listed in FILE (lines \"file.json: case name  # reason\") that\n"
          "                  fail are reported as known failures (ok # TODO), not failures\n"
          "  --strict        a case skipped because its flow uses a node type the runtime\n"
          "                  lacks is a failure (CI: nothing goes untested unnoticed)\n"
          "  --plugins DIR   load node types from the shared libraries in DIR first\n"
          "  --retry N       run a failed case again, up to N times (timing-sensitive cases on\n"
          "                  a busy machine); each retry is reported\n",
          to);
}

int crm_flowtest_main(int argc, char **argv)
{
    ft_run run = {.fork = true};
    char **paths = calloc((size_t)argc, sizeof *paths);
    int npaths = 0;
    bool only_paths = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_paths || a[0] != '-' || !a[1]) {
            paths[npaths++] = argv[i];
        } else if (!strcmp(a, "--")) {
            only_paths = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(paths);
            return 0;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            run.verbose = true;
        } else if (!strcmp(a, "--no-fork")) {
            run.fork = false;
        } else if (!strcmp(a, "--strict")) {
            run.strict = true;
        } else if (!strcmp(a, "--retry") && i + 1 < argc) {
            run.retries = atoi(argv[++i]);
        } else if (!strcmp(a, "--expect-failures") && i + 1 < argc) {
            if (load_known(&run, argv[++i]) < 0) {
                free(paths);
                return 2;
            }
        } else if (!strcmp(a, "--plugins") && i + 1 < argc) {
            strbuf problems = SB_INIT;
            int rc = crm_plugins_load_dir(argv[++i], &problems);
            if (problems.len) fprintf(stderr, "carmine test: plugins in %s:\n%s", argv[i], problems.data);
            sb_free(&problems);
            if (rc < 0) {
                free(paths);
                return 2;
            }
        } else if (!strcmp(a, "--filter") && i + 1 < argc) {
            run.filter = argv[++i];
            char *err = NULL;
            if (ftm_regex_test(run.filter, "", 0, &err) < 0) {
                fprintf(stderr, "carmine test: --filter: %s\n", err ? err : "bad regular expression");
                free(err);
                free(paths);
                return 2;
            }
        } else {
            fprintf(stderr, "carmine test: unknown option %s\n", a);
            usage(stderr);
            free(paths);
            return 2;
        }
    }
    if (!npaths) {
        usage(stderr);
        free(paths);
        return 2;
    }
    if (crm_register_type(&helper_type) != 0) {
        fprintf(stderr, "carmine test: cannot register the helper node type\n");
        free(paths);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) run_dir(&run, paths[i]);
        else run_file(&run, paths[i]);
    }
    printf("%d passed, %d failed, %d skipped\n", run.passed, run.failed, run.skipped);
    json_decref(run.known);
    curl_global_cleanup();
    free(paths);
    return run.failed ? 1 : 0;
}
