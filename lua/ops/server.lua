-- ops/server: MCP server records (spec steps 1 and 2): create, configure the
-- URL and authentication, show, list, delete. Secrets go in, never out.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local urls = require "urls"

local MAX_TIMEOUT_MS = 600000

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

registry.op {
  name = "server.create", role = "admin", mutating = true, module = "mcp",
  summary = "Create an MCP server record (no URL yet)",
  args = { name = { type = "string", required = true, min = 1, max = 200 },
           description = { type = "string", max = 4000 } },
  handler = function(ctx, args)
    local a = ctx.actor
    local s = store.insert(a, "servers", {
      name = args.name, description = args.description,
      description_source = args.description and "admin" or json.null,
      auth_type = "none", capabilities_status = "not_discovered", created_by = a.user_id,
    })
    ctx.target = s.id
    return model.server_view(a, s)
  end,
}

local function is_set(v) return v ~= nil and v ~= json.null end

-- Works out the column changes of a server.update; raises on bad input.
local function plan_update(ctx, s, args)
  local a = ctx.actor
  local f = {}
  if args.name then f.name = args.name end
  if args.description ~= nil then
    f.description = args.description
    f.description_source = is_set(args.description) and "admin" or json.null
  end
  if args.url ~= nil then
    if is_set(args.url) then
      f.url = urls.check_server_url(ctx, args.url, "url")
    else
      f.url = json.null
    end
    if f.url ~= s.url then
      f.capabilities_status = "not_discovered"
      f.discovered_at = json.null
    end
  end
  if args.timeout_ms ~= nil then f.timeout_ms = args.timeout_ms end
  if args.classification ~= nil then
    f.classification_id = is_set(args.classification)
      and model.ref(a, "classifications", args.classification, "classification").id or json.null
  end
  local auth = args.auth_type or s.auth_type or "none"
  if args.auth_type then f.auth_type = args.auth_type end
  -- API key: only meaningful for api_key servers; switching away drops it
  if args.api_key ~= nil then
    if is_set(args.api_key) and auth ~= "api_key" then
      errors.raise("invalid_argument", "'api_key' needs auth_type 'api_key'", "api_key")
    end
    f.api_key = args.api_key
  elseif auth ~= "api_key" and s.api_key_set then
    f.api_key = json.null
  end
  if auth == "api_key" and not (is_set(f.api_key) or (f.api_key == nil and s.api_key_set)) then
    errors.raise("invalid_argument", "auth_type 'api_key' needs an api_key", "api_key")
  end
  -- OAuth settings: kept only for oauth servers
  local o = args.oauth
  if o then
    if auth ~= "oauth" then errors.raise("invalid_argument", "'oauth' settings need auth_type 'oauth'", "oauth") end
    for _, k in ipairs({ "authorization_url", "token_url", "revocation_url" }) do
      if is_set(o[k]) then
        local purpose = (k == "authorization_url") and "oauth_metadata" or (k == "token_url" and "token" or "revocation")
        f["oauth_" .. k] = urls.check_server_url(ctx, o[k], "oauth." .. k, purpose)
      elseif o[k] == json.null then f["oauth_" .. k] = json.null end
    end
    if o.client_id ~= nil then f.oauth_client_id = o.client_id end
    if o.client_secret ~= nil then f.oauth_client_secret = o.client_secret end
    if o.scopes ~= nil then f.oauth_scopes = is_set(o.scopes) and o.scopes or json.null end
    if o.registration_mode then f.oauth_registration_mode = o.registration_mode end
  elseif auth ~= "oauth" and (s.auth_type == "oauth") then
    for _, k in ipairs({ "client_id", "client_secret", "authorization_url", "token_url",
                         "revocation_url", "scopes", "registration_mode", "issuer", "metadata" }) do
      f["oauth_" .. k] = json.null
    end
  end
  if auth == "oauth" then
    local mode = f.oauth_registration_mode or s.oauth_registration_mode
    if not is_set(mode) then f.oauth_registration_mode = "auto"; mode = "auto" end
    if mode == "manual" then
      local function have(k)
        local v = f["oauth_" .. k]
        if v == nil then v = s["oauth_" .. k] end
        return is_set(v)
      end
      for _, k in ipairs({ "client_id", "authorization_url", "token_url" }) do
        if not have(k) then
          errors.raise("invalid_argument", "manual OAuth configuration needs oauth." .. k, "oauth." .. k)
        end
      end
    end
  end
  return f
end

registry.op {
  name = "server.update", role = "admin", mutating = true, module = "mcp",
  summary = "Configure a server: URL, authentication, description, classification, timeout",
  args = {
    id = { type = "string", required = true, max = 200 },
    name = { type = "string", min = 1, max = 200 },
    description = { type = "string", max = 4000, nullable = true },
    url = { type = "string", max = 2048, nullable = true },
    auth_type = { type = "string", enum = { "none", "api_key", "oauth" } },
    api_key = { type = "string", min = 1, max = 4096, nullable = true, secret = true },
    oauth = { type = "object", fields = OAUTH_FIELDS },
    classification = { type = "string", max = 200, nullable = true },
    timeout_ms = { type = "integer", min = 100, max = MAX_TIMEOUT_MS, nullable = true },
  },
  cli = { words = "server set", positional = { "id" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local s = model.ref(a, "servers", args.id, "id")
    ctx.target = s.id
    local f = plan_update(ctx, s, args)
    local opts = { url_changed = f.url ~= nil and f.url ~= s.url,
                   client_changed = args.oauth ~= nil and args.oauth.client_id ~= nil }
    if next(f) then s = store.update(a, "servers", s.id, f) end
    -- a new endpoint or credential: cached sessions and era no longer apply
    if f.url ~= nil or f.auth_type ~= nil or f.api_key ~= nil or args.oauth then
      require("connection").forget(s.id)
    end
    -- saving a URL, or new credentials or OAuth settings for one, discovers
    -- again (an OAuth server's authorization server at once, its capabilities
    -- with a user's token)
    local hooks = registry.hooks.server_saved
    if hooks and is_set(s.url) and (f.url ~= nil or f.auth_type ~= nil or f.api_key ~= nil or args.oauth) then
      return hooks(ctx, s, opts)
    end
    return model.server_view(a, s)
  end,
}

registry.op {
  name = "server.get", role = "member", module = "mcp",
  summary = "Show a server record (secrets only as *_set flags)",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { words = "server show", positional = { "id" } },
  handler = function(ctx, args)
    return model.server_view(ctx.actor, model.ref(ctx.actor, "servers", args.id, "id"))
  end,
}

registry.op {
  name = "server.list", role = "member", module = "mcp",
  summary = "List the tenant's MCP servers",
  args = { limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    return model.list(ctx.actor, "servers", args, nil, function(s) return model.server_view(ctx.actor, s) end)
  end,
}

registry.op {
  name = "server.delete", role = "admin", mutating = true, module = "mcp",
  summary = "Delete a server with its capabilities, enablement, attachments and tokens",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    ctx.target = s.id
    store.delete(ctx.actor, "servers", s.id)
    require("connection").forget(s.id)
    return { deleted = s.id }
  end,
}
