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
# step N of the session's results (in the order asked): its JSON, for the checks below
step() { "$node" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results[process.argv[2]];
  console.log(JSON.stringify(r ? { step: r.step, result: r.result } : null))' "$tmp/out" "$1" 2>/dev/null; }
is_step() { got=$(step "$1"); if [ "$got" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  $got"; echo "#   want: $2"; fi; }
is_step 1 '{"step":"stale","result":{"stale":false}}' "not stale before the listen"
is_step 2 '{"step":"listen","result":["notifications/subscriptions/acknowledged","notifications/tools/list_changed"]}' \
  "the listen stream was acknowledged, then the server's tools list_changed arrived on it"
is_step 3 '{"step":"stale","result":{"stale":true}}' "stale after the notification"
done_testing
