-- ops/op: introspection of the operation registry.
local registry = require "registry"

registry.op {
  name = "op.list", role = "any",
  summary = "List every op with its role and argument schema",
  args = {
    -- the friendly command line's candidates: the ops one of whose commands
    -- starts with this word (`server` of `mcplink server list`)
    command = { type = "string", max = 200 },
  },
  handler = function(ctx, args)
    return { ops = registry.list(args.command) }
  end,
}
