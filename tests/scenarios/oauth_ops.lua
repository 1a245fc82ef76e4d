-- tests/scenarios/oauth_ops.lua: the OAuth ops without a network: manual-mode begin (PKCE, state,
-- resource), state ownership and single use, error callbacks, status, roles and argument checks.
local c = mcplink.setup { tenant = "oa", users = { ann = "admin", alice = "member", bob = "member" } }
local other = mcplink.setup { tenant = "ob", users = { olga = "admin" } }
-- the token endpoint is a closed loopback port: nothing leaves the machine
mcplink.must("settings.set", { allow_private_urls = true })
local s = c.ann:must("server.create", { name = "gh" })
c.ann:must("server.create", { name = "plain" })
local r, e = c.ann:op("server.update", { id = s.id, url = "https://127.0.0.1:1/mcp", auth_type = "oauth",
  oauth = { registration_mode = "manual", client_id = "cid", client_secret = "s3cret-value",
            authorization_url = "https://as.example.com/authorize", token_url = "https://127.0.0.1:1/token",
            scopes = { "read", "write" } } })
ok(r, "an admin configures manual OAuth") ; if not r then diag(tostring(e)) end

-- `mcplink test` runs the engine without oauth_redirect_uri: begin says so
local b, be = c.alice:op("oauth.begin", { server = "gh" })
err_is(b, be, "invalid_argument", "begin without a redirect URI is refused")
like(be and be.message or "", "oauth_redirect_uri", "and names the missing option")
b = c.alice:must("oauth.begin", { server = "gh", redirect_uri = "http://127.0.0.1:8765/callback" })
like(b.authorization_url, "^https://as%.example%.com/authorize%?", "authorization URL at the configured endpoint")
like(b.authorization_url, "code_challenge_method=S256", "PKCE S256")
like(b.authorization_url, "resource=https%%3A%%2F%%2F127%.0%.0%.1%%3A1%%2Fmcp", "RFC 8707 resource is the server URL")
like(b.authorization_url, "scope=read%%20write", "the configured scopes")
like(b.authorization_url, "client_id=cid", "the pre-registered client id")
is(b.client, "preregistered", "client kind")
ok(#b.state >= 40, "a long random state")
ok(b.expires_at > mcplink.now_ms() + 9 * 60000, "the state lives ten minutes")
ok(not b.authorization_url:find("s3cret", 1, true), "the client secret is not in the URL")

local st = c.alice:must("oauth.status", { server = "gh" })
is(st.connected, false, "alice is not connected yet")
is(c.alice:must("server.get", { id = "gh" }).oauth.user_connected, false, "server.get agrees")

local _, fe = c.bob:op("oauth.complete", { state = b.state, code = "x" })
like(fe and fe.message or "", "another user", "bob cannot complete alice's flow")
local _, oe = other.olga:op("oauth.complete", { state = b.state, code = "x" })
like(oe and oe.message or "", "unknown", "another tenant does not even see the state")
local _, de = c.alice:op("oauth.complete", { callback_url = "https://app.example.test/cb?state=" .. b.state .. "&error=access_denied&error_description=no" })
is(de and de.code, "unauthorized", "an error= callback is refused")
like(de and de.message or "", "access_denied", "with the server's error")
local _, re = c.alice:op("oauth.complete", { state = b.state, code = "x" })
like(re and re.message or "", "already used", "the state was single use")
local _, dup = c.alice:op("oauth.complete", { callback_url = "https://app.example.test/cb?state=a&state=b&code=x" })
like(dup and dup.message or "", "repeats", "a callback repeating a parameter is refused")

local b2 = c.alice:must("oauth.begin", { server = "gh", redirect_uri = "http://127.0.0.1:8765/callback" })
local nr, ne = c.alice:op("oauth.complete", { state = b2.state, code = "x" })
err_is(nr, ne, "upstream_error", "a token endpoint that cannot be reached fails the completion")
like(ne and ne.message or "", "127.0.0.1:1/token", "the error names the token endpoint")
is(c.alice:must("oauth.status", { server = "gh" }).connected, false, "and nothing is stored")

local _, pe = c.alice:op("oauth.begin", { server = "plain" })
like(pe and pe.message or "", "does not use OAuth", "begin on a non-OAuth server is refused")
local _, ue = c.alice:op("oauth.begin", { server = "gh", redirect_uri = "https://evil.example/cb" })
is(ue and ue.field, "redirect_uri", "only loopback redirect URIs may be passed")
local sr, se = mcplink.op("oauth.status", { server = "gh" })
err_is(sr, se, "forbidden", "the system actor has no OAuth connections")
like(se and se.message or "", "not in a tenant", "because it is not in a tenant")
local _, ae = c.alice:op("oauth.discover", { server = "gh" })
is(ae and ae.code, "forbidden", "discovery is an admin action")
local _, we = c.alice:op("oauth.refresh", { server = "gh" })
is(we and we.code, "user_not_authenticated", "refresh without a connection: user not authenticated")
local d = c.alice:must("oauth.disconnect", { server = "gh" })
is(d.disconnected, false, "disconnecting without tokens is harmless")
local g = c.ann:must("server.get", { id = "gh" })
is(g.oauth.client_secret_set, true, "the record shows client_secret_set")
ok(not json.encode(g):find("s3cret", 1, true), "and never the secret")
done_testing()
