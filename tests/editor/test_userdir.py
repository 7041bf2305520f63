#!/usr/bin/env python3
"""test_userdir.py CARMINE NODE_RED_DIR: a Node-RED user's directory as it is
(issue 18, item 6; docs/editor.md). `carmine` without a flows file runs the
userDir's (HOME/.node-red by default, or -u DIR), named as node-red 4.1.15
names it, and creates it on the first deploy; a settings.js there (the one
node-red ships, NODE_RED_DIR/settings.js, and one written here with what
users' files hold: process.env, require of path/os/fs, functions, a module
Carmine does not offer) is read through the JavaScript sandbox and what
Carmine cannot honour is named in one warning. Prints "ok - " / "not ok - "
lines."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "article"))
import tap  # noqa: E402

CARMINE = os.path.abspath(sys.argv[1])
NR_SETTINGS = os.path.join(sys.argv[2], "settings.js")
PORT = 24320
check = tap.check
FLOWS = [{"id": "ud-tab", "type": "tab", "label": "Flow 1"},
         {"id": "ud-inject", "type": "inject", "z": "ud-tab", "payload": "hi", "payloadType": "str",
          "repeat": "", "once": False, "wires": [["ud-debug"]], "x": 100, "y": 100},
         {"id": "ud-debug", "type": "debug", "z": "ud-tab", "active": True, "tosidebar": True,
          "complete": "payload", "wires": [], "x": 300, "y": 100}]


def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def start(args, env, cwd):
    log = open(os.path.join(cwd, "carmine.log"), "w+")
    p = subprocess.Popen([CARMINE] + args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    for _ in range(200):
        if p.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, log


def stop(p, log):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    log.seek(0)
    return log.read()


def warning_of(text):
    line = [ln for ln in text.splitlines() if "not honoured by Carmine" in ln]
    return line[0].split("not honoured by Carmine: ", 1)[1] if len(line) == 1 else None


base = tempfile.mkdtemp(prefix="carmine-userdir-")
try:
    # 1. HOME/.node-red with node-red's own settings.js, no option but the port
    #    (through PORT, which that settings.js reads: uiPort: process.env.PORT || 1880)
    home = os.path.join(base, "home")
    ud = os.path.join(home, ".node-red")
    os.makedirs(ud)
    shutil.copy(NR_SETTINGS, ud)
    env = dict(os.environ, HOME=home, PORT=str(PORT))
    p, log = start([], env, base)
    status, body = request("GET", "/flows")
    check("no flows file: carmine runs HOME/.node-red with node-red's settings.js (uiPort from process.env.PORT)",
          status == 200 and json.loads(body) == [], f"{status} {body[:200]}")
    check("the flows file is not created before a deploy", not os.path.exists(os.path.join(ud, "flows.json")),
          str(os.listdir(ud)))
    status, body = request("POST", "/flows", FLOWS)
    check("a deploy answers 204", status == 204, f"{status} {body[:200]}")
    path = os.path.join(ud, "flows.json")
    saved = json.load(open(path)) if os.path.exists(path) else None
    check("the first deploy creates flows.json (flowFile of node-red's settings.js) in the userDir", saved == FLOWS,
          str(os.listdir(ud)))
    out = stop(p, log)
    check("node-red's default settings.js: one warning naming the keys Carmine cannot honour",
          warning_of(out) == "functionExternalModules, serialReconnectTime", out[-600:])
    p, log = start([], env, base)
    status, body = request("GET", "/flows")
    check("started again, it runs the saved flows", status == 200 and json.loads(body) == FLOWS, f"{status} {body[:200]}")
    stop(p, log)

    # 2. -u DIR with a settings.js as users write them
    ud2 = os.path.join(base, "user2")
    os.makedirs(ud2)
    with open(os.path.join(ud2, "key.pem"), "w") as f:
        f.write("not a key")
    with open(os.path.join(ud2, "settings.js"), "w") as f:
        f.write("""// a user's settings.js
const path = require('path');
const fs = require('node:fs');
const os = require('os');
let bcrypt = require('bcryptjs');
module.exports = {
    flowFile: 'my-flows.json',
    uiPort: Number(process.env.CARMINE_TEST_PORT),
    httpAdminRoot: '/admin',
    httpNodeRoot: path.join('/', 'api'),
    credentialSecret: process.env.CARMINE_TEST_SECRET,
    contextStorage: { default: { module: 'memory' } },
    functionGlobalContext: { home: os.homedir(), hasKey: fs.existsSync(path.join(__dirname, 'key.pem')),
                             keyText: fs.readFileSync(__dirname + '/key.pem', 'utf8'), os: os },
    httpNodeMiddleware: function (req, res, next) { next(); },
    httpStatic: path.join(__dirname, 'public'),
    lang: 'de',
    editorTheme: { projects: { enabled: false }, page: { title: 'Mine' } },
};
""")
    env2 = dict(os.environ, CARMINE_TEST_PORT=str(PORT), CARMINE_TEST_SECRET="s3cret", HOME=home)
    p, log = start(["-u", ud2], env2, base)
    status, body = request("GET", "/admin/settings")
    st = json.loads(body) if status == 200 else {}
    check("-u DIR: its settings.js is read (httpAdminRoot, httpNodeRoot from require('path'))",
          st.get("httpNodeRoot") == "/api", f"{status} {body[:200]}")
    check("editorTheme from settings.js reaches the editor's settings",
          st.get("editorTheme", {}).get("page", {}).get("title") == "Mine", json.dumps(st.get("editorTheme"))[:200])
    status, body = request("GET", "/admin/context/global/keyText")
    check("functionGlobalContext built with fs.readFileSync(..., 'utf8')", status == 200 and b"not a key" in body,
          f"{status} {body[:200]}")
    status, body = request("GET", "/admin/context/global/hasKey")
    check("fs.existsSync(path.join(__dirname, ...))", status == 200 and b"true" in body, f"{status} {body[:200]}")
    flows_cred = [dict(n) for n in FLOWS]
    status, body = request("POST", "/admin/flows", flows_cred)
    check("the first deploy creates settings.flowFile (my-flows.json) in the userDir",
          status == 204 and os.path.exists(os.path.join(ud2, "my-flows.json")), f"{status} {os.listdir(ud2)}")
    out = stop(p, log)
    w = warning_of(out) or ""
    for what in ["httpStatic", "lang", "httpNodeMiddleware (a function)", "functionGlobalContext.os.hostname (a function)",
                 "require('bcryptjs') (an empty object stood in)"]:
        check(f"the warning names {what}", what in w, w[:400])
    for what in ["flowFile", "uiPort", "httpAdminRoot", "credentialSecret", "editorTheme", "contextStorage"]:
        check(f"the warning leaves out {what} (honoured)", what + "," not in w + "," and not w.startswith(what), w[:400])

    # 3. a settings.js without flowFile: flows_<hostname>.json, as node-red names it
    ud3 = os.path.join(base, "user3")
    os.makedirs(ud3)
    with open(os.path.join(ud3, "settings.js"), "w") as f:
        f.write("module.exports = { uiPort: %d }\n" % PORT)
    p, log = start(["-u", ud3], dict(os.environ), base)
    request("POST", "/flows", FLOWS)
    out = stop(p, log)
    name = "flows_" + socket.gethostname() + ".json"
    check("a settings.js without flowFile: the first deploy writes " + name, os.path.exists(os.path.join(ud3, name)),
          str(os.listdir(ud3)) + out[-300:])
    check("a settings.js Carmine honours whole: no warning", warning_of(out) is None, out[-300:])

    # 4. -s FILE.js beside a flows file; a settings.js that throws refuses to start
    with open(os.path.join(base, "bad.js"), "w") as f:
        f.write("module.exports = { uiPort: 1 };\nthrow new Error('broken settings');\n")
    r = subprocess.run([CARMINE, "-s", os.path.join(base, "bad.js"), os.path.join(ud, "flows.json")],
                       capture_output=True, text=True, timeout=20)
    check("a settings.js that throws: exit 1, its error named", r.returncode == 1 and "broken settings" in r.stderr,
          f"{r.returncode} {r.stderr[-300:]}")
    with open(os.path.join(base, "ok.js"), "w") as f:
        f.write("module.exports = { uiPort: %d, httpAdminRoot: '/x' }\n" % PORT)
    p, log = start(["-s", os.path.join(base, "ok.js"), os.path.join(ud, "flows.json")], dict(os.environ), base)
    status, body = request("GET", "/x/flows")
    stop(p, log)
    check("-s settings.js with a flows file named", status == 200 and json.loads(body) == FLOWS, f"{status} {body[:200]}")

    # 5. https key and cert read with fs.readFileSync (Buffers): Carmine's https takes their paths
    ud5 = os.path.join(base, "user5")
    os.makedirs(ud5)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", os.path.join(ud5, "key.pem"),
                    "-out", os.path.join(ud5, "cert.pem"), "-days", "2", "-subj", "/CN=localhost"],
                   capture_output=True, check=True)
    with open(os.path.join(ud5, "settings.js"), "w") as f:
        f.write("const fs = require('fs');\nmodule.exports = { uiPort: %d, flowFile: 'flows.json', https: {\n"
                "  key: fs.readFileSync(__dirname + '/key.pem'), cert: fs.readFileSync(__dirname + '/cert.pem') } };\n" % PORT)
    p, log = start(["-u", ud5], dict(os.environ), base)
    r = subprocess.run(["curl", "-sk", f"https://127.0.0.1:{PORT}/flows"], capture_output=True, text=True, timeout=10)
    out = stop(p, log)
    check("https: {key: fs.readFileSync(...), cert: ...}: served over TLS", r.stdout == "[]", r.stdout[:100] + out[-300:])

    # 6. --help tells it
    r = subprocess.run([CARMINE, "--help"], capture_output=True, text=True)
    check("--help names the userDir's flows file and settings.js",
          "[FLOWS.json]" in r.stdout and "settings.js" in r.stdout and "~/.node-red" in r.stdout, r.stdout[:300])
finally:
    shutil.rmtree(base, ignore_errors=True)
sys.exit(1 if tap.failures else 0)
