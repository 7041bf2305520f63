#!/usr/bin/env python3
"""test_wire.py: what crosses between native and hosted nodes as it is
(docs/companion.md, "Transport"). A real Buffer is a Buffer on the other
side, a plain object shaped like a Buffer's JSON ({"type":"Buffer","data":
[..]}) stays a plain object (it had become a Buffer), at the top of the
message, nested in arrays and objects, and in flow context values set on
either side. The expected kinds are Node-RED 4.1.15's, which keeps both as
they are (one process; checked by running these flows there, with the
fixture module in the userDir). A key whose value is undefined (the hosted
probe sets msg.undef = undefined) is a key with that value for a hosted node
wired to it, as in Node-RED; a native node does not hold such keys (a
message in Carmine is JSON-shaped), so after a native node it is absent
(Node-RED: still a key): docs/companion.md says so.
  tests/companion/test_wire.py CARMINE USERDIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Run, check, finish, lines, node, out, wait_for  # noqa: E402

KIND = ("const k = (v) => Buffer.isBuffer(v) ? 'buffer' : v === undefined ? 'undefined' : v === null ? 'null' :\n"
        "  Array.isArray(v) ? 'array' : typeof v;\n")
flows = [
    {"id": "t1", "type": "tab", "label": "wire"},
    node("i1", "inject", [["n0"]], once=True, onceDelay=0.2, repeat="", topic="", payload="", payloadType="date",
         props=[{"p": "payload", "v": '{"type":"Buffer","data":[1,2,3]}', "vt": "json"},
                {"p": "bin", "v": "[4,5]", "vt": "bin"},
                {"p": "make", "v": "true", "vt": "bool"}, {"p": "ctx", "v": "true", "vt": "bool"}]),
    # native: flow context values of both kinds for the hosted probe
    node("n0", "function", [["p1"]], outputs=1, libs=[], func=(
        "flow.set('nb', Buffer.from([1]));\nflow.set('nf', {type: 'Buffer', data: [1]});\nreturn msg;")),
    # hosted: sees them, makes its own; to a native node and to a hosted one
    node("p1", "carmine-probe", [["n1", "p3"]]),
    node("n1", "function", [["p2"]], outputs=1, libs=[], func=KIND + (
        "msg.native = {payload: k(msg.payload), bin: k(msg.bin), real: k(msg.real), fake: k(msg.fake),\n"
        "  arr0: k(msg.nested.arr[0]), arr1: k(msg.nested.arr[1]), hb: k(flow.get('hb')), hf: k(flow.get('hf')),\n"
        "  fakeData: msg.fake.data.join(',')};\nreturn msg;")),
    node("p2", "carmine-probe", [["n2"]]),
    node("n2", "function", [["f1"]], outputs=1, libs=[], func=(
        "return {payload: JSON.stringify({native: msg.native, probe: msg.probe})};")),
    out("f1", "wire.txt"),
    node("p3", "carmine-probe", [["n3"]]),
    node("n3", "function", [["f2"]], outputs=1, libs=[], func="return {payload: JSON.stringify(msg.probe)};"),
    out("f2", "hosted.txt"),
]

FAKE = {"type": "string", "data": ["number", "number"]}
FAKE1 = {"type": "string", "data": "array"}  # (the probe describes 3 levels)
r = Run(flows, name="wire")
try:
    ok = wait_for(lambda: lines("wire.txt") and lines("hosted.txt"), 30)
    check("the flow ran (probes in the companion)", ok, r.text())
    wire = json.loads(lines("wire.txt")[0]) if lines("wire.txt") else {}
    hosted = json.loads(lines("hosted.txt")[0]) if lines("hosted.txt") else []
    p1 = (wire.get("probe") or [{}])[0]
    seen = p1.get("seen", {})
    check("native -> hosted: a Buffer-shaped plain object stays a plain object, a Buffer is a Buffer (%s)" % seen,
          seen.get("payload") == {"type": "string", "data": ["number"] * 3} and seen.get("bin") == "buffer", p1)
    check("native context -> hosted: flow.nb (a Buffer) is a Buffer, flow.nf (Buffer-shaped) an object (%s)"
          % p1.get("ctx"), p1.get("ctx") == {"nb": "buffer", "nf": {"type": "string", "data": ["number"]}}, p1)
    nat = wire.get("native", {})
    check("hosted -> native: real Buffers are Buffers, Buffer-shaped objects stay objects, in arrays too (%s)" % nat,
          nat == {"payload": "object", "bin": "buffer", "real": "buffer", "fake": "object", "arr0": "buffer",
                  "arr1": "object", "hb": "buffer", "hf": "object", "fakeData": "7,8"}, nat)
    p2 = (wire.get("probe") or [{}, {}])[1:2] or [{}]
    s2 = p2[0].get("seen", {})
    check("hosted -> native -> hosted: the same kinds after the round trip (%s)" % s2,
          s2.get("real") == "buffer" and s2.get("fake") == FAKE and s2.get("bin") == "buffer"
          and s2.get("nested") == {"arr": ["buffer", FAKE1]}
          and s2.get("payload") == {"type": "string", "data": ["number"] * 3}, p2)
    h = hosted[1] if len(hosted) > 1 else {}
    check("hosted -> hosted: msg.undef = undefined is a key with that value, as in Node-RED (%s)" % h,
          h.get("hasUndef") is True and h.get("ownUndef") is True and h.get("seen", {}).get("undef") == "undefined"
          and h.get("seen", {}).get("real") == "buffer" and h.get("seen", {}).get("fake") == FAKE, hosted)
finally:
    r.stop()
finish()
