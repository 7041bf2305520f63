/* sandbox.c: a node's JavaScript sandbox (js.h): the context group of each
 * loop, the watchdog, the prelude's globals, timers on the node's loop.
 *
 * Context groups: a JSContextGroup is a JavaScriptCore VM with its own heap
 * and lock. Each loop thread gets one, shared by the sandboxes of the nodes
 * that run on it, released with its last sandbox. Nothing here holds a lock
 * while JavaScript runs, so a busy sandbox stops only its own loop (its
 * tab); the watchdog (JSContextGroupSetExecutionTimeLimit, a private but
 * exported symbol) stops code that runs past the node's timeout or, without
 * one, past CRM_JS_WATCHDOG_MS, or once the flows are stopping and it has
 * run CRM_JS_STOP_MS (so a stop or a deploy never waits for a loop that
 * does not end). Its cost on every entry into the VM, a read of the
 * thread's CPU clock, is a read of the monotonic clock (the vDSO, no system
 * call: load.c points the library's clock_gettime there for that clock),
 * and is paid once for a run of messages (crm_js_run_input).
 */
#include <ctype.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "js.h"
#include "strbuf.h"

extern const char crm_js_prelude[];

typedef struct group {
    struct group *next;
    crm_loop *loop;
    JSContextGroupRef g;
    int refs;
    double limit_ms;   /* the watchdog limit last set on g (-1: to be set) */
    double started;    /* when the running call began (crm_now_ms) */
    pthread_t armed_by; /* the thread that set limit_ms */
    crm_js *running;   /* the sandbox whose call is under way */
    int depth;         /* trampolines under way (1: the VM entry of a message) */
    unsigned long inputs; /* messages run (crm_js_run_input) */
    unsigned long inputs_seen; /* ... when the idle timer was armed */
    crm_timer *idle;   /* the idle check, armed on idle_owner's node */
    crm_js *idle_owner;
    bool terminated;   /* the watchdog stopped a call in the current VM entry */
    bool batching;     /* the outer trampoline runs the loop's next deliveries */
    bool quiet;        /* compacted, no message since (read by other loops: atomics) */
    void *scripts[CRM_JS_STATIC_MAX]; /* crm_js_eval_static's, by slot (atomics) */
    const char *script_src[CRM_JS_STATIC_MAX];
    JSValueRef *kept;  /* values kept for the context (crm_js_keep), protected */
    long long *kept_ids;
    size_t nkept;
} group;

typedef struct jtimer {
    struct jtimer *next;
    crm_js *s;
    double id;
    JSObjectRef fn;
    JSValueRef args[8];
    size_t nargs;
    crm_timer *t;
    bool repeat;
} jtimer;

struct crm_js {
    crm_node *node;
    void *user;
    group *grp;
    JSGlobalContextRef ctx;
    JSObjectRef buffer_proto; /* Buffer.prototype, protected */
    double timeout_ms;        /* 0: the default watchdog */
    double stopped_ms;
    bool timed_out;
    jtimer *timers;
    double next_timer_id;
    void (*on_error)(crm_js *s, JSValueRef exc);
    JSObjectRef trampoline;   /* native: runs tr_fn inside the VM, protected */
    JSObjectRef tojson, fromjson; /* the prelude's, protected */
    void (*tr_fn)(crm_js *s, void *arg);
    void *tr_arg;
    bool tr_batch;            /* run the loop's next deliveries in the same entry */
};

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static group *groups;
static JSClassRef handle_class;

/* Groups ------------------------------------------------------------------- */

/* JSScriptRef (JSScriptRefPrivate.h, exported, not installed): a script
 * whose source is a static ASCII text the engine references without a copy,
 * evaluated in each sandbox of a group with one source shared by all. */
typedef struct OpaqueJSScript *JSScriptRef;
static JSScriptRef (*script_create)(JSContextGroupRef g, JSStringRef url, int line, const char *src, size_t len,
                                    JSStringRef *err, int *err_line);
static JSValueRef (*script_eval)(JSContextRef ctx, JSScriptRef script, JSValueRef self, JSValueRef *exc);
static void (*script_release)(JSScriptRef script);

static group *group_get(crm_loop *loop)
{
    pthread_mutex_lock(&groups_lock);
    if (!handle_class) {
        JSClassDefinition h;
        memset(&h, 0, sizeof h);
        h.className = "Handle";
        handle_class = JSClassCreate(&h);
    }
    group *g;
    for (g = groups; g && g->loop != loop; g = g->next) {}
    if (!g) {
        g = calloc(1, sizeof *g);
        g->loop = loop;
        g->g = JSContextGroupCreate();
        g->quiet = true;
        g->next = groups;
        groups = g;
    }
    g->refs++;
    pthread_mutex_unlock(&groups_lock);
    return g;
}

static void group_put(group *g)
{
    pthread_mutex_lock(&groups_lock);
    if (--g->refs == 0) {
        group **pp = &groups;
        while (*pp != g) pp = &(*pp)->next;
        *pp = g->next;
        for (int i = 0; i < CRM_JS_STATIC_MAX; i++)
            if (g->scripts[i]) script_release(g->scripts[i]);
        JSContextGroupRelease(g->g); /* the kept values go with the heap */
        free(g->kept);
        free(g->kept_ids);
        free(g);
    }
    pthread_mutex_unlock(&groups_lock);
}

/* JavaScriptCore's watchdog counts the thread's CPU time (the monotonic
 * clock where load.c could redirect its reads) and asks the callback each
 * time a tick of it has passed; Node's vm timeout is wall time, so the
 * ticks are short and the callback compares the wall clock. Counted in CPU
 * time, on a busy machine, a tick of 100 ms is a second or more of wall
 * time. */
#define TICK_MS 100.0
static bool should_terminate(JSContextRef ctx, void *arg)
{
    (void)ctx;
    group *g = arg;
    crm_js *s = g->running;
    if (!s) return false;
    double limit = s->timeout_ms > 0 ? s->timeout_ms : CRM_JS_WATCHDOG_MS;
    double ran = crm_now_ms() - g->started;
    double left = limit - ran;
    /* the flows are stopping (a deploy, a stop): a call that has run a
     * second by now is not going to end soon; the stop waits for it */
    if (ran >= CRM_JS_STOP_MS && __atomic_load_n(&s->node->rt->stopping, __ATOMIC_ACQUIRE)) {
        limit = ran;
        left = 0;
    }
    if (left > 1) {
        /* early (the watchdog ran ahead of the wall clock): wait for the
         * rest; setting the limit again from here restarts the timer */
        JSContextGroupSetExecutionTimeLimit(g->g, (left < TICK_MS ? left : TICK_MS) / 1000.0, should_terminate, g);
        g->limit_ms = -1;
        return false;
    }
    s->timed_out = true;
    s->stopped_ms = limit;
    g->limit_ms = -1; /* re-arm on the next call */
    g->terminated = true;
    return true;
}

/* Arms the group's watchdog for s before a call. */
static void enter(crm_js *s)
{
    double limit = s->timeout_ms > 0 ? s->timeout_ms : CRM_JS_WATCHDOG_MS;
    /* armed again when another thread enters (the loader compiles, the
     * loop runs): JavaScriptCore's watchdog does not follow the group */
    if (s->grp->limit_ms != limit || !pthread_equal(s->grp->armed_by, pthread_self())) {
        /* the engine counts CPU time: ticks of at most TICK_MS, the callback
         * compares the wall clock */
        JSContextGroupSetExecutionTimeLimit(s->grp->g, (limit < TICK_MS ? limit : TICK_MS) / 1000.0, should_terminate, s->grp);
        s->grp->limit_ms = limit;
        s->grp->armed_by = pthread_self();
    }
    s->timed_out = false;
    if (!s->grp->depth) s->grp->terminated = false;
    s->grp->running = s;
    s->grp->started = crm_now_ms();
}

/* Strings ------------------------------------------------------------------- */

JSStringRef crm_js_jsstr(const char *s, size_t len)
{
    if (!len) return JSStringCreateWithUTF8CString("");
    /* UTF-16 never has more units than UTF-8 has bytes */
    JSChar stackbuf[256] = {0}; /* zeroed: gcc cannot see every unit passed on is written */
    JSChar *u = len <= 256 ? stackbuf : calloc(len, sizeof *u);
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            u[n++] = (JSChar)c;
            p++;
            continue;
        }
        unsigned cp = 0xFFFD;
        int k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (k && (size_t)(end - p) > (size_t)k) {
            cp = c & (0x3F >> k);
            for (int i = 1; i <= k; i++) cp = (cp << 6) | (p[i] & 0x3F);
            p += k + 1;
        } else {
            p++;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            u[n++] = (JSChar)(0xD800 + (cp >> 10));
            u[n++] = (JSChar)(0xDC00 + (cp & 0x3FF));
        } else {
            u[n++] = (JSChar)cp;
        }
    }
    JSStringRef r = JSStringCreateWithCharacters(u, n);
    if (u != stackbuf) free(u);
    return r;
}

JSStringRef crm_js_jsstr_z(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80 || !s[i]) return crm_js_jsstr(s, len);
    return JSStringCreateWithUTF8CString(s);
}

char *crm_js_json_utf8(JSStringRef s, size_t *lenp)
{
    size_t max = JSStringGetMaximumUTF8CStringSize(s);
    char *out = malloc(max ? max : 1);
    size_t n = max ? JSStringGetUTF8CString(s, out, max) : 0; /* with the NUL */
    if (!n) out[0] = 0;
    if (lenp) *lenp = n ? n - 1 : 0;
    return out;
}

JSValueRef crm_js_str(JSContextRef ctx, const char *s, size_t len)
{
    JSStringRef j = crm_js_jsstr(s, len);
    JSValueRef v = JSValueMakeString(ctx, j);
    JSStringRelease(j);
    return v;
}

char *crm_js_jsstr_utf8(JSStringRef s, size_t *lenp)
{
    size_t n = JSStringGetLength(s);
    const JSChar *u = JSStringGetCharactersPtr(s);
    char *out = malloc(n * 3 + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
            c = 0x10000 + ((c - 0xD800) << 10) + (u[i + 1] - 0xDC00);
            i++;
        } else if (c >= 0xD800 && c <= 0xDFFF) {
            c = 0xFFFD;
        }
        if (c < 0x80) {
            *o++ = (char)c;
        } else if (c < 0x800) {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (char)(0xE0 | (c >> 12));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (c >> 18));
            *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *o = 0;
    if (lenp) *lenp = (size_t)(o - out);
    return out;
}

char *crm_js_to_utf8(JSContextRef ctx, JSValueRef v)
{
    JSValueRef exc = NULL;
    JSStringRef s = JSValueToStringCopy(ctx, v, &exc);
    if (!s) return NULL;
    char *r = crm_js_jsstr_utf8(s, NULL);
    JSStringRelease(s);
    return r;
}

JSValueRef crm_js_get(JSContextRef ctx, JSObjectRef o, const char *name)
{
    JSStringRef k = JSStringCreateWithUTF8CString(name);
    JSValueRef v = JSObjectGetProperty(ctx, o, k, NULL);
    JSStringRelease(k);
    return v;
}

void crm_js_set(JSContextRef ctx, JSObjectRef o, const char *name, JSValueRef v)
{
    JSStringRef k = JSStringCreateWithUTF8CString(name);
    JSObjectSetProperty(ctx, o, k, v, kJSPropertyAttributeNone, NULL);
    JSStringRelease(k);
}

void crm_js_set_fn(JSContextRef ctx, JSObjectRef o, const char *name, JSObjectCallAsFunctionCallback fn)
{
    JSStringRef k = JSStringCreateWithUTF8CString(name);
    JSObjectSetProperty(ctx, o, k, JSObjectMakeFunctionWithCallback(ctx, k, fn), kJSPropertyAttributeNone, NULL);
    JSStringRelease(k);
}

JSValueRef crm_js_throw(JSContextRef ctx, JSValueRef *exc, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&text, fmt, ap) < 0) text = NULL;
    va_end(ap);
    JSValueRef arg = crm_js_str(ctx, text ? text : "", text ? strlen(text) : 0);
    free(text);
    if (exc) *exc = JSObjectMakeError(ctx, 1, &arg, NULL);
    return JSValueMakeUndefined(ctx);
}

/* Values ------------------------------------------------------------------------ */

#define MAX_DEPTH 500

/* Buffer.prototype: the prelude builds Buffer on first use. */
static JSObjectRef buffer_proto(crm_js *s)
{
    if (!s->buffer_proto) {
        JSValueRef buffer = crm_js_get(s->ctx, JSContextGetGlobalObject(s->ctx), "Buffer");
        JSValueRef proto = buffer && JSValueIsObject(s->ctx, buffer) ? crm_js_get(s->ctx, (JSObjectRef)buffer, "prototype") : NULL;
        if (!proto || !JSValueIsObject(s->ctx, proto)) return NULL;
        s->buffer_proto = (JSObjectRef)proto;
        JSValueProtect(s->ctx, proto);
    }
    return s->buffer_proto;
}

static JSValueRef from_json(crm_js *s, const json_t *v, int depth)
{
    JSContextRef ctx = s->ctx;
    if (!v) return JSValueMakeUndefined(ctx);
    switch (json_typeof(v)) {
    case JSON_NULL: return JSValueMakeNull(ctx);
    case JSON_TRUE: return JSValueMakeBoolean(ctx, true);
    case JSON_FALSE: return JSValueMakeBoolean(ctx, false);
    case JSON_INTEGER:
    case JSON_REAL: return JSValueMakeNumber(ctx, crm_num_value(v));
    case JSON_STRING: return crm_js_str(ctx, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        JSObjectRef a = JSObjectMakeArray(ctx, 0, NULL, NULL);
        if (depth > MAX_DEPTH) return a;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) JSObjectSetPropertyAtIndex(ctx, a, (unsigned)i, from_json(s, x, depth + 1), NULL);
        return a;
    }
    case JSON_OBJECT: {
        if (crm_is_buf(v)) {
            size_t len;
            const unsigned char *data = crm_buf_data(v, &len);
            JSObjectRef b = JSObjectMakeTypedArray(ctx, kJSTypedArrayTypeUint8Array, len, NULL);
            if (len) memcpy(JSObjectGetTypedArrayBytesPtr(ctx, b, NULL), data, len);
            JSObjectRef proto = buffer_proto(s);
            if (proto) JSObjectSetPrototype(ctx, b, proto);
            return b;
        }
        if (crm_is_handle(v)) {
            long long id = crm_handle_id(v);
            if (id < 0) { /* a value kept for the context (crm_js_keep) */
                for (size_t i = 0; i < s->grp->nkept; i++)
                    if (s->grp->kept_ids[i] == -id) return s->grp->kept[i];
                return JSValueMakeUndefined(ctx); /* kept by another loop's engine */
            }
            return JSObjectMake(ctx, handle_class, (void *)(intptr_t)id);
        }
        JSObjectRef o = JSObjectMake(ctx, NULL, NULL);
        if (depth > MAX_DEPTH) return o;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            JSStringRef name = crm_js_jsstr(k, klen);
            JSObjectSetProperty(ctx, o, name, from_json(s, x, depth + 1), kJSPropertyAttributeNone, NULL);
            JSStringRelease(name);
        }
        return o;
    }
    }
    return JSValueMakeUndefined(ctx);
}



static json_t *string_json(JSContextRef ctx, JSValueRef v)
{
    JSStringRef js = JSValueToStringCopy(ctx, v, NULL);
    if (!js) return json_string("");
    size_t len;
    char *u = crm_js_jsstr_utf8(js, &len);
    JSStringRelease(js);
    json_t *r = json_stringn_nocheck(u, len);
    free(u);
    return r;
}

static json_t *to_json(crm_js *s, JSValueRef v, int depth)
{
    JSContextRef ctx = s->ctx;
    switch (JSValueGetType(ctx, v)) {
    case kJSTypeUndefined: return NULL;
    case kJSTypeNull: return json_null();
    case kJSTypeBoolean: return json_boolean(JSValueToBoolean(ctx, v));
    case kJSTypeNumber: return crm_num(JSValueToNumber(ctx, v, NULL));
    case kJSTypeString: return string_json(ctx, v);
    case kJSTypeObject: break;
    default: return NULL; /* symbols, bigints */
    }
    JSObjectRef o = (JSObjectRef)v;
    if (depth > MAX_DEPTH) return json_null();
    if (JSObjectIsFunction(ctx, o)) return NULL;
    JSTypedArrayType tt = JSValueGetTypedArrayType(ctx, v, NULL);
    if (tt == kJSTypedArrayTypeUint8Array) {
        size_t len = JSObjectGetTypedArrayByteLength(ctx, o, NULL);
        const void *p = JSObjectGetTypedArrayBytesPtr(ctx, o, NULL);
        return crm_buf_new(p, len);
    }
    if (JSValueIsObjectOfClass(ctx, v, handle_class)) return crm_handle_new((intptr_t)JSObjectGetPrivate(o));
    if (JSValueIsDate(ctx, v)) {
        JSStringRef j = JSValueCreateJSONString(ctx, v, 0, NULL);
        if (!j) return json_null();
        size_t len;
        char *u = crm_js_jsstr_utf8(j, &len);
        JSStringRelease(j);
        json_t *r = crm_parse(u, len, NULL, 0);
        free(u);
        return r ? r : json_null();
    }
    if (JSValueIsArray(ctx, v)) {
        JSValueRef lv = crm_js_get(ctx, o, "length");
        size_t n = (size_t)JSValueToNumber(ctx, lv, NULL);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *x = to_json(s, JSObjectGetPropertyAtIndex(ctx, o, (unsigned)i, NULL), depth + 1);
            json_array_append_new(a, x ? x : json_null());
        }
        return a;
    }
    json_t *r = json_object();
    JSPropertyNameArrayRef names = JSObjectCopyPropertyNames(ctx, o);
    size_t n = JSPropertyNameArrayGetCount(names);
    for (size_t i = 0; i < n; i++) {
        JSStringRef name = JSPropertyNameArrayGetNameAtIndex(names, i);
        JSValueRef x = JSObjectGetProperty(ctx, o, name, NULL);
        json_t *jx = x ? to_json(s, x, depth + 1) : NULL;
        if (!jx) continue;
        size_t klen;
        char *k = crm_js_jsstr_utf8(name, &klen);
        json_object_setn_new_nocheck(r, k, klen, jx);
        free(k);
    }
    JSPropertyNameArrayRelease(names);
    return r;
}



/* The JSON crossing: one engine call each way (see prelude.js). */

static void put_json(strbuf *sb, const json_t *v, bool *special, int depth)
{
    switch (json_typeof(v)) {
    case JSON_NULL: sb_puts(sb, "null"); return;
    case JSON_TRUE: sb_puts(sb, "true"); return;
    case JSON_FALSE: sb_puts(sb, "false"); return;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = crm_num_value(v);
        char buf[32];
        if (isfinite(d)) {
            sb_puts(sb, crm_fmt_number(d, buf));
        } else {
            *special = true;
            sb_printf(sb, "{\"\\u0001n\":\"%s\"}", crm_fmt_number(d, buf));
        }
        return;
    }
    case JSON_STRING: crm_put_json_string(sb, json_string_value(v), json_string_length(v)); return;
    case JSON_ARRAY: {
        sb_putc(sb, '[');
        if (depth < MAX_DEPTH) {
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (i) sb_putc(sb, ',');
                put_json(sb, x, special, depth + 1);
            }
        }
        sb_putc(sb, ']');
        return;
    }
    case JSON_OBJECT: {
        if (crm_is_buf(v)) {
            static const char hexd[] = "0123456789abcdef";
            size_t len;
            const unsigned char *d = crm_buf_data(v, &len);
            *special = true;
            sb_puts(sb, "{\"\\u0001b\":\"");
            for (size_t i = 0; i < len; i++) {
                char h[2] = {hexd[d[i] >> 4], hexd[d[i] & 15]};
                sb_putn(sb, h, 2);
            }
            sb_puts(sb, "\"}");
            return;
        }
        if (crm_is_handle(v)) {
            *special = true;
            sb_printf(sb, "{\"\\u0001h\":%lld}", crm_handle_id(v));
            return;
        }
        sb_putc(sb, '{');
        if (depth < MAX_DEPTH) {
            const char *k;
            size_t klen;
            json_t *x;
            bool first = true;
            json_object_keylen_foreach((json_t *)v, k, klen, x) {
                if (!first) sb_putc(sb, ',');
                first = false;
                if (k[0] == '\x01') *special = true; /* an Error's part (CRM_ERR_KEY): revived */
                crm_put_json_string(sb, k, klen);
                sb_putc(sb, ':');
                put_json(sb, x, special, depth + 1);
            }
        }
        sb_putc(sb, '}');
        return;
    }
    }
}

char *crm_js_json_text(const json_t *v, size_t *len, bool *special)
{
    strbuf sb = SB_INIT;
    *special = false;
    put_json(&sb, v, special, 0);
    *len = sb.len;
    return sb_take(&sb);
}

JSObjectRef crm_js_prelude_fn(const crm_js *s, const char *name)
{
    return !strcmp(name, "toJSON") ? s->tojson : !strcmp(name, "fromJSON") ? s->fromjson : NULL;
}

JSValueRef crm_js_from_json(crm_js *s, const json_t *v)
{
    if (!v) return JSValueMakeUndefined(s->ctx);
    if (!json_is_object(v) && !json_is_array(v)) return from_json(s, v, 0);
    if (crm_is_handle(v) && crm_handle_id(v) < 0) return from_json(s, v, 0); /* a kept value */
    strbuf sb = SB_INIT;
    bool special = false;
    put_json(&sb, v, &special, 0);
    JSValueRef r = NULL;
    if (special && s->fromjson) {
        JSStringRef text = crm_js_jsstr_z(sb.data, sb.len);
        JSValueRef arg = JSValueMakeString(s->ctx, text);
        JSStringRelease(text);
        r = JSObjectCallAsFunction(s->ctx, s->fromjson, NULL, 1, &arg, NULL);
    } else {
        JSStringRef text = crm_js_jsstr_z(sb.data, sb.len);
        r = JSValueMakeFromJSONString(s->ctx, text);
        JSStringRelease(text);
    }
    sb_free(&sb);
    return r ? r : from_json(s, v, 0);
}

/* The last property an expression reads ("a.b" -> b, "a[3]" -> 3, "a['k']"
 * -> k), or NULL when it is computed ("a[k]": its value is not in the text). */
static char *last_property(const char *e, size_t n)
{
    while (n && e[n - 1] == ' ') n--;
    if (n && e[n - 1] == ']') {
        size_t open = n - 1;
        while (open && e[open] != '[') open--;
        const char *k = e + open + 1;
        size_t kl = n - 1 - (open + 1);
        if (e[open] != '[' || !kl) return NULL;
        if (kl >= 2 && (k[0] == '\'' || k[0] == '"') && k[kl - 1] == k[0]) return strndup(k + 1, kl - 2);
        for (size_t i = 0; i < kl; i++)
            if (k[i] < '0' || k[i] > '9') return NULL;
        return strndup(k, kl);
    }
    size_t end = n, start = n;
    while (start && (isalnum((unsigned char)e[start - 1]) || e[start - 1] == '_' || e[start - 1] == '$')) start--;
    if (start == end || start == 0 || e[start - 1] != '.') return NULL;
    return strndup(e + start, end - start);
}

/* V8's text for a TypeError JavaScriptCore words its own way, since catch
 * nodes and logs see it: "x is not a function. (In 'x()', 'x' is 5)" is
 * "x is not a function"; "undefined is not an object (evaluating 'a.b')" is
 * "Cannot read properties of undefined (reading 'b')", or "Cannot set
 * properties ... (setting 'b')" for 'a.b = v'. NULL: no such rewording. */
static char *v8_type_error(const char *m)
{
    const char *in = strstr(m, ". (In '");
    if (in && m[strlen(m) - 1] == ')') return strndup(m, (size_t)(in - m));
    const char *what = !strncmp(m, "undefined is not an object (evaluating '", 40) ? "undefined"
                       : !strncmp(m, "null is not an object (evaluating '", 35)    ? "null"
                                                                                  : NULL;
    if (!what) return NULL;
    const char *e = m + (what[0] == 'u' ? 40 : 35);
    size_t n = strlen(e);
    if (n < 2 || strcmp(e + n - 2, "')")) return NULL;
    n -= 2;
    const char *assign = NULL;
    for (const char *p = e; p + 3 <= e + n; p++)
        if (!strncmp(p, " = ", 3)) {
            assign = p;
            break;
        }
    char *prop = last_property(e, assign ? (size_t)(assign - e) : n);
    if (!prop) return NULL;
    char *text = NULL;
    if (asprintf(&text, assign ? "Cannot set properties of %s (setting '%s')" : "Cannot read properties of %s (reading '%s')",
                 what, prop) < 0)
        text = NULL;
    free(prop);
    return text;
}

char *crm_js_v8_message(const char *name, const char *m)
{
    if (!strcmp(name, "TypeError")) return v8_type_error(m);
    if (!strcmp(name, "ReferenceError") && !strncmp(m, "Can't find variable: ", 21)) {
        char *text = NULL;
        return asprintf(&text, "%s is not defined", m + 21) < 0 ? NULL : text;
    }
    return NULL;
}

/* An Error's part (CRM_ERR_KEY) as it leaves the engine: its message in
 * V8's words (crm_js_v8_message), its stack as prelude.js's errToJSON
 * made it. */
static void revive_error(json_t *part)
{
    const char *name = json_string_value(json_object_get(part, "name"));
    const char *m = json_string_value(json_object_get(part, "message"));
    char *v8 = name && m ? crm_js_v8_message(name, m) : NULL;
    if (!v8) return;
    /* the stack's first line, "Name: message", says it too */
    const char *st = json_string_value(json_object_get(part, "stack"));
    size_t nl = strlen(name), ml = strlen(m);
    if (st && !strncmp(st, name, nl) && !strncmp(st + nl, ": ", 2) && !strncmp(st + nl + 2, m, ml)) {
        char *t = NULL;
        if (asprintf(&t, "%s: %s%s", name, v8, st + nl + 2 + ml) >= 0) json_object_set_new(part, "stack", json_string(t));
        free(t);
    }
    json_object_set_new(part, "message", json_string(v8));
    free(v8);
}

/* Replaces the markers of prelude.js's replacer in a parsed value. */
static json_t *revive(json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            json_t *r = revive(x);
            if (r != x) json_array_set_new(v, i, r);
        }
        return v;
    }
    if (!json_is_object(v)) return v;
    if (json_object_size(v) == 1) {
        const char *k = json_object_iter_key(json_object_iter(v));
        if (k[0] == '\x01' && k[1] && !k[2]) {
            json_t *x = json_object_get(v, k);
            json_t *r = NULL;
            if (k[1] == 'b' && json_is_string(x)) {
                const char *h = json_string_value(x);
                size_t n = json_string_length(x) / 2;
                unsigned char *bytes = malloc(n + 1);
                for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)(crm_hexval(h[2 * i]) << 4 | crm_hexval(h[2 * i + 1]));
                r = crm_buf_new(bytes, n);
                free(bytes);
            } else if (k[1] == 'n' && json_is_string(x)) {
                r = crm_num(crm_str_to_number(json_string_value(x)));
            } else if (k[1] == 'h' && json_is_number(x)) {
                r = crm_handle_new((long long)crm_num_value(x));
            }
            if (r) {
                json_decref(v);
                return r;
            }
        }
    }
    const char *k;
    json_t *x;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, x) {
        if (k[0] == '\x01' && !strcmp(k, CRM_ERR_KEY)) {
            revive_error(x);
            continue;
        }
        json_t *r = revive(x);
        if (r != x) json_object_set_new_nocheck(v, k, r);
    }
    return v;
}

json_t *crm_js_parse_text(const char *text, size_t len)
{
    json_t *j = crm_parse(text, len, NULL, 0);
    if (j && memmem(text, len, "\\u0001", 6)) {
        json_incref(j);
        json_t *out = revive(j);
        json_decref(j);
        j = out;
    }
    return j;
}

json_t *crm_js_to_json(crm_js *s, JSValueRef v)
{
    if (!v) return NULL;
    if (!s->tojson || !JSValueIsObject(s->ctx, v)) return to_json(s, v, 0);
    JSValueRef exc = NULL;
    JSValueRef r = JSObjectCallAsFunction(s->ctx, s->tojson, NULL, 1, &v, &exc);
    if (!r || exc) return to_json(s, v, 0); /* cyclic: walk it, depth-limited */
    if (!JSValueIsString(s->ctx, r)) return NULL; /* a function */
    JSStringRef js = JSValueToStringCopy(s->ctx, r, NULL);
    size_t len;
    char *text = crm_js_json_utf8(js, &len);
    JSStringRelease(js);
    json_t *j = crm_js_parse_text(text, len);
    free(text);
    return j;
}

crm_node *crm_js_wire_peer(crm_node *n, int port)
{
    if (port < 0 || port >= n->nports || n->nwires[port] != 1) return NULL;
    crm_node *t = n->wires[port][0];
    if (!t || t->closed || t->loop != n->loop || t->type != n->type || t->queue_max) return NULL;
    return t;
}

static long long kept_next;

json_t *crm_js_keep(crm_js *s, JSValueRef v)
{
    group *g = s->grp;
    for (size_t i = 0; i < g->nkept; i++)
        if (JSValueIsStrictEqual(s->ctx, g->kept[i], v)) return crm_handle_new(-g->kept_ids[i]);
    g->kept = realloc(g->kept, (g->nkept + 1) * sizeof *g->kept);
    g->kept_ids = realloc(g->kept_ids, (g->nkept + 1) * sizeof *g->kept_ids);
    JSValueProtect(s->ctx, v);
    g->kept[g->nkept] = v;
    long long id = __atomic_add_fetch(&kept_next, 1, __ATOMIC_RELAXED);
    g->kept_ids[g->nkept++] = id;
    return crm_handle_new(-id);
}

/* Timers ---------------------------------------------------------------------------- */

static void timer_free(jtimer *t)
{
    JSValueUnprotect(t->s->ctx, t->fn);
    for (size_t i = 0; i < t->nargs; i++) JSValueUnprotect(t->s->ctx, t->args[i]);
    free(t);
}

static void timer_unlink(jtimer *t)
{
    jtimer **pp = &t->s->timers;
    while (*pp && *pp != t) pp = &(*pp)->next;
    if (*pp) *pp = t->next;
}

static void timer_fire_inside(crm_js *s, void *arg);

static void timer_fire(crm_node *n, void *arg)
{
    (void)n;
    jtimer *t = arg;
    crm_js_run(t->s, timer_fire_inside, t);
}

static void timer_fire_inside(crm_js *s, void *arg)
{
    jtimer *t = arg;
    bool repeat = t->repeat; /* an interval's t may be freed by clearInterval in the callback */
    if (!repeat) {
        t->t = NULL; /* fired: the engine dropped it */
        timer_unlink(t);
    }
    JSValueRef exc = NULL;
    /* protect against clearInterval from inside the callback freeing t */
    JSObjectRef fn = t->fn;
    JSValueRef args[8];
    size_t nargs = t->nargs;
    memcpy(args, t->args, nargs * sizeof *args);
    JSValueProtect(s->ctx, fn);
    crm_js_call(s, fn, nargs, args, &exc);
    JSValueUnprotect(s->ctx, fn);
    if (!repeat) timer_free(t);
    if (exc && s->on_error) s->on_error(s, exc);
}

static JSValueRef js_set_timer(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc, const JSValueRef argv[],
                               JSValueRef *exc, bool repeat)
{
    (void)f;
    (void)self;
    crm_js *s = crm_js_of(ctx);
    if (!s) return crm_js_throw(ctx, exc, "the node of this code has closed"); /* a function it left in context */
    if (argc < 1 || !JSValueIsObject(ctx, argv[0]) || !JSObjectIsFunction(ctx, (JSObjectRef)argv[0]))
        return crm_js_throw(ctx, exc, "The \"callback\" argument must be of type function");
    double ms = argc > 1 ? JSValueToNumber(ctx, argv[1], NULL) : 1;
    if (!(ms >= 1 && ms <= 2147483647.0)) ms = 1; /* Node: NaN, < 1 or too big: 1 ms */
    jtimer *t = calloc(1, sizeof *t);
    t->s = s;
    t->fn = (JSObjectRef)argv[0];
    JSValueProtect(ctx, t->fn);
    for (size_t i = 2; i < argc && t->nargs < 8; i++) {
        t->args[t->nargs] = argv[i];
        JSValueProtect(ctx, argv[i]);
        t->nargs++;
    }
    t->repeat = repeat;
    t->id = ++s->next_timer_id;
    t->t = crm_timer_start(s->node, ms, repeat ? ms : 0, timer_fire, t);
    t->next = s->timers;
    s->timers = t;
    return JSValueMakeNumber(ctx, t->id);
}

static JSValueRef js_set_timeout(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc,
                                 const JSValueRef argv[], JSValueRef *exc)
{
    return js_set_timer(ctx, f, self, argc, argv, exc, false);
}

static JSValueRef js_set_interval(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc,
                                  const JSValueRef argv[], JSValueRef *exc)
{
    return js_set_timer(ctx, f, self, argc, argv, exc, true);
}

static JSValueRef js_clear_timer(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc,
                                 const JSValueRef argv[], JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)exc;
    crm_js *s = crm_js_of(ctx);
    if (!s || argc < 1 || !JSValueIsNumber(ctx, argv[0])) return JSValueMakeUndefined(ctx);
    double id = JSValueToNumber(ctx, argv[0], NULL);
    for (jtimer *t = s->timers; t; t = t->next) {
        if (t->id != id) continue;
        timer_unlink(t);
        crm_timer_cancel(t->t);
        timer_free(t);
        break;
    }
    return JSValueMakeUndefined(ctx);
}

/* Natives the prelude uses ------------------------------------------------------------ */

/* inspect(value, depth): Node's util.inspect of the JSON-able part. */
static JSValueRef js_inspect(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc, const JSValueRef argv[],
                             JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)exc;
    crm_js *s = crm_js_of(ctx);
    if (!s) return crm_js_str(ctx, "", 0); /* its node closed */
    json_t *v = argc > 0 ? crm_js_to_json(s, argv[0]) : NULL;
    int depth = argc > 1 && JSValueIsNumber(ctx, argv[1]) ? (int)JSValueToNumber(ctx, argv[1], NULL) : 2;
    char *text = crm_inspect(v, depth);
    json_decref(v);
    JSValueRef r = crm_js_str(ctx, text, strlen(text));
    free(text);
    return r;
}

/* print(stream, text): console output (1 stdout, 2 stderr). */
static JSValueRef js_print(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc, const JSValueRef argv[],
                           JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)exc;
    if (argc < 2) return JSValueMakeUndefined(ctx);
    char *text = crm_js_to_utf8(ctx, argv[1]);
    FILE *out = JSValueToNumber(ctx, argv[0], NULL) == 2 ? stderr : stdout;
    if (text) {
        fprintf(out, "%s\n", text);
        fflush(out);
    }
    free(text);
    return JSValueMakeUndefined(ctx);
}

static JSValueRef js_generate_id(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc,
                                 const JSValueRef argv[], JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)argc;
    (void)argv;
    (void)exc;
    char id[17];
    crm_make_id(id);
    return crm_js_str(ctx, id, 16);
}

/* isHandle(v): whether v is a live handle (msg.res). */
static JSValueRef js_is_handle(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc,
                               const JSValueRef argv[], JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)exc;
    return JSValueMakeBoolean(ctx, argc > 0 && JSValueIsObjectOfClass(ctx, argv[0], handle_class));
}

/* Sandboxes ------------------------------------------------------------------------------ */

/* JSC::VM::drainMicrotasks() (exported; a JSContextGroupRef is the VM).
 * A C callback runs with the VM's lock dropped (JSLock::DropAllLocks):
 * the drain takes it as every API call does, with a JSLockHolder, whose
 * release inside a callback does not drain by itself. */
static void (*drain_microtasks)(void *vm);
static void (*lock_holder_new)(void *holder, void *vm);
static void (*lock_holder_free)(void *holder);

static void drain(group *g)
{
    void *holder[4] = {0}; /* a JSLockHolder: a RefPtr<VM> */
    lock_holder_new(holder, (void *)g->g);
    drain_microtasks((void *)g->g);
    lock_holder_free(holder);
}

void crm_js_hold(JSContextRef ctx, crm_js_holder *h)
{
    memset(h, 0, sizeof *h);
    if (lock_holder_new && lock_holder_free) lock_holder_new(h->p, (void *)JSContextGetGroup(ctx));
}

void crm_js_unhold(crm_js_holder *h)
{
    if (h->p[0]) lock_holder_free(h->p);
}

static JSValueRef js_trampoline(JSContextRef ctx, JSObjectRef f, JSObjectRef self, size_t argc,
                                const JSValueRef argv[], JSValueRef *exc)
{
    (void)f;
    (void)self;
    (void)argc;
    (void)argv;
    (void)exc;
    crm_js *s = crm_js_of(ctx);
    group *g = s->grp;
    void (*fn)(crm_js *, void *) = s->tr_fn;
    void *arg = s->tr_arg;
    bool batch = s->tr_batch && g->depth == 0 && drain_microtasks;
    s->tr_fn = NULL;
    s->tr_batch = false;
    /* A C callback runs with the VM's lock dropped, and every API call
     * takes it again (a full acquisition: its owner, the stack limits, the
     * atom table); held here once, the calls of fn and of the messages
     * run below only count up its recursion. */
    crm_js_holder hold;
    crm_js_hold(s->ctx, &hold);
    g->depth++;
    if (fn) fn(s, arg);
    /* The microtasks (Promise reactions, awaits) queued so far run now, as
     * Node runs them when a callback returns: only JavaScript's own frames
     * of a message are gone here (the outermost entry, or one message of
     * the batch below), never user code's. Nothing queued: nothing run. */
    if (drain_microtasks && !g->terminated && (g->depth == 1 || (g->batching && g->depth == 2))) drain(g);
    if (batch) {
        /* The deliveries queued behind this message run in this VM entry:
         * entering JavaScriptCore costs its lock and, with a time limit
         * set, the watchdog's clock reads and timer; a chain of function
         * nodes pays them once. Each message drains the
         * microtasks it queued before the next one runs (above). s may be
         * closed meanwhile only by a posted job, and those wait for the
         * loop. */
        crm_js *outer = g->running;
        g->batching = true;
        for (int i = 0; i < CRM_JS_BATCH && !g->terminated; i++) {
            g->running = NULL;
            bool ran = crm_loop_run_next_delivery();
            g->running = outer;
            if (!ran) break;
        }
        g->batching = false;
    }
    g->depth--;
    crm_js_unhold(&hold);
    return JSValueMakeUndefined(ctx);
}

static void run_in(crm_js *s, void (*fn)(crm_js *s, void *arg), void *arg, bool batch)
{
    group *g = s->grp;
    if (g->depth > 0 && lock_holder_new) {
        /* Already inside the VM's entry (a message of a run, or a native
         * callback of one): fn runs here as the trampoline would run it,
         * without another entry and exit. */
        crm_js *outer = g->running;
        if (!outer) enter(s);
        crm_js_holder hold;
        crm_js_hold(s->ctx, &hold);
        g->depth++;
        fn(s, arg);
        if (drain_microtasks && !g->terminated && g->batching && g->depth == 2) drain(g);
        g->depth--;
        crm_js_unhold(&hold);
        if (!outer) g->running = NULL;
        return;
    }
    s->tr_fn = fn;
    s->tr_arg = arg;
    s->tr_batch = batch;
    crm_js *outer = s->grp->running;
    if (!outer) enter(s);
    JSObjectCallAsFunction(s->ctx, s->trampoline, NULL, 0, NULL, NULL);
    if (!outer) s->grp->running = NULL;
}

void crm_js_run(crm_js *s, void (*fn)(crm_js *s, void *arg), void *arg) { run_in(s, fn, arg, false); }

bool crm_js_at_message_boundary(crm_js *s)
{
    group *g = s->grp;
    return drain_microtasks && lock_holder_new && (g->depth == 1 || (g->batching && g->depth == 2));
}

void crm_js_drain_message(crm_js *s)
{
    group *g = s->grp;
    if (crm_js_at_message_boundary(s) && !g->terminated) drain(g);
}

/* Idle: a group that ran no message for CRM_JS_IDLE_MS throws its compiled
 * code away and collects its heap, as WebKit does under memory pressure:
 * the JIT's code and profiles are most of a sandbox's memory (1 MB and more
 * for a busy function node), and code that runs again is compiled again
 * (the interpreter first, the JIT tiers once hot). */
static void (*delete_all_code)(void *vm, int effort);
static void (*sync_gc)(JSContextRef ctx);
static void (*release_free)(void); /* WTF::releaseFastMallocFreeMemory: libpas's free pages back */

static void idle_fire(crm_node *n, void *arg);

static void idle_arm(crm_js *s)
{
    group *g = s->grp;
    g->inputs_seen = g->inputs;
    g->idle_owner = s;
    g->idle = crm_timer_start(s->node, CRM_JS_IDLE_MS, 0, idle_fire, g);
}

/* The library's machine code: once every loop's engine is idle, its pages
 * leave the process's mapping (MADV_DONTNEED on a private, clean, read-only
 * file mapping: nothing is lost, the page cache keeps them and the next
 * message faults back in the few it runs). About 15 MB of the idle RSS of
 * a flow with function nodes was the engine's code that ran once (its
 * parser, compilers and the global object's setup), mapped 64 KB at a time
 * by the kernel's fault-around. */
#define MAX_CODE_MAPS 8
static struct { void *addr; size_t len; } code_maps[MAX_CODE_MAPS];
static int ncode_maps = -1; /* -1: not looked up yet */

/* The library's mappings that hold only the file's own bytes: its code and
 * its read-only data, never a segment with relocated (written) pages: a
 * writable one, or a read-only one with private dirty, anonymous or
 * swapped pages (RELRO, relocated then made read-only). Found by the
 * mapping that holds one of its functions. */
static void find_code_pages(void)
{
    ncode_maps = 0;
    unsigned long fn = (unsigned long)(void *)JSObjectMake;
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f) return;
    char line[4096], want[4096] = "";
    struct { unsigned long lo, hi; bool ro, clean; char *path; } m[MAX_CODE_MAPS * 2];
    int nm = 0;
    bool cur = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, kb;
        char perms[8];
        int at = 0;
        /* a mapping's header: "lo-hi perms offset dev inode path" */
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &at) >= 3 && at) {
            line[strcspn(line, "\n")] = 0;
            const char *path = line + at;
            cur = false;
            if (fn >= lo && fn < hi) snprintf(want, sizeof want, "%s", path);
            if (*path != '/' || nm == MAX_CODE_MAPS * 2) continue;
            /* the library's mappings are adjacent: the earlier files' are dropped */
            if (nm && strcmp(m[nm - 1].path, path)) {
                if (*want) break;
                while (nm) free(m[--nm].path);
            }
            m[nm].lo = lo;
            m[nm].hi = hi;
            m[nm].ro = perms[1] == '-' && perms[3] == 'p';
            m[nm].clean = true;
            m[nm].path = strdup(path);
            nm++;
            cur = true;
            continue;
        }
        if (cur && (sscanf(line, "Private_Dirty: %lu", &kb) == 1 || sscanf(line, "Anonymous: %lu", &kb) == 1 ||
                    sscanf(line, "Swap: %lu", &kb) == 1) && kb)
            m[nm - 1].clean = false;
    }
    fclose(f);
    for (int i = 0; i < nm; i++) {
        if (*want && !strcmp(m[i].path, want) && m[i].ro && m[i].clean && ncode_maps < MAX_CODE_MAPS) {
            code_maps[ncode_maps].addr = (void *)m[i].lo;
            code_maps[ncode_maps].len = m[i].hi - m[i].lo;
            ncode_maps++;
        }
        free(m[i].path);
    }
}

static void release_code_pages(void)
{
    pthread_mutex_lock(&groups_lock);
    bool all = true;
    for (group *g = groups; g && all; g = g->next) all = __atomic_load_n(&g->quiet, __ATOMIC_RELAXED);
    if (all && ncode_maps < 0) find_code_pages();
    for (int i = 0; all && i < ncode_maps; i++) madvise(code_maps[i].addr, code_maps[i].len, MADV_DONTNEED);
    pthread_mutex_unlock(&groups_lock);
}

/* Outside any VM entry (deleteAllCode waits for the VM to be idle, so
 * inside one it would run only after the collection below), under the
 * VM's lock as the API takes it. */
static void compact(crm_js *s)
{
    void *holder[4] = {0}; /* a JSLockHolder */
    lock_holder_new(holder, (void *)s->grp->g);
    delete_all_code((void *)s->grp->g, 0 /* PreventCollectionAndDeleteAllCode */);
    lock_holder_free(holder);
    sync_gc(s->ctx);
    if (release_free) release_free();
    malloc_trim(0); /* what the engine and the messages freed, back to the system */
    __atomic_store_n(&s->grp->quiet, true, __ATOMIC_RELAXED);
    release_code_pages();
}

static void idle_fire(crm_node *n, void *arg)
{
    (void)n;
    group *g = arg;
    crm_js *s = g->idle_owner;
    g->idle = NULL; /* fired: the loop dropped it */
    if (g->inputs != g->inputs_seen) {
        idle_arm(s);
        return;
    }
    g->idle_owner = NULL;
    if (!g->running && !g->depth) compact(s);
}

void crm_js_run_input(crm_js *s, void (*fn)(crm_js *s, void *arg), void *arg)
{
    group *g = s->grp;
    g->inputs++;
    if (__atomic_load_n(&g->quiet, __ATOMIC_RELAXED)) __atomic_store_n(&g->quiet, false, __ATOMIC_RELAXED);
    if (!g->idle && g->depth == 0 && delete_all_code && sync_gc && lock_holder_new) idle_arm(s);
    run_in(s, fn, arg, true);
}

/* The sandbox of each global object. A global object of a class of ours
 * could hold it as private data, but the engine then looks every global name
 * the code uses up anew (about 50 ns each, against 1 ns on a plain global
 * object: `JSON`, `Math`, `flow`, `Buffer` in a function node's code), so
 * the globals are plain and this table maps them back. */
#define OWNERS 1024
typedef struct owner {
    struct owner *next;
    JSObjectRef global;
    crm_js *s;
} owner;
static owner *owners[OWNERS];
static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned owner_slot(JSObjectRef global)
{
    uintptr_t k = (uintptr_t)global;
    return (unsigned)((k >> 4) ^ (k >> 14)) % OWNERS;
}

static void owner_set(JSObjectRef global, crm_js *s)
{
    owner **pp = &owners[owner_slot(global)];
    pthread_mutex_lock(&owners_lock);
    while (*pp && (*pp)->global != global) pp = &(*pp)->next;
    if (s && !*pp) {
        owner *o = calloc(1, sizeof *o);
        o->global = global;
        o->s = s;
        *pp = o;
    } else if (s) {
        (*pp)->s = s;
    } else if (*pp) {
        owner *o = *pp;
        *pp = o->next;
        free(o);
    }
    pthread_mutex_unlock(&owners_lock);
}

crm_js *crm_js_of(JSContextRef ctx)
{
    JSObjectRef global = JSContextGetGlobalObject(ctx);
    crm_js *s = NULL;
    pthread_mutex_lock(&owners_lock);
    for (owner *o = owners[owner_slot(global)]; o; o = o->next)
        if (o->global == global) {
            s = o->s;
            break;
        }
    pthread_mutex_unlock(&owners_lock);
    return s;
}

crm_js *crm_js_new(crm_node *n, void *user, char **err)
{
    if (crm_js_load(err) < 0) return NULL;
    if (!delete_all_code) {
        *(void **)&delete_all_code = crm_js_symbol("_ZN3JSC2VM13deleteAllCodeENS_19DeleteAllCodeEffortE");
        *(void **)&sync_gc = crm_js_symbol("JSSynchronousGarbageCollectForDebugging");
        *(void **)&release_free = crm_js_symbol("_ZN3WTF27releaseFastMallocFreeMemoryEv");
        *(void **)&lock_holder_new = crm_js_symbol("_ZN3JSC12JSLockHolderC1EPNS_2VME");
        *(void **)&lock_holder_free = crm_js_symbol("_ZN3JSC12JSLockHolderD1Ev");
        if (lock_holder_new && lock_holder_free)
            *(void **)&drain_microtasks = crm_js_symbol("_ZN3JSC2VM15drainMicrotasksEv");
    }
    crm_js *s = calloc(1, sizeof *s);
    s->node = n;
    s->user = user;
    s->grp = group_get(n->loop);
    s->ctx = JSGlobalContextCreateInGroup(s->grp->g, NULL);
    owner_set(JSContextGetGlobalObject(s->ctx), s);

    s->trampoline = JSObjectMakeFunctionWithCallback(s->ctx, NULL, js_trampoline);
    JSValueProtect(s->ctx, s->trampoline);
    JSObjectRef natives = JSObjectMake(s->ctx, NULL, NULL);
    crm_js_set_fn(s->ctx, natives, "setTimeout", js_set_timeout);
    crm_js_set_fn(s->ctx, natives, "setInterval", js_set_interval);
    crm_js_set_fn(s->ctx, natives, "clearTimer", js_clear_timer);
    crm_js_set_fn(s->ctx, natives, "inspect", js_inspect);
    crm_js_set_fn(s->ctx, natives, "print", js_print);
    crm_js_set_fn(s->ctx, natives, "generateId", js_generate_id);
    crm_js_set_fn(s->ctx, natives, "isHandle", js_is_handle);

    JSValueRef exc = NULL;
    JSValueRef setup = crm_js_eval_static(s, crm_js_prelude, "prelude.js", &exc);
    JSValueRef ret = NULL;
    if (setup && JSValueIsObject(s->ctx, setup)) {
        JSValueRef arg = natives;
        ret = crm_js_call(s, (JSObjectRef)setup, 1, &arg, &exc);
    }
    if (exc || !ret || !JSValueIsObject(s->ctx, ret)) {
        char *text = exc ? crm_js_to_utf8(s->ctx, exc) : NULL;
        if (err && asprintf(err, "the JavaScript prelude failed: %s", text ? text : "?") < 0) *err = NULL;
        free(text);
        crm_js_free(s);
        return NULL;
    }
    s->tojson = (JSObjectRef)crm_js_get(s->ctx, (JSObjectRef)ret, "toJSON");
    s->fromjson = (JSObjectRef)crm_js_get(s->ctx, (JSObjectRef)ret, "fromJSON");
    JSValueProtect(s->ctx, s->tojson);
    JSValueProtect(s->ctx, s->fromjson);
    return s;
}

void crm_js_free(crm_js *s)
{
    if (!s) return;
    while (s->timers) {
        jtimer *t = s->timers;
        s->timers = t->next;
        crm_timer_cancel(t->t);
        timer_free(t);
    }
    if (s->buffer_proto) JSValueUnprotect(s->ctx, s->buffer_proto);
    if (s->trampoline) JSValueUnprotect(s->ctx, s->trampoline);
    if (s->tojson) JSValueUnprotect(s->ctx, s->tojson);
    if (s->fromjson) JSValueUnprotect(s->ctx, s->fromjson);
    owner_set(JSContextGetGlobalObject(s->ctx), NULL);
    if (s->grp->running == s) s->grp->running = NULL;
    if (s->grp->idle_owner == s) {
        if (s->grp->idle) crm_timer_cancel(s->grp->idle);
        s->grp->idle = NULL;
        s->grp->idle_owner = NULL;
    }
    JSGlobalContextRelease(s->ctx);
    group_put(s->grp);
    free(s);
}

JSGlobalContextRef crm_js_ctx(const crm_js *s) { return s->ctx; }
crm_node *crm_js_node(const crm_js *s) { return s->node; }
void *crm_js_user(const crm_js *s) { return s ? s->user : NULL; }
void crm_js_set_timeout(crm_js *s, double ms) { s->timeout_ms = ms > 0 ? ms : 0; }
bool crm_js_timed_out(const crm_js *s) { return s->timed_out; }
double crm_js_timeout_ms(const crm_js *s) { return s->stopped_ms; }
void crm_js_on_error(crm_js *s, void (*fn)(crm_js *s, JSValueRef exc)) { s->on_error = fn; }

JSValueRef crm_js_call(crm_js *s, JSObjectRef fn, size_t argc, const JSValueRef argv[], JSValueRef *exc)
{
    crm_js *outer = s->grp->running;
    if (!outer) enter(s);
    JSValueRef r = JSObjectCallAsFunction(s->ctx, fn, NULL, argc, argv, exc);
    if (!outer) s->grp->running = NULL;
    return r;
}

/* The source of a script lives as long as the functions it made: evaluated
 * from a copy in each sandbox (JSEvaluateScript copies its text), the
 * prelude and function.js kept 50 kB per function node. */
static void script_resolve(void)
{
    *(void **)&script_create = crm_js_symbol("JSScriptCreateReferencingImmortalASCIIText");
    *(void **)&script_eval = crm_js_symbol("JSScriptEvaluate");
    *(void **)&script_release = crm_js_symbol("JSScriptRelease");
}

JSValueRef crm_js_eval_static(crm_js *s, const char *src, const char *url, JSValueRef *exc)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, script_resolve);
    group *g = s->grp;
    /* the slot of src: found, or the first free one taken */
    int slot = -1;
    for (int i = 0; i < CRM_JS_STATIC_MAX && slot < 0; i++) {
        const char *k = __atomic_load_n(&g->script_src[i], __ATOMIC_ACQUIRE);
        if (!k && !__atomic_compare_exchange_n(&g->script_src[i], &k, src, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
            && k != src)
            continue; /* another text took it meanwhile */
        if (!k || k == src) slot = i;
    }
    size_t len = strlen(src);
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++) ascii = (unsigned char)src[i] < 0x80;
    if (slot < 0 || !ascii || !script_create || !script_eval || !script_release) return crm_js_eval(s, src, url, 1, exc);
    JSScriptRef script = __atomic_load_n(&g->scripts[slot], __ATOMIC_ACQUIRE);
    if (!script) {
        JSStringRef u = url ? JSStringCreateWithUTF8CString(url) : NULL;
        JSScriptRef mine = script_create(g->g, u, 1, src, len, NULL, NULL);
        if (u) JSStringRelease(u);
        if (!mine) return crm_js_eval(s, src, url, 1, exc); /* a syntax error: reported as before */
        void *none = NULL;
        if (__atomic_compare_exchange_n(&g->scripts[slot], &none, mine, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            script = mine;
        } else {
            script_release(mine);
            script = none;
        }
    }
    crm_js *outer = g->running;
    if (!outer) enter(s);
    JSValueRef r = script_eval(s->ctx, script, NULL, exc);
    if (!outer) g->running = NULL;
    return r;
}

JSValueRef crm_js_eval(crm_js *s, const char *src, const char *url, int line, JSValueRef *exc)
{
    JSStringRef code = crm_js_jsstr_z(src, strlen(src));
    JSStringRef u = url ? JSStringCreateWithUTF8CString(url) : NULL;
    crm_js *outer = s->grp->running;
    if (!outer) enter(s);
    JSValueRef r = JSEvaluateScript(s->ctx, code, NULL, u, line, exc);
    if (!outer) s->grp->running = NULL;
    JSStringRelease(code);
    if (u) JSStringRelease(u);
    return r;
}
