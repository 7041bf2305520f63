# flood.py PORT N: opens N connections at once, each sends a complete GET and reads
# the answer; prints how many got 200, something else (closed), or no connection.
# With ../../shared/reliability/probe.py running beside it: issue 22, item 7.
import asyncio, sys, time

port, n = int(sys.argv[1]), int(sys.argv[2])
res = {"ok": 0, "other": 0, "refused": 0}
async def one(i):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
        w.write(b"GET /q?f=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
        data = await asyncio.wait_for(r.read(), 30)
        w.close()
        res["ok" if data.startswith(b"HTTP/1.1 200") else "other"] += 1
    except Exception:
        res["refused"] += 1
async def main():
    t0 = time.time()
    await asyncio.gather(*[one(i) for i in range(n)])
    print("flood %d: %s in %.1f s" % (n, res, time.time() - t0))
asyncio.run(main())
