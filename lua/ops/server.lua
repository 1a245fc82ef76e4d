-- ops/server: MCP server records (spec steps 1 and 2): create, configure the
-- URL and authentication (which discovers the server), show, list, delete,
-- refresh and show its capabilities, validate. Secrets go in, never out.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local urls = require "urls"
-- what saving, refreshing and validating a server run: loaded by those ops,
-- not by the ones that read records
local function discovery() return require "discovery" end
local function validation() return require "validation" end
local function capabilities() return require "capabilities" end
local connection = require "connection"
local authtypes = require "authtypes"

local function is_set(v) return v ~= nil and v ~= json.null end

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

-- plan_update(ctx, s, args) -> the column changes of a server.update, and
-- whether its credentials changed; raises on bad input. The auth settings
-- follow each auth type's rules (authtypes.lua).
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
  local credentials_changed = authtypes.update(ctx, s, args, f)
  return f, credentials_changed
end

-- server.update's arguments: the record's own, then auth_type and each auth
-- type's settings (api_key, oauth) as lua/authtypes.lua declares them
local UPDATE_ARGS = {
  id = { type = "string", required = true, max = 200 },
  name = { type = "string", min = 1, max = 200 },
  description = { type = "string", max = 4000, nullable = true },
  url = { type = "string", max = 2048, nullable = true },
  classification = { type = "string", max = 200, nullable = true },
  timeout_ms = { type = "integer", min = 100, max = connection.MAX_TIMEOUT_MS, nullable = true },
}
for k, spec in pairs(authtypes.update_args()) do UPDATE_ARGS[k] = spec end

registry.op {
  name = "server.update", role = "admin", mutating = true, module = "mcp",
  summary = "Configure a server: URL, authentication, description, classification, timeout",
  args = UPDATE_ARGS,
  cli = { words = "server set", positional = { "id" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local s = model.ref(a, "servers", args.id, "id")
    ctx.target = s.id
    local f, credentials_changed = plan_update(ctx, s, args)
    local saved = { url_changed = f.url ~= nil and f.url ~= s.url, args = args }
    local before = authtypes.of(s)
    if next(f) then s = store.update(a, "servers", s.id, f) end
    -- credentials bound to the old URL go with it (OAuth tokens: RFC 8707)
    if saved.url_changed and before.url_changed then
      before.url_changed(ctx, s)
      s = store.get(a, "servers", s.id)
    end
    -- a new endpoint or credential: cached sessions and era no longer apply
    local reconfigured = f.url ~= nil or credentials_changed
    if reconfigured then connection.forget(s.id) end
    -- saving a URL, or new credentials or OAuth settings for one, discovers
    -- again (an OAuth server's authorization server at once, its capabilities
    -- with a user's token)
    if is_set(s.url) and reconfigured then
      local r = discovery().on_save(ctx, s, saved)
      local v = model.server_view(a, store.get(a, "servers", s.id))
      v.discovery = r
      return v
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
    local r, outcome = discovery().on_save(ctx, s, {})
    if not authtypes.of(s).on_save then
      if not r.ok then errors.raise(r.error.code, "refresh failed: " .. r.error.message, nil, { reason = r.error.reason }) end
      return r
    end
    -- the auth type discovered something of its own too (OAuth: the
    -- authorization server): the refresh fails only when it could refresh
    -- nothing, says why (server.get shows it as well), and carries the
    -- type's view
    if r.ok == false and r.error then errors.raise(r.error.code, "refresh failed: " .. r.error.message) end
    if not r.ok and outcome and outcome.status == "failed" then
      errors.raise(outcome.error.code, "refresh failed: the OAuth authorization server could not be discovered: " ..
        tostring(outcome.error.message), nil, { reason = outcome.error.reason })
    end
    r.oauth = model.server_view(ctx.actor, store.get(ctx.actor, "servers", s.id)).oauth
    return r
  end,
}

local function cap_view(c)
  return { name = c.name, definition = c.definition, status = c.status, approved_definition = c.approved_definition }
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
    for _, c in ipairs(capabilities().of_server(ctx.actor, s.id)) do
      local list = out[c.kind .. "s"]
      list[#list + 1] = cap_view(c)
      if c.status == "pending" then out.pending[#out.pending + 1] = c.name end
    end
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
    local r = validation().check(ctx, s)
    local out = validation().decide(ctx, r)
    out.server = s.id
    if r.era then out.era, out.protocol_version = r.era, r.protocol_version end
    return out
  end,
}
