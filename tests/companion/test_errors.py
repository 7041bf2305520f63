#!/usr/bin/env python3
"""test_errors.py: a hosted node's error that is an Error object (the
fixture's echo node with msg.failError: new Error(..) with code EFIXTURE,
given to done()) reaches a native catch node with Node-RED's msg.error:
message, source, code, stack in that order (Node-RED's frames differ by
path: the stack is compared by its first line); uncaught, it shows in the
editor's debug sidebar as Node-RED shows an Error (format "error", name,
message, code, stack; the entry's type is the hosted node's), where a
text error (msg.fail) stays a string. A status a hosted node sets while
its flow starts (the probe's "probe ready"), which no status node sees, is
the editor's status of the node (Node-RED's node-status event). A hosted
node's node.warn / node.log entries are printed as Node-RED prints them and
the warnings shown in the debug sidebar (an Error as an error object). The
expected values are Node-RED 4.1.15's for the same flows.
  tests/companion/test_errors.py CARMINE USERDIR
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))
from harness import Run, check, finish, inject, lines, node, out, setp, wait_for  # noqa: E402
from wsclient import WS  # noqa: E402

flows = [
    {"id": "t1", "type": "tab", "label": "errors"},
    inject("i1", [["e1"]], "x", "str", 1.0, props=[{"p": "payload"}, {"p": "failError", "v": "bad", "vt": "str"}]),
    node("e1", "carmine-echo", [[]], name="caught"),
    node("k1", "catch", [["n1"]], scope=["e1"], uncaught=False),
    node("n1", "function", [["f1"]], outputs=1, libs=[], func=(
        "const e = msg.error;\n"
        "return {payload: JSON.stringify({keys: Object.keys(e), message: e.message, code: e.code,\n"
        "  stack: e.stack.split('\\n')[0], source: e.source.id})};")),
    out("f1", "caught.txt"),
    inject("i2", [["e2"]], "x", "str", 1.0, props=[{"p": "payload"}, {"p": "failError", "v": "worse", "vt": "str"}]),
    inject("i3", [["e2"]], "x", "str", 1.0, props=[{"p": "payload"}, {"p": "fail", "v": "text", "vt": "str"}]),
    node("e2", "carmine-echo", [[]], name="uncaught"),
    node("p1", "carmine-probe", [[]], name="prober"),
    inject("i4", [["p1"]], "x", "str", 1.0, props=[{"p": "payload"}, {"p": "warn", "v": "careful", "vt": "str"},
                                                  {"p": "warnError", "v": "odd", "vt": "str"},
                                                  {"p": "info", "v": "for the log", "vt": "str"}]),
]

r = Run(flows, name="errors")
items, statuses = [], {}
try:
    ok = wait_for(lambda: "HTTP on port " in r.text(), 10)
    port = int(r.text().split("HTTP on port ")[1].split()[0]) if ok else 0
    ws = None
    for _ in range(100):
        try:
            ws = WS(port)
            break
        except Exception:
            time.sleep(0.05)
    if ws:
        ws.send({"subscribe": "debug"})
        ws.send({"subscribe": "status/#"})
        end = time.time() + 30
        while time.time() < end and len([i for i in items if i.get("level")]) < 4:
            m = ws.messages(max(0.05, end - time.time()))
            for it in (m if isinstance(m, list) else [m] if m else []):
                if it.get("topic") == "debug":
                    items.append(it["data"])
                elif it.get("topic", "").startswith("status/"):
                    statuses[it["topic"]] = it["data"]
    wait_for(lambda: lines("caught.txt"), 10)
finally:
    r.stop()
caught = json.loads(lines("caught.txt")[0]) if lines("caught.txt") else {}
check("a native catch node sees the hosted node's Error with Node-RED's msg.error (%s)" % caught,
      caught == {"keys": ["message", "source", "code", "stack"], "message": "Error: bad", "code": "EFIXTURE",
                 "stack": "Error: bad", "source": "e1"}, r.text())
logs = {i.get("format"): i for i in items if i.get("id") == "e2" and i.get("level") == 20}
err = json.loads(logs["error"]["msg"]) if "error" in logs else {}
data = err.get("data", {})
check("an uncaught hosted Error shows as an error object in the debug sidebar (%s)" % logs.get("error"),
      logs["error"].get("type") == "carmine-echo" and err.get("__enc__") is True and err.get("type") == "error" and list(data) == ["name", "message", "code", "stack"]
      and data.get("name") == "Error" and data.get("message") == "worse" and data.get("code") == "EFIXTURE"
      and data.get("stack", "").split("\n")[0] == "Error: worse", items)
check("an uncaught hosted text error stays a string there",
      logs.get("string[12]", {}).get("msg") == "failed: text", items)
warns = [i for i in items if i.get("id") == "p1" and i.get("level") == 30]
plain = [i for i in warns if i.get("format") == "string[7]"]
check("a hosted node's node.warn(text) is in the debug sidebar as Node-RED shows it (%s)" % plain,
      len(plain) == 1 and plain[0].get("msg") == "careful" and plain[0].get("type") == "carmine-probe"
      and plain[0].get("name") == "prober", warns)
errw = [json.loads(i["msg"]) for i in warns if i.get("format") == "error"]
check("and node.warn(new TypeError(..)) as an error object (%s)" % errw,
      len(errw) == 1 and errw[0]["data"]["name"] == "TypeError" and errw[0]["data"]["message"] == "odd", warns)
text = r.text()
check("the hosted node's node.warn and node.log are printed as Node-RED prints them",
      "[warn] [carmine-probe:prober] careful" in text and "[warn] [carmine-probe:prober] TypeError: odd" in text
      and "[info] [carmine-probe:prober] for the log" in text, text)
check("a status a hosted node shows while its flow starts reaches the editor (%s)" % statuses.get("status/p1"),
      statuses.get("status/p1") == {"fill": "grey", "shape": "ring", "text": "probe ready"}, statuses)
finish()
