#!/usr/bin/env bash
# bench_function.sh: the function node (issue 14) beside Node-RED 4.1.15.
#   a. a chain of 10 function nodes (msg.payload = msg.payload + 1) in
#      deliveries/s (bench_hops function / nodered-chain.js function)
#   b. http in -> function -> http response under wrk (rounds.sh, with the
#      bare libmicrohttpd program as the ceiling)
#   c. start to first answer, and idle RSS after 10,000 messages (measured
#      5 s after the last one), of a flow whose requests pass 1 and 100
#      function nodes
#   d. b again, Carmine and Node-RED only, with each server's CPU time
#      (user+sys from /proc) per request beside req/s, alternating rounds
#      (ROUNDS of them, default 2; BEFORE=<another carmine binary> adds it
#      to each round, first; BARE=1 adds the bare libmicrohttpd program,
#      mhd_bare.c, 1 thread, the ceiling)
#
#   tools/bench/bench_function.sh [BUILD=build-bench] [PARTS=abc]
# Node-RED is used from tools/bench/node_modules (run.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bench}
PARTS=${2:-abc}
BENCH=tools/bench
NR_RED=$BENCH/node_modules/node-red/red.js
TMP=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
[ -x "$BUILD/carmine" ] && [ -x "$BUILD/bench_hops" ] || { echo "bench_function: build $BUILD first" >&2; exit 1; }
HAVE_NR=0
[ -f "$NR_RED" ] && command -v node >/dev/null && HAVE_NR=1

# flows: /hello through one function node; /n through a chain of N
python3 - "$TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
def flow(n, path, func):
    nodes = [{"id": "t", "type": "tab", "label": "bench"},
             {"id": "in", "type": "http in", "z": "t", "url": path, "method": "get", "x": 1, "y": 1, "wires": [["f0"]]}]
    for i in range(n):
        nxt = "f%d" % (i + 1) if i + 1 < n else "out"
        nodes.append({"id": "f%d" % i, "type": "function", "z": "t", "func": func, "outputs": 1, "timeout": 0,
                      "initialize": "", "finalize": "", "libs": [], "x": 1, "y": 1, "wires": [[nxt]]})
    nodes.append({"id": "out", "type": "http response", "z": "t", "statusCode": "", "headers": {}, "x": 1, "y": 1, "wires": []})
    return nodes
json.dump(flow(1, "/hello", 'msg.payload = "Hello World!";\nreturn msg;'), open(tmp + "/hello.json", "w"))
for n in (1, 100):
    json.dump(flow(n, "/n", "msg.payload = (msg.payload || 0) + 1;\nreturn msg;"), open(tmp + "/fn%d.json" % n, "w"))
PY

if [[ $PARTS == *a* ]]; then
echo "a. chain of 10 function nodes"
for r in 1 2; do
    "$BUILD/bench_hops" function 10 100000 | sed "s/^/  carmine round $r: /"
    [ $HAVE_NR = 1 ] && node "$BENCH/nodered-chain.js" function 10 20000 2>/dev/null | grep 'chain of' | sed "s/^/  node-red round $r: /"
done
fi

if [[ $PARTS == *b* ]]; then
echo "b. http in -> function -> http response"
"$BENCH/rounds.sh" "$BUILD" "$TMP/hello.json" /hello 50 5 2 "$BENCH/mhd_bare.c" "$([ "$(nproc)" -le 2 ] && echo 1 || echo 2)" | sed 's/^/  /'
fi
if [[ $PARTS == *d* ]]; then
echo "d. http in -> function -> http response, CPU per request (wrk -t1 -c50, 5 s after 1 s warm-up)"
[ $HAVE_NR = 1 ] && echo 'module.exports = { credentialSecret: false, logging: { console: { level: "warn" } } };' >"$TMP/nr-settings.js"
DPORT=$((23000 + RANDOM % 8000))
[ -n "${BARE:-}" ] && gcc -O2 -o "$TMP/bare" "$BENCH/mhd_bare.c" -lmicrohttpd -lpthread
for r in $(seq "${ROUNDS:-2}"); do
    for kind in ${BARE:+bare} ${BEFORE:+before} carmine nodered; do
        [ $kind = nodered ] && [ $HAVE_NR = 0 ] && continue
        DPORT=$((DPORT + 1))
        while ss -Htan "( sport = :$DPORT )" | grep -q .; do DPORT=$((DPORT + 1)); done
        case $kind in
            bare) "$TMP/bare" "$DPORT" 1 >/dev/null 2>&1 & ;;
            before) "$BEFORE" -p "$DPORT" "$TMP/hello.json" >/dev/null 2>&1 & ;;
            carmine) "$BUILD/carmine" -p "$DPORT" "$TMP/hello.json" >/dev/null 2>&1 & ;;
            nodered) node "$NR_RED" -u "$TMP/nr-user-$DPORT" -s "$TMP/nr-settings.js" -p "$DPORT" "$TMP/hello.json" >/dev/null 2>&1 & ;;
        esac
        PID=$!
        for _ in $(seq 1200); do curl -s -o /dev/null "http://127.0.0.1:$DPORT/hello" && break; sleep 0.05; done
        wrk -t1 -c50 -d1s "http://127.0.0.1:$DPORT/hello" >/dev/null
        t0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
        out=$(wrk -t1 -c50 -d5s "http://127.0.0.1:$DPORT/hello")
        t1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
        n=$(echo "$out" | awk '/requests in/ {print $1}')
        printf "  %-8s round %d: %9.0f req/s  CPU %6.1f us per request  load %s\n" $kind $r \
            "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
            "$(echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
        kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
        PID=""
    done
done
fi
[[ $PARTS == *c* ]] || exit 0

echo "c. start to first answer, idle RSS 5 s after 10,000 messages"
[ $HAVE_NR = 1 ] && echo 'module.exports = { credentialSecret: false, logging: { console: { level: "warn" } } };' >"$TMP/nr-settings.js"
PORT=$((23000 + RANDOM % 20000))
measure() { # kind flows
    PORT=$((PORT + 1))
    while ss -Htan "( sport = :$PORT )" | grep -q .; do PORT=$((PORT + 1)); done
    local t0 t1
    t0=$(date +%s%N)
    case $1 in
        carmine) "$BUILD/carmine" -p "$PORT" "$2" >/dev/null 2>&1 & ;;
        nodered) node "$NR_RED" -u "$TMP/nr-user-$PORT" -s "$TMP/nr-settings.js" -p "$PORT" "$2" >/dev/null 2>&1 & ;;
    esac
    PID=$!
    for _ in $(seq 12000); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/n" && break
        sleep 0.005
    done
    t1=$(date +%s%N)
    python3 - "$PORT" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(10000):
    c.request("GET", "/n")
    c.getresponse().read()
PY
    sleep 5
    local rss
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
    printf "  %-8s %-10s first answer %6.0f ms   idle RSS after 10,000 messages %6.1f MB\n" "$1" "$(basename "$2" .json)" \
        "$(echo "($t1 - $t0) / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    PID=""
}
for f in fn1 fn100; do
    measure carmine "$TMP/$f.json"
    [ $HAVE_NR = 1 ] && measure nodered "$TMP/$f.json"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
