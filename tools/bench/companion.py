#!/usr/bin/env python3
"""companion.py: what the companion costs, beside Node-RED 4.1.15 running the
same flows (docs/companion.md, docs/benchmarks.md).
  1. one message through a hosted node and back, one at a time: a loop of N
     round trips (switch sends it back to the echo node until msg.count = N).
     In Carmine a round trip is two boundary crossings; in Node-RED two hops.
  2. messages/s of a native hot path (split -> 3 nodes) alone, and with one
     hosted node (the fixture's carmine-echo) on a side branch of the split;
     and the side branch's own messages/s.
  3. RSS: the peak while each run goes (Carmine: carmine + its companion).
Both engines run each case in alternating rounds (ROUNDS_EACH, default 3),
best kept. Uses the test userDir of tests/companion (tools/setup.sh installs it).
  tools/bench/companion.py build/carmine .deps/companion-test
  NODE_RED=path/to/node-red/red.js  (default: tools/bench/node_modules or
  ~/.cache/flowtest-record/nr/node_modules)
"""
import json, os, random, signal, socket, subprocess, sys, tempfile, time

CARMINE, USERDIR = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="carmine-bench-companion-")
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_RED = os.environ.get("NODE_RED") or next(
    (p for p in (os.path.join(HERE, "node_modules/node-red/red.js"),
                 os.path.expanduser("~/.cache/flowtest-record/nr/node_modules/node-red/red.js")) if os.path.exists(p)),
    None)
EACH = int(os.environ.get("ROUNDS_EACH", "3"))


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


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                total += int([l for l in f if l.startswith("VmRSS")][0].split()[1])
        except (OSError, IndexError):
            pass
    return total


def tree(pid):
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:  # children are listed by the thread that started them
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pids


def run(engine, flows, files, timeout=180):
    """Runs flows in engine until every file has a number; returns ({file: number}, peak RSS kB)."""
    path = os.path.join(TMP, "f.json")
    json.dump([{"id": "t", "type": "tab", "label": "b"}] + flows, open(path, "w"))
    for f in files:
        try: os.unlink(os.path.join(TMP, f))
        except OSError: pass
    log = open(os.path.join(TMP, engine + ".log"), "a")
    if engine == "carmine":
        p = subprocess.Popen([CARMINE, "-p", str(port()), "-u", USERDIR, path], stdout=log, stderr=log)
    else:  # a userDir of its own holding the same node modules
        ud = os.path.join(TMP, "nr-userdir")
        os.makedirs(ud, exist_ok=True)
        if not os.path.exists(os.path.join(ud, "node_modules")):
            os.symlink(os.path.join(USERDIR, "node_modules"), os.path.join(ud, "node_modules"))
        p = subprocess.Popen(["node", NODE_RED, "-u", ud, "-p", str(port()), path], stdout=log, stderr=log)
    end = time.time() + timeout
    res, peak = {}, 0
    while time.time() < end and len(res) < len(files):
        peak = max(peak, rss_kb(tree(p.pid)))
        for f in files:
            try:
                t = open(os.path.join(TMP, f)).read().strip()
                if t: res[f] = float(t)
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    peak = max(peak, rss_kb(tree(p.pid)))
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
    return res, peak


N = int(os.environ.get("ROUNDS", "2000"))
# the companion starts in 1-2 s (Node-RED in 2-3 s): the loop starts after 5 s
ping = [node("i", "inject", [["c0"]], props=[{"p": "payload"}], payload="0", payloadType="num", once=True,
             onceDelay=5, repeat=""),
        setp("c0", [["e"]], "t0", "$millis()"),
        node("e", "carmine-echo", [["sw"]]),
        node("sw", "switch", [["e"], ["c9"]], property="count", propertyType="msg",
             rules=[{"t": "lt", "v": str(N), "vt": "num"}, {"t": "else"}], checkall="false", outputs=2),
        setp("c9", [["o"]], "payload", "$millis() - t0"), out("o", "ping.txt")]

M = int(os.environ.get("MESSAGES", "100000"))


def hot(side):
    fl = [node("i", "inject", [["c0"]], props=[{"p": "payload"}], payload="[1..%d]" % M, payloadType="jsonata",
               once=True, onceDelay=5, repeat=""),
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
    return fl


cases = [("ping", ping, ["ping.txt"]), ("alone", hot(False), ["native.txt"]),
         ("side", hot(True), ["native.txt", "hosted.txt"])]
engines = ["carmine"] + (["nodered"] if NODE_RED else [])
best = {}  # (engine, case, file) -> ms ; (engine, case) -> peak kB
for r in range(EACH):
    for name, fl, files in cases:
        for eng in engines:
            res, peak = run(eng, fl, files)
            for f, v in res.items():
                k = (eng, name, f)
                best[k] = min(best.get(k, v), v)
            best[(eng, name)] = min(best.get((eng, name), peak or 1 << 40), peak or 1 << 40)


def fmt(eng, name, f, per):
    v = best.get((eng, name, f))
    return "-" if v is None else per(v)


rate = lambda v: "%.0f" % (M / v * 1000) if v else "-"
print("load average %s; %d round(s) each, best kept; node %s" % (
    open("/proc/loadavg").read().split()[0], EACH, subprocess.run(["node", "-v"], capture_output=True, text=True).stdout.strip()))
print("| what | Carmine (+ companion) | Node-RED 4.1.15 |")
print("| --- | --- | --- |")
print("| round trip through the echo node, one message at a time (%d) | %s | %s |" % (
    N, fmt("carmine", "ping", "ping.txt", lambda v: "%.1f us (%.1f us a crossing)" % (v * 1000 / N, v * 1000 / N / 2)),
    fmt("nodered", "ping", "ping.txt", lambda v: "%.1f us (%.1f us a hop)" % (v * 1000 / N, v * 1000 / N / 2))))
print("| native hot path (split of %d -> 3 nodes) alone, msg/s | %s | %s |" % (
    M, fmt("carmine", "alone", "native.txt", rate), fmt("nodered", "alone", "native.txt", rate)))
print("| the same with the echo node on a side branch, msg/s | %s | %s |" % (
    fmt("carmine", "side", "native.txt", rate), fmt("nodered", "side", "native.txt", rate)))
print("| the side branch itself, msg/s | %s | %s |" % (
    fmt("carmine", "side", "hosted.txt", rate), fmt("nodered", "side", "hosted.txt", rate)))
for name, what in (("ping", "round trips"), ("alone", "hot path alone"), ("side", "hot path + side branch")):
    c, n = best.get(("carmine", name)), best.get(("nodered", name))
    print("| peak RSS, %s | %s | %s |" % (what, "%.0f MB" % (c / 1024) if c and c < 1 << 40 else "-",
                                          "%.0f MB" % (n / 1024) if n and n < 1 << 40 else "-"))
