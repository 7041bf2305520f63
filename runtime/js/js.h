/* js.h: JavaScript for nodes, on JavaScriptCore (the face of runtime/js/).
 *
 * The library (libjavascriptcoregtk-4.1, ~9 MB resident once opened) is not
 * linked: crm_js_load() opens it with dlopen the first time a node needs it,
 * so flows without JavaScript never pay for it. The JavaScriptCore C API
 * (JavaScriptCore/JavaScript.h) is used as documented; the macros below turn
 * each JS* call into a call through the table crm_js_load() filled.
 *
 * Threads: one JSContextGroup (a JavaScriptCore VM and heap) per loop
 * thread, one global context (a sandbox, crm_js) per node. A sandbox is used
 * on its node's loop thread only, except that it is created (and the code
 * compiled) in the node's create() on the loading thread.
 *
 * A sandbox's global object holds what Node-RED's function sandbox offers
 * beside the node's own API: Buffer, util, console, URL, URLSearchParams,
 * setTimeout/setInterval/clearTimeout/clearInterval (on the node's loop,
 * cancelled at close), RED.util (prelude.js). Values cross with
 * crm_js_from_json / crm_js_to_json: JSON values, Buffers as Buffers,
 * undefined, NaN and the live handles of value.h (msg.res) kept opaque.
 */
#ifndef CRM_JS_H
#define CRM_JS_H

#include <JavaScriptCore/JavaScript.h>
#include <stdbool.h>

#include "carmine.h"

/* Exported by the library, not declared by its headers: the watchdog. */
typedef bool (*JSShouldTerminateCallback)(JSContextRef ctx, void *context);
void JSContextGroupSetExecutionTimeLimit(JSContextGroupRef group, double limit, JSShouldTerminateCallback callback,
                                         void *context);
void JSContextGroupClearExecutionTimeLimit(JSContextGroupRef group);

#define CRM_JSC_FUNCS(X)                                                                                    \
    X(JSContextGroupCreate) X(JSContextGroupRelease) X(JSGlobalContextCreateInGroup)                         \
    X(JSGlobalContextRelease) X(JSContextGetGlobalObject) X(JSContextGetGroup)                               \
    X(JSContextGroupSetExecutionTimeLimit) X(JSContextGroupClearExecutionTimeLimit)                          \
    X(JSEvaluateScript) X(JSCheckScriptSyntax) X(JSGarbageCollect)                                           \
    X(JSStringCreateWithCharacters) X(JSStringCreateWithUTF8CString) X(JSStringRelease)                      \
    X(JSStringGetLength) X(JSStringGetCharactersPtr) X(JSStringIsEqualToUTF8CString)                        \
    X(JSStringGetMaximumUTF8CStringSize) X(JSStringGetUTF8CString)                                            \
    X(JSValueGetType) X(JSValueIsUndefined) X(JSValueIsNull) X(JSValueIsBoolean) X(JSValueIsNumber)          \
    X(JSValueIsString) X(JSValueIsObject) X(JSValueIsArray) X(JSValueIsDate) X(JSValueIsObjectOfClass)       \
    X(JSValueIsInstanceOfConstructor) X(JSValueGetTypedArrayType) X(JSValueIsStrictEqual)                    \
    X(JSValueMakeUndefined) X(JSValueMakeNull) X(JSValueMakeBoolean) X(JSValueMakeNumber)                    \
    X(JSValueMakeString) X(JSValueMakeFromJSONString) X(JSValueCreateJSONString)                             \
    X(JSValueToBoolean) X(JSValueToNumber) X(JSValueToStringCopy) X(JSValueToObject)                         \
    X(JSValueProtect) X(JSValueUnprotect)                                                                    \
    X(JSClassCreate) X(JSClassRelease) X(JSObjectMake) X(JSObjectMakeArray) X(JSObjectMakeError)             \
    X(JSObjectMakeFunctionWithCallback) X(JSObjectMakeTypedArray) X(JSObjectGetTypedArrayBytesPtr)           \
    X(JSObjectGetTypedArrayByteLength) X(JSObjectGetPrivate) X(JSObjectSetPrivate)                           \
    X(JSObjectGetProperty) X(JSObjectSetProperty) X(JSObjectGetPropertyAtIndex) X(JSObjectGetPropertyForKey)  \
    X(JSObjectSetPropertyAtIndex) X(JSObjectDeleteProperty) X(JSObjectHasProperty)                           \
    X(JSObjectCopyPropertyNames) X(JSPropertyNameArrayGetCount) X(JSPropertyNameArrayGetNameAtIndex)         \
    X(JSPropertyNameArrayRelease) X(JSObjectSetPrototype) X(JSObjectIsFunction)                              \
    X(JSObjectCallAsFunction)

typedef struct {
#define CRM_JSC_PTR(f) __typeof__(f) *f;
    CRM_JSC_FUNCS(CRM_JSC_PTR)
#undef CRM_JSC_PTR
} crm_jsc_api;
extern crm_jsc_api crm_jsc;
/* Another symbol of the library (dlsym), or NULL. */
void *crm_js_symbol(const char *name);

#ifndef CRM_JS_NO_MACROS
#define JSContextGroupCreate crm_jsc.JSContextGroupCreate
#define JSContextGroupRelease crm_jsc.JSContextGroupRelease
#define JSGlobalContextCreateInGroup crm_jsc.JSGlobalContextCreateInGroup
#define JSGlobalContextRelease crm_jsc.JSGlobalContextRelease
#define JSContextGetGlobalObject crm_jsc.JSContextGetGlobalObject
#define JSContextGetGroup crm_jsc.JSContextGetGroup
#define JSContextGroupSetExecutionTimeLimit crm_jsc.JSContextGroupSetExecutionTimeLimit
#define JSContextGroupClearExecutionTimeLimit crm_jsc.JSContextGroupClearExecutionTimeLimit
#define JSEvaluateScript crm_jsc.JSEvaluateScript
#define JSCheckScriptSyntax crm_jsc.JSCheckScriptSyntax
#define JSGarbageCollect crm_jsc.JSGarbageCollect
#define JSStringCreateWithCharacters crm_jsc.JSStringCreateWithCharacters
#define JSStringCreateWithUTF8CString crm_jsc.JSStringCreateWithUTF8CString
#define JSStringRelease crm_jsc.JSStringRelease
#define JSStringGetLength crm_jsc.JSStringGetLength
#define JSStringGetCharactersPtr crm_jsc.JSStringGetCharactersPtr
#define JSStringIsEqualToUTF8CString crm_jsc.JSStringIsEqualToUTF8CString
#define JSStringGetMaximumUTF8CStringSize crm_jsc.JSStringGetMaximumUTF8CStringSize
#define JSStringGetUTF8CString crm_jsc.JSStringGetUTF8CString
#define JSValueGetType crm_jsc.JSValueGetType
#define JSValueIsUndefined crm_jsc.JSValueIsUndefined
#define JSValueIsNull crm_jsc.JSValueIsNull
#define JSValueIsBoolean crm_jsc.JSValueIsBoolean
#define JSValueIsNumber crm_jsc.JSValueIsNumber
#define JSValueIsString crm_jsc.JSValueIsString
#define JSValueIsObject crm_jsc.JSValueIsObject
#define JSValueIsArray crm_jsc.JSValueIsArray
#define JSValueIsDate crm_jsc.JSValueIsDate
#define JSValueIsObjectOfClass crm_jsc.JSValueIsObjectOfClass
#define JSValueIsInstanceOfConstructor crm_jsc.JSValueIsInstanceOfConstructor
#define JSValueGetTypedArrayType crm_jsc.JSValueGetTypedArrayType
#define JSValueIsStrictEqual crm_jsc.JSValueIsStrictEqual
#define JSValueMakeUndefined crm_jsc.JSValueMakeUndefined
#define JSValueMakeNull crm_jsc.JSValueMakeNull
#define JSValueMakeBoolean crm_jsc.JSValueMakeBoolean
#define JSValueMakeNumber crm_jsc.JSValueMakeNumber
#define JSValueMakeString crm_jsc.JSValueMakeString
#define JSValueMakeFromJSONString crm_jsc.JSValueMakeFromJSONString
#define JSValueCreateJSONString crm_jsc.JSValueCreateJSONString
#define JSValueToBoolean crm_jsc.JSValueToBoolean
#define JSValueToNumber crm_jsc.JSValueToNumber
#define JSValueToStringCopy crm_jsc.JSValueToStringCopy
#define JSValueToObject crm_jsc.JSValueToObject
#define JSValueProtect crm_jsc.JSValueProtect
#define JSValueUnprotect crm_jsc.JSValueUnprotect
#define JSClassCreate crm_jsc.JSClassCreate
#define JSClassRelease crm_jsc.JSClassRelease
#define JSObjectMake crm_jsc.JSObjectMake
#define JSObjectMakeArray crm_jsc.JSObjectMakeArray
#define JSObjectMakeError crm_jsc.JSObjectMakeError
#define JSObjectMakeFunctionWithCallback crm_jsc.JSObjectMakeFunctionWithCallback
#define JSObjectMakeTypedArray crm_jsc.JSObjectMakeTypedArray
#define JSObjectGetTypedArrayBytesPtr crm_jsc.JSObjectGetTypedArrayBytesPtr
#define JSObjectGetTypedArrayByteLength crm_jsc.JSObjectGetTypedArrayByteLength
#define JSObjectGetPrivate crm_jsc.JSObjectGetPrivate
#define JSObjectSetPrivate crm_jsc.JSObjectSetPrivate
#define JSObjectGetProperty crm_jsc.JSObjectGetProperty
#define JSObjectSetProperty crm_jsc.JSObjectSetProperty
#define JSObjectGetPropertyAtIndex crm_jsc.JSObjectGetPropertyAtIndex
#define JSObjectGetPropertyForKey crm_jsc.JSObjectGetPropertyForKey
#define JSObjectSetPropertyAtIndex crm_jsc.JSObjectSetPropertyAtIndex
#define JSObjectDeleteProperty crm_jsc.JSObjectDeleteProperty
#define JSObjectHasProperty crm_jsc.JSObjectHasProperty
#define JSObjectCopyPropertyNames crm_jsc.JSObjectCopyPropertyNames
#define JSPropertyNameArrayGetCount crm_jsc.JSPropertyNameArrayGetCount
#define JSPropertyNameArrayGetNameAtIndex crm_jsc.JSPropertyNameArrayGetNameAtIndex
#define JSPropertyNameArrayRelease crm_jsc.JSPropertyNameArrayRelease
#define JSObjectSetPrototype crm_jsc.JSObjectSetPrototype
#define JSObjectIsFunction crm_jsc.JSObjectIsFunction
#define JSObjectCallAsFunction crm_jsc.JSObjectCallAsFunction
#endif

/* Opens the library (once per process; thread-safe). 0, or -1 with *err
 * (malloc'd) when it cannot be loaded. */
int crm_js_load(char **err);

typedef struct crm_js crm_js;

/* A new sandbox for node n: a global context in the context group of n's
 * loop, the prelude evaluated in it. NULL and *err (malloc'd) on failure.
 * user is the caller's, returned by crm_js_user. */
crm_js *crm_js_new(crm_node *n, void *user, char **err);
/* Cancels the sandbox's timers and releases its context (and the group
 * with its last context). On the node's loop, or where it was created when
 * the node never started. */
void crm_js_free(crm_js *s);
JSGlobalContextRef crm_js_ctx(const crm_js *s);
crm_node *crm_js_node(const crm_js *s);
void *crm_js_user(const crm_js *s);
/* The sandbox of a context (from a native callback's ctx). */
crm_js *crm_js_of(JSContextRef ctx);

/* Runaway code: each call into the sandbox (crm_js_call, timers) is stopped
 * after ms milliseconds (0: the default watchdog, CRM_JS_WATCHDOG_MS, so a
 * loop without a timeout cannot hold its loop thread for ever). */
#define CRM_JS_WATCHDOG_MS 30000.0
void crm_js_set_timeout(crm_js *s, double ms);
/* Calls fn (this: undefined) under the watchdog. NULL with *exc set when it
 * threw; crm_js_timed_out() then tells whether the watchdog stopped it. */
JSValueRef crm_js_call(crm_js *s, JSObjectRef fn, size_t argc, const JSValueRef argv[], JSValueRef *exc);
/* Runs fn(s, arg) inside the VM: every JavaScriptCore call fn makes then
 * finds the VM's lock already held, which saves its acquisition per call
 * (the costly part of a small call). Microtasks run when it returns. */
void crm_js_run(crm_js *s, void (*fn)(crm_js *s, void *arg), void *arg);
/* Holds the VM's lock of ctx's group from a native callback (which runs with
 * it dropped) until crm_js_unhold: the JavaScriptCore calls made meanwhile
 * find it held instead of taking it each. Without the symbols, nothing. */
typedef struct {
    void *p[4];
} crm_js_holder;
void crm_js_hold(JSContextRef ctx, crm_js_holder *h);
void crm_js_unhold(crm_js_holder *h);
/* crm_js_run for a node's input on its loop: once fn returns, the
 * microtasks it queued run (Promise reactions, awaits: JSC::VM's
 * drainMicrotasks), then the deliveries queued on the loop behind it (up
 * to CRM_JS_BATCH) run in the same VM entry, each followed by its
 * microtasks, so a chain of JavaScript nodes enters the VM once. Without
 * that symbol each message is an entry of its own (the engine runs the
 * microtasks when the entry ends). */
void crm_js_run_input(crm_js *s, void (*fn)(crm_js *s, void *arg), void *arg);
/* Inside crm_js_run_input's fn: whether the message runs where its
 * microtasks are run when fn returns (the outermost entry, or one message of
 * a run), and so crm_js_drain_message can run them before. */
bool crm_js_at_message_boundary(crm_js *s);
/* Inside such a fn: runs the microtasks queued so far (the message's
 * reactions) now, unless the watchdog stopped the entry. */
void crm_js_drain_message(crm_js *s);
#define CRM_JS_BATCH 256
/* A call that has run this long is stopped when the flows stop. */
#define CRM_JS_STOP_MS 1000.0
/* A loop's sandboxes drop their compiled code after this long without a
 * message (sandbox.c, "Idle"). */
#define CRM_JS_IDLE_MS 1000.0
/* Evaluates a script (UTF-8) under the watchdog; url names it in stacks. */
JSValueRef crm_js_eval(crm_js *s, const char *src, const char *url, int line, JSValueRef *exc);
/* The same for a static ASCII text (a string constant of the program):
 * compiled once per loop's engine, its source shared by every sandbox of
 * the loop instead of copied into each. */
#define CRM_JS_STATIC_MAX 4
JSValueRef crm_js_eval_static(crm_js *s, const char *src, const char *url, JSValueRef *exc);
bool crm_js_timed_out(const crm_js *s);
/* The limit that stopped the last call, in ms. */
double crm_js_timeout_ms(const crm_js *s);

/* Keeps v (a function set in context) in the loop's engine: the value
 * stored is a handle (a negative id) that crm_js_from_json turns back into
 * v in any sandbox of that loop (undefined in another loop's). The same
 * value keeps its handle; kept values live as long as the engine. */
json_t *crm_js_keep(crm_js *s, JSValueRef v);

/* The node that output port of n sends to when that is its one wire and
 * the node is of n's own type, open, on n's loop and without an input queue
 * limit; otherwise NULL. On n's loop. (nodes/function.c hands a message to
 * such a node as a JavaScript value.) */
crm_node *crm_js_wire_peer(crm_node *n, int port);

/* V8's message for a JavaScriptCore error's (name, message), malloc'd,
 * or NULL when the two say the same: "x is not a function" for "x is not a
 * function. (In 'x()', 'x' is 5)", "Cannot read properties of undefined
 * (reading 'b')" for "undefined is not an object (evaluating 'a.b')" (or
 * "Cannot set ..." for 'a.b = v'), "x is not defined" for "Can't find
 * variable: x". Catch nodes, logs and the next nodes see V8's. */
char *crm_js_v8_message(const char *name, const char *message);

/* Errors thrown out of a timer callback of the sandbox go to fn. */
void crm_js_on_error(crm_js *s, void (*fn)(crm_js *s, JSValueRef exc));

/* Values ------------------------------------------------------------------ */

/* A JavaScript value for v (borrowed; NULL: undefined). Buffers become
 * Buffers, handles opaque objects, NaN/Infinity numbers. */
JSValueRef crm_js_from_json(crm_js *s, const json_t *v);
/* A new json_t for a JavaScript value, as JSON.stringify keeps it but with
 * Buffers (any Uint8Array) as Buffers, NaN/Infinity kept, handles restored;
 * undefined, functions and symbols give NULL (a member holding one is left
 * out; an array element becomes null). Dates become their ISO text. */
json_t *crm_js_to_json(crm_js *s, JSValueRef v);
/* The JSON text crm_js_from_json hands the engine (malloc'd): markers
 * stand for Buffers, NaN/Infinity and handles, *special says whether any
 * does (then the prelude's fromJSON must read it, else JSON.parse can). */
char *crm_js_json_text(const json_t *v, size_t *len, bool *special);
/* Parses the prelude's toJSON text back into a value (markers revived). */
json_t *crm_js_parse_text(const char *text, size_t len);
/* The prelude's toJSON(v) and fromJSON(text) functions. */
JSObjectRef crm_js_prelude_fn(const crm_js *s, const char *name);
/* A JavaScript string from UTF-8 text. */
JSValueRef crm_js_str(JSContextRef ctx, const char *s, size_t len);
JSStringRef crm_js_jsstr(const char *s, size_t len);
/* The same for a text that ends in a NUL at s[len]: an ASCII text becomes
 * a one-byte string (smaller, and JSON.parse reads it faster). */
JSStringRef crm_js_jsstr_z(const char *s, size_t len);
/* UTF-8 of a JSON.stringify result (well-formed: no lone surrogates),
 * malloc'd, converted by the engine. */
char *crm_js_json_utf8(JSStringRef s, size_t *len);
/* String(v) as malloc'd UTF-8 (NULL when String(v) throws). */
char *crm_js_to_utf8(JSContextRef ctx, JSValueRef v);
/* UTF-8 of a JSStringRef, malloc'd; *len may be NULL. */
char *crm_js_jsstr_utf8(JSStringRef s, size_t *len);
/* Property get/set by a C name. */
JSValueRef crm_js_get(JSContextRef ctx, JSObjectRef o, const char *name);
void crm_js_set(JSContextRef ctx, JSObjectRef o, const char *name, JSValueRef v);
/* Sets a native function as o[name]. */
void crm_js_set_fn(JSContextRef ctx, JSObjectRef o, const char *name, JSObjectCallAsFunctionCallback fn);
/* Throws new Error(text) from a native callback: returns the value to
 * return (undefined), *exc set. */
JSValueRef crm_js_throw(JSContextRef ctx, JSValueRef *exc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
