-- authtypes: how a server authenticates the engine's requests, one entry per
-- auth type (none, api_key, oauth); the engine derives the rest from them.
--
-- Derived from the entries: server.update's arguments (auth_type's values
-- and each type's settings), how server.update applies them, the record
-- view (model.server_view), the credential step (credentials.lua), the call
-- guard (connection.run), Validate's statuses (validation.lua) and what
-- saving a server discovers (discovery.saved).
--
-- An entry has (all optional but name):
--   name       the auth_type value
--   args       server.update arguments of its own: {name = schema}
--   update(ctx, s, args, f, active) -> changed
--              writes its columns into f, the planned update of row s;
--              active: the server uses this type after the update. Raises
--              invalid_argument on bad input. changed: its credential or
--              settings changed (sessions are dropped, the server discovered
--              again). Every type's update runs, so a type clears its columns
--              when the server switches away.
--   view(actor, s, v)  adds its fields to the record view v (every record
--              shows every type's fields: api_key_set, oauth)
--   headers(ctx, s) -> headers, secret
--              request headers for the calling user; the secret's hash keys
--              cached MCP sessions (a new credential, a new session)
--   guard(ctx, s, fn) -> fn()  runs a call: what a 401 (or 403) does
--   statuses   error code -> Validate status for its own failures, beside
--              unauthorized/forbidden -> Unauthorized (validation.lua)
--   on_save(ctx, s, saved) -> outcome
--              what saving the server (and server.refresh) discovers of its
--              own; saved = {url_changed, args}; server.refresh reports a
--              failed outcome (ops/server.lua)
--   url_changed(ctx, s)
--              the server's URL changed (or was cleared): credentials bound
--              to the old URL go (OAuth: every user's tokens, RFC 8707)
--   connected(actor, s), awaiting
--              per-user credentials: capabilities are discovered with the
--              user's; until one is connected they await it (awaiting says so)
--
-- Adding a type (OAuth's client-credentials grant, an API key in a header the
-- server names) is one entry in ORDER, named as NAME says, plus:
--   - columns for what it stores, if it stores anything the existing columns
--     do not hold: a schema migration that adds them (core/store_schema.c;
--     secrets ST_SECRET). Its name needs none: the servers table's CHECK only
--     asks for NAME's shape (migration 5), this table decides which exist;
--   - tests: its update rules and record view in a scenario
--     (tests/scenarios/), its requests, 401 and Validate against a real
--     server (tests/cli/).
local errors = require "errors"
local store = require "store"
local json = require "json"
local urls = require "urls"
local oauthview = require "oauth.view"
-- the OAuth guard, flow and tokens load when an OAuth server is first called,
-- saved or connected, not with every record view (they reach the MCP client)
local function guard() return require "oauth.guard" end
local function flow() return require "oauth.flow" end
local function tokens() return require "oauth.tokens" end

local M = {}

local function is_set(v) return v ~= nil and v ~= json.null end

local function bearer(secret) return { Authorization = "Bearer " .. secret } end

local none = { name = "none" }

local api_key = {
  name = "api_key",
  shared = true, -- its headers are the same for every user (credentials.lua keeps them)
  args = { api_key = { type = "string", min = 1, max = 4096, nullable = true, secret = true } },
  -- the key is only meaningful for api_key servers; switching away drops it
  update = function(ctx, s, args, f, active)
    if args.api_key ~= nil then
      if is_set(args.api_key) and not active then
        errors.raise("invalid_argument", "'api_key' needs auth_type 'api_key'", "api_key")
      end
      f.api_key = args.api_key
    elseif not active and s.api_key_set then
      f.api_key = json.null
    end
    if active and not (is_set(f.api_key) or (f.api_key == nil and s.api_key_set)) then
      errors.raise("invalid_argument", "auth_type 'api_key' needs an api_key", "api_key")
    end
    return f.api_key ~= nil
  end,
  view = function(actor, s, v) v.api_key_set = s.api_key_set == true end,
  headers = function(ctx, s)
    local key = store.reveal(ctx.actor, "servers", s.id, "api_key")
    if not key then
      errors.raise("unauthorized", "server '" .. s.name .. "' uses an API key but none is set")
    end
    return bearer(key), key
  end,
}

local OAUTH_FIELDS = {
  client_id = { type = "string", min = 1, max = 500, nullable = true },
  client_secret = { type = "string", min = 1, max = 4096, nullable = true, secret = true },
  authorization_url = { type = "string", max = 2048, nullable = true },
  token_url = { type = "string", max = 2048, nullable = true },
  revocation_url = { type = "string", max = 2048, nullable = true },
  scopes = { type = "array", items = { type = "string", min = 1, max = 200, pattern = "^[\33-\126]+$",
             pattern_doc = "must be a scope token without spaces" }, max_items = 100, nullable = true },
  registration_mode = { type = "string", enum = { "auto", "manual" } },
}

-- the purpose each admin-entered endpoint is checked for (URL policies)
local OAUTH_URLS = { { "authorization_url", "oauth_metadata" }, { "token_url", "token" },
                     { "revocation_url", "revocation" } }

-- oauth_* columns an OAuth server keeps; cleared when it switches away
local OAUTH_COLUMNS = { "client_id", "client_secret", "authorization_url", "token_url",
                        "revocation_url", "scopes", "registration_mode", "issuer", "metadata" }

local oauth = {
  name = "oauth",
  args = { oauth = { type = "object", fields = OAUTH_FIELDS } },
  update = function(ctx, s, args, f, active)
    local o = args.oauth
    if o then
      if not active then errors.raise("invalid_argument", "'oauth' settings need auth_type 'oauth'", "oauth") end
      for _, u in ipairs(OAUTH_URLS) do
        local k, purpose = u[1], u[2]
        if is_set(o[k]) then
          f["oauth_" .. k] = urls.check_server_url(ctx, o[k], "oauth." .. k, purpose)
        elseif o[k] == json.null then f["oauth_" .. k] = json.null end
      end
      if o.client_id ~= nil then f.oauth_client_id = o.client_id end
      if o.client_secret ~= nil then f.oauth_client_secret = o.client_secret end
      if o.scopes ~= nil then f.oauth_scopes = is_set(o.scopes) and o.scopes or json.null end
      if o.registration_mode then f.oauth_registration_mode = o.registration_mode end
    elseif not active and s.auth_type == "oauth" then
      for _, k in ipairs(OAUTH_COLUMNS) do f["oauth_" .. k] = json.null end
    end
    if active then
      local mode = f.oauth_registration_mode or s.oauth_registration_mode
      if not is_set(mode) then f.oauth_registration_mode = "auto"; mode = "auto" end
      if mode == "manual" then
        for _, k in ipairs({ "client_id", "authorization_url", "token_url" }) do
          local v = f["oauth_" .. k]
          if v == nil then v = s["oauth_" .. k] end
          if not is_set(v) then
            errors.raise("invalid_argument", "manual OAuth configuration needs oauth." .. k, "oauth." .. k)
          end
        end
      end
    end
    return o ~= nil
  end,
  view = function(actor, s, v) v.oauth = oauthview.of(actor, s) end,
  -- the calling user's token; the guard remembers which one for the 401 retry
  headers = function(ctx, s)
    local token = guard().token(ctx, s)
    return bearer(token), token
  end,
  -- a 401 refreshes the user's token once and retries; a 403
  -- insufficient_scope marks the connection for step-up
  guard = function(...) return guard().run(...) end,
  statuses = { user_not_authenticated = "User not authenticated" },
  -- the authorization server is discovered at once, before any user connects
  -- (a client id entered with the save expects a new issuer)
  on_save = function(ctx, s, saved)
    local a = saved.args
    return flow().on_save(ctx, s, { url_changed = saved.url_changed,
      client_changed = a ~= nil and a.oauth ~= nil and a.oauth.client_id ~= nil })
  end,
  url_changed = function(ctx, s)
    tokens().drop_all(ctx, s)
    flow().url_cleared(ctx, s)
  end,
  connected = function(...) return tokens().connected(...) end,
  awaiting = "the server uses OAuth: its capabilities are discovered with a user's token, " ..
    "when the first user connects (oauth.begin) or an admin who has connected refreshes",
}

-- ORDER: auth_type's values as server.update lists them; updates run in it
local ORDER = { none, api_key, oauth }

-- NAME: what an auth_type value looks like; the servers table's CHECK refuses
-- anything else (core/store_schema.c, migration 5), so every name is checked
-- here, where a type is added, rather than at its first save
M.NAME = "^[a-z][a-z0-9_]*$"
M.NAME_MAX = 32

M.TYPES = {}
M.ORDER = ORDER
for _, t in ipairs(ORDER) do
  assert(type(t.name) == "string" and t.name:match(M.NAME) and #t.name <= M.NAME_MAX,
         "auth type name " .. tostring(t.name) .. " is not a lowercase name of at most 32 characters")
  assert(not M.TYPES[t.name], "duplicate auth type " .. t.name)
  M.TYPES[t.name] = t
end

-- of(s) -> the entry of a server row's auth type
function M.of(s)
  local t = M.TYPES[s.auth_type or "none"]
  if not t then errors.raise("internal", "unknown auth type " .. tostring(s.auth_type)) end
  return t
end

-- update_args() -> server.update's auth arguments: auth_type and each type's own
function M.update_args()
  local names, args = {}, {}
  for i, t in ipairs(ORDER) do
    names[i] = t.name
    for k, spec in pairs(t.args or {}) do
      assert(args[k] == nil, "auth types share the argument " .. k)
      args[k] = spec
    end
  end
  args.auth_type = { type = "string", enum = names }
  return args
end

-- update(ctx, s, args, f) -> changed: applies args' auth settings to f, the
-- planned update of row s, for every type (see update above)
function M.update(ctx, s, args, f)
  local auth = args.auth_type or s.auth_type or "none"
  if args.auth_type then f.auth_type = args.auth_type end
  local changed = f.auth_type ~= nil
  for _, t in ipairs(ORDER) do
    if t.update and t.update(ctx, s, args, f, t.name == auth) then changed = true end
  end
  return changed
end

-- view(actor, s, v): every type's fields of the record view
function M.view(actor, s, v)
  for _, t in ipairs(ORDER) do
    if t.view then t.view(actor, s, v) end
  end
  return v
end

return M
