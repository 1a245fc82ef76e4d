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

-- current() -> the settings {allow_private_urls=bool, allow_http=bool,
-- input_timeout_ms=int}, shared with later calls while they stay the same:
-- read it, never change it (the network layer reads it on every request)
local store_mod -- the store binding, once found (a state without one reads the defaults)
function M.current()
  local store = store_mod
  if not store then
    local ok, s = pcall(require, "store")
    if not (ok and type(s) == "table" and s.setting_get) then return M.DEFAULTS end
    store, store_mod = s, s
  end
  local version = store.settings_version and store.settings_version()
  if version ~= nil and version == cached_version then return cached end
  local out = copy(M.DEFAULTS)
  for k in pairs(M.DEFAULTS) do
    local v = store.setting_get(k)
    if v ~= nil then out[k] = v end
  end
  if version ~= nil then cached, cached_version = out, version end
  return out
end

-- get_all() -> a copy of current(), the caller's to change
function M.get_all() return copy(M.current()) end

function M.get(key) return M.current()[key] end

return M
