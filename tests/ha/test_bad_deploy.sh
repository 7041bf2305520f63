#!/usr/bin/env bash
# test_bad_deploy.sh: deploys a supervisor must survive (issue 22, D1).
# A subflow that contains an instance of itself, or two that contain each
# other, overflowed the loader's stack: POSTed to a --replicas 2 supervisor
# it killed the supervisor (its in-process check) and both replicas. Now the
# check refuses them with 400 naming the subflow and nothing changes. Then a
# deploy whose new replica dies at load (it cannot reach Redis, which was
# stopped after the start): 500 deploy_failed, the previous flows stay in
# force (rev, flows file), the old replicas serve on.
source "$(dirname "$0")/lib.sh"
if ! command -v redis-server >/dev/null; then
  echo "# skipped: redis-server is not installed (tools/setup.sh installs it)"
  finish
fi
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.log" 2>&1 &
REDIS=$!
PIDS+=("$REDIS")
check "redis-server started" wait_for 5 redis-cli -p "$RPORT" ping
cat >"$TMP/settings.json" <<JSON
{"contextStorage":{"default":{"module":"redis","config":{"host":"127.0.0.1","port":$RPORT,"prefix":"bad$$"}}},
 "supervisor":{"restartBackoffMs":100,"readyTimeoutMs":10000}}
JSON
PORT=$(free_port)
API=$((PORT + 1))
cp flows/api.json "$TMP/flows.json"
check "2 replicas ready" start_supervisor 2 "$PORT" "$TMP/flows.json" "$TMP/settings.json"
rev0=$(curl -s -H 'Node-RED-API-Version: v2' "http://127.0.0.1:$API/flows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rev"])')
pids0=$(replica_pids "$API" | sort | tr '\n' ' ')

post() { curl -s -w ' %{http_code}' -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$API/flows" --data-binary "@$1"; }
out=$(post tests/faults/flows/subflow_rec.json)
check "a self-containing subflow: 400 naming it" \
  grep -q '"code":"invalid_flows","message":"subflow sf1 (S): Cannot add subflow to itself (node sfi is an instance of it)\\n"} 400$' <<<"$out"
out=$(post tests/faults/flows/subflow_mutual.json)
check "two subflows containing each other: 400 naming the cycle" \
  grep -q '"message":"subflow sfa (A): Cannot add subflow - circular reference detected (A -> B -> A)\\n"} 400$' <<<"$out"
check "the supervisor is alive" kill -0 "$SUP"
check "the same replicas serve on" test "$(replica_pids "$API" | sort | tr '\n' ' ')" = "$pids0"
check "GET /api answers" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api")" = 200

# a replica that dies at load: Redis is gone, a new replica refuses to start
kill "$REDIS"; wait "$REDIS" 2>/dev/null
python3 - "$TMP/new.json" <<'PY'
import json, sys
f = json.load(open("flows/api.json"))
for n in f:
    if n.get("type") == "http in": n["url"] = "/api2"
json.dump(f, open(sys.argv[1], "w"))
PY
cp "$TMP/flows.json" "$TMP/flows.before"
out=$(post "$TMP/new.json")
echo "# $out"
check "the deploy fails with 500 deploy_failed" grep -q '"code":"deploy_failed".* 500$' <<<"$out"
check "it says the new replica died and the previous flows stay" \
  grep -q "replica 1 did not start with the new flows: exit status 1; the previous flows (rev ${rev0:0:12}) stay in force" <<<"$out"
check "the replica named the store it could not use" grep -q '\[replica 1\] .*contextStorage.default: cannot use Redis' "$TMP/sup.log"
rev1=$(curl -s -H 'Node-RED-API-Version: v2' "http://127.0.0.1:$API/flows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rev"])')
check "GET /flows: the previous rev" test "$rev1" = "$rev0"
same_json() { python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$1" "$2"; }
check "the flows file holds the previous flows" same_json "$TMP/flows.json" "$TMP/flows.before"
check "the supervisor is alive" kill -0 "$SUP"
check "the old replicas serve on" test "$(replica_pids "$API" | sort | tr '\n' ' ')" = "$pids0"
check "GET /api answers" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api")" = 200
check "2 replicas ready" all_ready "$API" 2
stop_pid "$SUP"
check "SIGTERM: the supervisor exits 0" test $? = 0

finish
