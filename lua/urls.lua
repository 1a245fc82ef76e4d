-- urls: checks a URL an admin saves (server endpoint, OAuth endpoints) before
-- it is stored. The authoritative check runs again at connect time (net).
local errors = require "errors"
local settings = require "settings"

local M = {}

-- check_server_url(ctx, url, field) -> url | raises invalid_argument/url_blocked
function M.check_server_url(ctx, url, field)
  if url:find("[%z\1-\32\127]") then
    errors.raise("invalid_argument", "'" .. field .. "' contains spaces or control characters", field)
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then errors.raise("invalid_argument", "'" .. field .. "' is not an absolute URL", field) end
  scheme = scheme:lower()
  local authority = rest:match("^([^/?#]*)")
  if authority == "" then errors.raise("invalid_argument", "'" .. field .. "' has no host", field) end
  if authority:find("@", 1, true) then
    errors.raise("url_blocked", "'" .. field .. "' must not contain credentials (userinfo)", field, { reason = "userinfo" })
  end
  if url:find("\\", 1, true) then
    errors.raise("invalid_argument", "'" .. field .. "' contains a backslash", field)
  end
  if url:find("#", 1, true) then
    errors.raise("invalid_argument", "'" .. field .. "' must not have a fragment", field)
  end
  if scheme ~= "https" then
    if not (scheme == "http" and settings.get("allow_http")) then
      errors.raise("url_blocked", "'" .. field .. "' must use https" ..
        (scheme == "http" and " (plain http is not allowed by the system administrator)" or ""),
        field, { reason = "scheme" })
    end
  end
  -- The network layer, when present, judges the URL statically as well
  -- (policy, literal addresses) without resolving it.
  local ok, net = pcall(require, "net")
  if ok and type(net) == "table" and net.check_static then
    net.check_static(ctx, url, "mcp", field)
  end
  return url
end

return M
