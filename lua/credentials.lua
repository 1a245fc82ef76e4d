-- credentials: the headers an outbound MCP request carries for a server and
-- the calling user, as the server's auth type makes them (authtypes.lua).
local crypto = require "crypto"
local authtypes = require "authtypes"

local M = {}

-- for_server(ctx, server) -> headers, fingerprint
-- The fingerprint keys cached sessions by credential without holding it:
-- "<auth type>:<first 16 hex digits of the secret's SHA-256>", or the type's
-- name alone when it sends nothing (oauth.tokens.evict builds the same key).
function M.for_server(ctx, s)
  local t = authtypes.of(s)
  if not t.headers then return {}, t.name end
  local headers, secret = t.headers(ctx, s)
  return headers, t.name .. ":" .. crypto.sha256(secret):sub(1, 16)
end

return M
