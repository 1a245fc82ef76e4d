#!/bin/sh
# tests/cli/lazy_libs.t: libcurl, libpq, libedit and libcrypto are opened on first need
# (core/dynlib.c): mcplink and libmcplink.so do not link them (nor libssl, which comes with libcurl);
# a command that needs none of them (`--version`, `tenant list`, `server list`, a REPL fed from a
# pipe) has none of them opened, as the dynamic loader's own file log shows; a command that sends
# a request opens libcurl and works, one that seals a secret opens libcrypto and works, the
# interactive REPL opens libedit; on PostgreSQL (run again by tests/run.sh on it) libpq is opened
# and works; a missing library or symbol is an `unavailable` error naming the library (and the
# symbol), and a command that does not need it still works.
set -u
. "$(dirname "$0")/fixture_lib.sh"
. "$top/tests/cli/tap.sh"
build=${MCPLINK_BUILD:-$top/build}
db=${MCPLINK_TEST_DB:-$tmp/t.db}
# (--ca-file is only checked when the engine opens; OpenSSL parses it at the first TLS connection)
M() { "$bin" --db "$db" --key-file "$tmp/k.key" --compact "$@"; }
# E VAR=VALUE ARGS...: the same with one more variable in its environment
E() { v=$1; shift; env "$v" "$bin" --db "$db" --key-file "$tmp/k.key" --compact "$@"; }
A="--tenant acme --user mo"
DEFERRED="libcurl.so.4 libpq.so.5 libedit.so.2 libssl.so.3 libcrypto.so.3"

# opened CMD...: runs CMD with the dynamic loader logging every file it opens (LD_DEBUG=files, one
# log per process); its output in $tmp/out, its exit status returned, the names it opened in
# $tmp/libs, one a line
opened() {
  rm -f "$tmp"/ld.*
  LD_DEBUG=files LD_DEBUG_OUTPUT="$tmp/ld" "$@" > "$tmp/out" 2>&1
  st=$?
  cat "$tmp"/ld.* 2>/dev/null | sed -n 's/.*file=\([^ ]*\) \[.*/\1/p' | sed 's|.*/||' | sort -u > "$tmp/libs"
  return $st
}
has() { grep -qx "$1" "$tmp/libs"; }
# none_of WHAT: one check per deferred library: WHAT (the last command) did not open it
none_of() {
  check "$1 works (the loader's log is read: it lists libc.so.6)" has libc.so.6
  for l in $DEFERRED; do
    # on PostgreSQL, libpq is in use, and libssl and libcrypto with it
    case $l in libpq.so.5|libssl.so.3|libcrypto.so.3) [ -n "${MCPLINK_TEST_DB:-}" ] && continue ;; esac
    check_not "$1 does not open $l" has "$l"
  done
}

# ---- the binaries do not link them --------------------------------------------------------
for f in "$bin" "$build/libmcplink.so"; do
  readelf -d "$f" > "$tmp/dyn" 2>&1; ok $? "readelf reads $(basename "$f")"
  check "$(basename "$f") links libc (the checks below read NEEDED entries)" grep -q 'NEEDED.*\[libc\.so\.6\]' "$tmp/dyn"
  for l in $DEFERRED; do check_not "$(basename "$f") does not link $l" grep -q "NEEDED.*\[$l\]" "$tmp/dyn"; done
  # the CLI has Lua and SQLite linked in (CLI_STATIC, the default): nothing of theirs to bind
  # at start; libmcplink.so, what hosts load, shares the system's
  for l in liblua5.4.so.0 libsqlite3.so.0; do
    if [ "$f" = "$bin" ]; then check_not "mcplink has $l linked in, not NEEDED" grep -q "NEEDED.*\[$l\]" "$tmp/dyn"
    else check "libmcplink.so links $l" grep -q "NEEDED.*\[$l\]" "$tmp/dyn"; fi
  done
done

# ---- commands that need none of them -------------------------------------------------------
opened "$bin" --version; ok $? "--version runs"
none_of "--version"
M tenant create acme > /dev/null 2>&1 && M user create mo --role admin --tenant acme > /dev/null 2>&1
ok $? "a tenant and its admin"
opened M tenant list; ok $? "tenant list runs"
check "tenant list lists acme" grep -q '"name":"acme"' "$tmp/out"
none_of "tenant list"
opened M $A server create --name s1; ok $? "server create runs"
id=$(sed -n 's/.*"id":"\(srv_[^"]*\)".*/\1/p' "$tmp/out")
opened M $A server list; ok $? "server list runs"
check "server list lists the server" grep -q "\"id\":\"$id\"" "$tmp/out"
none_of "server list"
opened M --ca-file "$FIXTURE_CERTS/ca.pem" $A server list; ok $? "server list --ca-file runs"
check "server list --ca-file lists the server" grep -q "\"id\":\"$id\"" "$tmp/out"
none_of "server list with --ca-file"
echo 'mcplink.op("tenant.list", {})' > "$tmp/in.lua"
opened "$bin" --db "$db" --key-file "$tmp/k.key" repl < "$tmp/in.lua"
ok $? "a REPL fed from a pipe runs"
none_of "a REPL without a terminal"

# ---- sealing a secret: libcrypto is opened and works ----------------------------------------
opened M $A server update "$id" --auth-type api_key --api-key sk-lazy-1; ok $? "server update --api-key runs"
check "the key is stored (api_key_set)" grep -q '"api_key_set":true' "$tmp/out"
check "it opened libcrypto.so.3" has libcrypto.so.3
check_not "and not libcurl.so.4" has libcurl.so.4

# ---- PostgreSQL: libpq is opened and works --------------------------------------------------
if [ -n "${MCPLINK_TEST_DB:-}" ]; then
  opened M tenant list
  check "on PostgreSQL, tenant list works" grep -q '"name":"acme"' "$tmp/out"
  check "and opens libpq.so.5" has libpq.so.5
else
  ok 0 "# SKIP libpq in use: run on PostgreSQL by tests/run.sh (tests/tools/pg_test.sh)"
  ok 0 "# SKIP"
fi

# ---- a request: libcurl is opened and the exchange works ------------------------------------
fx_start server-v2 --tools 3
url=$(field "$FX_LINE" url)
M op settings.set '{"allow_private_urls":true}' > /dev/null 2>&1
opened M --ca-file "$FIXTURE_CERTS/ca.pem" op mcp.session "{\"url\":\"$url\",\"steps\":[{\"step\":\"discover\"}]}"
ok $? "mcp.session discovers the fixture over HTTPS"
check "the fixture answered (its server_info)" grep -q '"name":"mcplink-fixture-v2"' "$tmp/out"
grep -q '"name":"mcplink-fixture-v2"' "$tmp/out" || sed 's/^/#   /' "$tmp/out" | head -5
check "it opened libcurl.so.4" has libcurl.so.4
check "and libssl.so.3 with it" has libssl.so.3

# ---- a missing library: a clear error, and what does not need it still works ---------------
E MCPLINK_LIBCURL="$tmp/missing/libcurl.so.4" $A server update "$id" --url "$url" > "$tmp/out" 2>&1
check_not "with libcurl missing (MCPLINK_LIBCURL), server update --url fails" test $? = 0
check "as unavailable" grep -q '"code":"unavailable"' "$tmp/out"
check "naming libcurl.so.4 and the file tried" grep -q "libcurl.so.4 could not be loaded from $tmp/missing/libcurl.so.4" "$tmp/out"
E MCPLINK_LIBCURL="$tmp/missing/libcurl.so.4" $A server list > "$tmp/out" 2>&1
ok $? "server list still works without libcurl"
# a libcurl.so.4 that the loader finds first and that has none of libcurl's functions
mkdir -p "$tmp/fake"
echo 'int mcplink_fake_lib;' > "$tmp/fake/f.c"
cc -shared -fPIC -Wl,-soname,libcurl.so.4 -o "$tmp/fake/libcurl.so.4" "$tmp/fake/f.c"
ok $? "a stand-in libcurl.so.4 without libcurl's symbols"
E LD_LIBRARY_PATH="$tmp/fake" $A server update "$id" --url "$url" > "$tmp/out" 2>&1
check_not "with it, server update --url fails" test $? = 0
check "as unavailable, naming libcurl.so.4 and the missing symbol" \
  grep -q '"code":"unavailable".*libcurl.so.4 could not be loaded: it has no symbol curl_global_init' "$tmp/out"
E MCPLINK_LIBPQ="$tmp/missing/libpq.so.5" --db "postgresql://mcplink@127.0.0.1:1/none" tenant list > "$tmp/out" 2>&1
check_not "with libpq missing (MCPLINK_LIBPQ), a PostgreSQL database cannot be opened" test $? = 0
check "as unavailable, naming libpq.so.5" grep -q '"code":"unavailable".*libpq.so.5 could not be loaded from' "$tmp/out"
# a libcrypto.so.3 without libcrypto's symbols: writing a record (its random id) stops, naming
# the library and the symbol; a command that reads records still works (on SQLite: libpq needs
# libcrypto, so on PostgreSQL no command works without it)
if [ -z "${MCPLINK_TEST_DB:-}" ]; then
  mkdir -p "$tmp/fakec"
  cc -shared -fPIC -Wl,-soname,libcrypto.so.3 -o "$tmp/fakec/libcrypto.so.3" "$tmp/fake/f.c"
  ok $? "a stand-in libcrypto.so.3 without libcrypto's symbols"
  E LD_LIBRARY_PATH="$tmp/fakec" $A server list > "$tmp/out" 2>&1
  st=$?; ok $st "with it, server list works"; [ $st = 0 ] || sed "s/^/#   /" "$tmp/out" | head -5
  E LD_LIBRARY_PATH="$tmp/fakec" $A server create --name s2 > "$tmp/out" 2>&1
  check_not "server create does not" test $? = 0
  check "naming libcrypto.so.3 and the missing symbol" grep -q 'libcrypto.so.3 could not be loaded: it has no symbol CRYPTO_memcmp' "$tmp/out"
else
  for i in 1 2 3 4; do ok 0 "# SKIP a missing libcrypto on PostgreSQL: libpq needs it"; done
fi
# the interactive REPL needs a terminal: script(1) gives it one
if command -v script > /dev/null 2>&1; then
  rm -f "$tmp"/ld.*
  printf 'return 40+2\r.quit\r' | MCPLINK_HISTORY= script -qec \
    "env LD_DEBUG=files LD_DEBUG_OUTPUT='$tmp/ld' '$bin' --db '$db' --key-file '$tmp/k.key' repl" /dev/null > "$tmp/out" 2>&1
  ok $? "the interactive REPL (on a terminal) runs"
  cat "$tmp"/ld.* 2>/dev/null | sed -n 's/.*file=\([^ ]*\) \[.*/\1/p' | sed 's|.*/||' | sort -u > "$tmp/libs"
  check "it opened libedit.so.2" has libedit.so.2
  check "and evaluated a line read through it" grep -q '^42' "$tmp/out"
  MCPLINK_LIBEDIT=$tmp/missing/libedit.so.2 MCPLINK_HISTORY= script -qec \
    "'$bin' --db '$db' --key-file '$tmp/k.key' repl" /dev/null < /dev/null > "$tmp/out" 2>&1
  check_not "with libedit missing (MCPLINK_LIBEDIT), the interactive REPL stops" test $? = 0
  check "naming libedit.so.2" grep -q 'line editing needs libedit: libedit.so.2 could not be loaded from' "$tmp/out"
else
  for i in 1 2 3 4 5; do ok 0 "# SKIP no script(1) for a terminal"; done
fi
done_testing
