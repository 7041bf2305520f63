#!/usr/bin/env bash
# bench_http.sh: requests per second through http in -> change -> http
# response in Carmine, beside a bare libmicrohttpd server answering the same
# GET with a timestamp (tools/bench/mhd_bare.c: the ceiling) and
# Node-RED 4.1.15, in alternating rounds (tools/bench/rounds.sh).
#
#   tools/bench/bench_http.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [ROUNDS]   (build, 5, 50, 3)
#
# The bare server gets as many threads as Carmine serves HTTP with: on two
# cores or fewer Carmine runs libmicrohttpd on the flow's loop (one thread,
# runtime/httpd.c "Driving from a flow's loop"), so bare gets one; else two.
# BARE_THREADS overrides. Then, unless CPU_ROUNDS=0, CPU_ROUNDS alternating
# rounds (default 3) of bare and Carmine measure the server's CPU time
# (user + system, /proc/PID/stat) per request, which a machine shared with
# other work moves far less than requests per second. BEFORE=OTHER_BUILD_DIR
# adds a third server to those CPU rounds, another Carmine build (say main
# before a change), run in turn with the two.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build} SECS=${2:-5} CONNS=${3:-50} ROUNDS=${4:-3}
TMP=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
cat > "$TMP/flow.json" <<'JSON'
[{"id":"t","type":"tab","label":"bench"},
 {"id":"in","type":"http in","z":"t","url":"/hello","method":"get","x":100,"y":50,"wires":[["ch"]]},
 {"id":"ch","type":"change","z":"t","rules":[{"t":"set","p":"payload","pt":"msg","to":"","tot":"date"}],"x":300,"y":50,"wires":[["out"]]},
 {"id":"out","type":"http response","z":"t","statusCode":"","headers":{},"x":500,"y":50,"wires":[]}]
JSON
BARE=tools/bench/mhd_bare.c
BARE_THREADS=${BARE_THREADS:-$([ "$(nproc)" -le 2 ] && echo 1 || echo 2)}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); bare libmicrohttpd with $BARE_THREADS thread(s)"
tools/bench/rounds.sh "$BUILD" "$TMP/flow.json" /hello "$CONNS" "$SECS" "$ROUNDS" "$BARE" "$BARE_THREADS"

CPU_ROUNDS=${CPU_ROUNDS:-3}
[ "$CPU_ROUNDS" -gt 0 ] || exit 0
gcc -O2 -o "$TMP/bare" "$BARE" -lmicrohttpd -lpthread
PORT=${BENCH_PORT:-$((21000 + RANDOM % 9000))}
ticks=$(getconf CLK_TCK)
cpu_round() { # kind round
    PORT=$((PORT + 1))
    while ss -Htan "( sport = :$PORT )" | grep -q .; do PORT=$((PORT + 1)); done
    case $1 in
        bare) "$TMP/bare" "$PORT" "$BARE_THREADS" >/dev/null 2>&1 & ;;
        carmine) "$BUILD/carmine" -p "$PORT" "$TMP/flow.json" >/dev/null 2>&1 & ;;
        before) "$BEFORE/carmine" -p "$PORT" "$TMP/flow.json" >/dev/null 2>&1 & ;;
    esac
    PID=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/hello" && break; sleep 0.05; done
    wrk -t2 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/hello" >/dev/null
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$PID/stat")
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/hello")
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
    kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    PID=""
    echo "$out" | awk -v k="$1" -v r="$2" -v c=$(( u1 - u0 + s1 - s0 )) -v hz="$ticks" \
        '/requests in/ {n=$1} /Requests\/sec/ {q=$2}
         END {printf "%-8s cpu round %d: %8.2f req/s  %5.2f us CPU per request\n", k, r, q, c * 1e6 / hz / n}' |
        tee -a "$TMP/cpu"
}
for round in $(seq "$CPU_ROUNDS"); do
    cpu_round bare "$round"
    [ -n "${BEFORE:-}" ] && cpu_round before "$round"
    cpu_round carmine "$round"
done
awk '{n[$1]++; c[$1]+=$7} END {if (n["bare"] && n["carmine"]) printf "server CPU per request: bare %.2f us, carmine %.2f us: carmine is %.1f %% of bare per CPU second\n",
     c["bare"]/n["bare"], c["carmine"]/n["carmine"], 100 * (c["bare"]/n["bare"]) / (c["carmine"]/n["carmine"])
     if (n["before"]) printf "the BEFORE build: %.2f us, %.1f %% of bare per CPU second\n", c["before"]/n["before"], 100 * (c["bare"]/n["bare"]) / (c["before"]/n["before"])}' "$TMP/cpu"
