#!/usr/bin/env bash
# run.sh: the companion's tests (docs/companion.md): npm node types running in
# a Node.js companion beside native nodes. tools/setup.sh installs node-red
# 4.1.15 into .deps/companion and the test userDir .deps/companion-test
# (node-red-contrib-moment and dayjs from npm, the fixture module of this folder), so
# the test itself needs no network. Prints ok/not ok lines, then
# "N passed, N failed".   BUILD_DIR=build tests/companion/run.sh
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) CARMINE=$BUILD_DIR/carmine ;; *) CARMINE=$PWD/$BUILD_DIR/carmine ;; esac
USERDIR=$PWD/.deps/companion-test
for need in "$PWD/.deps/companion/node_modules/node-red/package.json" \
            "$USERDIR/node_modules/node-red-contrib-moment/package.json" \
            "$USERDIR/node_modules/node-red-contrib-carmine-fixture/package.json" \
            "$USERDIR/node_modules/dayjs/package.json"; do
  if [ ! -f "$need" ]; then
    echo "not ok - $need is missing: run tools/setup.sh (it installs the companion's npm packages)"
    echo "0 passed, 1 failed"
    exit 1
  fi
done
# the fixture module may have changed since setup.sh copied it
diff -rq tests/companion/node-red-contrib-carmine-fixture "$USERDIR/node_modules/node-red-contrib-carmine-fixture" \
  >/dev/null 2>&1 || cp tests/companion/node-red-contrib-carmine-fixture/* "$USERDIR/node_modules/node-red-contrib-carmine-fixture/"
# every test_*.py here (harness.py is what they share); one summary line
pass=0 fail=0
for t in tests/companion/test_*.py; do
  echo "# $t"
  python3 "$t" "$CARMINE" "$USERDIR" | tee /tmp/carmine-companion-$$.out
  p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' /tmp/carmine-companion-$$.out | tail -1)
  f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' /tmp/carmine-companion-$$.out | tail -1)
  [ -n "$p" ] || { p=0; f=1; echo "not ok - $t ended without a summary"; }
  pass=$((pass + p)) fail=$((fail + f))
done
rm -f /tmp/carmine-companion-$$.out
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
