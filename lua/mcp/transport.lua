-- mcp.transport: the HTTP side of every era: one exchange through the guarded binding
-- (URL policy per hop, redirects, JSON or SSE bodies), a call's deadline, HTTP errors.
local mcp = require "mcp"
local net = require "net"
local json = require "json"
local core = require "core"
local errors = require "errors"
local log = require "log"
local jsonrpc = require "mcp.jsonrpc"

local M = {}

M.MAX_HOPS = 5
M.MAX_EVENT = 4 * 1024 * 1024
local SENSITIVE = { authorization = true, cookie = true, ["proxy-authorization"] = true }

local function is2xx(s) return s >= 200 and s < 300 end

-- ---- one call, one deadline --------------------------------------------------

-- deadline(c, opts) -> deadline, timeout_ms. Every exchange, session claim,
-- retry and resumption of a call shares the call's deadline, so a call ends
-- within its timeout however many requests it takes.
-- opts = {timeout_ms?, deadline?} (core.mono_ms() time); else c.timeout_ms.
function M.deadline(c, opts)
  local t = (opts and opts.timeout_ms) or c.timeout_ms
  return (opts and opts.deadline) or (core.mono_ms() + t), t
end

local function raise_timeout(timeout)
  errors.raise("timeout", "the MCP server did not answer within " .. tostring(timeout) .. " ms", nil, { reason = "timeout" })
end

-- left_ms(deadline, timeout) -> milliseconds left (at least 1) | raises timeout
function M.left_ms(deadline, timeout)
  local l = math.floor(deadline - core.mono_ms())
  if l <= 0 then raise_timeout(timeout) end
  return l
end

-- ---- HTTP answers that are not a usable response -------------------------------

function M.header(r, name)
  local v = r.headers and r.headers[name]
  return type(v) == "string" and v or nil
end

-- fail(r, what): raises for a response that is not a usable answer:
-- 401 unauthorized, 403 forbidden (both with the WWW-Authenticate challenge),
-- a JSON-RPC error body, any other status.
function M.fail(r, what)
  local s = r.status
  local extra = { http_status = s, www_authenticate = M.header(r, "www-authenticate") }
  if s == 401 then
    errors.raise("unauthorized", (what or "request") .. ": the MCP server requires authorization (HTTP 401)", nil, extra)
  elseif s == 403 then
    errors.raise("forbidden", (what or "request") .. ": the MCP server refused access (HTTP 403)", nil, extra)
  end
  local e = not r.sse and jsonrpc.body_error(r.body)
  if e then
    extra.reason = "rpc_error"
    extra.rpc_error = { code = e.code, message = e.message, data = jsonrpc.is_set(e.data) and e.data or nil }
    errors.raise("upstream_error", (what or "request") .. ": HTTP " .. s .. ", server error " .. e.code .. ": " ..
      tostring(e.message):sub(1, 300), nil, extra)
  end
  extra.reason = "http_status " .. s
  errors.raise("upstream_error", (what or "request") .. ": the MCP server answered HTTP " .. s, nil, extra)
end

-- ---- requests ------------------------------------------------------------------

-- post_headers(c) -> the client's headers (credentials) for a JSON-RPC POST
function M.post_headers(c)
  -- sized for what callers add (the revision, method and name headers, a
  -- credential), so filling it never grows it
  -- (fields listed with nil size the table; Lua stores none of them)
  local h = { ["Content-Type"] = nil, ["Accept"] = nil, ["MCP-Protocol-Version"] = nil, ["Mcp-Method"] = nil,
              ["Mcp-Name"] = nil, ["Mcp-Session-Id"] = nil, ["Authorization"] = nil, ["X-Api-Key"] = nil }
  for k, v in pairs(c.headers or {}) do h[k] = v end
  h["Content-Type"] = "application/json"
  h["Accept"] = "application/json, text/event-stream"
  return h
end

M.SEND_MAX_MS = 10000

-- send(c, headers, msg, opts) -> HTTP status: a notification or a response
-- to the server (202 expected), within 10 s, opts.timeout_ms (else c's) and
-- the call's deadline; opts = {url?, deadline?, timeout_ms?, uncancellable?}
-- (uncancellable: sent although the call was cancelled, e.g. the notice
-- that it was)
function M.send(c, headers, msg, opts)
  local t = math.min(opts.timeout_ms or c.timeout_ms, M.SEND_MAX_MS)
  if opts.deadline then t = math.min(t, M.left_ms(opts.deadline, c.timeout_ms)) end
  local r = M.exchange(c, { method = "POST", url = opts.url, headers = headers, body = json.encode(msg), timeout_ms = t,
    uncancellable = opts.uncancellable })
  return r.status
end

-- ---- the session's own stream (handshake era) ----------------------------------

-- A server of a session may send its requests on a stream the client opens
-- with GET (not only on a POST's response stream). While a call is in flight
-- the engine listens there too; between calls the stream is kept (parked in
-- the engine under listen.park), so a call pays for the GET only once.
M.LISTEN_OPEN_MS = 3000 -- the GET's answer, before the call is sent

M.LISTEN_BUSY_MS = 100 -- between tries while the server says another stream is open (409)

-- listen_open(spec, listen, deadline) -> pump | nil: the GET on the call's
-- (guarded) URL, open once its answer's headers are in: a server sends on it
-- only once it is there. A 405: the server offers none (listen.refused(405)).
-- A 409: a server that allows one such stream per session still holds
-- another (the previous call's, just closed, or a concurrent call's): tried
-- again until LISTEN_OPEN_MS, then the call goes on without. Any other
-- answer: none now. No headers within LISTEN_OPEN_MS (a server that sends
-- them with its first event): the stream is kept, and listen.refused(0) lets
-- later calls open it without waiting.
local function listen_open(spec, listen, deadline)
  local limits = spec.limits
  if listen.park and listen.life_ms then
    -- kept between calls: the transfer outlives this call (up to life_ms,
    -- or this call's time if that is longer; parked, it ends after keep_ms)
    limits = {}
    for k, v in pairs(spec.limits) do limits[k] = v end
    limits.timeout_ms = math.max(listen.life_ms, spec.limits.timeout_ms or 0)
  end
  local function open()
    return mcp.pump({ url = spec.url:text(), method = "GET", headers = listen.headers, guard = spec.guard,
                      limits = limits, max_event = spec.max_event })
  end
  local g = open()
  if listen.nowait then return g end
  local t_end = math.min(deadline, core.mono_ms() + M.LISTEN_OPEN_MS)
  while true do
    local it = g:next(math.max(1, math.min(250, math.floor(t_end - core.mono_ms()))))
    if it and it.kind == "head" then
      if it.status >= 200 and it.status < 300 and it.sse then return g end
      g:close()
      if it.status == 405 and listen.refused then listen.refused(405) end
      if it.status ~= 409 or core.mono_ms() + M.LISTEN_BUSY_MS >= t_end then return nil end
      core.sleep_ms(M.LISTEN_BUSY_MS)
      g = open()
    elseif it then -- the GET ended before its headers (a transport error)
      g:close()
      return nil
    elseif core.mono_ms() >= t_end then
      if core.mono_ms() < deadline and listen.refused then listen.refused(0) end
      return g
    end
  end
end

M.LISTEN_STEP_MS = 20 -- how often a call that also listens looks at both streams (when they share no wake)

-- pumped(spec, on_event, req, deadline) -> as mcp.stream: the exchange read
-- through a pump (mcp.pump, lazy: on this thread until it is parked, then by
-- a thread of its own; req.pump_handle: a parked pump to read on), its
-- events handed to on_event here as they come. When on_event parks
-- the call (an on_message answered "park"), the pump is left running in
-- req.parked_pump: the caller parks it while the user answers.
-- req.listen = {headers, claim?, on_message?, refused(status)?, nowait?,
-- park?, keep_ms?, life_ms?, on_stale(m)?}: the session's GET stream is read alongside
-- (listen_open) by the call that holds listen.claim, its events handed to the
-- same on_event (their requests to listen.on_message, else req.on_message).
-- Whenever this returns or raises the claim is released and the stream,
-- unless it ended, is parked under listen.park for keep_ms (else closed);
-- the next call takes it back (no new GET), first handing what came while
-- nobody listened to listen.on_stale (nobody could be asked then). A kept
-- stream found ended, or whose transfer would end before this call's
-- deadline (life_ms after it was opened), is opened once more.
local function pumped(spec, on_event, req, deadline)
  local p = req.pump_handle
  req.pump_handle = nil
  local listen = req.listen
  req.listen = nil -- the first hop only
  -- one listener per session in this engine: the other calls of the session
  -- leave the stream to it (listen.claim: the key of that try-lock)
  local held
  if listen and listen.claim then
    local _, mine = mcp.cache_claim(listen.claim, 0)
    if mine then held = listen.claim else listen = nil end
  end
  local g
  local function drop_listener()
    if g then g:close(); g = nil end
  end
  -- keep_listener(): at the end of the call, the stream is kept for the next
  -- (no room in the engine's registry: closed, the next call opens its own)
  local function keep_listener()
    if not g then return end
    if listen.park then
      local ok, kept = pcall(g.park, g, listen.park, listen.keep_ms or 0)
      if ok and kept then g = nil; return end
    end
    drop_listener()
  end
  -- drain(): what a kept stream queued while no call listened -> still open?
  local function drain()
    while true do
      local gi = g:next(0)
      if gi == nil then return true end
      if gi.kind == "event" then
        if gi.data ~= "" and listen.on_stale then
          local ok, list = pcall(jsonrpc.parse, gi.data)
          if ok then for _, m in ipairs(list) do listen.on_stale(m) end end
        end
      elseif gi.kind == "head" then -- the late headers of a stream opened without waiting
        if not (gi.status >= 200 and gi.status < 300 and gi.sse) then
          if gi.status == 405 and listen.refused then listen.refused(405); return "refused" end
          return false
        end
      else
        return false
      end
    end
  end
  local function read()
    local kept = true
    if listen and listen.park then
      g = mcp.unpark(listen.park)
      if g then
        kept = drain()
        if kept == true and g:left_ms() < deadline - core.mono_ms() then kept = false end
        if kept ~= true then drop_listener() end
        if kept == false then log.debug("mcp: the session's kept stream (GET) had ended, or ends before the call: opened again") end
      end
    end
    if listen and not g and kept ~= "refused" then g = listen_open(spec, listen, deadline) end
    if not p then
      -- lazy: read on this thread; a thread of its own only if the call is parked
      p = mcp.pump({ url = spec.url:text(), method = spec.method, headers = spec.headers, body = spec.body,
                     guard = spec.guard, limits = spec.limits, max_event = spec.max_event, lazy = true })
    end
    -- one wait on both streams: the GET's events wake the reader at once
    local shared = g and p:share_wake(g)
    local status, sse = 0, true
    local function stopped(last_id)
      if req.parking then req.parked_pump = p else p:close() end
      return { status = status, headers = {}, sse = sse, stopped = true, last_event_id = last_id, retry_ms = -1 }
    end
    while true do
      local step = (g and not shared) and M.LISTEN_STEP_MS or 250
      local it = p:next(math.max(1, math.min(step, math.floor(deadline - core.mono_ms()))), shared and g or nil)
      if it == nil then
        if core.mono_ms() >= deadline then
          p:close()
          return nil, { code = "timeout", reason = "timeout", message = "no complete response in time" }
        end
      elseif it.kind == "head" then status, sse = it.status, it.sse
      elseif it.kind == "event" then
        if on_event(it) then return stopped(it.id) end
      else
        p:close()
        local r = { status = it.status, headers = it.headers, sse = it.sse, last_event_id = it.last_event_id,
                    retry_ms = it.retry_ms, body = it.body }
        if it.err then return nil, it.err, r end
        return r
      end
      -- the session's stream: what arrived meanwhile
      while g do
        local gi = g:next(0)
        if gi == nil then break end
        if gi.kind == "event" then
          if on_event(gi, listen.on_message) then return stopped(nil) end
        elseif gi.kind == "head" then -- late headers (see listen_open)
          if not (gi.status >= 200 and gi.status < 300 and gi.sse) then
            drop_listener()
            if gi.status == 405 and listen.refused then listen.refused(405) end
          end
        elseif gi.kind == "end" then
          if gi.err then log.debug("mcp: the session's stream ended:", tostring(gi.err.message)) end
          drop_listener()
        end
      end
    end
  end
  local ok, r, err, partial = pcall(read)
  keep_listener()
  if held then mcp.cache_release(held) end
  if not ok then
    if p then p:close() end -- cancelled or failed: nothing of the call stays open
    error(r, 0)
  end
  return r, err, partial
end

-- exchange(c, req) -> r
-- c: {ctx, url, timeout_ms, max_bytes}; req: {method, url?, headers, body,
-- id (the response to wait for), on_message(msg) -> stop?, timeout_ms,
-- deadline (core.mono_ms() time: a call's exchanges share one; timeout_ms then
-- only names the call's limit in the message),
-- on_event(ev) -> stop? (raw SSE events instead of JSON-RPC handling),
-- pump (read by a thread of its own, so a call can be parked: an
-- on_message answering "park" stops the exchange with the pump running),
-- pump_handle (a parked pump to read on), listen (the session's GET stream
-- read alongside: see pumped), lazy (a path of keys whose array each message
-- leaves undecoded: jsonrpc.parse)}.
-- r = {status, headers, body?, sse, message?, last_event_id and retry_ms (a
--      stream's), cut = err when an SSE stream broke before the response, url,
--      parked = the pump of a parked call}
-- Raises url_blocked, timeout, too_large and upstream_error (transport,
-- invalid JSON, wrong or missing ids, redirect loops).
function M.exchange(c, req)
  local url = net.parse(req.url or c.url, "url")
  local method = req.method or "POST"
  -- the caller's table, copied only if a redirect must drop credentials from it
  local headers, own_headers = req.headers or {}, false
  local body = req.body
  local timeout = req.timeout_ms or c.timeout_ms
  local deadline = req.deadline or (core.mono_ms() + timeout)
  local lim = net.LIMITS.mcp
  local max_bytes = math.min(c.max_bytes or lim.max_bytes, lim.max_bytes)
  local response, proto_err
  local function on_event(ev, on_message)
    on_message = on_message or req.on_message
    if ev.data == "" then return false end -- priming events and empty keep-alives
    local ok, list, kinds = pcall(jsonrpc.parse, ev.data, req.lazy)
    if not ok then proto_err = list; return true end
    for i, m in ipairs(list) do
      if kinds[i] == "response" then
        if req.id ~= nil and jsonrpc.same_id(m.id, req.id) then response = m; return true end
        -- a response to something else: not ours, ignored
      elseif on_message then
        local ok2, stop = pcall(on_message, m)
        if not ok2 then proto_err = stop; return true end
        if stop == "park" then req.parking = true end
        if stop then return true end
      end
    end
    return false
  end
  if req.on_event then
    -- a caller that drives the protocol from raw events (HTTP+SSE)
    on_event = function(ev)
      local ok, stop = pcall(req.on_event, ev)
      if not ok then proto_err = stop; return true end
      return stop
    end
  end
  local hops = 0
  while true do
    local d = net.decide(c.ctx, url, "mcp")
    if not d.allow then errors.raise("url_blocked", d.message, "url", { reason = d.reason }) end
    local left = M.left_ms(deadline, timeout)
    local spec = {
      url = url, method = method, headers = headers, body = body, guard = d.guard,
      limits = { connect_timeout_ms = math.min(lim.connect_timeout_ms, left), timeout_ms = left,
                 max_bytes = max_bytes, max_header_bytes = lim.max_header_bytes },
      max_event = math.min(M.MAX_EVENT, max_bytes),
      uncancellable = req.uncancellable,
    }
    local r, err, partial
    if req.pump or req.listen then r, err, partial = pumped(spec, on_event, req, deadline)
    else r, err, partial = mcp.stream(spec, on_event) end
    if proto_err then error(proto_err, 0) end
    if not r then
      if err.reason == "cancelled" and err.code == "timeout" then
        errors.raise("timeout", "cancelled", nil, { reason = "cancelled" })
      end
      if err.code == "timeout" then raise_timeout(timeout) end
      if partial and partial.sse and is2xx(partial.status) and err.code == "upstream_error" then
        partial.cut, partial.url, partial.guard = err, url, d.guard
        return partial
      end
      errors.raise(err.code, url:text() .. ": " .. tostring(err.message), nil, { reason = err.reason })
    end
    local loc = r.headers.location
    if r.status >= 300 and r.status < 400 and loc then
      hops = hops + 1
      if hops > M.MAX_HOPS then
        errors.raise("upstream_error", "too many redirects (more than " .. M.MAX_HOPS .. ")", nil, { reason = "too_many_redirects", http_status = r.status })
      end
      if method ~= "GET" and r.status ~= 307 and r.status ~= 308 then
        errors.raise("upstream_error", "the MCP endpoint redirected a " .. method .. " with HTTP " .. r.status ..
          " (only 307/308 keep the request)", nil, { reason = "redirect", http_status = r.status })
      end
      local nu, reason, msg = url:join(loc)
      if not nu then errors.raise("url_blocked", "redirect refused: " .. tostring(msg), "url", { reason = reason }) end
      if not nu:same_origin(url) then
        if not own_headers then
          local copy = {}
          for k, v in pairs(headers) do copy[k] = v end
          headers, own_headers = copy, true
        end
        -- the standard credential headers, and every header the client's credentials
        -- made (an API key under a header name of the server's choosing)
        local cred = c.headers or {}
        for k in pairs(headers) do if SENSITIVE[k:lower()] or cred[k] ~= nil then headers[k] = nil end end
      end
      url = nu
    else
      r.url, r.guard = url, d.guard
      r.parked = req.parked_pump
      if response then r.message = response
      elseif req.id ~= nil and not r.sse and is2xx(r.status) then
        -- a JSON body: exactly our response (ids checked), maybe in a batch
        local list, kinds = jsonrpc.parse(r.body, req.lazy)
        for i, m in ipairs(list) do
          if kinds[i] == "response" then
            if jsonrpc.same_id(m.id, req.id) then r.message = m
            elseif m.id == nil or m.id == json.null then
              if type(m.error) == "table" then r.message = m
              else errors.raise("upstream_error", "the server's response has no id", nil, { reason = "missing_id" }) end
            else
              errors.raise("upstream_error", "the server answered with a different id (" .. tostring(m.id) ..
                ", expected " .. tostring(req.id) .. ")", nil, { reason = "wrong_id" })
            end
          elseif req.on_message then req.on_message(m) end
        end
        if not r.message then errors.raise("upstream_error", "the server's reply holds no response", nil, { reason = "no_response" }) end
      end
      return r
    end
  end
end

return M
