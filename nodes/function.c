/* function.c: the Node-RED "function" node (core/function/10-function.js),
 * JavaScript run by JavaScriptCore (runtime/js/js.h) on the flow's loop.
 *
 * Each node has its own sandbox (a global context, Node-RED's vm context):
 * Buffer, util, console, URL, timers and RED.util from the prelude,
 * context/flow/global/env from runtime/js/function.js, and `__node__`, the
 * natives below. The node's code is compiled once, in create(), into
 *   function (msg) { var node = {...}; <func> }
 * (async, as Node-RED always makes it, when the code uses await; a plain
 * function otherwise, whose results are sent from a Promise reaction queued
 * when it returns, after the microtasks the body queued, as Node-RED's
 * async wrapper sends them; a Promise it returns is awaited). A syntax
 * error refuses the node: `carmine check` reports it; a run logs it as Node-RED does and the
 * node drops its messages.
 *
 * Messages cross as values (crm_js_from_json / crm_js_to_json): each
 * message sent is converted when it is sent, which is Node-RED's clone rule
 * (node.send clones, a msg on two outputs is two copies).
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "js/js.h"

extern const char crm_js_function[];

typedef enum { RESOLVING, RESOLVED, FAILED } fn_state;

typedef struct {
    crm_node *n;
    crm_js *js;
    JSContextRef ctx;
    JSObjectRef body, fin;     /* protected */
    JSObjectRef helpers;       /* function.js's result, protected */
    JSObjectRef promise_ctor;  /* protected */
    JSObjectRef flush, settle, close_fn, drive, send_text, last;
    bool uses_context;
    bool handle_done;          /* done() after the function, unless it calls node.done() */
    bool broken;               /* syntax error: messages are dropped */
    char *broken_text;         /* logged at start */
    JSObjectRef setup;         /* protected; run at start */
    fn_state state;
    json_t *queue;             /* messages held while setup runs */
    bool clear_status;
    double timeout_ms;
    JSObjectRef adopt;         /* function.js's adopt */
    json_t **slots;            /* hand-over carriers sent to this node (a reference each) */
    size_t nslots;
    bool msg_stays;            /* the code cannot keep msg past its run (msg_stays_in_run) */
    bool msg_blind;            /* ... and never reads msg.req, msg.res or msg[...] */
    JSValueRef req_sym;        /* function.js's REQ symbol, protected */
    double held_id;            /* the message in the run holds held_req/res under this id; 0: none */
    double held_next;
    json_t *held_req, *held_res;
} fn;

/* Values and texts ------------------------------------------------------------- */

static char *utf8(JSContextRef ctx, JSValueRef v)
{
    char *s = crm_js_to_utf8(ctx, v);
    return s ? s : strdup("");
}

static bool is_error_object(fn *f, JSValueRef v);

/* What Node-RED's log shows for a value node.warn() etc. were given. */
static char *log_text(fn *f, JSValueRef v)
{
    if (!v || JSValueIsString(f->ctx, v)) return v ? utf8(f->ctx, v) : strdup("undefined");
    if (JSValueIsObject(f->ctx, v)) {
        if (is_error_object(f, v)) return utf8(f->ctx, v);
        /* Node-RED's console logger: an object whose String() is
         * "[object Object]" shows its message member when it has one */
        char *str = utf8(f->ctx, v);
        JSValueRef m = crm_js_get(f->ctx, (JSObjectRef)v, "message");
        if (!strcmp(str, "[object Object]") && m && JSValueToBoolean(f->ctx, m)) {
            free(str);
            return utf8(f->ctx, m);
        }
        free(str);
        json_t *j = crm_js_to_json(f->js, v);
        char *s = crm_inspect(j, 2);
        json_decref(j);
        return s;
    }
    return utf8(f->ctx, v);
}

/* An Error of any realm: one another node made (prelude.js, foreignProto)
 * is no instanceof this sandbox's Error, as in Node-RED. */
static bool is_error_object(fn *f, JSValueRef v)
{
    JSContextRef ctx = f->ctx;
    if (!JSValueIsObject(ctx, v)) return false;
    JSValueRef errc = crm_js_get(ctx, JSContextGetGlobalObject(ctx), "Error");
    if (JSValueIsObject(ctx, errc) && JSValueIsInstanceOfConstructor(ctx, v, (JSObjectRef)errc, NULL)) return true;
    JSValueRef ts = crm_js_get(ctx, JSContextGetGlobalObject(ctx), "Object");
    ts = JSValueIsObject(ctx, ts) ? crm_js_get(ctx, (JSObjectRef)ts, "prototype") : NULL;
    ts = ts && JSValueIsObject(ctx, ts) ? crm_js_get(ctx, (JSObjectRef)ts, "toString") : NULL;
    if (!ts || !JSValueIsObject(ctx, ts)) return false;
    JSValueRef r = JSObjectCallAsFunction(ctx, (JSObjectRef)ts, (JSObjectRef)v, 0, NULL, NULL);
    if (!r || !JSValueIsString(ctx, r)) return false;
    JSStringRef js = JSValueToStringCopy(ctx, r, NULL);
    bool is = js && JSStringIsEqualToUTF8CString(js, "[object Error]");
    if (js) JSStringRelease(js);
    return is;
}

static bool own(JSContextRef ctx, JSValueRef o, const char *name)
{
    if (!JSValueIsObject(ctx, o)) return false;
    JSValueRef hop = crm_js_get(ctx, JSContextGetGlobalObject(ctx), "Object");
    hop = crm_js_get(ctx, (JSObjectRef)hop, "prototype");
    hop = crm_js_get(ctx, (JSObjectRef)hop, "hasOwnProperty");
    if (!JSValueIsObject(ctx, hop)) return false;
    JSValueRef arg = crm_js_str(ctx, name, strlen(name));
    JSValueRef r = JSObjectCallAsFunction(ctx, (JSObjectRef)hop, (JSObjectRef)o, 1, &arg, NULL);
    return r && JSValueToBoolean(ctx, r);
}

static void reword_type_error(fn *f, JSValueRef err)
{
    if (!JSValueIsObject(f->ctx, err)) return;
    JSObjectRef e = (JSObjectRef)err;
    char *name = utf8(f->ctx, crm_js_get(f->ctx, e, "name"));
    if (!strcmp(name, "TypeError")) {
        char *m = utf8(f->ctx, crm_js_get(f->ctx, e, "message"));
        char *v8 = crm_js_v8_message("TypeError", m);
        if (v8) crm_js_set(f->ctx, e, "message", crm_js_str(f->ctx, v8, strlen(v8)));
        free(v8);
        free(m);
    }
    free(name);
}

/* extra[name] = err[name] when err has it as its own member. */
static void copy_own(fn *f, JSValueRef err, const char *name, json_t **extra)
{
    if (!own(f->ctx, err, name)) return;
    json_t *v = crm_js_to_json(f->js, crm_js_get(f->ctx, (JSObjectRef)err, name));
    if (!v) return;
    if (!*extra) *extra = json_object();
    json_object_set_new(*extra, name, v);
}

/* Reports err as Node-RED's node.error(err, msg) does (done(err) too): the
 * text is String(err); an object's own code, cause and (other than an
 * Error's: catch nodes get one in "Name: message\n    at ..." form) stack
 * go along to catch nodes. body: err is what the body threw or rejected
 * with, which Node-RED first turns into its JSON text unless it is a string
 * or an object with its own stack. msg (borrowed) may be NULL: logged only. */
static void report_as(fn *f, JSValueRef err, const json_t *msg, bool body)
{
    char *text;
    json_t *extra = NULL;
    bool has_stack = own(f->ctx, err, "stack");
    if (JSValueIsString(f->ctx, err)) {
        text = utf8(f->ctx, err);
    } else if (JSValueIsObject(f->ctx, err) && (!body || has_stack)) {
        bool error = is_error_object(f, err);
        if (error) reword_type_error(f, err);
        text = utf8(f->ctx, err);
        copy_own(f, err, "code", &extra);
        if (!error) copy_own(f, err, "stack", &extra);
        copy_own(f, err, "cause", &extra);
    } else if (!body) {
        text = utf8(f->ctx, err);
    } else {
        JSStringRef j = JSValueCreateJSONString(f->ctx, err, 0, NULL);
        text = j ? crm_js_jsstr_utf8(j, NULL) : strdup("undefined");
        if (j) JSStringRelease(j);
    }
    crm_node_error_with(f->n, json_is_object(msg) ? msg : NULL, text, extra);
    json_decref(extra);
    free(text);
}

static void report(fn *f, JSValueRef err, const json_t *msg) { report_as(f, err, msg, false); }

/* Node-RED's catch of the body's rejection: an object with its own stack
 * (an Error) is left on the message as msg.error, which catch nodes then
 * find as msg._error; a stack not an Error's is cut as Node-RED cuts V8's
 * (its last character, then its last line). jmsg: the message the code
 * ran on. */
static void fix_error(fn *f, JSValueRef err, bool at);
static json_t *msg_json(fn *f, JSValueRef v);

static void body_failed(fn *f, JSValueRef err, JSValueRef jmsg)
{
    JSContextRef ctx = f->ctx;
    fix_error(f, err, true);
    if (JSValueIsObject(ctx, err) && own(ctx, err, "stack")) {
        if (is_error_object(f, err)) {
            reword_type_error(f, err);
        } else {
            JSValueRef st = crm_js_get(ctx, (JSObjectRef)err, "stack");
            char *t = JSValueIsString(ctx, st) ? utf8(ctx, st) : NULL;
            if (t) {
                size_t n = strlen(t);
                if (n) t[--n] = 0;
                char *nl = strrchr(t, '\n');
                if (nl) *nl = 0;
                else t[0] = 0;
                crm_js_set(ctx, (JSObjectRef)err, "stack", crm_js_str(ctx, t, strlen(t)));
                free(t);
            }
        }
        if (JSValueIsObject(ctx, jmsg)) crm_js_set(ctx, (JSObjectRef)jmsg, "error", err);
    }
    json_t *jm = msg_json(f, jmsg);
    report_as(f, err, jm, true);
    json_decref(jm);
}

/* A thrown error out of the body: Node-RED rewrites a ReferenceError's
 * message to carry the line and column in the code (at); V8's words
 * without them out of a timer's callback. */
static void fix_error(fn *f, JSValueRef err, bool at)
{
    if (!JSValueIsObject(f->ctx, err)) return;
    JSObjectRef e = (JSObjectRef)err;
    char *name = utf8(f->ctx, crm_js_get(f->ctx, e, "name"));
    if (!strcmp(name, "ReferenceError")) {
        char *m = utf8(f->ctx, crm_js_get(f->ctx, e, "message"));
        JSValueRef lv = crm_js_get(f->ctx, e, "line"), cv = crm_js_get(f->ctx, e, "column");
        /* JavaScriptCore says "Can't find variable: x" where V8 says "x is not defined" */
        char *text = NULL;
        const char *var = !strncmp(m, "Can't find variable: ", 21) ? m + 21 : NULL;
        int line = at && JSValueIsNumber(f->ctx, lv) ? (int)JSValueToNumber(f->ctx, lv, NULL) - 1 : -1;
        int col = JSValueIsNumber(f->ctx, cv) ? (int)JSValueToNumber(f->ctx, cv, NULL) : 0;
        int rc;
        if (line >= 0)
            rc = var ? asprintf(&text, "ReferenceError: %s is not defined (line %d, col %d)", var, line, col)
                     : asprintf(&text, "ReferenceError: %s (line %d, col %d)", m, line, col);
        else if (!at) /* V8's words; the message alone, as V8 has it */
            rc = var ? asprintf(&text, "%s is not defined", var) : -1;
        else
            rc = var ? asprintf(&text, "ReferenceError: %s is not defined", var) : asprintf(&text, "ReferenceError: %s", m);
        if (rc >= 0) {
            crm_js_set(f->ctx, e, "message", crm_js_str(f->ctx, text, strlen(text)));
            free(text);
        }
        free(m);
    }
    free(name);
}

/* A call the watchdog stopped: reported without running JavaScript (the
 * engine refuses to until the stopped call has unwound). msg may be NULL. */
static void report_timeout(fn *f, const json_t *msg)
{
    char text[96];
    snprintf(text, sizeof text, "Error: Script execution timed out after %.0fms", crm_js_timeout_ms(f->js));
    /* Node's vm error carries its code, which Node-RED copies to msg.error */
    json_t *extra = json_pack("{s:s}", "code", "ERR_SCRIPT_EXECUTION_TIMEOUT");
    crm_node_error_with(f->n, json_is_object(msg) ? msg : NULL, text, extra);
    json_decref(extra);
}

/* msg.req ------------------------------------------------------------------------------ */

/* The request and the response handle of an http in message cross into the
 * sandbox only when the code reads msg.req or msg.res (function.js, lazy):
 * until then the message holds a key to them, one of
 * - a number, when the code cannot keep msg past its run (msg_stays_in_run):
 *   fn's held_id, its values in held_req/held_res, released as soon as the
 *   run's microtasks ran (so that nothing but the HTTP server holds msg.req
 *   any more and its next request fills the same object again in place);
 * - else a native object of this class, a held struct as private data,
 *   released when the engine collects it. */
typedef struct {
    json_t *req, *res;
} held;

static JSClassRef req_class;
static pthread_mutex_t req_class_lock = PTHREAD_MUTEX_INITIALIZER;

static void req_finalize(JSObjectRef o)
{
    held *h = JSObjectGetPrivate(o);
    if (!h) return;
    json_decref(h->req);
    json_decref(h->res);
    free(h);
}

static JSClassRef req_class_get(void)
{
    JSClassRef c = __atomic_load_n(&req_class, __ATOMIC_ACQUIRE);
    if (c) return c;
    pthread_mutex_lock(&req_class_lock);
    if (!req_class) {
        JSClassDefinition d;
        memset(&d, 0, sizeof d);
        d.className = "Request";
        d.finalize = req_finalize;
        __atomic_store_n(&req_class, JSClassCreate(&d), __ATOMIC_RELEASE);
    }
    c = req_class;
    pthread_mutex_unlock(&req_class_lock);
    return c;
}

/* What key h holds (borrowed): msg.req when which is 0, msg.res when 1; NULL
 * when nothing (a number of a run that ended). */
static json_t *req_of(fn *f, JSValueRef h, int which)
{
    if (!h) return NULL;
    if (JSValueIsNumber(f->ctx, h)) {
        if (!f->held_id || fabs(JSValueToNumber(f->ctx, h, NULL)) != f->held_id) return NULL;
        return which ? f->held_res : f->held_req;
    }
    JSClassRef c = __atomic_load_n(&req_class, __ATOMIC_ACQUIRE);
    if (!c || !JSValueIsObjectOfClass(f->ctx, h, c)) return NULL;
    held *p = JSObjectGetPrivate((JSObjectRef)h);
    return p ? (which ? p->res : p->req) : NULL;
}

static JSObjectRef holder_make(fn *f, json_t *req, json_t *res)
{
    held *p = malloc(sizeof *p);
    if (!p) {
        json_decref(req);
        json_decref(res);
        return NULL;
    }
    p->req = req;
    p->res = res;
    return JSObjectMake(f->ctx, req_class_get(), p);
}

/* msg (a message's JSON) made from v: the request and response v's key
 * holds, put back where v had no accessors for them (msg_blind). */
static json_t *held_back(fn *f, json_t *msg, JSValueRef v)
{
    if (!f->req_sym || !json_is_object(msg) || !v || !JSValueIsObject(f->ctx, v)) return msg;
    JSValueRef k = JSObjectGetPropertyForKey(f->ctx, (JSObjectRef)v, f->req_sym, NULL);
    if (!k || !JSValueIsNumber(f->ctx, k) || JSValueToNumber(f->ctx, k, NULL) >= 0) return msg;
    json_t *req = req_of(f, k, 0), *res = req_of(f, k, 1);
    if (req && !json_object_get(msg, "req")) json_object_set_nocheck(msg, "req", req);
    if (res && !json_object_get(msg, "res")) json_object_set_nocheck(msg, "res", res);
    return msg;
}

/* v (a message of the sandbox) as JSON, with what its key holds */
static json_t *msg_json(fn *f, JSValueRef v) { return held_back(f, crm_js_to_json(f->js, v), v); }

static void held_release(fn *f)
{
    json_decref(f->held_req);
    json_decref(f->held_res);
    f->held_req = f->held_res = NULL;
    f->held_id = 0;
}

/* A message that left with its msg.req (msg.res) untouched has {"\u0001q": n}
 * ({"\u0001r": n}) there: what the key holders[n] holds goes back in its place. */
static void req_restore(fn *f, json_t *msg, JSValueRef holders)
{
    static const char *const names[2] = {"req", "res"}, *const marks[2] = {"\x01" "q", "\x01" "r"};
    for (int w = 0; w < 2; w++) {
        json_t *m = json_object_get(msg, names[w]);
        json_t *n = json_is_object(m) && json_object_size(m) == 1 ? json_object_get(m, marks[w]) : NULL;
        if (!json_is_number(n) || !holders || !JSValueIsObject(f->ctx, holders)) continue;
        JSValueRef h = JSObjectGetPropertyAtIndex(f->ctx, (JSObjectRef)holders, (unsigned)crm_num_value(n), NULL);
        json_t *v = req_of(f, h, w);
        if (v) json_object_set_nocheck(msg, names[w], v);
        else json_object_del(msg, names[w]);
    }
}

/* Sending ---------------------------------------------------------------------------- */

/* Acts on the text function.js's collect() made: every entry that is not
 * a message is logged first, as Node-RED does, then the messages are sent
 * in order, then done() is reported when asked. */
static void dispatch(fn *f, JSValueRef text, JSValueRef holders)
{
    if (!text || !JSValueIsString(f->ctx, text)) return;
    JSStringRef js = JSValueToStringCopy(f->ctx, text, NULL);
    if (!js) return;
    size_t len;
    char *u = crm_js_json_utf8(js, &len);
    JSStringRelease(js);
    json_t *out = len ? crm_js_parse_text(u, len) : NULL;
    free(u);
    if (!json_is_array(out)) {
        json_decref(out);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(out, i, e) {
        if (json_is_string(e)) crm_node_error(f->n, NULL, "Function tried to send a message of type %s", json_string_value(e));
    }
    int nports = crm_node_outputs(f->n);
    json_t *done = NULL;
    json_array_foreach(out, i, e) {
        if (!json_is_array(e)) continue;
        json_t *a = json_array_get(e, 0), *msg = json_array_get(e, 1), *k = json_array_get(e, 2);
        if (holders) req_restore(f, msg, holders);
        if (json_is_number(k) && json_is_object(msg) && f->held_id && crm_num_value(k) == f->held_id) {
            /* a message whose req and res were left out (msg_blind) */
            if (f->held_req && !json_object_get(msg, "req")) json_object_set_nocheck(msg, "req", f->held_req);
            if (f->held_res && !json_object_get(msg, "res")) json_object_set_nocheck(msg, "res", f->held_res);
        }
        if (json_is_string(a)) {
            done = msg;
            continue;
        }
        int port = (int)crm_num_value(a);
        if (port < nports && json_is_object(msg)) crm_node_send(f->n, port, json_incref(msg));
    }
    if (done && crm_node_watched(f->n)) crm_node_done(f->n, done);
    json_decref(out);
}

/* Node-RED's sendResults: msgs is a message, an array with one entry per
 * output, each a message, null or an array of messages. */
static void send_results(fn *f, JSValueRef msgs, JSValueRef msgid)
{
    JSValueRef args[2] = {msgid ? msgid : JSValueMakeUndefined(f->ctx), msgs};
    JSValueRef exc = NULL;
    JSValueRef r = JSObjectCallAsFunction(f->ctx, f->send_text, NULL, 2, args, &exc);
    if (r && !exc) dispatch(f, r, crm_js_get(f->ctx, f->send_text, "holders"));
}

/* Hand-over ------------------------------------------------------------------------------ */

/* A message a function node sends to the next function node on its loop
 * (the only wire of its port) stays a JavaScript value: the receiver's
 * function.js adopt() copies it into the receiver's own objects at once (a
 * copy as the JSON crossing makes, minus the text) and keeps the copy in its
 * inbox; what travels through the loop's queue is a carrier,
 * {"_msgid": id, "\u0001js": slot}, which only that receiver ever sees. The
 * receiver's slots[slot] holds a reference to the carrier: the carrier
 * there proves it is one of ours, and a carrier that only the slot still
 * holds was dropped on the way (the receiver closed), so its slot is free
 * again. A message the copy does not make as the crossing does crosses as
 * JSON text as before. */
#define CARRIER_KEY "\x01" "js"

static size_t slot_take(fn *g)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < g->nslots; i++)
            if (!g->slots[i]) return i;
        /* full: the carriers dropped on the way give their slots back */
        for (size_t i = 0; i < g->nslots; i++)
            if (g->slots[i]->refcount == 1) {
                json_decref(g->slots[i]);
                g->slots[i] = NULL;
            }
    }
    size_t n = g->nslots ? g->nslots * 2 : 16;
    json_t **s = realloc(g->slots, n * sizeof *s);
    if (!s) abort();
    memset(s + g->nslots, 0, (n - g->nslots) * sizeof *s);
    size_t i = g->nslots;
    g->slots = s;
    g->nslots = n;
    return i;
}

/* The slot of a carrier sent to g, or -1 for any other message. */
static long carrier_slot(fn *g, const json_t *msg)
{
    if (!g->nslots || json_object_size(msg) != 2) return -1;
    json_t *v = json_object_getn(msg, CARRIER_KEY, sizeof CARRIER_KEY - 1);
    if (!json_is_integer(v)) return -1;
    json_int_t i = json_integer_value(v);
    return i >= 0 && (size_t)i < g->nslots && g->slots[i] == msg ? (long)i : -1;
}

/* Sends msg (a JavaScript message) on port as a hand-over when the port
 * leads to one function node on this loop and the copy can be made. */
static bool hand_over(fn *f, int port, JSValueRef msg)
{
    crm_node *peer = crm_js_wire_peer(f->n, port);
    fn *g = peer ? crm_node_data(peer) : NULL;
    if (!g || g->broken || g->state == FAILED || !g->adopt) return false;
    size_t slot = slot_take(g);
    JSValueRef args[2] = {msg, JSValueMakeNumber(g->ctx, (double)slot)};
    JSValueRef exc = NULL;
    JSValueRef id = JSObjectCallAsFunction(g->ctx, g->adopt, NULL, 2, args, &exc);
    if (!id || exc || !JSValueIsString(g->ctx, id)) return false;
    JSStringRef js = JSValueToStringCopy(g->ctx, id, NULL);
    if (!js) return false;
    size_t len;
    char *u = crm_js_jsstr_utf8(js, &len);
    JSStringRelease(js);
    json_t *carrier = json_object();
    json_object_setn_new_nocheck(carrier, "_msgid", 6, json_stringn_nocheck(u, len));
    json_object_setn_new_nocheck(carrier, CARRIER_KEY, sizeof CARRIER_KEY - 1, json_integer((json_int_t)slot));
    free(u);
    g->slots[slot] = json_incref(carrier);
    crm_node_send(f->n, port, carrier);
    return true;
}

/* Natives (__node__) ----------------------------------------------------------------------- */

/* Each native holds the VM's lock while it runs (crm_js_hold): a callback
 * runs with it dropped, and its JavaScriptCore calls would each take it. */
#define NATIVE(name)                                                                                        \
    static JSValueRef name##_(JSContextRef ctx, JSObjectRef func, JSObjectRef self, size_t argc,            \
                              const JSValueRef argv[], JSValueRef *exc);                                    \
    static JSValueRef name(JSContextRef ctx, JSObjectRef func, JSObjectRef self, size_t argc,               \
                           const JSValueRef argv[], JSValueRef *exc)                                        \
    {                                                                                                       \
        crm_js_holder hold;                                                                                 \
        crm_js_hold(ctx, &hold);                                                                            \
        JSValueRef r = name##_(ctx, func, self, argc, argv, exc);                                           \
        crm_js_unhold(&hold);                                                                               \
        return r;                                                                                           \
    }                                                                                                       \
    static JSValueRef name##_(JSContextRef ctx, JSObjectRef func, JSObjectRef self, size_t argc,            \
                              const JSValueRef argv[], JSValueRef *exc)
#define UNUSED_ARGS (void)func, (void)self, (void)exc
#define ARG(i) ((i) < argc ? argv[i] : JSValueMakeUndefined(ctx))
/* The node whose sandbox ctx is; NULL once it closed (a function it left
 * in context may still be called from another node's code). */
#define SELF ((fn *)crm_js_user(crm_js_of(ctx)))

/* send(msgid, msgs, cloneMsg) */
NATIVE(n_send)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    send_results(f, ARG(1), ARG(0));
    return JSValueMakeUndefined(ctx);
}

/* done(msg, err) */
NATIVE(n_done)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    JSValueRef err = ARG(1);
    if (!JSValueIsUndefined(ctx, err) && !JSValueIsNull(ctx, err)) {
        json_t *msg = msg_json(f, ARG(0));
        report(f, err, msg);
        json_decref(msg);
    } else if (crm_node_watched(f->n)) {
        json_t *msg = msg_json(f, ARG(0));
        if (msg) crm_node_done(f->n, msg);
        json_decref(msg);
    }
    return JSValueMakeUndefined(ctx);
}

static void log_at(JSContextRef ctx, size_t argc, const JSValueRef argv[], crm_log_level lvl)
{
    fn *f = SELF;
    if (!f) return;
    char *text = log_text(f, argc ? argv[0] : NULL);
    if (lvl >= CRM_LOG_WARN && argc && is_error_object(f, argv[0])) {
        /* the debug sidebar shows an Error as one, as Node-RED's does */
        json_t *extra = NULL;
        copy_own(f, argv[0], "code", &extra);
        copy_own(f, argv[0], "cause", &extra);
        crm_node_log_error(f->n, lvl, text, extra);
        json_decref(extra);
    } else {
        crm_node_log(f->n, lvl, "%s", text);
    }
    free(text);
}

NATIVE(n_log) { UNUSED_ARGS; log_at(ctx, argc, argv, CRM_LOG_INFO); return JSValueMakeUndefined(ctx); }
NATIVE(n_warn) { UNUSED_ARGS; log_at(ctx, argc, argv, CRM_LOG_WARN); return JSValueMakeUndefined(ctx); }
NATIVE(n_debug) { UNUSED_ARGS; log_at(ctx, argc, argv, CRM_LOG_DEBUG); return JSValueMakeUndefined(ctx); }
NATIVE(n_trace) { UNUSED_ARGS; log_at(ctx, argc, argv, CRM_LOG_TRACE); return JSValueMakeUndefined(ctx); }

/* error(err, msg) */
NATIVE(n_error)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    JSValueRef err = ARG(0);
    json_t *msg = argc > 1 && JSValueIsObject(ctx, argv[1]) ? crm_js_to_json(f->js, argv[1]) : NULL;
    if (JSValueIsString(ctx, err) || is_error_object(f, err) || (msg && JSValueIsObject(ctx, err))) {
        report(f, err, msg);
    } else {
        char *text = JSValueIsObject(ctx, err) ? log_text(f, err) : utf8(ctx, err);
        crm_node_error(f->n, msg, "%s", text);
        free(text);
    }
    json_decref(msg);
    return JSValueMakeUndefined(ctx);
}

static char *field(JSContextRef ctx, JSObjectRef o, const char *name)
{
    JSValueRef v = crm_js_get(ctx, o, name);
    if (!v || JSValueIsUndefined(ctx, v)) return NULL;
    return utf8(ctx, v);
}

/* status({fill, shape, text}) or status("text") */
NATIVE(n_status)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    f->clear_status = true;
    JSValueRef st = ARG(0);
    if (JSValueIsObject(ctx, st)) {
        char *fill = field(ctx, (JSObjectRef)st, "fill"), *shape = field(ctx, (JSObjectRef)st, "shape");
        char *text = field(ctx, (JSObjectRef)st, "text");
        crm_node_status(f->n, fill, shape, text);
        free(fill);
        free(shape);
        free(text);
    } else if (JSValueIsUndefined(ctx, st) || JSValueIsNull(ctx, st)) {
        crm_node_status(f->n, NULL, NULL, NULL);
    } else {
        char *text = utf8(ctx, st);
        crm_node_status(f->n, NULL, NULL, text);
        free(text);
    }
    return JSValueMakeUndefined(ctx);
}

static void start_queue(fn *f);

/* out(text, holders): function.js's collect() text of a message's results. */
NATIVE(n_out)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (f) dispatch(f, ARG(0), ARG(1));
    return JSValueMakeUndefined(ctx);
}

/* pass(port, msg): true when msg went out as a hand-over. */
NATIVE(n_pass)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f || !JSValueIsNumber(ctx, ARG(0))) return JSValueMakeBoolean(ctx, false);
    double port = JSValueToNumber(ctx, ARG(0), NULL);
    bool sent = port >= 0 && port < crm_node_outputs(f->n) && hand_over(f, (int)port, ARG(1));
    return JSValueMakeBoolean(ctx, sent);
}

/* req(key, which): msg.req (which 0) or msg.res (1), read for the first time. */
NATIVE(n_req)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    json_t *v = req_of(f, ARG(0), JSValueIsNumber(ctx, ARG(1)) ? (int)JSValueToNumber(ctx, ARG(1), NULL) : 0);
    return v ? crm_js_from_json(f->js, v) : JSValueMakeUndefined(ctx);
}

/* hold(key): the message of the run outlives it (its code returned a
 * Promise): what the number key holds moves to a holder object. */
NATIVE(n_hold)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f || !JSValueIsNumber(ctx, ARG(0)) || JSValueToNumber(ctx, ARG(0), NULL) != f->held_id)
        return JSValueMakeUndefined(ctx);
    JSObjectRef h = holder_make(f, f->held_req, f->held_res);
    f->held_req = f->held_res = NULL;
    f->held_id = 0;
    return h ? h : JSValueMakeUndefined(ctx);
}

/* result(value, msg, kind): a Promise settled. kind 0: the body's. */
NATIVE(n_result)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    if (JSValueToNumber(ctx, ARG(2), NULL) == 1) {
        f->state = RESOLVED;
        start_queue(f);
        return JSValueMakeUndefined(ctx);
    }
    JSValueRef msg = ARG(1);
    JSValueRef id = JSValueIsObject(ctx, msg) ? crm_js_get(ctx, (JSObjectRef)msg, "_msgid") : NULL;
    send_results(f, ARG(0), id);
    if (f->handle_done && crm_node_watched(f->n)) {
        json_t *m = crm_js_to_json(f->js, msg);
        if (m) crm_node_done(f->n, m);
        json_decref(m);
    }
    return JSValueMakeUndefined(ctx);
}

/* fail(err, msg, kind) */
NATIVE(n_fail)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    if (JSValueToNumber(ctx, ARG(2), NULL) == 1) {
        f->state = FAILED;
        json_decref(f->queue);
        f->queue = NULL;
        report(f, ARG(0), NULL);
        return JSValueMakeUndefined(ctx);
    }
    body_failed(f, ARG(0), ARG(1));
    return JSValueMakeUndefined(ctx);
}

static crm_scope scope_of(JSContextRef ctx, JSValueRef v)
{
    int s = (int)JSValueToNumber(ctx, v, NULL);
    return s == 1 ? CRM_SCOPE_FLOW : s == 2 ? CRM_SCOPE_GLOBAL : CRM_SCOPE_NODE;
}

/* The context key with its store: "#:(store)::key". */
static char *store_key(JSContextRef ctx, JSValueRef key, JSValueRef store)
{
    char *k = utf8(ctx, key);
    if (!store || JSValueIsUndefined(ctx, store) || JSValueIsNull(ctx, store)) return k;
    char *s = utf8(ctx, store), *r = NULL;
    if (asprintf(&r, "#:(%s)::%s", s, k) < 0) r = NULL;
    free(s);
    free(k);
    return r;
}

/* ctxGet(scope, key, store) */
NATIVE(n_ctx_get)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    char *key = store_key(ctx, ARG(1), ARG(2));
    json_t *v = key ? crm_context_get(f->n, scope_of(ctx, ARG(0)), key) : NULL;
    free(key);
    JSValueRef r = crm_js_from_json(f->js, v);
    json_decref(v);
    return r;
}

/* ctxToken(scope, key, store): which stored value the key holds now. */
NATIVE(n_ctx_token)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    char *key = store_key(ctx, ARG(1), ARG(2));
    json_t *v = key ? crm_context_get(f->n, scope_of(ctx, ARG(0)), key) : NULL;
    free(key);
    double tok = (double)(uintptr_t)v;
    json_decref(v);
    return JSValueMakeNumber(ctx, tok);
}

/* ctxSet(scope, key, value, store): the token of the stored value. */
NATIVE(n_ctx_set)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    char *key = store_key(ctx, ARG(1), ARG(3));
    JSValueRef val = ARG(2);
    /* a function (Node-RED's memory store keeps it by reference): kept in
     * the loop's engine, a handle stored */
    json_t *v = JSValueIsObject(ctx, val) && JSObjectIsFunction(ctx, (JSObjectRef)val) ? crm_js_keep(f->js, val)
                                                                                      : crm_js_to_json(f->js, val);
    double tok = (double)(uintptr_t)v;
    if (key) crm_context_set(f->n, scope_of(ctx, ARG(0)), key, v);
    else json_decref(v);
    free(key);
    return JSValueMakeNumber(ctx, tok);
}

/* ctxKeys(scope, store) */
NATIVE(n_ctx_keys)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    JSValueRef st = ARG(1);
    char *store = JSValueIsUndefined(ctx, st) || JSValueIsNull(ctx, st) ? NULL : utf8(ctx, st);
    json_t *keys = crm_context_keys(f->n, scope_of(ctx, ARG(0)), store);
    free(store);
    JSValueRef r = crm_js_from_json(f->js, keys);
    json_decref(keys);
    return r;
}

/* env(name) */
NATIVE(n_env)
{
    UNUSED_ARGS;
    fn *f = SELF;
    if (!f) return JSValueMakeUndefined(ctx); /* its node closed */
    char *name = utf8(ctx, ARG(0));
    json_t *v = crm_node_env(f->n, name);
    free(name);
    JSValueRef r = crm_js_from_json(f->js, v);
    json_decref(v);
    return r;
}

/* Running code -------------------------------------------------------------------------------- */

static void flush(fn *f)
{
    if (!f->uses_context || !f->flush) return;
    JSValueRef exc = NULL;
    crm_js_call(f->js, f->flush, 0, NULL, &exc);
}

static void settle(fn *f, JSValueRef p, JSValueRef msg, int kind)
{
    JSValueRef args[3] = {p, msg, JSValueMakeNumber(f->ctx, kind)};
    JSValueRef exc = NULL;
    crm_js_call(f->js, f->settle, 3, args, &exc);
}

/* A hand-over: the message waits in function.js's inbox[slot]. */
/* After the body ran (not timed out): its error to catch nodes with the
 * message as the code left it, or its result sent on. */
static void finish_run(fn *f, JSValueRef r, JSValueRef exc)
{
    if (!r || exc) {
        body_failed(f, exc, crm_js_get(f->ctx, f->last, "msg"));
        flush(f);
        return;
    }
    dispatch(f, r, NULL);
}

static void run_carrier(fn *f, json_t *carrier, long slot)
{
    JSContextRef ctx = f->ctx;
    json_decref(f->slots[slot]);
    f->slots[slot] = NULL;
    JSValueRef args[5] = {f->body, JSValueMakeNumber(ctx, (double)slot), JSValueMakeBoolean(ctx, false),
                          JSValueMakeBoolean(ctx, f->handle_done && crm_node_watched(f->n)), JSValueMakeUndefined(ctx)};
    JSValueRef exc = NULL;
    JSValueRef r = JSObjectCallAsFunction(ctx, f->drive, NULL, 5, args, &exc);
    if (crm_js_timed_out(f->js)) {
        /* the message the code ran on, read without running JavaScript */
        json_t *jm = crm_js_to_json(f->js, crm_js_get(ctx, f->last, "msg"));
        report_timeout(f, jm ? jm : carrier);
        json_decref(jm);
        json_decref(carrier);
        return;
    }
    json_decref(carrier);
    finish_run(f, r, exc);
}

static void run_inside(crm_js *js, void *arg)
{
    fn *f = crm_js_user(js);
    json_t *msg = arg;
    JSContextRef ctx = f->ctx;
    long slot = carrier_slot(f, msg);
    if (slot >= 0) {
        run_carrier(f, msg, slot);
        return;
    }
    /* msg.req and msg.res stay behind (see "msg.req") */
    json_t *req = json_object_get(msg, "req"), *res = json_object_get(msg, "res");
    if (!(json_is_object(req) && !crm_is_buf(req) && !crm_is_handle(req))) req = NULL;
    if (!(crm_is_handle(res) && crm_handle_id(res) >= 0)) res = NULL;
    JSValueRef holder = JSValueMakeUndefined(ctx);
    int has = (req ? 1 : 0) | (res ? 2 : 0);
    bool by_number = false;
    if (has) {
        if (msg->refcount > 1) { /* shared: a copy of our own to take them out of */
            json_t *own = json_copy(msg);
            json_decref(msg);
            msg = own;
        }
        json_incref(req);
        json_incref(res);
        if (req) json_object_del(msg, "req");
        if (res) json_object_del(msg, "res");
        if (f->msg_stays && !f->held_id && crm_js_at_message_boundary(f->js)) {
            f->held_id = ++f->held_next;
            f->held_req = req;
            f->held_res = res;
            holder = JSValueMakeNumber(ctx, f->held_id);
            by_number = true;
            if (f->msg_blind) has |= 4;
        } else {
            JSObjectRef h = holder_make(f, req, res);
            if (h) holder = h;
            else has = 0;
        }
    }
    size_t len;
    bool special;
    char *text = crm_js_json_text(msg, &len, &special);
    JSStringRef jtext = crm_js_jsstr_z(text, len);
    JSValueRef args[6] = {f->body, JSValueMakeString(ctx, jtext), JSValueMakeBoolean(ctx, special),
                          JSValueMakeBoolean(ctx, f->handle_done && crm_node_watched(f->n)), holder,
                          JSValueMakeNumber(ctx, has)};
    JSStringRelease(jtext);
    free(text);
    JSValueRef exc = NULL;
    JSValueRef r = JSObjectCallAsFunction(ctx, f->drive, NULL, 6, args, &exc);
    if (crm_js_timed_out(f->js)) {
        /* the message as it came, with its request and response */
        if (req) json_object_set_nocheck(msg, "req", req);
        if (res) json_object_set_nocheck(msg, "res", res);
        report_timeout(f, msg);
        json_decref(msg);
    } else {
        json_decref(msg);
        finish_run(f, r, exc);
    }
    if (by_number && f->held_id) {
        /* the results are sent from a microtask: run it, then nothing can
         * read what the number holds any more */
        crm_js_drain_message(f->js);
        held_release(f);
    }
}

static void run(fn *f, json_t *msg)
{
    crm_js_run_input(f->js, run_inside, msg);
}

static void start_queue(fn *f)
{
    json_t *q = f->queue;
    f->queue = NULL;
    size_t i;
    json_t *msg;
    json_array_foreach(q, i, msg) run(f, json_incref(msg));
    json_decref(q);
}

static void on_timer_error(crm_js *js, JSValueRef exc)
{
    fn *f = crm_js_user(js);
    json_t *empty = json_object();
    if (crm_js_timed_out(js)) {
        report_timeout(f, empty);
        json_decref(empty);
        return;
    }
    fix_error(f, exc, false);
    report(f, exc, empty);
    json_decref(empty);
    flush(f);
}

/* Compiling ------------------------------------------------------------------------------------- */

#define NODE_OBJ                                                                                              \
    "var node={id:__node__.id,name:__node__.name,path:__node__.path,outputCount:__node__.outputCount,"      \
    "log:__node__.log,error:__node__.error,warn:__node__.warn,debug:__node__.debug,trace:__node__.trace,"   \
    "status:__node__.status,"

/* Compiles "(function(__node__){return <head>\n<code>\n}})" and returns the
 * inner function (protected), or NULL with *err "SyntaxError: ... (kind:line N)". */
static JSObjectRef compile(fn *f, JSObjectRef natives, const char *head, const char *code, const char *kind,
                           char **err)
{
    char *src = NULL;
    if (asprintf(&src, "(function(__node__){return %s\n%s\n}})", head, code) < 0) return NULL;
    char url[300];
    snprintf(url, sizeof url, "Function node%s:%s", !strcmp(kind, "body") ? "" : !strcmp(kind, "setup") ? " setup" : " cleanup",
             crm_node_id(f->n));
    JSValueRef exc = NULL;
    JSValueRef outer = crm_js_eval(f->js, src, url, 1, &exc);
    free(src);
    JSValueRef inner = NULL;
    if (outer && !exc && JSValueIsObject(f->ctx, outer)) {
        JSValueRef arg = natives;
        inner = crm_js_call(f->js, (JSObjectRef)outer, 1, &arg, &exc);
    }
    if (!inner || exc || !JSValueIsObject(f->ctx, inner)) {
        char *text = exc ? utf8(f->ctx, exc) : strdup("the code did not compile");
        JSValueRef lv = exc && JSValueIsObject(f->ctx, exc) ? crm_js_get(f->ctx, (JSObjectRef)exc, "line") : NULL;
        int rc;
        if (lv && JSValueIsNumber(f->ctx, lv))
            rc = asprintf(err, "%s (%s:line %d)", text, kind, (int)JSValueToNumber(f->ctx, lv, NULL) - 1);
        else
            rc = asprintf(err, "%s", text);
        if (rc < 0) *err = NULL;
        free(text);
        return NULL;
    }
    JSValueProtect(f->ctx, inner);
    return (JSObjectRef)inner;
}

/* Node-RED calls done() itself after the function unless the code calls
 * node.done() (a call, not a mention in a comment or a string). */
static bool calls_done(const char *code)
{
    regex_t re;
    if (regcomp(&re, "node\\.done[[:space:]]*\\([[:space:]]*\\)", REG_EXTENDED | REG_NOSUB)) return false;
    bool mention = regexec(&re, code, 0, NULL, 0) == 0;
    regfree(&re);
    if (!mention) return false;
    /* strip comments and string literals, then look for a call */
    size_t n = strlen(code);
    char *s = malloc(n + 1), *o = s;
    for (size_t i = 0; i < n; i++) {
        char c = code[i];
        if (c == '/' && code[i + 1] == '/') {
            while (i < n && code[i] != '\n') i++;
            *o++ = '\n';
        } else if (c == '/' && code[i + 1] == '*') {
            i += 2;
            while (i < n && !(code[i] == '*' && code[i + 1] == '/')) i++;
            i++;
            *o++ = ' ';
        } else if (c == '"' || c == '\'' || c == '`') {
            i++;
            while (i < n && code[i] != c) i += code[i] == '\\' ? 2 : 1;
            *o++ = '0';
        } else {
            *o++ = c;
        }
    }
    *o = 0;
    bool call = false;
    if (!regcomp(&re, "(^|[^A-Za-z0-9_$.])node[[:space:]]*\\.[[:space:]]*done[[:space:]]*\\(", REG_EXTENDED | REG_NOSUB)) {
        call = regexec(&re, s, 0, NULL, 0) == 0;
        regfree(&re);
    }
    free(s);
    return call;
}

/* Whether code (a function node's body) cannot keep msg past its run:
 * no closure (function, =>, a method, class), no await or yield, no eval,
 * arguments or with, node only used as node.x (node.send and node.done,
 * which keep msg, only called), and msg only as msg.x or
 * msg[x], returned (return msg) or sent (node.send(msg)). Then nothing can
 * read msg once its run and microtasks are over, and what msg.req and
 * msg.res stand for is released then (see "msg.req"). Comments and strings
 * are skipped; a template with ${...}, or a text the scan cannot follow,
 * answers false (the collected holder, as before). */
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80; }

/* code[b..e) is a word of a return statement that returns it, or an array
 * of it and nulls: return msg; return [msg, null]; return [[msg], null] */
static bool returned_at(const char *code, size_t b, size_t e)
{
    size_t k = b;
    for (;;) {
        while (k > 0 && (isspace((unsigned char)code[k - 1]) || code[k - 1] == '[' || code[k - 1] == ',')) k--;
        if (k >= 4 && !memcmp(code + k - 4, "null", 4) && (k == 4 || !ident_char(code[k - 5]))) {
            k -= 4;
            continue;
        }
        break;
    }
    if (k < 6 || memcmp(code + k - 6, "return", 6) || (k > 6 && ident_char(code[k - 7])) || k == b) return false;
    for (;;) {
        while (code[e] && (isspace((unsigned char)code[e]) || code[e] == ']' || code[e] == ',')) e++;
        if (!strncmp(code + e, "null", 4) && !ident_char(code[e + 4])) {
            e += 4;
            continue;
        }
        break;
    }
    return !code[e] || code[e] == ';' || code[e] == '}';
}

static bool msg_stays_in_run(const char *code, bool *touches)
{
    *touches = false;
    static const char *const refused[] = {"function", "class", "await", "yield", "async", "eval", "arguments",
                                          "with", "Function", "import", "this", "__msg__", "__node__"};
    static const char *const blocks[] = {"if", "for", "while", "switch", "catch", "with"};
    enum { DEPTH = 64 };
    char opener[DEPTH][16]; /* the word before each open parenthesis */
    int depth = 0;
    char prev_word[16] = "";  /* the last word, when it is the last token */
    char last = 0;            /* the last significant character of code */
    size_t n = strlen(code);
    for (size_t i = 0; i < n;) {
        char c = code[i];
        if (isspace((unsigned char)c)) { i++; continue; }
        if (c == '/' && code[i + 1] == '/') {
            while (i < n && code[i] != '\n') i++;
            continue;
        }
        if (c == '/' && code[i + 1] == '*') {
            const char *e = strstr(code + i + 2, "*/");
            if (!e) return false;
            i = (size_t)(e - code) + 2;
            continue;
        }
        if (c == '"' || c == '\'' || c == '`') {
            for (i++; i < n && code[i] != c; i++) {
                if (code[i] == '\\') i++;
                else if (c == '`' && code[i] == '$' && code[i + 1] == '{') return false;
            }
            if (i >= n) return false;
            i++;
            last = '0';
            prev_word[0] = 0;
            continue;
        }
        if (c == '/' && (!last || strchr("(,=:[!&|?{};+-*%<>~^", last) || !strcmp(prev_word, "return") ||
                         !strcmp(prev_word, "typeof"))) { /* a regular expression */
            bool cls = false;
            for (i++; i < n && (cls || code[i] != '/'); i++) {
                if (code[i] == '\\') i++;
                else if (code[i] == '[') cls = true;
                else if (code[i] == ']') cls = false;
                else if (code[i] == '\n') return false;
            }
            if (i >= n) return false;
            for (i++; i < n && ident_char(code[i]); i++) {}
            last = '0';
            prev_word[0] = 0;
            continue;
        }
        if (ident_char(c)) {
            size_t b = i;
            while (i < n && ident_char(code[i])) i++;
            size_t len = i - b;
            if (isdigit((unsigned char)c)) { last = '0'; prev_word[0] = 0; continue; }
            bool member = b > 0 && code[b - 1] == '.' && !(b > 2 && code[b - 2] == '.' && code[b - 3] == '.');
            /* the previous token was a dot: look back past spaces */
            size_t k = b;
            while (k > 0 && isspace((unsigned char)code[k - 1])) k--;
            if (k > 0 && code[k - 1] == '.' && !(k > 2 && code[k - 2] == '.' && code[k - 3] == '.')) member = true;
            if (!member) {
                for (size_t r = 0; r < sizeof refused / sizeof *refused; r++)
                    if (strlen(refused[r]) == len && !memcmp(code + b, refused[r], len)) return false;
                size_t j = i;
                while (j < n && isspace((unsigned char)code[j])) j++;
                char next = code[j];
                bool access = next == '.' || next == '[';
                if (len == 3 && !memcmp(code + b, "msg", 3) && access) {
                    /* msg[...], msg.req, msg.res: what the message holds is read */
                    size_t w = j + 1;
                    while (w < n && isspace((unsigned char)code[w])) w++;
                    if (next == '[' || ((!strncmp(code + w, "req", 3) || !strncmp(code + w, "res", 3)) &&
                                        !ident_char(code[w + 3])))
                        *touches = true;
                }
                if (len == 4 && !memcmp(code + b, "node", 4)) {
                    if (!access) return false;
                    /* node.done and node.send keep msg: called, never taken */
                    size_t w = j + 1;
                    while (w < n && isspace((unsigned char)code[w])) w++;
                    if (!strncmp(code + w, "done", 4) || !strncmp(code + w, "send", 4)) {
                        w += 4;
                        while (w < n && isspace((unsigned char)code[w])) w++;
                        if (code[w] != '(') return false;
                    }
                }
                if (len == 3 && !memcmp(code + b, "msg", 3) && !access) {
                    bool returned = returned_at(code, b, i);
                    bool sent = next == ')' && k >= 10 && code[k - 1] == '(' && b == k &&
                                !memcmp(code + k - 10, "node.send(", 10) && (k == 10 || !ident_char(code[k - 11]));
                    if (!returned && !sent) return false;
                }
            }
            if (len < sizeof prev_word) {
                memcpy(prev_word, code + b, len);
                prev_word[len] = 0;
            } else {
                prev_word[0] = 0;
            }
            last = 'a';
            continue;
        }
        if (c == '=' && code[i + 1] == '>') return false;
        if (c == '(') {
            if (depth >= DEPTH) return false;
            snprintf(opener[depth++], sizeof opener[0], "%s", last == 'a' ? prev_word : "");
        } else if (c == ')') {
            if (!depth) return false;
            const char *w = opener[--depth];
            size_t j = i + 1;
            while (j < n && isspace((unsigned char)code[j])) j++;
            if (code[j] == '{') { /* a block after if (...), or a method's body */
                bool block = false;
                for (size_t r = 0; r < sizeof blocks / sizeof *blocks; r++) block |= !strcmp(w, blocks[r]);
                if (!block) return false;
            }
        }
        last = c;
        prev_word[0] = 0;
        i++;
    }
    return true;
}

static bool uses_await(const char *code)
{
    for (const char *p = strstr(code, "await"); p; p = strstr(p + 1, "await")) {
        bool before = p == code || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '$');
        bool after = !(isalnum((unsigned char)p[5]) || p[5] == '_' || p[5] == '$');
        if (before && after) return true;
    }
    return false;
}

static void fn_free(fn *f)
{
    if (!f) return;
    if (f->js) {
        JSObjectRef keep[] = {f->body, f->fin, f->setup, f->helpers, f->promise_ctor};
        for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
            if (keep[i]) JSValueUnprotect(f->ctx, keep[i]);
        if (f->req_sym) JSValueUnprotect(f->ctx, f->req_sym);
        crm_js_free(f->js);
    }
    for (size_t i = 0; i < f->nslots; i++) json_decref(f->slots[i]);
    free(f->slots);
    held_release(f);
    json_decref(f->queue);
    free(f->broken_text);
    free(f);
}

static void refuse(fn *f, crm_node *n, const char *text)
{
    if (crm_node_checking(n)) {
        crm_node_config_error(n, NULL, "%s", text);
        return;
    }
    f->broken = true;
    f->broken_text = strdup(text);
}

static int fn_create(crm_node *n, const json_t *cfg)
{
    json_t *libs = json_object_get(cfg, "libs");
    if (json_is_array(libs) && json_array_size(libs) > 0) {
        json_t *lib = json_array_get(libs, 0);
        const char *mod = crm_cfg_str(lib, "module", "?");
        crm_node_config_error(n, "libs",
                              "uses the npm module \"%s\": a function node with external modules runs in the "
                              "companion (docs/companion.md), not natively",
                              mod);
        return -1;
    }
    fn *f = calloc(1, sizeof *f);
    f->n = n;
    crm_node_set_data(n, f);
    char *err = NULL;
    f->js = crm_js_new(n, f, &err);
    if (!f->js) {
        crm_node_config_error(n, NULL, "%s", err ? err : "JavaScript is not available");
        free(err);
        fn_free(f);
        crm_node_set_data(n, NULL);
        return -1;
    }
    f->ctx = crm_js_ctx(f->js);
    JSContextRef ctx = f->ctx;
    double t = crm_cfg_num(cfg, "timeout", 0) * 1000;
    if (!(t > 0)) {
        double g = crm_cfg_num(crm_node_settings(n), "globalFunctionTimeout", 0) * 1000;
        t = g > 0 ? g : 0;
    }
    f->timeout_ms = t;
    crm_js_set_timeout(f->js, t);
    crm_js_on_error(f->js, on_timer_error);

    JSObjectRef natives = JSObjectMake(ctx, NULL, NULL);
    crm_js_set(ctx, natives, "id", crm_js_str(ctx, crm_node_id(n), strlen(crm_node_id(n))));
    const char *name = crm_cfg_str(cfg, "name", NULL);
    crm_js_set(ctx, natives, "name", name ? crm_js_str(ctx, name, strlen(name)) : JSValueMakeUndefined(ctx));
    crm_js_set(ctx, natives, "path", crm_js_str(ctx, crm_node_id(n), strlen(crm_node_id(n))));
    json_t *outs = json_object_get(cfg, "outputs");
    crm_js_set(ctx, natives, "outputCount",
               outs ? crm_js_from_json(f->js, outs) : JSValueMakeNumber(ctx, crm_node_outputs(n)));
    crm_js_set_fn(ctx, natives, "send", n_send);
    crm_js_set_fn(ctx, natives, "done", n_done);
    crm_js_set_fn(ctx, natives, "log", n_log);
    crm_js_set_fn(ctx, natives, "warn", n_warn);
    crm_js_set_fn(ctx, natives, "debug", n_debug);
    crm_js_set_fn(ctx, natives, "trace", n_trace);
    crm_js_set_fn(ctx, natives, "error", n_error);
    crm_js_set_fn(ctx, natives, "status", n_status);
    crm_js_set_fn(ctx, natives, "result", n_result);
    crm_js_set_fn(ctx, natives, "out", n_out);
    crm_js_set_fn(ctx, natives, "req", n_req);
    crm_js_set_fn(ctx, natives, "hold", n_hold);
    crm_js_set_fn(ctx, natives, "pass", n_pass);
    crm_js_set_fn(ctx, natives, "fail", n_fail);
    crm_js_set_fn(ctx, natives, "ctxGet", n_ctx_get);
    crm_js_set_fn(ctx, natives, "ctxSet", n_ctx_set);
    crm_js_set_fn(ctx, natives, "ctxToken", n_ctx_token);
    crm_js_set_fn(ctx, natives, "ctxKeys", n_ctx_keys);
    crm_js_set_fn(ctx, natives, "env", n_env);
    crm_js_set(ctx, natives, "toJSON", crm_js_prelude_fn(f->js, "toJSON"));
    crm_js_set(ctx, natives, "fromJSON", crm_js_prelude_fn(f->js, "fromJSON"));

    JSValueRef exc = NULL;
    JSValueRef mk = crm_js_eval_static(f->js, crm_js_function, "function.js", &exc);
    JSValueRef helpers = NULL;
    if (mk && !exc && JSValueIsObject(ctx, mk)) {
        JSValueRef arg = natives;
        helpers = crm_js_call(f->js, (JSObjectRef)mk, 1, &arg, &exc);
    }
    if (!helpers || exc || !JSValueIsObject(ctx, helpers)) {
        char *text = exc ? utf8(ctx, exc) : strdup("?");
        crm_node_config_error(n, NULL, "function.js failed: %s", text);
        free(text);
        return -1;
    }
    f->helpers = (JSObjectRef)helpers;
    JSValueProtect(ctx, helpers);
    f->flush = (JSObjectRef)crm_js_get(ctx, f->helpers, "flush");
    f->settle = (JSObjectRef)crm_js_get(ctx, f->helpers, "settle");
    f->close_fn = (JSObjectRef)crm_js_get(ctx, f->helpers, "close");
    f->drive = (JSObjectRef)crm_js_get(ctx, f->helpers, "drive");
    f->send_text = (JSObjectRef)crm_js_get(ctx, f->helpers, "sendText");
    f->last = (JSObjectRef)crm_js_get(ctx, f->helpers, "last");
    f->adopt = (JSObjectRef)crm_js_get(ctx, f->helpers, "adopt");
    f->req_sym = crm_js_get(ctx, f->helpers, "REQ");
    if (f->req_sym) JSValueProtect(ctx, f->req_sym);
    f->promise_ctor = (JSObjectRef)crm_js_get(ctx, f->helpers, "Promise");
    JSValueProtect(ctx, f->promise_ctor);
    crm_js_set(ctx, natives, "on", crm_js_get(ctx, f->helpers, "on"));

    const char *func = crm_cfg_str(cfg, "func", "");
    f->uses_context = strstr(func, "context") || strstr(func, "flow") || strstr(func, "global");
    f->handle_done = !calls_done(func);
    bool touches = true;
    f->msg_stays = msg_stays_in_run(func, &touches);
    f->msg_blind = f->msg_stays && !touches;
    char *head = NULL;
    if (asprintf(&head,
                 "%sfunction(msg){var __msgid__=msg._msgid,__msg__=msg;" NODE_OBJ "on:__node__.on,"
                 "send:function(msgs,cloneMsg){__node__.send(__msgid__,msgs,cloneMsg);},"
                 "done:function(err){__node__.done(__msg__,err);}};",
                 uses_await(func) ? "async " : "") < 0)
        head = NULL;
    err = NULL;
    f->body = compile(f, natives, head, func, "body", &err);
    free(head);
    if (!f->body) {
        refuse(f, n, err ? err : "SyntaxError");
        free(err);
        return f->broken ? 0 : -1;
    }
    const char *ini = crm_cfg_str(cfg, "initialize", "");
    while (isspace((unsigned char)*ini)) ini++;
    if (*ini) {
        /* compiled here for its syntax check; run at start */
        JSObjectRef setup = compile(f, natives,
                                    "async function(){" NODE_OBJ
                                    "send:function(msgs,cloneMsg){__node__.send(RED.util.generateId(),msgs,cloneMsg);}};",
                                    ini, "setup", &err);
        if (!setup) {
            refuse(f, n, err ? err : "SyntaxError");
            free(err);
            return f->broken ? 0 : -1;
        }
        f->setup = setup;
        f->state = RESOLVING;
        f->queue = json_array();
    } else {
        f->state = RESOLVED;
    }
    const char *fin = crm_cfg_str(cfg, "finalize", "");
    while (isspace((unsigned char)*fin)) fin++;
    if (*fin) {
        f->fin = compile(f, natives,
                         "function(){" NODE_OBJ "send:function(){__node__.error(\"Cannot send from close function\");}};",
                         fin, "cleanup", &err);
        if (!f->fin) {
            refuse(f, n, err ? err : "SyntaxError");
            free(err);
            return f->broken ? 0 : -1;
        }
    }
    return 0;
}

static void start_inside(crm_js *js, void *arg)
{
    (void)arg;
    fn *f = crm_js_user(js);
    JSValueRef exc = NULL;
    JSValueRef p = crm_js_call(f->js, f->setup, 0, NULL, &exc);
    if (!p || exc) {
        f->state = FAILED;
        json_decref(f->queue);
        f->queue = NULL;
        if (crm_js_timed_out(f->js)) report_timeout(f, NULL);
        else report(f, exc, NULL);
    } else {
        settle(f, p, JSValueMakeUndefined(f->ctx), 1);
    }
    flush(f);
}

static void fn_start(crm_node *n)
{
    fn *f = crm_node_data(n);
    if (!f) return;
    if (f->broken) {
        crm_node_error(n, NULL, "%s", f->broken_text);
        return;
    }
    if (f->setup) crm_js_run(f->js, start_inside, NULL);
}

static void fn_input(crm_node *n, json_t *msg)
{
    fn *f = crm_node_data(n);
    if (!f || f->broken || f->state == FAILED) {
        json_decref(msg);
        return;
    }
    if (f->state == RESOLVING) {
        json_array_append_new(f->queue, msg);
        return;
    }
    run(f, msg);
}

static void close_inside(crm_js *js, void *arg)
{
    (void)arg;
    fn *f = crm_js_user(js);
    crm_node *n = f->n;
    {
        JSValueRef exc = NULL;
        if (f->fin) {
            crm_js_call(f->js, f->fin, 0, NULL, &exc);
            if (crm_js_timed_out(f->js)) report_timeout(f, NULL);
            else if (exc) report(f, exc, NULL);
        }
        exc = NULL;
        if (f->close_fn) crm_js_call(f->js, f->close_fn, 0, NULL, &exc);
        if (f->clear_status) crm_node_status(n, NULL, NULL, NULL);
    }
}

static void fn_close(crm_node *n)
{
    fn *f = crm_node_data(n);
    if (!f) return;
    if (f->js && !f->broken) crm_js_run(f->js, close_inside, NULL);
    fn_free(f);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_function = {
    .abi = CRM_ABI_VERSION,
    .type = "function",
    .create = fn_create,
    .start = fn_start,
    .input = fn_input,
    .close = fn_close,
    .flags = CRM_TYPE_KEEPS_NAME,
};
