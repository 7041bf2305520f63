#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (see tests/fuzz/README.md).
#
#   tools/fuzz-run.sh TARGET SECONDS   one target for SECONDS (a long run), e.g.
#                                      tools/fuzz-run.sh fuzz_jsonata_eval 3600
#   tools/fuzz-run.sh --all SECONDS    every target for SECONDS each (the short run
#                                      tools/run-tests.sh makes); last line "N passed, N failed"
#   tools/fuzz-run.sh --list           the targets
#
# Builds them first in FUZZ_BUILD_DIR (default build-fuzz: CC=clang, -Dfuzz=true,
# ASan+UBSan). Before fuzzing, a target runs every file of tests/fuzz/crashes/TARGET/
# (crashes found earlier, kept as regression inputs). The growing corpus is kept in
# FUZZ_BUILD_DIR/corpus/TARGET, seeded from tests/fuzz/corpus/TARGET/ and from
# tests/fuzz/TARGET.seeds when there is one; a dictionary tests/fuzz/TARGET.dict is
# used when there is one. A crash is written to FUZZ_BUILD_DIR/crashes/TARGET/ and the
# run fails; its log is FUZZ_BUILD_DIR/logs/TARGET.log. FUZZ_JOBS=N runs N fuzzing
# processes in parallel for one target (default 1). Extra libFuzzer flags: FUZZ_FLAGS.
# FUZZ_FORK=N: libFuzzer's fork mode with N processes, going on after a crash.
# FUZZ_SANITIZE=none (with a FUZZ_BUILD_DIR of its own) builds without ASan/UBSan:
# three to five times the executions, for long runs; crashes are then replayed on
# the sanitized build.
set -u
cd "$(dirname "$0")/.."
B=$(realpath -m "${FUZZ_BUILD_DIR:-build-fuzz}")
ROOT=$(pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

targets() { for f in tests/fuzz/fuzz_*.c; do [ -f "$f" ] && basename "$f" .c; done; }

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

build() { # build the named targets
  if ! command -v clang >/dev/null; then echo "fuzz: clang is not installed (tools/setup.sh)"; return 1; fi
  if [ ! -f "$B/build.ninja" ]; then
    CC=clang meson setup "$B" -Dfuzz=true -Db_sanitize=${FUZZ_SANITIZE:-address,undefined} -Db_lundef=false \
      -Dbuildtype=debugoptimized >/tmp/fuzz-setup.$$.log 2>&1 || { cat /tmp/fuzz-setup.$$.log; return 1; }
  else
    meson setup --reconfigure "$B" >/dev/null 2>&1 || true # picks up new files in tests/fuzz
  fi
  local t paths=()
  for t in "$@"; do paths+=("tests/fuzz/$t"); done
  ninja -C "$B" "${paths[@]}" >"$B/fuzz-build.log" 2>&1 || { tail -n 40 "$B/fuzz-build.log"; return 1; }
}

run_one() { # target seconds: returns 0 when no crash
  local t=$1 secs=$2
  local bin="$B/tests/fuzz/$t" corpus="$B/corpus/$t" crashes="$B/crashes/$t" log="$B/logs/$t.log"
  mkdir -p "$corpus" "$crashes" "$B/logs"
  # regression inputs first: each must run clean
  if [ -d "tests/fuzz/crashes/$t" ] && [ -n "$(ls -A "tests/fuzz/crashes/$t")" ]; then
    if ! "$bin" -runs=1 "tests/fuzz/crashes/$t"/* >"$log.regress" 2>&1; then
      tail -n 30 "$log.regress"; echo "$t: a regression input in tests/fuzz/crashes/$t fails"; return 1
    fi
  fi
  local seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("$ROOT/tests/fuzz/corpus/$t")
  if [ -x "tests/fuzz/$t.seeds" ]; then
    if [ ! -d "$B/seeds/$t" ]; then "tests/fuzz/$t.seeds" "$B/seeds/$t" >/dev/null || return 1; fi
    seeds+=("$B/seeds/$t")
  fi
  local flags=(-max_total_time="$secs" -timeout=${FUZZ_TIMEOUT:-10} -rss_limit_mb=${FUZZ_RSS_MB:-2560}
    -max_len=${FUZZ_MAX_LEN:-8192} -artifact_prefix="$crashes/" -print_final_stats=1)
  [ -f "tests/fuzz/$t.dict" ] && flags+=(-dict="$ROOT/tests/fuzz/$t.dict")
  local jobs=${FUZZ_JOBS:-1} rc execs=
  local start=$SECONDS
  if [ -n "${FUZZ_FORK:-}" ]; then
    # fork mode: N child processes, and a crash does not end the run (each is saved)
    (cd "$B/logs" && exec "$bin" "${flags[@]}" -fork="$FUZZ_FORK" -ignore_crashes=1 -ignore_timeouts=1 \
      -ignore_ooms=1 ${FUZZ_FLAGS:-} "$corpus" "${seeds[@]}") >"$log" 2>&1
    rc=$?
    local last crashes_n
    last=$(grep -E '^#[0-9]+: ' "$log" | tail -n 1)
    crashes_n=$(echo "$last" | sed -nE 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 \2 \3|p' | awk '{print $1 + $2 + $3}')
    echo "$t: ${last%%:*} executions in $((SECONDS - start)) s (fork mode, exit $rc), ${crashes_n:-0} crashes/timeouts/ooms in $crashes"
    [ "${crashes_n:-0}" -eq 0 ]
    return
  elif [ "$jobs" -gt 1 ]; then
    # libFuzzer writes one fuzz-N.log per job into the current directory
    (cd "$B/logs" && exec "$bin" "${flags[@]}" -jobs="$jobs" -workers="$jobs" ${FUZZ_FLAGS:-} \
      "$corpus" "${seeds[@]}") >"$log" 2>&1
    rc=$?
    # each job's own log holds its final stats (the parent's output repeats them: count them once)
    execs=$(cat "$B/logs"/fuzz-*.log 2>/dev/null | grep -h 'stat::number_of_executed_units' | awk '{s += $2} END {print s + 0}')
    rm -f "$B/logs"/fuzz-*.log
  else
    "$bin" "${flags[@]}" ${FUZZ_FLAGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
  fi
  [ -n "${execs:-}" ] || execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  echo "$t: $execs executions in $((SECONDS - start)) s (exit $rc), corpus $(ls "$corpus" | wc -l) files"
  if [ $rc -ne 0 ]; then
    grep -E 'ERROR: |SUMMARY: |Test unit written|^ *#[0-9]+ 0x' "$log" | head -n 30
    return 1
  fi
}

[ $# -ge 1 ] || usage
case "$1" in
  --list) targets ;;
  --all)
    [ $# -eq 2 ] || usage
    mapfile -t all < <(targets)
    if ! build "${all[@]}"; then echo "0 passed, ${#all[@]} failed"; exit 1; fi
    p=0; f=0
    for t in "${all[@]}"; do
      if run_one "$t" "$2"; then p=$((p + 1)); else f=$((f + 1)); echo "not ok $t"; fi
    done
    echo "$p passed, $f failed"
    [ $f -eq 0 ] ;;
  -*) usage ;;
  *)
    [ $# -eq 2 ] || usage
    [ -f "tests/fuzz/$1.c" ] || { echo "no target tests/fuzz/$1.c (tools/fuzz-run.sh --list)"; exit 2; }
    build "$1" || exit 1
    run_one "$1" "$2" ;;
esac
