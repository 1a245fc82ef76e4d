-- ops/server: MCP server records (spec steps 1 and 2): create, configure the
-- URL and authentication (which discovers the server), show, list, delete,
-- refresh and show its capabilities, validate. Secrets go in, never out.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local urls = require "urls"
local discovery = require "discovery"
local validation = require "validation"
local connection = require "connection"
local flow = require "oauth.flow"

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

-- An OAuth server's capabilities are discovered with a user's token. Until a
-- user has connected they await one, which is not an error.
local AWAITING = "awaiting_user"
local AWAITING_DETAIL = "the server uses OAuth: its capabilities are discovered with a user's token, " ..
  "when the first user connects (oauth.begin) or an admin who has connected refreshes"

-- Can this call discover s's capabilities with the caller's own token? Not
-- with a token issued for the server's previous URL.
local function has_token(ctx, s, url_changed)
  if url_changed or not ctx.actor.user_id then return false end
  return store.find(ctx.actor, "oauth_tokens", { server_id = s.id, user_id = ctx.actor.user_id }) ~= nil
end

-- Marks s as awaiting a user unless its capabilities came in already (or a
-- discovery with a user's token failed: that error stands).
local function mark_awaiting(ctx, s)
  local st = s.capabilities_status or "not_discovered"
  local legacy = st == "error" and is_set(s.discovery_error) and s.discovery_error.code == "user_not_authenticated"
  if st == "not_discovered" or st == AWAITING or legacy then
    s = store.update(ctx.actor, "servers", s.id, { capabilities_status = AWAITING, discovery_error = json.null })
  end
  return { ok = false, status = s.capabilities_status, detail = AWAITING_DETAIL }
end

-- OAuth: the authorization server's metadata now (oauth.flow), the
-- capabilities when a token is at hand. -> capabilities result, OAuth
-- discovery outcome
local function oauth_saved(ctx, s, opts)
  local od = flow.on_save(ctx, s, opts)
  s = store.get(ctx.actor, "servers", s.id)
  if has_token(ctx, s, opts.url_changed) then return discovery.refresh(ctx, s), od end
  return mark_awaiting(ctx, s), od
end

-- saved(ctx, s, opts) -> the server view with the discovery result.
-- opts (from server.update): url_changed, client_changed.
local function saved(ctx, s, opts)
  local r
  if s.auth_type == "oauth" then r = oauth_saved(ctx, s, opts or {})
  else r = discovery.refresh(ctx, s) end
  local v = model.server_view(ctx.actor, store.get(ctx.actor, "servers", s.id))
  v.discovery = r
  return v
end

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
    timeout_ms = { type = "integer", min = 100, max = connection.MAX_TIMEOUT_MS, nullable = true },
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
      connection.forget(s.id)
    end
    -- saving a URL, or new credentials or OAuth settings for one, discovers
    -- again (an OAuth server's authorization server at once, its capabilities
    -- with a user's token)
    if is_set(s.url) and (f.url ~= nil or f.auth_type ~= nil or f.api_key ~= nil or args.oauth) then
      return saved(ctx, s, opts)
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
    connection.forget(s.id)
    return { deleted = s.id }
  end,
}

registry.op {
  name = "server.refresh", role = "admin", mutating = true, module = "mcp",
  summary = "Refresh capabilities: re-discover tools, resources, templates and prompts",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    ctx.target = s.id
    if s.url == nil or s.url == json.null then
      errors.raise("invalid_argument", "Server URL is not set: edit the MCP server and provide a valid HTTPS URL", "id")
    end
    if s.auth_type == "oauth" then
      local r, od = oauth_saved(ctx, s, {})
      if r.ok == false and r.error then errors.raise(r.error.code, "refresh failed: " .. r.error.message) end
      if not r.ok and od and od.status == "failed" then
        -- nothing could be refreshed: say why (server.get shows it as well)
        errors.raise(od.error.code, "refresh failed: the OAuth authorization server could not be discovered: " ..
          tostring(od.error.message), nil, { reason = od.error.reason })
      end
      r.oauth = model.server_view(ctx.actor, store.get(ctx.actor, "servers", s.id)).oauth
      return r
    end
    local r = discovery.refresh(ctx, s)
    if not r.ok then errors.raise(r.error.code, "refresh failed: " .. r.error.message, nil, { reason = r.error.reason }) end
    return r
  end,
}

local function cap_view(c)
  local v = { name = c.name, definition = c.definition, status = c.status }
  if c.status == "pending" then v.approved_definition = c.approved_definition end
  return v
end

registry.op {
  name = "server.capabilities", role = "member", module = "mcp",
  summary = "The server's discovered tools, resources, resource templates and prompts",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    local out = { server = s.id, status = s.capabilities_status or "not_discovered",
                  discovered_at = model.nullable(s.discovered_at),
                  error = model.nullable(s.discovery_error),
                  tools = json.array(), resources = json.array(),
                  resource_templates = json.array(), prompts = json.array(), pending = json.array() }
    local cursor
    repeat
      local page = store.list(ctx.actor, "capabilities", { where = { server_id = s.id }, limit = 500, cursor = cursor })
      for _, c in ipairs(page.items) do
        local list = out[c.kind .. "s"]
        list[#list + 1] = cap_view(c)
        if c.status == "pending" then out.pending[#out.pending + 1] = c.name end
      end
      cursor = page.next_cursor
    until cursor == nil or cursor == json.null
    for _, k in ipairs({ "tools", "resources", "resource_templates", "prompts" }) do
      table.sort(out[k], function(x, y) return x.name < y.name end)
    end
    return out
  end,
}

-- The Validate action: can the engine reach the server and authenticate, as
-- the calling user? Statuses are the spec's.
registry.op {
  name = "server.validate", role = "member", module = "mcp",
  summary = "Validate a server: OK, Unauthorized, User not authenticated, Server URL not set, Failed",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    local r = { auth_type = s.auth_type or "none" }
    if s.url == nil or s.url == json.null then
      r.ok, r.code, r.message = false, "url_not_set", nil
    else
      local ok, e = pcall(function()
        local c = connection.open(ctx, s)
        local info = c:discover()
        c:ping()
        r.era, r.protocol_version = info.era, info.protocol_version
      end)
      r.ok = ok
      if not ok then
        if type(e) ~= "table" then e = { code = "internal", message = tostring(e) } end
        r.code = e.code
        r.message = e.code ~= "internal" and e.message or "internal error (see log)"
        r.reason = e.code ~= "internal" and type(e.reason) == "string" and e.reason or nil
        r.http_status = e.http_status
        r.www_authenticate = e.www_authenticate
        -- a server that answered at all (401 with a challenge, 403) is reachable
        r.reachable = e.http_status ~= nil
      else
        r.reachable = true
      end
    end
    local out = validation.decide(ctx, r)
    out.server = s.id
    if r.era then out.era, out.protocol_version = r.era, r.protocol_version end
    return out
  end,
}
