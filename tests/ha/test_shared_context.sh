#!/usr/bin/env bash
# test_shared_context.sh: the redis context store across replicas, with a
# real redis-server started here on a loopback port. Context set through one
# instance is read through another; then two instances run the article's
# load-tester (a derived copy: its API URL from ${API_URL}, a short ramp):
# the stop command that ends the test started first also stops the agents of
# the other instance, through flow.stop in Redis.
source "$(dirname "$0")/lib.sh"
if ! command -v redis-server >/dev/null; then
  echo "# skipped: redis-server is not installed (tools/setup.sh installs it)"
  finish
fi
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
check "redis-server started" wait_for 5 redis-cli -p "$RPORT" ping
cat >"$TMP/settings.json" <<JSON
{"contextStorage":{"default":{"module":"redis","config":{"host":"127.0.0.1","port":$RPORT,"prefix":"ha$$"}}}}
JSON

# 1. set through one instance, read through another
A=$(free_port); B=$(free_port)
"$CARMINE" -p "$A" -s "$TMP/settings.json" tests/ha/flows/ctx.json >"$TMP/a.log" 2>&1 & PIDS+=($!)
"$CARMINE" -p "$B" -s "$TMP/settings.json" tests/ha/flows/ctx.json >"$TMP/b.log" 2>&1 & PIDS+=($!)
check "two instances ready" wait_for 5 curl -sf "http://127.0.0.1:$A/readyz" && wait_for 5 curl -sf "http://127.0.0.1:$B/readyz"
check "flow.v set through instance A" test "$(curl -s "http://127.0.0.1:$A/set?v=hello")" = set
got() { test "$(curl -s "http://127.0.0.1:$1/get")" = "$2"; }
check "flow.v read through instance B" wait_for 2 got "$B" hello
check "Redis holds it as JSON text" test "$(redis-cli -p "$RPORT" hget "ha$$:ctx:ctxtab" v)" = '"hello"'
curl -s "http://127.0.0.1:$B/set?v=again" >/dev/null
check "and back: set through B, read through A" wait_for 2 got "$A" again

# 2. the load-tester's flow.stop across two instances
API=$(free_port)
python3 tests/ha/counter.py "$API" >/dev/null 2>&1 & PIDS+=($!)
wait_for 5 curl -sf "http://127.0.0.1:$API/count" >/dev/null
L1=$(free_port); L2=$(free_port)
API_URL="http://127.0.0.1:$API/one" "$CARMINE" -p "$L1" -s "$TMP/settings.json" tests/ha/flows/load-tester-short.json >"$TMP/l1.log" 2>&1 & PIDS+=($!)
API_URL="http://127.0.0.1:$API/two" "$CARMINE" -p "$L2" -s "$TMP/settings.json" tests/ha/flows/load-tester-short.json >"$TMP/l2.log" 2>&1 & PIDS+=($!)
check "two load-testers ready" wait_for 5 curl -sf "http://127.0.0.1:$L1/readyz" && wait_for 5 curl -sf "http://127.0.0.1:$L2/readyz"
count() { curl -s "http://127.0.0.1:$API/count" | python3 -c "import json,sys; print(json.load(sys.stdin).get('/$1', 0))"; }
# the ramp (10 requests/s for 6 s) sends its "stop" 6 s after a start: the
# agents of instance one stop at ~6 s (~7 s once their queue drained);
# instance two, started 3 s later, would go on until ~9-10 s on its own
curl -s -XPOST "http://127.0.0.1:$L1/inject/19ac671f57cb4861" >/dev/null
sleep 3
curl -s -XPOST "http://127.0.0.1:$L2/inject/19ac671f57cb4861" >/dev/null
sleep 2
running=$(count two)
sleep 2.5 # 7.5 s after the first start
c1=$(count two)
sleep 1.5 # 9 s: instance two's own ramp is not over yet
c2=$(count two)
echo "# instance two's agents: $running requests 5 s in, $c1 at 7.5 s, $c2 at 9 s; instance one: $(count one)"
check "instance two's agents were running" test "$running" -gt 5
check "instance one's stop command stopped instance two's agents (no request between 7.5 and 9 s)" test "$c2" = "$c1"
check "flow.stop is true in Redis" test "$(redis-cli -p "$RPORT" hget "ha$$:ctx:f6f2187d.f17ca8" stop)" = true
finish
