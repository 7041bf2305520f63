#!/usr/bin/env bash
# nginx-lb.sh: runs Debian's nginx in the foreground as a load balancer over
# Carmine instances, from tools/ha/nginx.conf.in (docs/ha.md).
#   tools/ha/nginx-lb.sh LISTEN_PORT STATE_DIR UPSTREAM_PORT...
# Upstreams are 127.0.0.1:PORT (edit the template for other hosts). STATE_DIR
# receives nginx.conf, the pid file, the error log and nginx's temp dirs.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 LISTEN_PORT STATE_DIR UPSTREAM_PORT..." >&2; exit 1; }
listen=$1 dir=$2
shift 2
command -v nginx >/dev/null || { echo "nginx-lb: nginx is not installed (apt-get install nginx)" >&2; exit 1; }
mkdir -p "$dir/tmp"
chmod 755 "$dir"
chmod 777 "$dir/tmp"
servers=""
for p in "$@"; do servers="$servers    server 127.0.0.1:$p max_fails=1 fail_timeout=2s;\n"; done
sed -e "s|@DIR@|$dir|g" -e "s|@LISTEN@|127.0.0.1:$listen|" -e "s|@SERVERS@|$servers|" \
  "$(dirname "$0")/nginx.conf.in" >"$dir/nginx.conf"
exec nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
