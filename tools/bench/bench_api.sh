#!/usr/bin/env bash
# bench_api.sh: the article's API flow (flows/api.json, verbatim) under wrk with
# 100 connections, the figure of issue 4, beside the ceiling of this machine
# (tools/bench/mhd_delay.c: bare libmicrohttpd answering after the same
# 100 ms) and Node-RED 4.1.15 when tools/bench/node_modules has it (run.sh
# installs it). Rounds alternate between the servers so that a busy moment
# of a shared machine hits all of them; each server gets a 1 s warm-up.
#
#   tools/bench/bench_api.sh [BUILD_DIR] [SECONDS] [ROUNDS]     (build, 30, 2)
#
# Prints one line per run (req/s, mean latency, p99) and the mean of each
# server. Why 30 s: every connection waits 100 ms per request, so a run
# loses about half a round per connection at its end (50 requests of 100
# connections); a 10 s run shows 0.5 % less than the server sustains, a
# 30 s run 0.17 %.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${2:-30}
ROUNDS=${3:-2}
PORT=${BENCH_PORT:-$((21000 + RANDOM % 20000))}
NR_RED=tools/bench/node_modules/node-red/red.js
TMP=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

for t in wrk curl gcc; do command -v "$t" >/dev/null || { echo "bench_api: $t is not installed" >&2; exit 1; }; done
[ -x "$BUILD/carmine" ] || { echo "bench_api: $BUILD/carmine is not built" >&2; exit 1; }
gcc -O2 -o "$TMP/mhd_delay" tools/bench/mhd_delay.c -lmicrohttpd -lpthread
KINDS="bare carmine"
if [ -f "$NR_RED" ] && command -v node >/dev/null; then
    KINDS="$KINDS nodered"
    echo 'module.exports = { credentialSecret: false, logging: { console: { level: "warn" } } };' >"$TMP/nr-settings.js"
fi

start() { # kind port
    case $1 in
        bare) "$TMP/mhd_delay" "$2" >/dev/null 2>&1 & ;;
        carmine) "$BUILD/carmine" -p "$2" flows/api.json >/dev/null 2>&1 & ;;
        nodered) node "$NR_RED" -u "$TMP/nr-user" -s "$TMP/nr-settings.js" -p "$2" flows/api.json >/dev/null 2>&1 & ;;
    esac
    PID=$!
    for _ in $(seq 600); do
        curl -s -o /dev/null "http://127.0.0.1:$2/api" && return 0
        sleep 0.05
    done
    echo "bench_api: $1 did not answer on :$2" >&2
    exit 1
}

for round in $(seq "$ROUNDS"); do
    for kind in $KINDS; do
        PORT=$((PORT + 1))
        start "$kind" "$PORT"
        wrk -t2 -c100 -d1s "http://127.0.0.1:$PORT/api" >/dev/null
        wrk -t2 -c100 -d"${SECS}s" --latency "http://127.0.0.1:$PORT/api" |
            awk -v k="$kind" -v r="$round" '/Latency  / {m=$2} / 99%/ {p=$2} /Requests\/sec/ {q=$2}
                END {printf "%-8s round %d: %8.2f req/s  mean %s  p99 %s\n", k, r, q, m, p}' | tee -a "$TMP/lines"
        kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
        PID=""
    done
done
echo "mean of $ROUNDS rounds of ${SECS} s (wrk -t2 -c100):"
awk '{n[$1]++; s[$1]+=$4} END {for (k in n) printf "  %-8s %8.2f req/s\n", k, s[k]/n[k]}' "$TMP/lines" | sort
