#!/bin/sh
# difftest.sh: differential tests of runtime/mustache.c against mustache.js and
# of runtime/jsonschema.c against ajv, both as Node-RED 4.1.15 ships them.
# Random inputs (fixed seeds: 2000 templates, 3000 schema/data pairs) go
# through both; every result must be identical (text, error message, error
# objects). Needs node and a Node-RED install (the recorder's, set up by
# ../shared/tools/flowtest-record/setup.sh): skipped without them.
# Usage: tools/difftest.sh [BUILDDIR]   Ends with "N passed, N failed".
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$SRC/build}
NR_MODULES=${NR_MODULES:-$HOME/.cache/flowtest-record/nr/node_modules}
export NR_MODULES
if ! command -v node >/dev/null || [ ! -d "$NR_MODULES/ajv" ] || [ ! -d "$NR_MODULES/mustache" ]; then
    echo "# no node or no Node-RED install at $NR_MODULES: skipped"
    echo "0 passed, 0 failed, 2 skipped"
    exit 0
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/difftest.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
cc -std=c17 -I"$SRC/runtime" -I"$SRC/runtime/jsonata" "$SRC/tools/difftest/driver.c" -o "$W/driver" \
    -Wl,--whole-archive "$B/libcarmine.a" -Wl,--no-whole-archive \
    $(pkg-config --libs jansson libmicrohttpd libpcre2-8 nettle libxcrypt hiredis yaml-0.1 libcurl) -lm -ldl -lpthread || exit 1
cd "$W" || exit 1
passed=0 failed=0
for what in mustache jsonschema; do
    node "$SRC/tools/difftest/gen_$what.js" || exit 1
    in=$( [ $what = mustache ] && echo mu || echo js )
    "$W/driver" <"${in}_in.jsonl" >"${in}_out.jsonl"
    if python3 - "${in}_exp.json" "${in}_out.jsonl" "${in}_in.jsonl" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1]))
out = [json.loads(l) for l in open(sys.argv[2])]
inp = [l.strip() for l in open(sys.argv[3])]
norm = lambda x: json.loads(json.dumps(x).replace('.0,', ',').replace('.0}', '}').replace('.0]', ']'))
bad = [i for i in range(len(exp)) if i >= len(out) or norm(exp[i]) != norm(out[i])]
for i in bad[:3]:
    print('#', inp[i][:300]); print('#  expected', json.dumps(exp[i])[:300]); print('#  got     ', json.dumps(out[i] if i < len(out) else None)[:300])
print('# %d of %d differ' % (len(bad), len(exp)))
sys.exit(1 if bad else 0)
PY
    then echo "ok - $what: every result as Node-RED's"; passed=$((passed + 1))
    else echo "not ok - $what"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
