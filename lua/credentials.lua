-- credentials: the headers an outbound MCP request carries for a server and
-- the calling user, as the server's auth type makes them (authtypes.lua).
local crypto = require "crypto"
local core = require "core"
local store = require "store"
local authtypes = require "authtypes"

local M = {}

-- The headers of an auth type marked shared (the same for every user of the
-- tenant: an API key) are kept per Lua state, by server, for at most
-- KEEP_MS and only under the change counters the op read with its actor:
-- a new key, any other change to the tenant's rows or the settings (on any
-- instance) and the end of KEEP_MS make the next call decrypt it again. A
-- call does not decrypt and hash the key every time; a revoked key is never
-- used after the change that revoked it is committed.
M.KEEP_MS = 30000
local KEEP_MAX = 256
local kept, nkept = {}, 0

local function made(ctx, s, t)
  local headers, secret = t.headers(ctx, s)
  return headers, t.name .. ":" .. crypto.sha256(secret):sub(1, 16)
end

-- for_server(ctx, server) -> headers, fingerprint
-- The fingerprint keys cached sessions by credential without holding it:
-- "<auth type>:<first 16 hex digits of the secret's SHA-256>", or the type's
-- name alone when it sends nothing (oauth.tokens.evict builds the same key).
-- The headers are shared: read them, never change them (mcp.client keeps
-- them, and the MCP requests it makes copy them before adding any).
local NO_HEADERS = {}

function M.for_server(ctx, s)
  local t = authtypes.of(s)
  if not t.headers then return NO_HEADERS, t.name end
  local v = t.shared and ctx.actor.tenant_id and store.cache_version(ctx.actor.tenant_id)
  if not v then return made(ctx, s, t) end
  local now, k = core.mono_ms(), kept[s.id]
  if k and k.v == v and now - k.at < M.KEEP_MS then return k.headers, k.fp end
  local headers, fp = made(ctx, s, t)
  if not k then
    if nkept >= KEEP_MAX then kept, nkept = {}, 0 end
    nkept = nkept + 1
  end
  kept[s.id] = { v = v, at = now, headers = headers, fp = fp }
  return headers, fp
end

-- forget(): drops every kept credential of this Lua state
function M.forget() kept, nkept = {}, 0 end

return M
