-- mcp.sse: the 2024-11-05 HTTP+SSE era: one SSE stream per operation, messages
-- POSTed to the endpoint it names, answers (and the server's requests) on the stream.
local json = require "json"
local errors = require "errors"
local net = require "net"
local jsonrpc = require "mcp.jsonrpc"
local transport = require "mcp.transport"
local incoming = require "mcp.incoming"
local input = require "mcp.input"
local protocol = require "mcp.protocol"

local M = {}

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- operation(c, method, params, opts) -> result, init
-- GET the stream, read the endpoint event, initialize, then send the request
-- (none when method is nil); opts = {deadline?, timeout_ms?, progress?,
-- lazy? (see transport.exchange)}.
local function operation(c, method, params, opts)
  opts = opts or {}
  local deadline, timeout = transport.deadline(c, opts)
  local base = net.parse(c.url, "url")
  local endpoint, init, result, failure
  local init_id, req_id = jsonrpc.next_id(), jsonrpc.next_id()
  local token = incoming.progress_token(req_id, opts)
  -- 2024-11-05 has no elicitation; sampling and roots as this call's host answers them
  local caps = json.object()
  for k, v in pairs(input.capabilities(false)) do if k ~= "elicitation" then caps[k] = v end end
  local post_headers = transport.post_headers(c)
  post_headers["MCP-Protocol-Version"] = protocol.SSE
  local function post(msg)
    local st = transport.send(c, post_headers, msg, { url = endpoint, deadline = deadline })
    if st >= 300 then errors.raise("upstream_error", "HTTP+SSE: the message endpoint answered HTTP " .. st, nil, { http_status = st }) end
  end
  -- what the server sends on the stream besides the responses: its requests
  -- are answered at the message endpoint
  local notes = incoming.handler(c, function(m) pcall(post, m) end, { token = token, progress = opts.progress })
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
      post(jsonrpc.request(init_id, "initialize", { protocolVersion = protocol.SSE,
        capabilities = caps, clientInfo = protocol.CLIENT_INFO }))
      return false
    end
    if ev.event ~= "message" then return false end
    local list, kinds = jsonrpc.parse(ev.data, opts.lazy)
    for i, m in ipairs(list) do
      if kinds[i] == "response" and jsonrpc.same_id(m.id, init_id) then
        if type(m.error) == "table" then failure = m.error; return true end
        init = m.result
        post(jsonrpc.notification("notifications/initialized"))
        if not method then return true end
        local p = copy(params)
        if token then local meta = copy(p._meta); meta.progressToken = token; p._meta = meta end
        post(jsonrpc.request(req_id, method, p))
      elseif kinds[i] == "response" and jsonrpc.same_id(m.id, req_id) then
        result = m
        return true
      else
        notes(m)
      end
    end
    return false
  end
  local h = copy(c.headers)
  h["Accept"] = "text/event-stream"
  -- transport.exchange wraps the callback; this one drives the protocol
  local r = transport.exchange(c, { method = "GET", headers = h, deadline = deadline, timeout_ms = timeout,
    on_event = on_event })
  if failure then
    if errors.is(failure) then error(failure, 0) end
    jsonrpc.raise_rpc(failure, r.status, method or "initialize")
  end
  if r.status >= 300 then transport.fail(r, "HTTP+SSE stream") end
  if not endpoint then errors.raise("upstream_error", "HTTP+SSE: the server sent no endpoint event", nil, { reason = "no_endpoint" }) end
  if not init then errors.raise("upstream_error", "HTTP+SSE: no answer to initialize", nil, { reason = "no_response" }) end
  if method then
    if not result then errors.raise("upstream_error", method .. ": no response on the SSE stream", nil, { reason = "no_response" }) end
    if type(result.error) == "table" then jsonrpc.raise_rpc(result.error, r.status, method) end
    return result.result, init
  end
  return nil, init
end

-- call(c, method, params, opts) -> result | raises
function M.call(c, method, params, opts)
  return (operation(c, method, params, opts))
end

-- discover(c, bound) -> info: the initialize answer of a stream opened for
-- nothing else; bound = {deadline, timeout_ms}
function M.discover(c, bound)
  local _, init = operation(c, nil, nil, bound)
  return protocol.info("sse", protocol.SSE, init.capabilities, init.serverInfo, init.instructions)
end

function M.ping(c, opts)
  return M.call(c, "ping", json.object(), opts)
end

return M
