-- ops/op: introspection of the operation registry.
local registry = require "registry"

registry.op {
  name = "op.list", role = "any",
  summary = "List every op with its role and argument schema",
  args = {
    -- the friendly command line's candidates for the words typed (`server`,
    -- or `server list` of `mcplink server list`): the ops one of whose
    -- commands agrees with them as far as both go
    command = { type = "string", max = 200 },
  },
  handler = function(ctx, args)
    return { ops = registry.list(args.command) }
  end,
}
