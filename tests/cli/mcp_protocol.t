#!/bin/sh
# tests/cli/mcp_protocol.t: the engine's MCP client against real servers: SDK v2 (2026-07-28), SDK v1
# (2025-11-25, forced 2025-03-26, HTTP+SSE 2024-11-05, JSON and SSE, stateful and stateless, paged,
# expiring sessions, resumable streams) and the misbehaving server. Runs mcp_protocol.lua (TAP).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
bin=${MCPLINK_BIN:-$top/build/mcplink}
if [ ! -d "$fx/node_modules/@modelcontextprotocol/sdk" ]; then
  echo "Bail out! fixtures not installed (make fixtures)"; exit 1
fi
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=300
pids=""
cleanup() { [ -n "$pids" ] && sh "$fx/stop.sh" $pids; }
trap cleanup EXIT
trap 'exit 1' INT TERM
args=""
# start NAME FIXTURE [ARGS]: starts a fixture, remembers NAME=URL
start() {
  name=$1; shift
  line=$(sh "$fx/start.sh" "$@") || { echo "Bail out! could not start $*"; exit 1; }
  url=$(echo "$line" | sed 's/.*"url":"\([^"]*\)".*/\1/')
  pid=$(echo "$line" | sed 's/.*"pid":\([0-9]*\).*/\1/')
  pids="$pids $pid"
  args="$args $name=$url"
}
start v2 server-v2 --sse
start v2json server-v2 --json
start v1 server-v1
start v1json server-v1 --json --stateless
start v1old server-v1 --protocol-version 2025-03-26
start v1sse server-v1 --legacy-sse
start v2paged server-v2 --tools 120 --page-size 25
start v1paged server-v1 --tools 120 --page-size 25 --json
start v1ttl server-v1 --session-ttl-ms 800
start v1resume server-v1 --resumable --retry-ms 100
start misbehaving misbehaving
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcp_protocol.XXXXXX")
out=$(timeout 240 "$bin" --db "$tmp/t.db" --ca-file "$FIXTURE_CERTS/ca.pem" run "$top/tests/cli/mcp_protocol.lua" $args 2>&1)
rc=$?
rm -rf "$tmp"
echo "$out"
[ $rc = 0 ] || { echo "# mcplink exited $rc"; exit 1; }
echo "$out" | grep -q '^not ok' && exit 1
echo "$out" | grep -q '^1\.\.' || exit 1
exit 0
