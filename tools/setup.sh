#!/usr/bin/env bash
# Installs the Debian packages Carmine builds, tests and benchmarks with,
# skipping what is already there (run as root on a fresh Debian machine).
set -eu
pkgs="meson ninja-build pkg-config gcc libjansson-dev libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev libpcre2-dev nettle-dev libcrypt-dev libssl-dev curl libhiredis-dev redis-server nginx wrk python3
libjavascriptcoregtk-4.1-dev mosquitto mosquitto-clients libxml2-dev libyaml-dev libmimalloc-dev
clang libclang-rt-14-dev mariadb-server"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

# The companion (docs/companion.md): Node-RED 4.1.15 from npm, run headless
# by runtime/companion/companion.js for npm node types, into
# <repo>/.deps/companion (not committed); and the test userDir
# .deps/companion-test with node-red-contrib-moment and the fixture module of
# tests/companion, so tests/companion/run.sh needs no network. SKIP_NPM=1 skips it.
if [ "${SKIP_NPM:-0}" != 1 ]; then
  command -v npm >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
  repo="$(cd "$(dirname "$0")/.." && pwd)"
  comp="$repo/.deps/companion"
  if [ "$(node -p "require('$comp/node_modules/node-red/package.json').version" 2>/dev/null)" != 4.1.15 ]; then
    mkdir -p "$comp"
    [ -f "$comp/package.json" ] || echo '{"name":"carmine-companion","private":true}' > "$comp/package.json"
    (cd "$comp" && npm install --no-audit --no-fund --save-exact node-red@4.1.15)
  fi
  ctest="$repo/.deps/companion-test"
  # (dayjs: a function node's external module, in package.json's dependencies as Node-RED wants it)
  if [ ! -f "$ctest/node_modules/node-red-contrib-moment/package.json" ] ||
     [ ! -f "$ctest/node_modules/node-red-contrib-carmine-fixture/package.json" ] ||
     [ "$(node -p "require('$ctest/node_modules/dayjs/package.json').version" 2>/dev/null)" != 1.11.13 ]; then
    mkdir -p "$ctest"
    [ -f "$ctest/package.json" ] || echo '{"name":"node-red-project","private":true}' > "$ctest/package.json"
    (cd "$ctest" && npm install --no-audit --no-fund --save --install-links node-red-contrib-moment@4.0.0 dayjs@1.11.13 \
      "$repo/tests/companion/node-red-contrib-carmine-fixture")
  fi
  # the dashboards of tests/dashboard (docs/companion.md, "Dashboards"), pinned,
  # with node-red-contrib-moment, into the userDir .deps/dashboard-test, as
  # `carmine install` puts them there
  dtest="$repo/.deps/dashboard-test"
  if [ "$(node -p "require('$dtest/node_modules/node-red-dashboard/package.json').version" 2>/dev/null)" != 3.6.6 ] ||
     [ "$(node -p "require('$dtest/node_modules/@flowfuse/node-red-dashboard/package.json').version" 2>/dev/null)" != 1.31.0 ] ||
     [ ! -f "$dtest/node_modules/node-red-contrib-moment/package.json" ]; then
    mkdir -p "$dtest"
    [ -f "$dtest/package.json" ] || echo '{"name":"node-red-project","private":true}' > "$dtest/package.json"
    (cd "$dtest" && npm install --no-audit --no-fund --save --save-prefix=~ --omit=dev \
      node-red-dashboard@3.6.6 @flowfuse/node-red-dashboard@1.31.0 node-red-contrib-moment@4.0.0)
  fi
fi

# The Node-RED editor Carmine serves (docs/editor.md): the unmodified npm
# packages, pinned, into <repo>/.deps/npm (not committed). @node-red/nodes
# and @node-red/runtime are unpacked without their dependencies (Carmine only
# reads their HTML, icons and message catalogues); playwright-core drives
# Debian's chromium in tests/editor. Run as the user who builds (root is fine).
# Skipped when the pinned versions are there; SKIP_NPM=1 skips it.
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if ! dpkg -s chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
if [ "${SKIP_NPM:-0}" != 1 ]; then
  nr_version=4.1.15
  pw_version=1.65.2
  deps="$(cd "$(dirname "$0")/.." && pwd)/.deps/npm"
  have() { # package version: is it unpacked in $deps/node_modules?
    [ "$(node -p "require('$deps/node_modules/$1/package.json').version" 2>/dev/null)" = "$2" ]
  }
  mkdir -p "$deps/node_modules/@node-red"
  if ! have @node-red/editor-client $nr_version || ! have playwright-core $pw_version; then
    printf '{"private":true,"dependencies":{"@node-red/editor-client":"%s","playwright-core":"%s"}}\n' \
      $nr_version $pw_version >"$deps/package.json"
    (cd "$deps" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
  fi
  # after npm install, which removes what its package.json does not name;
  # node-red itself for the settings.js it ships (tests/editor/test_userdir.py)
  for p in @node-red/nodes @node-red/runtime node-red; do
    have "$p" $nr_version && continue
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$p@$nr_version" >/dev/null && tar xzf ./*.tgz)
    rm -rf "$deps/node_modules/$p"
    mv "$tmp/package" "$deps/node_modules/$p"
    rm -rf "$tmp"
  done
fi
