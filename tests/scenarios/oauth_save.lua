-- tests/scenarios/oauth_save.lua: saving an OAuth server whose authorization server cannot be
-- discovered (a closed loopback port, no network): the configuration is saved, server.get says
-- why, capabilities await a user instead of being in error, Validate says "User not authenticated".
local c = mcplink.setup { tenant = "os", users = { ann = "admin", mo = "member" } }
mcplink.must("settings.set", { allow_private_urls = true })
local URL = "https://127.0.0.1:1/mcp"

local s = c.ann:must("server.create", { name = "gh" })
local r = c.ann:must("server.update", { id = s.id, url = URL, auth_type = "oauth" })
is(r.url, URL, "the URL is saved although nothing answers")
is(r.oauth.registration_mode, "auto", "automatic mode by default")
is(r.oauth.discovery.status, "failed", "discovery failed")
is(r.oauth.discovery.error.code, "upstream_error", "as upstream_error")
is(r.oauth.discovery.error.reason, "connect_failed", "because the connection failed")
like(r.oauth.discovery.detail, "could not be discovered", "the detail says so in words")
like(r.oauth.discovery.detail, "manual mode", "and names the way out")
ok(type(r.oauth.discovery.attempted_at) == "number", "with the time of the attempt")
is(r.oauth.discovery.discovered_at, json.null, "nothing was ever discovered")
is(r.oauth.token_url, json.null, "no endpoints")
is(r.oauth.registration_path, json.null, "no registration path yet")
is(r.capabilities_status, "awaiting_user", "capabilities await a user, not error")
is(r.discovery.status, "awaiting_user", "the save's discovery result says so")
is(r.discovery.error, nil, "without an error")

local g = c.mo:must("server.get", { id = "gh" })
is(g.oauth.discovery.error.reason, "connect_failed", "a member sees why in server.get")
is(g.capabilities_status, "awaiting_user", "and the capabilities status")
is(c.mo:must("server.capabilities", { id = "gh" }).status, "awaiting_user", "server.capabilities agrees")
local v = c.mo:must("server.validate", { id = "gh" })
is(v.status, "User not authenticated", "Validate for a member who has not connected")
is(c.ann:must("server.validate", { id = "gh" }).status, "User not authenticated", "and for the admin")

local rr, re = c.ann:op("server.refresh", { id = "gh" })
err_is(rr, re, "upstream_error", "server.refresh with nothing to refresh fails")
like(re and re.message or "", "could not be discovered", "saying why")
is(c.ann:must("server.get", { id = "gh" }).capabilities_status, "awaiting_user", "still awaiting a user")

-- manual mode: nothing to discover, the admin's client
local m = c.ann:must("server.update", { id = s.id, oauth = { registration_mode = "manual", client_id = "cid",
  authorization_url = "https://as.example.com/authorize", token_url = "https://as.example.com/token" } })
is(m.oauth.discovery.status, "manual", "manual mode: discovery is the admin's")
is(m.oauth.registration_path, "preregistered", "the admin's client id")
is(m.oauth.token_url, "https://as.example.com/token", "the admin's token endpoint")
is(m.capabilities_status, "awaiting_user", "capabilities still await a user")

-- leaving OAuth: an ordinary server again, whose failed discovery is an error
local n = c.ann:must("server.update", { id = s.id, auth_type = "none" })
is(n.oauth.discovery.status, "not_run", "no OAuth discovery for a server without OAuth")
is(n.capabilities_status, "error", "an unreachable server without OAuth is in error")
done_testing()
