#!/usr/bin/env bash
# test_crash_reuseport.sh: replicas sharing a port with SO_REUSEPORT under a
# supervisor: under steady load (new connection per request), one replica is
# frozen (SIGSTOP: connections keep queueing on its listener, as on a hung
# process), its requests in flight are counted (connections it accepted +
# connections queued on its listener), then it is killed with -9. Requests
# lost must be at most those; with net.ipv4.tcp_migrate_req=1 the queued
# ones move to the other replicas, so at most the accepted ones are lost;
# without it the queued ones are lost as well.
# Runs with the sysctl at 0 and at 1 where the kernel has it (restored after).
source "$(dirname "$0")/lib.sh"

SYSCTL=/proc/sys/net/ipv4/tcp_migrate_req
orig=""
[ -r "$SYSCTL" ] && orig=$(cat "$SYSCTL")
restore() { [ -n "$orig" ] && echo "$orig" >"$SYSCTL" 2>/dev/null; cleanup; }
trap restore EXIT
echo '{"supervisor":{"tcpMigrateReq":false}}' >"$TMP/settings.json"

# run MIGRATE: one load run with one replica frozen then killed
run() {
  local m=$1
  if [ -n "$orig" ]; then echo "$m" >"$SYSCTL" 2>/dev/null || { echo "# cannot set tcp_migrate_req=$m: skipped"; return; }; fi
  local port api
  port=$(free_port)
  api=$((port + 1))
  cp flows/api.json "$TMP/flows-$m.json"
  check "[migrate=$m] 3 replicas ready" start_supervisor 3 "$port" "$TMP/flows-$m.json" "$TMP/settings.json"
  wrk -t2 -c30 -d6s --timeout 10s -H 'Connection: close' "http://127.0.0.1:$port/api" >"$TMP/wrk-$m.txt" &
  local wrk_pid=$!
  sleep 2
  local victim accepted queued
  victim=$(replica_pids "$api" | sed -n 2p)
  kill -STOP "$victim"
  sleep 0.3
  accepted=$(ss -Htnp state established "( sport = :$port )" | grep -c "pid=$victim,")
  queued=$(ss -Htlnp "( sport = :$port )" | grep "pid=$victim," | awk '{ s += $2 } END { print s + 0 }')
  kill -9 "$victim"
  wait "$wrk_pid"
  local n f
  n=$(wrk_requests "$TMP/wrk-$m.txt")
  f=$(wrk_failures "$TMP/wrk-$m.txt")
  echo "# SO_REUSEPORT, tcp_migrate_req=$m: $n requests, $f lost; the killed replica had $accepted accepted and $queued queued on its listener"
  check "[migrate=$m] load ran ($n requests)" test "${n:-0}" -gt 300
  check "[migrate=$m] the killed replica had requests in flight" test $((accepted + queued)) -gt 0
  if [ "$m" = 1 ]; then
    check "[migrate=1] lost ($f) <= accepted by the killed replica ($accepted)" test "$f" -le "$accepted"
  else
    # without it the queued connections are reset as well
    check "[migrate=0] lost ($f) > accepted by the killed replica ($accepted): its queue was reset too" test "$f" -gt "$accepted"
  fi
  check "[migrate=$m] the killed replica was restarted" wait_for 5 all_ready "$api" 3
  stop_pid "$SUP"
}

if [ -n "$orig" ]; then run 0; fi
run 1
finish
