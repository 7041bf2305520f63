#!/usr/bin/env python3
"""ws_loops.py: does serving the websocket echo's 100 clients on two loop
threads instead of one help? (issue 16). Carmine runs one loop per flow tab,
so the flow here is the echo (websocket-listener, websocket in -> websocket
out) once per tab, on /ws/e0 (and /ws/e1 with two tabs); two build/ws_load of
50 clients each (WS_LOAD_THREADS, default 1) talk to it at once, both to
/ws/e0 with one tab, one to each path with two. SPLIT=1: the websocket in
and out nodes on a tab of their own (the listeners' loops read and write the
connections, messages and replies cross to and from the nodes' loop). Prints
messages/s, the runtime's CPU per message and its share of a core.
  [SPLIT=1] tools/bench/ws_loops.py TABS [SECONDS] [CARMINE]"""
import json, os, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from ports import free_port  # noqa: E402

tabs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
secs = sys.argv[2] if len(sys.argv) > 2 else "5"
exe = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"), "carmine")
load = os.path.join(os.path.dirname(exe), "ws_load")
port = free_port()
d = tempfile.mkdtemp(prefix="crm-wsloops-")
split = bool(os.environ.get("SPLIT"))
flow = [{"id": "nodes", "type": "tab", "label": "nodes"}] if split else []
for t in range(tabs):
    z = "tab%d" % t
    zn = "nodes" if split else z
    flow += [{"id": z, "type": "tab", "label": z},
             {"id": "L%d" % t, "type": "websocket-listener", "path": "/ws/e%d" % t, "wholemsg": "false", "z": z},
             {"id": "wi%d" % t, "type": "websocket in", "server": "L%d" % t, "client": "", "wires": [["wo%d" % t]],
              "z": zn},
             {"id": "wo%d" % t, "type": "websocket out", "server": "L%d" % t, "client": "", "wires": [], "z": zn}]
with open(os.path.join(d, "flows.json"), "w") as f:
    json.dump(flow, f)
p = subprocess.Popen([exe, "-p", str(port), "-u", d, os.path.join(d, "flows.json")],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1)

    def cpu():
        with open("/proc/%d/stat" % p.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

    env = dict(os.environ, WS_LOAD_THREADS=os.environ.get("WS_LOAD_THREADS", "1"))
    c0 = cpu()
    gens = [subprocess.Popen([load, str(port), "/ws/e%d" % (i % tabs), "50", secs], stdout=subprocess.PIPE,
                             text=True, env=env) for i in range(2)]
    outs = [json.loads(g.communicate()[0].strip().splitlines()[-1]) for g in gens]
    c = cpu() - c0
    n = sum(o["count"] for o in outs)
    s = max(o["seconds"] for o in outs)
    with open("/proc/loadavg") as f:
        la = f.read().split()[0]
    print("%d listener loop(s)%s: %.0f messages/s, %.2f us CPU per message, runtime %.2f cores (load %s)"
          % (tabs, " + the nodes' loop" if split else "", n / s, c / n * 1e6 if n else 0, c / s, la))
finally:
    p.send_signal(signal.SIGTERM)
    p.wait()
