#!/usr/bin/env python3
"""Deploy-to-running time: from the start of POST /flows until a route the
new flows add answers 200, for Carmine and (when installed) Node-RED 4.1.15,
on the same flows (ROUTES http in routes on TABS tabs plus the new one).
Prints the median and the worst of RUNS full and RUNS "nodes" deploys for
each (a "nodes" deploy here adds one route and removes the last one).
  python3 tests/deploy/bench_deploy.py [RUNS]
NR_DIR (default ~/.cache/flowtest-record/nr) holds Node-RED's node_modules."""
import json, os, shutil, statistics, subprocess, sys, tempfile, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_test as T  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
TABS, ROUTES = 10, 10
NR_DIR = os.environ.get("NR_DIR", os.path.expanduser("~/.cache/flowtest-record/nr"))


def flows(i):
    f = []
    for t in range(TABS):
        f.append(T.tab(f"tab{t}"))
        for r in range(ROUTES):
            f += T.route(f"tab{t}", f"r{t}_{r}", f"/r{t}/{r}", "x")
    return f + T.route("tab0", f"new{i}", f"/new{i}", "new")


def up(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def measure(port, kind, base):
    times = []
    for i in range(base, base + RUNS):
        body = json.dumps(flows(i)).encode()
        t0 = time.perf_counter()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/flows", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Node-RED-Deployment-Type": kind})
        urllib.request.urlopen(req, timeout=30).read()
        while not up(port, f"/new{i}"):
            time.sleep(0.0005)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def report(name, port):
    for k, kind in enumerate(("full", "nodes")):
        times = measure(port, kind, k * 1000)
        print(f"{name}, {kind} deploy: median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms over "
              f"{len(times)} deploys of {TABS} tabs x {ROUTES} routes", flush=True)


def main():
    c = T.Carmine(flows(-1))
    try:
        report("carmine", c.port)
    finally:
        c.stop()
    red = os.path.join(NR_DIR, "node_modules", "node-red", "red.js")
    if not os.path.exists(red):
        print("Node-RED: not installed, skipped")
        return
    d = tempfile.mkdtemp(prefix="nr-deploy-")
    port = T.free_port()
    with open(os.path.join(d, "flows.json"), "w") as f:
        json.dump(flows(-1), f)
    log = open(os.path.join(d, "log.txt"), "w")
    p = subprocess.Popen(["node", red, "-u", d, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=NR_DIR)
    try:
        deadline = time.time() + 60
        while not up(port, "/r0/0"):
            if time.time() > deadline or p.poll() is not None:
                raise RuntimeError("Node-RED did not start")
            time.sleep(0.2)
        report("Node-RED 4.1.15", port)
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
