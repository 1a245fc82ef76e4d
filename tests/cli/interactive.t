#!/bin/sh
# tests/cli/interactive.t: interactive calls against the SDK v2 and v1 fixtures through `mcplink
# test` (interactive.lua, in phases on one database): continuations with several rounds, decline,
# cancel, bad answers, replayed and foreign continuations, late answers; script hooks.
set -u
. "$(dirname "$0")/fixture_lib.sh"
KEY="sk-interactive-$$"
fx_start server-v2 --api-key "$KEY"; v2=$FX_LINE
fx_start server-v1 --api-key "$KEY"; v1=$FX_LINE
M() { timeout 120 "$bin" --db "${MCPLINK_TEST_DB:-$tmp/i.db}" --ca-file "$FIXTURE_CERTS/ca.pem" "$@"; }
args="-- v2=$(field "$v2" url) v1=$(field "$v1" url) key=$KEY"
n=0
status=0
# phase NAME DESCRIPTION [ARGS]: one phase as a TAP subtest (indented), summed up by one line
phase() {
  p=$1; d=$2; shift 2
  out=$(M test "$top/tests/cli/interactive.lua" $args phase=$p "$@" 2>&1); st=$?
  echo "$out" | sed 's/^/    /'
  n=$((n + 1))
  if [ $st = 0 ]; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}
phase setup "a tenant, two servers, an assistant"
phase modern "2026-07-28: continuations, rounds, answers checked, replays and other users refused, hooks"
phase late "a question whose continuation expires"
cont=$(echo "$out" | sed -n 's/^# continuation=//p')
sleep 1.5
phase late2 "the late answer is a timeout" continuation="$cont"
echo "1..$n"
exit $status
