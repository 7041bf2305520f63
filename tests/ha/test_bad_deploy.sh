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

# a deploy that fails at the second slot: the first, already replaced, is
# rolled back to the previous flows (the new flows carry 20,000 junctions so
# that a replica takes a while to load them; the second is killed meanwhile)
PORT=$(free_port)
API=$((PORT + 1))
cp flows/api.json "$TMP/flows2.json"
: >"$TMP/sup.log"
echo '{"supervisor":{"readyTimeoutMs":120000}}' >"$TMP/settings2.json"
check "2 replicas ready (no Redis)" start_supervisor 2 "$PORT" "$TMP/flows2.json" "$TMP/settings2.json"
rev0=$(curl -s -H 'Node-RED-API-Version: v2' "http://127.0.0.1:$API/flows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rev"])')
# JUNCTIONS: fewer under a sanitizer build, where loading is ~30 times slower
python3 - "$TMP/big.json" "${JUNCTIONS:-20000}" <<'PY'
import json, sys
f = json.load(open("flows/api.json"))
z = next(n["z"] for n in f if n.get("type") == "http in")
for n in f:
    if n.get("type") == "http in": n["url"] = "/api2"
f += [{"id": "j%d" % i, "type": "junction", "z": z, "x": 1, "y": 1, "wires": []} for i in range(int(sys.argv[2]))]
json.dump(f, open(sys.argv[1], "w"))
PY
post "$TMP/big.json" >"$TMP/post.out" &
POSTPID=$!
second() { grep -o 'deploy 1: replica 2 (pid [0-9]*) starting' "$TMP/sup.log" | grep -o '[0-9]*)' | tr -d ')'; }
has_second() { [ -n "$(second)" ]; }
wait_for 120 has_second
victim=$(second)
[ -n "$victim" ] && kill -9 "$victim"
wait "$POSTPID"
out=$(cat "$TMP/post.out")
echo "# $out"
check "the deploy fails naming the second replica"   grep -q "replica 2 did not start with the new flows: killed by signal 9 (Killed); the previous flows (rev ${rev0:0:12}) stay in force, the replicas already replaced are rolled back\".* 500$" <<<"$out"
rolled() { grep -q "deploy 2 done: every replica runs rev ${rev0:0:12}" "$TMP/sup.log"; }
check "the first replica is rolled back (deploy 2 runs the previous rev)" wait_for 120 rolled
rev1=$(curl -s -H 'Node-RED-API-Version: v2' "http://127.0.0.1:$API/flows" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rev"])')
check "GET /flows: the previous rev" test "$rev1" = "$rev0"
codes=$(for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code} ' "http://127.0.0.1:$PORT/api"; curl -s -o /dev/null -w '%{http_code} ' "http://127.0.0.1:$PORT/api2"; done)
echo "# codes: $codes"
check "every replica serves the previous flows (/api 200, /api2 404)" test "$(echo $codes | tr " " "\n" | sort | uniq -c | tr -s " " | tr "\n" ",")" = " 12 200, 12 404,"
check "2 replicas ready" all_ready "$API" 2
stop_pid "$SUP"
check "SIGTERM: the supervisor exits 0" test $? = 0
finish
