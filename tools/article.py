#!/usr/bin/env python3
"""article.py: the article's experiment (../shared/seed), driven the way a
user of the two exported flows would drive it.

For each scenario it starts the API flow (one instance, or N replicas sharing
the port), starts the load-tester against it, presses "Start a test" through
the Admin API (POST /inject/<id>), follows the ramp on the chart while it runs,
then saves the chart's target-vs-achieved series as CSV, SVG (and PNG when
Chromium is there) and returns the figures. Scenarios run side by side: the
load is 20 requests a second at most, far below what disturbs the timings.

The exported load-tester's http request node has an empty URL. A user edits
it; here a copy is written to the output directory with the URL set to
"${API_URL}", which Carmine (as Node-RED) replaces with the environment
variable when the flow loads; the exported file is not touched. A test may
also replace the ramp (the "Set test ramp" change node) in that copy.

Usage: article.py CARMINE OUTDIR NAME:API_FLOWS:REPLICAS... [--ramp JSON]
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from carmine_proc import Carmine  # noqa: E402

LOAD_TESTER = os.path.join(ROOT, "flows", "load-tester.json")
RAMP_NODE = "71a35667382f0c5a"      # change node "Set test ramp"
CHART_NODE = "35373d372a8332bd"     # the ui_chart
TARGET = "Target API Calls / Second"
ACHIEVED = "Achieved API Calls / Second"
STEP_S = 2                          # the ramp's delay node releases one value every 2 s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, timeout=10):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def load_tester_copy(out_dir, name, ramp=None):
    """The exported load-tester with url "${API_URL}" (and the ramp, if given)."""
    with open(LOAD_TESTER) as f:
        flows = json.load(f)
    for n in flows:
        if n.get("type") == "http request" and n.get("url") == "":
            n["url"] = "${API_URL}"
        if ramp is not None and n.get("id") == RAMP_NODE:
            n["rules"][0]["to"] = json.dumps(ramp)
    path = os.path.join(out_dir, "load-tester-%s.json" % name)
    with open(path, "w") as f:
        json.dump(flows, f)
    return path, flows


def ramp_of(flows):
    node = next(n for n in flows if n.get("id") == RAMP_NODE)
    return json.loads(node["rules"][0]["to"])


def start_button(flows):
    return next(n["id"] for n in flows if n.get("type") == "inject" and n.get("name") == "Start a test")


def has_replicas_option(carmine):
    out = subprocess.run([carmine, "--help"], capture_output=True, text=True).stdout
    return "--replicas" in out


class Api:
    """The API flow: one carmine, `carmine --replicas N`, or (before that
    option existed) N carmine processes with reusePort on one port."""

    def __init__(self, carmine, flows, replicas, out_dir, name):
        self.port = free_port()
        self.procs = []
        self.children = []
        log = os.path.join(out_dir, "api-%s.log" % name)
        if replicas == 1:
            self.procs.append(Carmine(carmine, flows, port=self.port, log=log))
        elif has_replicas_option(carmine):
            self.logf = open(log, "w")
            args = [carmine, "--replicas", str(replicas), "-p", str(self.port), "--admin-port", str(free_port()), flows]
            self.children.append(subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT))
        else:
            settings = os.path.join(out_dir, "reuseport.json")
            with open(settings, "w") as f:
                json.dump({"reusePort": True}, f)
            for i in range(replicas):
                self.procs.append(Carmine(carmine, flows, port=self.port, settings=settings,
                                          log="%s.%d" % (log, i)))
        self.wait_ready()

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                http("GET", "http://127.0.0.1:%d/api" % self.port, timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the API on port %d did not come up" % self.port)

    def stop(self):
        for p in self.procs:
            p.stop()
        for c in self.children:
            c.terminate()
            try:
                c.wait(timeout=15)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        if self.children:
            self.logf.close()


def series(chart_state, name):
    """[(x_ms, y)] of one series of the chart's state."""
    if not chart_state:
        return []
    values = chart_state[0]
    if name not in values.get("series", []):
        return []
    points = values["data"][values["series"].index(name)]
    return [(p["x"], p["y"]) for p in points if p.get("y") is not None]


def plateau_end(target):
    """When the peak target ends: the time of the first lower target after
    the last peak value (or +inf when the ramp ends on its peak)."""
    if not target:
        return float("inf")
    peak = max(y for _, y in target)
    last = max(i for i, (_, y) in enumerate(target) if y == peak)
    return target[last + 1][0] if last + 1 < len(target) else float("inf")


class Scenario:
    def __init__(self, carmine, out_dir, name, api_flows, replicas, ramp=None):
        self.carmine, self.out_dir, self.name = carmine, out_dir, name
        self.api_flows, self.replicas, self.ramp_override = api_flows, replicas, ramp
        self.state, self.error, self.figures = None, None, None
        self.started = None

    def chart_state(self):
        body = http("GET", "http://127.0.0.1:%d/ui/api/chart/%s.json" % (self.lt.port, CHART_NODE))
        return json.loads(body)["state"]

    def last(self, name):
        s = series(self.state, name)
        return s[-1][1] if s else None

    def run(self):
        api = None
        self.lt = None
        try:
            lt_flows_path, lt_flows = load_tester_copy(self.out_dir, self.name, self.ramp_override)
            ramp = ramp_of(lt_flows)
            api = Api(self.carmine, self.api_flows, self.replicas, self.out_dir, self.name)
            self.lt = Carmine(self.carmine, lt_flows_path, env={"API_URL": "http://127.0.0.1:%d/api" % api.port},
                              log=os.path.join(self.out_dir, "load-tester-%s.log" % self.name))
            self.duration = STEP_S * len(ramp) + 1
            sys.stderr.write("%s: API on port %d (%d %s), load-tester dashboard at http://127.0.0.1:%d/ui\n" % (
                self.name, api.port, self.replicas, "replica" if self.replicas == 1 else "replicas", self.lt.port))
            http("POST", "http://127.0.0.1:%d/inject/%s" % (self.lt.port, start_button(lt_flows)))
            self.started = time.time()
            while time.time() - self.started < self.duration:
                time.sleep(0.5)
                self.state = self.chart_state()
            self.save()
        except Exception as e:  # reported by the caller, with the logs
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            if self.lt:
                self.lt.stop()
            if api:
                api.stop()

    def save(self):
        base = os.path.join(self.out_dir, self.name)
        url = "http://127.0.0.1:%d/ui/api/chart/%s" % (self.lt.port, CHART_NODE)
        with open(base + ".csv", "w") as f:
            f.write(http("GET", url + ".csv"))
        with open(base + ".svg", "w") as f:
            f.write(http("GET", url + ".svg?width=800&height=400"))
        self.png = None
        try:
            import cdp
            if cdp.find_chromium():
                cdp.screenshot(url + ".svg?width=800&height=400", base + ".png", 800, 400)
                self.png = base + ".png"
        except Exception as e:
            sys.stderr.write("%s: no PNG (%s)\n" % (self.name, e))
        target = [y for _, y in series(self.state, TARGET)]
        achieved = [y for _, y in series(self.state, ACHIEVED)]
        plateau = plateau_end(series(self.state, TARGET))
        at_end = [y for x, y in series(self.state, ACHIEVED) if x <= plateau]
        self.figures = {
            "name": self.name, "api": os.path.relpath(self.api_flows, ROOT), "replicas": self.replicas,
            "peak_target": max(target) if target else None,
            "peak_achieved": max(achieved) if achieved else None,
            "last_achieved": achieved[-1] if achieved else None,
            "plateau_achieved": at_end[-1] if at_end else None,
            "points": {"target": len(target), "achieved": len(achieved)},
            "csv": base + ".csv", "svg": base + ".svg", "png": self.png,
        }


def fmt(v):
    return "  -  " if v is None else "%5.1f" % v


def run_all(scenarios, progress=sys.stdout, every=5.0):
    threads = [threading.Thread(target=s.run) for s in scenarios]
    for t in threads:
        t.start()
    last_print = 0
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        if time.time() - last_print >= every:
            last_print = time.time()
            parts = []
            elapsed = max((min(time.time() - s.started, s.duration) for s in scenarios if s.started), default=0)
            total = max((getattr(s, "duration", 0) for s in scenarios), default=0)
            for s in scenarios:
                if s.started is None:
                    parts.append("%s starting" % s.name)
                else:
                    parts.append("%s %s/%s" % (s.name, fmt(s.last(TARGET)).strip(), fmt(s.last(ACHIEVED)).strip()))
            parts[0] = "[%3.0f/%.0f s] target/achieved calls/s: " % (elapsed, total) + parts[0]
            progress.write(" | ".join(parts) + "\n")
            progress.flush()
    for t in threads:
        t.join()
    return scenarios


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 1
    carmine, out_dir = argv[1], argv[2]
    ramp = None
    specs = argv[3:]
    if "--ramp" in specs:
        i = specs.index("--ramp")
        ramp = json.loads(specs[i + 1])
        specs = specs[:i] + specs[i + 2:]
    os.makedirs(out_dir, exist_ok=True)
    scenarios = []
    for spec in specs:
        name, flows, replicas = spec.split(":")
        scenarios.append(Scenario(carmine, out_dir, name, os.path.abspath(flows), int(replicas), ramp))
    run_all(scenarios)
    figures = [s.figures for s in scenarios if s.figures]
    with open(os.path.join(out_dir, "figures.json"), "w") as f:
        json.dump(figures, f, indent=2)
    rc = 0
    for s in scenarios:
        if s.error:
            rc = 1
            print("%s: FAILED: %s (logs in %s)" % (s.name, s.error, out_dir))
        else:
            f = s.figures
            print("%-22s peak target %5.1f calls/s, peak achieved %5.1f calls/s -> %s" % (
                s.name, f["peak_target"] or 0, f["peak_achieved"] or 0, os.path.relpath(f["svg"], ROOT)))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
