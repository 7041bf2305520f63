#!/usr/bin/env bash
# run.sh: Carmine beside real Node-RED 4.1.15, measured in one run on one
# machine, for the targets of ../shared/DESIGN.md ("Targets") and the closing
# notes of issues 2, 3 and 4. Builds Carmine (release, -O2, in $BUILD_DIR),
# installs Node-RED from npm when missing (tools/bench/node_modules, ignored
# by git), compiles the bare libmicrohttpd server and the start-up probe, and
# prints one markdown table with the ratios, then the raw lines.
#
#   tools/bench/run.sh                  # everything, a few seconds per figure
#   BENCH_SECS=5 BENCH_ROUNDS=3 tools/bench/run.sh
#
# Environment: BUILD_DIR (build-bench), BENCH_SECS (3: wrk duration),
# BENCH_ROUNDS (2: wrk runs per server, the best is kept; rounds alternate
# between servers so that a busy moment of a shared machine hits all of
# them), BENCH_API_SECS (10: the API flow's run, one round; with 100 ms per
# request and closed-loop connections a short run counts whole rounds only,
# 3 s can show at most ~970 req/s), BENCH_SPLIT_N (1000000), BENCH_PORT
# (first port of a free range).
# Needs: meson, ninja, gcc, libmicrohttpd-dev, node (20), npm, wrk, curl.
# Everything listens on 127.0.0.1 only; every process started is stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_DIR:-build-bench}
SECS=${BENCH_SECS:-3}
ROUNDS=${BENCH_ROUNDS:-2}
API_SECS=${BENCH_API_SECS:-10}
SPLIT_N=${BENCH_SPLIT_N:-1000000}
PORT=${BENCH_PORT:-$((21000 + RANDOM % 20000))}
BARE_THREADS=${BARE_THREADS:-$([ "$(nproc)" -le 2 ] && echo 1 || echo 2)}
NR_VERSION=4.1.15
BENCH=tools/bench
NR_RED=$BENCH/node_modules/node-red/red.js
TMP=$(mktemp -d)
PIDS=""

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { echo "run.sh: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "$1 is not installed"; exit 1; }; }
for t in meson ninja gcc node npm wrk curl; do need "$t"; done

# Set-up ----------------------------------------------------------------------

build_carmine() {
    [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Doptimization=2 >/dev/null
    ninja -C "$BUILD" carmine bench_hops bench_split >/dev/null
}

install_nodered() {
    local have
    have=$(node -p "try { require('./$BENCH/node_modules/node-red/package.json').version } catch (e) { '' }")
    if [ "$have" != "$NR_VERSION" ] || [ ! -d "$BENCH/node_modules/node-red-dashboard" ]; then
        say "installing node-red@$NR_VERSION (and the load-tester's contrib nodes) with npm"
        npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$BENCH" \
            "node-red@$NR_VERSION" node-red-dashboard@3.6.6 node-red-contrib-msg-speed@2.1.0 >/dev/null 2>&1
    fi
}

build_helpers() {
    gcc -O2 -o "$TMP/mhd_bare" "$BENCH/mhd_bare.c" -lmicrohttpd
    gcc -O2 -Wall -Wextra -o "$TMP/first_answer" "$BENCH/first_answer.c"
    node "$BENCH/make-flows.js" "$TMP"
    cp flows/api.json flows/load-tester.json "$TMP/"
    # The load-tester's moving-average contrib node is not on npm under a name
    # we can pin; a pass-through stand-in lets Node-RED start that flow.
    mkdir -p "$TMP/nr-nodes"
    cat >"$TMP/nr-nodes/moving-average.js" <<'JS'
module.exports = function (RED) {
  function MovingAverage(config) {
    RED.nodes.createNode(this, config);
    this.on('input', (msg, send, done) => { send(msg); done(); });
  }
  RED.nodes.registerType('moving-average', MovingAverage);
};
JS
    echo '<script type="text/javascript">RED.nodes.registerType("moving-average",{category:"function",defaults:{name:{value:""},amount:{value:"10"},weight:{value:"cumulative"}},inputs:1,outputs:1});</script>' \
        >"$TMP/nr-nodes/moving-average.html"
    cat >"$TMP/nr-settings.js" <<JS
module.exports = { nodesDir: "$TMP/nr-nodes", credentialSecret: false,
                   logging: { console: { level: "warn", metrics: false, audit: false } } };
JS
}

# Servers -----------------------------------------------------------------------

next_port() { PORT=$((PORT + 1)); echo "$PORT"; }

# The command line that runs FLOW on PORT: carmine or nodered.
server_cmd() { # kind flow port
    case $1 in
        carmine) echo "$BUILD/carmine -p $3 $TMP/$2" ;;
        nodered) echo "node $NR_RED -u $TMP/nr-user-$3 -s $TMP/nr-settings.js -p $3 $TMP/$2" ;;
        bare) echo "$TMP/mhd_bare $3 $BARE_THREADS" ;; # as many threads as Carmine serves HTTP with (bench_http.sh)
    esac
}

wait_200() { # port path
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null)" = 200 ] && return 0
        sleep 0.05
    done
    say "nothing answered 200 on :$1$2"
    return 1
}

SERVER_PID=""
start_server() { # kind flow port path
    # shellcheck disable=SC2046
    $(server_cmd "$1" "$2" "$3") >"$TMP/$1-$3.log" 2>&1 &
    SERVER_PID=$!
    PIDS="$PIDS $SERVER_PID"
    wait_200 "$3" "$4"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wrk against PORT/PATH for SECS seconds with CONNS connections: prints
# "req/s p99_ms cpu_us_per_request" (the server's own CPU time).
wrk_run() { # pid port path conns secs
    local c0 c1 out
    c0=$(cpu_ticks "$1")
    out=$(wrk -t2 -c"$4" -d"${5}s" --latency "http://127.0.0.1:$2$3")
    c1=$(cpu_ticks "$1")
    echo "$out" | awk -v dc=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
        /Requests\/sec/ { rps = $2 }
        /requests in/ { n = $1 }
        $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                      p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
        END { printf "%.0f %.2f %.1f\n", rps, p99, (n > 0 ? dc / hz * 1e6 / n : 0) }'
}

# Best of ROUNDS wrk runs (highest req/s) per server, rounds alternating.
declare -A BEST
wrk_compare() { # name flow path conns secs rounds kinds...
    local name=$1 flow=$2 path=$3 conns=$4 secs=$5 rounds=$6
    shift 6
    for _ in $(seq "$rounds"); do
        for kind in "$@"; do
            local port r
            port=$(next_port)
            start_server "$kind" "$flow" "$port" "$path"
            wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port$path" >/dev/null # warm-up
            r=$(wrk_run "$SERVER_PID" "$port" "$path" "$conns" "$secs")
            stop_server
            echo "$name $kind: $r req/s p99_ms cpu_us/req" >>"$TMP/raw"
            local prev=${BEST[$name.$kind]:-0 0 0}
            if [ "${r%% *}" -gt "${prev%% *}" ]; then BEST[$name.$kind]=$r; fi
        done
    done
}

field() { echo "$1" | awk -v i="$2" '{print $i}'; }

# Measurements -------------------------------------------------------------------

declare -A V

measure_start() { # a: start to first HTTP answer
    local kind port r
    for kind in carmine nodered; do
        port=$(next_port)
        # shellcheck disable=SC2046
        r=$(FIRST_ANSWER_LOG="$TMP/start-$kind.log" "$TMP/first_answer" "$port" /hello 0 $(server_cmd "$kind" hello.json "$port"))
        V[start.$kind]=$(echo "$r" | awk '/first_answer_ms/ {print $2}')
        echo "start to first answer, $kind: ${V[start.$kind]} ms" >>"$TMP/raw"
    done
}

measure_rss() { # b: idle resident memory, 2 s after the first answer
    local flow path kind port r
    for spec in flow50.json:/flows api.json:/api load-tester.json:/flows; do
        flow=${spec%%:*}
        path=${spec#*:}
        for kind in carmine nodered; do
            port=$(next_port)
            # shellcheck disable=SC2046
            r=$(FIRST_ANSWER_LOG="$TMP/rss-$kind-$flow.log" "$TMP/first_answer" "$port" "$path" 2000 $(server_cmd "$kind" "$flow" "$port"))
            V[rss.$flow.$kind]=$(echo "$r" | awk '/rss_kb/ {printf "%.1f", $2 / 1024}')
            echo "idle RSS $flow, $kind: ${V[rss.$flow.$kind]} MB" >>"$TMP/raw"
        done
    done
}

measure_hops() { # c: one hop, and deliveries through 10 change nodes
    local kind r
    for kind in junction link change switch function json template csv splitjoin; do
        r=$("$BUILD/bench_hops" "$kind" 10 200000)
        echo "carmine: $r" >>"$TMP/raw"
        V[hop.$kind.carmine]=$(echo "$r" | awk '{for (i = 1; i < NF - 1; i++) if ($(i + 1) == "ns" && $(i + 2) == "per") print $i}')
        V[dps.$kind.carmine]=$(echo "$r" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "deliveries/s,") print $i}')
        r=$(node "$BENCH/nodered-chain.js" "$kind" 10 50000 2>/dev/null | grep 'chain of')
        echo "node-red: $r" >>"$TMP/raw"
        V[hop.$kind.nodered]=$(echo "$r" | awk '{for (i = 1; i < NF - 1; i++) if ($(i + 1) == "ns" && $(i + 2) == "per") print $i}')
        V[dps.$kind.nodered]=$(echo "$r" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "deliveries/s,") print $i}')
    done
}

measure_split() { # d: peak memory while SPLIT_N messages pass a split
    local r
    r=$("$BUILD/bench_split" "$SPLIT_N")
    echo "carmine: $r" | tr '\n' ' ' >>"$TMP/raw"
    echo >>"$TMP/raw"
    V[split.carmine]=$(echo "$r" | awk '/peak/ {for (i = 1; i < NF; i++) if ($i == "peak") print $(i + 1)}')
    V[splitms.carmine]=$(echo "$r" | awk '/wall/ {for (i = 1; i < NF; i++) if ($(i + 1) == "ms" && $(i + 2) == "wall,") print $i}')
    r=$(node "$BENCH/nodered-split.js" "$SPLIT_N" 2>/dev/null | grep -v warn)
    echo "node-red: $r" | tr '\n' ' ' >>"$TMP/raw"
    echo >>"$TMP/raw"
    V[split.nodered]=$(echo "$r" | awk '/peak/ {for (i = 1; i < NF; i++) if ($i == "peak") print $(i + 1)}')
    V[splitms.nodered]=$(echo "$r" | awk '/wall/ {for (i = 1; i < NF; i++) if ($(i + 1) == "ms" && $(i + 2) == "wall") print $i}')
}

# Report ---------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", a / b; else print "n/a" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }

report() {
    local hc=${BEST[http.carmine]} hn=${BEST[http.nodered]} hb=${BEST[http.bare]}
    local ac=${BEST[api.carmine]} an=${BEST[api.nodered]}
    echo "| measure | Carmine | Node-RED $NR_VERSION | Carmine vs Node-RED | target |"
    echo "| --- | --- | --- | --- | --- |"
    echo "| start to first HTTP answer (ms) | ${V[start.carmine]} | ${V[start.nodered]} | $(ratio "${V[start.nodered]}" "${V[start.carmine]}") faster | ≤ 20 ms |"
    echo "| idle RSS, 50-node flow (MB) | ${V[rss.flow50.json.carmine]} | ${V[rss.flow50.json.nodered]} | $(ratio "${V[rss.flow50.json.nodered]}" "${V[rss.flow50.json.carmine]}") less | ≤ 6 MB |"
    echo "| idle RSS, API flow (MB) | ${V[rss.api.json.carmine]} | ${V[rss.api.json.nodered]} | $(ratio "${V[rss.api.json.nodered]}" "${V[rss.api.json.carmine]}") less | ≤ 6 MB |"
    echo "| idle RSS, load-tester flow (MB) | ${V[rss.load-tester.json.carmine]} | ${V[rss.load-tester.json.nodered]} | $(ratio "${V[rss.load-tester.json.nodered]}" "${V[rss.load-tester.json.carmine]}") less | ≤ 12 MB |"
    echo "| one junction hop (ns) | ${V[hop.junction.carmine]} | ${V[hop.junction.nodered]} | $(ratio "${V[hop.junction.nodered]}" "${V[hop.junction.carmine]}") faster | |"
    echo "| one link hop (ns) | ${V[hop.link.carmine]} | ${V[hop.link.nodered]} | $(ratio "${V[hop.link.nodered]}" "${V[hop.link.carmine]}") faster | |"
    echo "| one change-node hop (ns) | ${V[hop.change.carmine]} | ${V[hop.change.nodered]} | $(ratio "${V[hop.change.nodered]}" "${V[hop.change.carmine]}") faster | |"
    echo "| chain of 10 change nodes (deliveries/s) | ${V[dps.change.carmine]} | ${V[dps.change.nodered]} | $(ratio "${V[dps.change.carmine]}" "${V[dps.change.nodered]}") | ≥ 20x |"
    local k
    for k in switch function json template csv splitjoin; do # the other node types, same chain (tools/bench/hop-kinds.json)
        echo "| one $k-node hop (ns) | ${V[hop.$k.carmine]} | ${V[hop.$k.nodered]} | $(ratio "${V[hop.$k.nodered]}" "${V[hop.$k.carmine]}") faster | ≥ 20x |"
    done
    echo "| peak RSS, $SPLIT_N msgs through split (MB) | ${V[split.carmine]} | ${V[split.nodered]} | $(ratio "${V[split.nodered]}" "${V[split.carmine]}") less | ≤ 128 MB |"
    echo "| time for those $SPLIT_N msgs (ms) | ${V[splitms.carmine]} | ${V[splitms.nodered]} | $(ratio "${V[splitms.nodered]}" "${V[splitms.carmine]}") faster | |"
    echo "| http in → change → http response, 50 conns (req/s) | $(field "$hc" 1) | $(field "$hn" 1) | $(ratio "$(field "$hc" 1)" "$(field "$hn" 1)") | ≥ 20x |"
    echo "| same, bare libmicrohttpd (req/s) | $(field "$hb" 1) (Carmine: $(pct "$(field "$hc" 1)" "$(field "$hb" 1)") of it) | | | Carmine ≥ 75% of bare |"
    echo "| same, server CPU per request (µs) | $(field "$hc" 3) (bare: $(field "$hb" 3)) | $(field "$hn" 3) | $(ratio "$(field "$hn" 3)" "$(field "$hc" 3)") less | |"
    echo "| API flow (100 ms delay), 100 conns (req/s) | $(field "$ac" 1) | $(field "$an" 1) | $(ratio "$(field "$ac" 1)" "$(field "$an" 1)") | ≥ 990 |"
    echo "| API flow p99 latency (ms) | $(field "$ac" 2) | $(field "$an" 2) | | ≤ 105 ms |"
}

main() {
    say "building Carmine in $BUILD"
    build_carmine
    install_nodered
    build_helpers
    : >"$TMP/raw"
    say "a. start to first answer"
    measure_start
    say "b. idle memory"
    measure_rss
    say "c. hops"
    measure_hops
    say "d. split"
    measure_split
    say "e. http in -> change -> http response (wrk, 50 connections, ${SECS}s x $ROUNDS rounds)"
    wrk_compare http hello.json /hello 50 "$SECS" "$ROUNDS" bare carmine nodered
    say "f. API flow (wrk, 100 connections, ${API_SECS}s)"
    wrk_compare api api.json /api 100 "$API_SECS" 1 carmine nodered
    echo
    echo "Machine: $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo)," \
        "$(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo); load average $(cut -d' ' -f1-3 /proc/loadavg);" \
        "Node.js $(node -v); $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    report
    if ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^bench_jsonata:' && [ -x "$BENCH/jsonata.sh" ]; then
        say "g. JSONata (tools/bench/jsonata.sh)"
        echo
        "$BENCH/jsonata.sh" "$BUILD" || say "the JSONata comparison failed"
    fi
    echo
    echo "Raw lines:"
    sed 's/^/    /' "$TMP/raw"
}

main
