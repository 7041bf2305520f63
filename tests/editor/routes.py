"""routes.py: the requests the editor tests send, and what of each answer is
compared with real Node-RED 4.1.15's (recorded by record.py into
nodered-answers.json; test_routes.py compares Carmine's). Only digests and
small JSON answers are kept: no file of the npm packages is copied here."""
import hashlib
import http.client
import json
import re

# (name, path as sent (not normalised), Accept header, what to compare)
#   json: the whole JSON body; keys: its sorted keys; sha: sha256 of the body;
#   jsha: sha256 of the JSON with sorted keys; modules: per red-module section
#   of /nodes HTML its sha256; page: the body with the cacheBuster masked;
#   none: status and content type only
REQUESTS = [
    ("page", "/", "text/html", "page"),
    ("theme", "/theme", "application/json", "json"),
    ("settings", "/settings", "application/json", "json"),
    ("settings/user", "/settings/user", "application/json", "json"),
    ("plugins json", "/plugins", "application/json", "json"),
    ("plugins html", "/plugins", "text/html", "sha"),
    ("plugins messages", "/plugins/messages?lng=en-US", "application/json", "json"),
    ("nodes json", "/nodes", "application/json", "json"),
    ("nodes html", "/nodes", "text/html", "modules"),
    ("icons list", "/icons", "application/json", "json"),
    ("icon", "/icons/node-red/inject.svg", "*/*", "sha"),
    ("icon from the editor", "/icons/node-red/arrow-in.svg", "*/*", "sha"),
    ("unknown icon: the default", "/icons/node-red/no-such-icon.svg", "*/*", "sha"),
    ("red.min.js", "/red/red.min.js", "*/*", "sha"),
    ("style.min.css", "/red/style.min.css", "*/*", "sha"),
    ("vendor.js", "/vendor/vendor.js", "*/*", "sha"),
    ("keymap.json", "/red/keymap.json", "*/*", "sha"),
    ("favicon", "/favicon.ico", "*/*", "sha"),
    ("svg", "/red/images/node-red.svg", "*/*", "sha"),
    ("font", "/vendor/font-awesome/fonts/fontawesome-webfont.woff2", "*/*", "sha"),
    ("monaco", "/vendor/monaco/monaco-bootstrap.js", "*/*", "sha"),
    ("types", "/types/node-red/func.d.ts", "*/*", "sha"),
    ("debug-utils", "/debug/view/debug-utils.js", "*/*", "sha"),
    ("debug view", "/debug/view/view.html", "*/*", "sha"),
    ("debug view missing", "/debug/view/nope.js", "*/*", "none"),
    ("missing file", "/red/no-such-file.js", "*/*", "none"),
    ("traversal", "/red/../../../../../../etc/passwd", "*/*", "none"),
    ("encoded traversal", "/red/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "*/*", "none"),
    ("encoded slash traversal", "/vendor/..%2f..%2fpackage.json", "*/*", "none"),
]
for ns in ["editor", "jsonata", "infotips", "node-red", "runtime"]:
    for lng in ["en-US", "en", "de", "fr-FR", "zh-TW"]:
        REQUESTS.append((f"locales {ns} {lng}", f"/locales/{ns}?lng={lng}", "application/json", "jsha"))
REQUESTS += [
    ("locales default language", "/locales/editor", "application/json", "jsha"),
    ("locales .json", "/locales/jsonata.json?lng=en-US", "application/json", "jsha"),
    ("locales unknown namespace", "/locales/nope?lng=en-US", "application/json", "json"),
    ("locales bad language", "/locales/editor?lng=e%3Cn", "application/json", "json"),
]


def fetch(port, path, accept, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Accept": accept}
    h.update(headers or {})
    c.putrequest(method, path, skip_accept_encoding=True)
    for k, v in h.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    out = (r.status, dict((k.lower(), v) for k, v in r.getheaders()), body)
    c.close()
    return out


def sha(b):
    return hashlib.sha256(b).hexdigest()


def modules(html):
    """/nodes HTML cut at its red-module markers: {id: sha256 of its section}."""
    parts = re.split(r"\n<!-- --- \[red-module:([^\]]+)\] --- -->\n", html.decode())
    return {parts[i]: sha(parts[i + 1].encode()) for i in range(1, len(parts), 2)}


def digest(kind, status, headers, body):
    d = {"status": status, "type": headers.get("content-type")}
    if status != 200:
        return d
    if kind == "json":
        d["body"] = json.loads(body)
    elif kind == "jsha":
        d["sha"] = sha(json.dumps(json.loads(body), sort_keys=True).encode())
    elif kind == "sha":
        d["sha"] = sha(body)
    elif kind == "modules":
        d["modules"] = modules(body)
    elif kind == "page":
        d["body"] = re.sub(r"v=[0-9a-f]{12}", "v=CACHEBUSTER", body.decode())
    return d
