#!/usr/bin/env bash
# The article's experiment in one command (README: tools/setup.sh &&
# tools/run-article.sh). Builds Carmine, then runs four scenarios side by side,
# each with the exported load-tester (its URL supplied through ${API_URL},
# see tools/article.py) pressing "Start a test" through the Admin API and
# following the full ramp (about a minute):
#   one instance and an HA pair (carmine --replicas 2) of flows/api.json
#   (as exported), and the same of flows/api-bottleneck.json (rate mode).
# Writes results/<scenario>.csv, .svg (and .png when Chromium is installed),
# results/figures.json and results/summary.md. BUILD_DIR defaults to build;
# CARMINE=/path/to/carmine uses that binary and skips the build.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-results}

if [ -z "${CARMINE:-}" ]; then
  echo "== building ($BUILD_DIR)"
  [ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" >/dev/null
  mkdir -p "$BUILD_DIR"
  if ! ninja -C "$BUILD_DIR" >"$BUILD_DIR/build.log" 2>&1; then
    tail -n 30 "$BUILD_DIR/build.log"; echo "run-article: the build failed"; exit 1
  fi
  CARMINE=$BUILD_DIR/carmine
fi
mkdir -p "$OUT"

echo "== running the load-tester against the API flows (the ramp takes about a minute)"
python3 tools/article.py "$CARMINE" "$OUT" \
  one-instance-api:flows/api.json:1 \
  ha-pair-api:flows/api.json:2 \
  one-instance-bottleneck:flows/api-bottleneck.json:1 \
  ha-pair-bottleneck:flows/api-bottleneck.json:2

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
figs = json.load(open(os.path.join(out, "figures.json")))
lines = ["| scenario | API flow | replicas | peak target (calls/s) | peak achieved (calls/s) | achieved at the end of the plateau |",
         "| --- | --- | --- | --- | --- | --- |"]
for f in figs:
    lines.append("| %s | %s | %d | %.1f | %.1f | %.1f |" % (f["name"], f["api"], f["replicas"], f["peak_target"],
                 f["peak_achieved"], f["plateau_achieved"]))
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "== results in $OUT/ (CSV, SVG$(command -v chromium >/dev/null 2>&1 && echo ', PNG'))"
