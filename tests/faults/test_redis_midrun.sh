#!/usr/bin/env bash
# test_redis_midrun.sh: Redis lost while Carmine runs (issue 22's fault
# tests). Sets made while Redis is down are acknowledged (the store answers
# from memory), queued, and reach Redis once it is back; values set before
# are kept (Redis with an append-only file, as a deployment that cares
# runs it). Carmine never stops serving meanwhile. The restarted Redis
# takes a while to read its file back (20,000 other keys, key-load-delay)
# and answers LOADING meanwhile: that answer is not "no value".
source "$(dirname "$0")/../ha/lib.sh"
if ! command -v redis-server >/dev/null; then
  echo "# skipped: redis-server is not installed (tools/setup.sh installs it)"
  finish
fi
RPORT=$(free_port)
start_redis() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$TMP" --appendonly yes --save "" "$@" >>"$TMP/redis.log" 2>&1 &
  REDIS=$!
  PIDS+=("$REDIS")
  wait_for 5 redis-cli -p "$RPORT" ping
}
check "redis-server started" start_redis
cat >"$TMP/settings.json" <<JSON
{"contextStorage":{"default":{"module":"redis","config":{"host":"127.0.0.1","port":$RPORT,"prefix":"mid$$"}}}}
JSON
PORT=$(free_port)
"$CARMINE" -p "$PORT" -s "$TMP/settings.json" tests/faults/flows/context-set.json >"$TMP/run.log" 2>&1 &
PIDS+=($!)
check "carmine ready" wait_for 5 curl -sf "http://127.0.0.1:$PORT/readyz"
set_k() { test "$(curl -s -m 5 -XPOST -H 'Content-Type: text/plain' "http://127.0.0.1:$PORT/set/$1" -d "v-$1")" = ok; }
for i in 0 1 2 3 4; do set_k "a$i"; done
in_redis() { # all the keys given are in the d hash field
  redis-cli -p "$RPORT" hget "mid$$:ctx:global" d 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); sys.exit(not all(d.get(k) == "v-" + k for k in sys.argv[1:]))' "$@"
}
check "five values reach Redis" wait_for 5 in_redis a0 a1 a2 a3 a4
fill() { # n SET commands for keys outside Carmine's prefix, in Redis' protocol
  python3 -c 'import sys
for i in range(int(sys.argv[1])): sys.stdout.write("*3\r\n$3\r\nSET\r\n$12\r\nfiller%06d\r\n$1\r\nx\r\n" % i)' "$1" |
    redis-cli -p "$RPORT" --pipe >/dev/null
}
check "20,000 other keys" fill 20000
redis-cli -p "$RPORT" shutdown >/dev/null 2>&1 # saves its append-only file
wait "$REDIS" 2>/dev/null
ok_down=0
for i in 0 1 2 3 4; do set_k "b$i" && ok_down=$((ok_down + 1)); done
check "sets while Redis is down are acknowledged" test "$ok_down" = 5
check "and read back from memory" test "$(curl -s -m 5 "http://127.0.0.1:$PORT/get")" = 10
check "Redis restarted, reading its file for about 2 s" start_redis --key-load-delay 100
check "the values set while it was down reach Redis, the earlier ones are kept" \
  wait_for 15 in_redis a0 a1 a2 a3 a4 b0 b1 b2 b3 b4
check "carmine still has all ten" test "$(curl -s -m 5 "http://127.0.0.1:$PORT/get")" = 10
finish
