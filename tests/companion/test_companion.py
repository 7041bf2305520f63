#!/usr/bin/env python3
"""test_companion.py: npm node types in the companion (docs/companion.md).

Runs carmine on flows mixing native nodes with nodes of real npm modules
(node-red-contrib-moment from the registry, and the small fixture module of
this folder) installed in a test userDir, and checks what comes out: the
hosted node's real output, 1000 messages in order, a Buffer both ways, a
catch, a status and a complete node seeing a hosted node's error, status and
done(), the companion coming back after SIGKILL, `carmine check` on hosted
and missing modules, the refusal of an http in reaching a hosted node, and a
native-only flow starting no node process. Prints ok/not ok lines and "N passed, N failed".
  tests/companion/test_companion.py CARMINE USERDIR
"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CARMINE, USERDIR, Run, check, finish, inject, lines, node, out, path, read, setp,  # noqa: E402
                     wait_for)

MOMENT = dict(name="", topic="", input="payload", inputType="msg", inTz="UTC", adjAmount=1, adjType="days",
              adjDir="add", format="YYYY-MM-DD HH:mm", locale="en", output="payload", outputType="msg", outTz="UTC")

main_flows = [
    {"id": "t1", "type": "tab", "label": "mixed"},
    # native -> native -> moment (npm) -> native -> file
    inject("i1", [["c1"]], "2020-01-02T03:04:05Z"),
    node("c1", "change", [["m1"]], rules=[{"t": "set", "p": "topic", "pt": "msg", "to": "hello", "tot": "str"}]),
    node("m1", "moment", [["c2"]], **MOMENT),
    setp("c2", [["f1"]], "'moment:' & payload & '|' & topic & '|' & $string($exists(_msgid))"),
    out("f1", "moment.txt"),
    # 1000 messages through a hosted node, in order
    inject("i2", [["s1"]], "[0..999]", "jsonata", 0.3),
    node("s1", "split", [["e1"]], splt="\\n", spltType="str", arraySplt=1, arraySpltType="len", stream=False,
         addname=""),
    node("e1", "carmine-echo", [["c3"]], name="echo-order"),
    setp("c3", [["f2"]], "$string(payload) & ':' & $string(count) & ':' & $string(parts.index)"),
    out("f2", "order.txt"),
    # a Buffer there and back: the file node writes its bytes
    inject("i3", [["e2"]], "[1,2,3]", "bin", 0.5),
    node("e2", "carmine-echo", [["f3"]], name="echo-misc"),
    out("f3", "buffer.bin", {"appendNewline": False}),
    # a hosted node's error reaches a native catch node
    inject("i4", [["e2"]], "x", "str", 0.7, props=[{"p": "payload"}, {"p": "fail", "v": "boom", "vt": "str"}]),
    node("k1", "catch", [["c5"]], scope=["e2"], uncaught=False),
    setp("c5", [["f4"]], "error.message & '|' & error.source.id & '|' & error.source.type & '|' & fail"),
    out("f4", "caught.txt"),
    # a hosted node's done() reaches a native complete node (its done(err) does not)
    node("k2", "complete", [["c7"]], scope=["e2"]),
    setp("c7", [["f7"]], "'done:' & $string(echoed) & ':' & $string($exists(fail))"),
    out("f7", "complete.txt"),
    # a hosted node's status reaches a native status node
    node("st1", "status", [["c6"]], scope=["e1"]),
    setp("c6", [["f5"]], "status.text & '|' & status.source.id"),
    out("f5", "status.txt"),
    # ticks keep flowing through a hosted node (the SIGKILL check)
    inject("i5", [["e3"]], "tick", "str", 0.1, "0.2"),
    node("e3", "carmine-echo", [["f6"]], name="echo-ticks"),
    out("f6", "ticks.txt"),
]

r = Run(main_flows, name="mixed")
try:
    ok = wait_for(lambda: len(lines("order.txt")) >= 1000 and lines("caught.txt") and read("buffer.bin"), 30)
    check("the mixed flow ran (companion started)", ok, r.text())
    check("moment (npm) output crossed back with topic and _msgid",
          lines("moment.txt") == ["moment:2020-01-03 03:04|hello|true"], lines("moment.txt"))
    want = ["%d:%d:%d" % (i, i + 1, i) for i in range(1000)]
    got = lines("order.txt")
    check("1000 messages through a hosted node arrive complete and in order", got == want,
          "first differences: " + str([(a, b) for a, b in zip(got, want) if a != b][:3]) + " count %d" % len(got))
    check("a Buffer crosses both ways (bytes 01 02 03 ff written raw)", read("buffer.bin") == b"\x01\x02\x03\xff",
          repr(read("buffer.bin")))
    check("a native catch node sees the hosted node's error with its msg",
          lines("caught.txt") == ["failed: boom|e2|carmine-echo|boom"], lines("caught.txt"))
    check("a native complete node sees the hosted node's done() (and not its done(err))",
          wait_for(lambda: lines("complete.txt"), 5) and lines("complete.txt") == ["done:true:false"],
          lines("complete.txt"))
    check("a native status node sees the hosted node's status",
          "seen 1|e1" in lines("status.txt"), lines("status.txt"))
    check("the companion's log lines are tagged [companion]", "[companion]" in r.text(), r.text())
    kids = r.children()
    check("one companion process", len(kids) == 1, kids)
    if kids:
        ticks_before = len(lines("ticks.txt"))
        os.kill(kids[0], signal.SIGKILL)
        def restarted():
            now = r.children()
            return len(now) == 1 and now[0] != kids[0]
        back = wait_for(restarted, 10)
        check("after SIGKILL the companion is restarted", back, r.text())
        check("the crash is logged", "[companion] was killed by signal 9" in r.text(), r.text())
        n0 = len(lines("ticks.txt"))
        check("messages flow through the hosted node again after the restart",
              wait_for(lambda: len(lines("ticks.txt")) >= n0 + 3, 15),
              "ticks before kill %d, after restart %d\n%s" % (ticks_before, len(lines("ticks.txt")), r.text()))
    # a deploy (POST /flows) that changes the hosted node: the companion restarts with it
    import urllib.request
    port = int(r.text().split("HTTP on port ")[1].split()[0])
    changed = json.loads(json.dumps(main_flows))
    for n in changed:
        if n["id"] == "m1":
            n["format"] = "DD.MM.YYYY"
        if n["id"] == "i1":
            n["repeat"] = "0.3"
    req = urllib.request.Request("http://127.0.0.1:%d/flows" % port, data=json.dumps(changed).encode(),
                                 headers={"Content-Type": "application/json", "Node-RED-Deployment-Type": "flows"})
    try:
        code = urllib.request.urlopen(req, timeout=10).status
    except Exception as e:
        code = str(e)
    check("a deploy changing a hosted node is taken by the companion (POST /flows %s)" % code,
          wait_for(lambda: "moment:03.01.2020|hello|true" in lines("moment.txt"), 15), lines("moment.txt")[-3:])
    kid = r.children()
finally:
    rc = r.stop()
check("SIGTERM stops carmine (exit 0)", rc == 0, r.text())
check("and the companion with it", all(not os.path.exists("/proc/%d" % k) for k in kid), kid)

# a native-only flow never starts the companion
native = [{"id": "t1", "type": "tab", "label": "native"}, inject("n1", [["n2"]], "a", "str", 0.1, "0.1"),
          setp("n2", [["n3"]], "payload & 'b'"), out("n3", "native.txt")]
r = Run(native, name="native")
try:
    wait_for(lambda: len(lines("native.txt")) >= 3, 10)
    kids = r.children()
    with open("/proc/%d/status" % r.proc.pid) as f:
        rss = [l for l in f if l.startswith("VmRSS")][0].split()[1]
finally:
    r.stop()
check("a native-only flow runs and starts no node process (RSS %s kB)" % rss,
      len(lines("native.txt")) >= 3 and kids == [], r.text())

# carmine check: hosted nodes listed, exit 0
ck = subprocess.run([CARMINE, "check", "-u", USERDIR, path("mixed.json")], capture_output=True, text=True)
check("carmine check lists the hosted nodes and passes",
      ck.returncode == 0 and "node m1 (moment) is hosted by the companion (npm module node-red-contrib-moment)"
      in ck.stdout and "node e1 (carmine-echo) is hosted" in ck.stdout, ck.stdout + ck.stderr)

# a userDir whose package.json names a module that is not installed
bare = path("bare")
os.mkdir(bare)
with open(os.path.join(bare, "package.json"), "w") as f:
    json.dump({"name": "x", "dependencies": {"node-red-contrib-moment": "~4.0.0"}}, f)
ck = subprocess.run([CARMINE, "check", "-u", bare, path("mixed.json")], capture_output=True, text=True)
check("carmine check names the missing module, the install line, and exits 2",
      ck.returncode == 2 and ("carmine install -u %s node-red-contrib-moment" % bare) in ck.stdout
      and "unknown node type 'moment' used by node m1" in ck.stderr, "rc %d\n%s%s" % (ck.returncode, ck.stdout, ck.stderr))

# http in reaching a hosted node: msg.res crosses as a token (tests/dashboard/test_proxy.py answers one)
http = [{"id": "t1", "type": "tab", "label": "h"},
        node("h1", "http in", [["m1"]], url="/t", method="get"), node("m1", "moment", [["h2"]], **MOMENT),
        node("h2", "http response", [])]
with open(path("http.json"), "w") as f:
    json.dump(http, f)
ck = subprocess.run([CARMINE, "check", "-u", USERDIR, path("http.json")], capture_output=True, text=True)
check("an http in reaching a hosted node loads (its msg.res crosses as a token)",
      ck.returncode == 0 and "node m1 (moment) is hosted" in ck.stdout, ck.stdout + ck.stderr)

finish()
