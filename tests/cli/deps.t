#!/bin/sh
# deps.t: a plain `make` needs only the build packages (compiler, Lua, libcurl, OpenSSL, SQLite,
# libedit, cjson); Chromium, Node.js, tmux and clang are asked for by `make test` and `make fuzz`
# only. A stand-in dpkg-query on PATH says which packages are installed; nothing is installed.
. "$(dirname "$0")/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MCPLINK_BUILD:?}
case $build in "$top"/*) build=${build#"$top"/} ;; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset MAKEFLAGS MFLAGS MAKELEVEL
mkdir "$tmp/bin"
# dpkg-query -W -f=FORMAT PKG: "installed" when PKG is in $INSTALLED
cat > "$tmp/bin/dpkg-query" <<'STUB'
#!/bin/sh
eval pkg=\${$#}
for p in $INSTALLED; do [ "$p" = "$pkg" ] && { printf 'install ok installed'; exit 0; }; done
exit 1
STUB
chmod +x "$tmp/bin/dpkg-query"
export PATH="$tmp/bin:$PATH"
# what the README promises a plain make needs, as Debian names it
BUILD_SET="gcc libc6-dev make pkg-config liblua5.4-dev lua-cjson-dev libcurl4-openssl-dev libssl-dev
  libsqlite3-dev libedit-dev libpq-dev"
export INSTALLED="$BUILD_SET"
sh "$top/core/tools/deps.sh" check > out 2>&1; ok $? "the build packages are all a build needs"
make -s -C "$top" BUILD="$build" all > out 2>&1; st=$?
is "$st" 0 "a plain make succeeds with only the build packages"
[ "$st" = 0 ] || sed 's/^/#   /' out | tail -5
make -s -C "$top" BUILD="$build" test-run > out 2>&1; st=$?
check_not "make test-run stops without the test packages" test "$st" = 0
for p in chromium nodejs tmux libcmocka-dev lua-check; do
  check "and names $p" grep -q "missing.*$p" out
done
check_not "before running any test" grep -q 'tests/' out
sh "$top/core/tools/deps.sh" check fuzz > out 2>&1; st=$?
check "the fuzz group asks for clang" test "$st" != 0 -a -n "$(grep 'missing.*clang-14' out)"
INSTALLED="$BUILD_SET libcmocka-dev nodejs openssl curl tmux chromium perl lua-check python3 python3-venv python3-setuptools python3-wheel python3-pytest postgresql clang-14" \
  sh "$top/core/tools/deps.sh" check build test fuzz > out 2>&1
ok $? "with the test and fuzz packages every group is satisfied"
INSTALLED=$(echo $BUILD_SET | sed 's/libedit-dev//') make -s -C "$top" BUILD="$build" all > out 2>&1; st=$?
check_not "a missing build package stops make" test "$st" = 0
check "naming it" grep -q 'missing build dependencies: libedit-dev' out
done_testing
