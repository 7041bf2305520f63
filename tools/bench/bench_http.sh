#!/usr/bin/env bash
# bench_http.sh: requests per second through http in -> change -> http
# response in Carmine, beside a bare libmicrohttpd server answering the same
# GET with a timestamp (../shared/bench/mhd_hello.c, two threads: the
# ceiling) and Node-RED 4.1.15, in alternating rounds (tools/bench/rounds.sh).
#
#   tools/bench/bench_http.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [ROUNDS]   (build, 5, 50, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
cat > "$TMP/flow.json" <<'JSON'
[{"id":"t","type":"tab","label":"bench"},
 {"id":"in","type":"http in","z":"t","url":"/hello","method":"get","x":100,"y":50,"wires":[["ch"]]},
 {"id":"ch","type":"change","z":"t","rules":[{"t":"set","p":"payload","pt":"msg","to":"","tot":"date"}],"x":300,"y":50,"wires":[["out"]]},
 {"id":"out","type":"http response","z":"t","statusCode":"","headers":{},"x":500,"y":50,"wires":[]}]
JSON
tools/bench/rounds.sh "${1:-build}" "$TMP/flow.json" /hello "${3:-50}" "${2:-5}" "${4:-3}" ../shared/bench/mhd_hello.c 2
