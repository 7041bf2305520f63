#!/usr/bin/env python3
"""companion_http.py: what a route a hosted npm module adds costs through
Carmine's proxy (docs/companion.md, "HTTP"), beside a native route of the same
Carmine and beside Node-RED 4.1.15 serving the same module itself.

  tools/bench/companion_http.py build/carmine [SECONDS]

One flow (tests/dashboard's fixture module, node-red-contrib-carmine-http, in a
temporary userDir, plus a native http in -> template -> http response), run by
Carmine and then by Node-RED 4.1.15 (~/.cache/flowtest-record/nr or
tools/bench/node_modules). Per route: the latency of 2000 requests one at a
time on one keep-alive connection (p50, p99), and wrk's rate with 16
connections for SECONDS (default 5). Also the RSS of each side after the run.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CARMINE = sys.argv[1]
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
TMP = tempfile.mkdtemp(prefix="carmine-bench-http-")

FLOWS = [
    {"id": "t1", "type": "tab", "label": "bench"},
    {"id": "fx", "type": "carmine-http", "z": "t1", "name": "", "x": 100, "y": 100, "wires": [[]]},
    {"id": "hin", "type": "http in", "z": "t1", "url": "/native", "method": "get", "x": 100, "y": 200, "wires": [["tpl"]]},
    {"id": "tpl", "type": "template", "z": "t1", "field": "payload", "fieldType": "msg", "format": "text",
     "syntax": "plain", "template": "same text every time", "output": "str", "x": 300, "y": 200, "wires": [["hout"]]},
    {"id": "hout", "type": "http response", "z": "t1", "statusCode": "", "headers": {}, "x": 500, "y": 200, "wires": []},
]


sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from ports import free_port  # noqa: E402  (tests/lib/ports.py)


def userdir():
    ud = os.path.join(TMP, "userdir")
    mod = os.path.join(ud, "node_modules", "node-red-contrib-carmine-http")
    src = os.path.join(ROOT, "tests", "dashboard", "node-red-contrib-carmine-http")
    os.makedirs(mod, exist_ok=True)
    for f in os.listdir(src):
        shutil.copy(os.path.join(src, f), mod)
    with open(os.path.join(ud, "package.json"), "w") as f:
        json.dump({"name": "node-red-project", "private": True}, f)
    with open(os.path.join(ud, "flows.json"), "w") as f:
        json.dump(FLOWS, f)
    return ud


def wait_http(port, path, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def latency(port, path, n=2000):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        ts.append(time.perf_counter() - t0)
    c.close()
    ts.sort()
    return ts[len(ts) // 2] * 1e6, ts[int(len(ts) * 0.99)] * 1e6


def wrk(port, path):
    out = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % SECONDS, "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return float(m.group(1)) if m else 0.0, int(errs.group(1)) if errs else 0


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """Child processes of every thread of pid (the companion is spawned by a loop thread)."""
    kids = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def dashboard_rss(cmd, port, pid_of):
    """Start one side on tests/dashboard/dashboard.json; (seconds to the first /ui/ 200, RSS MB 5 s later)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_http(port, "/ui/"):
            return None
        up = time.time() - t0
        time.sleep(5)
        return up, sum(rss_kb(x) for x in pid_of(p)) / 1024
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()


def measure(name, port, pids):
    rows = []
    for path in ("/fx/etag", "/native"):
        p50, p99 = latency(port, path)
        rate, errs = wrk(port, path)
        rows.append((name, path, p50, p99, rate, errs))
    rss = sum(rss_kb(p) for p in pids)
    return rows, rss


def main():
    ud = userdir()
    results = []
    port = free_port()
    p = subprocess.Popen([CARMINE, "-p", str(port), "-u", ud, os.path.join(ud, "flows.json")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_http(port, "/fx/etag"):
            sys.exit("carmine did not serve /fx/etag")
        rows, rss = measure("Carmine (proxy to the companion)", port, [p.pid] + children(p.pid))
        results.append((rows, rss, "carmine + companion"))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()
    nr = None
    for cand in (os.path.join(HERE, "node_modules", "node-red", "red.js"),
                 os.path.expanduser("~/.cache/flowtest-record/nr/node_modules/node-red/red.js")):
        if os.path.exists(cand):
            nr = cand
            break
    if nr:
        port = free_port()
        p = subprocess.Popen(["node", nr, "-p", str(port), "-u", ud, "flows.json"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if wait_http(port, "/fx/etag"):
                rows, rss = measure("Node-RED 4.1.15", port, [p.pid])
                results.append((rows, rss, "node-red"))
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait()
    # a whole dashboard: tests/dashboard/dashboard.json with the userDir's modules
    dud = os.path.join(TMP, "dash-userdir")
    os.makedirs(dud)
    deps = os.path.join(ROOT, ".deps", "dashboard-test")
    dash = []
    if os.path.isdir(os.path.join(deps, "node_modules", "node-red-dashboard")):
        os.symlink(os.path.join(deps, "node_modules"), os.path.join(dud, "node_modules"))
        shutil.copy(os.path.join(deps, "package.json"), dud)
        shutil.copy(os.path.join(ROOT, "tests", "dashboard", "dashboard.json"), os.path.join(dud, "flows.json"))
        port = free_port()
        r = dashboard_rss([CARMINE, "-p", str(port), "-u", dud, os.path.join(dud, "flows.json")], port,
                          lambda p: [p.pid] + children(p.pid))
        if r:
            dash.append(("Carmine + companion",) + r)
        if nr:
            port = free_port()
            r = dashboard_rss(["node", nr, "-p", str(port), "-u", dud, "flows.json"], port, lambda p: [p.pid])
            if r:
                dash.append(("Node-RED 4.1.15",) + r)
    print("| server | route | p50 one at a time | p99 | wrk -c16 | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rows, rss, _ in results:
        for name, path, p50, p99, rate, errs in rows:
            print("| %s | %s | %.0f µs | %.0f µs | %.0f req/s | %d |" % (name, path, p50, p99, rate, errs))
    for rows, rss, what in results:
        print("RSS after the run, %s: %.1f MB" % (what, rss / 1024))
    for name, up, rss in dash:
        print("tests/dashboard/dashboard.json on %s: /ui/ answers %.1f s after the start, RSS %.1f MB" % (name, up, rss))
    shutil.rmtree(TMP, ignore_errors=True)


main()
