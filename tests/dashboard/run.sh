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
echo "$out"
passed=$(grep -c '^ok - ' <<<"$out"); failed=$(grep -c '^not ok - ' <<<"$out")
grep -qE '^[0-9]+ passed, [0-9]+ failed' <<<"$out" || failed=$((failed + 1))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
