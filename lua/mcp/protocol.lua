-- mcp.protocol: the MCP revisions mcplink speaks, era by era, how it names
-- itself to servers, and the server description discover() answers in every era.
local core = require "core"
local json = require "json"

local M = {}

M.MODERN = { "2026-07-28" }                               -- stateless, server/discover (mcp.modern)
M.LEGACY = { "2025-11-25", "2025-06-18", "2025-03-26" }   -- initialize, sessions (mcp.legacy); the first is offered
M.SSE = "2024-11-05"                                      -- HTTP+SSE (mcp.sse)
M.CLIENT_INFO = { name = "mcplink", version = core.version }

function M.member(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- pick_modern(supported) -> the first of M.MODERN the server lists | nil
function M.pick_modern(supported)
  if type(supported) ~= "table" then return nil end
  for _, v in ipairs(M.MODERN) do
    if M.member(supported, v) then return v end
  end
  return nil
end

-- info(era, version, capabilities, server_info, instructions) -> what
-- discover() answers, whatever the era; absent or mistyped fields normalised
function M.info(era, version, caps, server_info, instructions)
  return { era = era, protocol_version = version,
           server_info = type(server_info) == "table" and server_info or json.object(),
           capabilities = type(caps) == "table" and caps or json.object(),
           instructions = type(instructions) == "string" and instructions or nil }
end

-- memo(fn, max) -> fn as a function of one string argument whose results
-- are kept by that string (per Lua state; past max strings it starts over):
-- for what a call works out again every time from a few texts (a server's
-- era and its tools' header specs from the engine-wide cache, as decoded;
-- method names as JSON). The results are shared: read them, never change them.
function M.memo(fn, max)
  local kept, n = {}, 0
  return function(text)
    local v = kept[text]
    if v == nil then
      v = fn(text)
      if n >= max then kept, n = {}, 0 end
      kept[text], n = v, n + 1
    end
    return v
  end
end

return M
