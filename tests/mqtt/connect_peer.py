#!/usr/bin/env python3
"""connect_peer.py PORT: a one-connection MQTT peer that reads the CONNECT it
is sent, answers CONNACK (v5: success) and prints the CONNECT's protocol
level, flags and v5 properties as JSON on one line, then exits."""
import json, socket, struct, sys

def varint(b, i):
    v, m = 0, 1
    while True:
        c = b[i]; i += 1
        v += (c & 0x7F) * m; m *= 128
        if not c & 0x80:
            return v, i

def props(b):
    out, i, up = {}, 0, {}
    names = {0x11: ("sessionExpiryInterval", 4), 0x21: ("receiveMaximum", 2), 0x27: ("maximumPacketSize", 4),
             0x22: ("topicAliasMaximum", 2), 0x19: ("requestResponseInformation", 1),
             0x17: ("requestProblemInformation", 1)}
    while i < len(b):
        pid = b[i]; i += 1
        if pid == 0x26:
            kl = struct.unpack(">H", b[i:i + 2])[0]; k = b[i + 2:i + 2 + kl].decode(); i += 2 + kl
            vl = struct.unpack(">H", b[i:i + 2])[0]; v = b[i + 2:i + 2 + vl].decode(); i += 2 + vl
            up[k] = v
        elif pid in names:
            n, size = names[pid]
            out[n] = int.from_bytes(b[i:i + size], "big"); i += size
        else:
            out["unknown_%d" % pid] = True
            break
    if up:
        out["userProperties"] = up
    return out

srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(1); srv.settimeout(15)
c, _ = srv.accept(); c.settimeout(5)
data = b""
while True:
    data += c.recv(4096)
    if len(data) >= 2:
        rl, i = varint(data, 1)
        if len(data) >= i + rl:
            break
body = data[i:i + rl]
nl = struct.unpack(">H", body[0:2])[0]
j = 2 + nl
level, flags = body[j], body[j + 1]
j += 4
res = {"type": data[0] >> 4, "protocol": body[2:2 + nl].decode(), "level": level, "clean": bool(flags & 2)}
if level == 5:
    pl, k = varint(body, j)
    res["properties"] = props(body[k:k + pl])
    c.sendall(bytes([0x20, 3, 0, 0, 0]))
else:
    c.sendall(bytes([0x20, 2, 0, 0]))
print(json.dumps(res, sort_keys=True), flush=True)
c.close()
