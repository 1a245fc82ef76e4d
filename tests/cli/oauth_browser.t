#!/bin/sh
# tests/cli/oauth_browser.t: the OAuth flow with a real browser: Debian's Chromium (playwright-core)
# signs in and consents on oidc-provider's pages for two users, then separate tokens, silent refresh
# on expiry, single-flight refresh under eight concurrent tool calls, and revocation seen at the AS.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
BIN=${MCPLINK_BIN:-$top/build/mcplink}
export MCPLINK_BUILD=${MCPLINK_BUILD:-$top/build}
export FIXTURE_CERTS=${FIXTURE_CERTS:-$MCPLINK_BUILD/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=600
if [ ! -d "$fx/node_modules/oidc-provider" ] || [ ! -d "$fx/node_modules/playwright-core" ]; then
  echo "Bail out! fixtures not installed (make fixtures)"; exit 1
fi
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
  echo "Bail out! chromium is not installed (make deps installs it; CHROMIUM=PATH names another)"; exit 1
fi
. "$top/tests/cli/oauth_lib.sh"

# browse URL USER [FLAGS]: one login in a fresh Chromium profile; prints the driver's JSON line
browse() {
  prof=$(mktemp -d "$work/profile.XXXXXX")
  timeout 75 "$NODE" "$fx/oauth/browser.mjs" --url "$1" --user "$2" --profile "$prof" \
    --chromium "$CHROMIUM" --timeout-ms 30000 ${3:-} 2>>"$work/browser.log"
}
# connect USER: `mcplink oauth connect fx` with its loopback listener, completed by the browser;
# sets $bj (the driver's JSON) and $out (what the CLI printed), returns the CLI's exit status
connect() {
  # a user's earlier connect left its output here: gone first, so the wait below never reads the old
  # URL before the new process has truncated the file (it races the shell's redirection)
  rm -f "$work/connect-$1.out"
  as "$1" oauth connect "${SRV:-fx}" --timeout-ms 90000 > "$work/connect-$1.out" 2>&1 &
  cpid=$!; pids="$pids $cpid"
  # until the CLI prints the URL (or gives up): under load that can take a while
  i=0; while [ $i -lt 900 ] && kill -0 $cpid 2>/dev/null && ! grep -q 'https://.*/auth?' "$work/connect-$1.out" 2>/dev/null; do
    sleep 0.1; i=$((i + 1)); done
  cwait=$i
  au=$(grep -o 'https://[^ ]*/auth?[^ ]*' "$work/connect-$1.out" | head -n 1)
  bj=$(browse "${au:-http://127.0.0.1:1/none}" "$1" "${2:-}")
  wait $cpid; cst=$?
  out=$(cat "$work/connect-$1.out")
  return $cst
}
# diag_connect STATUS: on a failed connect, what the CLI printed and what the browser logged
diag_connect() { [ "$1" = 0 ] || { echo "#   the URL was printed after ${cwait}00 ms"; printf '%s\n' "$out" "$bj" | sed 's/^/#   cli: /'; sed 's/^/#   /' "$work/browser.log"; }; }
call() { as "$1" op tool.call "{\"assistant\":\"$2\",\"tool\":\"fx__whoami\"}"; }
stats() { probe "$CTL/stats"; }
# expire_soon USER: a fresh access token of 2 s for USER (forced refresh), then wait until it is expired
expire_soon() {
  probe -d '{"access_ttl":2}' "$CTL/mode" >/dev/null
  as "$1" op oauth.refresh '{"server":"fx","force":true}' >/dev/null
  probe -d '{"access_ttl":3600}' "$CTL/mode" >/dev/null
  i=0; while [ $i -lt 50 ] && [ "$(j "$(as "$1" op oauth.status '{"server":"fx"}')" o.expired)" != true ]; do sleep 0.1; i=$((i + 1)); done
}

fxline=$("$fx/oauth/start.sh") || { echo "Bail out! could not start the OAuth fixture"; exit 1; }
pids="$(j "$fxline" o.pid)"
URL=$(j "$fxline" o.url); ISS=$(j "$fxline" o.issuer); CTL=$(j "$fxline" o.control)
setup_engine
as ann op server.update "{\"id\":\"fx\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null

# --- the admin connects the same way as the users below (`mcplink oauth connect`, loopback) ---------
connect ann; st=$?
is "$st" 0 "the admin connects through Chromium and the loopback listener"
diag_connect "$st"
r=$(as ann op server.refresh '{"id":"fx"}')
is "$(j "$r" o.ok)" true "with the admin's token, refreshing the capabilities works"
[ "$(j "$r" o.ok)" = true ] || echo "#   $r"
is "$(j "$(as ann op server.capabilities '{"id":"fx"}')" 'o.tools.map(t => t.name).sort().join(",")')" "whoami,write_note" \
  "the server's tools are known (discovered with the admin's token)"
as ann op tool.enable '{"server":"fx"}' >/dev/null

# --- two users connect with `mcplink oauth connect` and the browser, each in a fresh profile -----
connect alice --screenshot="$MCPLINK_BUILD/oauth-consent.png"; st=$?
is "$st" 0 "alice: oauth connect exits 0 after the browser's return"
is "$(j "$bj" 'o.pages.join(",")')" "login,consent" "alice signed in and consented in Chromium"
case $(j "$bj" o.callback) in "http://127.0.0.1:"*"/callback?code="*) ok 0 "alice's browser came back to the loopback listener";;
  *) ok 1 "alice callback: $bj"; sed 's/^/#   /' "$work/browser.log";; esac
like "$(j "$bj" o.page)" "Connected" "alice's browser shows the listener's success page"
like "$out" '"connected":true' "oauth connect prints alice's connection"
# the screenshot is for people (the browser driver wrote it), not a check of the engine
[ -s "$MCPLINK_BUILD/oauth-consent.png" ] && echo "# consent page screenshot: $MCPLINK_BUILD/oauth-consent.png"
connect bob; st=$?
is "$st" 0 "bob: oauth connect exits 0"
diag_connect "$st"
is "$(j "$bj" 'o.pages.join(",")')" "login,consent" "bob had to sign in himself (no session shared with alice's profile)"
like "$out" '"connected":true' "oauth connect prints bob's connection"
st=$(stats)
is "$(j "$st" o.access_tokens.alice)" 1 "the AS issued alice one access token"
is "$(j "$st" o.access_tokens.bob)" 1 "the AS issued bob one access token"
is "$(j "$st" o.code_grants)" 3 "three code grants: admin, alice, bob"
is "$(j "$st" o.registrations)" 1 "one native client registration serves every loopback port (RFC 8252)"
is "$(j "$st" 'o.authorize.every(a => a.code_challenge_method === "S256" && a.resource === "'"$URL"'")')" true \
  "every authorization request used PKCE S256 and the RFC 8707 resource"

# --- a user who cancels on the login page: the listener reports the refusal, nothing is stored ----
connect carol --deny; st=$?
is "$st" 1 "carol cancels in the browser: oauth connect exits 1"
case $(j "$bj" o.callback) in "http://127.0.0.1:"*"/callback?error=access_denied"*) ok 0 "the AS returned error=access_denied to the listener";;
  *) ok 1 "carol callback: $bj";; esac
is "$(j "$(as carol op oauth.status '{"server":"fx"}')" o.connected)" false "carol stays disconnected"

# --- tool calls use the caller's own token only ---------------------------------------------------
aa=$(j "$(as alice op assistant.create '{"name":"a-alice"}')" o.id)
ba=$(j "$(as bob op assistant.create '{"name":"a-bob"}')" o.id)
ca=$(j "$(as carol op assistant.create '{"name":"a-carol"}')" o.id)
for p in "alice $aa" "bob $ba" "carol $ca"; do set -- $p; as "$1" op assistant.attach "{\"assistant\":\"$2\",\"server\":\"fx\"}" >/dev/null; done
probe -d '{}' "$CTL/reset-stats" >/dev/null
is "$(j "$(call alice "$aa")" o.structuredContent.account)" alice "alice's tool call reaches the MCP server as alice"
is "$(j "$(call bob "$ba")" o.structuredContent.account)" bob "bob's tool call reaches the MCP server as bob"
r=$(call carol "$ca")
is "$(j "$r" o.error.code)" user_not_authenticated "carol, never connected, uses nobody else's token"
st=$(stats)
is "$(j "$st" 'new Set(o.token_uses.filter(u => u.account === "alice").map(u => u.fp)).size')" 1 "alice's calls carried one token"
is "$(j "$st" 'o.token_uses.filter(u => u.account === "alice").every(a => !o.token_uses.some(b => b.account !== "alice" && b.fp === a.fp))')" true \
  "no token alice used was ever used for bob (separate tokens)"
AFP=$(j "$st" 'o.token_uses.find(u => u.account === "alice").fp')
BFP=$(j "$st" 'o.token_uses.find(u => u.account === "bob").fp')

# --- expiry: the next call refreshes silently (no browser, no new code grant) ----------------------
expire_soon alice
is "$(j "$(as alice op oauth.status '{"server":"fx"}')" o.expired)" true "alice's access token has expired"
probe -d '{}' "$CTL/reset-stats" >/dev/null
is "$(j "$(call alice "$aa")" o.structuredContent.account)" alice "a tool call with the expired token still works"
st=$(stats)
is "$(j "$st" o.refresh_grants)" 1 "it was served by one refresh grant"
is "$(j "$st" o.code_grants)" 0 "without a new authorization (silent)"
is "$(j "$st" o.mcp_401)" 0 "the expired token was never sent (refreshed before use)"
is "$(j "$(as alice op oauth.status '{"server":"fx"}')" o.expired)" false "alice's status shows a fresh token"

# --- eight concurrent tool calls with an expired token: exactly one refresh -----------------------
expire_soon alice
probe -d '{}' "$CTL/reset-stats" >/dev/null
i=0; while [ $i -lt 8 ]; do call alice "$aa" > "$work/c$i" & i=$((i + 1)); done
wait
okc=0; for f in "$work"/c?; do [ "$(j "$(cat "$f")" o.structuredContent.account)" = alice ] && okc=$((okc + 1)); done
is "$okc" 8 "all eight concurrent tool calls answered as alice"
[ "$okc" = 8 ] || sed 's/^/#   /' "$work"/c?
st=$(stats)
is "$(j "$st" o.refresh_grants)" 1 "exactly one refresh grant for the eight calls"
is "$(j "$st" o.refresh_failures)" 0 "no call reused a rotated refresh token"
is "$(j "$st" 'new Set(o.token_uses.map(u => u.fp)).size')" 1 "all eight calls carried the same new token"
AFP=$(j "$st" 'o.token_uses[0].fp')

# --- disconnect, verified at the authorization server ----------------------------------------------
is "$(j "$(probe -d "{\"fp\":\"$AFP\"}" "$CTL/token-active")" o.active)" true "before disconnect the AS holds alice's token as active"
probe -d '{}' "$CTL/reset-stats" >/dev/null
d=$(as alice oauth disconnect fx)
is "$(j "$d" o.disconnected)" true "alice disconnects (mcplink oauth disconnect)"
is "$(j "$d" o.revoked.refresh_token)" true "her refresh token was revoked (RFC 7009)"
is "$(j "$d" o.revoked.access_token)" true "and her access token"
is "$(j "$(probe -d "{\"fp\":\"$AFP\"}" "$CTL/token-active")" o.active)" false "the AS no longer accepts the access token alice last used"
st=$(stats)
is "$(j "$st" 'o.access_tokens.alice ?? 0')" 0 "the AS holds no live access token for alice"
is "$(j "$st" 'o.refresh_tokens.alice ?? 0')" 0 "the AS holds no live refresh token for alice"
is "$(j "$st" o.revocations)" 2 "the revocation endpoint accepted two revocations (refresh and access token)"
is "$(j "$(probe -d "{\"fp\":\"$BFP\"}" "$CTL/token-active")" o.active)" true "bob's token is untouched at the AS"
is "$(j "$(call alice "$aa")" o.error.code)" user_not_authenticated "alice's next call asks her to connect again"
is "$(j "$(call bob "$ba")" o.structuredContent.account)" bob "bob still calls as bob"
is "$(j "$(stats)" 'o.token_uses.every(u => u.account === "bob")')" true "after disconnect no call reached the server as alice"

# --- the host's web redirect URI: the browser is sent there, the driver records it, never visits ------
as ann op server.create '{"name":"web"}' >/dev/null
as ann op server.update "{\"id\":\"web\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null
b=$(as carol op oauth.begin '{"server":"web"}')
bj=$(browse "$(j "$b" o.authorization_url)" carol)
is "$(j "$bj" 'o.pages.join(",")')" "login,consent" "carol signs in and consents in Chromium"
cb=$(j "$bj" o.callback)
case $cb in "https://app.example.test/oauth/callback?code="*"&iss="*) ok 0 "the AS sends her browser to the host's redirect URI (recorded, not visited)";;
  *) ok 1 "callback: $cb"; sed 's/^/#   /' "$work/browser.log";; esac
is "$(j "$(as carol op oauth.complete "{\"callback_url\":\"$cb\"}")" o.connected)" true "the host hands the callback to oauth.complete: carol is connected"
# A loopback connect on the same server registers a separate native client (loopback redirect URIs)
# and leaves the web client carol's tokens belong to alone.
SRV=web connect alice; st=$?
is "$st" 0 "alice connects to the same server through the loopback listener"
diag_connect "$st"
r=$(as carol op oauth.refresh '{"server":"web","force":true}')
is "$(j "$r" o.connected)" true "carol's refresh still works after alice's loopback connect (separate registrations)"
SRV=web connect bob; st=$?
is "$st" 0 "a second loopback connect on another port reuses the native client"
diag_connect "$st"

done_tap
