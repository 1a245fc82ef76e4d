-- ops/tool: the Tools section (spec step 3): a tenant enables or disables an
-- MCP server as a tool; only enabled servers reach assistants.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"

local function set_enabled(ctx, args, on)
  local a = ctx.actor
  local s = model.ref(a, "servers", args.server, "server")
  ctx.target = s.id
  return store.tx(function()
    local e = store.find(a, "enablements", { server_id = s.id })
    if on and not e then
      if s.url == nil or s.url == json.null then
        errors.raise("invalid_argument", "server '" .. s.name .. "' has no URL yet: configure it first (server.update)", "server")
      end
      store.insert(a, "enablements", { server_id = s.id, enabled_by = a.user_id })
    elseif not on and e then
      store.delete(a, "enablements", e.id)
    end
    return { server = s.id, name = s.name, enabled = on }
  end)
end

registry.op {
  name = "tool.enable", role = "admin", mutating = true, module = "mcp",
  summary = "Enable an MCP server as a tool for the tenant",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args) return set_enabled(ctx, args, true) end,
}

registry.op {
  name = "tool.disable", role = "admin", mutating = true, module = "mcp",
  summary = "Disable an MCP server tool for the tenant (assistants stop using it)",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args) return set_enabled(ctx, args, false) end,
}

registry.op {
  name = "tool.list", role = "member", module = "mcp",
  summary = "The Tools section: the tenant's MCP servers with their enabled flag",
  args = { limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    return model.list(ctx.actor, "servers", args, nil, function(s)
      local v = model.server_view(ctx.actor, s)
      return { server = v.id, name = v.name, enabled = v.enabled, url_set = v.url_set,
               capabilities_status = v.capabilities_status, classification = v.classification }
    end)
  end,
}
