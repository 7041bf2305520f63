#!/usr/bin/env bash
# Runs Carmine under valgrind: starts the article's flows (API and load tester
# pointed at it), presses "Start a test", lets messages flow for a few seconds,
# stops with SIGINT and fails if valgrind reports a definite leak or a memory
# error. Usage: tools/check-leaks.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
PORT=${PORT:-18899}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/flows.json" "$PORT" <<'PY'
import json, sys
api = json.load(open('flows/api.json')); lt = json.load(open('flows/load-tester.json'))
for n in lt:
    if n['type'] == 'http request': n['url'] = 'http://127.0.0.1:%s/api' % sys.argv[2]
json.dump(api + lt, open(sys.argv[1], 'w'))
PY
valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 --soname-synonyms=somalloc="libmimalloc.so*" \
  "$B/carmine" -p "$PORT" "$tmp/flows.json" >"$tmp/vg.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/flows" && break; sleep 0.2; done
curl -s -X POST "http://127.0.0.1:$PORT/inject/19ac671f57cb4861" >/dev/null
sleep 5
kill -INT $pid
wait $pid; rc=$?
grep -E "definitely lost|ERROR SUMMARY" "$tmp/vg.log"
if [ $rc -eq 0 ]; then echo "1 passed, 0 failed"; else tail -40 "$tmp/vg.log"; echo "0 passed, 1 failed"; exit 1; fi
