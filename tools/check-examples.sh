#!/bin/bash
# Reports how many of Node-RED's own example flows Carmine loads: runs
# `carmine check` on every flow under @node-red/nodes/examples (the npm
# package of Node-RED 4.1.15; pass its examples folder, or it is looked for
# where the recorder or `npm install node-red@4.1.15` put it) and lists the
# ones refused with the first reason. Last line: "N passed, N failed".
# Usage: tools/check-examples.sh [EXAMPLES_DIR]   (BUILD_DIR: default build)
set -u
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
dir=${1:-}
if [ -z "$dir" ]; then
  for d in node_modules/@node-red/nodes/examples "$HOME/.cache/flowtest-record/nr/node_modules/@node-red/nodes/examples"; do
    [ -d "$d" ] && { dir=$d; break; }
  done
fi
[ -n "$dir" ] && [ -d "$dir" ] || { echo "check-examples: no examples folder (npm install node-red@4.1.15, or pass its path)" >&2; exit 2; }
passed=0; failed=0
list=$(mktemp)
find "$dir" -name '*.json' | sort >"$list"
while IFS= read -r f; do
  rel=${f#"$dir"/}
  if out=$("$BUILD_DIR/carmine" check "$f" 2>&1); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "not ok - $rel: $(echo "$out" | grep -v '^$' | head -n 1)"
  fi
done <"$list"
rm -f "$list"
echo "$passed passed, $failed failed"
