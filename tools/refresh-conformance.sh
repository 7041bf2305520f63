#!/bin/sh
# Refreshes the conformance cases the suite runs (tests/conformance/) from
# ../shared/conformance when that folder is beside the clone: the cases
# recorded on Node-RED 4.1.15 (nodered/) and the JSONata suite (jsonata/).
# The suite itself only reads the copies in the repository.
set -eu
cd "$(dirname "$0")/.."
src=${SHARED:-../shared}/conformance
[ -d "$src/nodered" ] || { echo "refresh-conformance: no $src/nodered here; the copies in tests/conformance stay as they are" >&2; exit 1; }
for part in nodered jsonata; do
  rm -rf "tests/conformance/$part"
  cp -r "$src/$part" "tests/conformance/$part"
done
echo "refresh-conformance: tests/conformance updated from $src"
