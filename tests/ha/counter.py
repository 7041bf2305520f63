# counter.py: a tiny HTTP API for the HA tests: answers every GET with "ok"
# and counts requests per path; GET /count returns the counts as JSON
# (and "at", the server's monotonic clock in seconds when it took them).
#   python3 counter.py PORT
import http.server, json, sys, threading, time
counts = {}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/count":
            with lock: # "at": when these counts were taken (s), for rates
                body = json.dumps(dict(counts, at=time.monotonic())).encode()
        else:
            with lock:
                counts[self.path] = counts.get(self.path, 0) + 1
            body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
