#!/bin/sh
# tests/cli/oauth_discovery.t: saving an OAuth server discovers its authorization server at once
# (RFC 9728, RFC 8414/OIDC) against a real one (oidc-provider): endpoints, scopes, CIMD support and
# the registration path in server.get before any user connects; failures recorded, the
# configuration kept; capabilities awaiting a user, not in error; refresh and URL changes.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
BIN=${MCPLINK_BIN:-$top/build/mcplink}
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=300
if [ ! -d "$fx/node_modules/oidc-provider" ]; then echo "Bail out! fixtures not installed (make fixtures)"; exit 1; fi
. "$top/tests/cli/oauth_lib.sh"

fxline=$("$fx/oauth/start.sh" --auto-consent alice) || { echo "Bail out! could not start the OAuth fixture"; exit 1; }
pids="$(j "$fxline" o.pid)"
URL=$(j "$fxline" o.url); ISS=$(j "$fxline" o.issuer); CTL=$(j "$fxline" o.control)
ORIGIN=${URL%/mcp}
setup_engine
field() { j "$1" "$2"; }

# --- saving the URL discovers the authorization server, before anyone connects ------------------
r=$(as ann op server.update "{\"id\":\"fx\",\"url\":\"$URL\",\"auth_type\":\"oauth\",\"oauth\":{\"registration_mode\":\"auto\"}}")
is "$(field "$r" o.oauth.discovery.status)" ok "server.update discovers the authorization server (RFC 9728 -> RFC 8414)"
is "$(field "$r" o.oauth.issuer)" "$ISS" "the issuer, from the protected resource metadata"
is "$(field "$r" o.capabilities_status)" awaiting_user "capabilities await a user's token: not an error"
is "$(field "$r" o.discovery.status)" awaiting_user "and the save's discovery result says so"
g=$(as alice op server.get '{"id":"fx"}')
is "$(field "$g" o.oauth.authorization_url)" "$ISS/auth" "server.get (a member): the authorization endpoint"
is "$(field "$g" o.oauth.token_url)" "$ISS/token" "the token endpoint"
is "$(field "$g" o.oauth.registration_url)" "$ISS/reg" "the registration endpoint"
is "$(field "$g" o.oauth.revocation_url)" "$ISS/token/revocation" "the revocation endpoint"
is "$(field "$g" 'o.oauth.scopes_supported.join(" ")')" "mcp:read mcp:write" "the supported scopes"
is "$(field "$g" o.oauth.client_id_metadata_document_supported)" false "no Client ID Metadata Documents at this AS"
is "$(field "$g" o.oauth.registration_path)" dynamic "the engine will register dynamically (RFC 7591)"
is "$(field "$g" o.oauth.user_connected)" false "and alice has not connected"
is "$(field "$g" o.capabilities_status)" awaiting_user "server.get: capabilities await a user"
st=$(probe "$CTL/stats")
is "$(field "$st" o.registrations)" 0 "discovery registered no client"
is "$(field "$st" o.authorize.length)" 0 "and started no authorization"
c=$(as alice op server.capabilities '{"id":"fx"}')
is "$(field "$c" o.status)" awaiting_user "server.capabilities: awaiting_user"
is "$(field "$c" o.error)" null "with no error"
v=$(as alice op server.validate '{"id":"fx"}')
is "$(field "$v" o.status)" "User not authenticated" "Validate: 'User not authenticated' for a user who has not connected"
v=$(as ann op server.validate '{"id":"fx"}')
is "$(field "$v" o.status)" "User not authenticated" "and for the admin who saved it"
l=$(as ann op server.list '{}')
is "$(field "$l" 'o.items.find(s => s.name === "fx").capabilities_status')" awaiting_user "server.list agrees"

# --- server.refresh without a connection: the metadata again, the capabilities still await -----
r=$(as ann op server.refresh '{"id":"fx"}')
is "$(field "$r" o.status)" awaiting_user "server.refresh by an admin who has not connected: awaiting_user"
is "$(field "$r" o.oauth.discovery.status)" ok "and the authorization server discovered again"
is "$(field "$r" o.oauth.token_url)" "$ISS/token" "with its endpoints"

# --- the first user to connect brings the capabilities in ---------------------------------------
b=$(as alice op oauth.begin '{"server":"fx"}')
cb=$(follow "$(j "$b" o.authorization_url)" alice)
c=$(as alice op oauth.complete "{\"callback_url\":\"$cb\"}")
is "$(field "$c" o.connected)" true "alice connects"
is "$(field "$c" o.discovery.ok)" true "and her connection discovers the capabilities"
g=$(as ann op server.get '{"id":"fx"}')
is "$(field "$g" o.capabilities_status)" ok "capabilities_status: ok"
is "$(field "$(as alice op server.capabilities '{"id":"fx"}')" 'o.tools.map(t => t.name).join(",")')" "whoami,write_note" \
  "the tools are listed"

# --- Client ID Metadata Documents: what the AS supports and what this engine will use -----------
probe -d '{"cimd":{"client_id":"x"}}' "$CTL/mode" >/dev/null
as ann op server.create '{"name":"cimd"}' >/dev/null
r=$(as ann op server.update "{\"id\":\"cimd\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}")
is "$(field "$r" o.oauth.client_id_metadata_document_supported)" true "an AS that supports CIMD is shown as such"
is "$(field "$r" o.oauth.registration_path)" dynamic "without oauth_client_metadata_url the engine still registers dynamically"
g=$(asc "$ORIGIN/client.json" ann op server.get '{"id":"cimd"}')
is "$(field "$g" o.oauth.registration_path)" metadata_document "with it, the engine will use its metadata document"
probe -d '{"cimd":null}' "$CTL/mode" >/dev/null

# --- discovery that is not possible: saved anyway, and server.get says why ----------------------
# bad KEY VALUE REASON MESSAGE: the fixture's metadata spoiled by mode KEY=VALUE
bad() {
  key=$1; reason=$3; msg=$4
  probe -d "{\"$key\":$2}" "$CTL/mode" >/dev/null
  as ann op server.create "{\"name\":\"bad-$key\"}" >/dev/null
  r=$(as ann op server.update "{\"id\":\"bad-$key\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}")
  is "$(field "$r" o.url)" "$URL" "$key: the configuration is saved"
  is "$(field "$r" o.oauth.discovery.status)" failed "$key: discovery failed"
  is "$(field "$r" o.oauth.discovery.error.reason)" "$reason" "$key: the reason is $reason"
  like "$(field "$r" o.oauth.discovery.detail)" "$msg" "$key: the detail explains it"
  is "$(field "$r" o.oauth.token_url)" null "$key: no endpoint is taken from it"
  is "$(field "$r" o.capabilities_status)" awaiting_user "$key: capabilities are not in error"
  g=$(as ann op server.get "{\"id\":\"bad-$key\"}")
  is "$(field "$g" o.oauth.discovery.error.reason)" "$reason" "$key: server.get shows the reason"
  probe -d "{\"$key\":null}" "$CTL/mode" >/dev/null
  r=$(as ann op server.refresh "{\"id\":\"bad-$key\"}")
  is "$(field "$r" o.oauth.discovery.status)" ok "$key: once fixed, server.refresh discovers it"
  is "$(field "$r" o.oauth.token_url)" "$ISS/token" "$key: with its endpoints"
}
bad prm_resource '"https://evil.example/mcp"' resource_mismatch "names resource 'https://evil.example/mcp', not this server"
bad issuer_mismatch true issuer_mismatch "names issuer 'https://127.0.0.1:1'"
bad no_pkce true no_pkce "does not advertise PKCE S256"
# a refresh that fails keeps the endpoints discovered before, and names the failure
probe -d '{"no_pkce":true}' "$CTL/mode" >/dev/null
r=$(as ann op server.refresh '{"id":"bad-no_pkce"}')
is "$(field "$r" o.error.code)" upstream_error "server.refresh that cannot discover fails"
like "$(field "$r" o.error.message)" "could not be discovered" "saying why"
g=$(as ann op server.get '{"id":"bad-no_pkce"}')
is "$(field "$g" o.oauth.discovery.status)" failed "server.get: the failure is recorded"
is "$(field "$g" o.oauth.token_url)" "$ISS/token" "and the endpoints discovered before stay"
like "$(field "$g" o.oauth.discovery.detail)" "discovered before stay in force" "as the detail says"
probe -d '{"no_pkce":null}' "$CTL/mode" >/dev/null
# oauth.discover stays the explicit re-run
d=$(as ann op oauth.discover '{"server":"bad-no_pkce"}')
is "$(field "$d" o.oauth.discovery.status)" ok "oauth.discover re-runs discovery"

# a URL blocked for OAuth metadata by the tenant's policy
mkdir -p "$work/pol/tenants"
cat > "$work/pol/tenants/acme.lua" <<'EOF'
return { url = function(req)
  if req.purpose == "oauth_metadata" then return { allow = false, reason = "no metadata fetches" } end
  return { allow = true }
end }
EOF
as ann op server.create '{"name":"blocked"}' >/dev/null
r=$(as ann --policies "$work/pol" op server.update "{\"id\":\"blocked\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}")
is "$(field "$r" o.oauth.discovery.status)" failed "a blocked metadata URL: discovery failed"
is "$(field "$r" o.oauth.discovery.error.code)" url_blocked "as url_blocked"
like "$(field "$r" o.oauth.discovery.error.reason)" "policy: no metadata fetches" "with the policy's reason"
is "$(field "$r" o.url)" "$URL" "and the URL is saved"

# --- changing the URL discovers again, and drops what belonged to the old one --------------------
r=$(as ann op server.update "{\"id\":\"fx\",\"url\":\"$ORIGIN/other\"}")
is "$(field "$r" o.oauth.discovery.status)" failed "a new URL whose metadata names another resource: failed"
is "$(field "$r" o.oauth.discovery.error.reason)" resource_mismatch "(resource_mismatch)"
is "$(field "$r" o.oauth.token_url)" null "the old URL's endpoints are dropped"
is "$(field "$r" o.oauth.issuer)" null "and its issuer"
is "$(field "$r" o.capabilities_status)" awaiting_user "the new URL's capabilities await a user"
is "$(field "$(as alice op server.get '{"id":"fx"}')" o.oauth.user_connected)" false \
  "alice's token, issued for the old URL (RFC 8707 resource), is dropped with it"
r=$(as ann op server.update "{\"id\":\"fx\",\"url\":\"$URL\"}")
is "$(field "$r" o.oauth.discovery.status)" ok "back to the real URL: discovered again"
is "$(field "$(as alice op server.get '{"id":"fx"}')" o.oauth.user_connected)" false \
  "and the old token does not come back: alice connects again"
# clearing the URL: nothing discovered for the old one stays in force
as ann op server.create '{"name":"cleared"}' >/dev/null
r=$(as ann op server.update "{\"id\":\"cleared\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}")
is "$(field "$r" o.oauth.issuer)" "$ISS" "a server to clear: discovered"
r=$(as ann op server.update '{"id":"cleared","url":null}')
is "$(field "$r" o.url)" null "the URL is cleared"
is "$(field "$r" o.oauth.issuer)" null "the old URL's issuer goes with it"
is "$(field "$r" o.oauth.token_url)" null "and its endpoints"
is "$(field "$r" o.oauth.discovery.status)" not_run "and its discovery record (not run for no URL)"
is "$(field "$(as ann op oauth.begin '{"server":"cleared"}')" o.error.code)" invalid_argument "oauth.begin without a URL: invalid_argument"

# --- a pre-registered client id is not moved to another authorization server silently ------------
fx2=$("$fx/oauth/start.sh") || { echo "Bail out! could not start the second OAuth fixture"; exit 1; }
pids="$pids $(j "$fx2" o.pid)"
ISS2=$(j "$fx2" o.issuer)
as ann op server.create '{"name":"pre"}' >/dev/null
r=$(as ann op server.update "{\"id\":\"pre\",\"url\":\"$URL\",\"auth_type\":\"oauth\",\"oauth\":{\"client_id\":\"mcplink-manual\"}}")
is "$(field "$r" o.oauth.registration_path)" preregistered "a client id in automatic mode: preregistered"
is "$(field "$r" o.oauth.issuer)" "$ISS" "discovered at the first authorization server"
probe -d "{\"prm_as\":\"$ISS2\"}" "$CTL/mode" >/dev/null
r=$(as ann op server.refresh '{"id":"pre"}')
like "$(field "$r" o.error.message)" "changed from $ISS to $ISS2" "the server moved to another authorization server: refresh says so"
g=$(as ann op server.get '{"id":"pre"}')
is "$(field "$g" o.oauth.discovery.error.reason)" issuer_changed "server.get: issuer_changed"
is "$(field "$g" o.oauth.issuer)" "$ISS" "the client id stays with the issuer it was entered for"
r=$(as ann op server.update '{"id":"pre","oauth":{"client_id":"client-at-the-new-server"}}')
is "$(field "$r" o.oauth.issuer)" "$ISS2" "entering the new server's client id records the new issuer"
is "$(field "$r" o.oauth.discovery.status)" ok "and discovery is ok"
probe -d '{"prm_as":null}' "$CTL/mode" >/dev/null

# --- a server without any OAuth metadata: the 2025-03-26 defaults, and server.get says so ---------
plain=$(sh "$fx/start.sh" server-v2) || { echo "Bail out! could not start server-v2"; exit 1; }
pids="$pids $(j "$plain" o.pid)"
PURL=$(j "$plain" o.url); PORIGIN=$(j "$plain" 'new URL(o.url).origin')
as ann op server.create '{"name":"nometa"}' >/dev/null
r=$(as ann op server.update "{\"id\":\"nometa\",\"url\":\"$PURL\",\"auth_type\":\"oauth\"}")
is "$(field "$r" o.oauth.discovery.status)" defaulted "no metadata anywhere: defaulted"
like "$(field "$r" o.oauth.discovery.detail)" "no OAuth metadata found" "the detail says no metadata was found"
is "$(field "$r" o.oauth.token_url)" "$PORIGIN/token" "the 2025-03-26 default token endpoint is assumed"

# --- manual configuration stays available ---------------------------------------------------------
as ann op server.create '{"name":"manual"}' >/dev/null
r=$(as ann op server.update "{\"id\":\"manual\",\"url\":\"$URL\",\"auth_type\":\"oauth\",\"oauth\":{\"registration_mode\":\"manual\",\"client_id\":\"mcplink-manual\",\"authorization_url\":\"$ISS/auth\",\"token_url\":\"$ISS/token\"}}")
is "$(field "$r" o.oauth.discovery.status)" manual "manual mode: nothing is discovered"
is "$(field "$r" o.oauth.registration_path)" preregistered "the admin's client id is used"
is "$(field "$r" o.oauth.token_url)" "$ISS/token" "with the admin's endpoints"
is "$(field "$r" o.capabilities_status)" awaiting_user "capabilities await a user here too"
done_tap
