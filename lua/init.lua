-- init: boots an engine Lua state: loads every op family and returns the
-- dispatch function the C core calls for each mcpl_op.
local core = require "core"
local registry = require "registry"

-- lua/ops/<family>.lua registers exactly the <family>.* ops, so an op is
-- found by its name (README "Layout").

local families = {}
for _, name in ipairs(core.modules()) do
  if name:match("^ops%.[%w_]+$") then families[#families + 1] = name end
end
table.sort(families)
for _, name in ipairs(families) do
  local before = {}
  for op in pairs(registry.ops) do before[op] = true end
  require(name)
  local family = name:match("^ops%.(.*)$")
  for op in pairs(registry.ops) do
    assert(before[op] or op:match("^[^.]+") == family,
      "op " .. op .. " is registered by lua/ops/" .. family .. ".lua, not by its family's file")
  end
end

return registry.dispatch
