-- ops/tenant: tenants, managed by the system actor (the platform's system
-- administrator). A tenant's records are invisible to every other tenant.
local registry = require "registry"
local store = require "store"
local model = require "model"
local json = require "json"

local SYS = { system = true }

-- Tenant settings the engine knows; the object is stored as given.
local SETTINGS = { type = "object", fields = {
  mcp_enabled = { type = "boolean" }, -- the MCP module (spec prerequisites); on unless false
} }

local function view(t)
  return { id = t.id, name = t.name, settings = t.settings or json.object(),
           created_at = t.created_at, updated_at = t.updated_at }
end

registry.op {
  name = "tenant.create", role = "system", mutating = true,
  summary = "Create a tenant",
  args = { name = model.required(model.SLUG), settings = SETTINGS },
  cli = { positional = { "name" } },
  handler = function(ctx, args)
    local t = store.insert(SYS, "tenants", { name = args.name, settings = args.settings or json.object() })
    ctx.target = t.id
    return view(t)
  end,
}

registry.op {
  name = "tenant.list", role = "system",
  summary = "List tenants",
  args = { limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    return model.list(SYS, "tenants", args, nil, view)
  end,
}

registry.op {
  name = "tenant.get", role = "system",
  summary = "Show a tenant by id or name",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { words = "tenant show", positional = { "id" } },
  handler = function(ctx, args)
    return view(model.ref(SYS, "tenants", args.id, "id"))
  end,
}

registry.op {
  name = "tenant.update", role = "system", mutating = true,
  summary = "Rename a tenant or change its settings",
  args = { id = { type = "string", required = true, max = 200 }, name = model.SLUG,
           settings = SETTINGS },
  cli = { words = "tenant set", positional = { "id" } },
  handler = function(ctx, args)
    local t = model.ref(SYS, "tenants", args.id, "id")
    ctx.target = t.id
    local fields = {}
    if args.name then fields.name = args.name end
    if args.settings then
      -- the given keys change; the others stay
      local merged = {}
      for k, v in pairs(type(t.settings) == "table" and t.settings or {}) do merged[k] = v end
      for k, v in pairs(args.settings) do merged[k] = v end
      fields.settings = json.object(merged)
    end
    if next(fields) == nil then return view(t) end
    return view(store.update(SYS, "tenants", t.id, fields))
  end,
}
