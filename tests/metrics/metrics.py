#!/usr/bin/env python3
"""metrics.py BUILD_DIR: GET /metrics and bounded memory under overload
(issue 21). Starts carmine (tests/metrics/flows.json) several times on
free loopback ports below 32768, prints "ok - ..." / "not ok - ..." lines.

  counters: known traffic (N http requests, M injects, every third one an
            error caught by a catch node) while /metrics is scraped; every
            scrape parses (a small parser of the text format 0.0.4 below),
            counters never go back nor past what was sent, and once the
            traffic settles they equal it exactly
  auth:     adminAuth set: 401 without a token, 200 with a "read" token
  off:      metrics not enabled: 404
  overload: nodeInputQueueMaxLength 20; a flow rate-limited to 10 msg/s
            gets 200 req/s for 5 s: 503 with Retry-After at once, the flow
            never holds more than 20, RSS stays bounded, and afterwards
            requests answer 200 and every queue is back to 0; a flood of
            injects into a busy function is dropped, counted exactly and
            warned about once per node
"""
import http.client
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
HERE = os.path.dirname(os.path.abspath(__file__))
FLOWS = os.path.join(HERE, "flows.json")
# bcryptjs.hashSync("secretpw", 8)
HASH = "$2b$08$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2"


def check(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond or not detail else " (%s)" % detail), flush=True)
    return cond


# The text format 0.0.4 ------------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % NAME)
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class FormatError(Exception):
    pass


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise FormatError("bad labels: %r" % text)
        if m.group(1) in labels:
            raise FormatError("label %s twice" % m.group(1))
        labels[m.group(1)] = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    return labels


def family_of(name, fams):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and fams.get(base, {}).get("type") in ("histogram", "summary"):
            if suffix == "_bucket" and fams[base]["type"] != "histogram":
                continue
            return base
    return name


def parse(text):
    """{family: {type, help, samples: [(name, labels, value)]}}; raises FormatError."""
    if not text.endswith("\n"):
        raise FormatError("no final newline")
    fams, done, current, series = {}, set(), None, set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line[7:].split(" ", 1)
            if not re.fullmatch(NAME, parts[0]) or len(parts) < 2:
                raise FormatError("bad line %r" % line)
            name = parts[0]
            if name in done:
                raise FormatError("family %s is not contiguous" % name)
            if current and current != name:
                done.add(current)
            current = name
            f = fams.setdefault(name, {"type": "untyped", "help": None, "samples": []})
            if f["samples"]:
                raise FormatError("%s: HELP/TYPE after its samples" % name)
            if line.startswith("# HELP "):
                f["help"] = parts[1]
            else:
                if parts[1] not in TYPES:
                    raise FormatError("%s: bad type %s" % (name, parts[1]))
                f["type"] = parts[1]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise FormatError("bad sample %r" % line)
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), m.group(3)
        try:
            v = float(value)
        except ValueError:
            raise FormatError("bad value %r" % line)
        fam = family_of(name, fams)
        if fam != current:
            raise FormatError("sample %s outside its family's block (%s)" % (name, current))
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError("series twice: %r" % line)
        series.add(key)
        fams.setdefault(fam, {"type": "untyped", "help": None, "samples": []})["samples"].append((name, labels, v))
    for name, f in fams.items():
        if f["help"] is None:
            raise FormatError("%s has no HELP" % name)
        if f["type"] == "counter":
            if not name.endswith("_total"):
                raise FormatError("counter %s does not end in _total" % name)
            for s in f["samples"]:
                if s[2] < 0 or s[0] != name:
                    raise FormatError("counter sample %r" % (s,))
        if f["type"] == "histogram":
            groups = {}
            for n, labels, v in f["samples"]:
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
                if n == name + "_bucket":
                    g["buckets"].append((math.inf if labels["le"] == "+Inf" else float(labels["le"]), v))
                elif n == name + "_sum":
                    g["sum"] = v
                elif n == name + "_count":
                    g["count"] = v
                else:
                    raise FormatError("histogram sample %s" % n)
            for key, g in groups.items():
                b = sorted(g["buckets"])
                if not b or b[-1][0] != math.inf or g["count"] is None or g["sum"] is None:
                    raise FormatError("histogram %s %r incomplete" % (name, key))
                if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                    raise FormatError("histogram %s %r buckets not cumulative" % (name, key))
                if b[-1][1] != g["count"]:
                    raise FormatError("histogram %s %r: +Inf bucket %s != count %s" % (name, key, b[-1][1], g["count"]))
    return fams


def value(fams, metric, **want):
    """The sum of the samples called metric whose labels include want."""
    fam = family_of(metric, fams)
    total, found = 0.0, False
    for n, labels, v in fams.get(fam, {}).get("samples", []):
        if n == metric and all(labels.get(k) == x for k, x in want.items()):
            total += v
            found = True
    return total if found else None


# Processes -------------------------------------------------------------------------

def free_port():
    for _ in range(200):
        p = random.randint(20000, 31999)  # below the ephemeral range
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                pass
    raise RuntimeError("no free port")


class Carmine:
    def __init__(self, settings):
        self.dir = tempfile.mkdtemp(prefix="carmine-metrics.")
        self.port = free_port()
        sp = os.path.join(self.dir, "settings.json")
        with open(sp, "w") as f:
            json.dump(settings, f)
        self.logpath = os.path.join(self.dir, "log")
        self.logf = open(self.logpath, "w")
        self.p = subprocess.Popen([os.path.join(BUILD, "carmine"), "-p", str(self.port), "-s", sp, "-u", self.dir, FLOWS],
                                  stdout=self.logf, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def scrape(self, headers=None):
        st, h, body = self.request("GET", "/metrics", headers=headers)
        return st, h, body

    def rss_kb(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.logf.close()
        subprocess.run(["rm", "-rf", self.dir])


def settle(c, cond, seconds=10):
    """Scrapes until cond(fams) holds; the last parse."""
    end = time.time() + seconds
    while True:
        st, _, body = c.scrape()
        fams = parse(body)
        if cond(fams) or time.time() > end:
            return fams
        time.sleep(0.05)


# Counters --------------------------------------------------------------------------

def test_counters():
    N, M = 300, 60
    c = Carmine({"metrics": True})
    try:
        st, h, body = c.scrape()
        check("metrics on: GET /metrics answers 200", st == 200, st)
        check("Content-Type text/plain; version=0.0.4", h.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
              h.get("Content-Type"))
        try:
            parse(body)
            check("an idle scrape parses", True)
        except FormatError as e:
            check("an idle scrape parses", False, e)

        sent = {"http": 0, "inject": 0}
        statuses = []
        lock = threading.Lock()

        def http_traffic(k):
            conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
            for i in range(k, N, 4):
                conn.request("GET", "/m/%d" % i)
                r = conn.getresponse()
                r.read()
                with lock:
                    statuses.append(r.status)
                    sent["http"] += 1
                time.sleep(0.002)
            conn.close()

        def injects():
            for _ in range(M):
                c.request("POST", "/inject/inj")
                with lock:
                    sent["inject"] += 1
                time.sleep(0.01)

        threads = [threading.Thread(target=http_traffic, args=(k,)) for k in range(4)] + [threading.Thread(target=injects)]
        for t in threads:
            t.start()
        scrapes, bad, last, problems = 0, None, {}, []
        watched = [("carmine_http_requests_total", {"route": "/m/:id", "status": "200"}),
                   ("carmine_node_messages_in_total", {"id": "mres"}),
                   ("carmine_node_messages_out_total", {"id": "inj"}),
                   ("carmine_node_errors_total", {"id": "every3"}),
                   ("carmine_node_messages_in_total", {"id": "caught"})]
        while any(t.is_alive() for t in threads):
            with lock:
                cap_http, cap_inj = sent["http"] + 4, sent["inject"] + 1
            st, _, body = c.scrape()
            try:
                fams = parse(body)
            except FormatError as e:
                bad = e
                break
            scrapes += 1
            for name, labels in watched:
                v = value(fams, name, **labels) or 0
                key = name + repr(labels)
                if v < last.get(key, 0):
                    problems.append("%s went back %s -> %s" % (key, last[key], v))
                last[key] = v
                cap = cap_http if "http" in name or labels.get("id") == "mres" else cap_inj
                if v > cap:
                    problems.append("%s = %s, more than sent (%s)" % (key, v, cap))
            time.sleep(0.03)
        for t in threads:
            t.join()
        check("%d scrapes while the traffic flowed all parse" % scrapes, bad is None and scrapes >= 3, bad or scrapes)
        check("counters during the traffic never go back nor past what was sent", not problems, "; ".join(problems[:3]))
        check("all %d http requests answered 200" % N, statuses.count(200) == N, statuses[:5])

        E = M // 3
        expect = {
            ("carmine_http_requests_total", (("route", "/m/:id"), ("status", "200"), ("method", "GET"), ("flow", "tm"))): N,
            ("carmine_http_request_duration_seconds_count", (("route", "/m/:id"),)): N,
            ("carmine_node_messages_in_total", (("id", "min"),)): N,
            ("carmine_node_messages_out_total", (("id", "min"),)): N,
            ("carmine_node_messages_in_total", (("id", "mset"),)): N,
            ("carmine_node_messages_out_total", (("id", "mset"),)): N,
            ("carmine_node_messages_in_total", (("id", "mres"),)): N,
            ("carmine_node_messages_in_total", (("id", "inj"),)): M,
            ("carmine_node_messages_out_total", (("id", "inj"),)): M,
            ("carmine_node_messages_in_total", (("id", "every3"),)): M,
            ("carmine_node_messages_out_total", (("id", "every3"),)): M - E,
            ("carmine_node_errors_total", (("id", "every3"),)): E,
            ("carmine_node_messages_in_total", (("id", "sink"),)): M - E,
            ("carmine_node_messages_in_total", (("id", "catch"),)): E,
            ("carmine_node_messages_out_total", (("id", "catch"),)): E,
            ("carmine_node_messages_in_total", (("id", "caught"),)): E,
            ("carmine_node_errors_total", (("id", "mset"),)): 0,
            ("carmine_context_operations_total", (("store", "memory"), ("op", "get"))): M,
            ("carmine_context_operations_total", (("store", "memory"), ("op", "set"))): M,
            ("carmine_node_messages_dropped_total", ()): 0,
            ("carmine_node_queue_depth", ()): 0,
        }

        def all_equal(fams):
            return all(value(fams, n, **dict(l)) == v for (n, l), v in expect.items())

        fams = settle(c, all_equal)
        for (n, l), v in expect.items():
            got = value(fams, n, **dict(l))
            check("after the traffic: %s{%s} = %d" % (n, ",".join("%s=%s" % kv for kv in l), v), got == v, got)
        check("the node labels carry type, name and flow",
              value(fams, "carmine_node_errors_total", id="every3", type="function", name="every third fails",
                    flow="tm") == E)
        check("input-queue high-water mark seen (change node >= 1)",
              (value(fams, "carmine_node_queue_depth_max", id="mset") or 0) >= 1)
        check("loop busy time counted", (value(fams, "carmine_loop_busy_seconds_total", flow="tm") or 0) > 0)
        check("loop inbox lag observed", (value(fams, "carmine_loop_inbox_lag_seconds_count", flow="tm") or 0) > 0)
        check("histogram: the answers are under 10 s",
              value(fams, "carmine_http_request_duration_seconds_bucket", route="/m/:id", le="10") == N)
        check("process RSS reported", (value(fams, "process_resident_memory_bytes") or 0) > 1e6)
    finally:
        c.stop()


# Auth and off ------------------------------------------------------------------------

def token(c, user, scope):
    body = urllib.parse.urlencode({"client_id": "node-red-admin", "grant_type": "password", "scope": scope,
                                   "username": user, "password": "secretpw"})
    st, _, out = c.request("POST", "/auth/token", body=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(out).get("access_token") if st == 200 else None


def test_auth():
    auth = {"type": "credentials", "users": [{"username": "admin", "password": HASH, "permissions": "*"},
                                              {"username": "reader", "password": HASH, "permissions": "read"}]}
    c = Carmine({"metrics": {"enabled": True}, "adminAuth": auth})
    try:
        st, _, _ = c.scrape()
        check("adminAuth set: GET /metrics without a token answers 401", st == 401, st)
        st, _, _ = c.scrape({"Authorization": "Bearer nonsense"})
        check("adminAuth set: a bad token answers 401", st == 401, st)
        t = token(c, "reader", "read")
        st, _, body = c.scrape({"Authorization": "Bearer %s" % t})
        ok = st == 200
        try:
            parse(body)
        except FormatError:
            ok = False
        check("a user with the \"read\" permission scrapes it ({\"enabled\": true} form)", ok and t, st)
    finally:
        c.stop()
    c = Carmine({"adminAuth": auth})
    try:
        st, _, _ = c.scrape()
        check("metrics off (the default): 404, even with adminAuth and no token", st == 404, st)
    finally:
        c.stop()
    c = Carmine({"metrics": False})
    try:
        st, _, _ = c.scrape()
        check("metrics false: 404", st == 404, st)
        st, _, _ = c.request("GET", "/m/1")
        check("the flows still serve", st == 200, st)
    finally:
        c.stop()


# Overload --------------------------------------------------------------------------

def test_overload():
    LIMIT, RATE, FACTOR, SECONDS, INJECTS = 20, 10, 20, 5, 40
    c = Carmine({"metrics": True, "nodeInputQueueMaxLength": LIMIT, "httpRequestTimeout": 30000})
    try:
        for _ in range(3):
            c.request("GET", "/slow")
        time.sleep(0.5)
        rss_before = c.rss_kb()
        def burst(injects):
            results, lock, stop = [], threading.Lock(), threading.Event()
            target = RATE * FACTOR
            T0 = time.time() + 0.2
            nthreads = 200  # at most LIMIT of them wait for a 200; the others keep the pace

            def client(k):
                conn, i = None, k
                while True:
                    at = T0 + i / target
                    if at > T0 + SECONDS:
                        break
                    d = at - time.time()
                    i += nthreads
                    if d > 0:
                        time.sleep(d)
                    elif -d > nthreads / target:
                        continue  # this thread waited for a 200: its missed turns are skipped, not sent late in a burst
                    t = time.time()
                    try:
                        if conn is None:
                            conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=20)
                        conn.request("GET", "/slow")
                        r = conn.getresponse()
                        r.read()
                        res = (r.status, r.getheader("Retry-After"), time.time() - t, t)
                    except OSError as e:
                        res = ("error %s" % e, None, time.time() - t, t)
                        conn = None
                    with lock:
                        results.append(res)
                if conn:
                    conn.close()

            inj_status = []

            def flood():
                conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
                for _ in range(injects):
                    conn.request("POST", "/inject/dinj")
                    r = conn.getresponse()
                    r.read()
                    inj_status.append(r.status)
                conn.close()

            threads = [threading.Thread(target=client, args=(k,)) for k in range(nthreads)] + [threading.Thread(target=flood)]
            for t in threads:
                t.start()
            rss_during, pending_max, scrape_errors = [], 0, []
            while any(t.is_alive() for t in threads):
                rss_during.append(c.rss_kb())
                st, _, body = c.scrape()
                try:
                    fams = parse(body)
                    pending_max = max(pending_max, value(fams, "carmine_flow_http_pending", flow="to") or 0)
                except FormatError as e:
                    scrape_errors.append(str(e))
                time.sleep(0.2)
            for t in threads:
                t.join()
            took = time.time() - T0
            return results, inj_status, rss_during, pending_max, scrape_errors, took, T0

        results, inj_status, rss_during, pending_max, scrape_errors, took, T0 = burst(INJECTS)
        sent = len(results)
        last_start = max(r[3] for r in results) - T0
        slow200 = max([r[2] for r in results if r[0] == 200] or [0])
        ok200 = [r for r in results if r[0] == 200]
        r503 = [r for r in results if r[0] == 503]
        other = [r for r in results if r[0] not in (200, 503)]
        print("# overload: %d requests in %.1f s (%.0f/s, the flow takes %d/s): %d answered 200, %d 503; "
              "RSS %d kB before, max %d kB during; the last sent at %.1f s, the slowest 200 took %.1f s" %
              (sent, took, sent / took, RATE, len(ok200), len(r503), rss_before, max(rss_during or [0]), last_start,
               slow200))
        offered = sum(1 for r in results if r[3] - T0 <= SECONDS) / SECONDS
        check("offered ~%dx what the flow takes (%.0f req/s against %d/s)" % (FACTOR, offered, RATE),
              offered >= 0.85 * RATE * FACTOR, offered)
        check("503s appear", len(r503) > sent / 2, len(r503))
        check("every 503 carries Retry-After", all(r[1] == "1" for r in r503))
        check("503s answer at once (slowest %.3f s)" % max([r[2] for r in r503] or [0]),
              max([r[2] for r in r503] or [0]) < 1.0)
        check("no other status (no 504, no error)", not other, other[:3])
        check("the flow never held more than %d requests (max seen %d)" % (LIMIT, pending_max), pending_max <= LIMIT)
        check("the requests taken are those the rate allows",
              len(ok200) <= RATE * (took + 1) + LIMIT, len(ok200))
        check("scrapes under load parse", not scrape_errors, scrape_errors[:1])
        check("RSS bounded during the burst (+%d kB)" % (max(rss_during or [0]) - rss_before),
              max(rss_during or [0]) - rss_before < 32 * 1024)

        # recovery
        fams = settle(c, lambda f: value(f, "carmine_flow_http_pending", flow="to") == 0 and
                      value(f, "carmine_node_queue_depth") == 0, 15)
        check("after the burst: no request pending", value(fams, "carmine_flow_http_pending", flow="to") == 0)
        check("after the burst: every input queue back to 0", value(fams, "carmine_node_queue_depth") == 0)
        after = [c.request("GET", "/slow")[0] for _ in range(5)]
        check("after the burst: requests answer 200 again", after == [200] * 5, after)
        fams = parse(c.scrape()[2])
        check("carmine_http_requests_total{status=503} = the 503s the client saw",
              value(fams, "carmine_http_requests_total", route="/slow", status="503") == len(r503))
        check("carmine_http_requests_total{status=200} = the 200s (burst, warm-up, after)",
              value(fams, "carmine_http_requests_total", route="/slow", status="200") == len(ok200) + 8)
        check("carmine_flow_http_refused_total = the 503s",
              value(fams, "carmine_flow_http_refused_total", flow="to") == len(r503))
        check("RSS after the burst bounded (+%d kB)" % (c.rss_kb() - rss_before), c.rss_kb() - rss_before < 32 * 1024)

        # drops at a busy node's input queue
        check("all %d injects accepted by the Admin API" % INJECTS, inj_status.count(200) == INJECTS)
        g = lambda n, i: value(fams, n, id=i) or 0
        took_, drop_ = (lambda i: g("carmine_node_messages_in_total", i)), (lambda i: g("carmine_node_messages_dropped_total", i))
        print("# drops: inject took %d, dropped %d; split took %d, dropped %d; busy function took %d, dropped %d" %
              (took_("dinj"), drop_("dinj"), took_("dsplit"), drop_("dsplit"), took_("busy"), drop_("busy")))
        check("the busy function's full queue dropped messages (%d)" % drop_("busy"), drop_("busy") > 0)
        check("every inject is taken or dropped: %d + %d = %d" % (took_("dinj"), drop_("dinj"), INJECTS),
              took_("dinj") + drop_("dinj") == INJECTS)
        check("every message the inject sent is taken or dropped by the split",
              took_("dsplit") + drop_("dsplit") == g("carmine_node_messages_out_total", "dinj"))
        check("every message the split sent is taken or dropped by the function (%d)" % g("carmine_node_messages_out_total", "dsplit"),
              took_("busy") + drop_("busy") == g("carmine_node_messages_out_total", "dsplit"))
        check("queue high-water marks within the limit",
              all(g("carmine_node_queue_depth_max", i) <= LIMIT for i in ("dinj", "dsplit", "busy")))
        log = c.log()
        warned = [l for l in log.splitlines() if "input queue full" in l]
        names = {"dinj": "flood", "dsplit": "fifty", "busy": "busy 2 ms"}
        dropping = [names[i] for i in names if drop_(i) > 0]
        check("one warning per dropping node (%d lines, %d nodes)" % (len(warned), len(dropping)),
              len(warned) == len(dropping) and all(any(":%s]" % n in l for l in warned) for n in dropping), warned[:3])
        check("one 503 warning for the flow", sum("answering 503 with Retry-After" in l for l in log.splitlines()) == 1)

        # the same burst again: memory comes back to where the first one left it (nothing kept per request)
        settle(c, lambda f: value(f, "carmine_flow_http_pending", flow="to") == 0, 15)
        rss_after1 = c.rss_kb()
        results, _, rss_during, pending_max, _, _, _ = burst(0)
        settle(c, lambda f: value(f, "carmine_flow_http_pending", flow="to") == 0 and
               value(f, "carmine_node_queue_depth") == 0, 15)
        rss_after2 = c.rss_kb()
        print("# second burst: %d requests, %d 503; RSS %d kB after the first, max %d kB during, %d kB after" %
              (len(results), sum(r[0] == 503 for r in results), rss_after1, max(rss_during or [0]), rss_after2))
        check("a second burst: 503s again and the flow held at most %d (max seen %d)" % (LIMIT, pending_max),
              sum(r[0] == 503 for r in results) > len(results) / 2 and pending_max <= LIMIT)
        check("a second burst leaves RSS where the first did (%+d kB)" % (rss_after2 - rss_after1),
              rss_after2 - rss_after1 < 2048)
    finally:
        c.stop()


def test_supervisor():
    """The supervisor's API serves /metrics: restarts per replica slot."""
    d = tempfile.mkdtemp(prefix="carmine-metrics-sup.")
    sp = os.path.join(d, "settings.json")
    with open(sp, "w") as f:
        json.dump({"metrics": True, "userDir": d, "supervisor": {"restartBackoffMs": 100}}, f)
    port = free_port()
    while True:
        api = port + 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", api))
                break
            except OSError:
                port = free_port()
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([os.path.join(BUILD, "carmine"), "--replicas", "2", "-p", str(port), "--admin-port", str(api),
                          "-s", sp, FLOWS], stdout=log, stderr=subprocess.STDOUT)

    def get(path):
        c = http.client.HTTPConnection("127.0.0.1", api, timeout=5)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def ready():
        try:
            st, body = get("/status")
            procs = json.loads(body)["processes"]
            return st == 200 and len(procs) == 2 and all(x["state"] == "ready" for x in procs), procs
        except (OSError, ValueError, KeyError):
            return False, []

    def wait_ready():
        end = time.time() + 20
        while time.time() < end:
            ok, procs = ready()
            if ok:
                return procs
            time.sleep(0.1)
        return None

    try:
        procs = wait_ready()
        check("supervisor: 2 replicas ready", procs is not None)
        st, body = get("/metrics")
        fams = parse(body)
        check("supervisor: /metrics parses, no restarts yet",
              st == 200 and value(fams, "carmine_supervisor_replica_restarts_total") == 0, body[:200])
        victim = [x for x in procs if x["replica"] == 2][0]["pid"]
        os.kill(victim, 9)
        time.sleep(0.3)
        check("supervisor: the killed replica comes back", wait_ready() is not None)
        fams = parse(get("/metrics")[1])
        check("supervisor: restarts_total{replica=2} = 1, {replica=1} = 0",
              value(fams, "carmine_supervisor_replica_restarts_total", replica="2") == 1 and
              value(fams, "carmine_supervisor_replica_restarts_total", replica="1") == 0)
        check("supervisor: both replicas up",
              value(fams, "carmine_supervisor_replica_up") == 2)
    finally:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        subprocess.run(["rm", "-rf", d])


def main():
    for t in (test_counters, test_auth, test_overload, test_supervisor):
        try:
            t()
        except Exception as e:  # a crash of the test is a failure, not a silent pass
            check("%s ran to its end" % t.__name__, False, repr(e))


if __name__ == "__main__":
    main()
