-- urls: checks a URL an admin saves (server endpoint, OAuth endpoints) before
-- it is stored: the network layer's own parser, policy and literal-address
-- rules, without a DNS lookup. The full check runs again at connect time.
local errors = require "errors"
local net = require "net"

local M = {}

-- check_server_url(ctx, url, field [, purpose]) -> url | raises
-- invalid_argument / url_blocked naming the field
function M.check_server_url(ctx, url, field, purpose)
  if url:find("#", 1, true) then
    errors.raise("invalid_argument", "'" .. field .. "' must not have a fragment", field)
  end
  net.check_static(ctx, url, purpose or "mcp", field)
  return url
end

return M
