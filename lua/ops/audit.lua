-- ops/audit: the audit trail of every mutating op (time, actor, op, target,
-- outcome, names of changed fields; never values of secrets).
local registry = require "registry"
local model = require "model"
local json = require "json"

local SYS = { system = true }

local function view(r)
  return { id = r.id, at = r.at, actor = r.actor, op = r.op, target = model.nullable(r.target),
           outcome = r.outcome, detail = r.detail or json.object(),
           tenant_id = model.nullable(r.tenant_id) }
end

registry.op {
  name = "audit.list", role = "admin", system = true,
  summary = "List audit records, newest last (admins: own tenant; system: all or one tenant)",
  args = { tenant = { type = "string", max = 200 }, limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    local where = {}
    if ctx.actor.system then
      if args.tenant then where.tenant_id = model.ref(SYS, "tenants", args.tenant, "tenant").id end
    else
      where.tenant_id = ctx.actor.tenant_id
    end
    return model.list(SYS, "audit", args, where, view)
  end,
}
