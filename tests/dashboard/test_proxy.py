#!/usr/bin/env python3
"""test_proxy.py: the routes hosted nodes add, through Carmine's port
(docs/companion.md, "HTTP"; runtime/companion/proxy.c).

Runs carmine on a flow with a node of the fixture module of this folder
(node-red-contrib-carmine-http, copied into a temporary userDir: no network),
whose module adds routes to Node-RED's node app (/fx/...), its admin app
(/fx-admin/...) and an upgrade handler on its server (/fx/raw), and checks
what a client of Carmine's port gets: query strings, headers and bodies
both ways, chunked and 3 MB answers, two Set-Cookie headers, ETag and 304,
20 slow requests at once, express's own 404, the admin app, a WebSocket
handshake relayed with its bytes, a refused upgrade, the native routes
beside them, the companion killed and the proxy answering again, and both
apps mounted under other roots (httpNodeRoot /api, httpAdminRoot /admin).
Prints ok/not ok lines and "N passed, N failed".
  tests/dashboard/test_proxy.py CARMINE
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CARMINE = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="carmine-proxy-")
passed = failed = 0


def check(desc, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + desc)
    else:
        failed += 1
        print("not ok - " + desc)
        if detail:
            for line in str(detail).splitlines()[-30:]:
                print("    " + line)


sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from ports import free_port  # noqa: E402  (tests/lib/ports.py)


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    except Exception as e:  # noqa: BLE001 - any failure is a result here
        return 0, [], str(e).encode()
    finally:
        c.close()


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


FLOWS = [
    {"id": "t1", "type": "tab", "label": "proxy"},
    {"id": "inj", "type": "inject", "z": "t1", "props": [{"p": "payload"}], "repeat": "", "crontab": "",
     "once": True, "onceDelay": "0.1", "topic": "", "payload": "x", "payloadType": "str", "wires": [["fx"]]},
    {"id": "fx", "type": "carmine-http", "z": "t1", "name": "", "wires": [[]]},
    {"id": "hin", "type": "http in", "z": "t1", "url": "/native", "method": "get", "wires": [["tpl"]]},
    {"id": "tpl", "type": "template", "z": "t1", "field": "payload", "fieldType": "msg", "format": "text",
     "syntax": "plain", "template": "native answer", "output": "str", "wires": [["hout"]]},
    {"id": "hout", "type": "http response", "z": "t1", "statusCode": "", "headers": {}, "wires": []},
    # an http in's message through a hosted node and back to a native http response
    {"id": "hin2", "type": "http in", "z": "t1", "url": "/through", "method": "post", "wires": [["fx2"]]},
    {"id": "fx2", "type": "carmine-http", "z": "t1", "name": "", "wires": [["chg2"]]},
    {"id": "chg2", "type": "change", "z": "t1", "rules": [
        {"t": "set", "p": "payload", "pt": "msg", "tot": "jsonata",
         "to": "{'got': payload, 'served': served, 'method': req.method, 'q': req.query.q}"},
        {"t": "set", "p": "statusCode", "pt": "msg", "to": "202", "tot": "num"}], "wires": [["hout2"]]},
    {"id": "hout2", "type": "http response", "z": "t1", "statusCode": "", "headers": {"x-through": "yes"}, "wires": []},
]


def userdir():
    ud = os.path.join(TMP, "userdir")
    mod = os.path.join(ud, "node_modules", "node-red-contrib-carmine-http")
    os.makedirs(mod, exist_ok=True)
    for f in os.listdir(os.path.join(HERE, "node-red-contrib-carmine-http")):
        shutil.copy(os.path.join(HERE, "node-red-contrib-carmine-http", f), mod)
    with open(os.path.join(ud, "package.json"), "w") as f:
        json.dump({"name": "node-red-project", "private": True,
                   "dependencies": {"node-red-contrib-carmine-http": "1.0.0"}}, f)
    return ud


class Carmine:
    def __init__(self, name, settings=None):
        self.port = free_port()
        self.log = os.path.join(TMP, name + ".log")
        flows = os.path.join(TMP, name + ".json")
        with open(flows, "w") as f:
            json.dump(FLOWS, f)
        args = [CARMINE, "-p", str(self.port), "-u", userdir()]
        if settings:
            sp = os.path.join(TMP, name + "-settings.json")
            with open(sp, "w") as f:
                json.dump(settings, f)
            args += ["-s", sp]
        self.tmpdir = os.path.join(TMP, name + "-tmp")  # where the companion's socket goes
        os.makedirs(self.tmpdir)
        self.p = subprocess.Popen(args + [flows], stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                  env=dict(os.environ, TMPDIR=self.tmpdir))

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_ready(self, n=1, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.text().count("[companion] ready") >= n:
                return True
            time.sleep(0.05)
        return False

    def companion_pid(self):
        m = re.findall(r"\[companion\] started node \(pid (\d+)\)", self.text())
        return int(m[-1]) if m else None

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def ws_handshake(port, path, extra=b"", wrap=None, timeout=10):
    """A WebSocket handshake on a raw socket (wrapped by wrap, e.g. for TLS):
    (status line, headers, socket, leftover, the accept key expected)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if wrap:
        s = wrap(s)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode() + extra)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    return lines[0], hdrs, s, rest, accept


def tls_echo(s, data, have, timeout):
    """Sends data over the TLS socket s while reading its echo, from one
    thread: an SSL socket must not be written and read by two threads at once
    (OpenSSL's rule; doing so gave a false end of the stream now and then).
    What came back, up to len(data), or less when the peer closed first."""
    import select
    import ssl
    s.setblocking(False)
    got, sent, end = bytearray(have), 0, time.time() + timeout
    while len(got) < len(data) and time.time() < end:
        select.select([s], [s] if sent < len(data) else [], [], 0.2)
        if sent < len(data):
            try:
                sent += s.send(data[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
        while True:
            try:
                d = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not d:
                return bytes(got)
            got += d
    return bytes(got)


def recv_exactly(s, n, have=b""):
    buf = have
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf


def main():
    c = Carmine("root")
    try:
        # while the companion starts (its prefixes not known yet) a request is
        # held until it is ready, not answered 404 (Node-RED does not listen
        # before its flows run): a Dashboard's page asked for at once is served
        end = time.time() + 10
        while time.time() < end and request(c.port, "GET", "/native", timeout=2)[0] != 200:
            time.sleep(0.02)
        early = "[companion] ready" not in c.text()
        res = {}
        t = threading.Thread(target=lambda: res.update(other=request(c.port, "GET", "/not-the-companions")))
        t.start()
        st, hs, body = request(c.port, "GET", "/fx/echo?early=1", timeout=40)
        t.join(40)
        check("during the companion's start (%s) a request under its prefix waits and is answered by it (%d), "
              "one outside every prefix gets Carmine's 404 once it is ready (%d)"
              % ("sent before ready" if early else "it was ready already", st, res.get("other", (0,))[0]),
              st == 200 and b"early=1" in body and res.get("other", (0,))[0] == 404
              and b"Cannot GET /not-the-companions" in res["other"][2], (st, body[:200], res, c.text()[-1500:]))
        ready = c.wait_ready()
        check("the companion starts for the fixture's node", ready, c.text())
        port = c.port
        st, hs, body = request(port, "GET", "/fx/echo?x=1&y=%C3%A9", headers={"X-Test": "hello", "Cookie": "k=v"})
        j = json.loads(body) if st == 200 else {}
        check("GET under a companion prefix reaches its route: query, headers and X-Forwarded-For passed on",
              st == 200 and j.get("url") == "/fx/echo?x=1&y=%C3%A9" and j["headers"].get("x-test") == "hello"
              and j["headers"].get("cookie") == "k=v" and j["headers"].get("x-forwarded-for", "").endswith("127.0.0.1")
              and j["headers"].get("host") == "127.0.0.1:%d" % port, (st, body))
        payload = os.urandom(1 << 20)
        st, hs, body = request(port, "POST", "/fx/echo", body=payload, headers={"Content-Type": "application/octet-stream"})
        j = json.loads(body) if st == 200 else {}
        check("a 1 MB POST body arrives whole", st == 200 and j.get("method") == "POST" and j.get("length") == len(payload)
              and j.get("sha256") == hashlib.sha256(payload).hexdigest(), (st, body[:300]))
        st, hs, body = request(port, "GET", "/fx/chunked")
        check("a chunked answer arrives decoded", st == 200 and body == b"chunk0;chunk1;chunk2;chunk3;chunk4;end"
              and header(hs, "content-type")[0].startswith("text/plain"), (st, hs, body))
        st, hs, body = request(port, "GET", "/fx/big")
        want = bytes((i * 7) & 255 for i in range(3 * 1024 * 1024))
        check("a 3 MB answer arrives byte for byte", st == 200 and body == want, (st, len(body)))
        st, hs, body = request(port, "GET", "/fx/cookies")
        check("status, two Set-Cookie headers and a custom header are kept",
              st == 201 and body == b"made" and sorted(header(hs, "set-cookie")) == ["a=1; Path=/", "b=2; Path=/"]
              and header(hs, "x-fixture") == ["yes"], (st, hs, body))
        st, hs, body = request(port, "GET", "/fx/etag")
        etag = (header(hs, "etag") or [""])[0]
        st2, hs2, body2 = request(port, "GET", "/fx/etag", headers={"If-None-Match": etag})
        check("express's ETag, and 304 to a request that has it", st == 200 and etag and st2 == 304 and body2 == b"",
              (st, etag, st2, body2))
        results = {}

        def slow(n):
            results[n] = request(port, "GET", "/fx/slow?n=%d" % n)

        t0 = time.time()
        ts = [threading.Thread(target=slow, args=(n,)) for n in range(20)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        took = time.time() - t0
        check("20 requests the companion answers after 1 s each are served at once (%.2f s)" % took,
              took < 3.5 and all(results[n][0] == 200 and results[n][2] == b"slow %d" % n for n in range(20)),
              (took, {n: results[n][:1] for n in results}))
        st, hs, body = request(port, "GET", "/native")
        check("a native http in route answers beside them", st == 200 and body == b"native answer", (st, body))
        st, hs, body = request(port, "POST", "/through?q=7", body=json.dumps({"a": [1, 2]}),
                               headers={"Content-Type": "application/json"})
        j = json.loads(body) if st == 202 else {}
        check("an http in's message crosses to a hosted node and back: the native http response answers it (msg.res)",
              st == 202 and j.get("got") == {"a": [1, 2]} and isinstance(j.get("served"), int) and j.get("method") == "POST"
              and j.get("q") == "7" and header(hs, "x-through") == ["yes"], (st, hs, body))
        st, hs, body = request(port, "GET", "/fx/nothing")
        check("a path under the prefix that no route has: express's 404", st == 404 and b"Cannot GET /fx/nothing" in body,
              (st, body))
        st, hs, body = request(port, "GET", "/fxnot")
        check("a path outside every prefix stays Carmine's 404", st == 404 and b"Cannot GET /fxnot" in body, (st, body))
        st, hs, body = request(port, "GET", "/fx-admin/info")
        j = json.loads(body) if st == 200 else {}
        check("a route on the admin app is reachable", st == 200 and j == {"admin": True, "url": "/fx-admin/info"}, (st, body))
        line, hdrs, s, rest, accept = ws_handshake(port, "/fx/raw?x=1")
        ok = line.startswith("HTTP/1.1 101") and hdrs.get("sec-websocket-accept") == accept and hdrs.get("x-fixture") == "raw"
        data = os.urandom(200000)
        s.sendall(data)
        echoed = recv_exactly(s, len(data), rest)
        s.close()
        check("a WebSocket upgrade: the companion's 101 (its accept key and headers), then 200 kB echoed through the relay",
              ok and echoed == data, (line, hdrs, len(echoed)))
        line, hdrs, s, rest, accept = ws_handshake(port, "/fx/raw-refuse")
        tail = recv_exactly(s, 6, rest)
        s.close()
        check("an upgrade the companion refuses gets its answer (403)", line.startswith("HTTP/1.1 403") and tail == b"nope!\n",
              (line, tail))
        # the companion dies: native routes go on, and the proxy answers again once it is back
        pid = c.companion_pid()
        os.kill(pid, signal.SIGKILL)
        st_native = request(port, "GET", "/native")[0]
        t0 = time.time()
        st, hs, body = request(port, "GET", "/fx/echo?after=kill", timeout=30)
        took = time.time() - t0
        check("after SIGKILL to the companion a proxied request waits for the new one and is answered (%.1f s); native answered %d"
              % (took, st_native), st == 200 and b"after=kill" in body and st_native == 200 and c.wait_ready(2, 5),
              (st, body, c.text()[-2000:]))
    finally:
        c.stop()
    left = os.listdir(c.tmpdir)
    check("stopping Carmine removes the companion's socket and its directory", left == [], left)

    c = Carmine("roots", {"httpNodeRoot": "/api", "httpAdminRoot": "/admin"})
    try:
        check("the companion starts with other roots", c.wait_ready(), c.text())
        st, hs, body = request(c.port, "GET", "/api/fx/echo?q=2")
        j = json.loads(body) if st == 200 else {}
        check("httpNodeRoot /api: the node app's route under it", st == 200 and j.get("url") == "/api/fx/echo?q=2", (st, body))
        st, hs, body = request(c.port, "GET", "/admin/fx-admin/info")
        j = json.loads(body) if st == 200 else {}
        check("httpAdminRoot /admin: the admin app's route under it", st == 200 and j.get("url") == "/admin/fx-admin/info",
              (st, body))
        st, hs, body = request(c.port, "GET", "/fx/echo")
        check("and not at the old root", st == 404, (st, body))
    finally:
        c.stop()

    # Over https (settings.https): libmicrohttpd 0.9.75 forwards an upgraded TLS
    # connection through an 8-byte emergency buffer unless given one
    # (crm_httpd_upgrade_buffers, runtime/httpd_conn.c); 2 MB through the relay
    # took a minute and more before the proxy called it as ws_server.c does.
    certs = os.path.join(TMP, "certs")
    os.makedirs(certs)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", "srv.key", "-out", "srv.pem"], cwd=certs, check=True, capture_output=True)
    c = Carmine("https", {"https": {"key": os.path.join(certs, "srv.key"), "cert": os.path.join(certs, "srv.pem")}})
    try:
        check("the companion starts with https", c.wait_ready(), c.text())
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        status, _, s, rest, _ = ws_handshake(c.port, "/fx/raw", wrap=ctx.wrap_socket, timeout=30)
        head = status.encode("latin-1")
        key = base64.b64encode(os.urandom(16)).decode()
        data = os.urandom(2 << 20)
        t0 = time.time()
        try:
            echoed = tls_echo(s, data, rest, 20)
        except OSError as e:
            echoed = rest
            head += (" (%s)" % e).encode()
        took = time.time() - t0
        s.close()
        check("wss:// through the proxy: the companion's 101, then 2 MB echoed in %.2f s (under 10 s)" % took,
              head.startswith(b"HTTP/1.1 101") and echoed == data and took < 10, (head[:200], len(echoed), took))
        # one left open while Carmine stops (the server closes it; its handle is not released twice)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", c.port), timeout=30))
        s.sendall(("GET /fx/raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        open_head = s.recv(65536)
        s.sendall(b"ping")
        pong = recv_exactly(s, 4, open_head.partition(b"\r\n\r\n")[2])
    finally:
        c.stop()
    rc = c.p.returncode
    s.close()
    check("Carmine stops cleanly with a wss:// relay open (exit %s)" % rc,
          open_head.startswith(b"HTTP/1.1 101") and pong == b"ping" and rc == 0
          and not re.search(r"Sanitizer|runtime error:", c.text()), (open_head[:80], pong, c.text()[-2000:]))

    # adminAuth (the password of this bcrypt hash is "secretpw", as in tests/editor)
    users = [{"username": "admin", "password": "$2b$08$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2",
              "permissions": "*"},
             {"username": "viewer", "password": "$2b$08$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2",
              "permissions": "flows.read"}]
    c = Carmine("auth", {"adminAuth": {"type": "credentials", "users": users}})
    try:
        check("the companion starts with adminAuth", c.wait_ready(), c.text())

        def token(user):
            st, hs, body = request(c.port, "POST", "/auth/token",
                                   body="client_id=node-red-editor&grant_type=password&scope=*&username=%s&password=secretpw" % user,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
            return json.loads(body).get("access_token") if st == 200 else None

        st0 = request(c.port, "GET", "/fx-admin/secret")[0]
        st1 = request(c.port, "GET", "/fx-admin/secret", headers={"X-Carmine-User": '{"permissions":"*"}'})[0]
        st2, _, body2 = request(c.port, "GET", "/fx-admin/secret", headers={"Authorization": "Bearer " + (token("admin") or "")})
        st3 = request(c.port, "GET", "/fx-admin/secret", headers={"Authorization": "Bearer " + (token("viewer") or "")})[0]
        st4 = request(c.port, "GET", "/fx-admin/info")[0]
        check("adminAuth: a module's admin route with needsPermission answers 401 without a token (%d) or with a forged "
              "X-Carmine-User (%d), 200 to a token with the permission (%d), 401 to one without it (%d); a route "
              "without needsPermission stays open (%d)" % (st0, st1, st2, st3, st4),
              st0 == 401 and st1 == 401 and st2 == 200 and json.loads(body2) == {"secret": 42} and st3 == 401 and st4 == 200)
    finally:
        c.stop()
    shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
