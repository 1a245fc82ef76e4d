-- ops/user: users of a tenant with their role (admin or member). The system
-- actor creates users in any tenant; a tenant admin only in their own.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"

local SYS = { system = true }

-- The tenant an op works on: the actor's own, or (system only) the named one.
local function tenant_for(ctx, args)
  if ctx.actor.system then
    if not args.tenant then errors.raise("invalid_argument", "'tenant' is required for the system actor", "tenant") end
    local t = model.ref(SYS, "tenants", args.tenant, "tenant")
    ctx.audit_tenant_id = t.id
    return t.id
  end
  if args.tenant and args.tenant ~= ctx.actor.tenant and args.tenant ~= ctx.actor.tenant_id then
    errors.raise("not_found", "tenant '" .. args.tenant .. "' not found", "tenant")
  end
  return ctx.actor.tenant_id
end

registry.op {
  name = "user.create", role = "admin", system = true, mutating = true,
  summary = "Create a user in a tenant (role admin or member)",
  args = { name = model.required(model.SLUG), role = { type = "string", enum = { "admin", "member" }, default = "member" },
           tenant = { type = "string", max = 200 } },
  cli = { positional = { "name" } },
  handler = function(ctx, args)
    local tid = tenant_for(ctx, args)
    local u = store.insert(SYS, "users", { tenant_id = tid, name = args.name, role = args.role })
    ctx.target = u.id
    return model.user_view(u)
  end,
}

registry.op {
  name = "user.list", role = "admin", system = true,
  summary = "List the users of a tenant",
  args = { tenant = { type = "string", max = 200 }, limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    local tid = tenant_for(ctx, args)
    return model.list(SYS, "users", args, { tenant_id = tid }, model.user_view)
  end,
}
