-- mcp.client: the MCP client the workflows use: finds a server's protocol era once
-- and routes each call to that era's module (mcp.modern, mcp.legacy, mcp.sse).
local mcp = require "mcp"
local json = require "json"
local errors = require "errors"
local transport = require "mcp.transport"
local incoming = require "mcp.incoming"
local modern = require "mcp.modern"
local core = require "core"
-- the list pager and the eras before 2026-07-28 (initialize sessions, and
-- HTTP+SSE) load when a list or such a server is first reached (a one-shot
-- `mcplink call` to a stateless server needs none of them)
local function paging() return require "mcp.paging" end
local LAZY_ERAS = { legacy = "mcp.legacy", sse = "mcp.sse" }

local M = {}

-- Each era module offers call, discover and ping on a client.
local ERAS = setmetatable({ modern = modern }, { __index = function(t, era)
  if not LAZY_ERAS[era] then return nil end
  local m = require(LAZY_ERAS[era])
  rawset(t, era, m)
  return m
end })

-- Idle sessions of every server end now and then (mcp.legacy.sweep, which
-- asks the engine at most once per its SWEEP_ASK_MS). A Lua state asks from
-- SWEEP_FIRST_MS after its first client on: a session any state left idle
-- ends a moment later, and a one-shot command never loads mcp.legacy for it.
M.SWEEP_FIRST_MS = 1000
local first_client, sweeping
local function sweep()
  if sweeping then return ERAS.legacy.sweep() end
  local t = core.mono_ms()
  first_client = first_client or t
  if t - first_client < M.SWEEP_FIRST_MS then return end
  sweeping = true
  return ERAS.legacy.sweep()
end

local Client = {}
Client.__index = Client

-- the era cache's text ({era, version}) as decoded: a server's entry is
-- read on every call and changes only when it is found out again
local era_of = require("mcp.protocol").memo(json.decode, 64)

-- new(ctx, opts) -> client; opts = {key, url, headers (read, never changed), timeout_ms, max_bytes,
-- era = "modern"|"legacy"|"sse" (a hint: skips probing), version (hint),
-- server = {id, name, url} (how events and input requests name the server)}.
-- key names the server and credential in the engine-wide caches (the era,
-- sessions, stale marks, tool header specs).
function M.new(ctx, opts)
  if type(opts) ~= "table" or type(opts.url) ~= "string" or opts.url == "" then
    errors.raise("invalid_argument", "MCP client needs a url", "url")
  end
  if type(opts.key) ~= "string" or opts.key == "" then errors.raise("invalid_argument", "MCP client needs a cache key", "key") end
  -- opts.headers is kept, not copied: every reader copies it before adding
  -- to it (transport.post_headers), and a caller's (connection.open's, kept
  -- between calls by lua/credentials.lua) is never changed
  local c = setmetatable({
    ctx = ctx, key = opts.key, url = opts.url, headers = opts.headers or {},
    timeout_ms = opts.timeout_ms or 60000, max_bytes = opts.max_bytes or 16 * 1024 * 1024,
    server = opts.server,
  }, Client)
  return M.renew(c, ctx, opts.era, opts.version)
end

-- renew(c, ctx [, era [, version]]) -> c: a client made ready for a call,
-- new or kept from an earlier one (lua/connection.lua keeps one per server
-- and credential in a Lua state): the call's context, and the era read
-- again from the engine's cache (else the hint). A call sets nothing else on
-- a client: its session, stale marks and header specs live in the engine's
-- caches under c.key, read afresh by every call.
function M.renew(c, ctx, era, version)
  c.ctx, c.era, c.version = ctx, nil, nil
  sweep()
  local cached = mcp.cache_get("era:" .. c.key)
  if cached then
    local e = era_of(cached)
    c.era, c.version = e.era, e.version
  elseif ERAS[era] then
    c.era, c.version = era, version
  end
  return c
end

function Client:remember(info)
  self.era, self.version = info.era, info.protocol_version
  mcp.cache_put("era:" .. self.key, json.encode({ era = self.era, version = self.version }))
  return info
end

-- discover([opts]) -> {era, protocol_version, server_info, capabilities,
-- instructions, ttl_ms?, cache_scope?}; opts = {deadline?, timeout_ms?}:
-- probing eras shares it. An unknown era is found here: modern first, then
-- initialize, then HTTP+SSE (the last resort); a known era is asked alone,
-- except that a modern server listing no revision mcplink speaks still
-- falls to HTTP+SSE.
function Client:discover(opts)
  local deadline, timeout = transport.deadline(self, opts)
  local bound = { deadline = deadline, timeout_ms = timeout }
  incoming.clear_stale(self.key)
  local probing = self.era == nil
  if probing or self.era == "modern" then
    local info = modern.discover(self, bound, probing)
    if info then return self:remember(info) end
  end
  if probing or self.era == "legacy" then
    local info = ERAS.legacy.discover(self, bound)
    if info then return self:remember(info) end
    if not probing then errors.raise("upstream_error", "initialize was refused by the MCP server") end
  end
  return self:remember(ERAS.sse.discover(self, bound))
end

-- call(method, params, opts [, own]) -> result | mcp.input.suspend{...}:
-- routed to the server's era, within one deadline (opts.timeout_ms, else
-- the server's timeout); opts = {timeout_ms?, deadline?, progress?,
-- resumable?}. resumable: an elicitation the host does not answer now
-- suspends the call (the op hands out a continuation) instead of being
-- cancelled. own: opts was made for this call and is the callee's to
-- change, so it is not copied.
function Client:call(method, params, opts, own)
  local o = opts
  if not own then
    o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
  end
  o.deadline, o.timeout_ms = transport.deadline(self, o)
  if self.era == nil then self:discover(o) end
  return ERAS[self.era].call(self, method, params, o)
end

-- ping(): liveness, within 10 s at most
function Client:ping()
  local o = { timeout_ms = math.min(self.timeout_ms, 10000) }
  if self.era == nil then self:discover() end
  return ERAS[self.era].ping(self, o)
end

-- list(kind [, opts [, map]]) -> items, meta (mcp.paging)
function Client:list(kind, opts, map)
  return paging().list(self, kind, opts, map)
end

-- canonical(kind, opts, spec, fn) -> count, meta: the list's items as
-- canonical text (mcp.paging)
function Client:canonical(kind, opts, spec, fn)
  return paging().canonical(self, kind, opts, spec, fn)
end

-- call_tool(name, arguments [, opts]) -> result;
-- opts = {timeout_ms?, progress?, resumable?} (see call)
function Client:call_tool(name, arguments, opts)
  opts = opts or {}
  local args = arguments
  if args == nil or (type(args) == "table" and next(args) == nil and not json.is_array(args)) then args = json.object() end
  return self:call("tools/call", { name = name, arguments = args },
    { timeout_ms = opts.timeout_ms, progress = opts.progress, resumable = opts.resumable }, true)
end

function Client:read_resource(uri, opts)
  return self:call("resources/read", { uri = uri }, opts)
end

function Client:get_prompt(name, arguments, opts)
  local p = { name = name }
  if arguments ~= nil and next(arguments) ~= nil then p.arguments = arguments end
  return self:call("prompts/get", p, opts)
end

-- resume(state, answers [, opts]) -> result | mcp.input.suspend{...}: a
-- suspended call carries on with the host's answers (state: what the
-- suspension held, its era's own)
function Client:resume(state, answers, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.resumable = true
  return ERAS[state.era].resume(self, state, answers, o)
end

-- listen(opts) -> notifications seen (mcp.modern); a 2026-07-28 server only
function Client:listen(opts)
  opts = opts or {}
  if self.era == nil then self:discover() end
  if self.era ~= "modern" then errors.raise("invalid_argument", "subscriptions/listen needs a 2026-07-28 server") end
  return modern.listen(self, opts)
end

-- close(): forgets the client's session; only the legacy era has one to end
function Client:close()
  if self.era == "legacy" then return ERAS.legacy.close(self) end
  mcp.cache_del("sess:" .. self.key)
end

-- evict(prefix): forget the era, sessions (ended with DELETE), stale marks
-- and tool header specs of every key that starts with prefix
function M.evict(prefix)
  for _, ns in ipairs({ "era:", "sess:", "stale:", "xhdr:" }) do mcp.cache_evict(ns .. prefix) end
  mcp.park_drop("listen:" .. prefix) -- the sessions' kept GET streams
end

-- stale(key) -> true when a list_changed notification was seen since the
-- last discover() for this server and credential
function M.stale(key)
  return incoming.is_stale(key)
end

return M
