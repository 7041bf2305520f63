#!/usr/bin/env python3
"""Turns Node-RED's own example flows into FLOWTEST case sources, so that the
recorder can ask Node-RED 4.1.15 what each example does and `carmine test`
can check that Carmine does the same (issue 15: every example that uses only
implemented core types loads *and runs*).

Each example becomes one case: its debug nodes become `helper` capture sinks
(same id, so the wires into them stay), and every inject node is fired in
turn by sending it a message, as the editor's inject button does, with a
pause between them so each one's messages settle before the next.

Usage: tools/examples-to-cases.py EXAMPLES_DIR > cases.json
Then:  cd ~/.cache/flowtest-record &&
       node flowtest.js generate --verify --out DIR cases.json
--verify drops the examples whose two runs differ (timestamps, files, timers).
"""
import json
import os
import re
import sys

# Examples that need the outside world are not turned into cases: the watch
# examples wait for somebody to change a file, and the websocket clients
# call Node-RED's default port.
# http request nodes are taken out of the examples that have them (they call
# Node-RED's default port); the http in endpoints are called by the case.
OUTSIDE_TYPES = {"watch", "websocket in", "websocket out", "websocket-client",
                 "websocket-listener"}
# The tcp and udp examples talk to themselves on ports next to Node-RED's
# 1880; the cases move them up to where the tests keep their ports.
SOCKET_TYPES = {"tcp in", "tcp out", "tcp request", "udp in", "udp out"}
PORT_SHIFT = 29000

PAUSE_MS = 300


def http_steps(node):
    """One request per http in endpoint: a URL parameter becomes "Nick", a
    query carries name=Nick, a body is a short text."""
    path = re.sub(r":[A-Za-z_]\w*", "Nick", node.get("url", "/"))
    method = node.get("method", "get").upper()
    step = {"method": method, "path": path + "?name=Nick"}
    if method in ("POST", "PUT", "PATCH"):
        step["headers"] = {"Content-Type": "text/plain"}
        step["body"] = "Hello"
    return [{"http": step}, {"wait": PAUSE_MS}]


def case_for(rel, nodes):
    flow = []
    injects = []
    endpoints = []
    dropped = {n["id"] for n in nodes if n.get("type") == "http request"}
    for node in nodes:
        if node["id"] in dropped:
            continue
        node = dict(node)
        if "wires" in node:
            node["wires"] = [[t for t in port if t not in dropped] for port in node["wires"]]
        if node.get("type") in SOCKET_TYPES and str(node.get("port", "")).isdigit():
            node["port"] = str(int(node["port"]) + PORT_SHIFT)
        if node.get("type") == "http in":
            endpoints.append(node)
        if node.get("type") == "debug":
            node = {"id": node["id"], "type": "helper", "z": node.get("z")}
            if node["z"] is None:
                del node["z"]
        elif node.get("type") == "inject":
            injects.append(node)
        flow.append(node)
    steps = []
    volatile = ["_msgid"]
    if any(n.get("type") in SOCKET_TYPES for n in flow):
        # A client connects while its server may still be starting, and a
        # refused first attempt waits 10 s to retry (both runtimes): give
        # the sockets a second before the first button, as a user would.
        steps.append({"wait": 1000})
        volatile.append("port")  # the client's ephemeral port
    for node in injects:
        stamped = [prop.get("p") for prop in node.get("props", []) if prop.get("vt") == "date"]
        if node.get("payloadType") == "date":
            stamped.append("payload")
        volatile += [p for p in stamped if p and p not in volatile]
    # The order a reader of the example would press the buttons in: top to bottom.
    for node in sorted(injects, key=lambda n: (n.get("y", 0), n.get("x", 0))):
        steps.append({"send": {"node": node["id"], "msg": {}}})
        steps.append({"wait": PAUSE_MS})
    for node in sorted(endpoints, key=lambda n: (n.get("y", 0), n.get("x", 0))):
        steps += http_steps(node)
    return {"name": rel, "flow": flow, "steps": steps, "settle_ms": PAUSE_MS,
            # Injected timestamps and generated ids differ run to run.
            "gen": {"volatile": volatile}}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    cases = []
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if not name.endswith(".json"):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as f:
                nodes = json.load(f)
            types = {n.get("type") for n in nodes}
            if types & OUTSIDE_TYPES or not types & {"inject", "http in"}:
                continue
            cases.append(case_for(os.path.relpath(path, root), nodes))
    json.dump({"suite": "nodered-examples", "cases": cases}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
