// function.js: the function node's part of its sandbox (nodes/function.c):
// context, flow, global and env as Node-RED's function sandbox has them,
// and the helpers the node calls. The value of this script is a function
// that receives __node__ (the node's natives) and returns the helpers.
(function (__node__) {
"use strict";
const G = globalThis;
// The builtins used per message, taken once: the sandbox's global object has
// a native class (its private data is the sandbox), which makes the engine
// look a global name up anew on each use; and code that replaces JSON or
// Array.isArray in its sandbox does not change how messages cross.
const JSONparse = JSON.parse, isArray = Array.isArray, U8 = Uint8Array, PromiseC = Promise, defProp = Object.defineProperty;
const def = (o, k, v) => Object.defineProperty(o, k, { value: v, writable: true, configurable: true, enumerable: false });

// Context values are kept by reference, as Node-RED's memory store keeps
// them: what set() stored or get() returned is remembered here beside the
// token of the stored copy; while the store still holds that copy, get()
// answers the same object, and flush() (after each call into the sandbox)
// writes the objects back, so changes made to them reach the store.
const cache = new Map();
const nested = k => /[.\[]/.test(k);
const ckey = (scope, key, store) => scope + "\u0000" + (store || "") + "\u0000" + key;
function flushScope(scope, store) {
    for (const [k, e] of cache) {
        if (e.scope === scope && e.store === store) { write(k, e); cache.delete(k); }
    }
}
function write(k, e) {
    if (__node__.ctxToken(e.scope, e.key, e.store) === e.tok)
        e.tok = __node__.ctxSet(e.scope, e.key, e.v, e.store);
    else cache.delete(k);
}
function flush() {
    for (const [k, e] of cache) write(k, e);
    if (cache.size > 64) cache.clear();
}
function get1(scope, key, store) {
    if (typeof key !== "string") key = String(key);
    if (nested(key)) { flushScope(scope, store); return __node__.ctxGet(scope, key, store); }
    const k = ckey(scope, key, store);
    const e = cache.get(k);
    if (e && __node__.ctxToken(scope, key, store) === e.tok) return e.v;
    const v = __node__.ctxGet(scope, key, store);
    if (v !== null && typeof v === "object") cache.set(k, { scope, key, store, v, tok: __node__.ctxToken(scope, key, store) });
    else cache.delete(k);
    return v;
}
function set1(scope, key, value, store) {
    if (typeof key !== "string") key = String(key);
    if (nested(key)) { flushScope(scope, store); __node__.ctxSet(scope, key, value, store); return; }
    const k = ckey(scope, key, store);
    const tok = __node__.ctxSet(scope, key, value, store);
    if (value !== null && typeof value === "object") cache.set(k, { scope, key, store, v: value, tok });
    else cache.delete(k);
}
function contextOf(scope) {
    return {
        get(key, store, cb) {
            if (typeof store === "function") { cb = store; store = undefined; }
            if (Array.isArray(key)) {
                const r = key.map(k => get1(scope, k, store));
                if (cb) { cb(null, ...r); return; }
                return r;
            }
            const r = get1(scope, key, store);
            if (cb) { cb(null, r); return; }
            return r;
        },
        set(key, value, store, cb) {
            if (typeof store === "function") { cb = store; store = undefined; }
            if (Array.isArray(key)) {
                key.forEach((k, i) => set1(scope, k, Array.isArray(value) ? value[i] : (i === 0 ? value : undefined), store));
            } else set1(scope, key, value, store);
            if (cb) cb();
        },
        keys(store, cb) {
            if (typeof store === "function") { cb = store; store = undefined; }
            flush();
            const r = __node__.ctxKeys(scope, store);
            if (cb) { cb(null, r); return; }
            return r;
        },
    };
}
const context = contextOf(0), flow = contextOf(1), global = contextOf(2);
Object.defineProperty(context, "flow", { get: () => flow, enumerable: false });
Object.defineProperty(context, "global", { get: () => global, enumerable: false });
def(G, "context", context);
def(G, "flow", flow);
def(G, "global", global);
def(G, "env", { get: name => __node__.env(name) });

// node.on: "close" handlers run when the node closes; "input" is refused.
const closers = [];
function on(event, fn) {
    if (event === "input") throw new Error("Cannot add listener to 'input' event within Function");
    if (event === "close" && typeof fn === "function") closers.push(fn);
}
function close() {
    let pending = [];
    for (const fn of closers) {
        try {
            if (fn.length >= 2) pending.push(new Promise(r => fn(false, r)));
            else if (fn.length === 1) pending.push(new Promise(r => fn(r)));
            else { const p = fn(); if (p && typeof p.then === "function") pending.push(p); }
        } catch (e) { __node__.error(e); }
    }
    closers.length = 0;
    flush();
    return pending.length;
}
// The message path, one call from C per message (nodes/function.c):
// drive(body, text, done) runs the body on the message JSON text and answers
// the JSON text of [entry...]: [port, msg] for each message to send, a
// string for each entry that is not a message (Node-RED logs its type), and
// last, when done is asked for, ["done", msg]; or undefined when the body
// returned a Promise (settle takes over). A throw reaches C with __last.msg
// kept for the error report.
const last = { msg: undefined };
function typeName(v) {
    if (typeof v !== "object") return typeof v;
    return v instanceof U8 ? "Buffer" : isArray(v) ? "Array" : "Date";
}
function collect(msgs, id, out) {
    if (msgs === null || msgs === undefined) return out;
    if (!isArray(msgs)) msgs = [msgs];
    for (let m = 0; m < msgs.length; m++) {
        let e = msgs[m];
        if (e === null || e === undefined) continue;
        if (!isArray(e)) e = [e];
        for (let i = 0; i < e.length; i++) {
            const v = e[i];
            if (v === null || v === undefined) continue;
            if (typeof v === "object" && !(v instanceof U8) && !isArray(v)) {
                v._msgid = id;
                const k = v[REQ];
                // a message without accessors for req and res (see drive):
                // C puts back what its key holds
                if (typeof k === "number" && k < 0) out.push([m, v, -k]);
                else out.push([m, v]);
            } else out.push(typeName(v));
        }
    }
    return out;
}
// msg.req and msg.res of an http in message cross only when the code reads
// them: C keeps them under a key (a number while the run lasts, or a native
// object; nodes/function.c, "msg.req") and the message gets accessors that
// build them on first read. Untouched, they leave as markers that C
// replaces with what it kept (crossing() below).
// (A symbol of the engine's registry: the same in every sandbox of a loop,
// so a hand-over (adopt, below) sees that a message holds one.)
const REQ = Symbol.for("\u0001carmine:req");
let reqOut = null;
function lazy(name, which, mark) {
    return {
        get() {
            const h = this[REQ];
            if (reqOut) {
                let i = reqOut.indexOf(h);
                if (i < 0) i = reqOut.push(h) - 1;
                return { [mark]: i };
            }
            const v = __node__.req(h, which);
            defProp(this, name, { value: v, writable: true, enumerable: true, configurable: true });
            return v;
        },
        set(v) { defProp(this, name, { value: v, writable: true, enumerable: true, configurable: true }); },
        enumerable: true, configurable: true,
    };
}
const reqDesc = lazy("req", 0, "\u0001q"), resDesc = lazy("res", 1, "\u0001r");
// the text of out and the holders its markers name
function crossing(out) {
    reqOut = [];
    let t;
    try { t = __node__.toJSON(out); } finally { crossing.holders = reqOut; reqOut = null; }
    return t;
}
// A message from a function node on this loop (nodes/function.c,
// "Hand-over"): adopt(msg, slot) copies the sender's message into objects
// of this sandbox, as the JSON crossing would make it, keeps the copy in
// inbox[slot] for drive and answers its _msgid; undefined when the message
// holds what the copy does not make as the crossing does (Buffers, Dates,
// class instances, a pending msg.req, cycles, a _msgid that is not a text):
// that one crosses as JSON text.
const inbox = [];
const getProto = Object.getPrototypeOf, keysOf = Object.keys;
const FAIL = {};
function copyValue(v, depth) {
    const t = typeof v;
    if (t === "string" || t === "number" || t === "boolean" || v === null) return v;
    if (t !== "object" || depth > 100) return FAIL;
    if (isArray(v)) {
        const n = v.length, a = [];
        for (let i = 0; i < n; i++) {
            const x = v[i], tx = typeof x;
            if (x === undefined || tx === "function" || tx === "symbol") { a.push(null); continue; }
            const c = copyValue(x, depth + 1);
            if (c === FAIL) return FAIL;
            a.push(c);
        }
        return a;
    }
    const p = getProto(v);
    if ((p !== null && getProto(p) !== null) || typeof v.toJSON === "function") return FAIL;
    const o = {}, ks = keysOf(v);
    for (let i = 0; i < ks.length; i++) {
        const k = ks[i];
        if (k === "__proto__") return FAIL;
        const x = v[k], tx = typeof x;
        if (x === undefined || tx === "function" || tx === "symbol") continue;
        const c = copyValue(x, depth + 1);
        if (c === FAIL) return FAIL;
        o[k] = c;
    }
    return o;
}
function adopt(msg, slot) {
    if (msg === null || typeof msg !== "object" || msg[REQ] !== undefined) return undefined;
    const c = copyValue(msg, 0);
    if (c === FAIL || isArray(c) || typeof c._msgid !== "string" || c._msgid === "") return undefined;
    inbox[slot] = c;
    return c._msgid;
}
function drive(body, text, special, done, req, has) {
    let msg;
    if (typeof text === "number") { msg = inbox[text]; inbox[text] = undefined; }
    else msg = special ? __node__.fromJSON(text) : JSONparse(text);
    // has & 4: the code never reads msg.req, msg.res or msg[...] (C's
    // msg_blind), so they need no accessors: the key, negated, marks msg,
    // and C puts them back into what leaves with it (collect)
    if (has & 4) defProp(msg, REQ, { value: -req, writable: true, configurable: true });
    else if (has) {
        defProp(msg, REQ, { value: req, writable: true, configurable: true });
        if (has & 1) defProp(msg, "req", reqDesc);
        if (has & 2) defProp(msg, "res", resDesc);
    }
    last.msg = msg;
    const r = body(msg);
    if (r !== null && typeof r === "object" && r instanceof PromiseC) {
        // msg outlives the run: what a number key holds moves to an object
        if (typeof req === "number") {
            msg[REQ] = __node__.hold(req);
            if (has & 4) {
                if (has & 1) defProp(msg, "req", reqDesc);
                if (has & 2) defProp(msg, "res", resDesc);
            }
        }
        settle(r, msg, 0);
        flush();
        return undefined;
    }
    // Node-RED's body is an async function whose results are sent from a
    // reaction to its promise: queued here, after the microtasks the body
    // queued (C runs them before the next message), so what they send or
    // change in msg comes first as there
    pending.push(r, msg, done);
    resolved.then(finish);
    return undefined;
}
const pending = [];
const resolved = PromiseC.resolve();
function finish() {
    const r = pending.shift(), msg = pending.shift(), done = pending.shift();
    try {
        const out = collect(r, msg._msgid, []);
        if (done) {
            const k = msg[REQ];
            out.push(typeof k === "number" && k < 0 ? ["done", msg, -k] : ["done", msg]);
        }
        flush();
        if (out.length === 1 && isArray(out[0]) && __node__.pass(out[0][0], out[0][1])) return;
        if (out.length) { const t = crossing(out); __node__.out(t, crossing.holders); }
    } catch (e) { __node__.fail(e, msg, 0); flush(); }
}
function sendText(id, msgs) {
    const out = collect(msgs, id, []);
    if (!out.length || (out.length === 1 && isArray(out[0]) && __node__.pass(out[0][0], out[0][1]))) return "";
    const t = crossing(out);
    sendText.holders = crossing.holders;
    return t;
}
function settle(p, m, kind) {
    p.then(v => { __node__.result(v, m, kind); flush(); }, e => { __node__.fail(e, m, kind); flush(); });
}
return { flush, on, close, settle, Promise, drive, sendText, last, adopt, REQ };
})
