"""A minimal WebSocket client (RFC 6455) on the socket module, enough for
the editor's /comms: text frames out (masked), frames in, close."""
import base64, json, os, socket, struct, time


class WS:
    def __init__(self, port, path="/comms", host="127.0.0.1", headers=None):
        self.s = socket.create_connection((host, port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise IOError("closed during the handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])
        if self.status != 101:
            raise IOError("handshake answered %d" % self.status)
        self.closed = False

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return False
            if not d:
                self.closed = True
                return False
            self.buf += d
        return True

    def frame(self, timeout=5.0):
        """(opcode, payload) of the next frame, or None on timeout/close."""
        deadline = time.time() + timeout
        if not self._need(2, deadline):
            return None
        op, n = self.buf[0] & 15, self.buf[1] & 127
        off = 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        if not self._need(off + n, deadline):
            return None
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, payload

    def messages(self, timeout=5.0):
        """The next text frame's JSON, or None."""
        f = self.frame(timeout)
        while f and f[0] != 1:
            if f[0] == 8:
                self.closed = True
                return None
            f = self.frame(timeout)
        return json.loads(f[1]) if f else None

    def wait_for(self, pred, timeout=5.0):
        """Items ({topic, data}) read until pred(item) holds; the matching one or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.messages(deadline - time.time())
            if m is None:
                return None
            for it in m if isinstance(m, list) else [m]:
                if pred(it):
                    return it
        return None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
