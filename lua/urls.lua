-- urls: checks a URL an admin saves (server endpoint, OAuth endpoints) before
-- it is stored: the network layer's own parser, policy and literal-address
-- rules, without a DNS lookup. The full check runs again at connect time.
local errors = require "errors"
-- the network layer, loaded by the ops that save a URL, not by every op that
-- reads a record (urls comes with the server and auth-type modules)
local function net() return require "net" end

local M = {}

-- check_server_url(ctx, url, field [, purpose]) -> url | raises
-- invalid_argument / url_blocked naming the field
function M.check_server_url(ctx, url, field, purpose)
  if url:find("#", 1, true) then
    errors.raise("invalid_argument", "'" .. field .. "' must not have a fragment", field)
  end
  net().check_static(ctx, url, purpose or "mcp", field)
  return url
end

return M
