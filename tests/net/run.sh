#!/usr/bin/env bash
# run.sh: the file, exec, tcp, udp and websocket nodes against real files,
# processes and sockets on loopback (tests/net/net_test.py). Prints one line
# per test and a last line "N passed, N failed".
#   BUILD_DIR=build tests/net/run.sh [TEST_NAME...]
cd "$(dirname "$0")/../.."
exec timeout 600 python3 tests/net/net_test.py "$@"
