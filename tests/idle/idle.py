"""idle.py BUILD_DIR: the idle resident memory of the 50-node flow and of the
API flow stays under the target of ../shared/DESIGN.md (6 MB), measured as
tools/bench/run.sh measures it (tools/bench/first_answer.c): carmine -p PORT
FLOW, GET PATH until it answers 200, 2 s of rest, VmRSS. Also: the memory
given back when idle (runtime/alloc.c: the allocator's free pages, the code
pages that ran once) is given back (less than right after the first answer),
and the process answers as before afterwards (its code faults back in).
At most one release in 10 s: what the first answer ran after it stays.
Sanitizer builds (their shadow memory) only check the answers.
"""
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMIT_KB = 6 * 1024
failures = 0


def check(ok, what):
    global failures
    print(("ok - " if ok else "not ok - ") + what)
    if not ok:
        failures += 1


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps or "libubsan" in maps


def status(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except Exception:
        return 0


def measure(flow, path, given_back):
    port = random.randint(20000, 31999)
    proc = subprocess.Popen([os.path.join(BUILD, "carmine"), "-p", str(port), flow],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while status(port, path) != 200:
            if proc.poll() is not None or time.time() > deadline:
                check(False, f"{os.path.basename(flow)}: answers GET {path}")
                return
            time.sleep(0.005)
        first = rss_kb(proc.pid)
        time.sleep(2)
        idle = rss_kb(proc.pid)
        name = os.path.basename(flow)
        if sanitized(proc.pid):
            print(f"# {name}: sanitizer build, RSS {idle} kB not checked")
        else:
            check(idle <= LIMIT_KB, f"{name}: idle RSS {idle} kB <= {LIMIT_KB} kB")
            if given_back:
                check(idle < first, f"{name}: idle RSS {idle} kB < {first} kB right after the first answer")
        check(status(port, path) == 200, f"{name}: answers GET {path} again once idle")
    finally:
        proc.terminate()
        proc.wait(10)


with tempfile.TemporaryDirectory() as tmp:
    subprocess.run(["node", os.path.join(ROOT, "tools/bench/make-flows.js"), tmp], check=True,
                   stdout=subprocess.DEVNULL)
    # the API flow's first answer comes after its delay of 100 ms, when the
    # loops have already been idle for a moment (they give back at once)
    measure(os.path.join(tmp, "flow50.json"), "/flows", True)
    measure(os.path.join(ROOT, "flows/api.json"), "/api", False)
sys.exit(1 if failures else 0)
