#!/usr/bin/env python3
"""companion.py: what the companion costs (docs/companion.md).
  1. one message native -> hosted node -> native, one at a time: a loop of N
     round trips (switch sends it back to the hosted node until msg.count = N);
     a round trip is two boundary crossings.
  2. messages/s of a native hot path (split -> 3 change nodes) alone, and with
     one hosted node on a side branch of the split; and the side branch's own
     messages/s.
Uses the test userDir of tests/companion (tools/setup.sh installs it).
  tools/bench/companion.py build/carmine .deps/companion-test
"""
import json, os, random, signal, socket, subprocess, sys, tempfile, time

CARMINE, USERDIR = sys.argv[1], os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="carmine-bench-companion-")


def port():
    while True:
        p = random.randint(20000, 31999)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p)); return p
        except OSError:
            pass
        finally:
            s.close()


def node(id, type, wires, **kw):
    n = {"id": id, "type": type, "z": "t", "x": 1, "y": 1, "wires": wires}
    n.update(kw); return n


def setp(id, wires, prop, expr):
    return node(id, "change", wires, rules=[{"t": "set", "p": prop, "pt": "msg", "to": expr, "tot": "jsonata"}])


def out(id, name):
    return node(id, "file", [], filename=os.path.join(TMP, name), filenameType="str", appendNewline=True,
                createDir=False, overwriteFile="false", encoding="none")


def run(flows, files, timeout=120):
    path = os.path.join(TMP, "f.json")
    json.dump([{"id": "t", "type": "tab", "label": "b"}] + flows, open(path, "w"))
    for f in files:
        try: os.unlink(os.path.join(TMP, f))
        except OSError: pass
    p = subprocess.Popen([CARMINE, "-p", str(port()), "-u", USERDIR, path], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(TMP, "log"), "w"))
    end = time.time() + timeout
    res = {}
    while time.time() < end and len(res) < len(files):
        for f in files:
            try:
                t = open(os.path.join(TMP, f)).read().strip()
                if t: res[f] = float(t)
            except OSError:
                pass
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM); p.wait()
    return res


N = int(os.environ.get("ROUNDS", "2000"))
# the companion starts in 1-2 s: the loop starts after 4 s
ping = [node("i", "inject", [["c0"]], props=[{"p": "payload"}], payload="0", payloadType="num", once=True,
             onceDelay=4, repeat=""),
        setp("c0", [["e"]], "t0", "$millis()"),
        node("e", "carmine-echo", [["sw"]]),
        node("sw", "switch", [["e"], ["c9"]], property="count", propertyType="msg",
             rules=[{"t": "lt", "v": str(N), "vt": "num"}, {"t": "else"}], checkall="false", outputs=2),
        setp("c9", [["o"]], "payload", "$millis() - t0"), out("o", "ping.txt")]
r = run(ping, ["ping.txt"])
if "ping.txt" in r:
    ms = r["ping.txt"]
    print("round trip native -> hosted -> native, one at a time: %.1f us (%d in %.0f ms); one crossing ~%.1f us"
          % (ms * 1000 / N, N, ms, ms * 1000 / N / 2))
else:
    print("ping: no result")

M = int(os.environ.get("MESSAGES", "100000"))
def hot(side):
    fl = [node("i", "inject", [["c0"]], props=[{"p": "payload"}], payload="[1..%d]" % M, payloadType="jsonata",
               once=True, onceDelay=4, repeat=""),
          setp("c0", [["s"]], "t0", "$millis()"),
          node("s", "split", [["a"] + (["e"] if side else [])], splt="\\n", spltType="str", arraySplt=1,
               arraySpltType="len", stream=False, addname=""),
          setp("a", [["b"]], "payload", "payload + 1"), setp("b", [["c"]], "payload", "payload * 2"),
          node("c", "switch", [["d"]], property="parts.index", propertyType="msg",
               rules=[{"t": "eq", "v": str(M - 1), "vt": "num"}], checkall="true", outputs=1),
          setp("d", [["o"]], "payload", "$millis() - t0"), out("o", "native.txt")]
    if side:
        fl += [node("e", "carmine-echo", [["f"]]),
               node("f", "switch", [["g"]], property="parts.index", propertyType="msg",
                    rules=[{"t": "eq", "v": str(M - 1), "vt": "num"}], checkall="true", outputs=1),
               setp("g", [["o2"]], "payload", "$millis() - t0"), out("o2", "hosted.txt")]
    return run(fl, ["native.txt"] + (["hosted.txt"] if side else []))
alone = hot(False)
mixed = hot(True)
if "native.txt" in alone and "native.txt" in mixed:
    print("native hot path (split -> 3 nodes), %d messages: alone %.0f msg/s, with a hosted side branch %.0f msg/s"
          % (M, M / alone["native.txt"] * 1000, M / mixed["native.txt"] * 1000))
if "hosted.txt" in mixed:
    print("the hosted side branch itself: %.0f msg/s" % (M / mixed["hosted.txt"] * 1000))
