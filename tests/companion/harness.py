"""harness.py: what the companion's test scripts share (tests/companion).

Each script is run as  SCRIPT CARMINE USERDIR ; it prints ok/not ok lines
and ends with finish(), which prints "N passed, N failed" and exits.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CARMINE, USERDIR = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="carmine-companion-")
counts = {"passed": 0, "failed": 0}


def check(desc, cond, detail=""):
    if cond:
        counts["passed"] += 1
        print("ok - " + desc)
    else:
        counts["failed"] += 1
        print("not ok - " + desc)
        if detail:
            for line in str(detail).splitlines()[-30:]:
                print("    " + line)
    sys.stdout.flush()


def finish():
    if counts["failed"] == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    sys.exit(1 if counts["failed"] else 0)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from ports import free_port  # noqa: E402,F401  (tests/lib/ports.py; test_mysql.py imports it from here)


def path(name):
    return os.path.join(TMP, name)


def read(name):
    try:
        with open(path(name), "rb") as f:
            return f.read()
    except OSError:
        return b""


def lines(name):
    return [l for l in read(name).decode("utf-8", "replace").split("\n") if l]


def wait_for(fn, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.05)
    return fn()


class Run:
    """carmine on flows (a list), in the background, its output in NAME.log."""

    def __init__(self, flows, userdir=USERDIR, name="run", settings=None):
        self.flows = path(name + ".json")
        with open(self.flows, "w") as f:
            json.dump(flows, f)
        self.log = path(name + ".log")
        self.port = free_port()
        args = [CARMINE, "-p", str(self.port), "-u", userdir]
        if settings is not None:
            with open(path(name + "-settings.json"), "w") as f:
                json.dump(settings, f)
            args += ["-s", path(name + "-settings.json")]
        self.proc = subprocess.Popen(args + [self.flows], stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def children(self):
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            return [int(x) for x in out.split()]
        except OSError:
            return []

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


def out(id, name, extra=None):
    """A file node appending each payload as a line to NAME."""
    n = {"id": id, "type": "file", "z": "t1", "x": 1, "y": 1, "filename": path(name), "filenameType": "str",
         "appendNewline": True, "createDir": False, "overwriteFile": "false", "encoding": "none", "wires": []}
    n.update(extra or {})
    return n


def node(id, type, wires, **kw):
    n = {"id": id, "type": type, "z": "t1", "x": 1, "y": 1, "wires": wires}
    n.update(kw)
    return n


def inject(id, wires, payload, ptype="str", delay=0.1, repeat="", props=None):
    return node(id, "inject", wires, props=props or [{"p": "payload"}], payload=payload, payloadType=ptype,
                once=True, onceDelay=delay, repeat=repeat)


def setp(id, wires, expr, prop="payload"):
    """A change node setting msg.PROP to a JSONata expression."""
    return node(id, "change", wires, rules=[{"t": "set", "p": prop, "pt": "msg", "to": expr, "tot": "jsonata"}])
