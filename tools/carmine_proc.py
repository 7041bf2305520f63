#!/usr/bin/env python3
"""carmine_proc.py: runs the carmine command on a flows file as a child
process, on a port the system picks (-p 0), and reads back the port it
listens on from its "HTTP on port N" line. Used by the article's tests and
tools/run-article.sh's helpers."""
import os
import re
import signal
import subprocess
import tempfile
import time


class Carmine:
    def __init__(self, exe, flows, port=0, env=None, settings=None, log=None, timeout=10):
        args = [exe, "-p", str(port)]
        if settings:
            args += ["-s", settings]
        self.log_path = log or tempfile.mktemp(prefix="carmine-", suffix=".log")
        self.log = open(self.log_path, "w+")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(args + [flows], stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        self.port = self._wait_port(timeout)

    def _wait_port(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"HTTP on port (\d+)", f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        with open(self.log_path) as f:
            raise RuntimeError("carmine did not start:\n" + f.read())

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
