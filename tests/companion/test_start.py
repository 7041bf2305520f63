#!/usr/bin/env python3
"""test_start.py: the companion's start beside native timers (docs/companion.md,
"Start").

Node-RED starts every node of the flows before any inject fires: an inject
"once after 0.1 s" counts from the moment all nodes, npm ones included, run.
Carmine starts its native nodes at once and the companion (a Node.js
process) takes a second or more; the native injects of a flow that has
hosted nodes are held until the companion is ready, so their messages reach
hosted nodes that exist and their delays count as in Node-RED. A flow
without hosted nodes waits for nothing.
  tests/companion/test_start.py CARMINE USERDIR
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Run, check, finish, inject, lines, node, out, path, setp, wait_for  # noqa: E402


def stamp(id, wires, delay=0.1, repeat=""):
    """An inject of the time it fires (ms since the epoch)."""
    return node(id, "inject", wires, props=[{"p": "payload"}], payload="", payloadType="date", once=True,
                onceDelay=delay, repeat=repeat)


flows = [
    {"id": "t1", "type": "tab", "label": "start"},
    # native inject -> hosted echo -> native file: when it fired, what came back
    stamp("i1", [["e1"]]),
    node("e1", "carmine-echo", [["c1"]]),
    setp("c1", [["f1"]], "$string({'fired': payload, 'echoed': echoed, 'count': count})"),
    out("f1", "hosted.txt"),
    # a native-only branch of the same flow fires with them
    stamp("i2", [["f2"]]),
    out("f2", "native.txt"),
    # a repeating inject into a hosted node: none of its messages is lost
    stamp("i3", [["e2"]], 0.1, "0.1"),
    node("e2", "carmine-echo", [["c3"]]),
    setp("c3", [["f3"]], "$string(count)"),
    out("f3", "ticks.txt"),
]

t0 = time.time()
r = Run(flows, name="start")
ready_at = [None]


def ready():
    if ready_at[0] is None and "[companion] ready" in r.text():
        ready_at[0] = time.time()
    return ready_at[0] is not None


try:
    wait_for(ready, 30)
    check("the companion is ready (%.1f s after the start)" % ((ready_at[0] or t0) - t0), ready_at[0] is not None,
          r.text())
    wait_for(lambda: lines("hosted.txt") and lines("native.txt") and len(lines("ticks.txt")) >= 5, 10)
    got = [json.loads(l) for l in lines("hosted.txt")]
    fired = got[0]["fired"] / 1000 if got else 0
    check("an inject once after 0.1 s into a hosted node: its message comes back once, echoed", len(got) == 1
          and got[0].get("echoed") is True and got[0].get("count") == 1, (got, r.text()))
    # ready_at is when this script saw the log line (polled every 50 ms), at or after the companion's ready
    check("it fired after the companion was ready, as Node-RED fires it after every node started "
          "(%.2f s after ready)" % (fired - (ready_at[0] or 0)), got and fired >= (ready_at[0] or 0) - 0.3,
          (fired - t0, (ready_at[0] or 0) - t0))
    nat = lines("native.txt")
    nfired = int(nat[0]) / 1000 if nat else 0
    check("a native-only inject of the same flow fires with the others (%.2f s after ready)"
          % (nfired - (ready_at[0] or 0)), nat and nfired >= (ready_at[0] or 0) - 0.3, (nat, ready_at[0]))
    ticks = lines("ticks.txt")
    check("a repeating inject into a hosted node: counted from 1, none lost (%d so far)" % len(ticks),
          len(ticks) >= 5 and ticks == [str(i) for i in range(1, len(ticks) + 1)], ticks[:20])
finally:
    r.stop()

# A flow without hosted nodes waits for nothing: its inject fires 0.1 s after the start.
t0 = time.time()
r = Run([{"id": "t1", "type": "tab", "label": "native"}, stamp("i1", [["f1"]]), out("f1", "alone.txt")],
        name="native")
try:
    wait_for(lambda: lines("alone.txt"), 10)
    got = lines("alone.txt")
    took = int(got[0]) / 1000 - t0 if got else -1
    check("native-only flow: the inject once after 0.1 s fires %.2f s after the start (under 1.5 s), no companion" % took,
          got and 0 < took < 1.5 and "[companion]" not in r.text(), (got, r.text()))
finally:
    r.stop()
finish()
