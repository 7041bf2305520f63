#!/usr/bin/env python3
"""Carmine's file, exec, tcp, udp and websocket nodes against real files,
processes and sockets on this machine (loopback only).

Each test starts `carmine` on a flow of its own (a free port, a temporary
directory), drives it from here (files, sockets, HTTP requests to the flow's
http in nodes) and reads what the flow produced: the flows end in a `file`
node that appends each result, as JSON, one line per message, to out.jsonl.
Prints "ok"/"not ok" per test and a last line "N passed, N failed".
BUILD_DIR picks the build (default build)."""
import atexit, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, traceback, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CARMINE = os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"), "carmine")
if not os.path.isabs(CARMINE):
    CARMINE = os.path.join(ROOT, CARMINE)
TESTS = []
TMP = []
if not os.environ.get("KEEP_TMP"):
    atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in TMP])


def tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    TMP.append(d)
    return d


def test(fn):
    TESTS.append(fn)
    return fn


sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from ports import free_port  # noqa: E402,F401  (one helper for every suite)


class Flow:
    """A running carmine with one flow. `out` nodes write to self.out."""

    def __init__(self, nodes, settings=None, env=None):
        self.dir = tmpdir("crm-net-")
        self.out = os.path.join(self.dir, "out.jsonl")
        self.port = free_port()
        flow = [{"id": "tab", "type": "tab", "label": "t"}]
        for n in nodes:
            n = dict(n)
            n.setdefault("z", "tab")
            flow.append(n)
        # "out": the whole message as JSON, one line each
        flow.append({"id": "out", "type": "change", "z": "tab", "rules": [
            {"t": "set", "p": "payload", "pt": "msg", "to": "$$", "tot": "jsonata"}], "wires": [["outf"]]})
        flow.append({"id": "outf", "type": "file", "z": "tab", "filename": self.out, "filenameType": "str",
                     "appendNewline": True, "createDir": False, "overwriteFile": "false", "encoding": "none",
                     "wires": [[]]})
        path = os.path.join(self.dir, "flows.json")
        with open(path, "w") as f:
            json.dump(flow, f)
        args = [CARMINE, "-p", str(self.port), "-u", self.dir]
        if settings:
            sp = os.path.join(self.dir, "settings.json")
            with open(sp, "w") as f:
                json.dump(settings, f)
            args += ["-s", sp]
        self.log = open(os.path.join(self.dir, "log.txt"), "w+")
        self.proc = subprocess.Popen(args + [path], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **env) if env else None)
        self.wait_port()

    def wait_port(self):
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.2)  # the HTTP server listens before every node has started
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("carmine exited: " + self.logtext())
                time.sleep(0.05)
        raise AssertionError("carmine did not listen")

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def post(self, path, body):
        """A JSON body (a str is sent as text/plain: msg.payload is that string)."""
        if isinstance(body, str):
            data, ct = body.encode(), "text/plain"
        else:
            data, ct = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     headers={"Content-Type": ct})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def results(self):
        """The messages that reached "out", without _msgid."""
        try:
            with open(self.out) as f:
                msgs = [json.loads(l) for l in f if l.strip()]
                for m in msgs:
                    m.pop("_msgid", None)
                return msgs
        except FileNotFoundError:
            return []

    def wait_results(self, count, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            r = self.results()
            if len(r) >= count:
                return r
            time.sleep(0.05)
        raise AssertionError("expected %d results, got %r\nlog:\n%s" % (count, self.results(), self.logtext()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        text = self.logtext()
        self.log.close()
        # a sanitizer build (BUILD_DIR=build-asan) reports on stderr
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in text:
                raise AssertionError("sanitizer report:\n" + text[text.index(mark) - 200:][:3000])

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def http_in(id, url, wires):
    """An http in node answering at once (an http response after it)."""
    return [{"id": id, "type": "http in", "url": url, "method": "post", "upload": False, "wires": [wires + [id + "r"]]},
            {"id": id + "r", "type": "http response", "statusCode": "", "headers": {}, "wires": []}]


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


# watch -------------------------------------------------------------------------------------

@test
def watch_directory_events():
    d = tmpdir("crm-watch-")
    os.mkdir(os.path.join(d, "sub"))
    with Flow([{"id": "w", "type": "watch", "files": d, "recursive": True, "wires": [["out"]]}]) as f:
        time.sleep(0.3)
        with open(os.path.join(d, "a.txt"), "w") as fh:
            fh.write("hello")
        r = f.wait_results(1)
        eq(r[0], {"payload": d + "/a.txt", "topic": d, "file": "a.txt", "filename": d + "/a.txt",
                  "event": "update", "size": 5, "type": "file"}, "created file")
        time.sleep(0.3)
        with open(os.path.join(d, "sub", "b.txt"), "w") as fh:
            fh.write("x")
        r = f.wait_results(2)
        eq((r[1]["filename"], r[1]["event"], r[1]["type"]), (d + "/sub/b.txt", "update", "file"), "recursive")
        time.sleep(0.3)
        os.mkdir(os.path.join(d, "new"))
        time.sleep(0.4)
        with open(os.path.join(d, "new", "c.txt"), "w") as fh:
            fh.write("xy")
        r = f.wait_results(4)
        eq((r[2]["filename"], r[2]["type"]), (d + "/new", "directory"), "new directory")
        eq((r[3]["filename"], r[3]["size"]), (d + "/new/c.txt", 2), "file in a new directory")
        time.sleep(0.3)
        os.unlink(os.path.join(d, "a.txt"))
        r = f.wait_results(5)
        eq(r[4], {"payload": d + "/a.txt", "topic": d, "file": "a.txt", "filename": d + "/a.txt",
                  "event": "remove", "type": "none"}, "removed file")


@test
def watch_single_file_and_list():
    d = tmpdir("crm-watch-")
    a, b = os.path.join(d, "a.log"), os.path.join(d, "b.log")
    for p in (a, b):
        open(p, "w").close()
    with Flow([{"id": "w", "type": "watch", "files": a + " , " + b, "recursive": False, "wires": [["out"]]}]) as f:
        time.sleep(0.3)
        open(os.path.join(d, "other"), "w").close()  # not watched
        with open(a, "a") as fh:
            fh.write("1")
            fh.flush()
            fh.write("2")
        r = f.wait_results(1)
        time.sleep(0.5)
        r = f.results()
        eq(len(r), 1, "one message for changes within 200 ms")
        eq(r[0]["topic"], json.dumps([a, b], separators=(",", ":")), "topic of a list")
        eq((r[0]["filename"], r[0]["size"]), (a, 2), "watched file")


@test
def watch_missing_path_logs_error():
    with Flow([{"id": "w", "type": "watch", "files": "/nonexistent/crm-x", "wires": [["out"]]}]) as f:
        time.sleep(0.3)
        log = f.logtext()
        assert "/nonexistent/crm-x does not exist." in log, log


# file --------------------------------------------------------------------------------------

@test
def file_append_survives_rotation():
    d = tmpdir("crm-file-")
    p = os.path.join(d, "log.txt")
    nodes = http_in("in", "/w", ["wr"]) + [
        {"id": "wr", "type": "file", "filename": p, "filenameType": "str", "appendNewline": True, "createDir": True,
         "overwriteFile": "false", "encoding": "none", "wires": [[]]}]
    with Flow(nodes) as f:
        f.post("/w", {"line": 1})
        os.rename(p, p + ".1")  # rotated away: the next line goes to a new file
        f.post("/w", {"line": 2})
        f.post("/w", {"line": 3})
        eq(open(p + ".1").read(), '{"line":1}\n', "rotated file")
        eq(open(p).read(), '{"line":2}\n{"line":3}\n', "new file")


@test
def file_in_large_file_in_chunks_keeps_serving():
    d = tmpdir("crm-file-")
    p = os.path.join(d, "big.txt")
    with open(p, "w") as fh:
        for i in range(200000):
            fh.write("line %d\n" % i)
    nodes = http_in("in", "/r", ["rd"]) + [
        {"id": "rd", "type": "file in", "filename": p, "filenameType": "str", "format": "lines", "encoding": "none",
         "allProps": False, "sendError": False, "wires": [["cnt"]]},
        {"id": "cnt", "type": "switch", "property": "parts.count", "propertyType": "msg",
         "rules": [{"t": "nnull"}], "checkall": "true", "outputs": 1, "wires": [["out"]]},
        {"id": "ping", "type": "http in", "url": "/ping", "method": "get", "wires": [["pr"]]},
        {"id": "pr", "type": "http response", "statusCode": "", "headers": {}, "wires": []}]
    with Flow(nodes) as f:
        f.post("/r", {})
        # the loop answers HTTP while the file is being read
        t0 = time.time()
        urllib.request.urlopen("http://127.0.0.1:%d/ping" % f.port, timeout=10).read()
        r = f.wait_results(1, timeout=60)
        eq((r[0]["payload"], r[0]["parts"]["index"], r[0]["parts"]["count"]), ("", 200000, 200001), "last line part")


# exec --------------------------------------------------------------------------------------

def procs_matching(text):
    """pids whose command line contains text, and which of them are zombies."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), state))
    return found


def zombies_of(ppid):
    z = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if st[0] == "Z" and int(st[1]) == ppid:
            z.append(int(pid))
    return z


@test
def exec_children_reaped_and_killed_on_stop():
    nodes = http_in("in", "/run", ["sp", "ex"]) + [
        {"id": "sp", "type": "exec", "command": "sleep", "addpay": "payload", "append": "", "useSpawn": "true",
         "timer": "", "oldrc": False, "wires": [[], [], ["out"]]},
        {"id": "ex", "type": "exec", "command": "sleep", "addpay": "payload", "append": "; echo done",
         "useSpawn": "false", "timer": "", "oldrc": False, "wires": [[], [], ["out"]]},
        {"id": "ping", "type": "http in", "url": "/ping", "method": "get", "wires": [["pr"]]},
        {"id": "pr", "type": "http response", "statusCode": "", "headers": {}, "wires": []}]
    f = Flow(nodes)
    try:
        # short ones end by themselves: reaped, no zombie
        for _ in range(5):
            f.post("/run", "0.1")
        r = f.wait_results(10)
        eq(sorted(m["payload"]["code"] for m in r), [0] * 10, "return codes")
        time.sleep(0.2)
        eq(zombies_of(f.proc.pid), [], "zombies")
        # 100 children running: the HTTP server still answers
        for _ in range(50):
            f.post("/run", "31.4159")
        t0 = time.time()
        urllib.request.urlopen("http://127.0.0.1:%d/ping" % f.port, timeout=10).read()
        assert time.time() - t0 < 2, "ping took %.1f s" % (time.time() - t0)
        running = [p for p, st in procs_matching("sleep 31.4159") if st != "Z"]
        assert len(running) >= 100, "running: %d" % len(running)
    finally:
        f.stop()
    time.sleep(0.2)
    left = procs_matching("sleep 31.4159")
    eq(left, [], "children left after the flow stopped")


@test
def exec_stdin_is_open_and_output_streams():
    nodes = http_in("in", "/run", ["sp"]) + [
        {"id": "sp", "type": "exec", "command": "sh -c", "addpay": "payload", "append": "", "useSpawn": "true",
         "timer": "", "oldrc": False, "wires": [["out"], ["out"], ["out"]]}]
    with Flow(nodes) as f:
        f.post("/run", '"echo one; sleep 0.3; echo two >&2; sleep 0.3; exit 5"')
        r = f.wait_results(3)
        eq([m["payload"] for m in r], ["one\n", "two\n", {"code": 5}], "spawn outputs in order")


# udp ---------------------------------------------------------------------------------------

@test
def udp_in_from_python_peer_v4_v6():
    p4, p6 = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    nodes = [{"id": "u4", "type": "udp in", "iface": "", "port": str(p4), "ipv": "udp4", "multicast": "false",
              "group": "", "datatype": "buffer", "wires": [["out"]]},
             {"id": "u6", "type": "udp in", "iface": "", "port": str(p6), "ipv": "udp6", "multicast": "false",
              "group": "", "datatype": "utf8", "wires": [["out"]]}]
    with Flow(nodes) as f:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.sendto(bytes(range(256)), ("127.0.0.1", p4))
        r = f.wait_results(1)
        eq(r[0]["payload"], {"type": "Buffer", "data": list(range(256))}, "binary datagram")
        eq(r[0]["fromip"], "127.0.0.1:%d" % c.getsockname()[1], "fromip")
        c6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        c6.sendto("h\u00e9".encode(), ("::1", p6))
        r = f.wait_results(2)
        eq((r[1]["payload"], r[1]["ip"], r[1]["port"]), ("h\u00e9", "::1", c6.getsockname()[1]), "ipv6 datagram")
        # many datagrams, none lost on loopback
        for i in range(200):
            c.sendto(b"%d" % i, ("127.0.0.1", p4))
            if i % 20 == 19:
                time.sleep(0.01)
        r = f.wait_results(202)
        eq(len(r), 202, "all datagrams")


@test
def udp_out_to_python_peer_and_broadcast():
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("0.0.0.0", 0))
    peer.settimeout(5)
    port = peer.getsockname()[1]
    nodes = http_in("in", "/send", ["mv"]) + [
        {"id": "mv", "type": "change", "rules": [
            {"t": "move", "p": "payload.ip", "pt": "msg", "to": "ip", "tot": "msg"},
            {"t": "move", "p": "payload.port", "pt": "msg", "to": "port", "tot": "msg"},
            {"t": "move", "p": "payload.payload", "pt": "msg", "to": "payload", "tot": "msg"}], "wires": [["uo", "ub"]]},
        {"id": "uo", "type": "udp out", "addr": "", "iface": "", "port": "", "ipv": "udp4", "outport": "",
         "base64": False, "multicast": "false", "wires": []},
        {"id": "ub", "type": "udp out", "addr": "127.255.255.255", "iface": "", "port": str(port), "ipv": "udp4",
         "outport": "", "base64": False, "multicast": "board", "wires": []}]
    with Flow(nodes) as f:
        time.sleep(0.2)
        f.post("/send", {"payload": "direct", "ip": "127.0.0.1", "port": port})
        eq(peer.recvfrom(100)[0], b"direct", "datagram")
        eq(peer.recvfrom(100)[0], b"direct", "broadcast datagram")


@test
def udp_multicast_group():
    group = "239.255.43.21"
    port = free_port(socket.SOCK_DGRAM)
    nodes = [{"id": "um", "type": "udp in", "iface": "127.0.0.1", "port": str(port), "ipv": "udp4",
              "multicast": "true", "group": group, "datatype": "utf8", "wires": [["out"]]}]
    with Flow(nodes) as f:
        time.sleep(0.3)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        s.sendto(b"to the group", (group, port))
        r = f.wait_results(1)
        eq(r[0]["payload"], "to the group", "multicast datagram")


# tcp ---------------------------------------------------------------------------------------

@test
def tcp_in_client_reconnects_and_reply_reset():
    """tcp in as a client of a Python server: data arrives, the connection
    is re-made after socketReconnectTime when the server drops it, and a tcp
    out in reply mode answers on the same connection or resets it."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    nodes = [{"id": "ti", "type": "tcp in", "server": "client", "host": "127.0.0.1", "port": str(port),
              "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "", "trim": False,
              "wires": [["out", "sw"]]},
             {"id": "sw", "type": "switch", "property": "payload", "propertyType": "msg",
              "rules": [{"t": "eq", "v": "ping", "vt": "str"}, {"t": "eq", "v": "reset", "vt": "str"}],
              "checkall": "true", "outputs": 2, "wires": [["pong"], ["rs"]]},
             {"id": "pong", "type": "change", "rules": [{"t": "set", "p": "payload", "pt": "msg", "to": "pong\n",
                                                         "tot": "str"}], "wires": [["to"]]},
             {"id": "rs", "type": "change", "rules": [{"t": "set", "p": "reset", "pt": "msg", "to": "true",
                                                       "tot": "bool"}], "wires": [["to"]]},
             {"id": "to", "type": "tcp out", "host": "", "port": "", "beserver": "reply", "base64": False,
              "end": False, "wires": []}]
    with Flow(nodes, settings={"socketReconnectTime": 300}) as f:
        c, _ = srv.accept()
        c.settimeout(5)
        c.sendall(b"ping\n")
        eq(c.recv(100), b"pong\n", "reply on the connection")
        c.sendall(b"reset\n")
        eq(c.recv(100), b"", "msg.reset closes the connection")
        c.close()
        c2, _ = srv.accept()  # reconnected
        c2.sendall(b"again\n")
        r = f.wait_results(3)
        eq([m["payload"] for m in r], ["ping", "reset", "again"], "messages")
        assert r[0]["_session"]["id"] != r[2]["_session"]["id"], "a new session after reconnecting"
        c2.close()
    srv.close()


@test
def tcp_in_connection_reset_logged():
    """A peer that resets the connection (RST: SO_LINGER 0) is logged as
    Node-RED 4.1.15 logs it (its socket's 'error' handler: node.log(err)):
    "[info] [tcp in:srv] Error: read ECONNRESET" for a server's client, and
    for a client the same line and then "connection lost to host:port"
    (checked on Node-RED with this flow)."""
    import struct
    lport, sport = free_port(), free_port()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", sport))
    srv.listen(4)
    srv.settimeout(10)
    nodes = [{"id": "ts", "type": "tcp in", "name": "srv", "server": "server", "host": "", "port": str(lport),
              "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "", "trim": False,
              "wires": [["out"]]},
             {"id": "tc", "type": "tcp in", "name": "cli", "server": "client", "host": "127.0.0.1",
              "port": str(sport), "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "",
              "trim": False, "wires": [[]]}]
    rst = struct.pack("ii", 1, 0)
    with Flow(nodes, settings={"socketReconnectTime": 60000}) as f:
        c = socket.create_connection(("127.0.0.1", lport), timeout=5)
        c.sendall(b"hello\n")
        eq([m["payload"] for m in f.wait_results(1)], ["hello"], "the line before the reset")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst)
        c.close()
        wait_for(lambda: "[tcp in:srv] Error: read ECONNRESET" in f.logtext(), "the server side's log")
        a, _ = srv.accept()
        time.sleep(0.2)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst)
        a.close()
        wait_for(lambda: "connection lost to 127.0.0.1:%d" % sport in f.logtext(), "the client side's log")
        lines = [l.split(" - ", 1)[1] for l in f.logtext().splitlines() if "[tcp in:" in l and " - " in l]
        eq([l for l in lines if "ECONNRESET" in l or "lost" in l],
           ["[info] [tcp in:srv] Error: read ECONNRESET", "[info] [tcp in:cli] Error: read ECONNRESET",
            "[info] [tcp in:cli] connection lost to 127.0.0.1:%d" % sport], "the log lines")
    srv.close()


@test
def tcp_request_round_trips():
    """tcp request against a Python line server: many requests in sequence
    (char mode), each a new connection, answered in order."""
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    stop = []

    def serve():
        srv.settimeout(0.5)
        while not stop:
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            data = b""
            while not data.endswith(b"\n"):
                d = c.recv(100)
                if not d:
                    break
                data += d
            c.sendall(b"re:" + data)
            c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    nodes = http_in("in", "/q", ["rq"]) + [
        {"id": "rq", "type": "tcp request", "server": "127.0.0.1", "port": str(port), "out": "char", "ret": "string",
         "splitc": "\\n", "newline": "", "trim": False, "wires": [["out"]]}]
    try:
        with Flow(nodes) as f:
            for i in range(20):
                f.post("/q", "n%d\n" % i)
                f.wait_results(i + 1)
            eq([m["payload"] for m in f.results()], ["re:n%d\n" % i for i in range(20)], "answers")
    finally:
        stop.append(1)
        t.join()
        srv.close()


# websocket ---------------------------------------------------------------------------------

class WS:
    """A minimal RFC 6455 client (masked frames) for the listener tests."""

    def __init__(self, port, path, protocols=None, timeout=5, ctx=None):
        import base64
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ctx:  # wss: an ssl.SSLContext
            self.s = ctx.wrap_socket(self.s, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, port, key))
        if protocols:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocols
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode()
        self.status = int(self.head.split()[1]) if self.head else 0
        import hashlib
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.accept_ok = ("sec-websocket-accept: " + want.lower()) in self.head.lower()

    @staticmethod
    def frame(data, op=1):
        """A masked frame with the mask 0 (the payload goes as it is): fast to make."""
        n = len(data)
        h = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
                                  if n < 65536 else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        return h + b"\0\0\0\0" + data

    def send(self, data, op=None):
        if isinstance(data, str):
            data, op = data.encode(), op or 1
        op = op or 2
        mask = os.urandom(4)
        n = len(data)
        h = bytes([0x80 | op])
        if n < 126:
            h += bytes([0x80 | n])
        elif n < 65536:
            h += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            h += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if n < 65536 else \
            (int.from_bytes(data, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.s.sendall(h + mask + masked)

    def _need(self, k):
        while len(self.buf) < k:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d

    def recv(self):
        """(opcode, payload) of the next frame."""
        self._need(2)
        op, n = self.buf[0] & 15, self.buf[1] & 127
        hl = 2
        if n == 126:
            self._need(4)
            n, hl = int.from_bytes(self.buf[2:4], "big"), 4
        elif n == 127:
            self._need(10)
            n, hl = int.from_bytes(self.buf[2:10], "big"), 10
        self._need(hl + n)
        data, self.buf = self.buf[hl:hl + n], self.buf[hl + n:]
        return op, data

    def close(self):
        self.s.close()


def ws_echo_flow(path="/ws/echo", wholemsg="false"):
    return [{"id": "L", "type": "websocket-listener", "path": path, "wholemsg": wholemsg},
            {"id": "wi", "type": "websocket in", "server": "L", "client": "", "wires": [["wo", "out"]]},
            {"id": "wo", "type": "websocket out", "server": "L", "client": "", "wires": []}]


@test
def websocket_listener_echo_and_session():
    nodes = ws_echo_flow()
    # only the small messages are written out (a 3 MB Buffer as JSON is slow to log)
    nodes[1]["wires"] = [["wo", "small"]]
    nodes.append({"id": "small", "type": "switch", "property": "payload.length", "propertyType": "msg",
                  "rules": [{"t": "lt", "v": "1000", "vt": "num"}], "checkall": "true", "outputs": 1,
                  "wires": [["out"]]})
    with Flow(nodes) as f:
        a = WS(f.port, "/ws/echo", "p1, p2")
        eq(a.status, 101, "handshake")
        assert a.accept_ok and "sec-websocket-protocol: p1" in a.head.lower(), a.head
        b = WS(f.port, "/ws/echo")
        a.send("hello")
        eq(a.recv(), (1, b"hello"), "text echoed to its sender only")
        b.send(bytes([0, 255, 1]))
        eq(b.recv(), (2, bytes([0, 255, 1])), "binary echoed")
        # fragmented text, a ping in the middle
        a.s.sendall(bytes([0x01, 0x83]) + b"\0\0\0\0" + b"abc")
        a.send(b"pi", op=9)
        a.s.sendall(bytes([0x80, 0x82]) + b"\0\0\0\0" + b"de")
        eq(a.recv(), (10, b"pi"), "pong")
        eq(a.recv(), (1, b"abcde"), "fragments joined")
        # a large message
        big = os.urandom(3 * 1024 * 1024)
        b.send(big)
        eq(b.recv(), (2, big), "3 MB binary")
        r = f.wait_results(3)
        eq(r[0]["payload"], "hello", "websocket in payload")
        eq(r[0]["_session"]["type"], "websocket", "session")
        assert r[0]["_session"]["id"] != r[1]["_session"]["id"], "one session per client"
        # a bad handshake and a path nobody listens on
        bad = socket.create_connection(("127.0.0.1", f.port), timeout=5)
        bad.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        assert bad.recv(100).startswith(b"HTTP/1.1 400"), "missing key"
        bad.close()
        c = WS(f.port, "/ws/other")
        eq(c.status, 404, "unknown path")
        # unmasked client frame: a protocol error, closed with 1002
        a.s.sendall(bytes([0x81, 0x01]) + b"x")
        op, data = a.recv()
        eq((op, data[:2]), (8, b"\x03\xea"), "close 1002")
        a.close()
        b.close()


@test
def websocket_10mb_frames_while_http_answers():
    import threading
    nodes = ws_echo_flow() + [
        {"id": "ping", "type": "http in", "url": "/ping", "method": "get", "wires": [["pr"]]},
        {"id": "pr", "type": "http response", "statusCode": "", "headers": {}, "wires": []}]
    nodes[1]["wires"] = [["wo"]]
    with Flow(nodes) as f:
        a = WS(f.port, "/ws/echo", timeout=30)
        big = os.urandom(10 * 1024 * 1024)
        done = []

        def pump():
            for _ in range(3):
                a.send(big)
                op, data = a.recv()
                done.append(op == 2 and data == big)
        t = threading.Thread(target=pump)
        t.start()
        worst = 0
        while t.is_alive():
            t0 = time.time()
            urllib.request.urlopen("http://127.0.0.1:%d/ping" % f.port, timeout=10).read()
            worst = max(worst, time.time() - t0)
            time.sleep(0.05)
        t.join()
        eq(done, [True] * 3, "10 MB frames echoed")
        assert worst < 1.0, "an HTTP answer took %.2f s" % worst
        a.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


@test
def websocket_10000_idle_clients_memory_bounded():
    """10,000 websocket clients upgraded on one listener and left idle:
    Carmine's resident memory grows by a bounded amount per client (the
    connection's state, not buffers sized for traffic), an idle loop costs
    no CPU, and a client among them still gets its echo at once (the loop
    waits in epoll: a wake-up costs what is ready, not what is open)."""
    import resource
    want = 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want + 1000:
        print("# skipped: RLIMIT_NOFILE hard limit %d is below %d" % (hard, want + 1000))
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want + 1000 if hard == resource.RLIM_INFINITY else
                                                max(soft, min(hard, want + 1000)), hard))
    req = ("GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    nodes = ws_echo_flow()
    nodes[1]["wires"] = [["wo"]]
    # a sanitizer build: ASan's allocator (redzones, quarantine) and checks
    # cost several times the memory and CPU
    sanitized = b"libasan" in subprocess.run(["ldd", CARMINE], capture_output=True).stdout
    slack = 8 if sanitized else 1
    socks = []
    try:
        with Flow(nodes) as f:
            pid = f.proc.pid
            probe = WS(f.port, "/ws/echo")
            probe.send("warm")
            eq(probe.recv(), (1, b"warm"), "echo before")
            before = rss_kb(pid)
            ok = 0
            for i in range(want):
                s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
                s.sendall(req)
                socks.append(s)
                if i % 250 == 249:
                    for x in socks[-250:]:
                        ok += x.recv(4096).startswith(b"HTTP/1.1 101")
            eq(ok, want, "clients upgraded")
            time.sleep(1.0)
            after = rss_kb(pid)
            per = (after - before) / want
            print("# %d idle websocket clients: RSS %d kB -> %d kB, %.2f kB per client" % (want, before, after, per))
            assert per < 6.0 * slack, "%.2f kB of resident memory per idle client" % per
            c0 = cpu_s(pid)
            time.sleep(2.0)
            idle = cpu_s(pid) - c0
            assert idle < 0.1 * slack, "%.2f s of CPU in 2 s with idle clients" % idle
            t0, c0 = time.time(), cpu_s(pid)
            for i in range(500):
                probe.send("m%d" % i)
                eq(probe.recv(), (1, ("m%d" % i).encode()), "echo among idle clients")
            took, cpu = time.time() - t0, cpu_s(pid) - c0
            print("# 500 echoes among them: %.3f s, %.3f CPU s" % (took, cpu))
            assert cpu < 0.5 * slack, "%.3f CPU s for 500 echoes beside %d idle clients" % (cpu, want)
            probe.close()
    finally:
        for s in socks:
            s.close()


@test
def websocket_broadcast_and_wholemsg():
    nodes = ws_echo_flow("/ws/all", "true") + http_in("in", "/say", ["wo2"]) + [
        {"id": "wo2", "type": "websocket out", "server": "L", "client": "", "wires": []}]
    nodes[1]["wires"] = [["out"]]  # no echo here
    with Flow(nodes) as f:
        a, b = WS(f.port, "/ws/all"), WS(f.port, "/ws/all")
        time.sleep(0.2)
        f.post("/say", {"x": 1})
        for c in (a, b):
            op, data = c.recv()
            m = json.loads(data)
            eq((op, m["payload"]), (1, {"x": 1}), "the whole message to every client")
            assert "_session" not in m and "req" in m, m.keys()
        a.send('{"topic":"t","payload":5}')
        a.send("7")
        r = f.wait_results(2)
        eq((r[0]["topic"], r[0]["payload"]), ("t", 5), "a JSON object is the message")
        eq(r[1]["payload"], 7, "other JSON is the payload")
        a.close()
        b.close()


@test
def websocket_many_clients_in_one_turn():
    """What a loop turn batches (runtime/net/tcpconn.c: the turn's receives
    and sends each in one io_uring call): 150 clients, more than one batch
    of 128, get a broadcast, then each sends 12 frames at once, 1 byte to
    30 kB (beyond a receive slot of 4 kB and a batched write of 16 kB): every
    echo comes back whole and in order. The same with io_uring off
    (CARMINE_NO_URING: one recv(2) and one send(2) each)."""
    sizes = [1, 17, 125, 126, 4095, 4096, 4097, 16383, 16384, 16385, 30000, 2]
    for env in ({}, {"CARMINE_NO_URING": "1"}):
        nodes = ws_echo_flow("/ws/many") + http_in("in", "/say", ["wo2"]) + [
            {"id": "wo2", "type": "websocket out", "server": "L", "client": "", "wires": []}]
        nodes[1]["wires"] = [["wo"]]
        with Flow(nodes, env=env) as f:
            cs = [WS(f.port, "/ws/many", timeout=30) for _ in range(150)]
            time.sleep(0.3)
            f.post("/say", "hello all")
            for i, c in enumerate(cs):
                eq(c.recv(), (1, b"hello all"), "the broadcast, client %d %r" % (i, env))
            want = {}
            for i, c in enumerate(cs):
                want[i] = [(b"%d:%d:" % (i, k)).ljust(sizes[(i + k) % len(sizes)], b"x") for k in range(12)]
                c.s.sendall(b"".join(WS.frame(m) for m in want[i]))
            for i, c in enumerate(cs):
                for k, m in enumerate(want[i]):
                    op, d = c.recv()
                    if (op, d) != (1, m):
                        raise AssertionError("client %d echo %d %r: got op %d, %d bytes %r, want %d bytes"
                                             % (i, k, env, op, len(d), d[:20], len(m)))
            for c in cs:
                c.close()


@test
def websocket_client_node_to_python_server():
    """websocket-client against a Python server: subprotocol, headers, text
    and binary both ways, reconnect after the server drops it."""
    import base64, hashlib, threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    nodes = [{"id": "C", "type": "websocket-client", "path": "ws://127.0.0.1:%d/feed?x=1" % port, "tls": "",
              "wholemsg": "false", "hb": "0", "subprotocol": "chat, v2",
              "headers": [{"keyType": "other", "keyValue": "X-Test", "valueType": "other", "valueValue": "yes"}]},
             {"id": "ci", "type": "websocket in", "server": "", "client": "C", "wires": [["out"]]},
             {"id": "co", "type": "websocket out", "server": "", "client": "C", "wires": []}] + \
        http_in("in", "/send", ["co"])

    def accept():
        c, _ = srv.accept()
        c.settimeout(5)
        req = b""
        while b"\r\n\r\n" not in req:
            req += c.recv(4096)
        text = req.decode()
        key = [l.split(":", 1)[1].strip() for l in text.split("\r\n") if l.lower().startswith("sec-websocket-key")][0]
        acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: chat\r\n\r\n" % acc).encode())
        return c, text

    def frame(op, data):
        return bytes([0x80 | op, len(data)]) + data

    def read_frame(c):
        h = c.recv(2)
        n = h[1] & 127
        if n == 126:
            n = int.from_bytes(c.recv(2), "big")
        mask = c.recv(4)
        data = b""
        while len(data) < n:
            data += c.recv(n - len(data))
        return h[0] & 15, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    with Flow(nodes) as f:
        c, req = accept()
        assert req.startswith("GET /feed?x=1 HTTP/1.1"), req
        assert "Sec-WebSocket-Protocol: chat, v2" in req and "X-Test: yes" in req, req
        c.sendall(frame(1, b"from server") + frame(2, b"\x01\x02"))
        r = f.wait_results(2)
        eq([m["payload"] for m in r], ["from server", {"type": "Buffer", "data": [1, 2]}], "received")
        f.post("/send", "to server")
        eq(read_frame(c), (1, b"to server"), "sent, masked")
        c.close()  # dropped: the node connects again after 3 s
        c2, _ = accept()
        c2.sendall(frame(1, b"again"))
        r = f.wait_results(3)
        eq(r[2]["payload"], "again", "after reconnecting")
        c2.close()
    srv.close()

# TLS ---------------------------------------------------------------------------------------

def make_certs():
    """A test CA, a server certificate it signed (localhost, 127.0.0.1) and
    a self-signed one, made here with the openssl CLI."""
    d = tmpdir("crm-tls-")

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Carmine Test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem",
         "-days", "2", "-extfile", "ext.cnf")
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "bad.key", "-out", "bad.pem", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return {k: os.path.join(d, k) for k in ("ca.pem", "srv.pem", "srv.key", "bad.pem", "bad.key")}


def tls_config(id, ca="", cert="", key="", verify=True, servername=""):
    return {"id": id, "type": "tls-config", "cert": cert, "key": key, "ca": ca, "certname": "", "keyname": "",
            "caname": "", "servername": servername, "verifyservercert": verify, "alpnprotocol": ""}


class TLSServer:
    """A Python TLS server on loopback: each connection's bytes (up to a
    newline) are answered with "re:" + them; what arrived is kept."""

    def __init__(self, cert, key, greet=b""):
        import ssl, threading
        self.greet = greet
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(16)
        self.srv.settimeout(0.3)
        self.got, self.errors, self.stopped = [], [], False
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        import threading
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        try:
            c.settimeout(5)
            t = self.ctx.wrap_socket(c, server_side=True)
            if self.greet:
                t.sendall(self.greet)
            data = b""
            while not data.endswith(b"\n"):
                d = t.recv(4096)
                if not d:
                    break
                data += d
            self.got.append(data)
            t.sendall(b"re:" + data)
            t.close()
        except Exception as e:
            self.errors.append(str(e))
            c.close()

    def close(self):
        self.stopped = True
        self.t.join()
        self.srv.close()


def wait_for(cond, what, timeout=8.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


@test
def tls_tcp_in_server_tcp_out_and_request_clients():
    """tcp in as a TLS server (Python's ssl client checks it with the test
    CA), tcp out as a TLS client checking the Python server with the CA, and
    tcp request over TLS (Node-RED's TLSSocket checks nothing: a self-signed
    server still answers)."""
    import ssl
    crt = make_certs()
    good = TLSServer(crt["srv.pem"], crt["srv.key"])
    bad = TLSServer(crt["bad.pem"], crt["bad.key"])
    lport = free_port()
    nodes = [tls_config("srvtls", cert=crt["srv.pem"], key=crt["srv.key"]),
             tls_config("catls", ca=crt["ca.pem"]),
             {"id": "ti", "type": "tcp in", "server": "server", "host": "", "port": str(lport), "tls": "srvtls",
              "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "", "trim": False,
              "wires": [["out", "rep"]]},
             {"id": "rep", "type": "change", "rules": [{"t": "set", "p": "payload", "pt": "msg", "to": "ack\n",
                                                        "tot": "str"}], "wires": [["to"]]},
             {"id": "to", "type": "tcp out", "host": "", "port": "", "beserver": "reply", "base64": False,
              "end": False, "wires": []},
             {"id": "tc", "type": "tcp out", "host": "127.0.0.1", "port": str(good.port), "beserver": "client",
              "base64": False, "end": False, "tls": "catls", "wires": []},
             {"id": "rq", "type": "tcp request", "server": "127.0.0.1", "port": str(bad.port), "out": "char",
              "ret": "string", "splitc": "\\n", "newline": "", "trim": False, "tls": "catls", "wires": [["out"]]}] + \
        http_in("a", "/tc", ["tc"]) + http_in("b", "/rq", ["rq"])
    try:
        with Flow(nodes) as f:
            ctx = ssl.create_default_context(cafile=crt["ca.pem"])
            with socket.create_connection(("127.0.0.1", lport), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as c:
                    c.sendall(b"hello\n")
                    eq(c.recv(100), b"ack\n", "reply over TLS on the tcp in's connection")
            r = f.wait_results(1)
            eq(r[0]["payload"], "hello", "tcp in got the decrypted line")
            eq(r[0]["ip"], "::ffff:127.0.0.1", "peer address")
            wait_for(lambda: "connected to 127.0.0.1:%d" % good.port in f.logtext(), "tcp out connected")
            f.post("/tc", "to good\n")
            wait_for(lambda: good.got, "the TLS server got the tcp out's write")
            eq(good.got, [b"to good\n"], "tcp out over TLS")
            f.post("/rq", "q1\n")
            r = f.wait_results(2)
            eq(r[1]["payload"], "re:q1\n", "tcp request over TLS, the server's certificate not checked")
            # a plain (not TLS) client gets no message through
            with socket.create_connection(("127.0.0.1", lport), timeout=5) as c:
                c.sendall(b"plain\n")
                try:
                    c.recv(100)
                except OSError:
                    pass
            time.sleep(0.3)
            eq(len(f.results()), 2, "no message from a client that does not speak TLS")
    finally:
        good.close()
        bad.close()


@test
def tls_bad_certificate_refused():
    """A client checking certificates meets a self-signed server certificate
    or the wrong name: the connection is refused with Node's error text
    (tcp in/out log it, as Node-RED does) and the disconnected status. A
    tls-config with half a key pair or a missing file logs Node-RED's error."""
    crt = make_certs()
    bad = TLSServer(crt["bad.pem"], crt["bad.key"], greet=b"hi\n")
    good = TLSServer(crt["srv.pem"], crt["srv.key"])
    nodes = [tls_config("catls", ca=crt["ca.pem"]), tls_config("sysdefault"),
             tls_config("wrongname", ca=crt["ca.pem"], servername="foo.example"),
             tls_config("noverify", ca=crt["ca.pem"], verify=False),
             tls_config("halfpair", cert=crt["srv.pem"]), tls_config("noca", ca="/nonexistent/ca.pem"),
             {"id": "ti", "type": "tcp in", "server": "client", "host": "127.0.0.1", "port": str(bad.port),
              "tls": "catls", "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "",
              "trim": False, "wires": [["out"]]},
             {"id": "ti2", "type": "tcp in", "server": "client", "host": "127.0.0.1", "port": str(good.port),
              "tls": "sysdefault", "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "",
              "trim": False, "wires": [["out"]]},
             {"id": "tc", "type": "tcp out", "host": "127.0.0.1", "port": str(good.port), "beserver": "client",
              "base64": False, "end": False, "tls": "wrongname", "wires": []},
             {"id": "ti3", "type": "tcp in", "server": "client", "host": "127.0.0.1", "port": str(bad.port),
              "tls": "noverify", "datamode": "stream", "datatype": "utf8", "newline": "\\n", "topic": "",
              "trim": False, "wires": [["out"]]},
             {"id": "st", "type": "status", "scope": ["ti", "tc"], "wires": [["out"]]}]
    try:
        with Flow(nodes, settings={"socketReconnectTime": 60000}) as f:
            wait_for(lambda: "Error: self-signed certificate" in f.logtext(), "the self-signed refusal")
            # tls-config's own checks, in Node-RED's words
            assert "[tls-config:halfpair] No certificate/key file provided" in f.logtext(), f.logtext()
            assert "[tls-config:noca] Error: ENOENT: no such file or directory, open '/nonexistent/ca.pem'" in \
                f.logtext(), f.logtext()
            wait_for(lambda: "Error: unable to verify the first certificate" in f.logtext(), "no CA")
            wait_for(lambda: "error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's "
                             "altnames: Host: foo.example. is not in the cert's altnames: DNS:localhost, "
                             "IP Address:127.0.0.1" in f.logtext(), "the name mismatch")
            # verifyservercert false: the self-signed server's line arrives
            wait_for(lambda: any(m.get("payload") == "hi" for m in f.results()), "the unchecked server's line")
            st = [(m["status"]["source"]["id"], m["status"].get("fill"), m["status"].get("text"))
                  for m in f.results() if "status" in m]
            assert ("ti", "red", "common.status.disconnected") in st, st
            assert ("tc", "red", "common.status.disconnected") in st, st
            assert ("ti", "green", "common.status.connected") not in st, st
            assert bad.errors and good.errors, (bad.errors, good.errors)
    finally:
        bad.close()
        good.close()


@test
def tls_websocket_client_wss():
    """websocket-client to wss:// URLs: with the test CA a Python TLS
    WebSocket server is reached both ways; a self-signed server is refused
    (status error on the websocket in, no message), as Node's ws does."""
    import base64, hashlib, ssl, threading
    crt = make_certs()

    def server(cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = free_port()
        srv.bind(("127.0.0.1", port))
        srv.listen(4)
        srv.settimeout(10)
        return ctx, srv, port
    gctx, gsrv, gport = server(crt["srv.pem"], crt["srv.key"])
    bctx, bsrv, bport = server(crt["bad.pem"], crt["bad.key"])

    def refuse():
        try:
            c, _ = bsrv.accept()
            bctx.wrap_socket(c, server_side=True).recv(10)
        except Exception:
            pass
    threading.Thread(target=refuse, daemon=True).start()
    nodes = [tls_config("catls", ca=crt["ca.pem"]),
             {"id": "C", "type": "websocket-client", "path": "wss://localhost:%d/feed" % gport, "tls": "catls",
              "wholemsg": "false", "hb": "0", "subprotocol": "", "headers": []},
             {"id": "ci", "type": "websocket in", "server": "", "client": "C", "wires": [["out"]]},
             {"id": "co", "type": "websocket out", "server": "", "client": "C", "wires": []},
             {"id": "B", "type": "websocket-client", "path": "wss://127.0.0.1:%d/x" % bport, "tls": "",
              "wholemsg": "false", "hb": "0", "subprotocol": "", "headers": []},
             {"id": "bi", "type": "websocket in", "server": "", "client": "B", "wires": [["out"]]},
             {"id": "st", "type": "status", "scope": ["bi"], "wires": [["out"]]}] + http_in("in", "/send", ["co"])
    with Flow(nodes) as f:
        c, _ = gsrv.accept()
        c.settimeout(5)
        t = gctx.wrap_socket(c, server_side=True)
        req = b""
        while b"\r\n\r\n" not in req:
            req += t.recv(4096)
        text = req.decode()
        assert text.startswith("GET /feed HTTP/1.1") and "Host: localhost:%d" % gport in text, text
        key = [l.split(":", 1)[1].strip() for l in text.split("\r\n") if l.lower().startswith("sec-websocket-key")][0]
        acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        t.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n" + bytes([0x81, 9]) + b"over wss!")
        wait_for(lambda: any(m.get("payload") == "over wss!" for m in f.results()), "a frame over wss")
        f.post("/send", "back")
        h = t.recv(2)
        mask = t.recv(4)
        data = t.recv(h[1] & 127)
        eq(bytes(b ^ mask[i % 4] for i, b in enumerate(data)), b"back", "sent over wss")
        wait_for(lambda: any(m.get("status", {}).get("text") == "common.status.error" for m in f.results()),
                 "the refused wss connection's status")
        eq([m for m in f.results() if m.get("_session", {}).get("type") == "websocket" and "status" not in m
            and m.get("payload") != "over wss!"], [], "nothing from the refused server")
        t.close()
    gsrv.close()
    bsrv.close()



@test
def websocket_listener_over_https():
    """With settings.https, Carmine's HTTP server speaks TLS and a
    websocket-listener on it serves wss:// (libmicrohttpd forwards the
    upgraded connection's TLS records; the connection's handle is released
    when it closes): echo, a large message, a client closing while another
    goes on, an HTTP request beside them, and a stop with clients still
    connected."""
    import ssl
    crt = make_certs()
    ctx = ssl.create_default_context(cafile=crt["ca.pem"])
    nodes = ws_echo_flow() + [
        {"id": "ping", "type": "http in", "url": "/ping", "method": "get", "wires": [["pr"]]},
        {"id": "pr", "type": "http response", "statusCode": "", "headers": {}, "wires": []}]
    nodes[1]["wires"] = [["wo"]]
    with Flow(nodes, settings={"https": {"key": crt["srv.key"], "cert": crt["srv.pem"]}}) as f:
        a = WS(f.port, "/ws/echo", ctx=ctx, timeout=10)
        eq(a.status, 101, "handshake over TLS")
        assert a.accept_ok, a.head
        b = WS(f.port, "/ws/echo", ctx=ctx, timeout=10)
        a.send("hello")
        eq(a.recv(), (1, b"hello"), "text echoed over TLS")
        # libmicrohttpd 0.9.75 forwarded these upgraded TLS connections 4 bytes
        # at a time (its emergency buffer) until crm_httpd_upgrade_buffers
        # (runtime/httpd_conn.c): 2 MB took 60-100 s, about 0.2 s now
        big = os.urandom(2 * 1024 * 1024)
        t0 = time.time()
        b.send(big)
        eq(b.recv(), (2, big), "2 MB binary over TLS")
        assert time.time() - t0 < 10, "2 MB echoed over wss:// in %.1f s" % (time.time() - t0)
        for i in range(20):  # clients come and go; the others keep working
            c = WS(f.port, "/ws/echo", ctx=ctx, timeout=10)
            c.send("c%d" % i)
            eq(c.recv(), (1, ("c%d" % i).encode()), "a short-lived client")
            c.close()
        a.send(b"\x03\xe8", op=8)
        eq(a.recv(), (8, b"\x03\xe8"), "close answered")
        a.close()
        b.send("still here")
        eq(b.recv(), (1, b"still here"), "the other client after one closed")
        body = urllib.request.urlopen("https://127.0.0.1:%d/ping" % f.port, timeout=10, context=ctx).read()
        eq(body is not None, True, "https request beside the websocket")
        # b stays connected while carmine stops (Flow's exit): no crash, no sanitizer report
    assert f.proc.returncode in (0, -signal.SIGTERM), "carmine exited with %r" % f.proc.returncode


@test
def editor_comms_over_https():
    """The editor's /comms socket over https stays open and carries the
    debug sidebar's messages (libmicrohttpd forwards an upgraded TLS
    connection only until its handle is released)."""
    import ssl
    crt = make_certs()
    ctx = ssl.create_default_context(cafile=crt["ca.pem"])
    nodes = [
        {"id": "dbg_in", "type": "http in", "url": "/dbg", "method": "get", "wires": [["dbg", "dbg_r"]]},
        {"id": "dbg", "type": "debug", "active": True, "tosidebar": True, "complete": "payload",
         "targetType": "msg", "wires": []},
        {"id": "dbg_r", "type": "http response", "statusCode": "", "headers": {}, "wires": []}]
    with Flow(nodes, settings={"https": {"key": crt["srv.key"], "cert": crt["srv.pem"]}}) as f:
        c = WS(f.port, "/comms", ctx=ctx, timeout=10)
        eq(c.status, 101, "/comms handshake over TLS")
        c.send(json.dumps({"subscribe": "debug"}))
        time.sleep(0.3)
        for i in range(3):
            urllib.request.urlopen("https://127.0.0.1:%d/dbg?n=%d" % (f.port, i), timeout=10, context=ctx).read()
            seen = ""
            while '"debug"' not in seen:
                op, data = c.recv()
                eq(op, 1, "a text frame from /comms")
                seen = data.decode()
            assert "dbg" in seen, seen
        c.close()
        # one more stays connected while carmine stops: no crash, no sanitizer report
        c2 = WS(f.port, "/comms", ctx=ctx, timeout=10)
        eq(c2.status, 101, "a second /comms client")
    assert f.proc.returncode in (0, -signal.SIGTERM), "carmine exited with %r" % f.proc.returncode


def main():
    only = sys.argv[1:]
    passed = failed = 0
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        # timing on a shared 2-core machine: a failed test runs once more
        for attempt in (1, 2):
            try:
                t()
                print("ok - " + t.__name__ + (" (second run)" if attempt == 2 else ""))
                passed += 1
                break
            except Exception:
                lines = traceback.format_exc().splitlines()
                if attempt == 1:
                    print("# %s failed, running it again: %s" % (t.__name__, lines[-1][:200]))
                    continue
                print("not ok - " + t.__name__)
                for line in lines:
                    print("    " + line)
                failed += 1
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
