-- init: boots an engine Lua state and returns the dispatch function the C
-- core calls for each mcpl_op.
local core = require "core"
local registry = require "registry"

-- lua/ops/<family>.lua registers exactly the <family>.* ops, so an op is
-- found by its name (README "Layout"), and its file is loaded when one of its
-- ops is first used (registry.load_family). Engine Lua read as text from
-- --lua-dir is loaded whole now, so a broken file fails the open, not a later
-- op; the built-in modules were compiled when mcplink was built.
local dir = core.option("lua_dir")
if dir and dir ~= "" then registry.load_all() end

return registry.dispatch
