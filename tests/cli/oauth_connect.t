#!/bin/sh
# tests/cli/oauth_connect.t: `mcplink oauth connect SERVER` end to end: the loopback redirect
# listener (RFC 8252), the authorization URL it prints, the browser's return (headless agent),
# then `oauth status` and `oauth disconnect` through the friendly CLI.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
BIN=${MCPLINK_BIN:-$top/build/mcplink}
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=120
if [ ! -d "$fx/node_modules/oidc-provider" ]; then echo "Bail out! fixtures not installed (make fixtures)"; exit 1; fi
. "$top/tests/cli/oauth_lib.sh"

fxline=$("$fx/oauth/start.sh" --auto-consent alice) || { echo "Bail out! could not start the OAuth fixture"; exit 1; }
pids="$(j "$fxline" o.pid)"
URL=$(j "$fxline" o.url); CTL=$(j "$fxline" o.control)
setup_engine
as ann op server.update "{\"id\":\"fx\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null

as alice oauth connect fx --timeout-ms 60000 > "$work/connect.out" 2>&1 &
cpid=$!
i=0; while [ $i -lt 300 ] && ! grep -q 'https://.*/auth?' "$work/connect.out"; do sleep 0.1; i=$((i + 1)); done
au=$(grep -o 'https://[^ ]*/auth?[^ ]*' "$work/connect.out" | head -n 1)
case $au in *redirect_uri=http%3A%2F%2F127.0.0.1%3A*%2Fcallback*) ok 0 "the printed URL returns to a loopback listener";;
  *) ok 1 "printed URL: $(cat "$work/connect.out")";; esac
cb=$(follow "$au" alice)
case $cb in http://127.0.0.1:*/callback\?code=*) ok 0 "the AS sends the browser back to the listener";; *) ok 1 "callback: $cb";; esac
port=$(echo "$au" | sed -n 's/.*redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\([0-9]*\)%2Fcallback.*/\1/p')
# A real browser opens speculative connections that never send a request, and asks for other paths:
# two idle sockets and a favicon request come first, and the callback is still answered at once.
"$NODE" -e 'const net = require("net"); const port = +process.argv[1];
  for (let i = 0; i < 2; i++) net.connect(port, "127.0.0.1").on("error", () => {});
  setTimeout(() => process.exit(0), 15000);' "$port" &
idle=$!; pids="$pids $idle"
sleep 0.5
is "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$port/favicon.ico")" 404 \
  "a request for another path is answered 404 while idle connections are open"
page=$(curl -s -m 5 "$cb")
like "$page" "Connected" "the browser sees a success page, though idle connections came first"
kill "$idle" 2>/dev/null
wait $cpid; st=$?
is "$st" 0 "oauth connect exits 0"
like "$(cat "$work/connect.out")" '"connected":true' "oauth connect prints the connection"
is "$(j "$(as alice oauth status fx)" o.connected)" true "oauth status: connected"
st=$(probe "$CTL/stats")
is "$(j "$st" 'o.authorize[0].redirect_uri')" "http://127.0.0.1:$port/callback" "the AS was asked to return to the listener's port"
is "$(j "$st" 'o.registered.length')" 1 "one client was registered"
is "$(j "$st" 'o.registered[0].client_id === o.authorize[0].client_id')" true "the authorization request used that client"
is "$(j "$st" 'o.registered[0].application_type')" native "registered as a native client (RFC 8252)"
is "$(j "$st" 'o.registered[0].redirect_uris.includes("http://127.0.0.1:'"$port"'/callback")')" true \
  "with the loopback redirect URI among its redirect URIs"
is "$(j "$(as alice oauth disconnect fx)" o.disconnected)" true "oauth disconnect"
is "$(j "$(as alice oauth status fx)" o.connected)" false "oauth status: disconnected"
as bob oauth connect fx --timeout-ms 1500 > "$work/timeout.out" 2>&1; st=$?
is "$st" 1 "without a callback, oauth connect gives up after its timeout"
is "$(j "$(sed -n '/^{/,$p' "$work/timeout.out")" o.error.code)" timeout "and says so as a timeout error"
like "$(cat "$work/timeout.out")" "no callback from the browser within 1500 ms" "naming the time it waited"
is "$(j "$(as bob oauth status fx)" o.connected)" false "bob stays disconnected"
done_tap
