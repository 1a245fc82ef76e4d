-- settings: system settings with their defaults. Changed only by the system
-- actor (settings.set op); read by the network layer on every request.
local M = {}

M.DEFAULTS = { allow_private_urls = false, allow_http = false,
               -- how long a call may wait for its user's answers (a continuation)
               input_timeout_ms = 10 * 60 * 1000 }

-- The settings as decoded at a settings version (store.settings_version:
-- the counter every change bumps, read by each op with its actor from the
-- database, so a change made on any instance is seen by the next op).
-- Per Lua state, so nothing is shared between threads.
local cached, cached_version

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- get_all() -> {allow_private_urls=bool, allow_http=bool, input_timeout_ms=int}
function M.get_all()
  local ok, store = pcall(require, "store")
  if not (ok and type(store) == "table" and store.setting_get) then return copy(M.DEFAULTS) end
  local version = store.settings_version and store.settings_version()
  if version ~= nil and version == cached_version then return copy(cached) end
  local out = copy(M.DEFAULTS)
  for k in pairs(M.DEFAULTS) do
    local v = store.setting_get(k)
    if v ~= nil then out[k] = v end
  end
  if version ~= nil then cached, cached_version = copy(out), version end
  return out
end

function M.get(key) return M.get_all()[key] end

return M
