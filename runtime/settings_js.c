/* settings_js.c: a Node-RED settings.js evaluated in the JavaScript sandbox
 * (in a child process), the keys Carmine cannot honour, and the files of a
 * Node-RED user's directory (settings_js.h). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "js/js.h"
#include "runtime.h"
#include "settings_js.h"
#include "value.h"

extern char **environ;

/* The top-level settings Carmine reads (README "Settings", docs/editor.md,
 * docs/ha.md, the nodes' own). Sorted. */
static const char *const honoured[] = {
    "adminAuth", "apiMaxLength", "contextStorage", "credentialSecret", "debugMaxLength", "diagnostics",
    "disableEditor", "editorDir", "editorTheme", "execMaxBufferSize", "exportGlobalContextKeys",
    "fileWorkingDirectory", "flowFile", "flowFilePretty", "functionGlobalContext", "functionTimeout",
    "globalFunctionTimeout", "host", "httpAdminRoot", "httpBodyTimeout", "httpHeadersTimeout",
    "httpMaxWaitingConnections", "httpNodeAuth", "httpNodeCors", "httpNodeRoot", "httpPolling",
    "httpRequestMaxBody", "httpRequestTimeout", "httpRoot", "httpThreads", "https", "jsonataTimeout", "lease",
    "logLevel", "logging", "maxRequestsInFlight", "metrics", "mqttReconnectTime", "nodeCloseTimeout",
    "nodeDefaults", "nodeInputQueueMaxLength", "nodeMessageBufferMaxLength", "paletteCategories", "pluginsDir",
    "port", "reusePort", "runtimeState", "socketReconnectTime", "supervisor", "tlsConfigDisableLocalFiles",
    "uiHost", "uiPort", "userDir", "webSocketKeepAliveTime",
};

static int cmp_key(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void crm_settings_unhonoured(const json_t *settings, strbuf *out)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)settings, k, v) {
        if (bsearch(&k, honoured, sizeof honoured / sizeof honoured[0], sizeof honoured[0], cmp_key)) continue;
        if (json_is_null(v) || json_is_false(v) || (json_is_object(v) && !json_object_size(v)) ||
            (json_is_array(v) && !json_array_size(v)))
            continue; /* asks nothing */
        sb_printf(out, "%s%s", out->len ? ", " : "", k);
    }
}

/* The child's side -------------------------------------------------------------------------- */

/* The module system around the file, and the walk that turns module.exports
 * into JSON (functions and the like named instead). Called with the
 * natives, the file's text, its path, the environment, the working
 * directory, the host name and the home directory. */
static const char wrapper_js[] =
    "(function (N, src, filename, env, cwd, hostname, homedir) {\n"
    "  'use strict';\n"
    "  var left = [], refused = [], fileOf = new WeakMap();\n"
    "  function norm(p) {\n"
    "    var abs = p.charAt(0) === '/', out = [];\n"
    "    p.split('/').forEach(function (s) {\n"
    "      if (!s || s === '.') return;\n"
    "      if (s === '..') { if (out.length && out[out.length - 1] !== '..') out.pop(); else if (!abs) out.push('..'); }\n"
    "      else out.push(s);\n"
    "    });\n"
    "    return (abs ? '/' : '') + out.join('/') || (abs ? '/' : '.');\n"
    "  }\n"
    "  var path = {\n"
    "    sep: '/', delimiter: ':', normalize: function (p) { return norm(String(p)); },\n"
    "    isAbsolute: function (p) { return String(p).charAt(0) === '/'; },\n"
    "    join: function () { return norm([].slice.call(arguments).map(String).filter(function (s) { return s; }).join('/')); },\n"
    "    resolve: function () {\n"
    "      var r = '';\n"
    "      for (var i = arguments.length - 1; i >= 0 && r.charAt(0) !== '/'; i--) if (arguments[i]) r = String(arguments[i]) + (r ? '/' + r : '');\n"
    "      return norm(r.charAt(0) === '/' ? r : cwd + '/' + r);\n"
    "    },\n"
    "    dirname: function (p) { p = String(p); var i = p.replace(/\\/+$/, '').lastIndexOf('/'); return i < 0 ? '.' : i === 0 ? '/' : p.slice(0, i); },\n"
    "    basename: function (p, ext) { var b = String(p).replace(/\\/+$/, ''); b = b.slice(b.lastIndexOf('/') + 1);\n"
    "      return ext && b.slice(-ext.length) === ext && b !== ext ? b.slice(0, -ext.length) : b; },\n"
    "    extname: function (p) { var b = path.basename(p), i = b.lastIndexOf('.'); return i <= 0 ? '' : b.slice(i); }\n"
    "  };\n"
    "  path.posix = path;\n"
    "  var os = { EOL: '\\n', hostname: function () { return hostname; }, homedir: function () { return homedir; },\n"
    "    tmpdir: function () { return env.TMPDIR || '/tmp'; }, platform: function () { return 'linux'; },\n"
    "    type: function () { return 'Linux'; } };\n"
    "  var fs = {\n"
    "    existsSync: function (p) { return N.exists(path.resolve(String(p))); },\n"
    "    readFileSync: function (p, o) {\n"
    "      var full = path.resolve(String(p)), text = N.readFile(full), enc = typeof o === 'string' ? o : o && o.encoding;\n"
    "      if (enc) return text;\n"
    "      var b = Buffer.from(text); fileOf.set(b, full); return b;\n"
    "    }\n"
    "  };\n"
    "  var mods = { path: path, os: os, fs: fs };\n"
    "  function require(name) {\n"
    "    var n = String(name).replace(/^node:/, '');\n"
    "    if (Object.prototype.hasOwnProperty.call(mods, n)) return mods[n];\n"
    "    refused.push(\"require('\" + name + \"') (an empty object stood in)\");\n"
    "    return {};\n"
    "  }\n"
    "  var module = { exports: {}, filename: filename, id: filename };\n"
    "  var process = { env: env, cwd: function () { return cwd; }, platform: 'linux', argv: ['node', 'carmine'],\n"
    "    version: 'v20.0.0', versions: {} };\n"
    "  var fn = Function('module', 'exports', 'require', '__filename', '__dirname', 'process', src + '\\n');\n"
    "  fn.call(module.exports, module, module.exports, require, filename, path.dirname(filename), process);\n"
    "  var seen = [];\n"
    "  function clean(v, p) {\n"
    "    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;\n"
    "    if (typeof v === 'number') { if (isFinite(v)) return v; left.push(p + ' (' + v + ')'); return undefined; }\n"
    "    if (v === undefined) return undefined;\n"
    "    if (typeof v === 'function') { left.push(p + ' (a function)'); return undefined; }\n"
    "    if (typeof v !== 'object') { left.push(p + ' (a ' + typeof v + ')'); return undefined; }\n"
    "    if (Buffer.isBuffer(v)) return fileOf.has(v) && /^https\\.(key|cert|ca)$/.test(p) ? fileOf.get(v) : v.toString();\n"
    "    if (v instanceof Date) return v.toISOString();\n"
    "    if (v instanceof RegExp) { left.push(p + ' (a RegExp)'); return undefined; }\n"
    "    if (seen.indexOf(v) >= 0) { left.push(p + ' (a circular reference)'); return undefined; }\n"
    "    seen.push(v);\n"
    "    var out;\n"
    "    if (Array.isArray(v)) out = v.map(function (x, i) { var c = clean(x, p + '[' + i + ']'); return c === undefined ? null : c; });\n"
    "    else { out = {}; Object.keys(v).forEach(function (k) { var c = clean(v[k], p ? p + '.' + k : k); if (c !== undefined) out[k] = c; }); }\n"
    "    seen.pop();\n"
    "    return out;\n"
    "  }\n"
    "  var settings = clean(module.exports, '');\n"
    "  if (!settings || typeof settings !== 'object' || Array.isArray(settings)) throw new Error('module.exports is not an object');\n"
    "  return JSON.stringify({ settings: settings, left: left.concat(refused) });\n"
    "})";

static JSValueRef js_read_file(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc, const JSValueRef argv[],
                               JSValueRef *exc)
{
    (void)f;
    (void)self;
    char *path = argc ? crm_js_to_utf8(ctx, argv[0]) : NULL;
    size_t len = 0;
    char *text = path ? crm_read_file(path, &len) : NULL;
    JSValueRef r;
    if (!text) r = crm_js_throw(ctx, exc, "ENOENT: no such file or directory, open '%s'", path ? path : "");
    else r = crm_js_str(ctx, text, len);
    free(path);
    free(text);
    return r;
}

static JSValueRef js_exists(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc, const JSValueRef argv[],
                            JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)exc;
    char *path = argc ? crm_js_to_utf8(ctx, argv[0]) : NULL;
    bool ok = path && access(path, F_OK) == 0;
    free(path);
    return JSValueMakeBoolean(ctx, ok);
}

/* Evaluates the file; the JSON text of {settings, left} or of {error}. */
static char *evaluate(const char *path)
{
    char *err = NULL;
    size_t len = 0;
    char *src = crm_read_file(path, &len);
    if (!src) {
        if (asprintf(&err, "cannot read it: %s", strerror(errno)) < 0) err = NULL;
        goto fail;
    }
    crm_node n; /* a sandbox outside any flow: no loop, so no timers */
    memset(&n, 0, sizeof n);
    n.id = "settings.js";
    crm_js *s = crm_js_new(&n, NULL, &err);
    if (!s) {
        free(src);
        goto fail;
    }
    JSGlobalContextRef ctx = crm_js_ctx(s);
    JSObjectRef global = JSContextGetGlobalObject(ctx);
    static const char *const timers[] = {"setTimeout", "setInterval", "clearTimeout", "clearInterval"};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        JSStringRef name = JSStringCreateWithUTF8CString(timers[i]);
        JSObjectDeleteProperty(ctx, global, name, NULL);
        JSStringRelease(name);
    }
    crm_js_set_timeout(s, 10000);
    JSObjectRef natives = JSObjectMake(ctx, NULL, NULL);
    crm_js_set_fn(ctx, natives, "readFile", js_read_file);
    crm_js_set_fn(ctx, natives, "exists", js_exists);
    json_t *env = json_object();
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char *k = strndup(*e, (size_t)(eq - *e));
        json_object_set_new(env, k, json_string(eq + 1));
        free(k);
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    const char *home = getenv("HOME");
    char *full = realpath(path, NULL);
    JSValueRef exc = NULL;
    JSValueRef wrap = crm_js_eval(s, wrapper_js, "carmine:settings.js", 1, &exc);
    JSValueRef out = NULL;
    if (wrap && JSValueIsObject(ctx, wrap)) {
        json_t *envc = env;
        JSValueRef args[7] = {natives,
                              crm_js_str(ctx, src, len),
                              crm_js_str(ctx, full ? full : path, strlen(full ? full : path)),
                              crm_js_from_json(s, envc),
                              crm_js_str(ctx, cwd, strlen(cwd)),
                              crm_js_str(ctx, host, strlen(host)),
                              crm_js_str(ctx, home ? home : "/", strlen(home ? home : "/"))};
        out = crm_js_call(s, (JSObjectRef)wrap, 7, args, &exc);
    }
    json_decref(env);
    free(full);
    free(src);
    char *text = NULL;
    if (exc) {
        char *msg = crm_js_to_utf8(ctx, exc);
        if (crm_js_timed_out(s)) {
            free(msg);
            msg = strdup("it ran for more than 10 s");
        }
        if (asprintf(&err, "%s", msg ? msg : "it threw") < 0) err = NULL;
        free(msg);
    } else if (out) {
        text = crm_js_to_utf8(ctx, out);
    }
    crm_js_free(s);
    if (text) return text;
fail:;
    json_t *e = json_pack("{s:s}", "error", err ? err : "it failed");
    free(err);
    char *t = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return t;
}

/* The parent's side ------------------------------------------------------------------------ */

json_t *crm_settings_js_read(const char *path, strbuf *unhonoured, char **err)
{
    *err = NULL;
    int fds[2];
    if (pipe(fds) < 0) {
        if (asprintf(err, "%s: %s", path, strerror(errno)) < 0) *err = NULL;
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        if (asprintf(err, "%s: %s", path, strerror(errno)) < 0) *err = NULL;
        return NULL;
    }
    if (pid == 0) {
        close(fds[0]);
        char *text = evaluate(path);
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t w = write(fds[1], text + off, len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    strbuf in = SB_INIT;
    char buf[8192];
    for (;;) {
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        sb_putn(&in, buf, (size_t)r);
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    json_t *res = in.len ? crm_parse(in.data, in.len, NULL, 0) : NULL;
    sb_free(&in);
    json_t *settings = json_object_get(res, "settings");
    if (!json_is_object(settings)) {
        const char *why = json_string_value(json_object_get(res, "error"));
        char died[64] = "";
        if (!why && WIFSIGNALED(status)) snprintf(died, sizeof died, "the reader died of signal %d", WTERMSIG(status));
        if (asprintf(err, "%s: %s", path, why ? why : died[0] ? died : "the reader gave no settings") < 0) *err = NULL;
        json_decref(res);
        return NULL;
    }
    json_incref(settings);
    crm_settings_unhonoured(settings, unhonoured);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(res, "left"), i, v)
        sb_printf(unhonoured, "%s%s", unhonoured->len ? ", " : "", json_string_value(v));
    json_decref(res);
    return settings;
}

/* The user's directory ------------------------------------------------------------------------- */

char *crm_userdir_default(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    char *p;
    if (asprintf(&p, "%s/.node-red", home) < 0) return NULL;
    return p;
}

char *crm_userdir_flows_file(const char *userdir, const json_t *settings, int named_by_host)
{
    const char *ff = json_string_value(json_object_get(settings, "flowFile"));
    char *p = NULL;
    if (ff && *ff) {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, ".");
        if (ff[0] == '/') p = strdup(ff);
        else if (!strncmp(ff, "./", 2)) {
            if (asprintf(&p, "%s/%s", cwd, ff + 2) < 0) p = NULL;
        } else {
            if (asprintf(&p, "%s/%s", cwd, ff) < 0) return NULL;
            struct stat st;
            if (stat(p, &st) < 0) { /* not in the working directory: the userDir's */
                free(p);
                if (asprintf(&p, "%s/%s", userdir, ff) < 0) p = NULL;
            }
        }
        return p;
    }
    if (named_by_host) {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        if (asprintf(&p, "%s/flows_%s.json", userdir, host) < 0) p = NULL;
    } else if (asprintf(&p, "%s/flows.json", userdir) < 0) {
        p = NULL;
    }
    return p;
}
