#!/usr/bin/env bash
# bench_ha.sh: throughput of flows/api-bottleneck.json (a delay node in rate
# mode: 10 msg/s per replica) with 1, 2 and 4 replicas under the supervisor
# (`carmine --replicas N`, SO_REUSEPORT), measured with wrk, and the ratios
# to the single replica (issue 7: >= 1.98x with 2, >= 3.9x with 4; the
# article's FlowForge reached 1.90x with 2).
#   BUILD_DIR=build tools/bench/bench_ha.sh [SECONDS] [CONNECTIONS]
# Loopback only; each run is bounded by SECONDS (default 10).
set -eu
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
CARMINE=$BUILD_DIR/carmine
SECS=${1:-10}
CONNS=${2:-100}
PORT=${BENCH_PORT:-$((20000 + RANDOM % 20000))}
command -v wrk >/dev/null || { echo "bench_ha: wrk is not installed (apt-get install wrk)"; exit 1; }
[ -x "$CARMINE" ] || { echo "bench_ha: $CARMINE not built"; exit 1; }
tmp=$(mktemp -d)
sup=""
cleanup() { [ -n "$sup" ] && kill "$sup" 2>/dev/null && wait "$sup" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# requests/s with N replicas
measure() {
  local n=$1
  cp flows/api-bottleneck.json "$tmp/flows.json"
  "$CARMINE" --replicas "$n" -p "$PORT" --admin-port $((PORT + 1)) "$tmp/flows.json" 2>"$tmp/sup-$n.log" &
  sup=$!
  for _ in $(seq 100); do
    ready=$(curl -s "http://127.0.0.1:$((PORT + 1))/status" | grep -o '"state":"ready"' | wc -l)
    [ "$ready" -ge "$n" ] && break
    sleep 0.05
  done
  # -H Connection: close: every request is a new connection, which the
  # kernel spreads over the replicas again (as nginx does by default)
  wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 30s -H 'Connection: close' "http://127.0.0.1:$PORT/api" >"$tmp/wrk-$n.txt"
  kill "$sup"; wait "$sup" 2>/dev/null || true; sup=""
  local rps errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk-$n.txt")
  errs=$(awk '/Socket errors|Non-2xx/ {print}' "$tmp/wrk-$n.txt" | tr '\n' ' ')
  echo "replicas=$n requests/s=$rps ${errs:+($errs)}" >&2
  echo "$rps"
}

r1=$(measure 1)
r2=$(measure 2)
r4=$(measure 4)
awk -v a="$r1" -v b="$r2" -v c="$r4" 'BEGIN {
  printf "api-bottleneck (10 msg/s per replica): 1 replica %.2f req/s, 2 replicas %.2f req/s, 4 replicas %.2f req/s\n", a, b, c
  printf "ratio 2/1 = %.3f (target >= 1.98, article 1.90)\n", b / a
  printf "ratio 4/1 = %.3f (target >= 3.9)\n", c / a
  exit !(b / a >= 1.98 && c / a >= 3.9)
}'
