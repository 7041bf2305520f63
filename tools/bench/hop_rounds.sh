#!/usr/bin/env bash
# hop_rounds.sh: every hop kind of tools/bench/hop-kinds.json through a chain
# of 10, Carmine (bench_hops) and Node-RED 4.1.15 (nodered-chain.js) in turn,
# kind by kind, for ROUNDS rounds, so that a busy moment of a shared machine
# hits both sides. One line per run with the load average at its start; the
# per-hop figures are by wall clock and by the process's CPU time.
#   tools/bench/hop_rounds.sh [ROUNDS=3] [KIND...]
# Environment: BUILD_DIR (build-bench, a release build), M_CARMINE (100000),
# M_NODERED (50000); csv1000 sends 1/250 of those (a message is 1,000 lines).
# BUILD_DIR2: a second build run in the same turn (e.g. one configured with
# -Dmimalloc=false), its lines marked "carmine2".
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD_DIR:-build-bench}
ROUNDS=${1:-3}
shift || true
KINDS=${*:-junction change switch template json csv csv1000 splitjoin}
MC=${M_CARMINE:-100000} MN=${M_NODERED:-50000}
[ -x "$BUILD/bench_hops" ] || { echo "hop_rounds: build $BUILD/bench_hops first" >&2; exit 1; }
[ -d tools/bench/node_modules/node-red ] || { echo "hop_rounds: no tools/bench/node_modules/node-red" >&2; exit 1; }
load() { cut -d' ' -f1 /proc/loadavg; }
for r in $(seq 1 "$ROUNDS"); do
    for k in $KINDS; do
        mc=$MC mn=$MN
        [ "$k" = csv1000 ] && mc=$((MC / 250)) mn=$((MN / 250))
        l=$(load)
        echo "round $r load $l carmine: $("$BUILD/bench_hops" "$k" 10 "$mc" 2>/dev/null)"
        if [ -n "${BUILD_DIR2:-}" ]; then
            l=$(load)
            echo "round $r load $l carmine2: $("$BUILD_DIR2/bench_hops" "$k" 10 "$mc" 2>/dev/null)"
        fi
        l=$(load)
        echo "round $r load $l node-red: $(node tools/bench/nodered-chain.js "$k" 10 "$mn" 2>/dev/null | grep 'chain of')"
    done
done
