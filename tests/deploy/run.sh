#!/usr/bin/env bash
# run.sh: deploys on a single instance (POST /flows: v1, v2 and rev
# checks, refusals, the flows and credentials files, context, requests
# during deploys) and the editor's /comms WebSocket (tests/deploy/deploy_test.py).
# Prints one line per test and a last line "N passed, N failed".
#   BUILD_DIR=build tests/deploy/run.sh [TEST_NAME...]
cd "$(dirname "$0")/../.."
exec timeout 600 python3 tests/deploy/deploy_test.py "$@"
