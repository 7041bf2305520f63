#!/usr/bin/env bash
# run.sh: the companion's tests (docs/companion.md): npm node types running in
# a Node.js companion beside native nodes. tools/setup.sh installs node-red
# 4.1.15 into .deps/companion and the test userDir .deps/companion-test
# (node-red-contrib-moment from npm, the fixture module of this folder), so
# the test itself needs no network. Prints ok/not ok lines, then
# "N passed, N failed".   BUILD_DIR=build tests/companion/run.sh
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) CARMINE=$BUILD_DIR/carmine ;; *) CARMINE=$PWD/$BUILD_DIR/carmine ;; esac
USERDIR=$PWD/.deps/companion-test
for need in "$PWD/.deps/companion/node_modules/node-red/package.json" \
            "$USERDIR/node_modules/node-red-contrib-moment/package.json" \
            "$USERDIR/node_modules/node-red-contrib-carmine-fixture/package.json"; do
  if [ ! -f "$need" ]; then
    echo "not ok - $need is missing: run tools/setup.sh (it installs the companion's npm packages)"
    echo "0 passed, 1 failed"
    exit 1
  fi
done
# the fixture module may have changed since setup.sh copied it
cmp -s tests/companion/node-red-contrib-carmine-fixture/echo.js "$USERDIR/node_modules/node-red-contrib-carmine-fixture/echo.js" ||
  cp tests/companion/node-red-contrib-carmine-fixture/* "$USERDIR/node_modules/node-red-contrib-carmine-fixture/"
exec python3 tests/companion/test_companion.py "$CARMINE" "$USERDIR"
