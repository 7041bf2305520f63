#!/usr/bin/env python3
"""record.py: asks real Node-RED 4.1.15 (a running one: record.py PORT) the
requests of routes.py and writes what is compared into nodered-answers.json.
Run Node-RED as the tests run Carmine, on flows/api.json with a fresh
userDir and no settings file beyond its default one, e.g.
  cd ~/.cache/flowtest-record/nr && node node_modules/node-red/red.js -u /tmp/nr-ed -p 21880 flows.json"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from routes import REQUESTS, digest, fetch  # noqa: E402

port = int(sys.argv[1])
out = {}
for name, path, accept, kind in REQUESTS:
    status, headers, body = fetch(port, path, accept)
    out[name] = digest(kind, status, headers, body)
    if headers.get("etag"):
        out[name]["etag"] = headers["etag"].startswith('W/"')
    if headers.get("cache-control"):
        out[name]["cache-control"] = headers["cache-control"]
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "nodered-answers.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"recorded {len(out)} answers")
