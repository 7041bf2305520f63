// companion_http.js: the companion's HTTP side (docs/companion.md, "HTTP").
//
// Node modules add routes to Node-RED's node app (RED.httpNode) and admin app
// (RED.httpAdmin) and attach to its server (RED.server: socket.io, ws). Here
// those are real: an http server on the unix socket Carmine bound and passed
// as fd 4 (CARMINE_COMPANION_HTTP={"fd":4,"nodeRoot":..,"adminRoot":..}),
// with the runtime's admin app mounted at Carmine's httpAdminRoot and the
// node app at its httpNodeRoot, as Node-RED's own red.js mounts them, so a
// path means the same on both sides and Carmine proxies requests unchanged
// (runtime/companion/proxy.c). The companion's settings keep httpAdminRoot
// false: no editor or admin API of its own, only the routes nodes add.
//
// Carmine proxies the paths under the prefixes reported here: the first
// literal segment of every path a module registers on either app
// ({"t":"http","prefixes":["/ui","/uisettings"]}), sent again when one is
// added. Socket.io and WebSocket paths of dashboards live under those.
'use strict';
const http = require('http');
const path = require('path');

let conf = null;
try { conf = JSON.parse(process.env.CARMINE_COMPANION_HTTP || 'null'); } catch (e) { conf = null; }

let handler = null;
let server = null;
let reportNow = null; // sends the prefixes not reported yet at once (attach)
let live = false;
const waiting = [];

function trimRoot(r) { return typeof r === 'string' ? r.replace(/\/+$/, '') : r; }

// The server to give RED.init (null without Carmine's socket). Requests are
// routed once attach() has the apps; engine.io wraps the 'request' listener
// when a dashboard attaches, so ours must be there first.
exports.server = function () {
    if (!conf || typeof conf.fd !== 'number') return null;
    // until the flows run (after a restart too) requests wait: the routes
    // are not all there before
    server = http.createServer((req, res) => {
        if (handler && live) return handler(req, res);
        waiting.push([req, res]);
    });
    server.on('error', (e) => process.stderr.write('[companion] http: ' + e.message + '\n'));
    server.listen({ fd: conf.fd });
    return server;
};

// The roots for the companion's settings: httpNodeRoot as Carmine's (nodes
// build their URLs from it), the admin app mounted without Node-RED's API.
exports.nodeRoot = function () { return conf ? conf.nodeRoot : undefined; };

const METHODS = ['use', 'get', 'post', 'put', 'delete', 'patch', 'all', 'options', 'head', 'route'];

function firstSegment(p) {
    const seg = p.split('/').filter(Boolean)[0];
    // a parameter, a pattern or the root itself names no prefix
    if (!seg || /[:*?()+[\]\\]/.test(seg)) return null;
    return seg;
}

// Mounts the apps on the server and records the prefixes their routes use.
exports.attach = function (RED, modules, send) {
    if (!server) return;
    const express = require(path.join(modules, 'express'));
    const runtime = RED.runtime;
    const nodeApp = runtime.httpNode, adminApp = runtime.httpAdmin;
    const app = express();
    app.disable('x-powered-by');
    const prefixes = new Set();
    let pending = false;
    function report() {
        if (pending) return;
        pending = true;
        setImmediate(() => { if (pending) { pending = false; send({ t: 'http', prefixes: Array.from(prefixes) }); } });
    }
    // at the start, before "ready": Carmine holds the requests until then
    // and decides by these prefixes which are the companion's
    reportNow = () => { if (pending) { pending = false; send({ t: 'http', prefixes: Array.from(prefixes) }); } };
    function watch(sub, root) {
        if (!sub || root === false || root === undefined) return;
        const base = trimRoot(root);
        const add = (p) => {
            if (Array.isArray(p)) return p.forEach(add);
            if (typeof p !== 'string') return;
            // Node-RED's core nodes' routes are Carmine's own (inject's button, debug's view)
            if (/[\\/]@node-red[\\/]nodes[\\/]/.test(new Error().stack)) return;
            const seg = firstSegment(p);
            if (!seg) return;
            const full = base + '/' + seg;
            if (!prefixes.has(full)) { prefixes.add(full); report(); }
        };
        for (const m of METHODS) {
            const orig = sub[m];
            if (typeof orig !== 'function') continue;
            sub[m] = function (first) {
                // app.get(name) with one argument reads a setting
                if (m === 'route' || arguments.length > 1) add(first);
                return orig.apply(this, arguments);
            };
        }
        app.use(root, sub);
    }
    // RED.auth.needsPermission (a no-op without Node-RED's admin API): with
    // adminAuth on, Carmine's proxy tells who the request's token belongs to
    // in X-Carmine-User ({username|anonymous, permissions}, or null), and the
    // permission is checked as Node-RED's editor API checks it
    const { hasPermission } = require(path.join(modules, '@node-red/editor-api/lib/auth/permissions'));
    const auth = runtime._.adminApi && runtime._.adminApi.auth;
    if (auth) {
        auth.needsPermission = (permission) => (req, res, next) => {
            const h = req.headers['x-carmine-user'];
            if (h === undefined) return next(); // Carmine has no adminAuth
            let user = null;
            try { user = JSON.parse(h); } catch (e) { user = null; }
            if (user && hasPermission(user.permissions, permission)) { req.user = user; return next(); }
            res.status(401).end();
        };
    }
    watch(adminApp, conf.adminRoot);
    watch(nodeApp, conf.nodeRoot);
    handler = app;
};

// The flows run: the requests that waited go on.
exports.started = function () {
    if (reportNow) reportNow();
    live = true;
    for (const [req, res] of waiting.splice(0)) handler ? handler(req, res) : res.writeHead(503).end();
};
