#!/usr/bin/env bash
# rounds.sh: one flow under wrk in Carmine, beside a bare libmicrohttpd
# program doing the same job (the ceiling of this machine) and Node-RED
# 4.1.15 when tools/bench/node_modules has it (run.sh installs it). Rounds
# alternate between the servers so that a busy moment of a shared machine
# hits all of them; every server is started afresh and gets a 1 s warm-up.
# bench_api.sh and bench_http.sh are the two users.
#
#   tools/bench/rounds.sh BUILD FLOW URL_PATH CONNS SECONDS ROUNDS BARE_SOURCE [BARE_ARGS...]
#
# The bare program is compiled from BARE_SOURCE and started as
# `bare PORT BARE_ARGS...`. Prints one line per run (req/s, mean latency,
# p99, the server's CPU time per request, the load average) and the mean of each server.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 7 ] || { echo "usage: rounds.sh BUILD FLOW URL_PATH CONNS SECONDS ROUNDS BARE_SOURCE [BARE_ARGS...]" >&2; exit 2; }
BUILD=$1 FLOW=$2 URLPATH=$3 CONNS=$4 SECS=$5 ROUNDS=$6 BARE_SRC=$7
shift 7
BARE_ARGS=("$@")
PORT=${BENCH_PORT:-$((21000 + RANDOM % 20000))}
NR_RED=tools/bench/node_modules/node-red/red.js
TMP=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

for t in wrk curl gcc; do command -v "$t" >/dev/null || { echo "rounds: $t is not installed" >&2; exit 1; }; done
[ -x "$BUILD/carmine" ] || { echo "rounds: $BUILD/carmine is not built" >&2; exit 1; }
gcc -O2 -o "$TMP/bare" "$BARE_SRC" -lmicrohttpd -lpthread
KINDS="bare carmine"
if [ -f "$NR_RED" ] && command -v node >/dev/null; then
    KINDS="$KINDS nodered"
    echo 'module.exports = { credentialSecret: false, logging: { console: { level: "warn" } } };' >"$TMP/nr-settings.js"
fi

start() { # kind port
    case $1 in
        bare) "$TMP/bare" "$2" "${BARE_ARGS[@]}" >/dev/null 2>&1 & ;;
        carmine) "$BUILD/carmine" -p "$2" "$FLOW" >/dev/null 2>&1 & ;;
        nodered) node "$NR_RED" -u "$TMP/nr-user" -s "$TMP/nr-settings.js" -p "$2" "$FLOW" >/dev/null 2>&1 & ;;
    esac
    PID=$!
    for _ in $(seq 600); do
        curl -s -o /dev/null "http://127.0.0.1:$2$URLPATH" && return 0
        sleep 0.05
    done
    echo "rounds: $1 did not answer on :$2" >&2
    exit 1
}

for round in $(seq "$ROUNDS"); do
    for kind in $KINDS; do
        PORT=$((PORT + 1))
        while ss -Htan "( sport = :$PORT )" | grep -q .; do PORT=$((PORT + 1)); done # in use, or in TIME_WAIT
        start "$kind" "$PORT"
        wrk -t2 -c"$CONNS" -d1s "http://127.0.0.1:$PORT$URLPATH" >/dev/null
        # the server's own CPU time (user + system, /proc/PID/stat) per request:
        # a shared machine moves it far less than requests per second
        read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$PID/stat")
        out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$PORT$URLPATH")
        read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
        echo "$out" |
            awk -v k="$kind" -v r="$round" -v c=$((u1 - u0 + s1 - s0)) -v hz="$(getconf CLK_TCK)" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
                '/Latency  / {m=$2} / 99%/ {p=$2} /Requests\/sec/ {q=$2} /requests in/ {n=$1}
                END {printf "%-8s round %d: %8.2f req/s  mean %s  p99 %s  cpu %.2f us/req  load %s\n", k, r, q, m, p, (n > 0 ? c * 1e6 / hz / n : 0), l}' | tee -a "$TMP/lines"
        kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
        PID=""
    done
done
echo "mean of $ROUNDS rounds of ${SECS} s (wrk -t2 -c$CONNS), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg):"
awk '{n[$1]++; s[$1]+=$4; c[$1]+=$11} END {for (k in n) printf "  %-8s %10.2f req/s  %6.2f us CPU per request\n", k, s[k]/n[k], c[k]/n[k]}' "$TMP/lines" | sort
awk '{n[$1]++; s[$1]+=$4; c[$1]+=$11} END {if (n["bare"] && n["carmine"]) printf "  carmine is %.1f %% of bare libmicrohttpd\n", 100 * (s["carmine"]/n["carmine"]) / (s["bare"]/n["bare"]);
     if (n["bare"] && n["carmine"] && c["carmine"] > 0) printf "  carmine is %.1f %% of bare per CPU second\n", 100 * (c["bare"]/n["bare"]) / (c["carmine"]/n["carmine"]);
     if (n["nodered"] && n["carmine"]) printf "  carmine is %.1fx Node-RED\n", (s["carmine"]/n["carmine"]) / (s["nodered"]/n["nodered"])}' "$TMP/lines"
