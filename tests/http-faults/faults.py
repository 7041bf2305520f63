#!/usr/bin/env python3
"""faults.py PORT: malformed and hostile HTTP against a running Carmine
(tests/http-faults/flows.json, settings.json). Prints "ok - ..." or
"not ok - ..." per check. Raw sockets only: what a client library would
refuse to send is what these checks send."""
import asyncio, re, socket, sys, time

PORT = int(sys.argv[1])


def exchange(data, wait=2.0, shut=False):
    """Sends data, reads until the server closes or wait seconds pass.
    Returns (bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=wait)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out, closed, end = b"", False, time.time() + wait
    try:
        while time.time() < end:
            s.settimeout(max(0.01, end - time.time()))
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except (socket.timeout, TimeoutError):
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def statuses(out):
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]


results = []


def check(name, cond, detail=""):
    results.append(cond)
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else "  # " + detail), flush=True)


SMUGGLED = b"GET /q?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n"

# D6: each ambiguous framing gets 400 and a closed connection, and the
# request hidden behind it never runs (RFC 9112 6.1, 6.3; Node.js's llhttp)
smuggling = {
    "two Content-Length headers": b"GET /q HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
    "two equal Content-Length headers": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "Content-Length with Transfer-Encoding": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "Transfer-Encoding with a space before the colon": b"GET /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "a space inside a header name": b"GET /q HTTP/1.1\r\nHost: x\r\nContent Length: 4\r\n\r\n",
    "two Transfer-Encoding headers": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    "an unknown transfer coding": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    "chunked not the last coding": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
}
for name, head in smuggling.items():
    out, closed = exchange(head + SMUGGLED)
    st = statuses(out)
    check("D6 %s: 400 and closed" % name, st[:1] == [400] and closed and b"smuggled" not in out,
          "statuses %s closed %s %r" % (st, closed, out[:120]))

# what is not ambiguous still works: pipelining, a chunked body
out, _ = exchange(b"GET /q?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /q?n=2 HTTP/1.1\r\nHost: x\r\n\r\n", wait=1.5)
check("D6 two pipelined requests are both answered", statuses(out) == [200, 200] and b'{"n":"2"}' in out, repr(out[:200]))
out, _ = exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: Chunked\r\n\r\n"
                  b"3\r\nabc\r\n0\r\n\r\n", wait=1.5)
check("D6 a chunked body is read", statuses(out) == [200] and out.endswith(b"abc"), repr(out[:200]))


# D7: a head trickled a byte at a time is closed after httpHeadersTimeout
# (1.5 s in settings.json) however often a byte comes
async def trickle_closed():
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    w.write(b"GET /q HTTP/1.1\r\n")
    t0 = time.time()
    try:
        while time.time() - t0 < 8:
            w.write(b"X")
            await w.drain()
            try:
                if await asyncio.wait_for(r.read(100), 0.3) == b"":
                    return time.time() - t0
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        return time.time() - t0
    finally:
        w.close()
    return None

t = asyncio.run(trickle_closed())
check("D7 a request head not complete within httpHeadersTimeout is closed", t is not None and 1.0 < t < 4.5,
      "closed after %s s" % t)


# a complete head, then a body trickled a byte at a time: the body must be
# complete within httpBodyTimeout (1.5 s in settings.json; Node.js's
# requestTimeout, 300 s by default). Node.js answers a bare 408 and closes.
def trickle_body(pause, nbytes):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=0.2)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % nbytes)
    out, t0, closed = b"", time.time(), None
    sent = 0
    try:
        while time.time() - t0 < 8 and closed is None:
            if sent < nbytes:
                s.sendall(b"x")
                sent += 1
            try:
                b = s.recv(65536)
                if not b:
                    closed = time.time() - t0
                out += b
                if b and sent >= nbytes:
                    break
            except socket.timeout:
                pass
            time.sleep(pause)
    except (ConnectionError, OSError):
        closed = time.time() - t0
    s.close()
    return out, closed


out, closed = trickle_body(0.25, 1000)
check("a body trickled past httpBodyTimeout gets Node's bare 408 and is closed",
      closed is not None and 1.0 < closed < 4.5 and statuses(out) in ([408], []) and b"x" * 5 not in out,
      "closed after %s s, %r" % (closed, out[:120]))
out, closed = trickle_body(0.1, 5)
check("a slow body complete within httpBodyTimeout is answered", statuses(out) == [200] and out.endswith(b"xxxxx"),
      "%r" % out[:200])


# D7: 2,500 connections trickling their heads (more than the server's
# connection limit, maxRequestsInFlight + 1024) do not lock others out
def probe(n, spacing):
    lat, fails = [], []
    for _ in range(n):
        t0 = time.time()
        try:
            out, _ = exchange(b"GET /q?probe=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait=3)
            if out.startswith(b"HTTP/1.1 200"):
                lat.append(time.time() - t0)
            else:
                fails.append(out[:40])
        except OSError as e:
            fails.append(str(e))
        time.sleep(spacing)
    return lat, fails


async def slowloris(n, seconds):
    opened = 0

    async def one():
        nonlocal opened
        try:
            r, w = await asyncio.open_connection("127.0.0.1", PORT)
        except OSError:
            return
        opened += 1
        try:
            w.write(b"GET /q?a=1 HTTP/1.1\r\nHost: x\r\n")
            end = time.time() + seconds
            while time.time() < end:
                await asyncio.sleep(0.5)
                w.write(b"X")
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one()))
        if i % 200 == 199:
            await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(1.0)
    lat, fails = await loop.run_in_executor(None, probe, 40, 0.05)
    await asyncio.gather(*tasks)
    return opened, lat, fails

opened, lat, fails = asyncio.run(slowloris(2500, 5))
lat.sort()
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
print("# slowloris 2500 connections (%d opened): probe ok %d, failed %d, p50 %s, p99 %s" %
      (opened, len(lat), len(fails), lat[len(lat) // 2] if lat else None, p99))
check("D7 under a slowloris of 2,500 connections every probe is answered", not fails and len(lat) == 40,
      "failures %s" % fails[:3])
# a loose bound: CI machines are shared; the 10,000-connection figure is measured apart
check("D7 under a slowloris the probe's p99 stays under 1 s", p99 is not None and p99 < 1.0, "p99 %s" % p99)

out, _ = exchange(b"GET /q?after=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check("D7 the server answers after the slowloris", statuses(out) == [200], repr(out[:80]))


def read_to_end(s):
    """What the server sends until it closes; "<timeout or reset>" marks a wait cut short."""
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, TimeoutError, ConnectionResetError):
        out += b"<timeout or reset>"
    return out


# D12: a client that shuts its side down right after its request is closed
# unanswered on every route (a flow's answer could never reach it: the
# server reads the end of stream first). TCP_CORK makes the request and the
# FIN leave in one segment, so the server sees both before it dispatches.
def half_closed(data):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=3)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = read_to_end(s)
    s.close()
    return out


for name, req in [("a flow route", b"GET /q?hc=1 HTTP/1.0\r\n\r\n"),
                  ("a flow route, HTTP/1.1", b"GET /q?hc=2 HTTP/1.1\r\nHost: x\r\n\r\n"),
                  ("a flow route with a body", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nab"),
                  ("/healthz", b"GET /healthz HTTP/1.0\r\n\r\n"),
                  ("a path no route has", b"GET /nothere HTTP/1.0\r\n\r\n")]:
    outs = [half_closed(req) for _ in range(3)]
    check("D12 a half-closed client on %s is closed unanswered" % name, all(o == b"" for o in outs), repr(outs)[:200])
out, _ = exchange(b"GET /q?after=hc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check("D12 a client that keeps its side open is answered", statuses(out) == [200], repr(out[:80]))


# The same on a keep-alive connection whose first request was answered: the
# server knows from what each read left in the socket (TCP_INQ,
# runtime/httpd_recv.c) whether to look for the FIN, so the second request's
# FIN must be found after a first read that left nothing.
def keepalive_then_half_closed():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=3)
    s.sendall(b"GET /q?ka=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while True:  # the whole first answer: its head, then Content-Length bytes
        head, sep, body = first.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if sep and m and len(body) >= int(m.group(1)):
            break
        b = s.recv(65536)
        if not b:
            break
        first += b
    time.sleep(0.2)  # the answer's body is in and nothing else is waiting
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    s.sendall(b"GET /q?ka=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    rest = read_to_end(s)
    s.close()
    return first, rest


outs = [keepalive_then_half_closed() for _ in range(3)]
check("D12 a keep-alive client answered once, then half-closed after its next request, gets only the first answer",
      all(statuses(f) == [200] and r == b"" for f, r in outs), repr(outs)[:300])


# http request against a misbehaving upstream (a thread here): the node
# logs the error and, as Node-RED does, sends msg.payload "<error> : <url>"
def upstream():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve(c):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                b = c.recv(4096)
                if not b:
                    return
                head += b
            path = head.split(b" ")[1]
            if path == b"/garbage":
                c.sendall(b"garbage\r\nmore garbage\r\n\r\n")
            elif path == b"/big":  # chunked, 64 MB, far past httpRequestMaxBody (1 MB in settings.json)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
                for _ in range(1024):
                    c.sendall(chunk)
                c.sendall(b"0\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]

import threading
up = upstream()
out, _ = exchange(b"GET /fetch?port=%d&mode=ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % up, wait=5)
check("http request: a good upstream answers", statuses(out) == [200] and out.endswith(b"\r\n\r\nhello"), repr(out[-80:]))
out, _ = exchange(b"GET /fetch?port=%d&mode=garbage HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % up, wait=5)
check("http request: a garbage status line is Node's parse error, not Invalid URL",
      statuses(out) == [200] and out.endswith(b"RequestError: Parse Error: Expected HTTP/ : http://127.0.0.1:%d/garbage" % up),
      repr(out[-80:]))
t0 = time.time()
out, _ = exchange(b"GET /fetch?port=%d&mode=big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % up, wait=20)
check("http request: a chunked body past httpRequestMaxBody stops with an error naming the setting",
      statuses(out) == [200] and b"RequestError: the response body is larger than httpRequestMaxBody (1000000 bytes) : " in out,
      repr(out[-120:]))

sys.exit(0 if all(results) else 1)
