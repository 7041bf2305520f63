#!/usr/bin/env python3
"""test_subflow.py: hosted node types inside a subflow (docs/companion.md).

A subflow holding node-red-contrib-moment's node (from npm) and the fixture
module's echo node, with native nodes around them inside it (change nodes,
an instance of a native-only subflow) and outside it, runs whole in the
companion, instance by instance: its env variables (the subflow's defaults
and an instance's own), its status output (a native status node scoped to
the instance), an inner node's status where the subflow has no status output
(source: the node inside), its output, global context and its parent flow's context
($parent) read by native nodes after it, and an error of a node inside it in
a native catch node scoped to the instance (source: the node inside, as
Node-RED names it, INSTANCE-NODE). The native-only subflow stays native
where a tab uses it directly; a "nodes" deploy changing a node inside the
subflow is taken; `carmine check` lists the hosted instances.
The expected lines are what Node-RED 4.1.15 writes running the same flows
with the same userDir (checked 2026-12-07).
  tests/companion/test_subflow.py CARMINE USERDIR
"""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CARMINE, USERDIR, Run, check, finish, inject, lines, node, out, path, setp, wait_for  # noqa: E402

MOMENT = dict(name="", topic="", input="payload", inputType="msg", inTz="UTC", adjAmount=1, adjType="days",
              adjDir="add", format="${FMT}", locale="en", output="payload", outputType="msg", outTz="UTC")
DATE = "2020-01-02T03:04:05Z"


def inside(sf, n):
    n["z"] = sf
    return n


flows = [
    {"id": "t1", "type": "tab", "label": "subflows"},
    # sf2: native only (appends "!")
    {"id": "sf2", "type": "subflow", "name": "bang", "info": "", "category": "", "env": [],
     "in": [{"x": 1, "y": 1, "wires": [{"id": "b1"}]}], "out": [{"x": 1, "y": 1, "wires": [{"id": "b1", "port": 0}]}]},
    inside("sf2", setp("b1", [[]], "payload & '!'")),
    # sf1: change -> moment (npm) -> instance of sf2 -> change -> out; change -> status output; echo (npm)
    {"id": "sf1", "type": "subflow", "name": "dated", "info": "", "category": "",
     "env": [{"name": "FMT", "type": "str", "value": "YYYY-MM-DD"}, {"name": "LABEL", "type": "str", "value": "def"}],
     "in": [{"x": 1, "y": 1, "wires": [{"id": "sc1"}]}],
     "out": [{"x": 1, "y": 1, "wires": [{"id": "sc3", "port": 0}]}],
     "status": {"x": 1, "y": 1, "wires": [{"id": "sc4", "port": 0}]}},
    inside("sf1", node("sm1", "moment", [["ss1"]], **MOMENT)),
    inside("sf1", node("sc1", "change", [["sm1", "sc4", "se1"]], rules=[
        {"t": "set", "p": "topic", "pt": "msg", "to": "FMT", "tot": "env"},
        {"t": "set", "p": "sfSeen", "pt": "global", "to": "payload", "tot": "msg"},
        {"t": "set", "p": "$parent.fromSf", "pt": "flow", "to": "payload", "tot": "msg"}])),
    inside("sf1", node("ss1", "subflow:sf2", [["sc3"]], env=[])),
    inside("sf1", setp("sc3", [[]], "payload & '|' & $env('LABEL')")),
    inside("sf1", setp("sc4", [[]], "{'fill': 'green', 'shape': 'dot', 'text': 'got ' & payload}")),
    inside("sf1", node("se1", "carmine-echo", [[]], name="inner echo")),
    # on the tab: native -> instance (own env) -> native, and on to a second instance (the subflow's env)
    inject("i1", [["c1"]], DATE),
    node("c1", "change", [["inst1"]], rules=[{"t": "set", "p": "before", "pt": "msg", "to": "native", "tot": "str"}]),
    node("inst1", "subflow:sf1", [["c2"]], env=[{"name": "FMT", "type": "str", "value": "DD/MM/YYYY"},
                                                {"name": "LABEL", "type": "str", "value": "one"}]),
    setp("c2", [["f1", "c2b"]], "payload & '|' & topic & '|' & before & '|' & $globalContext('sfSeen') & '|' & "
                                "$flowContext('fromSf')"),
    out("f1", "one.txt"),
    setp("c2b", [["inst2"]], "'2021-06-30T10:00:00Z'"),
    node("inst2", "subflow:sf1", [["c3"]], env=[{"name": "LABEL", "type": "str", "value": "two"}]),
    setp("c3", [["f2"]], "payload & '|' & topic & '|' & $globalContext('sfSeen')"),
    out("f2", "two.txt"),
    # the instance's status output, in a native status node scoped to it
    node("st1", "status", [["c4"]], scope=["inst1"]),
    setp("c4", [["f4"]], "status.text & '|' & status.source.id"),
    out("f4", "status.txt"),
    # an error inside an instance, in a native catch node scoped to the instance
    inject("i3", [["inst4"]], DATE, "str", 0.1, props=[{"p": "payload"}, {"p": "fail", "v": "boom", "vt": "str"}]),
    node("inst4", "subflow:sf1", [[]], env=[{"name": "LABEL", "type": "str", "value": "err"}]),
    node("k1", "catch", [["c5"]], scope=["inst4"], uncaught=False),
    setp("c5", [["f3"]], "error.message & '|' & error.source.id & '|' & error.source.type & '|' & fail"),
    out("f3", "caught.txt"),
    # sf3 has no status output: the status of a hosted node inside an instance
    # reaches status nodes outside with the inner node as its source
    {"id": "sf3", "type": "subflow", "name": "quiet", "info": "", "category": "", "env": [],
     "in": [{"x": 1, "y": 1, "wires": [{"id": "se3"}]}], "out": []},
    inside("sf3", node("se3", "carmine-echo", [[]], name="inner echo 3")),
    inject("i5", [["inst5"]], "x", "str", 0.1),
    node("inst5", "subflow:sf3", [], env=[]),
    node("st5", "status", [["c6"]], scope=["inst5"]),
    setp("c6", [["f6"]], "status.text & '|' & status.source.id & '|' & status.source.type & '|' & status.source.name"),
    out("f6", "status5.txt"),
    # the native-only subflow used on the tab stays native
    inject("i4", [["inst3"]], "x", "str", 0.1),
    node("inst3", "subflow:sf2", [["f5"]], env=[]),
    out("f5", "native.txt"),
]

r = Run(flows, name="subflow")
try:
    ok = wait_for(lambda: lines("two.txt") and lines("caught.txt"), 30)
    check("flows with hosted nodes inside subflows ran", ok, r.text())
    check("an instance ran moment (npm) with its own env, a native-only subflow and change nodes inside; "
          "global and $parent flow context read by a native node after it",
          lines("one.txt") == ["03/01/2020!|one|DD/MM/YYYY|native|%s|%s" % (DATE, DATE)], lines("one.txt"))
    check("a second instance of the same subflow uses the subflow's env default",
          lines("two.txt") == ["2021-07-01!|two|YYYY-MM-DD|2021-06-30T10:00:00Z"], lines("two.txt"))
    check("the subflow's status output reaches a native status node scoped to the instance",
          wait_for(lambda: lines("status.txt"), 5) and lines("status.txt") == ["got %s|inst1" % DATE],
          lines("status.txt"))
    check("an error inside an instance reaches a native catch node scoped to the instance (source inst4-se1)",
          lines("caught.txt") == ["failed: boom|inst4-se1|carmine-echo|boom"], lines("caught.txt"))
    check("a status inside an instance of a subflow without a status output reaches a status node scoped to the "
          "instance, with the node inside as its source (inst5-se3)",
          wait_for(lambda: lines("status5.txt"), 5)
          and lines("status5.txt") == ["seen 1|inst5-se3|carmine-echo|inner echo 3"], lines("status5.txt"))
    check("the native-only subflow used on the tab ran natively", lines("native.txt") == ["x!"], lines("native.txt"))
    # a "nodes" deploy changing a node inside the hosted subflow (and the inject, so that it fires again)
    port = int(r.text().split("HTTP on port ")[1].split()[0])
    changed = json.loads(json.dumps(flows))
    for n in changed:
        if n["id"] == "sc3":
            n["rules"][0]["to"] = "payload & '|' & $env('LABEL') & '|v2'"
        if n["id"] == "i1":
            n["name"] = "again"
    req = urllib.request.Request("http://127.0.0.1:%d/flows" % port, data=json.dumps(changed).encode(),
                                 headers={"Content-Type": "application/json", "Node-RED-Deployment-Type": "nodes"})
    try:
        code = urllib.request.urlopen(req, timeout=10).status
    except Exception as e:
        code = str(e)
    want = "03/01/2020!|one|v2|DD/MM/YYYY|native|%s|%s" % (DATE, DATE)
    check("a nodes deploy changing a node inside the hosted subflow is taken (POST /flows %s)" % code,
          wait_for(lambda: want in lines("one.txt"), 20), lines("one.txt")[-3:])
finally:
    r.stop()

res = subprocess.run([CARMINE, "check", "-u", USERDIR, path("subflow.json")], capture_output=True, text=True)
o = res.stdout
check("carmine check lists each instance as hosted with its subflow (exit 0), not the native-only one",
      res.returncode == 0 and all("node %s (subflow:sf1) is hosted by the companion with its subflow dated, which holds "
                                  "node sm1 (moment, npm module node-red-contrib-moment)" % i in o
                                  for i in ("inst1", "inst2", "inst4"))
      and "inst3" not in o and "sm1 (moment) is hosted" not in o, o + res.stderr)
finish()
