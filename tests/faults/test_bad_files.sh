#!/usr/bin/env bash
# test_bad_files.sh: bad flow and settings files through the command line,
# as a user meets them: `carmine check` and a run refuse with the reason and
# exit 1, never a crash (issue 22: a subflow holding itself, D1, overflowed
# the stack in check and run alike; a huge cron step, D10, overflowed an int).
source "$(dirname "$0")/../ha/lib.sh"
F=tests/faults/flows
run_rc() { # expected-rc expected-text command...: exit status and a line of its output
  local want=$1 text=$2; shift 2
  local out rc
  out=$(timeout 20 "$@" 2>&1); rc=$?
  [ "$rc" = "$want" ] && grep -qF -- "$text" <<<"$out" || { echo "# exit $rc: $out" | head -n 5; return 1; }
}
check "check: a subflow holding itself is refused, naming it" \
  run_rc 1 "subflow sf1 (S): Cannot add subflow to itself (node sfi is an instance of it)" "$CARMINE" check $F/subflow_rec.json
check "check: subflows holding each other are refused, naming the cycle" \
  run_rc 1 "subflow sfa (A): Cannot add subflow - circular reference detected (A -> B -> A)" "$CARMINE" check $F/subflow_mutual.json
PORT=$(free_port)
check "run: a subflow holding itself is refused before anything listens" \
  run_rc 1 "Cannot add subflow to itself" "$CARMINE" -p "$PORT" $F/subflow_rec.json
check "a supervisor refuses it at start, before any replica" \
  run_rc 1 "subflow sfa (A): Cannot add subflow - circular reference detected (A -> B -> A)" \
  "$CARMINE" --replicas 2 -p "$PORT" --admin-port $((PORT + 1)) $F/subflow_mutual.json
check "check: a cron step of 4294967296 is read as cronosjs reads it" run_rc 0 "$F/cron-overflow.json: ok" "$CARMINE" check $F/cron-overflow.json
printf '[{"id":' >"$TMP/trunc.json"
check "a flows file that is not JSON: refused with the place" run_rc 1 "line 1 column" "$CARMINE" check "$TMP/trunc.json"
echo '{"a":1}' >"$TMP/obj.json"
check "a flows file that is not an array" \
  run_rc 1 "flows: the file must hold a JSON array of node objects" "$CARMINE" check "$TMP/obj.json"
echo '{"port":' >"$TMP/s1.json"
check "a settings file that is not JSON: refused naming it" run_rc 1 "(settings file)" "$CARMINE" check -s "$TMP/s1.json" $F/cron-overflow.json
echo '[1]' >"$TMP/s2.json"
check "a settings file that is not an object" \
  run_rc 1 "settings file $TMP/s2.json: must hold a JSON object" "$CARMINE" check -s "$TMP/s2.json" $F/cron-overflow.json
echo '{"contextStorage":{"default":{"module":"nosuch"}}}' >"$TMP/s3.json"
check "an unknown context store module: refused naming it" \
  run_rc 1 "contextStorage.default: unknown module 'nosuch' (memory, localfilesystem, redis)" \
  "$CARMINE" -p "$PORT" -s "$TMP/s3.json" $F/cron-overflow.json
touch "$TMP/blocker"
echo "{\"contextStorage\":{\"default\":{\"module\":\"localfilesystem\",\"config\":{\"dir\":\"$TMP/blocker/x\"}}}}" >"$TMP/s4.json"
check "a context directory that cannot be created: refused naming the store" \
  run_rc 1 "context store default: cannot create $TMP/blocker/x/context" "$CARMINE" -p "$PORT" -s "$TMP/s4.json" $F/cron-overflow.json
finish
