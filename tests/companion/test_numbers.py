#!/usr/bin/env python3
"""test_numbers.py: NaN, Infinity and -Infinity cross between native and
hosted nodes as numbers (docs/companion.md, "Transport"): JSON has no text
for them (JSON.stringify makes them null), so they travel as tokens and are
numbers again on the other side, as a message between Node-RED's nodes
keeps them. Found with a public flow (AdrienMarty/AutonomousRooms): a
failed http request's text through Number() gave NaN, which reached the
hosted ui_numeric as null, so the widget showed nothing where Node-RED shows
its minimum. A native function node makes them, a hosted function node
(external module `path`, so it runs in the companion) tests them and makes
its own, a native function node tests those; in Node-RED 4.1.15, where all
three run in one process, every test is true.
  tests/companion/test_numbers.py CARMINE USERDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Run, check, finish, inject, lines, node, out, wait_for  # noqa: E402

flows = [
    {"id": "t1", "type": "tab", "label": "numbers"},
    inject("i1", [["n1"]], "go"),
    node("n1", "function", [["h1"]], outputs=1, libs=[], func=(
        "msg.payload = {a: NaN, b: Infinity, c: -Infinity, d: [NaN, 1, Number('x')], e: null, s: 'NaN'};\nreturn msg;")),
    node("h1", "function", [["n2"]], outputs=1, libs=[{"var": "pathmod", "module": "path"}], func=(
        "const p = msg.payload;\n"
        "msg.hosted = [Number.isNaN(p.a), p.b === Infinity, p.c === -Infinity, Number.isNaN(p.d[0]), p.d[1] === 1,\n"
        "  Number.isNaN(p.d[2]), p.e === null, p.s === 'NaN'].join(',');\n"
        "msg.made = {x: 0 / 0, y: -1 / 0, z: [1 / 0, null], w: pathmod.sep};\nreturn msg;")),
    node("n2", "function", [["f1"]], outputs=1, libs=[], func=(
        "const m = msg.made, p = msg.payload;\n"
        "msg.payload = msg.hosted + '|' + [Number.isNaN(m.x), m.y === -Infinity, m.z[0] === Infinity, m.z[1] === null,\n"
        "  m.w === '/', Number.isNaN(p.a), p.c === -Infinity, p.e === null].join(',');\nreturn msg;")),
    out("f1", "numbers.txt"),
]

r = Run(flows, name="numbers")
try:
    ok = wait_for(lambda: lines("numbers.txt"), 30)
    check("the flow ran (the hosted function node in the companion)", ok, r.text())
    got = lines("numbers.txt")
    check("NaN, Infinity and -Infinity reach the hosted node as numbers, null stays null (%s)" % got,
          got and got[0].split("|")[0] == "true,true,true,true,true,true,true,true", got)
    check("the hosted node's NaN and Infinities come back as numbers (%s)" % got,
          got and got[0].split("|")[1:] == ["true,true,true,true,true,true,true,true"], got)
finally:
    r.stop()
finish()
