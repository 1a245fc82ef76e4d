-- errors: the engine's error values ({code, message, field}) and helpers.
-- Every op failure is one of the stable codes below; see README "Errors".
local M = {}

M.codes = {
  invalid_argument = true, not_found = true, forbidden = true, conflict = true,
  url_blocked = true, unauthorized = true, user_not_authenticated = true,
  upstream_error = true, timeout = true, too_large = true, key_unavailable = true,
  internal = true, unavailable = true,
}

local mt = { __tostring = function(e)
  return e.code .. ": " .. tostring(e.message) .. (e.field and (" (" .. e.field .. ")") or "")
end }

function M.new(code, message, field, extra)
  assert(M.codes[code], "unknown error code " .. tostring(code))
  local e = setmetatable({ code = code, message = message, field = field }, mt)
  if extra then for k, v in pairs(extra) do e[k] = v end end
  return e
end

-- raise(code, message [, field [, extra]]): never returns.
function M.raise(code, message, field, extra)
  error(M.new(code, message, field, extra), 0)
end

function M.is(v)
  return type(v) == "table" and type(v.code) == "string" and M.codes[v.code] ~= nil
end

return M
