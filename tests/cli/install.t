#!/bin/sh
# install.t: `make install` into a temporary prefix gives a working binary
# (no source tree needed), a header, libraries and a pkg-config file that
# builds examples/embed.c.
. "$(dirname "$0")/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
build=${MCPLINK_BUILD:?}
make -s -C "$top" BUILD="$(basename "$build")" SAN="${MCPLINK_SAN:-}" PREFIX="$tmp/prefix" install >"$tmp/install.log" 2>&1
ok $? "make install PREFIX=..."
check "binary installed" test -x "$tmp/prefix/bin/mcplink"
check "header installed" test -f "$tmp/prefix/include/mcplink.h"
check "static library installed" test -f "$tmp/prefix/lib/libmcplink.a"
check "shared library installed" test -f "$tmp/prefix/lib/libmcplink.so"
check "pkg-config file installed" test -f "$tmp/prefix/lib/pkgconfig/mcplink.pc"
# the installed binary runs from elsewhere, with its embedded Lua
(cd "$tmp" && "$tmp/prefix/bin/mcplink" --db "$tmp/x.db" op engine.info) >"$tmp/info.json" 2>&1
check "installed binary runs engine.info outside the source tree" grep -q '"(embedded)"' "$tmp/info.json"
# an ASan build's library needs the sanitizer runtime in the program too
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" cc ${MCPLINK_SAN:-} "$top/examples/embed.c" -o "$tmp/embed" \
  $(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs mcplink) \
  -Wl,-rpath,"$tmp/prefix/lib" >"$tmp/cc.log" 2>&1
ok $? "examples/embed.c builds against the installed library"
(cd "$tmp" && ./embed "$tmp/e.db") >"$tmp/embed.out" 2>&1
check "embed example runs an op" grep -q 'engine.info -> ok' "$tmp/embed.out"
check "embed example reports an error code" grep -q 'no.such.op  -> not_found' "$tmp/embed.out"
done_testing
