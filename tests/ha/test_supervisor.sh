#!/usr/bin/env bash
# test_supervisor.sh: `carmine --replicas 3`: every replica ready and
# serving the shared port, /healthz and /readyz, the supervisor's status,
# replicas read-only (pointing at the supervisor), a kill -9 restarted with
# a logged backoff, log lines tagged, and SIGTERM draining to a clean exit.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
API=$((PORT + 1))
# /api held 300 ms (not 100): time for the SIGTERM test below to see the
# request in flight on a loaded machine, and still within the 500 ms the
# server gives requests in flight when it stops
sed 's/"timeout":"100"/"timeout":"300"/' flows/api.json >"$TMP/flows.json"
check "3 replicas ready" start_supervisor 3 "$PORT" "$TMP/flows.json"

check "GET /api answers through the shared port" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api")" = 200
check "GET /healthz on a replica" test "$(curl -s "http://127.0.0.1:$PORT/healthz")" = '{"status":"ok"}'
check "GET /readyz on a replica" test "$(curl -s "http://127.0.0.1:$PORT/readyz")" = '{"ready":true}'
check "supervisor /readyz" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API/readyz")" = 200
status=$(curl -s "http://127.0.0.1:$API/status")
check "status lists 3 processes with pids, restarts, uptime" \
  test "$(echo "$status" | grep -o '"pid":[1-9][0-9]*,"state":"ready","restarts":0,"uptime":[0-9.]*' | wc -l)" = 3

body=$(curl -s -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/flows" -d '[]')
check "a replica refuses a deploy and names the supervisor" \
  grep -q "\"code\":\"read_only\".*deploy to its supervisor, POST http://127.0.0.1:$API/flows" <<<"$body"

victim=$(replica_pids "$API" | head -n 1)
kill -9 "$victim"
restarted() { curl -s "http://127.0.0.1:$API/status" | grep -q '"replica":1,"pid":[0-9]*,"state":"ready","restarts":1'; }
check "a replica killed with -9 is restarted" wait_for 10 restarted
check "the death and the backoff are logged" grep -q "\[supervisor\] replica 1 (pid $victim) died after .*killed by signal 9.*restart 1 in 100 ms" "$TMP/sup.log"
check "replica log lines are tagged" grep -q '^\[replica 2\] carmine: running' "$TMP/sup.log"

# SIGTERM while a request is in flight: it is answered, then everything exits 0
# in flight = a replica has read the request (the flow then holds it 300 ms):
# its socket received bytes and none wait unread. Not a fixed sleep: a loaded
# machine may not even have started curl yet. If the poll misses the request
# (answered before ss saw it), the next attempt sends another.
request_read() {
  ss -Htni state established "( sport = :$PORT )" |
    awk '/^[0-9]/ { q = $1 } /bytes_received:/ { if (q == 0) ok = 1 } END { exit !ok }'
}
seen=0
for attempt in 1 2 3 4 5; do
  curl -s -o "$TMP/inflight.out" -w '%{http_code}' "http://127.0.0.1:$PORT/api" >"$TMP/inflight.code" &
  cpid=$!
  read_or_done() { request_read && seen=1 && return 0; ! kill -0 "$cpid" 2>/dev/null; }
  wait_for 10 read_or_done
  [ "$seen" = 1 ] && break
  wait "$cpid"
done
check "the request was seen in flight (attempt $attempt)" test "$seen" = 1
stop_pid "$SUP"
rc=$?
wait "$cpid"
check "SIGTERM: the supervisor exits 0" test "$rc" = 0
check "SIGTERM: a request in flight is answered 200 ($(cat "$TMP/inflight.code"))" test "$(cat "$TMP/inflight.code")" = 200
check "SIGTERM: every replica stopped" test "$(grep -c 'stopped: exit status 0' "$TMP/sup.log")" = 3
check "nothing listens any more" test -z "$(ss -Htln "( sport = :$PORT )")"
finish
