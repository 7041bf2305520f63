#!/usr/bin/env bash
# test_disk_full.sh: localfilesystem context on a full disk and on a
# read-only one (issue 22, D8), on a small tmpfs mounted here (needs the
# right to mount; skipped otherwise: tests/unit/test_context_file.c injects
# the same write error without it). 100 values of 4 kB are set through HTTP
# into a 128 kB tmpfs: every one is acknowledged, the flush fails (logged,
# shown by /readyz), and once the tmpfs grows every acknowledged value is in
# the file. Node-RED's store (and Carmine's before) lost 80 of 100. Then a
# start on a read-only directory warns, and what was set is written once it
# is writable again.
source "$(dirname "$0")/../ha/lib.sh"
MNT=$TMP/tiny
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=128k tmpfs "$MNT" 2>/dev/null; then
  echo "# skipped: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
  finish
fi
cleanup_mount() { umount "$MNT" 2>/dev/null; cleanup; }
trap cleanup_mount EXIT
cat >"$TMP/settings.json" <<JSON
{"contextStorage":{"default":{"module":"localfilesystem","config":{"dir":"$MNT","flushInterval":0.2}}}}
JSON
PORT=$(free_port)
"$CARMINE" -p "$PORT" -s "$TMP/settings.json" tests/faults/flows/context-set.json >"$TMP/run.log" 2>&1 &
CPID=$!
PIDS+=("$CPID")
check "carmine ready" wait_for 5 curl -sf "http://127.0.0.1:$PORT/readyz"
python3 - "$PORT" "$TMP/acked" <<'PY'
import sys, urllib.request
port, out = int(sys.argv[1]), sys.argv[2]
acked = []
for i in range(100):
    body = ("v%d-" % i).encode() + b"x" * 4000
    req = urllib.request.Request("http://127.0.0.1:%d/set/k%d" % (port, i), data=body, headers={"Content-Type": "text/plain"})
    try:
        if urllib.request.urlopen(req, timeout=5).read() == b"ok": acked.append("k%d" % i)
    except Exception as e:
        pass
open(out, "w").write("\n".join(acked))
PY
check "all 100 sets acknowledged" test "$(wc -l <"$TMP/acked")" -ge 99
failing() { curl -s "http://127.0.0.1:$PORT/readyz" | grep -q '"contextWriteErrors":\[{"store":"default","error":"cannot write .*No space left on device"'; }
check "/readyz shows the write error (and stays 200)" wait_for 5 failing
check "the error is logged once, naming the store" \
  test "$(grep -c '\[error\] context store default: cannot write .*No space left on device; 1 scope kept in memory' "$TMP/run.log")" = 1
check "the values are still there" test "$(curl -s "http://127.0.0.1:$PORT/get")" = 100
mount -o remount,size=4m "$MNT"
written() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["d"]; sys.exit(not all(k in d and d[k].startswith("v%s-" % k[1:]) for k in open(sys.argv[2]).read().split()))' "$MNT/context/global/global.json" "$TMP/acked" 2>/dev/null; }
check "space returns: every acknowledged value is in the file" wait_for 5 written
check "the recovery is logged" wait_for 2 grep -q '\[warn\] context store default: written again after' "$TMP/run.log"
check "/readyz is plain again" test "$(curl -s "http://127.0.0.1:$PORT/readyz")" = '{"ready":true}'
stop_pid "$CPID"

# a read-only directory at start: a warning; set values are written once it is writable
mount -o remount,ro "$MNT"
"$CARMINE" -p "$PORT" -s "$TMP/settings.json" tests/faults/flows/context-set.json >"$TMP/run2.log" 2>&1 &
CPID=$!
PIDS+=("$CPID")
check "carmine starts on a read-only directory" wait_for 5 curl -sf "http://127.0.0.1:$PORT/readyz"
check "and warns that it is not writable" \
  grep -q "\[warn\] context store default: $MNT/context is not writable (Read-only file system): context is kept in memory" "$TMP/run2.log"
check "a set is acknowledged" test "$(curl -s -XPOST -H 'Content-Type: text/plain' "http://127.0.0.1:$PORT/set/late" -d late-value)" = ok
check "the old values were loaded" test "$(curl -s "http://127.0.0.1:$PORT/get")" = 101
mount -o remount,rw "$MNT"
late() { grep -q '"late": "late-value"' "$MNT/context/global/global.json"; }
check "writable again: the value set meanwhile is written" wait_for 5 late

# stopping while the write fails: retried, then logged by scope
mount -o remount,ro "$MNT"
curl -s -XPOST -H 'Content-Type: text/plain' "http://127.0.0.1:$PORT/set/lost" -d x >/dev/null
stop_pid "$CPID"
check "stop retries and logs the scope it could not write" \
  grep -q '\[error\] context store default: stopping with 1 scope not written (global) after 4 attempts: cannot write .*Read-only file system' "$TMP/run2.log"
finish
