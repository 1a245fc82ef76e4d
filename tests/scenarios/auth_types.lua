-- tests/scenarios/auth_types.lua: each auth type's rules as server.update, server.get and
-- server.validate show them (lua/authtypes.lua), without a network: a closed loopback port.
local c = mcplink.setup { tenant = "at", users = { ann = "admin", mo = "member" } }
mcplink.must("settings.set", { allow_private_urls = true })
local URL = "https://127.0.0.1:1/mcp"

-- server.update's arguments come from the table: auth_type's values in order, each type's settings
local upd
for _, op in ipairs(mcplink.must("op.list", {}).ops) do if op.name == "server.update" then upd = op end end
is_deeply(upd.args.auth_type.enum, { "none", "api_key", "oauth" }, "auth_type: the table's types, in order")
is(upd.args.api_key.secret, true, "api_key is the api_key type's secret argument")
is(upd.args.oauth.type, "object", "oauth is the oauth type's settings object")
ok(upd.args.oauth.fields.client_secret.secret, "with its client secret marked secret")
local r, e = c.ann:op("server.update", { id = "x", auth_type = "basic" })
err_is(r, e, "invalid_argument", "an auth type the table lacks is refused")
is(e and e.message, "'auth_type' must be one of: none, api_key, oauth", "naming the table's types")

-- the record shows every type's fields, whatever the server uses
local s = c.ann:must("server.create", { name = "plain" })
is(s.auth_type, "none", "a new server has no auth")
is(s.api_key_set, false, "the api_key type's flag")
is(s.oauth.client_id, json.null, "the oauth type's object, empty")
is(s.oauth.user_connected, false, "nobody is connected to a server without OAuth")
is(c.mo:must("server.validate", { id = "plain" }).status, "Server URL not set", "Validate without a URL")

-- none: a description alone discovers nothing; a URL does
local d = c.ann:must("server.update", { id = "plain", description = "first" })
is(d.discovery, nil, "a description changes no credential: nothing is discovered")
d = c.ann:must("server.update", { id = "plain", url = URL })
is(d.discovery.ok, false, "a new URL is discovered")
is(d.discovery.error.reason, "connect_failed", "and fails against a closed port")
d = c.ann:must("server.update", { id = "plain", timeout_ms = 5000 })
is(d.discovery, nil, "a timeout changes no credential")

-- api_key: needs a key, which only an api_key server takes; switching away drops it
r, e = c.ann:op("server.update", { id = "plain", auth_type = "api_key" })
err_is(r, e, "invalid_argument", "api_key without a key")
is(e and e.message, "auth_type 'api_key' needs an api_key", "says what is missing")
is(e and e.field, "api_key", "names the field")
r, e = c.ann:op("server.update", { id = "plain", api_key = "sk-1" })
err_is(r, e, "invalid_argument", "a key for a server without auth_type api_key")
is(e and e.message, "'api_key' needs auth_type 'api_key'", "says which auth type takes it")
local k = c.ann:must("server.update", { id = "plain", auth_type = "api_key", api_key = "sk-1" })
is(k.auth_type, "api_key", "auth_type api_key")
is(k.api_key_set, true, "the key is set")
is(k.api_key, nil, "and never shown")
ok(k.discovery ~= nil, "a new key is discovered with")
k = c.ann:must("server.update", { id = "plain", api_key = "sk-2" })
ok(k.discovery ~= nil, "so is a changed key")
local v = c.mo:must("server.validate", { id = "plain" })
is(v.status, "Failed", "Validate of an api_key server that cannot be reached")
is(v.reason, "connect_failed", "with the reason")
k = c.ann:must("server.update", { id = "plain", auth_type = "none" })
is(k.api_key_set, false, "switching to none drops the key")

-- oauth: settings only for oauth servers; automatic mode by default; manual mode needs its
-- client and endpoints (each named); switching away clears every OAuth setting
r, e = c.ann:op("server.update", { id = "plain", oauth = { scopes = { "a" } } })
err_is(r, e, "invalid_argument", "oauth settings for a server without OAuth")
is(e and e.field, "oauth", "names the oauth field")
-- argument checks name the nested field: an object's member, an array's item
for _, case in ipairs({ { { client_id = 5 }, "oauth.client_id" }, { { nope = 1 }, "oauth.nope" },
                        { { scopes = { "a", "b c" } }, "oauth.scopes[2]" } }) do
  r, e = c.ann:op("server.update", { id = "plain", oauth = case[1] })
  err_is(r, e, "invalid_argument", "bad oauth argument " .. case[2])
  is(e and e.field, case[2], "names " .. case[2])
end
local o = c.ann:must("server.update", { id = "plain", auth_type = "oauth" })
is(o.oauth.registration_mode, "auto", "automatic mode by default")
is(c.mo:must("server.validate", { id = "plain" }).status, "User not authenticated", "Validate before the user connects")
for _, missing in ipairs({ "client_id", "authorization_url", "token_url" }) do
  local manual = { registration_mode = "manual", client_id = "cid",
    authorization_url = "https://as.example.com/authorize", token_url = "https://as.example.com/token" }
  manual[missing] = nil
  r, e = c.ann:op("server.update", { id = "plain", oauth = manual })
  err_is(r, e, "invalid_argument", "manual mode without " .. missing)
  is(e and e.field, "oauth." .. missing, "names oauth." .. missing)
end
r, e = c.ann:op("server.update", { id = "plain", oauth = { token_url = "http://as.example.com/token" } })
err_is(r, e, "url_blocked", "an OAuth endpoint is judged like a server URL")
is(e and e.field, "oauth.token_url", "naming the endpoint")
o = c.ann:must("server.update", { id = "plain", oauth = { registration_mode = "manual", client_id = "cid",
  client_secret = "cs-1", scopes = { "read" },
  authorization_url = "https://as.example.com/authorize", token_url = "https://as.example.com/token" } })
is(o.oauth.client_secret_set, true, "the client secret is set")
is_deeply(o.oauth.scopes, { "read" }, "the scopes are kept")
o = c.ann:must("server.update", { id = "plain", auth_type = "api_key", api_key = "sk-3" })
is(o.oauth.client_id, json.null, "switching away clears the client id")
is(o.oauth.client_secret_set, false, "and the client secret")
is(o.oauth.token_url, json.null, "and the endpoints")
is(o.oauth.registration_mode, json.null, "and the mode")
is(#o.oauth.scopes, 0, "and the scopes")
is(o.api_key_set, true, "the api_key type takes over")
done_testing()
