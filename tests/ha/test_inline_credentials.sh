#!/usr/bin/env bash
# test_inline_credentials.sh: a flows file whose nodes carry their
# credentials inline (as an export "with credentials" has them). The
# supervisor moves them into flows_cred.json at start, as a deploy does:
# its GET /flows never shows them, its rev is the replicas' rev, and a
# deploy made from its GET /flows keeps the node's credentials.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
API=$((PORT + 1))
mkdir -p "$TMP/ud"
cat >"$TMP/flows.json" <<'JSON'
[{"id":"t1","type":"tab","label":"T","env":[{"name":"SECRET","value":"","type":"cred"}],"credentials":{"SECRET":"s3cret"}},
 {"id":"in","type":"http in","z":"t1","url":"/who","method":"get","x":100,"y":50,"wires":[["env"]]},
 {"id":"env","type":"change","z":"t1","rules":[{"t":"set","p":"payload","pt":"msg","to":"SECRET","tot":"env"}],"x":300,"y":50,"wires":[["out"]]},
 {"id":"out","type":"http response","z":"t1","statusCode":"","headers":{},"x":500,"y":50,"wires":[]}]
JSON
echo "{\"userDir\": \"$TMP/ud\", \"credentialSecret\": \"a-test-key\"}" >"$TMP/settings.json"
check "2 replicas ready" start_supervisor 2 "$PORT" "$TMP/flows.json" "$TMP/settings.json"

v2() { curl -s -H 'Node-RED-API-Version: v2' "$1/flows"; }
sup=$(v2 "http://127.0.0.1:$API")
rep=$(v2 "http://127.0.0.1:$PORT")
check "the supervisor's GET /flows shows no credentials" test "$(grep -c '"credentials"' <<<"$sup")" = 0
check "nor does a replica's" test "$(grep -c '"credentials"' <<<"$rep")" = 0
rev() { python3 -c 'import json,sys; print(json.load(sys.stdin)["rev"])'; }
check "the supervisor's rev is the replicas' rev" test "$(rev <<<"$sup")" = "$(rev <<<"$rep")"
check "the tab's cred env entry reads the secret" bash -c "curl -s 'http://127.0.0.1:$PORT/who' | grep -qx s3cret"
check "the credentials went to flows_cred.json, encrypted" \
    bash -c "test -s '$TMP/flows_cred.json' && ! grep -q s3cret '$TMP/flows_cred.json'"

# a deploy of what GET /flows gave keeps the credentials
flows=$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["flows"]))' <<<"$sup")
curl -s -o /dev/null -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$API/flows" -d "$flows"
wait_for 20 all_ready "$API" 2
sleep 1
check "after the deploy, the tab's cred env entry still reads the secret" \
    bash -c "curl -s 'http://127.0.0.1:$PORT/who' | grep -qx s3cret"
stop_pid "$SUP"
finish
