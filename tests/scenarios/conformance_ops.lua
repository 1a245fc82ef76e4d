-- tests/scenarios/conformance_ops.lua: the conformance client's system ops without a network:
-- oauth.headless_authorize follows only engine-issued URLs; mcp.user_session acts as one user.
local c = mcplink.setup { tenant = "cf", users = { ann = "admin", alice = "member" } }
mcplink.must("settings.set", { allow_private_urls = true })
local s = c.ann:must("server.create", { name = "gh" })
c.ann:must("server.update", { id = s.id, url = "https://127.0.0.1:1/mcp", auth_type = "oauth",
  oauth = { registration_mode = "manual", client_id = "cid",
            authorization_url = "https://127.0.0.1:1/authorize", token_url = "https://127.0.0.1:1/token" } })
local b = c.alice:must("oauth.begin", { server = "gh", redirect_uri = "http://127.0.0.1:8765/callback" })

-- oauth.headless_authorize
local r, e = c.alice:op("oauth.headless_authorize", { authorization_url = b.authorization_url })
err_is(r, e, "forbidden", "a tenant user cannot use the headless user agent")
r, e = mcplink.op("oauth.headless_authorize", { authorization_url = "https://127.0.0.1:1/authorize" })
err_is(r, e, "invalid_argument", "a URL without a query is refused")
r, e = mcplink.op("oauth.headless_authorize", { authorization_url = "https://127.0.0.1:1/authorize?state=forged&client_id=cid" })
err_is(r, e, "invalid_argument", "a state that is no pending flow is refused")
like(e and e.message or "", "pending OAuth flow", "and the message says why")
local q = b.authorization_url:match("%?(.*)$")
r, e = mcplink.op("oauth.headless_authorize", { authorization_url = "https://127.0.0.1:1/elsewhere?" .. q })
err_is(r, e, "invalid_argument", "a real state at another endpoint is refused")
like(e and e.message or "", "recorded", "the endpoint must be the one recorded for the server")
r, e = mcplink.op("oauth.headless_authorize", { authorization_url = b.authorization_url })
err_is(r, e, "upstream_error", "an engine-issued URL is requested (closed port: upstream_error)")

-- mcp.user_session
r, e = c.ann:op("mcp.user_session", { tenant = "cf", user = "alice", server = "gh", steps = {} })
err_is(r, e, "forbidden", "a tenant admin cannot act as another user")
r, e = mcplink.op("mcp.user_session", { tenant = "cf", user = "nobody", server = "gh", steps = {} })
err_is(r, e, "unauthorized", "an unknown user is refused")
r, e = mcplink.op("mcp.user_session", { tenant = "cf", user = "alice", server = "gh", steps = { { step = "ping" } } })
err_is(r, e, "invalid_argument", "an unknown step is refused")
r = mcplink.must("mcp.user_session", { tenant = "cf", user = "alice", server = "gh",
  steps = { { step = "list", kind = "tools" }, { step = "discover" } }, stop_on_error = true })
is(#r.results, 1, "stop_on_error stops at the first failing step")
is(r.results[1].error and r.results[1].error.code, "user_not_authenticated",
  "a user without tokens is not authenticated (nothing is sent without a token)")

done_testing()
