-- mcp.legacy: Streamable HTTP with initialize (2025-03-26 .. 2025-11-25): sessions
-- cached per server and credential, resumed streams, cancel notices, 404 re-initialize.
local mcp = require "mcp"
local json = require "json"
local core = require "core"
local errors = require "errors"
local jsonrpc = require "mcp.jsonrpc"
local transport = require "mcp.transport"
local call = require "call"
local incoming = require "mcp.incoming"
local input = require "mcp.input"
local protocol = require "mcp.protocol"
local log = require "log"

local M = {}

M.SESSION_IDLE_MS = 5 * 60 * 1000
M.MAX_RESUMES = 5
M.RETRY_DEFAULT_MS, M.RETRY_MAX_MS = 1000, 10000
M.CANCEL_TIMEOUT_MS = 2000
-- the session's GET stream is kept between calls this long at most (idle),
-- and lives this long at most (then the next call opens a new one)
M.LISTEN_KEEP_MS = math.min(M.SESSION_IDLE_MS, 60 * 1000)
M.LISTEN_LIFE_MS = 10 * 60 * 1000

local is_set = jsonrpc.is_set

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- session_headers(c, s) -> POST headers within session s = {id?, version}
-- (nil: before initialize)
local function session_headers(c, s)
  local h = transport.post_headers(c)
  if s and s.version then h["MCP-Protocol-Version"] = s.version end
  if s and s.id then h["Mcp-Session-Id"] = s.id end
  return h
end

-- post(c, s, msg [, deadline]) -> HTTP status: a notification or a response
-- to the server within session s
local function post(c, s, msg, deadline)
  return transport.send(c, session_headers(c, s), msg, { deadline = deadline })
end

-- initialize(c [, deadline]) -> session {id?, version, capabilities,
-- server_info, instructions, guard} | nil, r (the server does not speak
-- Streamable HTTP: try HTTP+SSE)
local function initialize(c, deadline)
  local id = jsonrpc.next_id()
  local r = transport.exchange(c, {
    method = "POST", headers = session_headers(c, nil), id = id, deadline = deadline,
    -- the session serves every caller: elicitation is declared (each call
    -- answers it: its host now, a continuation, or cancel), sampling and
    -- roots only when the engine's default handler answers them
    body = json.encode(jsonrpc.request(id, "initialize", {
      protocolVersion = protocol.LEGACY[1], capabilities = input.capabilities(true, true),
      clientInfo = protocol.CLIENT_INFO })),
    on_message = incoming.handler(c, nil),
  })
  if not r.message then
    if r.status == 400 or r.status == 404 or r.status == 405 then
      local e = jsonrpc.body_error(r.body)
      if not (e and jsonrpc.MODERN_ERRORS[e.code]) then return nil, r end
    end
    if r.status >= 300 then transport.fail(r, "initialize") end
    errors.raise("upstream_error", "initialize: no response from the MCP server", nil, { reason = "no_response" })
  end
  if type(r.message.error) == "table" then jsonrpc.raise_rpc(r.message.error, r.status, "initialize") end
  local res = r.message.result
  if type(res) ~= "table" then errors.raise("upstream_error", "initialize: the result is not an object", nil, { reason = "invalid_result" }) end
  local v = res.protocolVersion
  if not (protocol.member(protocol.LEGACY, v) or v == protocol.SSE) then
    errors.raise("upstream_error", "initialize: the server chose protocol version " .. tostring(v) ..
      ", which mcplink does not support", nil, { reason = "unsupported_version" })
  end
  local s = { id = transport.header(r, "mcp-session-id"), version = v, capabilities = res.capabilities,
              server_info = res.serverInfo, instructions = res.instructions, guard = r.guard }
  local st = post(c, s, jsonrpc.notification("notifications/initialized"), deadline)
  if st >= 400 and st ~= 405 then
    errors.raise("upstream_error", "notifications/initialized: the MCP server answered HTTP " .. st, nil, { http_status = st })
  end
  return s
end

-- listen_key(c, id): where the session's GET stream is kept between calls
local function listen_key(c, id) return "listen:" .. c.key .. ":" .. id end

-- ended(c, v): the session cached as v (JSON) ended: its kept GET stream is closed
local function ended(c, v)
  local ok, s = pcall(json.decode, v or "")
  if ok and type(s) == "table" and type(s.id) == "string" then mcp.park_drop(listen_key(c, s.id)) end
end

-- session(c, force, end_old [, deadline]) -> s | nil, r: the cached session
-- for this server and credential, created once even when several callers
-- arrive together (the others wait for it, within their deadline).
-- force: a new one (the server ended the old: no DELETE); end_old: a new one,
-- the old ended with DELETE.
local function session(c, force, end_old, deadline)
  local key = "sess:" .. c.key
  if end_old then -- ended with DELETE
    for _, x in ipairs(mcp.cache_evict(key)) do ended(c, x.value) end
  elseif force then ended(c, mcp.cache_del(key)) end -- the server ended it: no DELETE
  local wait = deadline and math.max(0, math.floor(deadline - core.mono_ms())) or c.timeout_ms
  local v, claimed = mcp.cache_claim(key, wait)
  if v then return json.decode(v) end
  local ok, s, r = pcall(initialize, c, deadline)
  if not ok or not s then
    if claimed then mcp.cache_release(key) end
    if not ok then error(s, 0) end
    return nil, r
  end
  if claimed then
    local guard = s.guard
    s.guard = nil
    local close
    if s.id then close = { url = c.url, headers = session_headers(c, s), guard = guard } end
    mcp.cache_put(key, json.encode(s), close)
  end
  s.guard = nil
  return s
end

-- resume(c, s, r, id, on_message, deadline, timeout_ms, lazy) -> response
-- message | nil: GET with Last-Event-ID after the server's retry delay, while
-- the stream had ids; within the call's deadline. lazy: as the call's.
local function resume(c, s, r, id, on_message, deadline, timeout_ms, lazy)
  for _ = 1, M.MAX_RESUMES do
    if not r.last_event_id or r.last_event_id == "" then return nil end
    local wait = r.retry_ms and r.retry_ms >= 0 and r.retry_ms or M.RETRY_DEFAULT_MS
    wait = math.min(wait, M.RETRY_MAX_MS)
    local left = deadline - core.mono_ms()
    if wait >= left then errors.raise("timeout", "the MCP server did not answer in time (stream resumption)", nil, { reason = "timeout" }) end
    local t_end = core.mono_ms() + wait
    while core.mono_ms() < t_end do core.sleep_ms(math.max(1, math.floor(t_end - core.mono_ms()))) end
    local h = session_headers(c, s)
    h["Content-Type"] = nil
    h["Accept"] = "text/event-stream"
    h["Last-Event-ID"] = r.last_event_id
    local last = r.last_event_id
    r = transport.exchange(c, { method = "GET", headers = h, id = id, on_message = on_message,
      deadline = deadline, timeout_ms = timeout_ms, lazy = lazy })
    if r.status == 404 or r.status == 405 then return nil end -- the server has no stream to resume
    if r.status >= 300 then transport.fail(r, "resume") end
    if r.message then return r.message end
    if r.last_event_id == "" then r.last_event_id = last end
  end
  return nil
end

-- cancel_notice(c, s, id, reason): tells the server a request is abandoned
-- (best effort, within CANCEL_TIMEOUT_MS)
local function cancel_notice(c, s, id, reason)
  pcall(function()
    transport.send(c, session_headers(c, s), jsonrpc.notification("notifications/cancelled", { requestId = id, reason = reason }),
      { timeout_ms = M.CANCEL_TIMEOUT_MS, uncancellable = true })
  end)
end

-- abandoned(err): a call that failed on the client's side while the server
-- may still work on it (timed out, cancelled, the host's answer refused):
-- the server is told (notifications/cancelled)
local function abandoned(e)
  return type(e) == "table" and (e.code == "timeout" or e.code == "invalid_argument" or e.code == "internal")
end

-- park_notice(c, s, id, guard) -> what a parked call's pump sends when
-- nobody carries the call on before its deadline: notifications/cancelled
local function park_notice(c, s, id, guard)
  return { url = c.url, headers = session_headers(c, s), guard = guard,
           body = json.encode(jsonrpc.notification("notifications/cancelled", { requestId = id, reason = "timeout" })) }
end

-- noget_key(c, s): what the session's GET stream was like, asked once per
-- session and not on every call: "405" (the server offers none) or "late"
-- (its headers come with its first event: opened without waiting for them)
local function noget_key(c, s) return "noget:" .. c.key .. ":" .. s.id end

-- listener(c, s, method, on_message, respond) -> the transport's listen spec
-- | nil: a call that may ask the user (input.RESUMABLE) in a session also
-- listens on the session's GET stream, where the server may send its
-- requests instead of the call's own stream (Streamable HTTP: "listening for
-- messages from the server"); the answers go back by POST like any other.
-- One call of the session listens at a time (listen.claim). A request there
-- names no call: it is put to this call's handler only while this call is
-- the session's only one in flight (listen.count); else it could be another
-- user's question (a session serves everyone with the same credential), and
-- it is refused (input.refuse) instead. Between calls the stream is kept
-- (transport: listen.park); a request that came while no call listened is
-- refused when the next call takes the stream back (listen.on_stale), as
-- nobody could be asked when it came.
local function listener(c, s, method, on_message, respond)
  if not s.id or not input.RESUMABLE[method] then return nil end
  local seen = mcp.cache_get(noget_key(c, s))
  if seen == "405" then return nil end
  local h = session_headers(c, s)
  h["Content-Type"] = nil
  h["Accept"] = "text/event-stream"
  local count = "calls:" .. c.key .. ":" .. s.id
  local function refuse(m)
    local how, a, b = input.refuse(m)
    if how == "result" then respond(jsonrpc.result(m.id, a)) else respond(jsonrpc.error_response(m.id, a, b)) end
  end
  local function session_message(m)
    if jsonrpc.kind(m) == "request" and input.METHODS[m.method] and (tonumber(mcp.cache_get(count)) or 0) > 1 then
      log.info("mcp: a question on the session's own stream while several calls of the session are in flight " ..
        "cannot be told apart: refused")
      refuse(m)
      return false
    end
    return on_message(m)
  end
  local function stale(m)
    if jsonrpc.kind(m) ~= "request" then return end -- notifications (and stray responses): nothing to do
    log.info("mcp: a request on the session's own stream while no call listened (" .. tostring(m.method) .. "): refused")
    refuse(m)
  end
  return { headers = h, claim = "listening:" .. c.key .. ":" .. s.id, count = count, on_message = session_message,
           park = listen_key(c, s.id), keep_ms = M.LISTEN_KEEP_MS, life_ms = M.LISTEN_LIFE_MS, on_stale = stale,
           nowait = seen == "late", refused = function(status)
    log.debug("mcp: the session's own stream (GET): " .. (status == 405 and "the server offers none (HTTP 405)" or
      "its headers did not come in time; later calls do not wait for them"))
    mcp.cache_put(noget_key(c, s), status == 405 and "405" or "late")
  end }
end

-- exchange(c, s, id, method, xreq, st) -> r | input.suspend{...}: one
-- exchange of a call (xreq as transport.exchange takes it), the server's
-- requests on its stream answered within the session. With xreq.pump, an
-- elicitation the host answers later parks the call: its stream stays open
-- on the pump while a continuation waits (held until the call's deadline;
-- the server is told if nobody answers). st = {deadline, timeout, token, opts}.
local function exchange(c, s, id, method, xreq, st)
  local hopts = { token = st.token, progress = st.opts.progress, park = xreq.pump }
  local respond = function(msg) pcall(post, c, s, msg, st.deadline) end
  xreq.on_message = incoming.handler(c, respond, hopts)
  local listen = listener(c, s, method, xreq.on_message, respond)
  xreq.listen = listen
  xreq.id, xreq.deadline, xreq.timeout_ms, xreq.lazy = id, st.deadline, st.timeout, st.opts.lazy
  if listen then mcp.cache_add(listen.count, 1) end
  local ok, r = pcall(transport.exchange, c, xreq)
  if listen then pcall(mcp.cache_add, listen.count, -1) end
  if not ok then
    if abandoned(r) then cancel_notice(c, s, id, r.reason or r.code) end
    error(r, 0)
  end
  if r.parked then
    local m, pump, guard = hopts.parked, r.parked, r.guard
    local desc = input.describe(tostring(m.id), m, c)
    return input.suspend({
      era = "legacy", method = method, requests = { desc }, id = id, server_request_id = m.id,
      session = { id = s.id, version = s.version }, deadline = st.deadline, timeout_ms = st.timeout,
      token = st.token, ttl_ms = math.max(0, math.floor(st.deadline - core.mono_ms())),
      -- not stored: the pump is held in the engine under the continuation's key
      _hold = function(key, ttl) return pump:park(key, ttl, park_notice(c, s, id, guard)) end,
      _drop = function() pump:close(); cancel_notice(c, s, id, "cancelled") end,
    })
  end
  -- the stream broke before the response: resumed with GET + Last-Event-ID
  if not r.message and r.sse and is_set(r.last_event_id) and r.last_event_id ~= "" then
    local on_message = incoming.handler(c, respond, { token = st.token, progress = st.opts.progress })
    local ok2, m2 = pcall(resume, c, s, r, id, on_message, st.deadline, st.timeout, st.opts.lazy)
    if not ok2 then
      if abandoned(m2) then cancel_notice(c, s, id, m2.reason or m2.code) end
      error(m2, 0)
    end
    r.message = m2
  end
  return r
end

-- result(method, r) -> the call's result from its exchange | raises
local function result(method, r)
  local msg = r.message
  if msg then
    if type(msg.error) == "table" then jsonrpc.raise_rpc(msg.error, r.status, method) end
    if type(msg.result) ~= "table" then errors.raise("upstream_error", method .. ": the result is not an object", nil, { reason = "invalid_result" }) end
    return msg.result
  end
  if r.status >= 300 then transport.fail(r, method) end
  errors.raise("upstream_error", method .. ": the response stream ended without a response", nil,
    { reason = r.cut and "stream_broken" or "no_response" })
end

-- call(c, method, params, opts) -> result | input.suspend{...} | raises;
-- opts = {deadline?, timeout_ms?, progress?, resumable?, lazy?} (lazy: see
-- transport.exchange). resumable and no handler that answers elicitation now: the call's stream is read on a pump,
-- so the call can wait for its user (see exchange).
function M.call(c, method, params, opts)
  opts = opts or {}
  local deadline, timeout = transport.deadline(c, opts)
  local s, r0 = session(c, false, false, deadline)
  if not s then transport.fail(r0, method) end
  local pump = (opts.resumable and not call.host().elicitation) and true or nil
  for attempt = 1, 2 do
    local id = jsonrpc.next_id()
    local p = copy(params)
    local token = incoming.progress_token(id, opts)
    if token then
      local meta = copy(type(p._meta) == "table" and p._meta or nil)
      meta.progressToken = token
      p._meta = meta
    end
    local r = exchange(c, s, id, method, { method = "POST", headers = session_headers(c, s), pump = pump,
      body = json.encode(jsonrpc.request(id, method, p)) },
      { deadline = deadline, timeout = timeout, token = token, opts = opts })
    if input.is_suspended(r) then return r end
    if r.status == 404 and s.id and attempt == 1 then
      -- the session expired on the server: initialize once more and retry
      mcp.park_drop(listen_key(c, s.id))
      s = session(c, true, false, deadline)
    else
      return result(method, r)
    end
  end
end

-- resume(c, state, answers, opts) -> result | input.suspend{...}: a parked
-- call carries on: the answer goes to the server's request, and its stream,
-- held open meanwhile, is read on. Only the engine instance that parked it
-- holds it; past the call's deadline it has ended (the server was told).
function M.resume(c, state, answers, opts)
  local p = mcp.unpark(state.park_key)
  if not p then
    errors.raise("not_found", "the call that waited for these answers has ended, or is held by another engine " ..
      "instance (a handshake-era server's call stays on the instance that started it)", "continuation")
  end
  local s = state.session
  local deadline, timeout = state.deadline, state.timeout_ms
  if core.mono_ms() >= deadline then
    p:close()
    errors.raise("timeout", state.method .. ": the server's question waited past the call's timeout (" ..
      timeout .. " ms); the server was told the call is cancelled", nil, { reason = "timeout" })
  end
  local d = state.requests[1]
  local okp, st = pcall(post, c, s, jsonrpc.result(state.server_request_id, answers[d.key]), deadline)
  if not okp or st >= 400 then
    p:close()
    cancel_notice(c, s, state.id, "answer_refused")
    errors.raise("upstream_error", state.method .. ": the server did not take the answer (" ..
      (okp and ("HTTP " .. st) or tostring(st.message or st)) .. ")", nil, { reason = "answer_refused" })
  end
  local r = exchange(c, s, state.id, state.method,
    { method = "POST", headers = session_headers(c, s), pump = true, pump_handle = p },
    { deadline = deadline, timeout = timeout, token = state.token, opts = opts or {} })
  if input.is_suspended(r) then return r end
  return result(state.method, r)
end

-- discover(c, bound) -> info | nil: initialize refused (not this era).
-- A new session replaces the cached one. bound = {deadline, timeout_ms}
function M.discover(c, bound)
  local s = session(c, true, true, bound.deadline)
  if not s then return nil end
  return protocol.info("legacy", s.version, s.capabilities, s.server_info, s.instructions)
end

function M.ping(c, opts)
  return M.call(c, "ping", json.object(), opts)
end

-- close(c): forgets the client's session, ending it on the server (DELETE)
-- when the client speaks this era
function M.close(c)
  local v = mcp.cache_del("sess:" .. c.key)
  if not v or c.era ~= "legacy" then return end
  local s = json.decode(v)
  if not s.id then return end
  mcp.park_drop(listen_key(c, s.id))
  local h = session_headers(c, s)
  h["Content-Type"], h["Accept"] = nil, nil
  pcall(transport.exchange, c, { method = "DELETE", headers = h, timeout_ms = M.CANCEL_TIMEOUT_MS })
end

-- sweep(): idle sessions of every server are ended (DELETE, from C); every
-- client asks, the cache is walked at most once per SWEEP_EVERY_MS. A Lua
-- state asks the engine at most once per SWEEP_ASK_MS (a call then costs a
-- clock read here, not two trips through the cache's lock).
M.SWEEP_EVERY_MS = 10 * 1000
M.SWEEP_ASK_MS = 1000
local next_ask = 0
function M.sweep()
  local t = core.mono_ms()
  if t < next_ask then return end
  next_ask = t + M.SWEEP_ASK_MS
  -- the sessions swept end their kept GET streams too
  for _, x in ipairs(mcp.cache_sweep(M.SESSION_IDLE_MS, "sess:", M.SWEEP_EVERY_MS)) do
    ended({ key = x.key:sub(#"sess:" + 1) }, x.value)
  end
  -- what sessions' GET streams were like: walked as seldom (the throttle
  -- above is the engine's one walk, so this one keeps its own time)
  if t - (tonumber(mcp.cache_get("sweep:noget")) or 0) >= M.SWEEP_EVERY_MS then
    mcp.cache_put("sweep:noget", tostring(t))
    mcp.cache_sweep(M.SESSION_IDLE_MS, "noget:")
  end
end

return M
