#!/usr/bin/env bash
# test_run_once.sh: inject nodes with a repeat interval fire on one replica
# only, and fail over when that replica dies: through the supervisor's lease
# file on one machine, and through a Redis lease across instances. An inject
# listed in the setting injectOnEveryReplica fires on every replica.
# tests/ha/flows/tick.json reports each fire to a counting server as
# /tick/<replica> (run-once) and /every/<replica> (every replica).
source "$(dirname "$0")/lib.sh"

CP=$(free_port)
python3 tests/ha/counter.py "$CP" >/dev/null 2>&1 & PIDS+=($!)
wait_for 5 curl -sf "http://127.0.0.1:$CP/count"
export COUNTER_URL="http://127.0.0.1:$CP"
# counts as "path=n" lines, and the sum for a prefix
counts() { curl -s "$COUNTER_URL/count" | python3 -c 'import json,sys; [print(k, v) for k, v in sorted(json.load(sys.stdin).items())]'; }
firing() { counts | awk -v p="/$1/" 'index($1, p) == 1 && $2 > 0' | wc -l; }
total() { counts | awk -v p="/$1" 'index($1, p) == 1 { s += $2 } END { print s + 0 }'; }

# 1. one machine: 3 replicas, lease through the supervisor
PORT=$(free_port)
API=$((PORT + 1))
echo '{"injectOnEveryReplica":["every"]}' >"$TMP/settings.json"
check "3 replicas ready" start_supervisor 3 "$PORT" tests/ha/flows/tick.json "$TMP/settings.json"
sleep 2
# on a loaded machine the first fires may come late: wait for them (bounded)
every_fires() { [ "$(firing every)" = 3 ]; }
wait_for 10 every_fires
check "the repeat inject fires on one replica only" test "$(firing tick)" = 1
check "an inject in injectOnEveryReplica fires on all 3" test "$(firing every)" = 3
holder=$(counts | awk '/^\/tick\// { split($1, a, "/"); print a[3] }')
# the rate over the time that really passed between the two samples, by the
# counter's own clock (a loaded machine stretches `sleep 2` and the sampling):
# 5/s from one replica, not 15/s from all 3
sample() { curl -s "$COUNTER_URL/count" | python3 -c 'import json,sys; c = json.load(sys.stdin); print(sum(v for k, v in c.items() if k.startswith("/tick/")), int(c["at"] * 1000))'; }
read -r t1 a1 < <(sample)
sleep 2
read -r before b1 < <(sample)
w=$((b1 - a1)); n=$((before - t1)); lo=$((w * 3 / 1000 - 1)); hi=$((w * 13 / 2000 + 2))
check "5 fires/s in all, not 15 ($n in $w ms, allowed $lo..$hi)" test "$n" -ge "$lo" -a "$n" -le "$hi"
pid=$(curl -s "http://127.0.0.1:$API/status" | grep -o "\"replica\":$holder,\"pid\":[0-9]*" | cut -d: -f3)
kill -9 "$pid"
k0=$(date +%s%3N)
took_over() { [ "$(total tick)" -gt $((before + 3)) ]; }
wait_for 10 took_over
after=$(total tick)
check "after kill -9 of the holder (replica $holder), another replica fires ($before -> $after in $(($(date +%s%3N) - k0)) ms)" test "$after" -gt $((before + 3))
check "exactly two replicas ever fired: the holder, then one successor" test "$(counts | awk '/^\/tick\// && $2 > 0' | wc -l)" = 2
stop_pid "$SUP"

# 2. across machines: two instances sharing a Redis lease
if command -v redis-server >/dev/null; then
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.log" 2>&1 & PIDS+=($!)
  wait_for 5 redis-cli -p "$RPORT" ping
  echo "{\"lease\":{\"redis\":{\"port\":$RPORT,\"prefix\":\"lease$$\"},\"ttl\":600}}" >"$TMP/lease.json"
  A=$(free_port); B=$(free_port)
  CARMINE_REPLICA=a "$CARMINE" -p "$A" -s "$TMP/lease.json" tests/ha/flows/tick.json >"$TMP/a.log" 2>&1 & PA=$!; PIDS+=($PA)
  CARMINE_REPLICA=b "$CARMINE" -p "$B" -s "$TMP/lease.json" tests/ha/flows/tick.json >"$TMP/b.log" 2>&1 & PB=$!; PIDS+=($PB)
  sleep 2
  fired() { [ "$(total tick)" -gt 3 ]; }
  wait_for 10 fired
  a=$(counts | awk '$1 == "/tick/a" { print $2 }'); b=$(counts | awk '$1 == "/tick/b" { print $2 }')
  echo "# redis lease: instance a fired ${a:-0}, instance b ${b:-0}"
  check "redis lease: one instance fires" test "${a:-0}" = 0 -o "${b:-0}" = 0
  check "redis lease: and it does fire" test $((${a:-0} + ${b:-0})) -gt 3
  if [ "${a:-0}" -gt 0 ]; then victim=$PA; other=b; else victim=$PB; other=a; fi
  o1=$(counts | awk -v k="/tick/$other" '$1 == k { print $2 }')
  kill -9 "$victim"
  other_fired() { [ "$(counts | awk -v k="/tick/$other" '$1 == k { print $2 }')" -gt $((${o1:-0} + 3)) ] 2>/dev/null; }
  sleep 1
  wait_for 10 other_fired
  o2=$(counts | awk -v k="/tick/$other" '$1 == k { print $2 }')
  echo "# after kill -9 of the holder: instance $other ${o1:-0} -> ${o2:-0}"
  check "redis lease: the other instance takes over after the TTL" test "${o2:-0}" -gt $((${o1:-0} + 3))
else
  echo "# skipped the Redis lease: redis-server is not installed"
fi
finish
