#!/bin/sh
# The sealed plugin ABI: the carmine executable exports exactly the functions
# that docs/plugins.md documents (the public headers mark them CRM_API; the
# rest of the engine is built with hidden visibility). Prints one line per
# exported symbol that is not documented and per documented function that is
# not exported, then "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
exe="$BUILD_DIR/carmine"
exported=$(nm -D --defined-only "$exe" | awk '$2 == "T" {print $3}' | sort)
passed=0; failed=0
for s in $exported; do
  # recv: not API; the engine's own wrapper of libc's (runtime/httpd_recv.c), exported so
  # that libmicrohttpd's calls reach it
  case "$s" in _*|main|recv) continue ;; esac
  if grep -q "\b$s\b" docs/plugins.md; then passed=$((passed + 1)); else echo "not ok - $s is exported but not documented in docs/plugins.md"; failed=$((failed + 1)); fi
done
# every crm_/sb_ function the reference tables name is exported
# (macros and static inline functions of the headers excepted)
for s in $(grep -oE '\b(crm|sb)_[a-z0-9_]+\(' docs/plugins.md | tr -d '(' | sort -u); do
  if grep -qE "#define $s\b|static inline [^(]*\b$s\(" runtime/carmine.h runtime/value.h runtime/strbuf.h runtime/http.h; then continue; fi
  if echo "$exported" | grep -qx "$s"; then passed=$((passed + 1)); else echo "not ok - $s is documented but not exported"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
