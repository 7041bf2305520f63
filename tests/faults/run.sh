#!/usr/bin/env bash
# run.sh: the fault tests (issue 22): each tests/faults/test_*.sh starts what
# it needs (carmine, redis-server) on loopback ports and injects one fault:
# a store that cannot be reached, a directory that cannot be written, a bad
# flow file. Prints each test's lines and a last line "N passed, N failed".
#   BUILD_DIR=build tests/faults/run.sh
cd "$(dirname "$0")"
passed=0
failed=0
for t in test_*.sh; do
  echo "# $t"
  out=$(timeout 180 bash "$t" 2>&1)
  rc=$?
  echo "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed'
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then
    echo "not ok - $t ended without a summary (exit $rc)"
    failed=$((failed + 1))
    continue
  fi
  p=${line%% passed*}
  f=${line#*passed, }
  f=${f%% failed*}
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$rc" -ne 0 ] && [ "$f" = 0 ] && { echo "not ok - $t exited $rc"; failed=$((failed + 1)); }
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
