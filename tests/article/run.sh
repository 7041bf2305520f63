#!/usr/bin/env bash
# The article's end-to-end tests: the load-tester against the API flows with a
# shortened ramp (test_loadtest.py), the /ui page in headless Chromium
# (test_ui_browser.py), and that the page built into the binary is the one in
# dashboard/. Installs Debian's chromium when it is missing (apt-get, as root);
# if that is impossible the browser test is skipped, counted and explained.
# Last line: "N passed, N failed, N skipped". BUILD_DIR (default build) must
# hold a built carmine.
set -u
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
CARMINE="$BUILD_DIR/carmine"
OUT="$BUILD_DIR/article-test"
passed=0; failed=0; skipped=0

count() { # a test's output: one "ok - " / "not ok - " line per check
  local out=$1
  echo "$out"
  passed=$((passed + $(grep -c '^ok - ' <<<"$out")))
  failed=$((failed + $(grep -c '^not ok - ' <<<"$out")))
}

if [ ! -x "$CARMINE" ]; then
  echo "not ok - $CARMINE is not built"; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
mkdir -p "$OUT"

# the page compiled in (runtime/dashboard_page.c) must be dashboard/index.html
tmp=$(mktemp -d)
cp runtime/dashboard_page.c "$tmp/committed.c"
if tools/embed-dashboard.sh && cmp -s runtime/dashboard_page.c "$tmp/committed.c"; then
  count "ok - runtime/dashboard_page.c is generated from dashboard/index.html"
else
  cp "$tmp/committed.c" runtime/dashboard_page.c
  count "not ok - runtime/dashboard_page.c is out of date: run tools/embed-dashboard.sh"
fi
rm -rf "$tmp"

count "$(python3 tests/article/test_loadtest.py "$CARMINE" "$OUT" 2>"$OUT/loadtest-progress.log")"

have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
if ! have_chromium && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "# installing chromium (apt-get install -y chromium)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$OUT/apt.log" 2>&1 ||
    echo "# apt-get could not install chromium (see $OUT/apt.log)"
fi
if have_chromium; then
  count "$(python3 tests/article/test_ui_browser.py "$CARMINE" 2>&1)"
else
  why="not root or no apt-get"
  [ -f "$OUT/apt.log" ] && why="apt-get failed: $(tail -n 1 "$OUT/apt.log")"
  echo "skip - the /ui browser test: chromium is not installed and cannot be ($why)"
  skipped=$((skipped + 1))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
