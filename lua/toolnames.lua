-- toolnames: names an assistant's model sees for MCP tools: unique across
-- the assistant's servers, stable, at most 64 characters, ^[A-Za-z0-9_-]+$.
local M = {}

M.MAX = 64

local function clean(s)
  local c = s:gsub("[^A-Za-z0-9_-]", "_")
  return c
end

-- FNV-1a 32-bit: a short, stable suffix (not a security function).
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = (h * 16777619) & 0xffffffff
  end
  return string.format("%08x", h)
end
M.hash = fnv

-- base(server_name, tool_name) -> the preferred name
function M.base(server_name, tool_name)
  local n = clean(server_name) .. "__" .. clean(tool_name)
  if #n > M.MAX then
    n = n:sub(1, M.MAX - 9) .. "_" .. fnv(server_name .. "\0" .. tool_name)
  end
  return n
end

-- assign(entries) -> names; entries[i] = {server={id,name}, cap={name}}.
-- Collisions (after cleaning) get a hash of the server id and tool name, so
-- the same tool keeps its name whatever else is attached.
function M.assign(entries)
  local count, names = {}, {}
  for i, e in ipairs(entries) do
    names[i] = M.base(e.server.name, e.cap.name)
    count[names[i]] = (count[names[i]] or 0) + 1
  end
  for i, e in ipairs(entries) do
    if count[names[i]] > 1 then
      names[i] = names[i]:sub(1, M.MAX - 9) .. "_" .. fnv(e.server.id .. "\0" .. e.cap.name)
    end
  end
  return names
end

return M
