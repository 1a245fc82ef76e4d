-- ops/keys: the key ring that seals secrets at rest. Rotation adds a key and
-- re-encrypts every secret in one transaction; retired keys leave the ring.
local registry = require "registry"
local store = require "store"
local json = require "json"

registry.op {
  name = "keys.list", role = "system",
  summary = "List the keys of the key ring (ids only) with how many secrets each seals",
  args = {},
  handler = function(ctx, args)
    local items = json.array()
    for i, k in ipairs(store.keys_list()) do items[i] = k end
    return { items = items }
  end,
}

registry.op {
  name = "keys.rotate", role = "system", mutating = true,
  summary = "Add a new current key and re-encrypt every stored secret with it",
  args = {},
  handler = function(ctx, args)
    local r = store.keys_rotate()
    ctx.target = r.kid
    return { kid = r.kid, previous = r.previous or json.null, reencrypted = r.reencrypted }
  end,
}

registry.op {
  name = "keys.retire", role = "system", mutating = true,
  summary = "Remove an old key from the key ring (refused while any secret still uses it)",
  args = { kid = { type = "string", required = true, min = 1, max = 64 } },
  cli = { positional = { "kid" } },
  handler = function(ctx, args)
    ctx.target = args.kid
    return store.keys_retire(args.kid)
  end,
}
