-- mcp.transport: one HTTP exchange of the MCP client through the guarded
-- binding: URL policy per hop, redirects, JSON or SSE bodies read to the end.
local mcp = require "mcp"
local net = require "net"
local json = require "json"
local core = require "core"
local errors = require "errors"
local jsonrpc = require "mcp.jsonrpc"

local M = {}

M.MAX_HOPS = 5
M.MAX_EVENT = 4 * 1024 * 1024
local SENSITIVE = { authorization = true, cookie = true, ["proxy-authorization"] = true }

local function is2xx(s) return s >= 200 and s < 300 end

-- exchange(c, req) -> r
-- c: {ctx, url, timeout_ms, max_bytes}; req: {method, url?, headers, body,
-- id (the response to wait for), on_message(msg) -> stop?, timeout_ms,
-- deadline (core.mono_ms() time: a call's exchanges share one; timeout_ms then
-- only names the call's limit in the message),
-- on_event(ev) -> stop? (raw SSE events instead of JSON-RPC handling)}.
-- r = {status, headers, body?, sse, message?, last_event_id, retry_ms,
--      cut = err when an SSE stream broke before the response, url}
-- Raises url_blocked, timeout, too_large and upstream_error (transport,
-- invalid JSON, wrong or missing ids, redirect loops).
function M.exchange(c, req)
  local url = net.parse(req.url or c.url, "url")
  local method = req.method or "POST"
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  local body = req.body
  local timeout = req.timeout_ms or c.timeout_ms
  local deadline = req.deadline or (core.mono_ms() + timeout)
  local lim = net.LIMITS.mcp
  local max_bytes = math.min(c.max_bytes or lim.max_bytes, lim.max_bytes)
  local response, proto_err
  local function on_event(ev)
    if ev.data == "" then return false end -- priming events and empty keep-alives
    local ok, list = pcall(jsonrpc.parse, ev.data)
    if not ok then proto_err = list; return true end
    for _, m in ipairs(list) do
      if jsonrpc.kind(m) == "response" then
        if req.id ~= nil and jsonrpc.same_id(m.id, req.id) then response = m; return true end
        -- a response to something else: not ours, ignored
      elseif req.on_message then
        local ok2, stop = pcall(req.on_message, m)
        if not ok2 then proto_err = stop; return true end
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
    local left = math.floor(deadline - core.mono_ms())
    if left <= 0 then errors.raise("timeout", "the MCP server did not answer within " .. timeout .. " ms", nil, { reason = "timeout" }) end
    local spec = {
      url = url, method = method, headers = headers, body = body, guard = d.guard,
      limits = { connect_timeout_ms = math.min(lim.connect_timeout_ms, left), timeout_ms = left,
                 max_bytes = max_bytes, max_header_bytes = lim.max_header_bytes },
      max_event = math.min(M.MAX_EVENT, max_bytes),
    }
    local r, err, partial = mcp.stream(spec, on_event)
    if proto_err then error(proto_err, 0) end
    if not r then
      if err.reason == "cancelled" and err.code == "timeout" then
        errors.raise("timeout", "cancelled", nil, { reason = "cancelled" })
      end
      if err.code == "timeout" then
        errors.raise("timeout", "the MCP server did not answer within " .. timeout .. " ms", nil, { reason = "timeout" })
      end
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
        for k in pairs(headers) do if SENSITIVE[k:lower()] then headers[k] = nil end end
      end
      url = nu
    else
      r.url, r.guard = url, d.guard
      if response then r.message = response
      elseif req.id ~= nil and not r.sse and is2xx(r.status) then
        -- a JSON body: exactly our response (ids checked), maybe in a batch
        local list = jsonrpc.parse(r.body)
        for _, m in ipairs(list) do
          if jsonrpc.kind(m) == "response" then
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
