#!/usr/bin/env bash
# run.sh: the idle memory target (../shared/DESIGN.md: a flow without
# JavaScript or npm nodes keeps its ~6 MB), measured as tools/bench/run.sh
# does, see idle.py. Prints each check and a last line "N passed, N failed".
#   BUILD_DIR=build tests/idle/run.sh
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
source tests/lib/summary.sh
out=$(timeout 120 python3 tests/idle/idle.py "$BUILD_DIR" 2>&1)
echo "$out"
summarize "$out"
