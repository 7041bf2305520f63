#!/usr/bin/env bash
# test_crash_nginx.sh: the recipe across machines (here: three Carmine
# instances on separate loopback ports) behind Debian's nginx with retries
# for idempotent requests (tools/ha/nginx.conf.in): under steady load,
# kill -9 of one instance loses no request; nginx's log shows the requests
# it had in flight there, retried elsewhere.
source "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || { echo "# nginx is not installed (tools/setup.sh installs it)"; not_ok "nginx available"; finish; }

LB=$(free_port)
ports=()
inst=()
for i in 1 2 3; do
  p=$(free_port)
  ports+=("$p")
  "$CARMINE" -p "$p" flows/api.json >"$TMP/carmine-$i.log" 2>&1 &
  inst+=($!)
  PIDS+=($!)
done
tools/ha/nginx-lb.sh "$LB" "$TMP/nginx" "${ports[@]}" >"$TMP/nginx.out" 2>&1 &
PIDS+=($!)
up() { curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; }
check "3 instances ready" wait_for 5 up "${ports[0]}" && wait_for 5 up "${ports[1]}" && wait_for 5 up "${ports[2]}"
check "nginx answers /api from an instance" wait_for 5 curl -sf "http://127.0.0.1:$LB/api"

wrk -t2 -c30 -d6s --timeout 10s "http://127.0.0.1:$LB/api" >"$TMP/wrk.txt" &
wrk_pid=$!
sleep 2
victim=${inst[1]}
inflight=$(ss -Htnp state established "( sport = :${ports[1]} )" | grep -c "pid=$victim,")
kill -9 "$victim"
wait "$wrk_pid"
n=$(wrk_requests "$TMP/wrk.txt")
f=$(wrk_failures "$TMP/wrk.txt")
retried=$(grep -cE 'upstream prematurely closed|Connection reset by peer|Connection refused' "$TMP/nginx/error.log" || true)
echo "# behind nginx: $n requests, $f failed; the killed instance held $inflight connections from nginx; nginx logged $retried upstream errors (each retried on another instance)"
check "load ran ($n requests)" test "${n:-0}" -gt 500
check "the killed instance was serving requests" test "$inflight" -gt 0
check "kill -9 behind nginx: zero failed requests" test "$f" = 0
finish
