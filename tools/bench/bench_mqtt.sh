#!/usr/bin/env bash
# bench_mqtt.sh: messages per second through mqtt in -> change -> mqtt out,
# at QoS 0 and QoS 1, in Carmine and in Node-RED 4.1.15, on the same local
# Mosquitto broker (started here on a free port), in alternating rounds.
# tools/bench/mqtt_load.c publishes N messages on bench/in (at most 2,000
# ahead of what came back) and counts the N that the flow republishes on
# bench/out; the rate is N over the time from the first publish to the last
# arrival, and N over the CPU time (user + system) the runtime spent meanwhile
# (what a runtime can carry when the broker is not the limit). "broker" is the same load without a flow (the counter subscribes
# to bench/in): the ceiling of the broker and the load program. Also: RSS of each runtime with one mqtt in
# node subscribed to 1,000 topics each (1,000 nodes).
#
#   tools/bench/bench_mqtt.sh [BUILD_DIR] [MESSAGES] [ROUNDS]      (build, 100000, 3)
# Node-RED: tools/bench/node_modules/node-red (tools/bench/run.sh installs
# it) or ~/.cache/flowtest-record/nr; NR_RED=path/to/red.js overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${2:-100000}
ROUNDS=${3:-3}
PATH=$PATH:/usr/sbin
for t in mosquitto mosquitto_pub mosquitto_sub; do command -v "$t" >/dev/null || { echo "bench_mqtt: $t is not installed (tools/setup.sh)" >&2; exit 1; }; done
NR_RED=${NR_RED:-}
for c in tools/bench/node_modules/node-red/red.js "$HOME/.cache/flowtest-record/nr/node_modules/node-red/red.js"; do
    [ -z "$NR_RED" ] && [ -f "$c" ] && NR_RED=$c
done
TMP=$(mktemp -d)
chmod 755 "$TMP"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
        ss -Htln "( sport = :$p )" | grep -q . || { echo "$p"; return; }
    done
}
gcc -O2 -o "$TMP/mqtt_load" tools/bench/mqtt_load.c
MQ=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' "$MQ" >"$TMP/mosq.conf"
mosquitto -c "$TMP/mosq.conf" >"$TMP/mosq.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do ss -Htln "( sport = :$MQ )" | grep -q . && break; sleep 0.05; done

flow() { # flow QOS FILE: the benchmark flow
    cat >"$2" <<JSON
[{"id":"t","type":"tab","label":"bench"},
 {"id":"b","type":"mqtt-broker","broker":"127.0.0.1","port":"$MQ","clientid":"","autoConnect":true,"usetls":false,
  "protocolVersion":"4","keepalive":"60","cleansession":true,"birthTopic":"bench/ready","birthQos":"0","birthPayload":"up","birthMsg":{}},
 {"id":"in","type":"mqtt in","z":"t","topic":"bench/in","qos":"$1","datatype":"auto-detect","broker":"b","inputs":0,"wires":[["ch"]]},
 {"id":"ch","type":"change","z":"t","rules":[{"t":"set","p":"topic","pt":"msg","to":"bench/out","tot":"str"},
   {"t":"set","p":"seen","pt":"msg","to":"","tot":"date"}],"wires":[["out"]]},
 {"id":"out","type":"mqtt out","z":"t","topic":"","qos":"$1","retain":"false","broker":"b","wires":[]}]
JSON
}
echo 'module.exports = { credentialSecret: false, logging: { console: { level: "warn" } } };' >"$TMP/nr-settings.js"

start() { # start KIND FLOW: runs it, waits for its birth message
    timeout 60 mosquitto_sub -h 127.0.0.1 -p "$MQ" -C 1 -t bench/ready >/dev/null &
    local w=$!
    sleep 0.2
    case $1 in
        carmine) "$BUILD/carmine" -p "$(free_port)" -u "$TMP" "$2" >/dev/null 2>&1 & ;;
        nodered) node "$NR_RED" -u "$TMP/nr-user" -s "$TMP/nr-settings.js" -p "$(free_port)" "$2" >/dev/null 2>&1 & ;;
    esac
    RPID=$!
    PIDS+=("$RPID")
    wait "$w"
}
stop() { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null || true; }

run_once() { # run_once QOS COUNT OUT_TOPIC: prints messages/s
    "$TMP/mqtt_load" "$MQ" "$1" "$2" bench/in "$3" 2>>"$TMP/load.err" || echo 0
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system time of a process

KINDS="broker carmine"
[ -n "$NR_RED" ] && command -v node >/dev/null && KINDS="$KINDS nodered"
: >"$TMP/lines"
for round in $(seq "$ROUNDS"); do
    for q in 0 1; do
        flow "$q" "$TMP/flow$q.json"
        for kind in $KINDS; do
            if [ "$kind" = broker ]; then
                r=$(run_once "$q" "$N" bench/in)
            else
                start "$kind" "$TMP/flow$q.json"
                run_once "$q" 2000 bench/out >/dev/null # warm-up
                c0=$(cpu_ticks "$RPID")
                r=$(run_once "$q" "$N" bench/out)
                c1=$(cpu_ticks "$RPID")
                stop
            fi
            if [ "$kind" = broker ]; then cpu=0; else cpu=$(awk -v n="$N" -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", (t > 0 ? n / (t / hz) : 0)}'); fi
            printf '%-8s QoS %d round %d: %8d msg/s %9d msg per CPU second\n' "$kind" "$q" "$round" "$r" "$cpu" | tee -a "$TMP/lines"
        done
    done
done
echo "mean of $ROUNDS rounds, $N messages each (mqtt in -> change -> mqtt out):"
awk '{k=$1" QoS "$3; n[k]++; s[k]+=$6; c[k]+=$8} END {for (k in n) printf "  %-16s %10.0f msg/s %10.0f msg per CPU second\n", k, s[k]/n[k], c[k]/n[k]}' "$TMP/lines" | sort
for q in 0 1; do
    awk -v q="$q" '$3==q {n[$1]++; s[$1]+=$6; c[$1]+=$8} END {if (n["nodered"] && s["nodered"] && c["nodered"]) printf "  QoS %d: carmine is %.1fx Node-RED in msg/s, %.1fx in msg per CPU second\n", q, s["carmine"]/s["nodered"], c["carmine"]/c["nodered"]}' "$TMP/lines"
done

# RSS with 1,000 topics subscribed (1,000 mqtt in nodes on one broker).
python3 - "$MQ" >"$TMP/topics.json" <<'PY'
import json, sys
port = sys.argv[1]
f = [{"id": "t", "type": "tab", "label": "topics"},
     {"id": "b", "type": "mqtt-broker", "broker": "127.0.0.1", "port": port, "clientid": "", "autoConnect": True,
      "usetls": False, "protocolVersion": "4", "keepalive": "60", "cleansession": True,
      "birthTopic": "bench/ready", "birthQos": "0", "birthPayload": "up", "birthMsg": {}}]
for i in range(1000):
    f.append({"id": "i%d" % i, "type": "mqtt in", "z": "t", "topic": "sensors/%d/+" % i, "qos": "1",
              "datatype": "auto-detect", "broker": "b", "inputs": 0, "wires": [[]]})
print(json.dumps(f))
PY
for kind in $KINDS; do
    [ "$kind" = broker ] && continue
    start "$kind" "$TMP/topics.json"
    sleep 2
    printf '  RSS with 1,000 topics subscribed, %-8s %6d KiB\n' "$kind" "$(awk '/VmRSS/ {print $2}' /proc/$RPID/status)"
    stop
done
