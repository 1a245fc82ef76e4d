-- mcp.modern: the 2026-07-28 era: stateless requests, each carrying _meta and the
-- Mcp-* headers; server/discover, version correction, subscriptions/listen.
local json = require "json"
local core = require "core"
local errors = require "errors"
local log = require "log"
local jsonrpc = require "mcp.jsonrpc"
local transport = require "mcp.transport"
local headers = require "mcp.headers"
local incoming = require "mcp.incoming"
local input = require "mcp.input"
local protocol = require "mcp.protocol"

local M = {}

local is_set = jsonrpc.is_set
local META_VERSION = "io.modelcontextprotocol/protocolVersion"
local META_INFO = "io.modelcontextprotocol/clientInfo"
local META_CAPS = "io.modelcontextprotocol/clientCapabilities"
local META_SERVER = "io.modelcontextprotocol/serverInfo"
local NAME_SOURCE = { ["tools/call"] = "name", ["prompts/get"] = "name", ["resources/read"] = "uri" }

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- What repeats from request to request is made once per Lua state and
-- shared (read, never changed): the text of the _meta members for a
-- revision and a set of client capabilities (input.capabilities hands out
-- one table per set), and the headers for a client's credential headers
-- (kept per server by lua/credentials.lua until a change or KEEP_MS ends
-- them), revision, method and name. Keyed by those tables, weakly: a
-- credential that is dropped takes its headers with it.
local meta_texts = setmetatable({}, { __mode = "k" })
local head_sets = setmetatable({}, { __mode = "k" })
local HEAD_MAX = 256
local text_of = protocol.memo(json.encode, HEAD_MAX) -- method names and params keys as JSON strings

local function meta_text(version, caps)
  local by = meta_texts[caps]
  if not by then by = {}; meta_texts[caps] = by end
  local t = by[version]
  if not t then
    -- the members without their braces: a progress token goes before them
    t = json.encode({ [META_VERSION] = version, [META_INFO] = protocol.CLIENT_INFO, [META_CAPS] = caps }):sub(2, -2)
    by[version] = t
  end
  return t
end

-- base_headers(c, version, method, name) -> the shared headers; name: what
-- Mcp-Name carries, as a string (nil: none)
local function base_headers(c, version, method, name)
  local cred = c.headers
  local set = head_sets[cred]
  if not set or set.n >= HEAD_MAX then set = { n = 0 }; head_sets[cred] = set end
  local k = version .. " " .. method .. " " .. (name or "")
  local h = set[k]
  if not h then
    h = transport.post_headers(c)
    h["MCP-Protocol-Version"] = version
    h["Mcp-Method"] = method
    if name then h["Mcp-Name"] = headers.encode(name) end
    set[k], set.n = h, set.n + 1
  end
  return h
end

-- body_of(id, method, params, version, token, resumable) -> the request's
-- text: the params without a _meta of their own (and no progress token)
-- encoded whole, the _meta text put before their closing brace; else the
-- id, each member of the params encoded and the _meta text joined.
local function body_of(id, method, params, version, token, resumable)
  local meta = meta_text(version, input.capabilities(resumable))
  if params._meta == nil and not token and math.type(id) == "integer" then
    local p = json.encode(params)
    if p:byte(1) == 123 then -- "{": an object, its members then ours
      local open = p == "{}" and "{" or p:sub(1, -2) .. ","
      return '{"jsonrpc":"2.0","id":' .. id .. ',"method":' .. text_of(method) .. ',"params":' .. open ..
        '"_meta":{' .. meta .. "}}}"
    end
  end
  local buf, n = { '{"jsonrpc":"2.0","id":', json.encode(id), ',"method":', text_of(method), ',"params":{' }, 5
  for k, v in pairs(params) do
    if k ~= "_meta" then
      buf[n + 1], buf[n + 2], buf[n + 3], buf[n + 4] = text_of(tostring(k)), ":", json.encode(v), ","
      n = n + 4
    end
  end
  n = n + 1
  buf[n] = '"_meta":{'
  local own = params._meta
  if type(own) == "table" then
    for k, v in pairs(own) do
      k = tostring(k)
      if k ~= META_VERSION and k ~= META_INFO and k ~= META_CAPS and not (token and k == "progressToken") then
        buf[n + 1], buf[n + 2], buf[n + 3], buf[n + 4] = json.encode(k), ":", json.encode(v), ","
        n = n + 4
      end
    end
  end
  if token then buf[n + 1] = '"progressToken":' .. json.encode(token) .. ","; n = n + 1 end
  buf[n + 1], buf[n + 2] = meta, "}}}"
  return table.concat(buf)
end

-- request(c, id, method, params, version [, progress_token [, resumable]]) ->
-- body, headers: _meta names the revision, the client and its capabilities
-- (what this call's host can answer), after any members of the params' own
-- _meta (ours win); the headers repeat what intermediaries route on (method,
-- name, x-mcp-header parameters): the shared ones unless a tool's
-- x-mcp-header parameters add to them.
local function request(c, id, method, params, version, token, resumable)
  params = params or json.object()
  local body = body_of(id, method, params, version, token, resumable)
  local src = NAME_SOURCE[method]
  local name = src and params[src]
  -- a number or boolean goes as its text (what headers.encode makes of it),
  -- anything else but a string as no header
  if type(name) ~= "string" then name = name ~= nil and headers.encode(name) or nil end
  local h = base_headers(c, version, method, name)
  if method == "tools/call" then
    local specs = headers.of_tool(c.key, params.name)
    if #specs > 0 then
      local with = {}
      for k, v in pairs(h) do with[k] = v end
      for k, v in pairs(headers.params(specs, params.arguments)) do with[k] = v end
      h = with
    end
  end
  return body, h
end

-- final(method, res) -> res, the call's result: a result without resultType
-- is complete (servers of earlier revisions send none); input_required is
-- the caller's to handle (call); anything else is refused.
local function final(method, res)
  if type(res) ~= "table" then errors.raise("upstream_error", method .. ": the result is not an object", nil, { reason = "invalid_result" }) end
  local rt = res.resultType
  if is_set(rt) and rt ~= "complete" and not (rt == "input_required" and input.RESUMABLE[method]) then
    errors.raise("upstream_error", method .. ": the server answered with resultType '" .. tostring(rt):sub(1, 100) ..
      "', which this request does not allow", nil, { reason = "invalid_result" })
  end
  return res
end

-- with_input(params, answers, state) -> the params of a retry: the answers
-- of the last round as inputResponses, the server's requestState echoed
-- exactly as it came (never parsed, logged or shown), or left out when the
-- server sent none
local function with_input(params, answers, state)
  local p = copy(params)
  p.inputResponses = answers
  p.requestState = is_set(state) and state or nil
  return p
end

-- call(c, method, params, opts) -> result | input.suspend{...} (an
-- elicitation the host answers later) | nil when opts.probe and the server
-- does not speak this era | raises.
-- opts = {deadline?, timeout_ms?, progress?, probe?, resumable?, lazy?}
-- (lazy: the result's list left undecoded, see transport.exchange). Retries
-- once with a mutually supported version after
-- UnsupportedProtocolVersionError, relists the tools once after a header
-- mismatch, re-issues a request whose response stream broke before the
-- response arrived, and answers input_required results (multi round-trip
-- requests): each retry is a new request with a new id, the answers and the
-- echoed requestState; each round has the server's full timeout (the host's
-- answer may take a while).
function M.call(c, method, params, opts)
  opts = opts or {}
  local deadline, timeout = transport.deadline(c, opts)
  local version = c.version or protocol.MODERN[1]
  local corrected, reissued, relisted = false, false, false
  -- the params without the previous round's answers: made when a round needs it
  local orig, base = params, nil
  local rounds = opts.rounds or 0
  while true do
    local id = jsonrpc.next_id()
    local token = incoming.progress_token(id, opts)
    local body, h = request(c, id, method, params, version, token, opts.resumable)
    local r = transport.exchange(c, {
      method = "POST", headers = h, body = body, id = id, deadline = deadline, timeout_ms = timeout,
      on_message = incoming.handler(c, nil, { token = token, progress = opts.progress }), lazy = opts.lazy,
    })
    local e = r.message and type(r.message.error) == "table" and r.message.error
    if not r.message and r.status >= 300 then e = jsonrpc.body_error(r.body) end
    if e and e.code == jsonrpc.UNSUPPORTED_VERSION and not corrected then
      local v = protocol.pick_modern(type(e.data) == "table" and e.data.supported)
      if v then
        corrected, version = true, v
        goto continue
      end
      if opts.probe then return nil end
    elseif e and e.code == jsonrpc.HEADER_MISMATCH and method == "tools/call" and not relisted then
      -- the tool's x-mcp-header parameters may have changed: relist, retry
      relisted = true
      local okl, le = pcall(c.list, c, "tools", { deadline = deadline, timeout_ms = timeout })
      if not okl and type(le) == "table" and le.reason == "cancelled" then error(le, 0) end
      goto continue
    end
    if r.message then
      if e then
        if opts.probe and not jsonrpc.MODERN_ERRORS[e.code] then return nil end
        jsonrpc.raise_rpc(e, r.status, method)
      end
      c.version = version
      local res = final(method, r.message.result)
      if res.resultType ~= "input_required" then return res end
      rounds = rounds + 1
      if rounds > input.MAX_ROUNDS then
        errors.raise("upstream_error", method .. ": the server still needs input after " .. input.MAX_ROUNDS ..
          " rounds", nil, { reason = "too_many_rounds" })
      end
      if not is_set(res.inputRequests) and not is_set(res.requestState) then
        errors.raise("upstream_error", method .. ": input_required without inputRequests or requestState", nil,
          { reason = "invalid_result" })
      end
      if is_set(res.requestState) and type(res.requestState) ~= "string" then
        errors.raise("upstream_error", method .. ": requestState is not a string", nil, { reason = "invalid_result" })
      end
      if not base then
        base = copy(orig)
        base.inputResponses, base.requestState = nil, nil
      end
      local answers, pending = input.resolve(c, res.inputRequests, opts.resumable)
      if pending then
        return input.suspend({ era = "modern", method = method, params = base, answered = answers,
                               request_state = res.requestState, requests = pending, rounds = rounds })
      end
      params = with_input(base, answers, res.requestState)
      deadline = core.mono_ms() + timeout
      reissued = false
      goto continue
    end
    if r.status == 401 or r.status == 403 then transport.fail(r, method) end
    if opts.probe and (r.status == 400 or r.status == 404 or r.status == 405) and not (e and jsonrpc.MODERN_ERRORS[e.code]) then
      return nil
    end
    if r.status >= 300 then transport.fail(r, method) end
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

-- resume(c, state, answers, opts) -> result | input.suspend{...}: a call
-- that waited for its host carries on with the host's answers (and those
-- given before, in the same round), from a fresh request.
function M.resume(c, state, answers, opts)
  local all = json.object()
  for k, v in pairs(state.answered or {}) do all[k] = v end
  for k, v in pairs(answers) do all[k] = v end
  local o = copy(opts)
  o.deadline, o.rounds = nil, state.rounds
  return M.call(c, state.method, with_input(state.params, all, state.request_state), o)
end

-- discover(c, bound, probing) -> info | nil: not (or not only) a modern
-- server. bound = {deadline, timeout_ms}; probing: the era is unknown, so
-- answers a legacy server gives mean nil rather than an error.
function M.discover(c, bound, probing)
  local res = M.call(c, "server/discover", json.object(),
    { probe = probing, deadline = bound.deadline, timeout_ms = bound.timeout_ms })
  if not res then return nil end
  -- a DiscoverResult is recognised by its supportedVersions list
  if type(res.supportedVersions) ~= "table" or type(res.capabilities) ~= "table" then
    if not probing then
      errors.raise("upstream_error", "server/discover: the result is not a DiscoverResult", nil, { reason = "invalid_result" })
    end
    return nil
  end
  local v = protocol.pick_modern(res.supportedVersions)
  if not v then return nil end
  local version = (protocol.member(res.supportedVersions, c.version or "") and c.version) or v
  local si = res.serverInfo
  if type(res._meta) == "table" and type(res._meta[META_SERVER]) == "table" then si = res._meta[META_SERVER] end
  local info = protocol.info("modern", version, res.capabilities, si, res.instructions)
  info.ttl_ms = math.type(res.ttlMs) == "integer" and res.ttlMs or nil
  info.cache_scope = type(res.cacheScope) == "string" and res.cacheScope or nil
  return info
end

-- ping(c, opts): 2026-07-28 removed `ping`; server/discover stands in.
function M.ping(c, opts)
  M.call(c, "server/discover", json.object(), opts)
  return json.object()
end

-- listen(c, opts) -> notifications seen: a subscriptions/listen stream held
-- for up to opts.duration_ms (list-changed notifications mark stale);
-- opts.until_first ends it at the first list-changed one.
function M.listen(c, opts)
  local seen = json.array()
  local id = jsonrpc.next_id()
  local body, h = request(c, id, "subscriptions/listen", {
    notifications = opts.notifications or { toolsListChanged = true, resourcesListChanged = true, promptsListChanged = true },
  }, c.version or protocol.MODERN[1])
  local ok, e = pcall(transport.exchange, c, {
    method = "POST", headers = h, id = id, body = body, timeout_ms = opts.duration_ms or 5000,
    on_message = function(m)
      if jsonrpc.kind(m) == "notification" then
        seen[#seen + 1] = m.method
        if incoming.LIST_CHANGED[m.method] then incoming.mark_stale(c.key) end
      end
      return opts.until_first and incoming.LIST_CHANGED[m.method] or false
    end,
  })
  -- the listening window ending is the normal end; a cancelled call is not
  if not ok and not (type(e) == "table" and e.code == "timeout" and e.reason ~= "cancelled") then error(e, 0) end
  return seen
end

return M
