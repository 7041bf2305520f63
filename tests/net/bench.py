#!/usr/bin/env python3
"""Benchmarks of the network and file nodes, Carmine beside Node-RED 4.1.15
(issue 16), on loopback only, each run bounded in time:
  file   file append lines/s: lines sent over one TCP connection to
         tcp in (split on \\n) -> file (append); time until all are on disk
  tcpreq tcp request round trips/s: a loop tcp request -> change -> back,
         against an echo server made of tcp in + tcp out (reply) in the flow
  ws     websocket echo messages/s (and per CPU second of the runtime), 100
         clients each sending its next message when the last one came back
         (the load generator is build/ws_load, tools/bench/ws_load.c; Node's
         ws with WS_LOAD_NODE=1)
  wsmem  resident memory with 10,000 idle websocket clients
Usage: tests/net/bench.py [carmine|nodered]... (default both), or
tests/net/bench.py ws ROUNDS: the echo only, in alternating rounds (tcpreq
ROUNDS: the tcp request loop; file ROUNDS: the file append; with BEFORE=DIR,
the ws rounds also run DIR/carmine, another build). ws_load shares
its clients among WS_LOAD_THREADS threads (default 2, the same for both
runtimes). Node-RED is
taken from ~/.cache/flowtest-record/nr (the recorder's install); NODE_WS
names the directory whose node_modules holds ws."""
import json, os, resource, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CARMINE = os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"), "carmine")
NR = os.path.expanduser("~/.cache/flowtest-record/nr/node_modules/.bin/node-red")
NODE_WS = os.environ.get("NODE_WS", os.path.expanduser("~/.cache/flowtest-record/nr"))


sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from ports import free_port  # noqa: E402  (below the ephemeral range)


class Runtime:
    def __init__(self, kind, flow, exe=None):
        self.dir = tempfile.mkdtemp(prefix="crm-bench-")
        self.port = free_port()
        path = os.path.join(self.dir, "flows.json")
        with open(path, "w") as f:
            json.dump([{"id": "tab", "type": "tab", "label": "b"}] + [dict(n, z="tab") for n in flow], f)
        log = open(os.path.join(self.dir, "log"), "w")
        if kind == "carmine":
            args = [exe or CARMINE, "-p", str(self.port), "-u", self.dir, path]
        else:
            args = [NR, "-p", str(self.port), "-u", self.dir, path]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        end = time.time() + 60
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)

    def cpu_s(self):
        """user + system CPU seconds the runtime's process used so far"""
        return sum(self.cpu_split())

    def cpu_split(self):
        """user and system CPU seconds so far: the echo's cost is mostly the
        kernel's (loopback TCP), which no runtime's code changes"""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) / os.sysconf("SC_CLK_TCK"), int(v[12]) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for l in f:
                if l.startswith("VmRSS"):
                    return int(l.split()[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench_file(kind, n=200000):
    port = free_port()
    out = tempfile.mktemp(prefix="crm-bench-lines-")
    flow = [{"id": "ti", "type": "tcp in", "server": "server", "host": "", "port": str(port), "datamode": "stream",
             "datatype": "utf8", "newline": "\\n", "topic": "", "trim": False, "base64": False, "tls": "",
             "wires": [["fw"]]},
            {"id": "fw", "type": "file", "filename": out, "filenameType": "str", "appendNewline": True,
             "createDir": False, "overwriteFile": "false", "encoding": "none", "wires": [[]]}]
    rt = Runtime(kind, flow)
    try:
        data = b"".join(b"line %06d\n" % i for i in range(n))
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        s.sendall(data)
        end = t0 + 120
        while time.time() < end:
            if os.path.exists(out) and os.path.getsize(out) >= len(data):
                break
            time.sleep(0.01)
        dt = time.time() - t0
        s.close()
        ok = os.path.exists(out) and os.path.getsize(out) == len(data)
        return n / dt if ok else 0.0
    finally:
        rt.stop()
        if os.path.exists(out):
            os.unlink(out)


def bench_tcpreq(kind, seconds=10, per_cpu=False):
    port = free_port()
    out = tempfile.mktemp(prefix="crm-bench-ticks-")
    flow = [{"id": "es", "type": "tcp in", "server": "server", "host": "", "port": str(port), "datamode": "stream",
             "datatype": "utf8", "newline": "\\n", "topic": "", "trim": True, "base64": False, "tls": "",
             "wires": [["eo"]]},
            {"id": "eo", "type": "tcp out", "host": "", "port": "", "beserver": "reply", "base64": False,
             "end": False, "tls": "", "wires": []},
            {"id": "go", "type": "inject", "props": [{"p": "payload"}, {"p": "n", "v": "0", "vt": "num"}],
             "payload": "x\n", "payloadType": "str", "repeat": "", "once": True, "onceDelay": "1", "wires": [["rq"]]},
            {"id": "rq", "type": "tcp request", "server": "127.0.0.1", "port": str(port), "out": "char",
             "ret": "string", "splitc": "\\n", "newline": "", "trim": False, "tls": "", "wires": [["inc"]]},
            {"id": "inc", "type": "change", "rules": [{"t": "set", "p": "n", "pt": "msg", "to": "n + 1",
                                                       "tot": "jsonata"}], "wires": [["rq", "sw"]]},
            {"id": "sw", "type": "switch", "property": "n", "propertyType": "msg",
             "rules": [{"t": "jsonata_exp", "v": "n % 500 = 0", "vt": "jsonata"}], "checkall": "true",
             "outputs": 1, "wires": [["fw"]]},
            {"id": "fw", "type": "file", "filename": out, "filenameType": "str", "appendNewline": True,
             "createDir": False, "overwriteFile": "false", "encoding": "none", "wires": [[]]}]
    rt = Runtime(kind, flow)
    try:
        time.sleep(2)
        def count():
            return sum(1 for _ in open(out)) * 500 if os.path.exists(out) else 0
        c0, t0, cpu0 = count(), time.time(), rt.cpu_s()
        time.sleep(seconds)
        n, cpu = count() - c0, rt.cpu_s() - cpu0
        if per_cpu:  # round trips/s, and per CPU second of the runtime
            return n / (time.time() - t0), n / cpu if cpu else 0.0
        return n / (time.time() - t0)
    finally:
        rt.stop()
        if os.path.exists(out):
            os.unlink(out)


WS_LOAD = r"""
const WS = require('ws');
const [port, clients, seconds] = process.argv.slice(2).map(Number);
let count = 0, open = 0;
const t0 = Date.now();
for (let i = 0; i < clients; i++) {
  const w = new WS('ws://127.0.0.1:' + port + '/ws/echo');
  w.on('open', () => { open++; w.send('m' + i); });
  w.on('message', (m) => { count++; if (Date.now() - t0 < seconds * 1000) w.send(m); else w.close(); });
  w.on('error', () => {});
}
setTimeout(() => { console.log(JSON.stringify({count, open, seconds: (Date.now() - t0) / 1000})); process.exit(0); },
           seconds * 1000 + 500);
"""


def ws_flow():
    return [{"id": "L", "type": "websocket-listener", "path": "/ws/echo", "wholemsg": "false"},
            {"id": "wi", "type": "websocket in", "server": "L", "client": "", "wires": [["wo"]]},
            {"id": "wo", "type": "websocket out", "server": "L", "client": "", "wires": []}]


last_ws_split = (0.0, 0.0)  # the last bench_ws run's user and system CPU seconds


def bench_ws(kind, seconds=10, exe=None):
    rt = Runtime(kind, ws_flow(), exe)
    try:
        # the C generator (tools/bench/ws_load.c) when built: Node's ws
        # client takes a core by itself and then limits what is measured
        load = os.path.join(os.path.dirname(CARMINE), "ws_load")
        if os.path.exists(load) and not os.environ.get("WS_LOAD_NODE"):
            args = [load, str(rt.port), "/ws/echo", "100", str(seconds)]
            env = None
        else:
            js = os.path.join(rt.dir, "load.js")
            with open(js, "w") as f:
                f.write(WS_LOAD)
            env = dict(os.environ, NODE_PATH=os.path.join(NODE_WS, "node_modules"))
            args = ["node", js, str(rt.port), "100", str(seconds)]
        u0, s0 = rt.cpu_split()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=seconds + 30)
        u1, s1 = rt.cpu_split()
        cpu = (u1 - u0) + (s1 - s0)
        global last_ws_split
        last_ws_split = (u1 - u0, s1 - s0)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        gen = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if res["open"] != 100:
            return 0.0, 0.0, 0.0, 0.0
        # messages/s, and messages per CPU second of the runtime (what the
        # machine's other load does not change much); the load generator's
        # own CPU share of the run (near 1.0: it is the limit, not the runtime)
        return (res["count"] / res["seconds"], res["count"] / cpu if cpu else 0.0, cpu / res["seconds"],
                gen / res["seconds"])
    finally:
        rt.stop()


def bench_wsmem(kind, clients=10000):
    rt = Runtime(kind, ws_flow())
    socks = []
    try:
        before = rt.rss_kb()
        req = ("GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        ok = 0
        for i in range(clients):
            s = socket.create_connection(("127.0.0.1", rt.port), timeout=10)
            s.sendall(req)
            socks.append(s)
            if i % 200 == 199:
                for x in socks[-200:]:
                    if x.recv(4096).startswith(b"HTTP/1.1 101"):
                        ok += 1
        time.sleep(2)
        return ok, before, rt.rss_kb()
    finally:
        for s in socks:
            s.close()
        rt.stop()


def main():
    kinds = sys.argv[1:] or ["carmine", "nodered"]
    if kinds[0] == "tcpreq":  # only the tcp request loop, in alternating rounds: tcpreq ROUNDS
        for i in range(int(kinds[1]) if len(kinds) > 1 else 3):
            for kind in ("carmine", "nodered"):
                rate, per_cpu = bench_tcpreq(kind, per_cpu=True)
                print("round %d %s tcp request: %.0f round trips/s, %.0f per CPU second (%.1f us CPU each; load %s)"
                      % (i + 1, kind, rate, per_cpu, 1e6 / per_cpu if per_cpu else 0,
                         open("/proc/loadavg").read().split()[0]), flush=True)
        return
    if kinds[0] == "file":  # only the file append, in alternating rounds: file ROUNDS
        for i in range(int(kinds[1]) if len(kinds) > 1 else 3):
            for kind in ("carmine", "nodered"):
                print("round %d %s file append: %.0f lines/s (load %s)"
                      % (i + 1, kind, bench_file(kind), open("/proc/loadavg").read().split()[0]), flush=True)
        return
    if kinds[0] == "ws":  # only the echo, in alternating rounds: ws ROUNDS
        rounds = int(kinds[1]) if len(kinds) > 1 else 3
        # BEFORE=DIR: another Carmine build (DIR/carmine) in each round too,
        # with the same load generator, for a before/after beside Node-RED
        before = os.environ.get("BEFORE")
        runs = [("carmine", None)] + ([("before", os.path.join(before, "carmine"))] if before else []) + [("nodered", None)]
        for i in range(rounds):
            for kind, exe in runs:
                rate, per_cpu, busy, gen = bench_ws("carmine" if exe else kind, exe=exe)
                us = 1e6 / per_cpu if per_cpu else 0
                user, system = last_ws_split
                print("round %d %s websocket echo, 100 clients: %.0f messages/s, %.0f messages per CPU second "
                      "(%.2f us CPU per message, %.2f of it the kernel's; runtime %.2f cores, load generator "
                      "%.2f cores, %.2f us per message; load %s)"
                      % (i + 1, kind, rate, per_cpu, us, us * system / (user + system) if user + system else 0,
                         busy, gen, gen / rate * 1e6 if rate else 0, open("/proc/loadavg").read().split()[0]),
                      flush=True)
        return
    for kind in kinds:
        print("%s file append: %.0f lines/s" % (kind, bench_file(kind)), flush=True)
        print("%s tcp request: %.0f round trips/s, %.0f per CPU second" % ((kind,) + bench_tcpreq(kind, per_cpu=True)),
              flush=True)
        print("%s websocket echo, 100 clients: %.0f messages/s, %.0f messages per CPU second "
              "(runtime %.2f cores, load generator %.2f cores)" % ((kind,) + bench_ws(kind)), flush=True)
        ok, before, after = bench_wsmem(kind)
        print("%s 10000 idle websocket clients: %d upgraded, RSS %d kB before, %d kB after (%.1f kB per client)"
              % (kind, ok, before, after, (after - before) / max(ok, 1)), flush=True)


if __name__ == "__main__":
    main()
