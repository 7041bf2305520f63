// A fixture for tests/dashboard/test_proxy.py: what npm modules do with
// Node-RED's HTTP side. Routes on the node app (/fx/...) and the admin app
// (/fx-admin/...), an upgrade on the server (/fx/raw: a WebSocket handshake,
// then every byte echoed), and a node type, carmine-http, that counts the
// requests served and passes messages on with that count.
const crypto = require('crypto');
module.exports = function (RED) {
    let served = 0;
    const app = RED.httpNode, admin = RED.httpAdmin;
    app.all('/fx/echo', (req, res) => {
        served++;
        const parts = [];
        req.on('data', (c) => parts.push(c));
        req.on('end', () => {
            const body = Buffer.concat(parts);
            res.json({ method: req.method, url: req.originalUrl, headers: req.headers, length: body.length,
                       sha256: crypto.createHash('sha256').update(body).digest('hex') });
        });
    });
    app.get('/fx/chunked', (req, res) => {
        served++;
        res.type('text/plain');
        let i = 0;
        const next = () => {
            if (i === 5) return res.end('end');
            res.write('chunk' + i++ + ';');
            setTimeout(next, 20);
        };
        next();
    });
    app.get('/fx/big', (req, res) => {
        served++;
        const b = Buffer.alloc(3 * 1024 * 1024);
        for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 255;
        res.type('application/octet-stream').send(b);
    });
    app.get('/fx/cookies', (req, res) => {
        served++;
        res.append('Set-Cookie', 'a=1; Path=/');
        res.append('Set-Cookie', 'b=2; Path=/');
        res.set('X-Fixture', 'yes');
        res.status(201).send('made');
    });
    app.get('/fx/etag', (req, res) => { served++; res.send('same text every time'); });
    app.get('/fx/slow', (req, res) => { served++; setTimeout(() => res.send('slow ' + req.query.n), 1000); });
    admin.get('/fx-admin/secret', RED.auth.needsPermission('fx.read'), (req, res) => { served++; res.json({ secret: 42 }); });
    admin.get('/fx-admin/info', (req, res) => { served++; res.json({ admin: true, url: req.originalUrl }); });
    RED.server.on('upgrade', (req, socket, head) => {
        const u = req.url.split('?')[0];
        if (!/\/fx\/raw(-refuse)?$/.test(u)) return;
        served++;
        if (u.endsWith('-refuse')) {
            socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nnope!\n');
            return;
        }
        const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\nX-Fixture: raw\r\n\r\n');
        if (head && head.length) socket.write(head);
        socket.on('data', (d) => socket.write(d));
        socket.on('error', () => {});
    });
    function CarmineHttp(config) {
        RED.nodes.createNode(this, config);
        this.on('input', (msg, send, done) => { msg.served = served; send(msg); done(); });
    }
    RED.nodes.registerType('carmine-http', CarmineHttp);
};
