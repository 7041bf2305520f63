#!/usr/bin/env bash
# run.sh: malformed and hostile HTTP against a running Carmine (issue 22:
# D6 request smuggling, D7 slowloris, ...). Starts carmine on a free
# loopback port with flows.json and settings.json, runs faults.py against
# it, prints each check and a last line "N passed, N failed".
#   BUILD_DIR=build tests/http-faults/run.sh
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
HERE=tests/http-faults
TMP=$(mktemp -d /tmp/carmine-http-faults.XXXXXX)
CPID=
cleanup() {
  [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
# the slowloris check opens 2,500 connections
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

port=0
for _ in $(seq 100); do
  p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+), where clients take their own ports
  ss -Htln "( sport = :$p )" | grep -q . || { port=$p; break; }
done
"$BUILD_DIR/carmine" -p "$port" -s "$HERE/settings.json" -u "$TMP" "$HERE/flows.json" >"$TMP/log" 2>&1 &
CPID=$!
for _ in $(seq 100); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),timeout=1)" 2>/dev/null && break
  sleep 0.05
done
out=$(timeout 120 python3 "$HERE/faults.py" "$port" 2>&1)
echo "$out"
if ! kill -0 "$CPID" 2>/dev/null; then
  echo "not ok - carmine died during the checks"; out="$out
not ok - died"
fi
pass=$(echo "$out" | grep -c '^ok - ')
fail=$(echo "$out" | grep -c '^not ok - ')
[ "$pass" -eq 0 ] && [ "$fail" -eq 0 ] && { cat "$TMP/log"; fail=1; }
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
