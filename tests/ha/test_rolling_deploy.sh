#!/usr/bin/env bash
# test_rolling_deploy.sh: deploys through the supervisor's Admin API: rev
# checks (409), flows validated before anything changes (400, no replica
# touched), and two rolling deploys under steady load (wrk) with zero
# failed requests, after which every replica runs the new flows.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
API=$((PORT + 1))
cp flows/api.json "$TMP/flows.json"
# the same API whose change node answers "v2" instead of a timestamp
sed 's/"to":"","tot":"date"/"to":"v2","tot":"str"/' flows/api.json >"$TMP/v2.json"
echo '[{"id":"t1","type":"tab"},{"id":"n1","type":"no-such-node","z":"t1","wires":[]}]' >"$TMP/bad.json"
check "2 replicas ready" start_supervisor 2 "$PORT" "$TMP/flows.json"

rev=$(curl -s -H 'Node-RED-API-Version: v2' "http://127.0.0.1:$API/flows" | grep -o '"rev":"[0-9a-f]*"' | cut -d'"' -f4)
check "GET /flows v2 gives a sha-256 rev" test ${#rev} = 64
pids_before=$(replica_pids "$API" | sort | tr '\n' ' ')

out=$(curl -s -w ' %{http_code}' -XPOST -H 'Node-RED-API-Version: v2' -H 'Content-Type: application/json' \
  "http://127.0.0.1:$API/flows" -d "{\"flows\":$(cat "$TMP/v2.json"),\"rev\":\"0000\"}")
check "a wrong rev is refused: 409 version_mismatch" test "$out" = '{"code":"version_mismatch","message":"Error"} 409'
"$CARMINE" deploy "$TMP/bad.json" --to "http://127.0.0.1:$API/" 2>"$TMP/bad.err"
check "invalid flows are refused before anything changes" grep -q '400.*invalid_flows.*no-such-node' "$TMP/bad.err"
check "no replica was touched" test "$(replica_pids "$API" | sort | tr '\n' ' ')" = "$pids_before"
check "the flows file is untouched" cmp -s flows/api.json "$TMP/flows.json"

# steady load: every request a new connection, so each one meets whichever
# replicas listen at that moment (Connection: close; see docs/ha.md)
wrk -t2 -c20 -d8s --timeout 10s -H 'Connection: close' "http://127.0.0.1:$PORT/api" >"$TMP/wrk.txt" &
wrk_pid=$!
sleep 1.5
check "carmine deploy rolls the new flows out" "$CARMINE" deploy "$TMP/v2.json" --to "http://127.0.0.1:$API/"
sleep 1
v1=$(curl -s -w ' %{http_code}' -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$API/flows" --data-binary @flows/api.json)
check "a v1 deploy (no rev) rolls back: 204" test "$v1" = ' 204'
sleep 1
check "a third deploy (v2 with the current rev)" "$CARMINE" deploy "$TMP/v2.json" --to "http://127.0.0.1:$API/"
wait "$wrk_pid"
n=$(wrk_requests "$TMP/wrk.txt")
f=$(wrk_failures "$TMP/wrk.txt")
echo "# rolling deploys under load: $n requests, $f failed"
check "load ran ($n requests)" test "${n:-0}" -gt 500
check "zero failed requests during 3 rolling deploys" test "$f" = 0
check "the replicas answer with the new flows" test "$(curl -s "http://127.0.0.1:$PORT/api")" = v2
check "every replica was replaced 3 times" test "$(curl -s "http://127.0.0.1:$API/status" | grep -o '"generation":3' | wc -l)" = 3
check "one at a time: each old replica drained after its successor was ready" \
  test "$(grep -c 'replaced, draining' "$TMP/sup.log")" = 6
check "the flows file holds the deployed flows" grep -q '"to": "v2"' "$TMP/flows.json"
finish
