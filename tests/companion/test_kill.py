#!/usr/bin/env python3
"""test_kill.py: SIGKILL of the companion under load (docs/companion.md).

A flow with a native HTTP route (http in -> change -> http response) and a
hosted node under load (every 0.1 s a split of 500 messages through the
fixture's carmine-echo). While two clients keep requesting the native route,
the companion is killed with SIGKILL: it must come back (a new process), the
native route must answer every request meanwhile (none failed, none slower
than 2 s), and the hosted node must take messages again.
  tests/companion/test_kill.py CARMINE USERDIR
"""
import http.client
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Run, check, finish, inject, lines, node, out, setp, wait_for  # noqa: E402

flows = [
    {"id": "t1", "type": "tab", "label": "kill"},
    node("h1", "http in", [["h2"]], url="/native", method="get"),
    setp("h2", [["h3"]], "'native ' & $string(req.query.n)"),
    node("h3", "http response", [], statusCode="", headers={}),
    inject("i1", [["s1"]], "[1..500]", "jsonata", 0.1, "0.1"),
    node("s1", "split", [["e1"]], splt="\\n", spltType="str", arraySplt=1, arraySpltType="len", stream=False,
         addname=""),
    node("e1", "carmine-echo", [["w1"]]),
    node("w1", "switch", [["c1"]], property="parts.index", propertyType="msg",
         rules=[{"t": "eq", "v": "499", "vt": "num"}], checkall="true", outputs=1),
    setp("c1", [["f1"]], "$string(count)"),
    out("f1", "batches.txt"),
]


class Load(threading.Thread):
    """Requests GET /native?n=I one after another on a keep-alive connection."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.ok, self.failed, self.errors = port, False, 0, 0, []
        self.times = []  # (start, seconds) of each request

    def run(self):
        conn, i = None, 0
        while not self.stop:
            i += 1
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/native?n=%d" % i)
                resp = conn.getresponse()
                body = resp.read().decode()
                if resp.status == 200 and body == "native %d" % i:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append("%d %r" % (resp.status, body[:80]))
            except Exception as e:  # noqa: BLE001 (any failure counts)
                self.failed += 1
                self.errors.append(repr(e))
                conn = None
            self.times.append((t0, time.time() - t0))


r = Run(flows, name="kill")
loads = []
try:
    ok = wait_for(lambda: len(lines("batches.txt")) >= 3, 30)
    check("the hosted node is under load (batches of 500 messages through it)", ok, r.text())
    loads = [Load(r.port) for _ in range(2)]
    for l in loads:
        l.start()
    time.sleep(1.0)
    before = sum(l.ok for l in loads)
    kids = r.children()
    check("one companion process", len(kids) == 1, kids)
    killed_at = time.time()
    if kids:
        os.kill(kids[0], signal.SIGKILL)
    back = wait_for(lambda: [k for k in r.children() if k not in kids] != [], 15)
    back_after = time.time() - killed_at
    check("the companion comes back after SIGKILL (in %.1f s)" % back_after, back, r.text()[-2000:])
    n0 = len(lines("batches.txt"))
    resumed = wait_for(lambda: len(lines("batches.txt")) >= n0 + 3, 20)
    check("the hosted node takes messages again (batches after the restart)", resumed,
          "%d batches at the restart, %d now\n%s" % (n0, len(lines("batches.txt")), r.text()[-2000:]))
    time.sleep(0.5)
    for l in loads:
        l.stop = True
    for l in loads:
        l.join(10)
    total = sum(l.ok for l in loads)
    failed = sum(l.failed for l in loads)
    times = sorted(sum((l.times for l in loads), []))
    worst_before = max([d for t, d in times if t < killed_at] or [0])
    worst = max([d for t, d in times if t >= killed_at] or [0])
    check("the native route answered every request meanwhile (%d answered, %d after the kill, %d failed; "
          "slowest %.0f ms after the kill, %.0f ms before)" % (total, total - before, failed, worst * 1000,
                                                               worst_before * 1000),
          failed == 0 and total - before > 20 and worst < 2.0, sum((l.errors[:5] for l in loads), []))
finally:
    for l in loads:
        l.stop = True
    rc = r.stop()
check("carmine stops cleanly", rc == 0, r.text()[-2000:])
finish()
