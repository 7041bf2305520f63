# summary.sh: the last line a part prints, "N passed, N failed", counted from
# the "ok - " and "not ok - " lines of a checker's output; a checker that
# printed neither counts as one failure. Source it, then: summarize "$out"
summarize() {
  local pass fail
  pass=$(grep -c '^ok - ' <<<"$1")
  fail=$(grep -c '^not ok - ' <<<"$1")
  [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ] && fail=1
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
