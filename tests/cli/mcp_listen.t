#!/bin/sh
# mcp_listen.t: subscriptions/listen against the SDK v2 server (2026-07-28):
# the stream is acknowledged, a tools list_changed announced by the server
# arrives while the engine listens, and it marks the capabilities stale.
set -u
. "$(dirname "$0")/fixture_lib.sh"
. "$top/tests/cli/tap.sh"
fx_start server-v2
url=$(field "$FX_LINE" url); ctl=$(field "$FX_LINE" control)
"$bin" --db "$tmp/t.db" op settings.set '{"allow_private_urls":true}' >/dev/null 2>&1
# the server announces a change 1.5 s into the listen
(sleep 1.5; fx_probe --method POST --data '{}' "$ctl/list-changed" >/dev/null) &
steps="{\"url\":\"$url\",\"steps\":[{\"step\":\"discover\"},{\"step\":\"stale\"},{\"step\":\"listen\",\"timeout_ms\":8000,\"until_first\":true},{\"step\":\"stale\"}]}"
"$bin" --db "$tmp/t.db" --ca-file "$FIXTURE_CERTS/ca.pem" --compact op mcp.session "$steps" > "$tmp/out" 2>&1
wait
check "the listen stream was acknowledged" grep -q 'notifications/subscriptions/acknowledged' "$tmp/out"
check "the server's tools list_changed arrived on the stream" grep -q 'notifications/tools/list_changed' "$tmp/out"
check "not stale before" grep -q '"step":"stale","result":{"stale":false}\|"result":{"stale":false}' "$tmp/out"
check "stale after the notification" grep -q '"result":{"stale":true}' "$tmp/out"
done_testing
