#!/bin/sh
# tests/cli/abi.t: libmcplink.so exports exactly the functions core/mcplink.h declares (the stable ABI
# hosts and the Python binding bind) and no internal symbol; a host linked against it runs.
. "$(dirname "$0")/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MCPLINK_BUILD:-$top/build}
so=$build/libmcplink.so
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -f "$so" ] || { echo "Bail out! $so is missing (make)"; exit 1; }

nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' | sed 's/@.*//' | sort -u > "$tmp/exported"
# The header's functions, read here from the header text with its comments removed (the build reads
# them from the preprocessor instead): a name followed by "(" outside a typedef.
sed 's,/\*.*\*/,,g' "$top/core/mcplink.h" | awk '/\/\*/ { c = 1 } !c { print } /\*\// { c = 0 }' |
  grep -v typedef | grep -o 'mcpl_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' | sort -u > "$tmp/declared"

ok "$([ -s "$tmp/declared" ] && [ "$(wc -l < "$tmp/declared")" -ge 10 ]; echo $?)" \
  "the header declares the public functions ($(wc -l < "$tmp/declared"))"
others=$(grep -v '^mcpl_' "$tmp/exported" | tr '\n' ' ')
ok "$([ -z "$others" ]; echo $?)" "every exported symbol is an mcpl_ name"
[ -z "$others" ] || echo "#   also exported: $others"
missing=$(comm -23 "$tmp/declared" "$tmp/exported" | tr '\n' ' ')
ok "$([ -z "$missing" ]; echo $?)" "every function of mcplink.h is exported"
[ -z "$missing" ] || echo "#   missing: $missing"
extra=$(comm -13 "$tmp/declared" "$tmp/exported" | tr '\n' ' ')
ok "$([ -z "$extra" ]; echo $?)" "nothing beyond mcplink.h is exported (no internal mcpl_ helper)"
[ -z "$extra" ] || echo "#   not in the header: $extra"
for s in mcpl_engine_of mcpl_log mcpl_state_engine addr_parse luaopen_mcpl_json mcpl_embedded_lua; do
  check_not "internal symbol $s is not exported" grep -qx "$s" "$tmp/exported"
done

# A host linked against the shared library (not the static one) opens an engine and runs ops.
mkdir "$tmp/lib" && ln -s "$so" "$tmp/lib/libmcplink.so.0" && ln -s "$so" "$tmp/lib/libmcplink.so"
cc ${MCPLINK_SAN:-} -I"$top/core" "$top/examples/embed.c" -o "$tmp/embed" -L"$tmp/lib" -lmcplink \
  -Wl,-rpath,"$tmp/lib" >"$tmp/cc.log" 2>&1
ok $? "examples/embed.c links against libmcplink.so"
[ -s "$tmp/cc.log" ] && sed 's/^/#   /' "$tmp/cc.log"
(cd "$tmp" && ./embed "$tmp/e.db") >"$tmp/embed.out" 2>&1
check "it runs an op through the exported API" grep -q 'engine.info -> ok' "$tmp/embed.out"
ldd "$tmp/embed" > "$tmp/ldd" 2>&1
check "the program uses the shared library" grep -q "$tmp/lib/libmcplink.so.0" "$tmp/ldd"
done_testing
