#!/usr/bin/env bash
# bench_api.sh: the article's API flow (flows/api.json, verbatim) under wrk with
# 100 connections, the figure of issue 4, beside the ceiling of this machine
# (tools/bench/mhd_delay.c: bare libmicrohttpd answering after the same
# 100 ms) and Node-RED 4.1.15, in alternating rounds (tools/bench/rounds.sh).
#
#   tools/bench/bench_api.sh [BUILD_DIR] [SECONDS] [ROUNDS]     (build, 120, 2)
#
# Why 120 s: every connection waits 100 ms per request, so a run loses about
# half a round per connection at its end (50 requests of 100 connections):
# wrk shows a 10 s run 0.5 % below what the server sustains, a 30 s run
# 0.17 % (1.7 req/s at 990), a 120 s run 0.04 %.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec tools/bench/rounds.sh "${1:-build}" flows/api.json /api 100 "${2:-120}" "${3:-2}" tools/bench/mhd_delay.c
