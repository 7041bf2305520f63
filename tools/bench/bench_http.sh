#!/bin/bash
# bench_http.sh: requests per second through http in -> change -> http
# response in carmine, beside a bare libmicrohttpd server answering the same
# GET (../shared/bench/mhd_hello.c, the ceiling), with wrk on loopback.
# Usage: tools/bench/bench_http.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
# Prints the two figures and the ratio. Needs wrk; stops what it started.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${2:-10}
CONNS=${3:-50}
THREADS=2
TMP=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

command -v wrk >/dev/null || { echo "bench_http: wrk is not installed" >&2; exit 1; }
[ -x "$BUILD/carmine" ] || { echo "bench_http: $BUILD/carmine not built" >&2; exit 1; }

cat > "$TMP/flow.json" <<'JSON'
[{"id":"t","type":"tab","label":"bench"},
 {"id":"in","type":"http in","z":"t","url":"/hello","method":"get","x":100,"y":50,"wires":[["ch"]]},
 {"id":"ch","type":"change","z":"t","rules":[{"t":"set","p":"payload","pt":"msg","to":"","tot":"date"}],"x":300,"y":50,"wires":[["out"]]},
 {"id":"out","type":"http response","z":"t","statusCode":"","headers":{},"x":500,"y":50,"wires":[]}]
JSON

gcc -O2 -o "$TMP/mhd_hello" ../shared/bench/mhd_hello.c -lmicrohttpd

wait_port() { # port
    i=0
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "bench_http: nothing listens on $1" >&2; exit 1; }
        sleep 0.05
    done
}

rps() { # port -> requests/s
    wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$1/hello" | awk '/Requests\/sec/ {print $2}'
}

"$TMP/mhd_hello" 18391 2 & PIDS="$PIDS $!"
wait_port 18391
MHD=$(rps 18391)
kill $PIDS; PIDS=""

"$BUILD/carmine" -p 18392 "$TMP/flow.json" >"$TMP/carmine.log" 2>&1 & PIDS="$PIDS $!"
wait_port 18392
curl -s "http://127.0.0.1:18392/hello" >/dev/null || true
CRM=$(rps 18392)
kill $PIDS; PIDS=""

echo "bare libmicrohttpd:                       $MHD req/s"
echo "carmine http in -> change -> http response: $CRM req/s"
awk -v a="$CRM" -v b="$MHD" 'BEGIN { printf "ratio: %.1f%% of bare libmicrohttpd; %.1fx Node-RED at 2.8k req/s\n", 100 * a / b, a / 2800 }'
