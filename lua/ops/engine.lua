-- ops/engine: facts about the running engine.
local core = require "core"
local registry = require "registry"
local json = require "json"

-- the revisions mcplink speaks, newest first, from the one list the transports use
local function protocol_versions()
  local p = require "mcp.protocol"
  local out = {}
  for _, list in ipairs({ p.MODERN, p.LEGACY, { p.SSE } }) do
    for _, v in ipairs(list) do out[#out + 1] = v end
  end
  return out
end

registry.op {
  name = "engine.info", role = "any",
  summary = "Engine version, MCP protocol versions, storage path, policy directory and pool",
  args = {},
  handler = function(ctx, args)
    local lua_dir = core.option("lua_dir")
    local policies = core.option("policies")
    return {
      version = core.version,
      protocol_versions = json.array(protocol_versions()),
      storage = core.option("db") or json.null,
      policies = (policies and policies ~= "") and policies or "(built-in default)",
      lua = (lua_dir and lua_dir ~= "") and lua_dir or "(embedded)",
      pool_size = tonumber(core.option("pool_size") or "8"),
      -- Lua states built and in use (this call holds one): a state that
      -- stays busy with nothing running would be a call that never ended
      pool = core.pool(),
    }
  end,
}
