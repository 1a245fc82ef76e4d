#!/bin/sh
# tests/cli/oauth_flow.t: the OAuth flow end to end against a real authorization server
# (oidc-provider, its login and consent pages driven headlessly): discovery, dynamic registration,
# two users with separate tokens, single-flight refresh across eight processes, invalid_grant,
# revocation on disconnect, manual pre-registered client, Client ID Metadata Document.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
BIN=${MCPLINK_BIN:-$top/build/mcplink}
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=300
if [ ! -d "$fx/node_modules/oidc-provider" ]; then echo "Bail out! fixtures not installed (make fixtures)"; exit 1; fi
. "$top/tests/cli/oauth_lib.sh"

fxline=$("$fx/oauth/start.sh") || { echo "Bail out! could not start the OAuth fixture"; exit 1; }
pids="$(j "$fxline" o.pid)"
URL=$(j "$fxline" o.url); ISS=$(j "$fxline" o.issuer); CTL=$(j "$fxline" o.control)
ORIGIN=${URL%/mcp}
setup_engine

# --- discovery (RFC 9728 -> RFC 8414/OIDC) -----------------------------------------------------
as ann op server.update "{\"id\":\"fx\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null
d=$(as ann op oauth.discover '{"server":"fx"}')
is "$(j "$d" o.issuer)" "$ISS" "discovery finds the authorization server from the 401 challenge"
is "$(j "$d" o.oauth.token_url)" "$ISS/token" "the token endpoint is recorded on the server"
is "$(j "$d" o.metadata.resource)" "$URL" "the protected resource metadata names this server"
is "$(j "$d" 'o.metadata.scopes_supported.join(" ")')" "mcp:read mcp:write" "scopes_supported recorded"
is "$(j "$(as alice op oauth.status '{"server":"fx"}')" o.connected)" false "alice starts disconnected"
v=$(as alice op server.validate '{"id":"fx"}')
is "$(j "$v" o.status)" "User not authenticated" "Validate says 'User not authenticated' before the flow"

# --- two users connect through the real login and consent pages ---------------------------------
b=$(as alice op oauth.begin '{"server":"fx"}')
is "$(j "$b" o.client)" dynamic "the engine registered itself dynamically (RFC 7591)"
is "$(j "$b" 'o.scopes.join(" ")')" "mcp:read" "scope selection takes the challenged scope"
au=$(j "$b" o.authorization_url)
case $au in *code_challenge_method=S256*resource=*) ok 0 "authorization URL has PKCE S256 and resource";; *) ok 1 "authorization URL: $au";; esac
cb=$(follow "$au" alice)
case $cb in https://app.example.test/oauth/callback\?code=*iss=*) ok 0 "the AS redirects back with code and iss";; *) ok 1 "callback: $cb";; esac
c=$(as alice op oauth.complete "{\"callback_url\":\"$cb\"}")
is "$(j "$c" o.connected)" true "alice completes the flow"
is "$(j "$(as alice op server.get '{"id":"fx"}')" o.oauth.user_connected)" true "server.get shows alice as connected"
is "$(j "$(as carol op server.get '{"id":"fx"}')" o.oauth.user_connected)" false "and carol as not connected"
r=$(as alice op oauth.complete "{\"callback_url\":\"$cb\"}")
is "$(j "$r" o.error.code)" invalid_argument "replaying the callback is refused (single-use state)"
bb=$(as bob op oauth.begin '{"server":"fx"}')
bcb=$(follow "$(j "$bb" o.authorization_url)" bob)
r=$(as alice op oauth.complete "{\"callback_url\":\"$bcb\"}")
like "$(j "$r" o.error.message)" "another user" "bob's state cannot be completed by alice"
is "$(j "$(as bob op oauth.complete "{\"callback_url\":\"$bcb\"}")" o.connected)" true "bob completes his own flow"
st=$(probe "$CTL/stats")
is "$(j "$st" o.registrations)" 1 "one dynamic registration serves both users"
is "$(j "$st" o.access_tokens.alice)" 1 "the AS issued alice one access token"
is "$(j "$st" o.access_tokens.bob)" 1 "the AS issued bob one access token"
is "$(j "$st" 'o.resources.every(r => r === "'"$URL"'")')" true "token requests carry the RFC 8707 resource"
is "$(j "$st" 'o.authorize.every(a => a.code_challenge_method === "S256")')" true "every authorization request used S256"

# --- code injection: bob's code with alice's state (PKCE binds the code to bob's verifier) -------
ab=$(as alice op oauth.begin '{"server":"fx"}')
bb=$(as bob op oauth.begin '{"server":"fx"}')
bcb=$(follow "$(j "$bb" o.authorization_url)" bob)
bcode=$(j "$bcb" 'new URL(o).searchParams.get("code")' raw)
r=$(as alice op oauth.complete "{\"state\":\"$(j "$ab" o.state)\",\"code\":\"$bcode\",\"iss\":\"$ISS\"}")
is "$(j "$r" o.error.code)" unauthorized "an injected code is refused by the token endpoint (PKCE)"
is "$(j "$(probe "$CTL/stats")" o.access_tokens.alice)" 1 "nothing new was issued to alice"
# iss mismatch (RFC 9207): a response claiming another issuer
ab=$(as alice op oauth.begin '{"server":"fx"}')
acb=$(follow "$(j "$ab" o.authorization_url)" alice)
bad=$(printf '%s' "$acb" | sed 's|iss=[^&]*|iss=https%3A%2F%2Fevil.example|')
r=$(as alice op oauth.complete "{\"callback_url\":\"$bad\"}")
like "$(j "$r" o.error.message)" "RFC 9207" "an authorization response from another issuer is refused"
r=$(as alice op oauth.complete "{\"callback_url\":\"$acb\"}")
is "$(j "$r" o.error.code)" invalid_argument "and its state is spent: the genuine callback cannot follow"

# --- single-flight refresh: eight processes, an expired token, one refresh grant ----------------
probe -d '{"access_ttl":2}' "$CTL/mode" >/dev/null
ab=$(as alice op oauth.begin '{"server":"fx"}')
as alice op oauth.complete "{\"callback_url\":\"$(follow "$(j "$ab" o.authorization_url)" alice)\"}" >/dev/null
probe -d '{}' "$CTL/reset-stats" >/dev/null
sleep 2.2
i=0; while [ $i -lt 8 ]; do as alice op oauth.refresh '{"server":"fx"}' > "$work/r$i" & i=$((i + 1)); done
wait
okc=0; for f in "$work"/r*; do [ "$(j "$(cat "$f")" o.connected)" = true ] && okc=$((okc + 1)); done
is "$okc" 8 "all eight concurrent callers got a token"
st=$(probe "$CTL/stats")
is "$(j "$st" o.refresh_grants)" 1 "exactly one refresh grant for eight concurrent callers"
is "$(j "$st" o.refresh_failures)" 0 "no caller reused a rotated refresh token"
probe -d '{"access_ttl":3600}' "$CTL/mode" >/dev/null
f=$(as alice op oauth.refresh '{"server":"fx","force":true}')
is "$(j "$f" o.connected)" true "a forced refresh with the rotated refresh token works"

# --- invalid_grant drops the tokens; disconnect revokes at the AS -------------------------------
probe -d '{"user":"bob"}' "$CTL/revoke-user" >/dev/null
r=$(as bob op oauth.refresh '{"server":"fx","force":true}')
is "$(j "$r" o.error.code)" user_not_authenticated "invalid_grant: bob is told to reconnect"
is "$(j "$(as bob op oauth.status '{"server":"fx"}')" o.connected)" false "and his tokens are gone"
d=$(as alice op oauth.disconnect '{"server":"fx"}')
is "$(j "$d" o.revoked.refresh_token)" true "disconnect revokes the refresh token (RFC 7009)"
st=$(probe "$CTL/stats")
is "$(j "$st" 'o.access_tokens.alice ?? 0')" 0 "the AS holds no live access token for alice"
is "$(j "$st" 'o.refresh_tokens.alice ?? 0')" 0 "the AS holds no live refresh token for alice"
is "$(j "$(as alice op oauth.status '{"server":"fx"}')" o.connected)" false "alice is disconnected"

# --- manual mode with a pre-registered confidential client --------------------------------------
as ann op server.create '{"name":"manual"}' >/dev/null
as ann op server.update "{\"id\":\"manual\",\"url\":\"$URL\",\"auth_type\":\"oauth\",\"oauth\":{\"registration_mode\":\"manual\",\"client_id\":\"mcplink-manual\",\"client_secret\":\"manual-secret-0123456789\",\"authorization_url\":\"$ISS/auth\",\"token_url\":\"$ISS/token\",\"revocation_url\":\"$ISS/token/revocation\",\"scopes\":[\"mcp:read\"]}}" >/dev/null
mb=$(as alice op oauth.begin '{"server":"manual"}')
is "$(j "$mb" o.client)" preregistered "manual mode uses the admin's client"
is "$(j "$(as alice op oauth.complete "{\"callback_url\":\"$(follow "$(j "$mb" o.authorization_url)" alice)\"}")" o.connected)" true \
  "alice connects through the manual configuration (client_secret_basic)"
g=$(as ann op server.get '{"id":"manual"}')
is "$(j "$g" o.oauth.client_secret_set)" true "server.get shows only client_secret_set"
case $(as ann op server.get '{"id":"manual"}'; as ann op server.list '{}') in *manual-secret*) ok 1 "the client secret never appears";; *) ok 0 "the client secret never appears";; esac

# --- Client ID Metadata Document -----------------------------------------------------------------
probe -d "{\"cimd\":{\"client_id\":\"$ORIGIN/client.json\",\"client_name\":\"mcplink\",\"redirect_uris\":[\"https://app.example.test/oauth/callback\"],\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"],\"token_endpoint_auth_method\":\"none\"}}" "$CTL/mode" >/dev/null
as ann op server.create '{"name":"cimd"}' >/dev/null
as ann op server.update "{\"id\":\"cimd\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null
cm=$(asc "$ORIGIN/client.json" carol op oauth.begin '{"server":"cimd"}')
is "$(j "$cm" o.client)" metadata_document "an AS with CIMD support gets the metadata document URL as client_id"
cc=$(follow "$(j "$cm" o.authorization_url)" carol)
is "$(j "$(asc "$ORIGIN/client.json" carol op oauth.complete "{\"callback_url\":\"$cc\"}")" o.connected)" true \
  "carol connects as a public client identified by its metadata document"
m=$(asc "$ORIGIN/client.json" carol op oauth.client_metadata)
is "$(j "$m" o.client_id)" "$ORIGIN/client.json" "oauth.client_metadata: client_id is its own URL"
is "$(j "$m" o.token_endpoint_auth_method)" none "oauth.client_metadata: a public client"
is "$(j "$m" 'Object.entries(o).filter(([k, v]) => v === null).map(([k]) => k).join(",")')" "" \
  "oauth.client_metadata: no member is null (oidc-provider refuses a document with client_uri null)"
probe -d '{"cimd":null}' "$CTL/mode" >/dev/null

done_tap
