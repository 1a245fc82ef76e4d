-- credentials: the Authorization an outbound MCP request carries for a server
-- and the calling user: nothing, the server's API key, or the user's OAuth
-- token (oauth.guard, which remembers it for the 401 retry).
local errors = require "errors"
local store = require "store"
local crypto = require "crypto"
local guard = require "oauth.guard"

local M = {}

-- for_server(ctx, server) -> headers, fingerprint
-- The fingerprint keys cached sessions by credential without holding it.
function M.for_server(ctx, s)
  local auth = s.auth_type or "none"
  if auth == "none" then return {}, "none" end
  local token
  if auth == "api_key" then
    token = store.reveal(ctx.actor, "servers", s.id, "api_key")
    if not token then
      errors.raise("unauthorized", "server '" .. s.name .. "' uses an API key but none is set")
    end
  elseif auth == "oauth" then
    token = guard.token(ctx, s)
  else
    errors.raise("internal", "unknown auth type " .. tostring(auth))
  end
  local fp = auth .. ":" .. crypto.sha256(token):sub(1, 16)
  return { Authorization = "Bearer " .. token }, fp
end

return M
