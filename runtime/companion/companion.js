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
//                    {"t":"status","id":NODE,"status":{..}}
// Buffers travel as {"type":"Buffer","data":[..]} (Buffer.toJSON) both ways.
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

function send(obj) { sock.write(JSON.stringify(obj) + '\n'); }

function reviver(k, v) {
    if (v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data) && Object.keys(v).length === 2) {
        return Buffer.from(v.data);
    }
    return v;
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
        logging: { console: { level: process.env.CARMINE_COMPANION_LOG || 'warn', metrics: false, audit: false } },
        externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
    });
    web.attach(RED, modules, send);
    RED.hooks.add('preRoute.carmine', (ev) => {
        const to = ev.destination.id;
        if (typeof to !== 'string' || !to.startsWith(PSEUDO)) return;
        const what = to.slice(PSEUDO.length);
        if (what === '!error') {
            const e = ev.msg.error || {};
            const src = e.source || {};
            send({ t: 'error', id: src.id, msg: ev.msg });
        } else if (what === '!status') {
            const s = ev.msg.status || {};
            send({ t: 'status', id: (s.source || {}).id, status: { fill: s.fill, shape: s.shape, text: s.text } });
        } else {
            const colon = what.lastIndexOf(':');
            send({ t: 'out', id: what.slice(0, colon), p: Number(what.slice(colon + 1)), msg: ev.msg });
        }
        return false; // not routed inside Node-RED
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
        try { m = JSON.parse(line, reviver); } catch (e) { logLine('bad line from Carmine:', e.message); continue; }
        if (m.t === 'in') {
            if (started) deliver(m); else pending.push(m);
        } else if (m.t === 'flows' && !RED) {
            start(m);
        }
    }
});
