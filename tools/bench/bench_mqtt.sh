#!/usr/bin/env bash
# bench_mqtt.sh: messages per second through mqtt in -> change -> mqtt out,
# at QoS 0 and QoS 1, in Carmine and in Node-RED 4.1.15, on the same local
# Mosquitto broker (started here on a free port), in alternating rounds.
#
# tools/bench/mqtt_load.c publishes N messages on bench/in (at most 2,000
# ahead of what came back) and counts the N that the flow republishes on
# bench/out; the rate is N over the time from the first publish to the last
# arrival. Beside each rate, the CPU time (user + system, from the kernel's
# per-thread run time, all threads) per message of the three processes of
# the run: the runtime, the broker and the load program, so a table shows
# which of them was the limit. "broker" is the same load without a flow (the
# counter subscribes to bench/in): the ceiling of the broker and the load.
#
# Part 2, "runtime the limit": each runtime, once started and warmed up, is
# put into a CPU cgroup capped at CAP of one core (cgroup v1 cpu.cfs_quota_us
# or v2 cpu.max; root only), the same for both, and the same rounds run
# again. With the runtime held well below the broker's ceiling, the rate is
# what the runtime itself can carry on that much CPU. Skipped (with a note)
# where no cgroup can be made.
#
# Part 3: RSS of each runtime with 1,000 mqtt in nodes subscribed to 1,000
# topics on one broker.
#
#   tools/bench/bench_mqtt.sh [BUILD_DIR] [MESSAGES] [ROUNDS]      (build, 100000, 3)
# Environment: CAP (fraction of a core, 0.05; 0 skips part 2), CAP_MESSAGES
# (MESSAGES / 5), NR_RED=path/to/red.js (Node-RED: tools/bench/node_modules/
# node-red, which tools/bench/run.sh installs, or ~/.cache/flowtest-record/nr).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${2:-100000}
ROUNDS=${3:-3}
CAP=${CAP:-0.05}
CAP_N=${CAP_MESSAGES:-$((N / 5))}
PATH=$PATH:/usr/sbin
for t in mosquitto mosquitto_pub mosquitto_sub; do command -v "$t" >/dev/null || { echo "bench_mqtt: $t is not installed (tools/setup.sh)" >&2; exit 1; }; done
NR_RED=${NR_RED:-}
for c in tools/bench/node_modules/node-red/red.js "$HOME/.cache/flowtest-record/nr/node_modules/node-red/red.js"; do
    [ -z "$NR_RED" ] && [ -f "$c" ] && NR_RED=$c
done
TMP=$(mktemp -d)
chmod 755 "$TMP"
PIDS=()
CG=
cleanup() { # (set -e must not stop it half-way: every step may fail)
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [ -n "$CG" ]; then
        for _ in $(seq 50); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
    fi
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
BROKER=$!
PIDS+=("$BROKER")
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

# CPU time of a process in ns, all its threads (the kernel's run time: no
# 10 ms ticks).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# measure KIND QOS COUNT LABEL ROUND: one run; appends a line to $TMP/lines:
# label kind qos round msg/s runtime-us/msg broker-us/msg load-us/msg
measure() {
    local kind=$1 q=$2 n=$3 out r0=0 r1=0 b0 b1 rate lcpu
    b0=$(cpu_ns "$BROKER")
    [ "$kind" != broker ] && r0=$(cpu_ns "$RPID")
    out=$("$TMP/mqtt_load" "$MQ" "$q" "$n" bench/in "$([ "$kind" = broker ] && echo bench/in || echo bench/out)" 2>>"$TMP/load.err") || out="0 0"
    [ "$kind" != broker ] && r1=$(cpu_ns "$RPID")
    b1=$(cpu_ns "$BROKER")
    read -r rate lcpu <<<"$out"
    awk -v l="$4" -v k="$kind" -v q="$q" -v rd="$5" -v n="$n" -v rate="$rate" -v r=$((r1 - r0)) -v b=$((b1 - b0)) -v lc="$lcpu" \
        'BEGIN {printf "%s %s %d %d %d %.2f %.2f %.2f\n", l, k, q, rd, rate, r / n / 1000, b / n / 1000, lc * 1e6 / n}' \
        | tee -a "$TMP/lines" | awk '{printf "  %-8s QoS %d round %d: %7d msg/s   us per message: runtime %6.2f  broker %6.2f  load %5.2f   cores used: runtime %.2f  broker %.2f\n", $2, $3, $4, $5, $6, $7, $8, $5 * $6 / 1e6, $5 * $7 / 1e6}'
}

# The cgroup for part 2 (empty when none can be made).
make_cgroup() {
    local period=20000 quota
    quota=$(awk -v c="$CAP" -v p="$period" 'BEGIN {printf "%d", c * p}')
    if [ -w /sys/fs/cgroup/cpu/cgroup.procs ] 2>/dev/null && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        CG=/sys/fs/cgroup/cpu/carmine-bench-$$
        mkdir "$CG" 2>/dev/null && echo "$period" >"$CG/cpu.cfs_period_us" && echo "$quota" >"$CG/cpu.cfs_quota_us" && return 0
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
        CG=/sys/fs/cgroup/carmine-bench-$$
        mkdir "$CG" 2>/dev/null && echo "$quota $period" >"$CG/cpu.max" && return 0
    fi
    [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
    CG=
    return 1
}

summary() { # summary LABEL
    awk -v l="$1" '$1 == l {k = $2 " QoS " $3; n[k]++; s[k] += $5; r[k] += $6; b[k] += $7; g[k] += $8}
        END {for (k in n) printf "  %-16s %8.0f msg/s   us per message: runtime %6.2f  broker %6.2f  load %5.2f\n", k, s[k]/n[k], r[k]/n[k], b[k]/n[k], g[k]/n[k]}' "$TMP/lines" | sort
    for q in 0 1; do
        awk -v l="$1" -v q="$q" '$1 == l && $3 == q {n[$2]++; s[$2] += $5; r[$2] += $6; b[$2] += $7}
            END {if (n["nodered"] && s["nodered"] && r["carmine"]) printf "  QoS %d: carmine is %.1fx Node-RED in msg/s, %.1fx in CPU per message (%.2f / %.2f us); broker CPU per message %.2f beside %.2f us\n", q, s["carmine"]/s["nodered"], r["nodered"]/r["carmine"], r["carmine"]/n["carmine"], r["nodered"]/n["nodered"], b["carmine"]/n["carmine"], b["nodered"]/n["nodered"]}' "$TMP/lines"
    done
}

KINDS="broker carmine"
[ -n "$NR_RED" ] && command -v node >/dev/null && KINDS="$KINDS nodered"
: >"$TMP/lines"
echo "part 1: $N messages a run, nothing capped ($(uptime | sed 's/.*load/load/'))"
for round in $(seq "$ROUNDS"); do
    for q in 0 1; do
        flow "$q" "$TMP/flow$q.json"
        for kind in $KINDS; do
            if [ "$kind" = broker ]; then
                measure broker "$q" "$N" free "$round"
            else
                start "$kind" "$TMP/flow$q.json"
                "$TMP/mqtt_load" "$MQ" "$q" 2000 bench/in bench/out >/dev/null 2>&1 || true # warm-up
                measure "$kind" "$q" "$N" free "$round"
                stop
            fi
        done
    done
done
echo "means of $ROUNDS rounds (mqtt in -> change -> mqtt out; $(uptime | sed 's/.*load/load/')):"
summary free

if [ "$CAP" != 0 ] && make_cgroup; then
    echo "part 2: each runtime capped at $CAP of a core (cgroup), $CAP_N messages a run ($(uptime | sed 's/.*load/load/'))"
    for round in $(seq "$ROUNDS"); do
        for q in 0 1; do
            for kind in $KINDS; do
                [ "$kind" = broker ] && continue
                start "$kind" "$TMP/flow$q.json"
                "$TMP/mqtt_load" "$MQ" "$q" 2000 bench/in bench/out >/dev/null 2>&1 || true # warm-up
                echo "$RPID" >"$CG/cgroup.procs"
                measure "$kind" "$q" "$CAP_N" capped "$round"
                stop
            done
        done
    done
    echo "means of $ROUNDS rounds, runtimes capped at $CAP of a core ($(uptime | sed 's/.*load/load/')):"
    summary capped
elif [ "$CAP" != 0 ]; then
    echo "part 2 skipped: no CPU cgroup could be made here (needs root and a cgroup v1 cpu or v2 cpu controller)"
fi

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
