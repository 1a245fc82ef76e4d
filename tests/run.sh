#!/bin/sh
# tests/run.sh: runs every test under prove: C units (cmocka, TAP), Lua
# scenarios (run by `mcplink test` inside the real engine), CLI tests, and the Python binding
# and console (tests/python).
set -u
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export MCPLINK_BIN="$top/$BUILD/mcplink"
export MCPLINK_BUILD="$top/$BUILD"
export CMOCKA_MESSAGE_OUTPUT=TAP
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
files=""
for f in "$BUILD"/tests/* tests/scenarios/*.lua tests/cli/*.t tests/python/*.t policies/*_test.lua policies/tenants/*_test.lua; do
  [ -e "$f" ] && [ ! -d "$f" ] && files="$files $f"
done
exec prove -j2 --timer --exec "$top/tests/tap-exec" $files
