#!/usr/bin/env bash
# Builds Carmine and runs the whole test suite: unit tests, the project's flow
# tests, the Node-RED conformance cases and the JSONata suite. Prints one
# summary line per part and a last line "N passed, N failed"; exits non-zero
# on any failure. BUILD_DIR (default build) and MESON_ARGS pick the build,
# e.g. MESON_ARGS="-Db_sanitize=address,undefined" BUILD_DIR=build-asan.
# PARTS (default all) picks parts by name: unit flows conformance jsonata abi
# plugins article ha metrics editor dashboard, and those that other scripts add (e.g. PARTS="unit flows").
set -u
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" ${MESON_ARGS:-} >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
else
  meson setup --reconfigure "$BUILD_DIR" ${MESON_ARGS:-} >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD_DIR" >"$BUILD_DIR/build.log" 2>&1; then
  cat "$BUILD_DIR/build.log"; echo "0 passed, 1 failed"; exit 1
fi
if grep -q 'warning:' "$BUILD_DIR/build.log"; then
  grep 'warning:' "$BUILD_DIR/build.log"; echo "build: compiler warnings (see above)"; warn_fail=1
else
  warn_fail=0
fi

passed=0; failed=$warn_fail
want() { # is part $1 selected by PARTS?
  case " ${PARTS:-all} " in *" all "*|*" $1 "*) return 0 ;; esac
  return 1
}

add() { # add "N passed, N failed" from the last matching line of a file
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); echo "  (no summary line: counted as one failure)"; return; fi
  local p f; p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  passed=$((passed + p)); failed=$((failed + f))
}

# unit tests: one program each
u_pass=0; u_fail=0
want unit && for t in "$BUILD_DIR"/tests/test_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  if out=$("$t" 2>&1); then u_pass=$((u_pass + 1)); else u_fail=$((u_fail + 1)); echo "$out" | tail -n 20; echo "unit test $(basename "$t") FAILED"; fi
done
want unit && echo "unit: $u_pass passed, $u_fail failed"
passed=$((passed + u_pass)); failed=$((failed + u_fail))

run_part() { # name, command...
  local name=$1; shift
  want "$name" || return 0
  local log="$BUILD_DIR/test-$name.log"
  "$@" >"$log" 2>&1; local rc=$?
  # the failures with their reasons (a known failure's reasons are not news)
  awk '/^not ok/ {p = 1; print; next} /^ok / {p = 0} p && /^    / {print}' "$log" | head -n 200
  echo "$name: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1) (exit $rc)"
  add "$log"
  if [ $rc -ne 0 ] && ! grep -qE '^[0-9]+ passed, [1-9]' "$log"; then failed=$((failed + 1)); fi
}

# the conformance cases live in the repository (tools/refresh-conformance.sh
# copies them from the shared recordings beside the repository); --strict: a case whose node type is missing fails
run_part flows "$BUILD_DIR/carmine" test --strict --retry 1 tests/flows
run_part conformance "$BUILD_DIR/carmine" test --strict --retry 1 --expect-failures tests/conformance-known-failures.txt tests/conformance/nodered
run_part jsonata "$BUILD_DIR/carmine" jsonata --suite tests/conformance/jsonata --expect-failures tests/jsonata-known-failures.txt

# suites with their own scripts: the exported API, plugins built out of tree, the article end to end, HA
run_part abi tools/check-abi.sh
run_part plugins tools/test-plugins.sh
[ -x tests/article/run.sh ] && run_part article tests/article/run.sh
[ -x tests/ha/run.sh ] && run_part ha tests/ha/run.sh
[ -x tests/net/run.sh ] && run_part net tests/net/run.sh
[ -x tests/faults/run.sh ] && run_part faults tests/faults/run.sh
[ -x tests/http-faults/run.sh ] && run_part http-faults tests/http-faults/run.sh
[ -x tests/mqtt/run.sh ] && run_part mqtt tests/mqtt/run.sh
[ -x tests/deploy/run.sh ] && run_part deploy tests/deploy/run.sh
[ -x tests/companion/run.sh ] && run_part companion tests/companion/run.sh
[ -x tests/dashboard/run.sh ] && run_part dashboard tests/dashboard/run.sh
[ -x tests/metrics/run.sh ] && run_part metrics tests/metrics/run.sh
[ -x tests/idle/run.sh ] && run_part idle tests/idle/run.sh
[ -x tests/editor/run.sh ] && run_part editor tests/editor/run.sh
# the fuzz targets of tests/fuzz, FUZZ_SECONDS each (default 30; 0 skips) in their own
# clang build (build-fuzz): a crash, leak or timeout fails (tests/fuzz/README.md)
# the suite's fuzz run is the same every time (a fixed seed and number of runs
# after the regression inputs), so CI never fails on a new random find;
# tools/fuzz-run.sh TARGET SECONDS explores for real
export FUZZ_FLAGS=${FUZZ_FLAGS:-"-seed=1 -runs=${FUZZ_RUNS:-5000}"}
[ "${FUZZ_SECONDS:-30}" != 0 ] && run_part fuzz tools/fuzz-run.sh --all "${FUZZ_SECONDS:-30}"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
