// companion.js: the Node.js side of Carmine's companion (docs/companion.md).
//
// Carmine starts `node companion.js` when its flows use node types that no
// built-in or C plugin provides but an npm module in the userDir does. This
// process runs those nodes unchanged in Node-RED's own runtime (the node-red
// package from npm, headless: no editor, no HTTP server of its own).
//
// Protocol: one JSON object per line on fd 3 (a unix socket pair).
//   Carmine -> here: {"t":"flows","flows":[..],"credentials":{..}}   once, first
//                    {"t":"in","id":NODE,"msg":{..}}   a message for hosted node NODE
//   here -> Carmine: {"t":"ready"}                     the flows run
//                    {"t":"out","id":NODE,"p":PORT,"msg":{..}}   NODE sent on PORT
//                    {"t":"error","id":NODE,"msg":{..}}  a catch here saw NODE's error
//                    {"t":"status","id":NODE,"status":{..}}  what status nodes see
//                    {"t":"ns","id":NODE,"status":{..}}  the editor's status of NODE
//                    {"t":"log","id":NODE,"type":..,"name":..,"level":N,"text":..,"err"?:{..}}  a node's log entry
//                    {"t":"complete","id":NODE,"msg":{..}}  NODE called done() (a native complete node watches it)
// Context (one context with Carmine's stores, see contextStorage() below):
//   Carmine -> here: "context":{stores,default,data,fgc} in the flows line
//                    {"t":"cx","s":STORE,"c":SCOPE,"k":TOPKEY,"v":VALUE,"a":ACK}
//   here -> Carmine: {"t":"cs","s":STORE,"c":SCOPE,"k":KEY,"v":VALUE,"q":SEQ}
// Values JSON has no text for travel as token objects both ways: a Buffer as
// {BUF: base64}, NaN/Infinity as {NUM: String(n)}; a plain object shaped
// like a Buffer's JSON ({"type":"Buffer","data":[..]}) stays a plain object.
// A wire from a hosted node to a native one points, in the flows Carmine
// sends, at the pseudo node "\u0001carmine:NODE:PORT": the preRoute hook
// below takes those messages off Node-RED's router and writes them out.
'use strict';
const net = require('net');
const path = require('path');
const util = require('util');

const modules = process.env.CARMINE_COMPANION_MODULES;
const userDir = path.resolve(process.env.CARMINE_COMPANION_USERDIR || '.');
const PSEUDO = '\u0001carmine:';
const web = require('./companion_http.js');

// Everything this process prints goes to stderr (Carmine's log), tagged.
function logLine(...args) {
    const text = util.format(...args);
    if (/Using unencrypted credentials/.test(text)) return; // Carmine holds them (credentialSecret: false here)
    process.stderr.write('[companion] ' + text.replace(/\n/g, '\n[companion] ') + '\n');
}
console.log = console.info = console.warn = console.error = console.debug = logLine;

const sock = new net.Socket({ fd: Number(process.env.CARMINE_COMPANION_FD || 3), readable: true, writable: true });
sock.setEncoding('utf8');
sock.on('error', (e) => { logLine('channel error:', e.message); process.exit(1); });
sock.on('end', () => process.exit(0)); // Carmine closed the channel: stop
process.on('SIGTERM', () => process.exit(0));

// Lines out are joined and written once per turn of Node's event loop (after
// the I/O callbacks of this turn): one write for a burst instead of one each.
let outLines = [];
function flushOut() {
    const text = outLines.join('');
    outLines = [];
    sock.write(text);
}
// NaN, Infinity and -Infinity cross as {NUM: String(n)} both ways (JSON has
// no text for them: JSON.stringify makes them null); Buffers as {BUF: base64}
const NUM = '\u0001carmine:num';
const BUF = '\u0001carmine:buf';
const bufferToJSON = Buffer.prototype.toJSON;
function bufToken() { return { [BUF]: this.toString('base64') }; }
function numToken(k, v) { return typeof v === 'number' && !Number.isFinite(v) ? { [NUM]: String(v) } : v; }
// JSON.stringify with the tokens: Buffer's toJSON is swapped for the call
// (synchronous) only, so a Buffer-shaped plain object is told from a Buffer
// without a replacer call per value
function stringify(obj) {
    Buffer.prototype.toJSON = bufToken;
    try {
        const text = JSON.stringify(obj);
        // only a text with a null may have lost a number: then again, marking them
        return text.includes('null') ? JSON.stringify(obj, numToken) : text;
    } finally {
        Buffer.prototype.toJSON = bufferToJSON;
    }
}
function send(obj) {
    if (!outLines.length) setImmediate(flushOut);
    outLines.push(stringify(obj) + '\n');
}
const sendMsg = send;

function reviver(k, v) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
        if (typeof v[BUF] === 'string' && Object.keys(v).length === 1) return Buffer.from(v[BUF], 'base64');
        if (typeof v[NUM] === 'string' && Object.keys(v).length === 1) return Number(v[NUM]);
    }
    return v;
}

// Node-RED's log: a node's entries (node.log/warn/error, which the catch
// node here does not take) go to Carmine, which prints them as Node-RED does
// and shows warnings and errors in the debug sidebar (info and above, or
// down to $CARMINE_COMPANION_LOG); the runtime's own entries are printed here
// (warn and above, or down to $CARMINE_COMPANION_LOG).
const LEVELS = { fatal: 10, error: 20, warn: 30, info: 40, debug: 50, trace: 60 };
const NAMES = { 10: 'fatal', 20: 'error', 30: 'warn', 40: 'info', 50: 'debug', 60: 'trace' };
const runtimeLevel = LEVELS[process.env.CARMINE_COMPANION_LOG] || LEVELS.warn;
const nodeLevel = Math.max(runtimeLevel, LEVELS.info);
function logText(m) {
    try {
        if (m && typeof m === 'object' && m.toString() === '[object Object]' && m.message) m = m.message;
        return String(m);
    } catch (e) {
        return 'Exception trying to log: ' + util.inspect(m);
    }
}
function logHandler(msg) {
    if (!(msg.level <= LEVELS.trace)) return; // metrics, audit
    if (msg.type && msg.id !== undefined) {
        if (msg.level > nodeLevel) return;
        const line = { t: 'log', id: msg.id, type: msg.type, name: msg.name, level: msg.level, text: logText(msg.msg) };
        const e = msg.msg;
        if (e instanceof Error || /Error/.test(e && e.__proto__ && e.__proto__.name)) {
            line.err = { stack: e.stack };
            if (e.code !== undefined) line.err.code = e.code;
            if (e.cause !== undefined) line.err.cause = String(e.cause);
        }
        send(line);
    } else if (msg.level <= runtimeLevel) { // as Node-RED's console logger prints it
        const d = new Date(), p2 = (n) => String(n).padStart(2, '0');
        const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
        logLine(d.getDate() + ' ' + months[d.getMonth()] + ' ' + p2(d.getHours()) + ':' + p2(d.getMinutes()) + ':' +
                p2(d.getSeconds()) + ' - [' + NAMES[msg.level] + '] ' + logText(msg.msg));
    }
}

let RED = null;
let started = false;
const pending = [];

function deliver(m) {
    const node = RED.nodes.getNode(m.id);
    if (!node) { logLine('no hosted node', m.id, '(message dropped)'); return; }
    node.receive(m.msg);
}

function start(m) {
    RED = require(path.join(modules, 'node-red'));
    const flows = m.flows, creds = m.credentials || {};
    const mem = {};
    const storage = {
        init: () => Promise.resolve(),
        getFlows: () => Promise.resolve(flows),
        saveFlows: () => Promise.resolve(),
        getCredentials: () => Promise.resolve(creds),
        saveCredentials: () => Promise.resolve(),
        getSettings: () => Promise.resolve(mem.settings || {}),
        saveSettings: (s) => { mem.settings = s; return Promise.resolve(); },
        getSessions: () => Promise.resolve({}),
        saveSessions: () => Promise.resolve(),
        getLibraryEntry: () => Promise.resolve([]),
        saveLibraryEntry: () => Promise.resolve(),
    };
    const server = web.server();
    const nodeRoot = web.nodeRoot();
    RED.init(server, {
        userDir,
        ...(nodeRoot !== undefined ? { httpNodeRoot: nodeRoot } : {}),
        SKIP_BUILD_CHECK: true,
        httpAdminRoot: false,
        storageModule: storage,
        credentialSecret: false,
        logging: { carmine: { level: 'trace', metrics: false, audit: false, handler: () => logHandler } },
        externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
        contextStorage: contextStorage(m.context),
        functionGlobalContext: (m.context && m.context.fgc) || {},
    });
    web.attach(RED, modules, send);
    RED.hooks.add('preRoute.carmine', (ev) => {
        const to = ev.destination.id;
        if (typeof to !== 'string' || !to.startsWith(PSEUDO)) return;
        const what = to.slice(PSEUDO.length);
        if (what === '!error') {
            const e = ev.msg.error || {};
            const src = e.source || {};
            sendMsg({ t: 'error', id: src.id, msg: ev.msg });
        } else if (what.startsWith('!complete:')) {
            sendMsg({ t: 'complete', id: what.slice(10), msg: ev.msg });
        } else if (what === '!status') {
            const s = ev.msg.status || {};
            send({ t: 'status', id: (s.source || {}).id, source: s.source,
                   status: { fill: s.fill, shape: s.shape, text: s.text } });
        } else {
            const colon = what.lastIndexOf(':');
            sendMsg({ t: 'out', id: what.slice(0, colon), p: Number(what.slice(colon + 1)), msg: ev.msg });
        }
        return false; // not routed inside Node-RED
    });
    // the editor's status of a hosted node, as Node-RED's comms publishes it
    // (a status set while the flows start too, which no status node sees)
    RED.events.on('node-status', (ev) => {
        if (ev && typeof ev.id === 'string' && ev.status) send({ t: 'ns', id: ev.id, status: ev.status });
    });
    RED.events.on('runtime-event', (ev) => {
        if (ev && ev.id === 'runtime-state' && ev.payload && ev.payload.error === 'missing-types') {
            logLine('missing node types, the flows wait for them:', (ev.payload.types || []).join(', '), '(userDir ' + userDir + ')');
        }
    });
    RED.events.once('flows:started', () => {
        started = true;
        web.started();
        send({ t: 'ready' });
        for (const p of pending.splice(0)) deliver(p);
    });
    RED.start().catch((e) => { logLine('Node-RED did not start:', e && e.stack || e); process.exit(1); });
}

let buf = '';
sock.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let m;
        // the reviver (tokens) only for lines that may hold one: it costs a call per value
        try { m = line.includes('carmine:buf') || line.includes('carmine:num') ? JSON.parse(line, reviver) : JSON.parse(line); } catch (e) { logLine('bad line from Carmine:', e.message); continue; }
        if (m.t === 'in') {
            if (started) deliver(m); else pending.push(m);
        } else if (m.t === 'cx') {
            contextPush(m);
        } else if (m.t === 'flows' && !RED) {
            start(m);
        }
    }
});

// One context -----------------------------------------------------------------
// Carmine's context stores are the truth; each store here is a cache of the
// contexts this process's nodes reach (global, their flows, their own), so
// Node-RED's synchronous get/keys are answered at once, as its memory store
// does. Carmine sends the contexts in the flows line and every change of them
// after ("cx", the top-level key's whole value); a set here changes the cache
// and goes to Carmine ("cs", numbered). A push carries the number of the last
// write Carmine applied: a key written here after that keeps its value here
// (that write is still on its way and wins there). Values cross as JSON:
// an object changed in place after get(), without set(), changes only here.
const ctxData = {};     // store -> scope -> object
const ctxWritten = {};  // store \x1f scope \x1f top -> number of the last write
let ctxSeq = 0;

function ctxTop(key) {
    try { return String(RED.util.normalisePropertyExpression(key)[0]); } catch (e) { return null; }
}

function contextPush(m) {
    const data = ctxData[m.s] || (ctxData[m.s] = {});
    if (m.k === undefined) { // a whole scope: deleted, or all of it anew
        const keep = {};
        for (const id of Object.keys(ctxWritten)) {
            const [s, c, top] = id.split('\x1f');
            if (s === m.s && c === m.c && ctxWritten[id] > m.a && data[m.c] && top in data[m.c]) keep[top] = data[m.c][top];
        }
        if (m.v === undefined && !Object.keys(keep).length) delete data[m.c];
        else data[m.c] = Object.assign(m.v || {}, keep);
        return;
    }
    const id = m.s + '\x1f' + m.c + '\x1f' + m.k;
    if (ctxWritten[id] > m.a) return;
    delete ctxWritten[id];
    if (m.v === undefined) {
        if (data[m.c]) delete data[m.c][m.k];
    } else {
        (data[m.c] || (data[m.c] = {}))[m.k] = m.v;
    }
}

function CarmineStore(name) {
    this.name = name;
    this.data = ctxData[name] || (ctxData[name] = {});
}
CarmineStore.prototype.open = function () { return Promise.resolve(); };
CarmineStore.prototype.close = function () { return Promise.resolve(); };
CarmineStore.prototype.getOne = function (scope, key) {
    const obj = this.data[scope];
    if (!obj) return undefined;
    try {
        return RED.util.getObjectProperty(obj, key);
    } catch (e) {
        if (e.code === 'INVALID_EXPR') throw e;
        return undefined;
    }
};
CarmineStore.prototype.get = function (scope, key, callback) {
    const keys = Array.isArray(key) ? key : [key];
    const values = [];
    try {
        for (const k of keys) values.push(this.getOne(scope, k));
    } catch (e) {
        if (!callback) throw e;
        callback(e);
        return;
    }
    if (callback) callback(undefined, ...values);
    else return Array.isArray(key) ? values : values[0];
};
CarmineStore.prototype.set = function (scope, key, value, callback) {
    const keys = Array.isArray(key) ? key : [key];
    const vals = Array.isArray(key) ? (Array.isArray(value) ? value : [value]) : [value];
    const obj = this.data[scope] || (this.data[scope] = {});
    let err;
    try {
        for (let i = 0; i < keys.length; i++) {
            const v = i < vals.length ? vals[i] : null;
            RED.util.setObjectProperty(obj, keys[i], v);
            const top = ctxTop(keys[i]);
            const line = { t: 'cs', s: this.name, c: scope, k: keys[i], q: ++ctxSeq };
            if (v !== undefined) line.v = v;
            if (top !== null) ctxWritten[this.name + '\x1f' + scope + '\x1f' + top] = ctxSeq;
            send(line);
        }
    } catch (e) {
        if (!callback) throw e;
        err = e;
    }
    if (callback) callback(err);
};
CarmineStore.prototype.keys = function (scope, callback) {
    let keys = Object.keys(this.data[scope] || {});
    if (scope === 'global') keys = keys.filter((k) => k !== 'set' && k !== 'get' && k !== 'keys');
    if (callback) callback(null, keys);
    else return keys;
};
// Carmine deletes and cleans contexts itself (and pushes the result)
CarmineStore.prototype.delete = function (scope) { return Promise.resolve(); };
CarmineStore.prototype.clean = function (activeNodes) { return Promise.resolve(); };

// settings.contextStorage: one CarmineStore per Carmine store, same names and default
function contextStorage(c) {
    c = c || { stores: ['memory'], default: 'memory', data: {} };
    const cs = {};
    for (const name of c.stores) {
        ctxData[name] = (c.data && c.data[name]) || {};
        const mod = () => new CarmineStore(name);
        mod.toString = () => 'carmine';
        cs[name] = { module: mod };
    }
    if (c.default !== 'default' && c.stores.includes(c.default)) cs.default = c.default;
    return cs;
}
