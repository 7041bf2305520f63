#!/usr/bin/env python3
"""test_function_libs.py: a function node with external modules (`libs`,
Node-RED's functionExternalModules) runs in the companion (docs/companion.md).

The test userDir has dayjs from npm in its package.json's dependencies and
node_modules (tools/setup.sh), as `carmine install dayjs` leaves it and as
Node-RED 4.1.15 wants it. Native nodes before and after the hosted function
node, flow and global context shared both ways, its second output, its
node.status() and node.error() reaching native status and catch nodes, a
function node without libs staying native, one with libs inside a subflow
(its instance hosted); `carmine check` listing it as
hosted, and naming a module the userDir lacks with the line that installs it.
The expected lines are what Node-RED 4.1.15 writes running the same flows
with the same userDir (checked 2026-12-07).
  tests/companion/test_function_libs.py CARMINE USERDIR
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CARMINE, USERDIR, Run, check, finish, inject, lines, node, out, path, setp, wait_for  # noqa: E402

FUNC = """
const d = dayjs(msg.payload).add(1, 'month');
node.status({fill: 'blue', shape: 'ring', text: 'at ' + d.format('MMM D')});
if (msg.fail) { node.error('no ' + msg.fail + ' ' + pathmod.join('a', 'b'), msg); return null; }
flow.set('fromFn', d.format('YYYY-MM-DD') + '/' + flow.get('native'));
global.set('fnCount', (global.get('fnCount') || 0) + 1);
msg.payload = d.format('YYYY-MM-DD dddd');
msg.g = global.get('g');
return [msg, {payload: dayjs.isDayjs(d) ? 'second:' + d.daysInMonth() : 'no'}];
"""

flows = [
    {"id": "t1", "type": "tab", "label": "function libs"},
    # native change: context and a topic; then the hosted function node
    inject("i1", [["c1"]], "2020-01-31"),
    node("c1", "change", [["fn1"]], rules=[
        {"t": "set", "p": "native", "pt": "flow", "to": "N1", "tot": "str"},
        {"t": "set", "p": "g", "pt": "global", "to": "7", "tot": "num"},
        {"t": "set", "p": "topic", "pt": "msg", "to": "dates", "tot": "str"}]),
    node("fn1", "function", [["c2"], ["f2"]], name="with dayjs", func=FUNC, outputs=2, timeout=0, noerr=0,
         initialize="", finalize="",
         libs=[{"var": "dayjs", "module": "dayjs"}, {"var": "pathmod", "module": "path"}]),
    # native after: msg, and what the hosted node wrote to flow and global context
    setp("c2", [["f1", "fn2"]], "payload & '|' & topic & '|' & $string(g) & '|' & $flowContext('fromFn') & '|' & "
                         "$string($globalContext('fnCount'))"),
    out("f1", "fn.txt"),
    out("f2", "second.txt"),
    # its error with the message, in a native catch; its status in a native status node
    inject("i2", [["fn1"]], "2021-02-01", "str", 0.6, props=[{"p": "payload"}, {"p": "fail", "v": "luck", "vt": "str"}]),
    node("k1", "catch", [["c3"]], scope=["fn1"], uncaught=False),
    setp("c3", [["f3"]], "error.message & '|' & error.source.id & '|' & error.source.type & '|' & fail"),
    out("f3", "caught.txt"),
    node("st1", "status", [["c4"]], scope=["fn1"]),
    setp("c4", [["f4"]], "status.text & '|' & status.source.id"),
    out("f4", "status.txt"),
    # a function node without libs stays native (and reads what the hosted one wrote)
    node("fn2", "function", [["f5"]], func="msg.payload = 'native:' + flow.get('fromFn'); return msg;", outputs=1,
         libs=[]),
    out("f5", "native.txt"),
    # a function node with libs inside a subflow: the instance runs in the companion
    {"id": "sfl", "type": "subflow", "name": "fmt", "info": "", "category": "", "env": [],
     "in": [{"x": 1, "y": 1, "wires": [{"id": "fl2"}]}], "out": [{"x": 1, "y": 1, "wires": [{"id": "fl2", "port": 0}]}]},
    dict(node("fl2", "function", [[]], func="msg.payload = dj(msg.payload).format('DD MMM YYYY'); return msg;",
              outputs=1, libs=[{"var": "dj", "module": "dayjs"}]), z="sfl"),
    inject("i5", [["sl1"]], "2020-03-04", "str", 0.2),
    node("sl1", "subflow:sfl", [["f6"]], env=[]),
    out("f6", "sub.txt"),
]

r = Run(flows, name="libs")
try:
    ok = wait_for(lambda: lines("fn.txt") and lines("caught.txt") and lines("native.txt"), 30)
    check("the flow with a function node with libs ran (in the companion)", ok, r.text())
    check("the hosted function node used dayjs; msg, flow and global context crossed both ways",
          lines("fn.txt") == ["2020-02-29 Saturday|dates|7|2020-02-29/N1|1"], lines("fn.txt"))
    check("its second output reached a native node", lines("second.txt") == ["second:29"], lines("second.txt"))
    check("node.error(text, msg) of the hosted function node reached a native catch node",
          lines("caught.txt") == ["no luck a/b|fn1|function|luck"], lines("caught.txt"))
    check("its node.status() reached a native status node",
          wait_for(lambda: "at Feb 29|fn1" in lines("status.txt"), 5), lines("status.txt"))
    check("a function node with libs inside a subflow ran (the instance in the companion)",
          wait_for(lambda: lines("sub.txt"), 5) and lines("sub.txt") == ["04 Mar 2020"], lines("sub.txt"))
    check("a function node without libs stays native and reads the hosted node's flow context",
          wait_for(lambda: lines("native.txt"), 5) and lines("native.txt") == ["native:2020-02-29/N1"],
          lines("native.txt"))
finally:
    r.stop()

# carmine check: hosted, and a missing module with its install line
res = subprocess.run([CARMINE, "check", "-u", USERDIR, path("libs.json")], capture_output=True, text=True)
check("carmine check lists the function node with libs as hosted (exit 0)",
      res.returncode == 0 and "node fn1 (function) is hosted by the companion (external module dayjs)" in res.stdout
      and "fn2" not in res.stdout and "node sl1 (subflow:sfl) is hosted by the companion with its subflow fmt, which "
      "holds node fl2 (function, external module dayjs)" in res.stdout, res.stdout + res.stderr)
bare = path("bare-userdir")
os.makedirs(bare, exist_ok=True)
with open(os.path.join(bare, "package.json"), "w") as f:
    json.dump({"name": "node-red-project", "private": True}, f)
res = subprocess.run([CARMINE, "check", "-u", bare, path("libs.json")], capture_output=True, text=True)
want = "node fn1 (function): its external module dayjs is not installed in %s: carmine install -u %s dayjs" % (bare, bare)
check("carmine check names a function node's missing module with the line that installs it (exit 1)",
      res.returncode == 1 and want in res.stdout + res.stderr, "rc %d\n%s%s" % (res.returncode, res.stdout, res.stderr))
res = subprocess.run([CARMINE, "-u", bare, path("libs.json")], capture_output=True, text=True, timeout=20)
check("carmine refuses to start it without the module, with the same line",
      res.returncode != 0 and want in res.stdout + res.stderr, "rc %d\n%s%s" % (res.returncode, res.stdout, res.stderr))
finish()
