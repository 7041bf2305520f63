#!/usr/bin/env bash
# Carmine's JSONata engine against jsonata-js (2.0.6, as Node-RED 4.1.15 embeds
# it), same expressions and inputs, CPU time per evaluation, and the ratio.
# Usage: tools/bench/jsonata.sh [BUILD_DIR]   (installs jsonata-js with npm)
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build}
ninja -C "$B" bench_jsonata >/dev/null
(cd tools/bench/js && [ -d node_modules/jsonata ] || npm install --no-audit --no-fund >/dev/null 2>&1)
c=$("$B/bench_jsonata")
j=$(node tools/bench/js/jsonata-js.js)
printf '%-40s %12s %12s %8s\n' expression "carmine ns" "jsonata-js ns" ratio
paste -d'\t' <(echo "$c") <(echo "$j") | awk -F'\t' '{
  n = split($1, a, " "); cn = a[n-1]; m = split($2, b, " "); jn = b[m-1];
  expr = substr($1, 1, 40);
  printf "%-40s %12d %12d %7.1fx\n", expr, cn, jn, jn / cn }'
