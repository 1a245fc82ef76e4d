-- init: boots an engine Lua state: loads every op family and returns the
-- dispatch function the C core calls for each mcpl_op.
local core = require "core"
local registry = require "registry"
require "auth"

local families = {}
for _, name in ipairs(core.modules()) do
  if name:match("^ops%.[%w_]+$") then families[#families + 1] = name end
end
table.sort(families)
for _, name in ipairs(families) do require(name) end

return registry.dispatch
