-- mcp.client: the MCP client the workflows use, for every protocol era:
-- modern 2026-07-28 (stateless), legacy Streamable HTTP, and 2024-11-05 SSE.
local mcp = require "mcp"
local json = require "json"
local core = require "core"
local errors = require "errors"
local log = require "log"
local net = require "net"
local jsonrpc = require "mcp.jsonrpc"
local transport = require "mcp.transport"
local headers = require "mcp.headers"

local M = {}

M.PROTOCOL = "2026-07-28"
M.MODERN_VERSIONS = { "2026-07-28" }
M.LEGACY_VERSIONS = { "2025-11-25", "2025-06-18", "2025-03-26" }
M.SSE_VERSION = "2024-11-05"
M.CLIENT_INFO = { name = "mcplink", version = core.version }
M.SESSION_IDLE_MS = 5 * 60 * 1000
M.MAX_PAGES, M.MAX_ITEMS, M.MAX_LIST_BYTES = 1000, 100000, 16 * 1024 * 1024
M.MAX_RESUMES = 5
M.RETRY_DEFAULT_MS, M.RETRY_MAX_MS = 1000, 10000
M.CANCEL_TIMEOUT_MS = 2000

local is_set = jsonrpc.is_set
local META_VERSION = "io.modelcontextprotocol/protocolVersion"
local META_INFO = "io.modelcontextprotocol/clientInfo"
local META_CAPS = "io.modelcontextprotocol/clientCapabilities"
local META_SERVER = "io.modelcontextprotocol/serverInfo"

local LIST = {
  tools = { method = "tools/list", field = "tools", cap = "tools" },
  resources = { method = "resources/list", field = "resources", cap = "resources" },
  resource_templates = { method = "resources/templates/list", field = "resourceTemplates", cap = "resources" },
  prompts = { method = "prompts/list", field = "prompts", cap = "prompts" },
}
local NAME_SOURCE = { ["tools/call"] = "name", ["prompts/get"] = "name", ["resources/read"] = "uri" }
local LIST_CHANGED = {
  ["notifications/tools/list_changed"] = true, ["notifications/resources/list_changed"] = true,
  ["notifications/prompts/list_changed"] = true,
}

local function member(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- Request ids: unique across the Lua states sharing a legacy session.
local id_base, id_n = math.random(1, 1 << 40), 0
local function next_id()
  id_n = id_n + 1
  return id_base + id_n
end

local Client = {}
Client.__index = Client

-- One call, one deadline: every exchange, session claim, retry and resumption
-- of a call shares it, so a call ends within its timeout however many
-- requests it takes. opts = {timeout_ms?, deadline?} -> deadline, timeout_ms
function Client:deadline(opts)
  local t = (opts and opts.timeout_ms) or self.timeout_ms
  return (opts and opts.deadline) or (core.mono_ms() + t), t
end

-- Milliseconds left before deadline (at least 1), or raises timeout.
local function left_ms(deadline, timeout)
  local l = math.floor(deadline - core.mono_ms())
  if l <= 0 then
    errors.raise("timeout", "the MCP server did not answer within " .. tostring(timeout) .. " ms", nil, { reason = "timeout" })
  end
  return l
end

-- new(ctx, opts) -> client; opts = {key, url, headers, timeout_ms, max_bytes,
-- era = "modern"|"legacy"|"sse" (a hint: skips probing), version (hint)}
function M.new(ctx, opts)
  if type(opts) ~= "table" or type(opts.url) ~= "string" or opts.url == "" then
    errors.raise("invalid_argument", "MCP client needs a url", "url")
  end
  if type(opts.key) ~= "string" or opts.key == "" then errors.raise("invalid_argument", "MCP client needs a cache key", "key") end
  local c = setmetatable({
    ctx = ctx, key = opts.key, url = opts.url, headers = copy(opts.headers),
    timeout_ms = opts.timeout_ms or 60000, max_bytes = opts.max_bytes or 16 * 1024 * 1024,
  }, Client)
  -- idle sessions of any server are ended now and then (DELETE from C)
  mcp.cache_sweep(M.SESSION_IDLE_MS, "sess:")
  local cached = mcp.cache_get("era:" .. c.key)
  if cached then
    local e = json.decode(cached)
    c.era, c.version = e.era, e.version
  elseif opts.era == "modern" or opts.era == "legacy" or opts.era == "sse" then
    c.era, c.version = opts.era, opts.version
  end
  return c
end

-- ---- errors ----------------------------------------------------------------

local function header_text(r, name)
  local v = r.headers and r.headers[name]
  return type(v) == "string" and v or nil
end

-- http_fail(r, what): raises for a response that is not a usable answer.
local function http_fail(r, what)
  local s = r.status
  local extra = { http_status = s, www_authenticate = header_text(r, "www-authenticate") }
  if s == 401 then
    errors.raise("unauthorized", (what or "request") .. ": the MCP server requires authorization (HTTP 401)", nil, extra)
  elseif s == 403 then
    errors.raise("forbidden", (what or "request") .. ": the MCP server refused access (HTTP 403)", nil, extra)
  end
  local e = not r.sse and jsonrpc.body_error(r.body)
  if e then
    extra.reason = "rpc_error"
    extra.rpc_error = { code = e.code, message = e.message, data = is_set(e.data) and e.data or nil }
    errors.raise("upstream_error", (what or "request") .. ": HTTP " .. s .. ", server error " .. e.code .. ": " ..
      tostring(e.message):sub(1, 300), nil, extra)
  end
  extra.reason = "http_status " .. s
  errors.raise("upstream_error", (what or "request") .. ": the MCP server answered HTTP " .. s, nil, extra)
end

-- ---- notifications and server requests -------------------------------------

function Client:mark_stale()
  mcp.cache_put("stale:" .. self.key, "1")
end

-- handler(send_response, progress_token, progress) -> on_message(msg)
function Client:handler(respond, token, progress)
  return function(m)
    local kind = jsonrpc.kind(m)
    if kind == "notification" then
      if LIST_CHANGED[m.method] then self:mark_stale()
      elseif m.method == "notifications/progress" and progress and type(m.params) == "table"
        and token ~= nil and m.params.progressToken == token then
        local ok, e = pcall(progress, m.params)
        if not ok then log.debug("mcp: progress callback failed:", tostring(e)) end
      end
    elseif kind == "request" and respond then
      -- ping is answered; everything else (sampling, elicitation, roots) is
      -- not offered by this client
      if m.method == "ping" then respond(jsonrpc.result(m.id, json.object()))
      else respond(jsonrpc.error_response(m.id, jsonrpc.METHOD_NOT_FOUND, "Method not found: " .. tostring(m.method))) end
    end
    return false
  end
end

-- ---- modern (2026-07-28) ----------------------------------------------------

function Client:modern_headers(method, params, version)
  local h = copy(self.headers)
  h["Content-Type"] = "application/json"
  h["Accept"] = "application/json, text/event-stream"
  h["MCP-Protocol-Version"] = version
  h["Mcp-Method"] = method
  local src = NAME_SOURCE[method]
  if src and type(params) == "table" and params[src] ~= nil then
    h["Mcp-Name"] = headers.encode(params[src])
  end
  if method == "tools/call" and type(params) == "table" then
    for k, v in pairs(headers.params(self:header_specs(params.name), params.arguments)) do h[k] = v end
  end
  return h
end

-- x-mcp-header specs of the tools this client listed (engine-wide cache)
function Client:header_specs(name)
  local v = mcp.cache_get("xhdr:" .. self.key)
  if not v then return {} end
  local all = json.decode(v)
  return all[name] or {}
end

local function pick_modern(supported)
  if type(supported) ~= "table" then return nil end
  for _, v in ipairs(M.MODERN_VERSIONS) do
    if member(supported, v) then return v end
  end
  return nil
end

-- modern_call(method, params, opts) -> result, r | raises
-- Retries once with a mutually supported version after
-- UnsupportedProtocolVersionError, and re-issues a request whose response
-- stream broke before the response arrived.
function Client:modern_call(method, params, opts)
  opts = opts or {}
  local deadline, timeout = self:deadline(opts)
  local version = self.version or M.PROTOCOL
  local corrected, reissued, relisted = false, false, false
  while true do
    local p = copy(params)
    local meta = copy(type(p._meta) == "table" and p._meta or nil)
    meta[META_VERSION] = version
    meta[META_INFO] = M.CLIENT_INFO
    meta[META_CAPS] = json.object()
    local id = next_id()
    local token
    if opts.progress then token = "p" .. id; meta.progressToken = token end
    p._meta = meta
    local r = transport.exchange(self, {
      method = "POST", headers = self:modern_headers(method, p, version),
      body = json.encode(jsonrpc.request(id, method, p)), id = id, deadline = deadline, timeout_ms = timeout,
      on_message = self:handler(nil, token, opts.progress),
    })
    local e = r.message and type(r.message.error) == "table" and r.message.error
    if not r.message and r.status >= 300 then e = jsonrpc.body_error(r.body) end
    if e and e.code == jsonrpc.UNSUPPORTED_VERSION and not corrected then
      local v = pick_modern(type(e.data) == "table" and e.data.supported)
      if v then
        corrected, version = true, v
        goto continue
      end
      if opts.probe then return nil, r, "legacy" end
    elseif e and e.code == jsonrpc.HEADER_MISMATCH and method == "tools/call" and not relisted then
      -- the tool's x-mcp-header parameters may have changed: relist, retry
      relisted = true
      local okl, le = pcall(self.list, self, "tools", { deadline = deadline, timeout_ms = timeout })
      if not okl and type(le) == "table" and le.reason == "cancelled" then error(le, 0) end
      goto continue
    end
    if r.message then
      if e then
        if opts.probe and not jsonrpc.MODERN_ERRORS[e.code] then return nil, r, "legacy" end
        jsonrpc.raise_rpc(e, r.status, method)
      end
      self.version = version
      local res = r.message.result
      if type(res) ~= "table" then errors.raise("upstream_error", method .. ": the result is not an object", nil, { reason = "invalid_result" }) end
      local rt = res.resultType
      if is_set(rt) and rt ~= "complete" then
        errors.raise("upstream_error", method .. ": the server needs input from the user (resultType '" .. tostring(rt) ..
          "'), which mcplink does not provide", nil, { reason = "input_required" })
      end
      return res, r
    end
    if r.status == 401 or r.status == 403 then http_fail(r, method) end
    if opts.probe and (r.status == 400 or r.status == 404 or r.status == 405) and not (e and jsonrpc.MODERN_ERRORS[e.code]) then
      return nil, r, "legacy"
    end
    if r.status >= 300 then http_fail(r, method) end
    if r.sse and not reissued then
      -- the response stream ended or broke before the response: once more
      reissued = true
      log.debug("mcp: response stream for", method, "ended early; re-issuing")
      goto continue
    end
    errors.raise("upstream_error", method .. ": the response stream ended without a response", nil,
      { reason = r.cut and "stream_broken" or "no_response" })
    ::continue::
  end
end

function Client:remember(era, version)
  self.era, self.version = era, version
  mcp.cache_put("era:" .. self.key, json.encode({ era = era, version = version }))
end

-- ---- legacy Streamable HTTP (2025-03-26 .. 2025-11-25) ---------------------

function Client:legacy_headers(s)
  local h = copy(self.headers)
  h["Content-Type"] = "application/json"
  h["Accept"] = "application/json, text/event-stream"
  if s and s.version then h["MCP-Protocol-Version"] = s.version end
  if s and s.id then h["Mcp-Session-Id"] = s.id end
  return h
end

-- post_message(s, msg [, url [, deadline]]): a notification or a response
-- to the server (202), within 10 s and the call's deadline
function Client:post_message(s, msg, url, deadline)
  local t = math.min(self.timeout_ms, 10000)
  if deadline then t = math.min(t, left_ms(deadline, self.timeout_ms)) end
  local r = transport.exchange(self, { method = "POST", url = url, headers = self:legacy_headers(s),
    body = json.encode(msg), timeout_ms = t })
  return r.status
end

-- initialize([deadline]) -> session {id?, version, capabilities, server_info,
-- instructions} | nil, r (the server does not speak Streamable HTTP: try HTTP+SSE)
function Client:initialize(deadline)
  local id = next_id()
  local r = transport.exchange(self, {
    method = "POST", headers = self:legacy_headers(nil), id = id, deadline = deadline,
    body = json.encode(jsonrpc.request(id, "initialize", {
      protocolVersion = M.LEGACY_VERSIONS[1], capabilities = json.object(), clientInfo = M.CLIENT_INFO })),
    on_message = self:handler(nil),
  })
  if not r.message then
    if r.status == 400 or r.status == 404 or r.status == 405 then
      local e = jsonrpc.body_error(r.body)
      if not (e and jsonrpc.MODERN_ERRORS[e.code]) then return nil, r end
    end
    if r.status >= 300 then http_fail(r, "initialize") end
    errors.raise("upstream_error", "initialize: no response from the MCP server", nil, { reason = "no_response" })
  end
  if type(r.message.error) == "table" then jsonrpc.raise_rpc(r.message.error, r.status, "initialize") end
  local res = r.message.result
  if type(res) ~= "table" then errors.raise("upstream_error", "initialize: the result is not an object", nil, { reason = "invalid_result" }) end
  local v = res.protocolVersion
  if not (member(M.LEGACY_VERSIONS, v) or v == M.SSE_VERSION) then
    errors.raise("upstream_error", "initialize: the server chose protocol version " .. tostring(v) ..
      ", which mcplink does not support", nil, { reason = "unsupported_version" })
  end
  local s = { id = header_text(r, "mcp-session-id"), version = v, capabilities = res.capabilities,
              server_info = res.serverInfo, instructions = res.instructions, guard = r.guard }
  local st = self:post_message(s, jsonrpc.notification("notifications/initialized"), nil, deadline)
  if st >= 400 and st ~= 405 then
    errors.raise("upstream_error", "notifications/initialized: the MCP server answered HTTP " .. st, nil, { http_status = st })
  end
  return s
end

-- session(force, end_old [, deadline]) -> s: the cached session for this
-- server and credential, created once even when several callers arrive
-- together (the others wait for it, within their deadline).
function Client:session(force, end_old, deadline)
  local key = "sess:" .. self.key
  if end_old then mcp.cache_evict(key) -- ended with DELETE
  elseif force then mcp.cache_del(key) end -- the server ended it: no DELETE
  local wait = deadline and math.max(0, math.floor(deadline - core.mono_ms())) or self.timeout_ms
  local v, claimed = mcp.cache_claim(key, wait)
  if v then return json.decode(v) end
  local ok, s, r = pcall(self.initialize, self, deadline)
  if not ok or not s then
    if claimed then mcp.cache_release(key) end
    if not ok then error(s, 0) end
    return nil, r
  end
  if claimed then
    local guard = s.guard
    s.guard = nil
    local close
    if s.id then close = { url = self.url, headers = self:legacy_headers(s), guard = guard } end
    mcp.cache_put(key, json.encode(s), close)
  end
  s.guard = nil
  return s
end

-- resume(s, r, id, on_message, deadline, timeout_ms) -> response message |
-- nil: GET with Last-Event-ID after the server's retry delay, while the
-- stream had ids; within the call's deadline.
function Client:resume(s, r, id, on_message, deadline, timeout_ms)
  for _ = 1, M.MAX_RESUMES do
    if not r.last_event_id or r.last_event_id == "" then return nil end
    local wait = r.retry_ms and r.retry_ms >= 0 and r.retry_ms or M.RETRY_DEFAULT_MS
    wait = math.min(wait, M.RETRY_MAX_MS)
    local left = deadline - core.mono_ms()
    if wait >= left then errors.raise("timeout", "the MCP server did not answer in time (stream resumption)", nil, { reason = "timeout" }) end
    local t_end = core.mono_ms() + wait
    while core.mono_ms() < t_end do core.sleep_ms(math.max(1, math.floor(t_end - core.mono_ms()))) end
    local h = self:legacy_headers(s)
    h["Content-Type"] = nil
    h["Accept"] = "text/event-stream"
    h["Last-Event-ID"] = r.last_event_id
    local last = r.last_event_id
    r = transport.exchange(self, { method = "GET", headers = h, id = id, on_message = on_message,
      deadline = deadline, timeout_ms = timeout_ms })
    if r.status == 404 or r.status == 405 then return nil end -- the server has no stream to resume
    if r.status >= 300 then http_fail(r, "resume") end
    if r.message then return r.message end
    if r.last_event_id == "" then r.last_event_id = last end
  end
  return nil
end

function Client:cancel_notice(s, id, reason)
  pcall(function()
    local saved = self.timeout_ms
    self.timeout_ms = M.CANCEL_TIMEOUT_MS
    pcall(self.post_message, self, s, jsonrpc.notification("notifications/cancelled", { requestId = id, reason = reason }))
    self.timeout_ms = saved
  end)
end

-- legacy_call(method, params, opts) -> result
function Client:legacy_call(method, params, opts)
  opts = opts or {}
  local deadline, timeout = self:deadline(opts)
  local s, r0 = self:session(false, false, deadline)
  if not s then return nil, r0 end
  for attempt = 1, 2 do
    local id = next_id()
    local p = copy(params)
    local token
    if opts.progress then
      token = "p" .. id
      local meta = copy(type(p._meta) == "table" and p._meta or nil)
      meta.progressToken = token
      p._meta = meta
    end
    local respond = function(msg) pcall(self.post_message, self, s, msg, nil, deadline) end
    local on_message = self:handler(respond, token, opts.progress)
    local ok, r = pcall(transport.exchange, self, { method = "POST", headers = self:legacy_headers(s),
      body = json.encode(jsonrpc.request(id, method, p)), id = id, on_message = on_message,
      deadline = deadline, timeout_ms = timeout })
    if not ok then
      if type(r) == "table" and r.code == "timeout" then self:cancel_notice(s, id, r.reason or "timeout") end
      error(r, 0)
    end
    if r.status == 404 and s.id and attempt == 1 then
      -- the session expired on the server: initialize once more and retry
      s = self:session(true, false, deadline)
      goto continue
    end
    do
      local msg = r.message
      if not msg and r.sse and is_set(r.last_event_id) and r.last_event_id ~= "" then
        local ok2, m2 = pcall(self.resume, self, s, r, id, on_message, deadline, timeout)
        if not ok2 then
          if type(m2) == "table" and m2.code == "timeout" then self:cancel_notice(s, id, m2.reason or "timeout") end
          error(m2, 0)
        end
        msg = m2
      end
      if msg then
        if type(msg.error) == "table" then jsonrpc.raise_rpc(msg.error, r.status, method) end
        if type(msg.result) ~= "table" then errors.raise("upstream_error", method .. ": the result is not an object", nil, { reason = "invalid_result" }) end
        return msg.result
      end
      if r.status >= 300 then http_fail(r, method) end
      errors.raise("upstream_error", method .. ": the response stream ended without a response", nil,
        { reason = r.cut and "stream_broken" or "no_response" })
    end
    ::continue::
  end
end

-- ---- 2024-11-05 HTTP+SSE ----------------------------------------------------

-- sse_call(method, params, opts) -> result, init
-- One SSE connection per operation: GET the stream, read the endpoint
-- event, initialize, then send the request; answers arrive on the stream.
function Client:sse_call(method, params, opts)
  opts = opts or {}
  local deadline, timeout = self:deadline(opts)
  local base = net.parse(self.url, "url")
  local endpoint, init, result, failure
  local init_id, req_id = next_id(), next_id()
  local s = { version = M.SSE_VERSION }
  local token
  if opts.progress then token = "p" .. req_id end
  local function post(msg)
    local st = self:post_message(s, msg, endpoint, deadline)
    if st >= 300 then errors.raise("upstream_error", "HTTP+SSE: the message endpoint answered HTTP " .. st, nil, { http_status = st }) end
  end
  local notes = self:handler(function(m) pcall(post, m) end, token, opts.progress)
  local function on_event(ev)
    if not endpoint then
      if ev.event ~= "endpoint" then return false end
      local u, _, msg = base:join(ev.data)
      if not u then failure = errors.new("upstream_error", "HTTP+SSE: bad endpoint: " .. tostring(msg)); return true end
      if not u:same_origin(base) then
        failure = errors.new("upstream_error", "HTTP+SSE: the endpoint is on another origin", nil, { reason = "endpoint_origin" })
        return true
      end
      endpoint = u:text()
      post(jsonrpc.request(init_id, "initialize", { protocolVersion = M.SSE_VERSION,
        capabilities = json.object(), clientInfo = M.CLIENT_INFO }))
      return false
    end
    if ev.event ~= "message" then return false end
    local list = jsonrpc.parse(ev.data)
    for _, m in ipairs(list) do
      if jsonrpc.kind(m) == "response" and jsonrpc.same_id(m.id, init_id) then
        if type(m.error) == "table" then failure = m.error; return true end
        init = m.result
        post(jsonrpc.notification("notifications/initialized"))
        if not method then return true end
        local p = copy(params)
        if token then local meta = copy(p._meta); meta.progressToken = token; p._meta = meta end
        post(jsonrpc.request(req_id, method, p))
      elseif jsonrpc.kind(m) == "response" and jsonrpc.same_id(m.id, req_id) then
        result = m
        return true
      else
        notes(m)
      end
    end
    return false
  end
  local h = copy(self.headers)
  h["Accept"] = "text/event-stream"
  -- transport.exchange wraps the callback; this one drives the protocol
  local r = transport.exchange(self, { method = "GET", headers = h, deadline = deadline, timeout_ms = timeout,
    on_event = on_event })
  if failure then
    if errors.is(failure) then error(failure, 0) end
    jsonrpc.raise_rpc(failure, r.status, method or "initialize")
  end
  if r.status >= 300 then http_fail(r, "HTTP+SSE stream") end
  if not endpoint then errors.raise("upstream_error", "HTTP+SSE: the server sent no endpoint event", nil, { reason = "no_endpoint" }) end
  if not init then errors.raise("upstream_error", "HTTP+SSE: no answer to initialize", nil, { reason = "no_response" }) end
  if method then
    if not result then errors.raise("upstream_error", method .. ": no response on the SSE stream", nil, { reason = "no_response" }) end
    if type(result.error) == "table" then jsonrpc.raise_rpc(result.error, r.status, method) end
    return result.result, init
  end
  return nil, init
end

-- ---- era detection and the public interface ----------------------------------

local function info_from_discover(res, version)
  local si = res.serverInfo
  if type(res._meta) == "table" and type(res._meta[META_SERVER]) == "table" then si = res._meta[META_SERVER] end
  return { era = "modern", protocol_version = version,
           server_info = type(si) == "table" and si or json.object(),
           capabilities = type(res.capabilities) == "table" and res.capabilities or json.object(),
           instructions = type(res.instructions) == "string" and res.instructions or nil,
           ttl_ms = math.type(res.ttlMs) == "integer" and res.ttlMs or nil,
           cache_scope = type(res.cacheScope) == "string" and res.cacheScope or nil }
end

local function info_from_init(era, s)
  return { era = era, protocol_version = s.version,
           server_info = type(s.server_info) == "table" and s.server_info or json.object(),
           capabilities = type(s.capabilities) == "table" and s.capabilities or json.object(),
           instructions = type(s.instructions) == "string" and s.instructions or nil }
end

-- A DiscoverResult is recognised by its supportedVersions list.
local function valid_discover(res)
  return type(res) == "table" and type(res.supportedVersions) == "table" and type(res.capabilities) == "table"
end

-- discover([opts]) -> {era, protocol_version, server_info, capabilities,
-- instructions}; opts = {deadline?, timeout_ms?}: probing eras shares it
function Client:discover(opts)
  local deadline, timeout = self:deadline(opts)
  mcp.cache_del("stale:" .. self.key)
  if self.era == nil or self.era == "modern" then
    local res, r, verdict = self:modern_call("server/discover", json.object(),
      { probe = self.era == nil, deadline = deadline, timeout_ms = timeout })
    if res and valid_discover(res) then
      local v = pick_modern(res.supportedVersions)
      if v then
        local version = (member(res.supportedVersions, self.version or "") and self.version) or v
        self:remember("modern", version)
        return info_from_discover(res, version)
      end
      verdict = "legacy"
    elseif res then
      if self.era == "modern" then
        errors.raise("upstream_error", "server/discover: the result is not a DiscoverResult", nil, { reason = "invalid_result" })
      end
      verdict = "legacy"
    end
    if verdict ~= "legacy" then
      errors.raise("upstream_error", "server/discover: unexpected reply (HTTP " .. tostring(r and r.status) .. ")")
    end
  end
  if self.era == nil or self.era == "legacy" then
    local s = self:session(true, true, deadline)
    if s then
      self:remember("legacy", s.version)
      return info_from_init("legacy", s)
    end
    if self.era == "legacy" then errors.raise("upstream_error", "initialize was refused by the MCP server") end
  end
  local _, init = self:sse_call(nil, nil, { deadline = deadline, timeout_ms = timeout })
  self:remember("sse", M.SSE_VERSION)
  return info_from_init("sse", { version = M.SSE_VERSION, capabilities = init.capabilities,
    server_info = init.serverInfo, instructions = init.instructions })
end

-- call(method, params, opts) -> result: routed to the server's era, within
-- one deadline (opts.timeout_ms, else the server's timeout)
function Client:call(method, params, opts)
  opts = copy(opts)
  opts.deadline, opts.timeout_ms = self:deadline(opts)
  if self.era == nil then self:discover(opts) end
  if self.era == "modern" then return (self:modern_call(method, params, opts)) end
  if self.era == "legacy" then
    local res, r = self:legacy_call(method, params, opts)
    if res then return res end
    http_fail(r, method)
  end
  return (self:sse_call(method, params, opts))
end

-- ping(): liveness. 2026-07-28 removed `ping`; server/discover stands in.
function Client:ping()
  local o = { timeout_ms = math.min(self.timeout_ms, 10000) }
  if self.era == nil then self:discover() end
  if self.era == "modern" then self:modern_call("server/discover", json.object(), o); return json.object() end
  return self:call("ping", json.object(), o)
end

-- list(kind [, opts]) -> items, meta {ttl_ms?, cache_scope?, pages}; each
-- page is a call of its own unless opts = {deadline, timeout_ms} bounds them all
function Client:list(kind, opts)
  local L = LIST[kind]
  if not L then errors.raise("invalid_argument", "unknown list kind '" .. tostring(kind) .. "'", "kind") end
  local items, seen, pages, bytes = json.array(), {}, 0, 0
  local meta = { pages = 0 }
  local cursor
  local specs = {}
  repeat
    pages = pages + 1
    if pages > M.MAX_PAGES then
      errors.raise("too_large", L.method .. ": more than " .. M.MAX_PAGES .. " pages", nil, { reason = "pages" })
    end
    local params = json.object()
    if cursor then params.cursor = cursor end
    local res = self:call(L.method, params, opts)
    local list = res[L.field]
    if not is_set(list) then list = {} end
    if type(list) ~= "table" then errors.raise("upstream_error", L.method .. ": '" .. L.field .. "' is not a list", nil, { reason = "invalid_result" }) end
    bytes = bytes + #json.encode(list)
    if bytes > M.MAX_LIST_BYTES then errors.raise("too_large", L.method .. ": the list exceeds " .. M.MAX_LIST_BYTES .. " bytes", nil, { reason = "bytes" }) end
    for _, item in ipairs(list) do
      if #items >= M.MAX_ITEMS then errors.raise("too_large", L.method .. ": more than " .. M.MAX_ITEMS .. " items", nil, { reason = "items" }) end
      local keep = true
      if kind == "tools" and type(item) == "table" and self.era == "modern" then
        local sp, why = headers.specs(item)
        if sp then specs[tostring(item.name)] = sp
        else
          keep = false
          log.warn("mcp: tool", tostring(item.name), "excluded:", why)
        end
      end
      if keep then items[#items + 1] = item end
    end
    if math.type(res.ttlMs) == "integer" then
      meta.ttl_ms = meta.ttl_ms and math.min(meta.ttl_ms, res.ttlMs) or res.ttlMs
    end
    if type(res.cacheScope) == "string" then
      if meta.cache_scope ~= "private" then meta.cache_scope = res.cacheScope end
    end
    cursor = res.nextCursor
    if is_set(cursor) then
      if type(cursor) ~= "string" then errors.raise("upstream_error", L.method .. ": nextCursor is not a string", nil, { reason = "invalid_cursor" }) end
      if seen[cursor] then errors.raise("upstream_error", L.method .. ": the server repeated a cursor", nil, { reason = "repeated_cursor" }) end
      seen[cursor] = true
    else
      cursor = nil
    end
  until not cursor
  meta.pages = pages
  if kind == "tools" and self.era == "modern" then mcp.cache_put("xhdr:" .. self.key, json.encode(json.object(specs))) end
  return items, meta
end

function Client:call_tool(name, arguments, opts)
  opts = opts or {}
  if type(opts.tool) == "table" then
    local sp = headers.specs(opts.tool)
    if sp then
      local all = json.decode(mcp.cache_get("xhdr:" .. self.key) or "{}")
      all[name] = sp
      mcp.cache_put("xhdr:" .. self.key, json.encode(all))
    end
  end
  local args = arguments
  if args == nil or (type(args) == "table" and next(args) == nil and not json.is_array(args)) then args = json.object() end
  return self:call("tools/call", { name = name, arguments = args },
    { timeout_ms = opts.timeout_ms, progress = opts.progress })
end

function Client:read_resource(uri)
  return self:call("resources/read", { uri = uri })
end

function Client:get_prompt(name, arguments)
  local p = { name = name }
  if arguments ~= nil and next(arguments) ~= nil then p.arguments = arguments end
  return self:call("prompts/get", p)
end

-- listen(opts) -> notifications seen: a modern subscriptions/listen stream
-- held for up to opts.duration_ms (list-changed notifications mark stale).
function Client:listen(opts)
  opts = opts or {}
  if self.era == nil then self:discover() end
  if self.era ~= "modern" then errors.raise("invalid_argument", "subscriptions/listen needs a 2026-07-28 server") end
  local seen = json.array()
  local id = next_id()
  local version = self.version or M.PROTOCOL
  local p = { notifications = opts.notifications or { toolsListChanged = true, resourcesListChanged = true, promptsListChanged = true },
    _meta = { [META_VERSION] = version, [META_INFO] = M.CLIENT_INFO, [META_CAPS] = json.object() } }
  local ok, e = pcall(transport.exchange, self, {
    method = "POST", headers = self:modern_headers("subscriptions/listen", p, version), id = id,
    body = json.encode(jsonrpc.request(id, "subscriptions/listen", p)), timeout_ms = opts.duration_ms or 5000,
    on_message = function(m)
      if jsonrpc.kind(m) == "notification" then
        seen[#seen + 1] = m.method
        if LIST_CHANGED[m.method] then self:mark_stale() end
      end
      return opts.until_first and LIST_CHANGED[m.method] or false
    end,
  })
  -- the listening window ending is the normal end; a cancelled call is not
  if not ok and not (type(e) == "table" and e.code == "timeout" and e.reason ~= "cancelled") then error(e, 0) end
  return seen
end

-- close(): ends a legacy session (DELETE) and forgets it
function Client:close()
  local v = mcp.cache_del("sess:" .. self.key)
  if not v or self.era ~= "legacy" then return end
  local s = json.decode(v)
  if not s.id then return end
  local h = self:legacy_headers(s)
  h["Content-Type"], h["Accept"] = nil, nil
  pcall(transport.exchange, self, { method = "DELETE", headers = h, timeout_ms = M.CANCEL_TIMEOUT_MS })
end

-- evict(prefix): forget era, sessions (ended with DELETE) and hints of a server
function M.evict(prefix)
  for _, ns in ipairs({ "era:", "sess:", "stale:", "xhdr:" }) do mcp.cache_evict(ns .. prefix) end
end

-- stale(key) -> true when a list_changed notification was seen since the
-- last discover() for this server and credential
function M.stale(key)
  return mcp.cache_get("stale:" .. key) ~= nil
end

M.Client = Client
return M
