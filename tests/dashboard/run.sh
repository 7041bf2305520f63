#!/usr/bin/env bash
# run.sh: the HTTP side of the companion (docs/companion.md, "HTTP" and
# "Dashboards"): routes, upgrades and WebSockets that hosted nodes add,
# reached through Carmine's port (test_proxy.py, with the fixture module of
# this folder), then real dashboards from npm in headless Chromium
# (test_dashboard.sh). tools/setup.sh installs node-red 4.1.15 into
# .deps/companion and the dashboards into .deps/dashboard-test, so the tests
# need no network. Prints ok/not ok lines, then "N passed, N failed".
#   BUILD_DIR=build tests/dashboard/run.sh
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) CARMINE=$BUILD_DIR/carmine ;; *) CARMINE=$PWD/$BUILD_DIR/carmine ;; esac
if [ ! -f "$PWD/.deps/companion/node_modules/node-red/package.json" ]; then
  echo "not ok - .deps/companion/node_modules/node-red is missing: run tools/setup.sh"
  echo "0 passed, 1 failed"
  exit 1
fi
out=$(python3 tests/dashboard/test_proxy.py "$CARMINE" 2>&1)
echo "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed'  # one summary line: the last
passed=$(grep -c '^ok - ' <<<"$out"); failed=$(grep -c '^not ok - ' <<<"$out")
grep -qE '^[0-9]+ passed, [0-9]+ failed' <<<"$out" || failed=$((failed + 1))

# real dashboards from npm in headless Chromium (SCREENSHOT=1 also saves
# docs/img/dashboard.png, the README's picture)
USERDIR=$PWD/.deps/dashboard-test
OUT=$PWD/$BUILD_DIR/dashboard-test
mkdir -p "$OUT"
browser() { # kind flows port
  local kind=$1 flows=$2 port=$3 shot=""
  "$CARMINE" -p "$port" -u "$USERDIR" "$flows" >"$OUT/$kind.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do grep -q '\[companion\] ready' "$OUT/$kind.log" && break; sleep 0.05; done
  [ "${SCREENSHOT:-0}" = 1 ] && [ "$kind" = dashboard ] && shot=docs/img/dashboard.png
  # the dashboard's run also kills the companion (unless it takes the screenshot)
  local cpid=""
  [ "$kind" = dashboard ] && [ -z "$shot" ] &&
    cpid=$(sed -n 's/.*\[companion\] started node (pid \([0-9]*\)).*/\1/p' "$OUT/$kind.log" | tail -n 1)
  local r; r=$(echo "# $kind ($flows)"; COMPANION_PID=$cpid node tests/dashboard/test_dashboard.js "$kind" "http://127.0.0.1:$port/" $shot 2>&1)
  echo "$r"
  passed=$((passed + $(grep -c '^ok - ' <<<"$r"))); failed=$((failed + $(grep -c '^not ok - ' <<<"$r")))
  grep -q '^ok - \|^not ok - ' <<<"$r" || { echo "not ok - $kind: the browser test printed nothing"; failed=$((failed + 1)); }
  kill "$pid"; wait "$pid" 2>/dev/null
  grep -v 'was killed by signal 9' "$OUT/$kind.log" | grep -q 'ERROR\|\[error\]' && { echo "not ok - $kind: errors in Carmine's log"; grep -i 'error' "$OUT/$kind.log" | head -5 | sed 's/^/    /'; failed=$((failed + 1)); }
}
if [ ! -f "$USERDIR/node_modules/node-red-dashboard/package.json" ] ||
   [ ! -f "$USERDIR/node_modules/@flowfuse/node-red-dashboard/package.json" ] ||
   [ ! -f .deps/npm/node_modules/playwright-core/package.json ]; then
  echo "not ok - the dashboards (.deps/dashboard-test) or playwright-core (.deps/npm) are missing: run tools/setup.sh"
  failed=$((failed + 1))
else
  # only ui_chart (Carmine has C code for it): the native /ui, no companion,
  # with node-red-dashboard installed all the same
  "$CARMINE" -p 24380 -u "$USERDIR" tests/article/ui-flow.json >"$OUT/native.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:24380/readyz && break; sleep 0.05; done
  charts=$(curl -s http://127.0.0.1:24380/ui/api/charts)
  kill "$pid"; wait "$pid" 2>/dev/null
  if grep -q '"id"' <<<"$charts" && ! grep -q companion "$OUT/native.log" &&
     ! "$CARMINE" check -u "$USERDIR" tests/article/ui-flow.json | grep -q hosted; then
    echo "ok - a flow with only ui_chart keeps the native /ui (no companion) though node-red-dashboard is installed"
    passed=$((passed + 1))
  else
    echo "not ok - a flow with only ui_chart keeps the native /ui  ($charts; $(head -c 300 "$OUT/native.log"))"
    failed=$((failed + 1))
  fi
  # without the module, carmine check names the package to install
  empty=$(mktemp -d)
  ck=$("$CARMINE" check -u "$empty" tests/dashboard/dashboard.json 2>/dev/null); rc=$?
  rm -rf "$empty"
  if [ $rc -eq 2 ] && grep -q "node gauge (ui_gauge): .*carmine install -u $empty node-red-dashboard" <<<"$ck"; then
    echo "ok - without node-red-dashboard, carmine check names it with the install line (exit 2)"
    passed=$((passed + 1))
  else
    echo "not ok - without node-red-dashboard, carmine check names it  (exit $rc: $ck)"
    failed=$((failed + 1))
  fi
  browser dashboard tests/dashboard/dashboard.json 24381
  browser flowfuse tests/dashboard/flowfuse.json 24382

  # two public flows (tests/dashboard/corpus.json) driven as their page drives
  # them, through socket.io and MQTT (a Mosquitto started here, stopped after);
  # test_corpus.js passes the same way against Node-RED 4.1.15 on these flows
  free_port() { local p; for _ in $(seq 50); do p=$((20000 + RANDOM % 12000)); ss -Htln "( sport = :$p )" | grep -q . || { echo $p; return; }; done; }
  mport=$(free_port) aport=$(free_port) cport=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mport" >"$OUT/corpus-mosquitto.conf"
  mosquitto -c "$OUT/corpus-mosquitto.conf" >"$OUT/corpus-mosquitto.log" 2>&1 &
  mpid=$!
  sed "s/@MQTT_PORT@/$mport/; s/@API_PORT@/$aport/" tests/dashboard/corpus.json >"$OUT/corpus.json"
  "$CARMINE" -p "$cport" -u "$USERDIR" "$OUT/corpus.json" >"$OUT/corpus.log" 2>&1 &
  cpid=$!
  # the dashboard adds its routes once its flows started: wait for a 200
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$cport/ui/" && break; sleep 0.1; done
  r=$(echo "# corpus (tests/dashboard/corpus.json)"; node tests/dashboard/test_corpus.js "http://127.0.0.1:$cport/" "$mport" "$aport" "$USERDIR/node_modules/ws" 2>&1)
  echo "$r"
  passed=$((passed + $(grep -c '^ok - ' <<<"$r"))); failed=$((failed + $(grep -c '^not ok - ' <<<"$r")))
  grep -q '^ok - \|^not ok - ' <<<"$r" || { echo "not ok - corpus: the test printed nothing"; failed=$((failed + 1)); }
  kill "$cpid" "$mpid" 2>/dev/null; wait "$cpid" "$mpid" 2>/dev/null
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
