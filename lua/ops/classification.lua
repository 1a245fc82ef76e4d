-- ops/classification: a tenant's security classifications, ordered levels
-- with names. Higher level = more sensitive.
local registry = require "registry"
local store = require "store"
local model = require "model"
local json = require "json"

registry.op {
  name = "classification.set", role = "admin", mutating = true,
  summary = "Create or change a security classification (name and level)",
  args = { name = { type = "string", required = true, min = 1, max = 100 },
           level = { type = "integer", required = true, min = 0, max = 1000 },
           description = { type = "string", max = 1000, nullable = true } },
  cli = { positional = { "name", "level" } },
  handler = function(ctx, args)
    local a = ctx.actor
    return store.tx(function()
      local c = store.find(a, "classifications", { name = args.name })
      local fields = { name = args.name, level = args.level }
      if args.description ~= nil then fields.description = args.description end
      if c then c = store.update(a, "classifications", c.id, fields)
      else c = store.insert(a, "classifications", fields) end
      ctx.target = c.id
      return model.classification_view(c)
    end)
  end,
}

registry.op {
  name = "classification.list", role = "member",
  summary = "List the tenant's security classifications, lowest level first",
  args = {},
  handler = function(ctx, args)
    local items = json.array()
    local cursor
    repeat
      local page = store.list(ctx.actor, "classifications", { limit = 500, cursor = cursor })
      for _, c in ipairs(page.items) do items[#items + 1] = model.classification_view(c) end
      cursor = page.next_cursor
    until not cursor or cursor == json.null
    table.sort(items, function(x, y) return x.level < y.level end)
    return { items = items }
  end,
}
