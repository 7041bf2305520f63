#!/usr/bin/env bash
# test_bad_deploy_rollback.sh: a deploy that fails at the second slot (issue
# 22, D1's "survive a replica that dies at load"): the first slot, already
# replaced, is rolled back to the previous flows. Split from
# test_bad_deploy.sh so that each has the HA runner's 120 s.
source "$(dirname "$0")/lib.sh"
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
post() { curl -s -w ' %{http_code}' -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$API/flows" --data-binary "@$1"; }
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
