-- ops/op: introspection of the operation registry.
local registry = require "registry"

registry.op {
  name = "op.list", role = "any",
  summary = "List every op with its role and argument schema",
  args = {},
  handler = function(ctx, args)
    return { ops = registry.list() }
  end,
}
