-- ops/space: spaces, each with a required security classification that
-- every tool used by its assistants must meet.
local registry = require "registry"
local store = require "store"
local model = require "model"

registry.op {
  name = "space.create", role = "admin", mutating = true,
  summary = "Create a space with its required classification",
  args = { name = { type = "string", required = true, min = 1, max = 200 },
           classification = { type = "string", required = true, max = 200 } },
  cli = { positional = { "name" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local c = model.ref(a, "classifications", args.classification, "classification")
    local sp = store.insert(a, "spaces", { name = args.name, classification_id = c.id })
    ctx.target = sp.id
    return model.space_view(a, sp)
  end,
}

registry.op {
  name = "space.list", role = "member",
  summary = "List the tenant's spaces",
  args = { limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    return model.list(ctx.actor, "spaces", args, nil, function(sp) return model.space_view(ctx.actor, sp) end)
  end,
}

registry.op {
  name = "space.update", role = "admin", mutating = true,
  summary = "Rename a space or change its required classification",
  args = { id = { type = "string", required = true, max = 200 },
           name = { type = "string", min = 1, max = 200 },
           classification = { type = "string", max = 200 } },
  cli = { words = "space set", positional = { "id" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local sp = model.ref(a, "spaces", args.id, "id")
    ctx.target = sp.id
    local fields = {}
    if args.name then fields.name = args.name end
    if args.classification then
      fields.classification_id = model.ref(a, "classifications", args.classification, "classification").id
    end
    if next(fields) then sp = store.update(a, "spaces", sp.id, fields) end
    return model.space_view(a, sp)
  end,
}
