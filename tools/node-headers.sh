#!/bin/sh
# Makes the only include folder the node types of nodes/ compile against
# (issue 20: nodes/ is a library of its own that sees the node API and the
# subsystems' faces, never the engine's internals such as engine.h or
# runtime.h). meson runs it at setup: OUTDIR gets a link to each header
# named, kept at its path under runtime/, so a header that includes a
# sibling finds it there too. Usage: node-headers.sh SRCROOT OUTDIR HEADER...
set -eu
src=$1 out=$2; shift 2
rm -rf "$out"
for h in "$@"; do
  [ -f "$src/runtime/$h" ] || { echo "node-headers.sh: no runtime/$h" >&2; exit 1; }
  mkdir -p "$out/$(dirname "$h")"
  ln -s "$src/runtime/$h" "$out/$h"
done
