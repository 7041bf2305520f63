#!/usr/bin/env python3
""""Modified nodes" deploys under load: wrk hammers GET /load (an http in
route on tab A) while another tab's node is changed and deployed with
Node-RED-Deployment-Type: nodes again and again. Counts what wrk saw fail
(non-2xx answers, socket errors and timeouts), each deploy's time until
POST /flows answers and until the changed route answers its new text, and
the requests to the changed route that were never answered (the poll's,
2 s timeout: a request caught by the changed node's restart).
For Carmine and (when installed) Node-RED 4.1.15 on the same flows:
  python3 tests/deploy/bench_deploy_wrk.py [SECONDS] [CONNECTIONS]
deploy_test.py's test "no_request_fails_during_nodes_deploys_under_wrk"
runs run() on Carmine. NR_DIR (default ~/.cache/flowtest-record/nr) holds
Node-RED's node_modules."""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_test as T  # noqa: E402

NR_DIR = os.environ.get("NR_DIR", os.path.expanduser("~/.cache/flowtest-record/nr"))


def flows(i):
    """Tab A: GET /load (the loaded route, never changed); tab B: GET /b whose
    change node's text is deploy number i (the modified node)."""
    return [T.tab("A"), T.tab("B")] + T.route("A", "load", "/load", "steady") + T.route("B", "b", "/b", f"v{i}")


def text(port, path, timeout=5, lost=None):
    """The answer's text; None when it failed (a timeout is counted in lost[0])."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.read().decode()
    except (urllib.error.URLError, OSError) as e:
        if lost is not None and "timed out" in str(e):
            lost[0] += 1
        return None


def wrk_counts(out):
    """requests, non-2xx/3xx answers, socket errors (connect+read+write+timeout) of wrk's report."""
    m = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (int(m.group(1)) if m else 0, int(bad.group(1)) if bad else 0,
            sum(int(x) for x in sock.groups()) if sock else 0, float(rps.group(1)) if rps else 0.0)


def run(port, seconds=8, connections=50):
    """wrk on /load for seconds while "nodes" deploys change tab B; returns a dict."""
    out = {}

    def hammer():
        r = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                            f"http://127.0.0.1:{port}/load"], capture_output=True, text=True)
        out["wrk"] = r.stdout + r.stderr

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(1)
    times, posts, statuses, seen = [], [], [], []
    lost = [0]  # requests to the changed route (GET /b) that were never answered (2 s)
    i = 0
    end = time.time() + seconds - 2
    while time.time() < end:
        i += 1
        body = json.dumps(flows(i)).encode()
        t0 = time.perf_counter()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/flows", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Node-RED-Deployment-Type": "nodes"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
        t_post = (time.perf_counter() - t0) * 1000
        deadline = time.time() + 10
        while text(port, "/b", 2, lost) != f"v{i}" and time.time() < deadline:
            time.sleep(0.0005)
        times.append((time.perf_counter() - t0) * 1000)
        posts.append(t_post)
        seen.append(text(port, "/b") == f"v{i}")
        time.sleep(0.2)
    t.join()
    reqs, non2xx, sockerr, rps = wrk_counts(out["wrk"])
    return {"deploys": i, "statuses": statuses, "seen": all(seen), "times": times, "posts": posts, "lost": lost[0],
            "requests": reqs,
            "non2xx": non2xx, "socket_errors": sockerr, "rps": rps, "wrk": out["wrk"]}


def report(name, r):
    print(f"{name}: {r['deploys']} nodes deploys under wrk ({r['requests']} requests, {r['rps']:.0f} req/s): "
          f"{r['non2xx']} non-2xx, {r['socket_errors']} socket errors/timeouts; POST /flows answered "
          f"median {statistics.median(r['posts']):.1f} ms, worst {max(r['posts']):.1f} ms; the change answering "
          f"(deploy to running) median {statistics.median(r['times']):.1f} ms, worst {max(r['times']):.1f} ms; "
          f"requests to the changed route never answered: {r['lost']}", flush=True)


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    c = T.Carmine(flows(0))
    try:
        report("carmine", run(c.port, seconds, conns))
    finally:
        c.stop()
    red = os.path.join(NR_DIR, "node_modules", "node-red", "red.js")
    if not os.path.exists(red):
        print("Node-RED: not installed, skipped")
        return
    d = tempfile.mkdtemp(prefix="nr-deploy-wrk-")
    port = T.free_port()
    with open(os.path.join(d, "flows.json"), "w") as f:
        json.dump(flows(0), f)
    log = open(os.path.join(d, "log.txt"), "w")
    p = subprocess.Popen(["node", red, "-u", d, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=NR_DIR)
    try:
        deadline = time.time() + 60
        while text(port, "/load") != "steady":
            if time.time() > deadline or p.poll() is not None:
                raise RuntimeError("Node-RED did not start")
            time.sleep(0.2)
        report("Node-RED 4.1.15", run(port, seconds, conns))
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
