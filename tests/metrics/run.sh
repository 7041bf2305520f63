#!/usr/bin/env bash
# run.sh: GET /metrics and bounded memory under overload (issue 21), see
# metrics.py. Prints each check and a last line "N passed, N failed".
#   BUILD_DIR=build tests/metrics/run.sh
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
source tests/lib/summary.sh
out=$(timeout 300 python3 tests/metrics/metrics.py "$BUILD_DIR" 2>&1)
echo "$out"
summarize "$out"
