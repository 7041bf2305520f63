#!/usr/bin/env bash
# Installs the Debian packages Carmine builds, tests and benchmarks with,
# skipping what is already there (run as root on a fresh Debian machine).
set -eu
pkgs="meson ninja-build pkg-config gcc libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev libpcre2-dev nettle-dev libcrypt-dev libssl-dev curl libhiredis-dev redis-server nginx wrk python3
libjavascriptcoregtk-4.1-dev libmosquitto-dev mosquitto mosquitto-clients libxml2-dev libyaml-dev
clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
