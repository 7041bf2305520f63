#!/usr/bin/env bash
# test_admin_sessions.sh: with adminAuth, a token issued by one replica works
# on every replica and on the supervisor, and a revoke ends it everywhere:
# they share userDir/.sessions.json. Requests on fresh connections spread
# over the 3 replicas (SO_REUSEPORT), so a token known to one process only
# would fail about two times in three.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
API=$((PORT + 1))
mkdir -p "$TMP/ud"
# bcryptjs.hashSync("secretpw", 8)
cat >"$TMP/settings.json" <<JSON
{"userDir": "$TMP/ud", "adminAuth": {"type": "credentials", "users": [
  {"username": "admin", "password": "\$2b\$08\$LR7jG2tMDcU6n3g8nN4nj.6/Zi56njsKQl7Oks//Crv8663q0XUs2", "permissions": "*"}]}}
JSON
check "3 replicas ready" start_supervisor 3 "$PORT" tests/ha/flows/ctx.json "$TMP/settings.json"

token=$(curl -s -d "client_id=node-red-admin&grant_type=password&scope=*&username=admin&password=secretpw" \
    "http://127.0.0.1:$PORT/auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("access_token",""))')
check "a replica issues a token" test -n "$token"

statuses() { # statuses URL N: the status of N requests, each on a new connection, one per line
    for _ in $(seq "$2"); do curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $token" "$1"; done
}
out=$(statuses "http://127.0.0.1:$PORT/flows" 30 | sort | uniq -c | tr -s ' ')
check "30 requests with it on new connections: all 200 ($out)" test "$(echo "$out" | awk '$2 == 200 {print $1}')" = 30
check "the supervisor takes it too" test "$(statuses "http://127.0.0.1:$API/flows" 1)" = 200
check "without it: 401" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/flows")" = 401
check "the sessions file is private (0600)" test "$(stat -c %a "$TMP/ud/.sessions.json")" = 600

curl -s -o /dev/null -H "Authorization: Bearer $token" --data-urlencode "token=$token" "http://127.0.0.1:$PORT/auth/revoke"
out=$(statuses "http://127.0.0.1:$PORT/flows" 15 | sort | uniq -c | tr -s ' ')
check "after a revoke on one replica, 15 requests: all 401 ($out)" test "$(echo "$out" | awk '$2 == 401 {print $1}')" = 15
check "and on the supervisor" test "$(statuses "http://127.0.0.1:$API/flows" 1)" = 401
stop_pid "$SUP"
finish
