#!/usr/bin/env bash
# test_redis_down.sh: Redis unreachable at start (issue 22, D5). Carmine
# logged the right error, then segfaulted in crm_runtime_settings(NULL). It
# must refuse to start, naming the store (docs/ha.md); `carmine check` opens
# no store and says ok; a supervisor keeps restarting its replicas until Redis
# is there, then they serve.
source "$(dirname "$0")/../ha/lib.sh"
RPORT=$(free_port) # nothing listens there
cat >"$TMP/settings.json" <<JSON
{"contextStorage":{"default":{"module":"redis","config":{"host":"127.0.0.1","port":$RPORT,"prefix":"down$$"}}},
 "supervisor":{"restartBackoffMs":100,"restartBackoffMaxMs":400}}
JSON
FLOWS=tests/faults/flows/redis-flows.json
PORT=$(free_port)
timeout 20 "$CARMINE" -p "$PORT" -s "$TMP/settings.json" "$FLOWS" >"$TMP/run.out" 2>&1
rc=$?
sed 's/^/# /' "$TMP/run.out"
check "carmine exits 1 (not a signal: was 139)" test "$rc" = 1
check "the error names the store and where it is" \
  grep -q "\[error\] contextStorage.default: cannot use Redis at 127.0.0.1:$RPORT: Connection refused" "$TMP/run.out"
check "and says nothing started" grep -q "^carmine: $FLOWS: not started: a context store cannot be used" "$TMP/run.out"
check "nothing listens on the HTTP port" test -z "$(ss -Htln "( sport = :$PORT )")"
out=$(timeout 20 "$CARMINE" check -s "$TMP/settings.json" "$FLOWS" 2>&1)
check "carmine check opens no store: ok" test "$out" = "$FLOWS: ok"

# under a supervisor: the replicas refuse, are restarted, and serve once Redis is up
if command -v redis-server >/dev/null; then
  cp "$FLOWS" "$TMP/flows.json"
  "$CARMINE" --replicas 2 -p "$PORT" --admin-port $((PORT + 1)) -s "$TMP/settings.json" "$TMP/flows.json" >"$TMP/sup.log" 2>&1 &
  SUP=$!
  PIDS+=("$SUP")
  restarting() { grep -q "replica 2 (pid [0-9]*) died after .*exit status 1; restart 2" "$TMP/sup.log"; }
  check "the supervisor restarts replicas that refuse to start" wait_for 10 restarting
  check "the supervisor is alive, its API answers" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((PORT + 1))/status")" = 200
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  check "once Redis is up both replicas are ready" wait_for 15 all_ready $((PORT + 1)) 2 ||
    { tail -n 40 "$TMP/sup.log" | sed 's/^/# sup: /'; sed 's/^/# redis: /' "$TMP/redis.log"; }
  check "and serve" test "$(curl -s -XPOST -H 'Content-Type: text/plain' "http://127.0.0.1:$PORT/set/a" -d v)" = ok
  stop_pid "$SUP"
  check "SIGTERM: the supervisor exits 0" test $? = 0
else
  echo "# supervisor part skipped: redis-server is not installed (tools/setup.sh installs it)"
fi
finish
