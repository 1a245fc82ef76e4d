-- ops/capabilities: Refresh capabilities, what a server offers, and the
-- approval of changed tool definitions (definition pinning).
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local discovery = require "discovery"

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

-- OAuth: the authorization server's metadata now, the capabilities when a
-- token is at hand. -> capabilities result, OAuth discovery outcome
local function oauth_saved(ctx, s, opts)
  local hook = registry.hooks.oauth_saved
  local od = hook and hook(ctx, s, opts) or nil
  s = store.get(ctx.actor, "servers", s.id)
  if has_token(ctx, s, opts.url_changed) then return discovery.refresh(ctx, s), od end
  return mark_awaiting(ctx, s), od
end

-- server_saved(ctx, s, opts) -> the server view with the discovery result.
-- opts (from server.update): url_changed, client_changed.
local function server_saved(ctx, s, opts)
  local r
  if s.auth_type == "oauth" then r = oauth_saved(ctx, s, opts or {})
  else r = discovery.refresh(ctx, s) end
  local v = model.server_view(ctx.actor, store.get(ctx.actor, "servers", s.id))
  v.discovery = r
  return v
end
-- saving a URL runs discovery (spec step 2)
registry.hooks.server_saved = server_saved

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

registry.op {
  name = "tool.approve", role = "admin", mutating = true, module = "mcp",
  summary = "Approve a tool's changed definition so calls to it are allowed again",
  args = { server = { type = "string", required = true, max = 200 },
           tool = { type = "string", required = true, max = 500 } },
  cli = { positional = { "server", "tool" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.server, "server")
    ctx.target = s.id
    local c = store.find(ctx.actor, "capabilities", { server_id = s.id, kind = "tool", name = args.tool })
    if not c then errors.raise("not_found", "tool '" .. args.tool .. "' not found on server '" .. s.name .. "'", "tool") end
    if c.status ~= "pending" then return { server = s.id, tool = c.name, status = c.status } end
    store.update(ctx.actor, "capabilities", c.id,
      { approved_definition = c.definition, approved_hash = c.hash, status = "approved" })
    return { server = s.id, tool = c.name, status = "approved" }
  end,
}
