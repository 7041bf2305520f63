#!/usr/bin/env python3
"""test_routes.py CARMINE: the editor's routes on a running Carmine (the
article's API flow, flows/api.json) against real Node-RED 4.1.15's answers
(nodered-answers.json, recorded by record.py): status, content type and
content (the same bytes for files, the same JSON, the same node HTML per
node set); then what only Carmine's side can show: conditional requests,
path traversal refused, httpAdminRoot and its redirect, adminAuth (files
open, the API not, the login prompts), disableEditor, and the warning when
the editor's files are missing. Prints "ok - " / "not ok - " lines."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "article"))
import tap  # noqa: E402
from routes import REQUESTS, digest, fetch  # noqa: E402

CARMINE = sys.argv[1]
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FLOWS = os.path.join(ROOT, "flows", "api.json")
PORT = 24180
check = tap.check


def start(settings, flows=FLOWS):
    d = tempfile.mkdtemp(prefix="carmine-editor-")
    s = {"port": PORT, "userDir": d}
    s.update(settings)
    with open(os.path.join(d, "settings.json"), "w") as f:
        json.dump(s, f)
    log = open(os.path.join(d, "log"), "w+")
    p = subprocess.Popen([CARMINE, "-s", os.path.join(d, "settings.json"), flows], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            # 503 until the flows have started (then / answers too)
            if fetch(PORT, "/readyz" if not s.get("httpAdminRoot") else s["httpAdminRoot"].rstrip("/") + "/readyz",
                     "*/*")[0] != 503:
                break
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
    if p.poll() is not None:
        log.seek(0)
        sys.exit(f"carmine did not start (port {PORT} taken?): {log.read()[-400:]}")
    return p, log


def stop(p, log):
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    log.seek(0)
    return log.read()


with open(os.path.join(HERE, "nodered-answers.json")) as f:
    NR = json.load(f)

# Differences on purpose (docs/editor.md): Carmine's function node loads no
# npm modules, nothing can be installed from the palette, no telemetry.
CARMINE_SETTINGS = {"functionExternalModules": False, "telemetryEnabled": False,
                    "externalModules": {"palette": {"allowInstall": False, "allowUpload": False}}}

p, log = start({})
try:
    for name, path, accept, kind in REQUESTS:
        status, headers, body = fetch(PORT, path, accept)
        got = digest(kind, status, headers, body)
        want = NR[name]
        if status == 200 and want.get("etag") and "cache-control" in want:
            check(f"{name}: a weak ETag", headers.get("etag", "").startswith('W/"'), headers.get("etag", "none"))
        if "cache-control" in want and kind in ("sha",):
            check(f"{name}: Cache-Control", headers.get("cache-control") == want["cache-control"],
                  str(headers.get("cache-control")))
        if status >= 400 or want["status"] >= 400:
            check(f"{name}: {want['status']} as Node-RED", status == want["status"], f"got {status}")
            if "passwd" in path or "package.json" in path:
                check(f"{name}: nothing of the file", b"root:" not in body and b'"name"' not in body, body[:80])
            continue
        check(f"{name}: status and content type", (got["status"], got["type"]) == (want["status"], want["type"]),
              f"got {got['status']} {got['type']}, Node-RED {want['status']} {want['type']}")
        if kind == "json" and name == "settings":
            g, w = got["body"], dict(want["body"])
            w.update(CARMINE_SETTINGS)
            for k in sorted(set(g) | set(w)):
                check(f"settings.{k}", g.get(k) == w.get(k), f"got {json.dumps(g.get(k))}, want {json.dumps(w.get(k))}")
        elif kind == "json" and name == "nodes json":
            g, w = got["body"], want["body"]
            by_id = {s["id"]: s for s in w}
            check("nodes json: every set Carmine lists is Node-RED's, unchanged",
                  all(by_id.get(s["id"]) == s for s in g), json.dumps([s for s in g if by_id.get(s["id"]) != s])[:300])
            order = [s["id"] for s in w if s["id"] in {x["id"] for x in g}]
            check("nodes json: in Node-RED's order", [s["id"] for s in g] == order)
            types = {t for s in g for t in s["types"]}
            used = {n["type"] for n in json.load(open(FLOWS)) if n["type"] not in ("tab", "group")}
            check("nodes json: the flow's types are there", used <= types, str(used - types))
            check("nodes json: the core sets of Carmine's types (all but msg-speed's contrib set)",
                  {s["id"] for s in w if s["module"] == "node-red"} - {s["id"] for s in g} <= {"node-red/websocket"} and
                  len(g) >= 30, str({s["id"] for s in w} - {s["id"] for s in g}))
        elif name == "icons list":
            check("icons list: Node-RED's core icons", got["body"].get("node-red") == want["body"]["node-red"],
                  str(got["body"])[:200])
        elif kind == "modules":
            g, w = got["modules"], want["modules"]
            check("nodes html: the same sets as the JSON list",
                  sorted(g) == sorted(s["id"] for s in json.loads(fetch(PORT, "/nodes", "application/json")[2])))
            bad = [m for m in g if g[m] != w.get(m)]
            check(f"nodes html: each of the {len(g)} sets' HTML is Node-RED's, byte for byte", not bad, str(bad))
        else:
            field = {"json": "body", "jsha": "sha", "sha": "sha", "page": "body"}.get(kind)
            if field:
                check(f"{name}: the same content as Node-RED", got[field] == want[field],
                      str(got[field])[:200] + " vs " + str(want[field])[:200])

    # a conditional request gets 304, with no body
    status, headers, _ = fetch(PORT, "/red/red.min.js", "*/*")
    etag = headers.get("etag")
    status, _, body = fetch(PORT, "/red/red.min.js", "*/*", {"If-None-Match": etag})
    check("If-None-Match with the ETag: 304", status == 304 and body == b"", f"{status}")
    status, _, _ = fetch(PORT, "/red/red.min.js", "*/*", {"If-Modified-Since": headers.get("last-modified")})
    check("If-Modified-Since the Last-Modified: 304", status == 304, f"{status}")
    status, headers, body = fetch(PORT, "/red/red.min.js", "*/*", method="HEAD")
    check("HEAD: the length, no body", status == 200 and body == b"" and int(headers.get("content-length", 0)) > 100000,
          f"{status} {headers.get('content-length')}")
    for bad in ["/red/.hidden", "/vendor//etc/passwd", "/red/..\\..\\package.json", "/icons/node-red/..%2f..%2fpackage.json"]:
        status, _, body = fetch(PORT, bad, "*/*")
        check(f"refused: {bad}", b'"version"' not in body and b"root:" not in body, f"{status} {body[:60]}")
    # user settings are kept
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    c.request("POST", "/settings/user", json.dumps({"editor": {"view": {"view-show-grid": False}}}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    check("POST /settings/user: 204", r.status == 204, str(r.status))
    got = json.loads(fetch(PORT, "/settings/user", "application/json")[2])
    check("GET /settings/user: what was posted", got == {"editor": {"view": {"view-show-grid": False}}}, str(got))
    # an http in route of the flow still answers beside the editor's routes
    status, _, body = fetch(PORT, "/api", "*/*")
    check("the flow's GET /api answers", status == 200, f"{status} {body[:80]}")
finally:
    out = stop(p, log)
check("no warning about the editor when its files are there", "[warn]" not in out, out[-300:])

# httpAdminRoot: everything under it, and the root without its slash redirected
p, log = start({"httpAdminRoot": "/admin"})
try:
    status, headers, _ = fetch(PORT, "/admin?x=1", "text/html")
    check("httpAdminRoot /admin: /admin redirects to /admin/ (301)",
          status == 301 and headers.get("location") == "/admin/?x=1", f"{status} {headers.get('location')}")
    status, headers, body = fetch(PORT, "/admin/", "text/html")
    check("httpAdminRoot /admin: the page at /admin/", status == 200 and b"red/red.min.js" in body, f"{status}")
    status, _, _ = fetch(PORT, "/admin/red/red.min.js", "*/*")
    check("httpAdminRoot /admin: its files", status == 200, f"{status}")
    status, _, _ = fetch(PORT, "/red/red.min.js", "*/*")
    check("httpAdminRoot /admin: nothing at /red", status == 404, f"{status}")
finally:
    stop(p, log)

# adminAuth: the page, files, locales and /theme are open; the API wants a token
users = [{"username": "admin", "password": "$2b$08$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2",
          "permissions": "*"}]
p, log = start({"adminAuth": {"type": "credentials", "users": users}})
try:
    for path in ["/", "/red/red.min.js", "/vendor/vendor.js", "/theme", "/locales/editor?lng=en-US",
                 "/icons/node-red/inject.svg", "/debug/view/debug-utils.js"]:
        status, _, _ = fetch(PORT, path, "*/*")
        check(f"adminAuth: {path} is open", status == 200, f"{status}")
    for path in ["/settings", "/settings/user", "/nodes", "/plugins", "/icons", "/flows"]:
        status, _, _ = fetch(PORT, path, "application/json")
        check(f"adminAuth: {path} wants a token (401)", status == 401, f"{status}")
    status, _, body = fetch(PORT, "/auth/login", "application/json")
    login = json.loads(body)
    check("adminAuth: /auth/login gives the editor's credentials prompts",
          login.get("type") == "credentials" and [x["id"] for x in login.get("prompts", [])] == ["username", "password"],
          str(login))
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    c.request("POST", "/auth/token",
              "client_id=node-red-editor&grant_type=password&scope=*&username=admin&password=secretpw",
              {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    tok = json.loads(r.read()).get("access_token")
    check("adminAuth: the editor's client logs in", r.status == 200 and tok, str(r.status))
    status, _, body = fetch(PORT, "/nodes", "text/html", {"Authorization": "Bearer " + str(tok)})
    check("adminAuth: /nodes with the token", status == 200 and b"red-module:node-red/inject" in body, f"{status}")
    status, _, body = fetch(PORT, "/settings", "application/json", {"Authorization": "Bearer " + str(tok)})
    check("adminAuth: /settings names the user", json.loads(body).get("user", {}).get("username") == "admin",
          body[:200])
finally:
    stop(p, log)

# disableEditor: no editor routes, the Admin API and flows as before
p, log = start({"disableEditor": True})
try:
    for path in ["/", "/red/red.min.js", "/theme", "/nodes"]:
        status, _, _ = fetch(PORT, path, "text/html")
        check(f"disableEditor: no {path}", status == 404, f"{status}")
    s = json.loads(fetch(PORT, "/settings", "application/json")[2])
    check("disableEditor: /settings as Node-RED's then", s == {"httpNodeRoot": "/", "version": "4.1.15"}, str(s))
    check("disableEditor: the flow runs", fetch(PORT, "/api", "*/*")[0] == 200)
finally:
    out = stop(p, log)
check("disableEditor: no warning", "[warn]" not in out, out[-300:])

# editorDir without the editor: one warning naming the setting and tools/setup.sh; flows run
p, log = start({"editorDir": "/nonexistent/editor-client"})
try:
    check("missing editorDir: the flow runs", fetch(PORT, "/api", "*/*")[0] == 200)
    check("missing editorDir: no page (404)", fetch(PORT, "/", "text/html")[0] == 404)
finally:
    out = stop(p, log)
warn = [line for line in out.splitlines() if "[warn]" in line]
check("missing editorDir: one warning naming editorDir and tools/setup.sh",
      len(warn) == 1 and "editorDir" in warn[0] and "tools/setup.sh" in warn[0], out[-400:])
sys.exit(1 if tap.failures else 0)
