# counter.py: a tiny HTTP API for the HA tests: answers every GET with "ok"
# and counts requests per path; GET /count returns the counts as JSON.
#   python3 counter.py PORT
import http.server, json, sys, threading
counts = {}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/count":
            with lock:
                body = json.dumps(counts).encode()
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
