-- mcp_offline: the MCP client's checks that need no server: URL policy before
-- any connection, argument checks of mcp.session, errors carried per step.
local function step(url, s, opts)
  local args = { url = url, steps = { s }, timeout_ms = 2000 }
  for k, v in pairs(opts or {}) do args[k] = v end
  local r, e = mcplink.op("mcp.session", args)
  if not r then return nil, e end
  return r.results[1]
end

-- plain http is refused unless the system administrator allows it
local r = step("http://127.0.0.1:9/mcp", { step = "discover" })
is(r.error and r.error.code, "url_blocked", "plain http is url_blocked by default")
is(r.error and r.error.reason, "scheme", "the reason names the scheme")

-- loopback is private: refused until allow_private_urls, at connect time
r = step("https://127.0.0.1:9/mcp", { step = "discover" })
is(r.error and r.error.code, "url_blocked", "a loopback address is url_blocked")
r = step("https://[::1]:9/mcp", { step = "call_tool", name = "x" }, { era = "legacy" })
is(r.error and r.error.code, "url_blocked", "IPv6 loopback is url_blocked too")
is(r.era, "legacy", "a step's row names the client's era (here the hint)")
r = step("https://169.254.169.254/mcp", { step = "list", kind = "tools" }, { era = "modern" })
is(r.error and r.error.code, "url_blocked", "link-local metadata address is url_blocked")

-- with private URLs allowed, a closed port is a connection error (refused at
-- once: not a timeout)
mcplink.must("settings.set", { allow_private_urls = true })
r = step("https://127.0.0.1:9/mcp", { step = "discover" })
is(r.error and r.error.code, "upstream_error", "a closed port is upstream_error")
is(r.error and r.error.reason, "connect_failed", "the connection was refused")

-- userinfo in URLs is never accepted
r = step("https://user:pw@127.0.0.1:9/mcp", { step = "discover" })
is(r.error and r.error.code, "url_blocked", "userinfo in the URL is refused")

-- argument checks
local res, e = mcplink.op("mcp.session", { url = "https://127.0.0.1:9/mcp", steps = { { step = "bogus" } } })
err_is(res, e, "invalid_argument", "unknown step refused")
res = mcplink.op("mcp.session", { url = "https://127.0.0.1:9/mcp", steps = { { step = "list", kind = "widgets" } } })
is(res and res.results[1].error.code, "invalid_argument", "unknown list kind refused")
res, e = mcplink.op("mcp.session", { url = "https://127.0.0.1:9/mcp", era = "ancient", steps = {} })
err_is(res, e, "invalid_argument", "unknown era refused")

-- only the system administrator may use the protocol console
local env = mcplink.setup({ tenant = "acme", users = { ada = "admin" } })
res, e = env.ada:op("mcp.session", { url = "https://127.0.0.1:9/mcp", steps = {} })
err_is(res, e, "forbidden", "a tenant admin cannot use mcp.session")

-- stale/evict need no network
r = step("https://127.0.0.1:9/mcp", { step = "stale" })
is(r.result and r.result.stale, false, "nothing is stale before any notification")
r = step("https://127.0.0.1:9/mcp", { step = "evict" })
ok(r.result and not r.error, "evict without a session is harmless")

-- an op's error carries the reason beside the code, as mcp.session's rows do
env.ada:must("server.create", { name = "plain-http" })
res, e = env.ada:op("server.update", { id = "plain-http", url = "http://127.0.0.1:9/mcp" })
err_is(res, e, "url_blocked", "saving a plain http URL is url_blocked")
is(e and e.reason, "scheme", "and the op's error names its reason")

-- the settings a tenant's request runs under follow every change at once
-- (each Lua state keeps them decoded per settings version)
local function http_allowed()
  local c = env.ada:must("url.check", { url = "http://example.com/mcp", resolve = false })
  return c.allowed
end
is(http_allowed(), false, "plain http refused for a tenant's request")
is(http_allowed(), false, "and again (the settings as kept)")
mcplink.must("settings.set", { allow_http = true })
is(http_allowed(), true, "allowed by the very next request once the administrator allows it")
mcplink.must("settings.set", { allow_http = false })
is(http_allowed(), false, "and refused again at once when it is switched off")

done_testing()
