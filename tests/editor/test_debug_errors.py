#!/usr/bin/env python3
"""test_debug_errors.py: errors in the editor's debug sidebar (/comms
"debug" messages), against what Node-RED 4.1.15 sent for the same flows
(nodered-debug-errors.json). An uncaught error that is an Error object in
Node-RED (a function node's throw or node.error(new Error(..)), the file in
node's ENOENT, the http request's RequestError) is shown as encodeObject
shows an Error: format "error", {"__enc__":true,"type":"error","data":
{name, message, code?, stack}}; a plain-text error stays a string; a catch
node's msg.error is an Object with message, source, code, stack in that
order. A warning with an Error (node.warn(new Error(..))) shows as an Error
too, and so does an Error a function node put in msg.payload, in a debug
node's payload and inside its whole message. Stacks are compared by their first line (the frames are Node's);
msg._error (the thrown Error, which Node-RED's function node leaves on the
message) and msg.error.source.name, which Node-RED sets to undefined for an unnamed node
(shown as {"__enc__":true,"type":"undefined"}), is not compared: a message in
Carmine has no undefined-valued keys (docs/companion.md).
  test_debug_errors.py CARMINE            the check
  test_debug_errors.py --record NODE_RED  writes nodered-debug-errors.json
                                          (NODE_RED: node-red's red.js)"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from ports import free_port  # noqa: E402
from wsclient import WS  # noqa: E402

RECORDED = os.path.join(HERE, "nodered-debug-errors.json")


def fn(id, name, body, wires=None):
    return {"id": id, "type": "function", "z": "t1", "name": name, "func": body, "outputs": 1, "x": 1, "y": 1,
            "wires": [wires or []]}


def flows(delay, caught):
    f = [{"id": "t1", "type": "tab", "label": "errors"},
         {"id": "i1", "type": "inject", "z": "t1", "props": [{"p": "payload"}], "payload": "x", "payloadType": "str",
          "once": True, "onceDelay": delay, "repeat": "", "x": 1, "y": 1,
          "wires": [["fthrow", "ferr", "fstr", "fwarn", "fpay"]]},
         fn("fthrow", "throws", "throw new Error('boom1');"),
         fn("ferr", "errobj", "node.error(new Error('boom2'), msg);\nreturn null;"),
         fn("fstr", "errstr", "node.error('plain text', msg);\nreturn null;"),
         fn("fwarn", "warner", "node.warn(new Error('boom3'));\nreturn null;"),
         fn("fpay", "errpay", "msg.payload = new Error('boom4');\nmsg.payload.code = 'E4';\nreturn msg;", ["dpay", "dfull"]),
         {"id": "dpay", "type": "debug", "z": "t1", "name": "pay", "active": True, "tosidebar": True,
          "console": False, "complete": "payload", "targetType": "msg", "x": 1, "y": 1, "wires": []},
         {"id": "dfull", "type": "debug", "z": "t1", "name": "full", "active": True, "tosidebar": True,
          "console": False, "complete": "true", "targetType": "full", "x": 1, "y": 1, "wires": []},
         {"id": "i2", "type": "inject", "z": "t1", "props": [{"p": "payload"}], "payload": "", "payloadType": "str",
          "once": True, "onceDelay": delay, "repeat": "", "x": 1, "y": 1, "wires": [["hreq", "fin"]]},
         {"id": "hreq", "type": "http request", "z": "t1", "method": "GET", "ret": "txt",
          "url": "http://127.0.0.1:1/x", "x": 1, "y": 1, "wires": [[]]},
         {"id": "fin", "type": "file in", "z": "t1", "filename": "/nonexistent/carmine-test/file.txt",
          "filenameType": "str", "format": "utf8", "x": 1, "y": 1, "wires": [[]]}]
    if caught:
        f += [{"id": "c1", "type": "catch", "z": "t1", "scope": None, "uncaught": False, "x": 1, "y": 1,
               "wires": [["derr", "dall"]]},
              {"id": "derr", "type": "debug", "z": "t1", "name": "err", "active": True, "tosidebar": True,
               "console": False, "complete": "error", "targetType": "msg", "x": 1, "y": 1, "wires": []},
              {"id": "dall", "type": "debug", "z": "t1", "name": "all", "active": True, "tosidebar": True,
               "console": False, "complete": "true", "targetType": "full", "x": 1, "y": 1, "wires": []}]
    return f


def first_line(s):
    return s.split("\n")[0] if isinstance(s, str) else s


def norm_error(e):
    if isinstance(e, dict):
        e = dict(e)
        if "stack" in e:
            e["stack"] = first_line(e["stack"])
        src = e.get("source")
        if isinstance(src, dict) and src.get("name") == {"__enc__": True, "type": "undefined"}:
            e["source"] = {k: v for k, v in src.items() if k != "name"}
    return e


def norm_nested(v):
    """Error objects inside a message ({"__enc__": true, "type": "error"}):
    their stacks by the first line."""
    if isinstance(v, dict):
        if v.get("__enc__") is True and v.get("type") == "error" and isinstance(v.get("data"), dict):
            return dict(v, data=norm_error(v["data"]))
        return {k: norm_nested(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm_nested(x) for x in v]
    return v


def normalise(d):
    """A debug message without what differs by run (timestamp, _msgid,
    payload dates) or by engine (stack frames); msg parsed, keys' order kept."""
    d = {k: v for k, v in d.items() if k != "timestamp"}
    if d.get("format") in ("error", "Object"):
        m = json.loads(d["msg"])
        if d["format"] == "error":
            m["data"] = norm_error(m["data"])
        elif "error" in m and "source" in m["error"]:  # the whole message
            m.pop("_msgid", None)
            # Node-RED's function node puts the thrown Error on msg.error
            # before it reports it, so a catch node gets it as msg._error:
            # Carmine's messages hold no Error objects (not compared)
            m.pop("_error", None)
            m["error"] = norm_error(m["error"])
        else:
            m = norm_nested(norm_error(m))
            m.pop("_msgid", None)
        d["msg"] = m
    return d


def key(d):
    m = d.get("msg") if isinstance(d.get("msg"), dict) else {}
    src = (m.get("error") or m).get("source") or {}
    return (d["id"], d.get("property") or "", d.get("level") or 0, src.get("id") or "")


def collect(port, seconds):
    ws = None
    for _ in range(200):
        try:
            ws = WS(port)
            break
        except Exception:
            time.sleep(0.05)
    if not ws:
        return []
    ws.send({"subscribe": "debug"})
    items, end = [], time.time() + seconds
    while time.time() < end:
        m = ws.messages(max(0.05, end - time.time()))
        for it in (m if isinstance(m, list) else [m] if m else []):
            if it.get("topic") == "debug":
                items.append(it["data"])
    ws.close()
    return sorted((normalise(d) for d in items), key=key)


def run(cmd_of, delay, seconds):
    out = {}
    for caught in (False, True):
        d = tempfile.mkdtemp(prefix="carmine-debug-errors-")
        with open(os.path.join(d, "flows.json"), "w") as f:
            json.dump(flows(delay, caught), f)
        port = free_port()
        p = subprocess.Popen(cmd_of(d, port), stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
        try:
            out["caught" if caught else "uncaught"] = collect(port, seconds)
        finally:
            p.terminate()
            p.wait(10)
    return out


if sys.argv[1] == "--record":
    red = sys.argv[2]
    got = run(lambda d, port: ["node", red, "-u", d, "-p", str(port), os.path.join(d, "flows.json")], 3, 6)
    with open(RECORDED, "w") as f:
        json.dump(got, f, indent=1)
        f.write("\n")
    print("recorded %d + %d messages" % (len(got["uncaught"]), len(got["caught"])))
    sys.exit(0)

carmine = sys.argv[1]
if not os.path.exists(RECORDED):
    print("not ok - %s is missing" % RECORDED)
    sys.exit(1)
want = json.load(open(RECORDED))
got = run(lambda d, port: [carmine, "-u", d, "-p", str(port), os.path.join(d, "flows.json")], 1, 2.5)
failed = 0
for part in ("uncaught", "caught"):
    w, g = want[part], got.get(part, [])
    for i in range(max(len(w), len(g))):
        a, b = (w[i] if i < len(w) else None), (g[i] if i < len(g) else None)
        desc = "debug sidebar, %s errors: %s" % (part, " ".join(str(x) for x in key(a or b) if x))
        if a == b:
            print("ok - " + desc)
        else:
            failed += 1
            print("not ok - " + desc)
            print("    Node-RED: " + json.dumps(a))
            print("    Carmine:  " + json.dumps(b))
