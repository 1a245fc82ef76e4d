#!/bin/sh
# tests/cli/workflows.t: the spec's whole flow against real MCP servers (SDK v2
# and v1 fixtures with API keys): discovery on save, Refresh capabilities with
# added/removed/changed tools, definition pinning and approval (across several
# refreshes: changed again, changed while pending, reverted, dropped), Validate's
# statuses, tool calls with the key applied, resources and prompts.
set -u
. "$(dirname "$0")/fixture_lib.sh"
KEY="sk-fixture-$$"
fx_start server-v2 --api-key "$KEY"; v2=$FX_LINE
fx_start server-v1 --api-key "$KEY"; v1=$FX_LINE
v2url=$(field "$v2" url); v1url=$(field "$v1" url); ctl=$(field "$v2" control)
keyhash=$(printf 'Bearer %s' "$KEY" | sha256sum | cut -d' ' -f1)
ctl_post() { fx_probe --method POST --data "$2" "$ctl/$1" >/dev/null; }
M() { timeout 120 "$bin" --db "${MCPLINK_TEST_DB:-$tmp/w.db}" --ca-file "$FIXTURE_CERTS/ca.pem" "$@"; }
args="-- v2=$v2url v1=$v1url key=$KEY keyhash=$keyhash"
# each phase is a TAP subtest (indented), summed up by one line of ours
phase() {
  out=$(M test "$top/tests/cli/workflows.lua" $args phase=$1 2>&1); st=$?
  echo "$out" | sed 's/^/    /'
  if [ $st = 0 ]; then echo "ok $1 - $2"; else echo "not ok $1 - $2"; status=1; fi
}
status=0
phase 1 "discovery, Validate, tool calls, resources, prompts, list_changed"
# phase 1's engine has closed: it ended its legacy sessions with DELETE
nsess=$(fx_probe "$(field "$v1" control)/sessions" | fx_body_count sessions)

# between refreshes the server changes: echo's description, slow removed
ctl_post tool '{"name":"echo","description":"Echoes text back (now with a changed description)."}'
ctl_post tool '{"name":"slow","remove":true}'
# ... and whoami's _meta only: outside the pinned part, stored without an approval
ctl_post tool '{"name":"whoami","_meta":{"rev":2}}'
phase 2 "refresh diff, definition pinning and approval"
# echo again: changed (pending), changed once more, back to what was approved, changed, dropped, back
ctl_post tool '{"name":"echo","description":"v3"}'; phase 3 "an approved tool changed again waits for approval"
ctl_post tool '{"name":"echo","description":"v4"}'; phase 4 "changed while pending: the approved definition stays"
ctl_post tool '{"name":"echo","description":"Echoes text back (now with a changed description)."}'
phase 5 "back to the approved definition: approved, callable"
ctl_post tool '{"name":"echo","description":"v6"}'; phase 6 "changed: pending"
ctl_post tool '{"name":"echo","remove":true}'; phase 7 "a pending tool dropped: removed with its approval state"
ctl_post tool '{"name":"echo","description":"v8"}'; phase 8 "a tool that comes back is new"
# the timed-out call of phase 1 was cancelled at the server (notifications/cancelled)
v1log=$(fx_probe "$(field "$v1" control)/log")
ncancel=$(echo "$v1log" | fx_body_count cancelled)
if [ "$ncancel" = 1 ]; then echo "ok 9 - the server saw the timed-out call cancelled"
else echo "not ok 9 - the server saw the timed-out call cancelled"; echo "#   cancelled calls in the fixture log: $ncancel"; status=1; fi
# ... because the client said so, not only because its stream closed
nnotice=$(echo "$v1log" | "$node" -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{try{
  console.log(JSON.parse(JSON.parse(t).body).requests.filter(e=>(e.rpc||[]).some(m=>m&&m.method==="notifications/cancelled")).length)
}catch(e){console.log("?")}})')
if [ "$nnotice" = 1 ]; then echo "ok 10 - the client sent notifications/cancelled for the timed-out call"
else echo "not ok 10 - the client sent notifications/cancelled for the timed-out call"; echo "#   notices in the fixture log: $nnotice"; status=1; fi
if [ "$nsess" = 0 ]; then echo "ok 11 - the engine ended its legacy sessions when it closed"
else echo "not ok 11 - the engine ended its legacy sessions when it closed"; echo "#   live sessions: $nsess"; status=1; fi
echo "1..11"
exit $status
