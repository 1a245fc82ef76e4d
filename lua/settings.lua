-- settings: system settings with their defaults. Changed only by the system
-- actor (settings.set op); read by the network layer on every request.
local M = {}

M.DEFAULTS = { allow_private_urls = false, allow_http = false,
               -- how long a call may wait for its user's answers (a continuation)
               input_timeout_ms = 10 * 60 * 1000 }

-- get_all() -> {allow_private_urls=bool, allow_http=bool, input_timeout_ms=int}
function M.get_all()
  local out = {}
  for k, v in pairs(M.DEFAULTS) do out[k] = v end
  local ok, store = pcall(require, "store")
  if ok and type(store) == "table" and store.setting_get then
    for k in pairs(M.DEFAULTS) do
      local v = store.setting_get(k)
      if v ~= nil then out[k] = v end
    end
  end
  return out
end

function M.get(key) return M.get_all()[key] end

return M
