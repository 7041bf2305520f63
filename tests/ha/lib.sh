# lib.sh: helpers for the HA tests (sourced). Every test starts what it needs
# itself (replicas, nginx, redis-server) on loopback ports, stops it on exit,
# and ends with "N passed, N failed".
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
CARMINE=$ROOT/$BUILD_DIR/carmine
PASS=0
FAIL=0
PIDS=()
TMP=$(mktemp -d /tmp/carmine-ha-test.XXXXXX)
chmod 755 "$TMP"

# a supervisor turns net.ipv4.tcp_migrate_req on: put it back afterwards
MIGRATE_REQ_ORIG=$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || true)

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  [ -n "$MIGRATE_REQ_ORIG" ] && echo "$MIGRATE_REQ_ORIG" >/proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
  return 0
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
check() { # check "description" command...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; return 1; fi
}
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
  exit $?
}

# A free loopback TCP port (and the next one, for a supervisor's API).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+), where clients take their own ports
    ss -Htln "( sport = :$p or sport = :$((p + 1)) )" | grep -q . || { echo "$p"; return; }
  done
  echo 0
}

# wait_for SECONDS command...: polls every 50 ms.
wait_for() {
  local t=$1; shift
  local n=$((t * 20))
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

# The number of replicas a supervisor (API port $1) reports ready.
ready_replicas() { curl -s "http://127.0.0.1:$1/status" | grep -o '"state":"ready"' | wc -l; }
all_ready() { [ "$(ready_replicas "$1")" -ge "$2" ]; }

# start_supervisor N PORT FLOWS [SETTINGS]: runs `carmine --replicas N` in the background (log: $TMP/sup.log).
start_supervisor() {
  local n=$1 port=$2 flows=$3 settings=${4:-}
  if [ -n "$settings" ]; then
    "$CARMINE" --replicas "$n" -p "$port" --admin-port $((port + 1)) -s "$settings" "$flows" >>"$TMP/sup.log" 2>&1 &
  else
    "$CARMINE" --replicas "$n" -p "$port" --admin-port $((port + 1)) "$flows" >>"$TMP/sup.log" 2>&1 &
  fi
  SUP=$!
  PIDS+=("$SUP")
  wait_for 10 all_ready $((port + 1)) "$n"
}

stop_pid() { # stop_pid PID: SIGTERM, wait (bounded); returns its exit status
  local p=$1
  kill "$p" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  wait "$p" 2>/dev/null
}

# pids of the replicas a supervisor reports, in slot order
replica_pids() { curl -s "http://127.0.0.1:$1/status" | grep -o '"pid":[0-9]*' | cut -d: -f2; }

# wrk summary -> failed request count (socket errors + non-2xx/3xx)
wrk_failures() {
  awk '/Socket errors/ { gsub(",", ""); f += $4 + $6 + $8 + $10 } /Non-2xx/ { f += $5 } END { print f + 0 }' "$1"
}
wrk_requests() { awk '/requests in/ { print $1 }' "$1"; }
