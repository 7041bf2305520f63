#!/bin/sh
# test-plugins.sh: the plugin SDK end to end, as CI runs it (issue 8).
# Installs Carmine into a scratch prefix, builds the example plugins out of
# tree with nothing but pkg-config, runs their flow tests with the installed
# binary, and checks that the loader refuses what it must refuse (another ABI
# version, a failed init, a taken type name) with a clear message.
#
# Usage: tools/test-plugins.sh [BUILDDIR]   (default: build-plugin-ci)
# Ends with "N passed, N failed"; exits 1 when anything failed.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-plugin-ci}
CC=${CC:-cc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carmine-plugins.XXXXXX")
PREFIX=$WORK/prefix
trap 'rm -rf "$WORK"' EXIT INT TERM
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/    /'; return 0; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# 1. Install into the scratch prefix ---------------------------------------------
cd "$SRC" || exit 1
if [ -d "$BUILD" ]; then
    meson configure "$BUILD" --prefix="$PREFIX" >"$WORK/setup.log" 2>&1
else
    meson setup --prefix="$PREFIX" "$BUILD" >"$WORK/setup.log" 2>&1
fi
if meson install -C "$BUILD" >"$WORK/install.log" 2>&1 && [ -x "$PREFIX/bin/carmine" ]; then
    ok "meson install into a scratch prefix"
else
    not_ok "meson install into a scratch prefix" "$(cat "$WORK/setup.log" "$WORK/install.log" | tail -n 30)"
    finish
fi
CARMINE=$PREFIX/bin/carmine
PKG_CONFIG_PATH=$(find "$PREFIX" -name carmine.pc -exec dirname {} \; | head -1)
export PKG_CONFIG_PATH
if cflags=$(pkg-config --cflags carmine) && [ -f "$PREFIX/include/carmine/carmine.h" ]; then
    ok "pkg-config --cflags carmine: $cflags"
else
    not_ok "pkg-config finds the installed carmine.pc and headers"
    finish
fi

# 2. Build the examples out of tree -------------------------------------------------
PLUGINS=$WORK/plugins
mkdir -p "$PLUGINS"
for ex in rbe trigger; do
    cp -r "$SRC/examples/$ex" "$WORK/$ex"
    rm -f "$WORK/$ex"/*.so
    if out=$(make -C "$WORK/$ex" 2>&1) && [ -f "$WORK/$ex/$ex.so" ] && ! printf '%s' "$out" | grep -q 'warning:'; then
        cp "$WORK/$ex/$ex.so" "$PLUGINS/"
        ok "examples/$ex builds out of tree with pkg-config only, no warnings"
    else
        not_ok "examples/$ex builds out of tree" "$out"
    fi
done

# 3. The examples' flow tests, through the installed binary ----------------------------
# `carmine test --plugins DIR` when the runner has it; until then a preloaded
# shim loads the plugins before main() (same loader, same binary).
set -- "$SRC"/examples/*/tests.json
if "$CARMINE" test --help 2>&1 | grep -q -- '--plugins'; then
    "$CARMINE" test --plugins "$PLUGINS" "$@" >"$WORK/flowtests.log" 2>&1
    rc=$?
else
    cat >"$WORK/shim.c" <<'EOF'
/* Loads $CARMINE_PLUGINS_DIR before main(), for a `carmine test` without --plugins. */
#include <stdio.h>
#include <stdlib.h>
#include <strbuf.h>
int crm_plugins_load_dir(const char *dir, strbuf *problems);
__attribute__((constructor)) static void load(void)
{
    strbuf p = SB_INIT;
    if (crm_plugins_load_dir(getenv("CARMINE_PLUGINS_DIR"), &p) < 0 || p.len) fprintf(stderr, "%s", p.data);
    sb_free(&p);
}
EOF
    $CC -shared -fPIC $(pkg-config --cflags carmine) "$WORK/shim.c" -o "$WORK/shim.so" || not_ok "build the test shim"
    echo "# carmine test has no --plugins yet: loading them through a preloaded shim"
    CARMINE_PLUGINS_DIR=$PLUGINS LD_PRELOAD=$WORK/shim.so "$CARMINE" test "$@" >"$WORK/flowtests.log" 2>&1
    rc=$?
fi
grep -E '^(not ok|ok)' "$WORK/flowtests.log" | grep -v '^ok' | head -40
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$WORK/flowtests.log" | tail -n 1)
fp=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1/p')
ff=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\2/p')
fs=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\3/p')
echo "# example flow tests: ${summary:-no summary line}"
if [ -z "$summary" ]; then
    not_ok "example flow tests ran" "$(tail -n 20 "$WORK/flowtests.log")"
else
    passed=$((passed + fp))
    failed=$((failed + ff))
    # a skipped case means its node type was not loaded
    if [ "$fs" -ne 0 ] || [ "$rc" -ne 0 ] && [ "$ff" -eq 0 ]; then
        not_ok "example flow tests: nothing skipped (plugins loaded), runner exit 0" "$(grep -i -E 'skip|plugin' "$WORK/flowtests.log" | head)"
    fi
fi

# 4. What the loader must refuse --------------------------------------------------------
# A small plugin: type $1, ABI $2, init result $3 (empty: no init).
make_plugin() {
    dir=$1 file=$2 type=$3 abi=$4 init=$5
    mkdir -p "$dir"
    {
        echo '#include <carmine.h>'
        echo "static const crm_node_type t = {.abi = CRM_ABI_VERSION, .type = \"$type\"};"
        echo "int carmine_plugin_abi(void) { return $abi; }"
        echo 'const crm_node_type *const *carmine_plugin_types(void) { static const crm_node_type *const l[] = {&t, 0}; return l; }'
        [ -n "$init" ] && echo "int carmine_plugin_init(void) { return $init; }"
    } >"$WORK/$file.c"
    $CC -shared -fPIC $(pkg-config --cflags carmine) "$WORK/$file.c" -o "$dir/$file.so"
}
flow_of() {
    printf '[{"id":"t","type":"tab"},{"id":"n1","type":"%s","z":"t","wires":[]}]\n' "$1" >"$WORK/flow-$1.json"
    echo "$WORK/flow-$1.json"
}
# check NAME DIR TYPE WANT_RC REGEX...: `carmine check --plugins DIR` on a flow using TYPE
check() {
    name=$1 dir=$2 type=$3 want=$4
    shift 4
    "$CARMINE" check --plugins "$dir" "$(flow_of "$type")" >"$WORK/out" 2>&1
    rc=$?
    bad=""
    [ "$rc" -eq "$want" ] || bad="exit status $rc, expected $want"
    for re in "$@"; do grep -q -E -- "$re" "$WORK/out" || bad="$bad${bad:+; }no line matches /$re/"; done
    if [ -z "$bad" ]; then ok "$name"; else not_ok "$name" "$bad
$(cat "$WORK/out")"; fi
}

ABI=$(pkg-config --variable=abi_version carmine)
make_plugin "$WORK/good" good probe-good "CRM_ABI_VERSION" ""
check "a well-formed plugin loads and its type is known" "$WORK/good" probe-good 0 ': ok$'

make_plugin "$WORK/abi" other-abi probe-abi 999 ""
check "a plugin built for ABI 999 is refused, naming the file and both versions" "$WORK/abi" probe-abi 2 \
    "other-abi\.so: refused: built for plugin ABI 999, this runtime has ABI $ABI" "unknown node type 'probe-abi'"

make_plugin "$WORK/init" failing-init probe-init "CRM_ABI_VERSION" 7
check "a plugin whose init fails is reported and its types stay unknown" "$WORK/init" probe-init 2 \
    "failing-init\.so: refused: carmine_plugin_init\(\) failed" "unknown node type 'probe-init'"

mkdir -p "$WORK/dup"
cp "$PLUGINS/rbe.so" "$WORK/dup/a-rbe.so" 2>/dev/null
make_plugin "$WORK/dup" b-rbe-again example-rbe "CRM_ABI_VERSION" ""
check "a second plugin offering a taken type name is refused; the first one serves" "$WORK/dup" example-rbe 0 \
    'b-rbe-again\.so: refused: node type "example-rbe" is already registered'

make_plugin "$WORK/builtin" shadow change "CRM_ABI_VERSION" ""
check "a plugin cannot replace a built-in type" "$WORK/builtin" change 0 \
    'shadow\.so: refused: node type "change" is already registered'

mkdir -p "$WORK/junk"
echo "not a library" >"$WORK/junk/junk.so"
check "a file that is not a library is reported, not fatal" "$WORK/junk" inject 0 'junk\.so: cannot load'

finish
