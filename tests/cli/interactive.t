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
# notices (notifications/cancelled) the v1 fixture has seen
v1ctl=$(field "$v1" control)
notices() {
  fx_probe "$v1ctl/log" | "$node" -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{try{
    console.log(JSON.parse(JSON.parse(t).body).requests.filter(e=>(e.rpc||[]).some(m=>m&&m.method==="notifications/cancelled")).length)
  }catch(e){console.log("?")}})'
}
phase output "structured output checked against the output schema, mismatches reported"
phase legacy "handshake era: calls held open while their user answers, rounds, URL, handler"
before=$(notices)
phase legacy_wait "questions answered too late, or never (the engine closes)"
closed=$(echo "$out" | sed -n 's/^# closed=\([^ ]*\) key=.*/\1/p'); key2=$(echo "$out" | sed -n 's/^# closed=[^ ]* key=\(.*\)/\1/p')
after=$(notices)
n=$((n + 1))
if [ "$after" = $((before + 2)) ]; then echo "ok $n - the server was told of both abandoned calls (notifications/cancelled)"
else echo "not ok $n - the server was told of both abandoned calls (notifications/cancelled)"; echo "#   notices before $before, after $after"; status=1; fi
phase legacy_late "a call held by an engine that closed is gone" closed="$closed" key2="$key2"
phase late "a question whose continuation expires"
cont=$(echo "$out" | sed -n 's/^# continuation=//p')
sleep 1.5
phase late2 "the late answer is a timeout" continuation="$cont"
echo "1..$n"
exit $status
