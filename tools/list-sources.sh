#!/bin/sh
# Lists the .c files under a directory (recursively, sorted) for meson.build.
cd "$(dirname "$0")/.." && find "$1" -name '*.c' | sort
