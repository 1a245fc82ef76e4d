#!/bin/sh
# tests/run.sh: runs every test under prove: C units (cmocka, TAP), Lua scenarios (run by
# `mcplink test` inside the real engine), CLI tests and the Python binding and
# console (tests/python), on SQLite; then the store, op, scenario,
# OAuth and workflow tests again on PostgreSQL, and the PostgreSQL-only tests (tests/pg: several
# instances, faults, connection URIs). The PostgreSQL server is a throwaway cluster started here
# (tests/tools/pg.sh) and removed at the end, also when tests fail or are interrupted.
set -u
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
export MCPLINK_BIN="$top/$BUILD/mcplink"
export MCPLINK_BUILD="$top/$BUILD"
export CMOCKA_MESSAGE_OUTPUT=TAP
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
unset MCPLINK_DB MCPLINK_KEY_FILE MCPLINK_TEST_DB MCPLINK_TEST_BACKEND

MCPLINK_TEST_PG_DIR=""
cleanup() { [ -n "$MCPLINK_TEST_PG_DIR" ] && sh tests/tools/pg.sh stop "$MCPLINK_TEST_PG_DIR"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
eval "$(sh tests/tools/pg.sh start)" || { echo "Bail out! cannot start a PostgreSQL cluster (tests/tools/pg.sh)"; exit 1; }
echo "# PostgreSQL test cluster: $MCPLINK_TEST_PG_DIR (port $MCPLINK_TEST_PG_PORT)"

files=""
for f in "$BUILD"/tests/* tests/scenarios/*.lua tests/cli/*.t tests/python/*.t policies/*_test.lua policies/tenants/*_test.lua; do
  [ -e "$f" ] && [ ! -d "$f" ] && files="$files $f"
done
# the same tests on PostgreSQL: one wrapper each in $BUILD/pg (prove shows its name)
PG_AGAIN="$BUILD/tests/test_store tests/scenarios/*.lua tests/cli/secrets.t tests/cli/workflows.t
  tests/cli/oauth_flow.t tests/cli/oauth_attacks.t tests/cli/oauth_connect.t tests/cli/oauth_browser.t
  tests/cli/interactive.t tests/cli/lazy_libs.t"
rm -rf "$BUILD/pg" && mkdir -p "$BUILD/pg"
for f in $PG_AGAIN; do
  [ -e "$f" ] || continue
  w="$BUILD/pg/$(basename "$f").pg.t"
  printf '#!/bin/sh\n# %s on PostgreSQL\nexec sh "%s/tests/tools/pg_test.sh" "%s"\n' "$f" "$top" "$f" >"$w"
  chmod +x "$w"
  files="$files $w"
done
for f in tests/pg/*.t; do [ -e "$f" ] && files="$files $f"; done
export MCPLINK_TEST_LOGS="$top/$BUILD/test-logs"
rm -rf "$MCPLINK_TEST_LOGS" && mkdir -p "$MCPLINK_TEST_LOGS"
prove -j2 --timer --exec "$top/tests/tap-exec" $files
st=$?
# prove names the failed tests only: show what each said about its failures (the "not ok" lines
# and the diagnostics after them), so that a failure on a machine of its own can be read off its log
if [ $st != 0 ]; then
  for log in "$MCPLINK_TEST_LOGS"/*.tap; do
    grep -q '^not ok' "$log" 2>/dev/null || continue
    echo "# ---- failures of $(basename "$log" .tap) (all its output: $log)"
    awk '/^not ok/ && !/# TODO/ { show = 1; shown++; print; next }
         /^(ok|not ok) / { show = 0 }
         show && shown <= 20 && lines++ < 400 { print }' "$log"
  done
fi
exit $st
