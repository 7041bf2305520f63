#!/usr/bin/env bash
# corpus-check.sh [-u USERDIR] [-t SECONDS] [-p PORT] FLOWS.json...: for each
# users' flows file, one line: whether Carmine loads it (carmine check with the
# userDir's npm modules), what it needs when it does not (node types nothing
# provides, and the package `carmine install` would add, when known), and
# whether it runs: started on PORT for SECONDS (default 6), still running then,
# stopped cleanly by SIGTERM; with the count of hosted nodes (companion) and of
# error lines logged. Logs are kept in $TMPDIR/corpus-check/NAME.log.
#   tools/corpus-check.sh -u ~/.node-red /tmp/corpus/*.json
set -u
BUILD_DIR=${BUILD_DIR:-build}
root="$(cd "$(dirname "$0")/.." && pwd)"
case "$BUILD_DIR" in /*) CARMINE=$BUILD_DIR/carmine ;; *) CARMINE=$root/$BUILD_DIR/carmine ;; esac
userdir="" secs=6 port=24390
while getopts "u:t:p:" o; do
  case $o in u) userdir=$OPTARG ;; t) secs=$OPTARG ;; p) port=$OPTARG ;; *) exit 64 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-u USERDIR] [-t SECONDS] [-p PORT] FLOWS.json..." >&2; exit 64; }
[ -n "$userdir" ] || userdir=$(mktemp -d)
logs=${TMPDIR:-/tmp}/corpus-check
mkdir -p "$logs"
printf '%-34s %-8s %-6s %s\n' FLOWS LOADS RUNS DETAIL
for f in "$@"; do
  name=$(basename "$f" .json)
  ck=$("$CARMINE" check -u "$userdir" "$f" 2>&1)
  rc=$?
  hosted=$(grep -c ' is hosted by the companion' <<<"$ck")
  if [ $rc -eq 2 ]; then
    types=$(grep -o "unknown node type '[^']*'" <<<"$ck" | sed "s/unknown node type //; s/'//g" | sort -u | tr '\n' ' ')
    pkgs=$(grep -o 'carmine install -u [^ ]* [^ ]*' <<<"$ck" | awk '{print $5}' | sort -u | tr '\n' ' ')
    printf '%-34s %-8s %-6s %s\n' "$name" no - "needs types: ${types% }${pkgs:+; packages: ${pkgs% }}"
    continue
  elif [ $rc -ne 0 ]; then
    printf '%-34s %-8s %-6s %s\n' "$name" refused - "$(grep -v ': ok$' <<<"$ck" | head -n 1 | cut -c1-120)"
    continue
  fi
  log="$logs/$name.log"
  "$CARMINE" -u "$userdir" -p "$port" "$f" >"$log" 2>&1 &
  pid=$!
  sleep "$secs"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid"
    code=$?
    [ $code -eq 0 ] && runs=yes || runs="exit $code"
  else
    wait "$pid"
    runs="died ($?)"
  fi
  errors=$(grep -c '\[error\]' "$log")
  ready=""
  [ "$hosted" -gt 0 ] && { grep -q '\[companion\] ready' "$log" && ready=", companion ready" || ready=", companion NOT ready"; }
  printf '%-34s %-8s %-6s %s\n' "$name" yes "$runs" "hosted nodes: $hosted$ready; error lines: $errors"
done
