#!/bin/sh
# tests/cli/interactive_session.t: a handshake-era server (SDK v1 fixture) that sends its question
# on the session's own stream (the client's GET), not on the call's: answered by a handler or a
# continuation, and the calls' bounds (nobody answers; a server with no such stream, 405).
set -u
. "$(dirname "$0")/fixture_lib.sh"
KEY="sk-session-$$"
fx_start server-v1 --api-key "$KEY" --session-ask; get=$FX_LINE
fx_start server-v1 --api-key "$KEY" --session-ask --no-get; noget=$FX_LINE
M() { timeout 120 "$bin" --db "$tmp/s.db" --ca-file "$FIXTURE_CERTS/ca.pem" "$@"; }
args="-- get=$(field "$get" url) noget=$(field "$noget" url) key=$KEY"
n=0
status=0
phase() {
  p=$1; d=$2; shift 2
  out=$(M test "$top/tests/cli/interactive_session.lua" $args phase=$p "$@" 2>&1); st=$?
  echo "$out" | sed 's/^/    /'
  n=$((n + 1))
  if [ $st = 0 ]; then echo "ok $n - $d"; else echo "not ok $n - $d"; status=1; fi
}
# gets CONTROL_URL: the GET requests on /mcp the fixture has seen; notices CONTROL_URL: the
# notifications/cancelled
count() {
  fx_probe "$1/log" | "$node" -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{try{
    const f={gets:e=>e.method==="GET"&&e.path.startsWith("/mcp"),
             notices:e=>(e.rpc||[]).some(m=>m&&m.method==="notifications/cancelled")}[process.argv[1]];
    console.log(JSON.parse(JSON.parse(t).body).requests.filter(f).length)
  }catch(e){console.log("?")}})' "$2"
}
gets() { count "$1" gets; }
notices() { count "$1" notices; }
phase setup "a tenant, a server with a session stream and one without, an assistant"
g=$(gets "$(field "$get" control)")
n=$((n + 1))
if [ "$g" = 0 ]; then echo "ok $n - discovery opens no stream of its own"; else echo "not ok $n - discovery opens no stream of its own"; status=1; fi
phase answered "questions on the session's stream: a handler answers, a continuation answers later"
g=$(gets "$(field "$get" control)")
n=$((n + 1))
d="one GET stream for the session, kept between its calls (three calls, a continuation)"
if [ "$g" = 1 ]; then echo "ok $n - $d"; else echo "not ok $n - $d"; echo "#   GETs: $g"; status=1; fi
phase never "nobody answers: the calls end with timeout"
c=$(notices "$(field "$get" control)")
n=$((n + 1))
if [ "$c" = 1 ]; then echo "ok $n - the server was told of the abandoned call (notifications/cancelled)"
else echo "not ok $n - the server was told of the abandoned call (notifications/cancelled)"; echo "#   notices: $c"; status=1; fi
g=$(gets "$(field "$noget" control)")
n=$((n + 1))
if [ "$g" = 1 ]; then echo "ok $n - a 405 to the GET is asked once per session, not on every call"
else echo "not ok $n - a 405 to the GET is asked once per session, not on every call"; echo "#   GETs: $g"; status=1; fi
echo "1..$n"
exit $status
