// prelude.js: the globals of a Carmine JavaScript sandbox beside the
// language's own: Buffer, util, console, URL, URLSearchParams, the timer
// functions and RED.util, written for Carmine (Node's and Node-RED's
// behaviour, not their code). Evaluated once per sandbox; the value of this
// script is a function that receives the natives of sandbox.c.
(function (natives) {
"use strict";
const G = globalThis;
const def = (o, k, v) => Object.defineProperty(o, k, { value: v, writable: true, configurable: true, enumerable: false });
// true while toJSON (below) crosses a value to C: Buffers, Uint8Arrays and
// handles then give their markers to the engine's own JSON.stringify
let crossing = false;

// A live handle of the runtime (an http in message's msg.res): opaque.
class Handle { constructor(id) { def(this, "_id", id); } }
def(Handle.prototype, "toJSON", function () { return crossing ? { "\u0001h": this._id } : {}; });

// The globals of the sandbox (Buffer, util, console, timers, URL, RED).
// Built when the sandbox is made: built on first use instead, the first
// message that touches one pays for it inside its own time (a timer it
// starts counts from the turn's start), and it saved little memory.
build();

function build() {
// ---------------------------------------------------------------- Buffer
function utf8Encode(str) {
    const out = [];
    for (let i = 0; i < str.length; i++) {
        let c = str.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
            const d = str.charCodeAt(i + 1);
            if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
            else c = 0xfffd;
        } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        if (c < 0x80) out.push(c);
        else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
}
function utf8Decode(b, start, end) {
    let s = "", i = start;
    const parts = [];
    let codes = [];
    while (i < end) {
        const c = b[i];
        let cp = 0xfffd, n = 1;
        if (c < 0x80) cp = c;
        else if (c >= 0xc2 && c < 0xe0 && i + 1 < end && (b[i + 1] & 0xc0) === 0x80) { cp = ((c & 31) << 6) | (b[i + 1] & 63); n = 2; }
        else if (c >= 0xe0 && c < 0xf0 && i + 2 < end && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80) {
            cp = ((c & 15) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63); n = 3;
            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) { cp = 0xfffd; n = 1; }
        } else if (c >= 0xf0 && c < 0xf5 && i + 3 < end && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80 && (b[i + 3] & 0xc0) === 0x80) {
            cp = ((c & 7) << 18) | ((b[i + 1] & 63) << 12) | ((b[i + 2] & 63) << 6) | (b[i + 3] & 63); n = 4;
            if (cp < 0x10000 || cp > 0x10ffff) { cp = 0xfffd; n = 1; }
        }
        if (cp >= 0x10000) { cp -= 0x10000; codes.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff)); }
        else codes.push(cp);
        if (codes.length > 8000) { parts.push(String.fromCharCode.apply(null, codes)); codes = []; }
        i += n;
    }
    parts.push(String.fromCharCode.apply(null, codes));
    s = parts.join("");
    return s;
}
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
function base64Encode(b, start, end, url) {
    const T = url ? B64URL : B64;
    let s = "";
    let i = start;
    for (; i + 2 < end; i += 3) {
        const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
        s += T[n >> 18] + T[(n >> 12) & 63] + T[(n >> 6) & 63] + T[n & 63];
    }
    if (end - i === 1) { const n = b[i] << 16; s += T[n >> 18] + T[(n >> 12) & 63] + (url ? "" : "=="); }
    else if (end - i === 2) { const n = (b[i] << 16) | (b[i + 1] << 8); s += T[n >> 18] + T[(n >> 12) & 63] + T[(n >> 6) & 63] + (url ? "" : "="); }
    return s;
}
function base64Decode(str) {
    const out = [];
    let acc = 0, bits = 0;
    for (let i = 0; i < str.length; i++) {
        const ch = str[i];
        let v;
        if (ch === "=") break;
        if (ch === "-") v = 62; else if (ch === "_") v = 63; else v = B64.indexOf(ch);
        if (v < 0) continue;
        acc = (acc << 6) | v; bits += 6;
        if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 255); }
    }
    return out;
}
function hexDecode(str) {
    const out = [];
    for (let i = 0; i + 1 < str.length; i += 2) {
        const v = parseInt(str.substr(i, 2), 16);
        if (Number.isNaN(v)) break;
        out.push(v);
    }
    return out;
}
function normEnc(enc) {
    if (enc === undefined || enc === null) return "utf8";
    const e = String(enc).toLowerCase();
    switch (e) {
    case "utf8": case "utf-8": return "utf8";
    case "hex": return "hex";
    case "base64": return "base64";
    case "base64url": return "base64url";
    case "ascii": return "ascii";
    case "latin1": case "binary": return "latin1";
    case "ucs2": case "ucs-2": case "utf16le": case "utf-16le": return "utf16le";
    }
    throw new TypeError("Unknown encoding: " + enc);
}
function encodeString(str, enc) {
    switch (normEnc(enc)) {
    case "utf8": return utf8Encode(str);
    case "hex": return hexDecode(str);
    case "base64": case "base64url": return base64Decode(str);
    case "ascii": case "latin1": { const o = new Array(str.length); for (let i = 0; i < str.length; i++) o[i] = str.charCodeAt(i) & 255; return o; }
    case "utf16le": { const o = []; for (let i = 0; i < str.length; i++) { const c = str.charCodeAt(i); o.push(c & 255, c >> 8); } return o; }
    }
}
function decodeBytes(b, enc, start, end) {
    switch (normEnc(enc)) {
    case "utf8": return utf8Decode(b, start, end);
    case "hex": { let s = ""; for (let i = start; i < end; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16); return s; }
    case "base64": return base64Encode(b, start, end, false);
    case "base64url": return base64Encode(b, start, end, true);
    case "ascii": { let s = ""; for (let i = start; i < end; i++) s += String.fromCharCode(b[i] & 127); return s; }
    case "latin1": { let s = ""; for (let i = start; i < end; i++) s += String.fromCharCode(b[i]); return s; }
    case "utf16le": { let s = ""; for (let i = start; i + 1 < end; i += 2) s += String.fromCharCode(b[i] | (b[i + 1] << 8)); return s; }
    }
}
function rangeError(name, off, len) {
    const e = new RangeError(`The value of "${name}" is out of range. It must be >= 0 and <= ${len}. Received ${off}`);
    e.code = "ERR_OUT_OF_RANGE";
    return e;
}

class Buffer extends Uint8Array {
    static from(value, encOrOffset, length) {
        if (typeof value === "string") return Buffer._of(encodeString(value, encOrOffset));
        if (value instanceof ArrayBuffer) {
            const off = encOrOffset === undefined ? 0 : +encOrOffset;
            const len = length === undefined ? value.byteLength - off : +length;
            return new Buffer(value, off, len);
        }
        if (ArrayBuffer.isView(value)) {
            const b = new Buffer(value.length);
            for (let i = 0; i < value.length; i++) b[i] = value[i];
            return b;
        }
        if (Array.isArray(value)) return Buffer._of(value);
        if (value && typeof value === "object") {
            if (value.type === "Buffer" && Array.isArray(value.data)) return Buffer._of(value.data);
            if (typeof value.length === "number") return Buffer._of(Array.prototype.slice.call(value));
            if (typeof value.valueOf === "function") { const v = value.valueOf(); if (v !== value) return Buffer.from(v, encOrOffset, length); }
        }
        throw new TypeError("The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received " + (value === null ? "null" : typeof value));
    }
    static _of(arr) { const b = new Buffer(arr.length); for (let i = 0; i < arr.length; i++) b[i] = arr[i]; return b; }
    static alloc(size, fill, enc) { const b = new Buffer(size); if (fill !== undefined && fill !== 0) b.fill(fill, 0, size, enc); return b; }
    static allocUnsafe(size) { return new Buffer(size); }
    static allocUnsafeSlow(size) { return new Buffer(size); }
    static isBuffer(b) { return b instanceof Buffer; }
    static isEncoding(e) { try { normEnc(e); return typeof e === "string"; } catch (x) { return false; } }
    static byteLength(v, enc) {
        if (typeof v !== "string") return v.byteLength;
        return encodeString(v, enc).length;
    }
    static concat(list, total) {
        if (total === undefined) { total = 0; for (const b of list) total += b.length; }
        const r = Buffer.alloc(total);
        let off = 0;
        for (const b of list) { for (let i = 0; i < b.length && off < total; i++) r[off++] = b[i]; }
        return r;
    }
    static compare(a, b) { return a.compare(b); }
    toString(enc, start, end) {
        start = start === undefined ? 0 : Math.max(0, start | 0);
        end = end === undefined ? this.length : Math.min(this.length, end | 0);
        if (end <= start) return "";
        return decodeBytes(this, enc, start, end);
    }
    toJSON() { return crossing ? { "\u0001b": hex(this) } : { type: "Buffer", data: Array.prototype.slice.call(this) }; }
    equals(o) {
        if (!(o instanceof Uint8Array)) throw new TypeError('The "otherBuffer" argument must be an instance of Buffer or Uint8Array.');
        if (o.length !== this.length) return false;
        for (let i = 0; i < this.length; i++) if (this[i] !== o[i]) return false;
        return true;
    }
    compare(o) {
        const n = Math.min(this.length, o.length);
        for (let i = 0; i < n; i++) if (this[i] !== o[i]) return this[i] < o[i] ? -1 : 1;
        return this.length < o.length ? -1 : this.length > o.length ? 1 : 0;
    }
    slice(start, end) { return this.subarray(start, end); }
    subarray(start, end) {
        const u = Uint8Array.prototype.subarray.call(this, start, end);
        return new Buffer(u.buffer, u.byteOffset, u.length);
    }
    indexOf(value, byteOffset, enc) {
        let off = byteOffset === undefined ? 0 : byteOffset | 0;
        if (off < 0) off = Math.max(0, this.length + off);
        if (typeof value === "number") return Uint8Array.prototype.indexOf.call(this, value & 255, off);
        const needle = typeof value === "string" ? encodeString(value, enc) : value;
        if (needle.length === 0) return off <= this.length ? off : this.length;
        outer: for (let i = off; i + needle.length <= this.length; i++) {
            for (let j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
            return i;
        }
        return -1;
    }
    lastIndexOf(value, byteOffset, enc) {
        const needle = typeof value === "number" ? [value & 255] : typeof value === "string" ? encodeString(value, enc) : value;
        let start = byteOffset === undefined ? this.length - needle.length : Math.min(byteOffset | 0, this.length - needle.length);
        outer: for (let i = start; i >= 0; i--) {
            for (let j = 0; j < needle.length; j++) if (this[i + j] !== needle[j]) continue outer;
            return i;
        }
        return -1;
    }
    includes(value, byteOffset, enc) { return this.indexOf(value, byteOffset, enc) !== -1; }
    fill(value, offset, end, enc) {
        if (typeof offset === "string") { enc = offset; offset = 0; end = this.length; }
        offset = offset === undefined ? 0 : offset; end = end === undefined ? this.length : end;
        if (typeof value === "number") { Uint8Array.prototype.fill.call(this, value & 255, offset, end); return this; }
        const bytes = typeof value === "string" ? encodeString(value, enc) : Array.from(value);
        if (!bytes.length) { Uint8Array.prototype.fill.call(this, 0, offset, end); return this; }
        for (let i = offset, j = 0; i < end; i++, j = (j + 1) % bytes.length) this[i] = bytes[j];
        return this;
    }
    write(str, offset, length, enc) {
        if (typeof offset === "string") { enc = offset; offset = 0; length = undefined; }
        else if (typeof length === "string") { enc = length; length = undefined; }
        offset = offset === undefined ? 0 : offset >>> 0;
        const bytes = encodeString(str, enc);
        const n = Math.min(bytes.length, this.length - offset, length === undefined ? Infinity : length);
        for (let i = 0; i < n; i++) this[offset + i] = bytes[i];
        return n;
    }
    copy(target, tStart, sStart, sEnd) {
        tStart = tStart || 0; sStart = sStart || 0; sEnd = sEnd === undefined ? this.length : sEnd;
        let n = 0;
        for (let i = sStart; i < sEnd && tStart + n < target.length; i++, n++) target[tStart + n] = this[i];
        return n;
    }
    reverse() { Uint8Array.prototype.reverse.call(this); return this; }
    swap16() { for (let i = 0; i + 1 < this.length; i += 2) { const t = this[i]; this[i] = this[i + 1]; this[i + 1] = t; } return this; }
    _view() { return new DataView(this.buffer, this.byteOffset, this.byteLength); }
    _check(off, size) {
        if (off === undefined) off = 0;
        if (typeof off !== "number") throw new TypeError('The "offset" argument must be of type number. Received type ' + typeof off);
        if (off !== Math.floor(off) || off < 0 || off + size > this.length) throw rangeError("offset", off, this.length - size);
        return off;
    }
    readUIntBE(off, n) { off = this._check(off, n); let v = 0; for (let i = 0; i < n; i++) v = v * 256 + this[off + i]; return v; }
    readUIntLE(off, n) { off = this._check(off, n); let v = 0; for (let i = n - 1; i >= 0; i--) v = v * 256 + this[off + i]; return v; }
    readIntBE(off, n) { const v = this.readUIntBE(off, n); const lim = 2 ** (8 * n - 1); return v >= lim ? v - 2 * lim : v; }
    readIntLE(off, n) { const v = this.readUIntLE(off, n); const lim = 2 ** (8 * n - 1); return v >= lim ? v - 2 * lim : v; }
    writeUIntBE(v, off, n) { off = this._check(off, n); for (let i = n - 1; i >= 0; i--) { this[off + i] = v & 255; v = Math.floor(v / 256); } return off + n; }
    writeUIntLE(v, off, n) { off = this._check(off, n); for (let i = 0; i < n; i++) { this[off + i] = v & 255; v = Math.floor(v / 256); } return off + n; }
    writeIntBE(v, off, n) { return this.writeUIntBE(v < 0 ? v + 2 ** (8 * n) : v, off, n); }
    writeIntLE(v, off, n) { return this.writeUIntLE(v < 0 ? v + 2 ** (8 * n) : v, off, n); }
}
const views = [["UInt8", 1, "getUint8", "setUint8"], ["Int8", 1, "getInt8", "setInt8"],
    ["UInt16", 2, "getUint16", "setUint16"], ["Int16", 2, "getInt16", "setInt16"],
    ["UInt32", 4, "getUint32", "setUint32"], ["Int32", 4, "getInt32", "setInt32"],
    ["Float", 4, "getFloat32", "setFloat32"], ["Double", 8, "getFloat64", "setFloat64"],
    ["BigUInt64", 8, "getBigUint64", "setBigUint64"], ["BigInt64", 8, "getBigInt64", "setBigInt64"]];
for (const [name, size, get, set] of views) {
    const ends = size === 1 ? [""] : ["LE", "BE"];
    for (const e of ends) {
        const le = e === "LE";
        const read = function (off) { off = this._check(off, size); return this._view()[get](off, le); };
        const write = function (v, off) { off = this._check(off, size); this._view()[set](off, get.indexOf("Big") > 0 ? v : +v, le); return off + size; };
        def(Buffer.prototype, "read" + name + e, read);
        def(Buffer.prototype, "write" + name + e, write);
        if (name.startsWith("UInt") || name.startsWith("BigUInt")) {
            const alias = name.replace("UInt", "Uint");
            def(Buffer.prototype, "read" + alias + e, read);
            def(Buffer.prototype, "write" + alias + e, write);
        }
    }
}
def(Buffer, "poolSize", 8192);
def(G, "Buffer", Buffer);

// ---------------------------------------------------------------- util
function inspect(v, opts) {
    let depth = 2;
    if (opts && typeof opts === "object" && "depth" in opts) depth = opts.depth === null || opts.depth === Infinity ? 100 : opts.depth;
    if (typeof v === "string") return "'" + v.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
    if (typeof v === "function") return v.name ? `[Function: ${v.name}]` : "[Function (anonymous)]";
    if (typeof v === "symbol") return v.toString();
    if (typeof v === "bigint") return v + "n";
    if (v instanceof Error || tag(v) === "Error") return v.stack || String(v);
    if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (v instanceof Map) return `Map(${v.size}) {` + (v.size ? " " + Array.from(v, ([k, x]) => inspect(k, opts) + " => " + inspect(x, opts)).join(", ") + " " : "") + "}";
    if (v instanceof Set) return `Set(${v.size}) {` + (v.size ? " " + Array.from(v, x => inspect(x, opts)).join(", ") + " " : "") + "}";
    if (v instanceof Promise) return "Promise { <pending> }";
    return natives.inspect(v, depth);
}
function formatWithOptions(opts, f, ...args) {
    const show = v => typeof v === "string" ? v : inspect(v, opts);
    if (typeof f !== "string") return [f, ...args].map(show).join(" ");
    let i = 0;
    let out = f.replace(/%([sdifjoOc%])/g, (m, c) => {
        if (c === "%") return "%";
        if (i >= args.length) return m;
        const a = args[i++];
        switch (c) {
        case "s":
            if (typeof a === "bigint") return a + "n";
            if (typeof a === "symbol") return a.toString();
            if (a !== null && typeof a === "object") return inspect(a, { depth: 0 });
            return typeof a === "number" && Object.is(a, -0) ? "-0" : String(a);
        case "d": return typeof a === "bigint" ? a + "n" : typeof a === "symbol" ? "NaN" : String(Number(a));
        case "i": return typeof a === "bigint" ? a + "n" : typeof a === "symbol" ? "NaN" : String(parseInt(a));
        case "f": return typeof a === "symbol" ? "NaN" : String(parseFloat(a));
        case "j": try { return JSON.stringify(a); } catch (e) { return "[Circular]"; }
        case "o": return inspect(a, { depth: 4 });
        case "O": return inspect(a, opts);
        case "c": return "";
        }
    });
    for (; i < args.length; i++) out += " " + show(args[i]);
    return out;
}
const format = (...a) => formatWithOptions({}, ...a);
const custom = Symbol.for("nodejs.util.promisify.custom");
function promisify(fn) {
    if (typeof fn !== "function") throw new TypeError('The "original" argument must be of type function');
    if (fn[custom]) return fn[custom];
    return function (...args) {
        return new Promise((resolve, reject) => {
            fn.call(this, ...args, (err, ...values) => err ? reject(err) : resolve(values.length > 1 ? values : values[0]));
        });
    };
}
def(promisify, "custom", custom);
function callbackify(fn) {
    return function (...args) {
        const cb = args.pop();
        fn.apply(this, args).then(v => cb(null, v), e => cb(e || new Error("Promise was rejected with a falsy value")));
    };
}
function isDeepStrictEqual(a, b) {
    if (Object.is(a, b)) return true;
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (a instanceof Date) return a.getTime() === b.getTime();
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !isDeepStrictEqual(a[k], b[k])) return false;
    return true;
}
const tag = v => Object.prototype.toString.call(v).slice(8, -1);
const types = {
    isDate: v => v instanceof Date, isRegExp: v => v instanceof RegExp, isPromise: v => v instanceof Promise,
    isMap: v => v instanceof Map, isSet: v => v instanceof Set, isWeakMap: v => v instanceof WeakMap,
    isWeakSet: v => v instanceof WeakSet, isNativeError: v => tag(v) === "Error",
    isTypedArray: v => ArrayBuffer.isView(v) && !(v instanceof DataView), isUint8Array: v => v instanceof Uint8Array,
    isArrayBuffer: v => v instanceof ArrayBuffer, isAnyArrayBuffer: v => v instanceof ArrayBuffer,
    isDataView: v => v instanceof DataView, isAsyncFunction: v => tag(v) === "AsyncFunction",
    isGeneratorFunction: v => tag(v) === "GeneratorFunction" || tag(v) === "AsyncGeneratorFunction",
    isGeneratorObject: v => tag(v) === "Generator", isBoxedPrimitive: v => v instanceof Number || v instanceof String || v instanceof Boolean,
    isNumberObject: v => v instanceof Number, isStringObject: v => v instanceof String, isBooleanObject: v => v instanceof Boolean,
    isSymbolObject: v => typeof v === "object" && v !== null && tag(v) === "Symbol", isProxy: () => false,
};
inspect.custom = Symbol.for("nodejs.util.inspect.custom");
const util = {
    format, formatWithOptions, inspect, promisify, callbackify, isDeepStrictEqual, types,
    inherits(ctor, superCtor) { Object.setPrototypeOf(ctor.prototype, superCtor.prototype); Object.setPrototypeOf(ctor, superCtor); def(ctor, "super_", superCtor); },
    deprecate: fn => fn,
    isArray: Array.isArray, isBoolean: v => typeof v === "boolean", isNull: v => v === null,
    isNullOrUndefined: v => v == null, isNumber: v => typeof v === "number", isString: v => typeof v === "string",
    isSymbol: v => typeof v === "symbol", isUndefined: v => v === undefined, isRegExp: types.isRegExp,
    isObject: v => v !== null && typeof v === "object", isDate: types.isDate, isError: types.isNativeError,
    isFunction: v => typeof v === "function", isPrimitive: v => v === null || (typeof v !== "object" && typeof v !== "function"),
    isBuffer: v => v instanceof Buffer,
};
def(G, "util", util);

// ---------------------------------------------------------------- console
const counts = {}, timers = {};
const consoleObj = {
    log: (...a) => natives.print(1, format(...a)), info: (...a) => natives.print(1, format(...a)),
    debug: (...a) => natives.print(1, format(...a)), warn: (...a) => natives.print(2, format(...a)),
    error: (...a) => natives.print(2, format(...a)), trace: (...a) => natives.print(2, "Trace: " + format(...a)),
    dir: (v, o) => natives.print(1, inspect(v, o)),
    table: (v) => natives.print(1, inspect(v)),
    assert: (c, ...a) => { if (!c) natives.print(2, "Assertion failed" + (a.length ? ": " + format(...a) : "")); },
    count: (l = "default") => { counts[l] = (counts[l] || 0) + 1; natives.print(1, `${l}: ${counts[l]}`); },
    countReset: (l = "default") => { counts[l] = 0; },
    time: (l = "default") => { timers[l] = Date.now(); },
    timeEnd: (l = "default") => { if (l in timers) { natives.print(1, `${l}: ${Date.now() - timers[l]}ms`); delete timers[l]; } },
    timeLog: (l = "default", ...a) => { if (l in timers) natives.print(1, `${l}: ${Date.now() - timers[l]}ms` + (a.length ? " " + format(...a) : "")); },
    group: () => {}, groupEnd: () => {}, groupCollapsed: () => {},
};
def(G, "console", consoleObj);

// ---------------------------------------------------------------- timers
function setTimeout(fn, ms, ...args) { return natives.setTimeout(fn, ms, ...args); }
function setInterval(fn, ms, ...args) { return natives.setInterval(fn, ms, ...args); }
function clearTimeout(id) { natives.clearTimer(id); }
function clearInterval(id) { natives.clearTimer(id); }
def(setTimeout, custom, (ms, value) => new Promise(resolve => setTimeout(() => resolve(value), ms)));
def(G, "setTimeout", setTimeout);
def(G, "setInterval", setInterval);
def(G, "clearTimeout", clearTimeout);
def(G, "clearInterval", clearInterval);
def(G, "promisify", promisify);

// ---------------------------------------------------------------- URL
const special = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443, "ftp:": 21, "file:": null };
function formEncode(s) {
    return encodeURIComponent(s).replace(/%20/g, "+").replace(/[!'()~]/g, c => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}
function formDecode(s) {
    s = s.replace(/\+/g, " ");
    try { return decodeURIComponent(s); } catch (e) { return s.replace(/%([0-9a-fA-F]{2})/g, (m, h) => String.fromCharCode(parseInt(h, 16))); }
}
class URLSearchParams {
    constructor(init) {
        def(this, "_list", []);
        def(this, "_url", null);
        if (init === undefined || init === null) return;
        if (typeof init === "object") {
            if (typeof init[Symbol.iterator] === "function") for (const [k, v] of init) this._list.push([String(k), String(v)]);
            else for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
        } else this._parse(String(init));
    }
    _parse(s) {
        this._list.length = 0;
        if (s[0] === "?") s = s.slice(1);
        for (const part of s.split("&")) {
            if (!part) continue;
            const i = part.indexOf("=");
            this._list.push(i < 0 ? [formDecode(part), ""] : [formDecode(part.slice(0, i)), formDecode(part.slice(i + 1))]);
        }
    }
    _update() { if (this._url) { const s = this.toString(); this._url._search = s ? "?" + s : ""; } }
    get size() { return this._list.length; }
    append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
    delete(k, v) { this._list = this._list.filter(([a, b]) => !(a === String(k) && (v === undefined || b === String(v)))); this._update(); }
    get(k) { const e = this._list.find(([a]) => a === String(k)); return e ? e[1] : null; }
    getAll(k) { return this._list.filter(([a]) => a === String(k)).map(e => e[1]); }
    has(k, v) { return this._list.some(([a, b]) => a === String(k) && (v === undefined || b === String(v))); }
    set(k, v) {
        k = String(k); v = String(v);
        const i = this._list.findIndex(([a]) => a === k);
        if (i < 0) this._list.push([k, v]);
        else { this._list[i][1] = v; this._list = this._list.filter(([a], j) => j <= i || a !== k); }
        this._update();
    }
    sort() { this._list.sort((x, y) => x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0); this._update(); }
    forEach(fn, self) { for (const [k, v] of this._list) fn.call(self, v, k, this); }
    keys() { return this._list.map(e => e[0])[Symbol.iterator](); }
    values() { return this._list.map(e => e[1])[Symbol.iterator](); }
    entries() { return this._list.map(e => [e[0], e[1]])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&"); }
}
function invalidUrl(input) {
    const e = new TypeError("Invalid URL");
    e.code = "ERR_INVALID_URL";
    e.input = input;
    return e;
}
function normPath(path) {
    const out = [];
    const segs = path.split("/");
    for (let i = 1; i < segs.length; i++) {
        const s = segs[i];
        if (s === "..") { out.pop(); if (i === segs.length - 1) out.push(""); }
        else if (s === ".") { if (i === segs.length - 1) out.push(""); }
        else out.push(s);
    }
    return "/" + out.join("/");
}
const encPath = s => s.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@\/%]/g, c => encodeURIComponent(c));
const encQuery = s => s.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@\/?%]/g, c => encodeURIComponent(c));
class URL {
    constructor(input, base) {
        input = String(input).trim();
        const m = /^([a-zA-Z][a-zA-Z0-9+.\-]*):(.*)$/.exec(input);
        if (!m) {
            if (base === undefined) throw invalidUrl(input);
            const b = base instanceof URL ? base : new URL(base);
            let rest = input;
            let path = b._pathname, search = b._search, hash = "";
            const h = rest.indexOf("#");
            if (h >= 0) { hash = rest.slice(h); rest = rest.slice(0, h); }
            if (rest.startsWith("//")) return new URL(b._protocol + rest + hash);
            const q = rest.indexOf("?");
            if (q >= 0) { search = rest.slice(q); rest = rest.slice(0, q); } else if (rest) search = "";
            if (rest.startsWith("/")) path = rest;
            else if (rest) path = b._pathname.replace(/[^\/]*$/, "") + rest;
            return new URL(b._protocol + "//" + (b._username ? b._username + (b._password ? ":" + b._password : "") + "@" : "") + b.host + path + search + hash);
        }
        let protocol = m[1].toLowerCase() + ":";
        let rest = m[2];
        def(this, "_protocol", protocol);
        let hash = "", search = "";
        const h = rest.indexOf("#");
        if (h >= 0) { hash = rest.slice(h); rest = rest.slice(0, h); }
        const q = rest.indexOf("?");
        if (q >= 0) { search = rest.slice(q); rest = rest.slice(0, q); }
        let username = "", password = "", hostname = "", port = "", path = rest;
        const isSpecial = protocol in special;
        if (isSpecial) rest = rest.replace(/\\/g, "/");
        if (rest.startsWith("//") || (isSpecial && protocol !== "file:")) {
            rest = rest.replace(/^\/*/, "");
            const slash = rest.search(/\//);
            let auth = slash < 0 ? rest : rest.slice(0, slash);
            path = slash < 0 ? "" : rest.slice(slash);
            const at = auth.lastIndexOf("@");
            if (at >= 0) {
                const cred = auth.slice(0, at);
                auth = auth.slice(at + 1);
                const c = cred.indexOf(":");
                username = c < 0 ? cred : cred.slice(0, c);
                password = c < 0 ? "" : cred.slice(c + 1);
            }
            const pm = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(auth);
            if (!pm) throw invalidUrl(input);
            hostname = pm[1].toLowerCase();
            port = pm[2] || "";
            if (port !== "") { const pn = +port; if (pn > 65535) throw invalidUrl(input); port = pn === special[protocol] ? "" : String(pn); }
            if (isSpecial && protocol !== "file:" && !hostname) throw invalidUrl(input);
            if (/[\s<>^|%]/.test(hostname) && !hostname.startsWith("[")) throw invalidUrl(input);
            if (isSpecial) path = normPath(path || "/");
        }
        def(this, "_username", username);
        def(this, "_password", password);
        def(this, "_hostname", hostname);
        def(this, "_port", port);
        def(this, "_pathname", isSpecial ? encPath(path) : path);
        def(this, "_search", search.length > 1 ? encQuery(search) : "");
        def(this, "_hash", hash.length > 1 ? "#" + encPath(hash.slice(1)) : "");
        def(this, "_hasAuthority", isSpecial || m[2].startsWith("//"));
        const sp = new URLSearchParams(this._search);
        sp._url = this;
        def(this, "_sp", sp);
    }
    get protocol() { return this._protocol; }
    get username() { return this._username; }
    get password() { return this._password; }
    get hostname() { return this._hostname; }
    set hostname(v) { this._hostname = String(v).toLowerCase(); }
    get port() { return this._port; }
    set port(v) { v = String(v); this._port = v === String(special[this._protocol]) ? "" : v; }
    get host() { return this._hostname + (this._port ? ":" + this._port : ""); }
    get origin() { return this._protocol in special && this._protocol !== "file:" ? this._protocol + "//" + this.host : "null"; }
    get pathname() { return this._pathname; }
    set pathname(v) { this._pathname = encPath(String(v).startsWith("/") ? String(v) : "/" + v); }
    get search() { return this._search; }
    set search(v) { v = String(v); if (v && v[0] !== "?") v = "?" + v; this._search = v.length > 1 ? encQuery(v) : ""; this._sp._parse(this._search); }
    get searchParams() { return this._sp; }
    get hash() { return this._hash; }
    set hash(v) { v = String(v); if (v && v[0] !== "#") v = "#" + v; this._hash = v.length > 1 ? v : ""; }
    get href() {
        const auth = this._username ? this._username + (this._password ? ":" + this._password : "") + "@" : "";
        return this._protocol + (this._hasAuthority ? "//" + auth + this.host : "") + this._pathname + this._search + this._hash;
    }
    set href(v) { const u = new URL(v); for (const k of Object.getOwnPropertyNames(u)) this[k] = u[k]; this._sp._url = this; }
    toString() { return this.href; }
    toJSON() { return this.href; }
    static canParse(u, b) { try { new URL(u, b); return true; } catch (e) { return false; } }
}
def(G, "URL", URL);
def(G, "URLSearchParams", URLSearchParams);

// ---------------------------------------------------------------- RED.util
function cloneMessage(v) {
    if (v === null || typeof v !== "object") return v;
    if (v instanceof Handle) return v;
    if (v instanceof Buffer) return Buffer.from(v);
    if (v instanceof Date) return new Date(v.getTime());
    if (v instanceof RegExp) return v;
    if (Array.isArray(v)) return v.map(cloneMessage);
    if (v instanceof Map) return new Map(Array.from(v, ([k, x]) => [k, cloneMessage(x)]));
    if (v instanceof Set) return new Set(Array.from(v, cloneMessage));
    const r = {};
    for (const k of Object.keys(v)) {
        if ((k === "req" || k === "res") && v === cloneMessage.top) r[k] = v[k];
        else r[k] = cloneMessage(v[k]);
    }
    return r;
}
function cloneTop(msg) {
    cloneMessage.top = msg;
    try { return cloneMessage(msg); } finally { cloneMessage.top = undefined; }
}
function normalisePropertyExpression(str) {
    if (typeof str !== "string" || str.length === 0) throw new Error("Invalid property expression: zero-length");
    const parts = [];
    let i = 0;
    const bad = (pos) => { throw new Error("Invalid property expression: unexpected " + str[pos] + " at position " + pos); };
    let cur = "";
    let start = 0;
    while (i < str.length) {
        const c = str[i];
        if (c === ".") {
            if (i === start) bad(i);
            parts.push(cur); cur = ""; i++; start = i;
        } else if (c === "[") {
            if (i > start) parts.push(cur);
            else if (i === 0) bad(i);
            cur = "";
            i++;
            if (str[i] === "'" || str[i] === '"') {
                const q = str[i];
                let j = i + 1, s = "";
                while (j < str.length && str[j] !== q) { if (str[j] === "\\") j++; s += str[j]; j++; }
                if (str[j + 1] !== "]") bad(j + 1);
                parts.push(s);
                i = j + 2;
            } else {
                const j = str.indexOf("]", i);
                if (j < 0) bad(i);
                const num = str.slice(i, j);
                if (!/^\d+$/.test(num)) bad(i);
                parts.push(Number(num));
                i = j + 1;
            }
            if (i < str.length && str[i] !== "." && str[i] !== "[") bad(i);
            if (str[i] === ".") { i++; if (i >= str.length) bad(i - 1); }
            start = i;
        } else { cur += c; i++; }
    }
    if (i > start) parts.push(cur);
    return parts;
}
function getObjectProperty(obj, expr) {
    const parts = normalisePropertyExpression(expr);
    let v = obj;
    for (const p of parts) {
        if (v === null || v === undefined) return undefined;
        v = v[p];
    }
    return v;
}
function getMessageProperty(msg, expr) {
    if (expr.indexOf("msg.") === 0) expr = expr.substring(4);
    return getObjectProperty(msg, expr);
}
function setObjectProperty(obj, expr, value, createMissing) {
    if (createMissing === undefined) createMissing = typeof value !== "undefined";
    const parts = normalisePropertyExpression(expr);
    let o = obj;
    for (let i = 0; i < parts.length - 1; i++) {
        const k = parts[i];
        if (o[k] === undefined || o[k] === null) {
            if (!createMissing) return false;
            o[k] = typeof parts[i + 1] === "number" ? [] : {};
        } else if (typeof o[k] !== "object" && typeof o[k] !== "function") {
            throw new Error("Cannot set property of non-object type: " + parts.slice(0, i + 1).join("."));
        }
        o = o[k];
    }
    const last = parts[parts.length - 1];
    if (value === undefined) {
        if (Array.isArray(o) && typeof last === "number") o.splice(last, 1);
        else delete o[last];
    } else o[last] = value;
    return true;
}
function setMessageProperty(msg, expr, value, createMissing) {
    if (expr.indexOf("msg.") === 0) expr = expr.substring(4);
    return setObjectProperty(msg, expr, value, createMissing);
}
function compareObjects(a, b) {
    if (a === b) return true;
    if (a instanceof Buffer && b instanceof Buffer) return a.equals(b);
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!compareObjects(a[k], b[k])) return false;
    return true;
}
function ensureString(o) {
    if (Buffer.isBuffer(o)) return o.toString();
    if (typeof o === "object") return JSON.stringify(o);
    if (typeof o === "string") return o;
    return "" + o;
}
function ensureBuffer(o) {
    if (Buffer.isBuffer(o)) return o;
    if (typeof o === "object") o = JSON.stringify(o);
    else if (typeof o !== "string") o = "" + o;
    return Buffer.from(o);
}
function encodeObject(msg, opts) {
    const max = (opts && opts.maxLength) || 1000;
    const m = Object.assign({}, msg);
    const v = m.msg;
    if (Object.prototype.toString.call(v) === "[object Error]") { m.format = "error"; m.msg = JSON.stringify({ name: v.name, message: v.message }); return m; }
    if (v instanceof Buffer) { m.format = "buffer[" + v.length + "]"; m.msg = v.toString("hex", 0, max * 2); return m; }
    if (Array.isArray(v)) m.format = "array[" + v.length + "]";
    else if (v === null) { m.format = "null"; m.msg = "null"; return m; }
    else if (typeof v === "object") m.format = "Object";
    else if (v === undefined) { m.format = "undefined"; m.msg = "(undefined)"; return m; }
    else { m.format = typeof v; m.msg = typeof v === "string" ? (v.length > max ? v.substring(0, max) + "..." : v) : String(v); return m; }
    m.msg = JSON.stringify(v, (k, x) => x instanceof Buffer ? { type: "Buffer", data: Array.from(x) } : x);
    return m;
}
function evaluateNodeProperty(value, type, node, msg, callback) {
    let r;
    let err;
    try {
        switch (type) {
        case "str": r = "" + value; break;
        case "num": r = Number(value); break;
        case "bool": r = /^true$/i.test(value); break;
        case "json": r = JSON.parse(value); break;
        case "bin": r = Buffer.from(JSON.parse(value)); break;
        case "date": r = Date.now(); break;
        case "re": r = new RegExp(value); break;
        case "msg": r = msg ? getMessageProperty(msg, value) : undefined; break;
        case "flow": case "global": r = G[type].get(value); break;
        case "env": r = G.env.get(value); break;
        case "jsonata": throw new Error("JSONata in RED.util.evaluateNodeProperty is not supported in a function node");
        default: r = value;
        }
    } catch (e) { err = e; }
    if (callback) { callback(err, r); return; }
    if (err) throw err;
    return r;
}
const REDutil = {
    cloneMessage: cloneTop, getMessageProperty, setMessageProperty, getObjectProperty, setObjectProperty,
    normalisePropertyExpression, compareObjects, ensureString, ensureBuffer, encodeObject, evaluateNodeProperty,
    generateId: () => natives.generateId(),
};
def(G, "RED", { util: REDutil });
}
// ---------------------------------------------------------------- crossing
// Values cross to C as JSON text with markers for what JSON lacks (see
// sandbox.c): {"\u0001b": hex} a Buffer, {"\u0001n": "NaN"} a number JSON
// cannot hold, {"\u0001h": id} a live handle (msg.res), kept opaque here.
function hex(b) {
    let s = "";
    for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
    return s;
}
function u8ToJSON() { return { "\u0001b": hex(this) }; }
// An Error crosses as its own enumerable members (what JSON.stringify
// keeps of it: often none) and, under "\u0001error", what it does not
// enumerate: name, message, stack, cause (value.h, CRM_ERR_KEY). The next
// node's code gets an Error again (reviveError), other nodes read
// msg.payload.message as Node-RED's do, and a json node still writes {}.
// JavaScriptCore's stack ("fn@url:line:col" a frame) in V8's form, as
// Node-RED's debug sidebar shows it: "Error: text\n    at fn (url:line:col)",
// without the frames of Carmine's own scripts. A V8-form line stays.
function v8Stack(e, st) {
    if (typeof st !== "string") return undefined;
    const lines = st.split("\n");
    let out = lines[0].includes("@") ? [String(e)] : [];
    for (const line of lines) {
        const at = line.indexOf("@");
        if (at < 0) { out.push(line); continue; }
        const fn = line.slice(0, at), loc = line.slice(at + 1);
        if (!loc || loc === "[native code]" || /^(function|prelude)\.js:/.test(loc)) continue;
        out.push("    at " + (fn ? fn + " (" + loc + ")" : loc));
    }
    return out.join("\n");
}
function errToJSON() {
    const o = {}, ks = Object.keys(this);
    for (let i = 0; i < ks.length; i++) o[ks[i]] = this[ks[i]];
    let stack;
    try { stack = v8Stack(this, this.stack); } catch (x) { stack = undefined; }
    const e = { name: String(this.name), message: this.message, stack };
    if (Object.prototype.hasOwnProperty.call(this, "cause")) e.cause = this.cause;
    o["\u0001error"] = e;
    return o;
}
Object.defineProperty(Error.prototype, "toJSON", {
    get() { return crossing ? errToJSON : undefined; }, configurable: true, enumerable: false,
});
const errorTypes = { Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError };
// Node-RED runs each node's code in a vm context of its own: an Error from
// another node is an Error of another realm, no instanceof this one's Error
// or Object, yet an Error (util.types.isNativeError, "[object Error]") with
// Error.prototype's methods. A revived Error gets prototypes that stand for
// that other realm's: copies of Error.prototype's (and Object.prototype's)
// members, made on first use.
const foreign = {};
function copyOwn(to, from) {
    for (const k of Reflect.ownKeys(from)) Object.defineProperty(to, k, Object.getOwnPropertyDescriptor(from, k));
    return to;
}
function foreignProto(C) {
    if (!foreign.Error) foreign.Error = copyOwn(Object.create(copyOwn(Object.create(null), Object.prototype)), Error.prototype);
    if (!foreign[C.name]) foreign[C.name] = copyOwn(Object.create(foreign.Error), C.prototype);
    return foreign[C.name];
}
function reviveError(v) {
    const d = v["\u0001error"];
    delete v["\u0001error"];
    const C = d && Object.prototype.hasOwnProperty.call(errorTypes, d.name) ? errorTypes[d.name] : Error;
    const e = new C();
    Object.setPrototypeOf(e, foreignProto(C));
    if (d && d.message !== undefined) def(e, "message", d.message);
    if (d && d.name !== undefined && d.name !== C.name) def(e, "name", d.name);
    if (d && d.stack !== undefined) def(e, "stack", d.stack);
    if (d && "cause" in d) def(e, "cause", d.cause);
    return Object.assign(e, v);
}
function replacer(k, v) {
    const o = this[k];
    if (typeof o === "number") return Number.isFinite(o) ? o : { "\u0001n": String(o) };
    if (o instanceof Uint8Array) return { "\u0001b": hex(o) };
    if (o instanceof Handle) return { "\u0001h": o._id };
    return v;
}
function reviver(k, v) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        if ("\u0001b" in v) return G.Buffer.from(v["\u0001b"], "hex");
        if ("\u0001n" in v) return Number(v["\u0001n"]);
        if ("\u0001h" in v) return new Handle(v["\u0001h"]);
        if ("\u0001error" in v) return reviveError(v);
    }
    return v;
}
// A plain Uint8Array crosses as a Buffer too; outside a crossing its
// toJSON is undefined, as JSON.stringify expects of a typed array.
Object.defineProperty(Uint8Array.prototype, "toJSON", {
    get() { return crossing ? u8ToJSON : undefined; }, configurable: true, enumerable: false,
});
// The engine's JSON.stringify (fast) with the markers of Buffers and
// handles; a text with "null" in it may have lost a NaN or an Infinity
// (JSON writes them null): that one is made again with the replacer.
const stringify = JSON.stringify; // taken once: see function.js
function toJSON(v) {
    let t;
    crossing = true;
    try {
        t = stringify(v);
        if (typeof t === "string" && t.includes("null")) t = stringify(v, replacer);
    } finally { crossing = false; }
    return t;
}
const fromJSON = text => JSON.parse(text, reviver);

return { toJSON, fromJSON, replacer };
})
