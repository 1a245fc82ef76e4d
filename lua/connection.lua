-- connection: an MCP client for a stored server and the calling user, with
-- the server's credentials, timeout and limits applied, and the call runner.
local errors = require "errors"
local json = require "json"
local store = require "store"
local credentials = require "credentials"
local authtypes = require "authtypes"
-- the MCP client (and its protocol modules) loads when a server is first
-- reached, not with the ops that only read records (server list)
local client_mod
local function mcpclient()
  client_mod = client_mod or require "mcp.client"
  return client_mod
end

local M = {}

M.DEFAULT_TIMEOUT_MS = 60000
M.MAX_TIMEOUT_MS = 600000
M.MAX_RESULT_BYTES = 16 * 1024 * 1024

function M.timeout_of(s)
  local t = s.timeout_ms
  if t == nil or t == json.null then t = M.DEFAULT_TIMEOUT_MS end
  if t > M.MAX_TIMEOUT_MS then t = M.MAX_TIMEOUT_MS end
  return t
end

-- This Lua state's clients, one per server and credential (the cache key),
-- kept between calls while the server's URL, name and timeout and the
-- credential's headers stay the same (lua/credentials.lua hands out a new
-- headers table on any change; OAuth's per-user headers are made per call,
-- so their clients are too). mcp.client.renew makes a kept one ready for
-- the next call; making one was ~4% of a tool call.
local kept, nkept = {}, 0
local KEEP_MAX = 64

-- open(ctx, server_row [, {fresh=true}]) -> client, cache key
-- fresh: forget what is cached for the server (sessions, era) and probe the
-- protocol era again (discovery does, so a server that changed revision is
-- found out at the next refresh).
function M.open(ctx, s, opts)
  local fresh = opts and opts.fresh
  if s.url == nil or s.url == json.null then
    errors.raise("invalid_argument", "Server URL is not set: edit the MCP server and provide an HTTPS URL", "url",
      { status = "Server URL not set" })
  end
  local headers, fp = credentials.for_server(ctx, s)
  if fresh then M.forget(s.id) end
  local timeout = M.timeout_of(s)
  local era = (not fresh and s.protocol_era ~= json.null) and s.protocol_era or nil
  -- by server, then credential fingerprint: the key text is made with the client
  local by_fp = kept[s.id]
  local c = by_fp and by_fp[fp]
  if c and not fresh and c.headers == headers and c.url == s.url and c.timeout_ms == timeout and
      c.server.name == s.name then
    return mcpclient().renew(c, ctx, era), c.key
  end
  local key = s.id .. ":" .. fp
  c = mcpclient().new(ctx, {
    key = key,
    url = s.url,
    headers = headers,
    timeout_ms = timeout,
    max_bytes = M.MAX_RESULT_BYTES,
    era = era,
    server = { id = s.id, name = s.name, url = s.url },
  })
  if not (by_fp and by_fp[fp]) then
    if nkept >= KEEP_MAX then kept, nkept, by_fp = {}, 0, nil end
    nkept = nkept + 1
  end
  if not by_fp then by_fp = {}; kept[s.id] = by_fp end
  by_fp[fp] = c
  return c, key
end

-- forget(server_id): drop cached sessions and era after reconfiguration.
function M.forget(server_id)
  mcpclient().evict(server_id .. ":")
end

-- note_stale(ctx, s, key): a list_changed notification seen during a call
-- marks the stored capabilities stale until the next refresh.
function M.note_stale(ctx, s, key)
  if mcpclient().stale(key) then
    pcall(store.update, ctx.actor, "servers", s.id, { capabilities_status = "stale" })
  end
end

-- run(ctx, s, fn, ...) -> fn(client, ...)'s result: how the ops that use a
-- server (tool.call, resource.read, prompt.get) call it. Each attempt opens
-- its own connection inside the auth type's guard, so the retry after
-- OAuth's 401 refresh carries the new token; a list_changed seen during the
-- call marks the server stale. (fn and its arguments are passed, not a
-- closure, so a call without a guard makes none.)
local function attempt(ctx, s, fn, ...)
  local c, key = M.open(ctx, s)
  local result = fn(c, ...)
  M.note_stale(ctx, s, key)
  return result
end

function M.run(ctx, s, fn, ...)
  local t = authtypes.of(s)
  if t.guard then
    local args = table.pack(...)
    return t.guard(ctx, s, function() return attempt(ctx, s, fn, table.unpack(args, 1, args.n)) end)
  end
  return attempt(ctx, s, fn, ...)
end

return M
