-- mcp.incoming: what a server sends during a call besides the response, in every era:
-- notifications (list changed, progress, log lines) and its requests to the client.
local mcp = require "mcp"
local json = require "json"
local log = require "log"
local call = require "call"
local jsonrpc = require "mcp.jsonrpc"
local input = require "mcp.input"

local M = {}

M.LIST_CHANGED = {
  ["notifications/tools/list_changed"] = true, ["notifications/resources/list_changed"] = true,
  ["notifications/prompts/list_changed"] = true,
}

-- A list_changed notification marks the server (per client cache key) stale
-- until its next discover().
function M.mark_stale(key) mcp.cache_put("stale:" .. key, "1") end
function M.clear_stale(key) mcp.cache_del("stale:" .. key) end
function M.is_stale(key) return mcp.cache_get("stale:" .. key) ~= nil end

-- progress_token(id, opts) -> the progressToken a request carries, when
-- someone sees its progress (a step's collector or the host's event hook)
function M.progress_token(id, opts)
  if (opts and opts.progress) or call.host().events then return "p" .. tostring(id) end
  return nil
end

-- emit(c, ev): an event of the call to the host, marked with its server
local function emit(c, ev)
  ev.server = c.server or { url = c.url }
  local ok, text = pcall(json.encode, ev)
  if ok then call.emit(text) end
end

local LEVELS = { debug = true, info = true, notice = true, warning = true, error = true, critical = true,
                 alert = true, emergency = true }

-- handler(c, respond, opts) -> on_message(msg) -> stop?
-- respond(msg) sends an answer back on the era's channel; without it (the
-- modern era, initialize) the server's requests go unanswered.
-- opts = {token, progress(params)?, park?}: token names this call's
-- progress; progress sees its notifications/progress (besides the host's
-- events); park: a request the host answers later (a continuation) stops
-- the exchange with "park" instead of an answer (mcp.legacy's resumable
-- calls), the request kept in opts.parked.
function M.handler(c, respond, opts)
  opts = opts or {}
  local token = opts.token
  return function(m)
    local kind = jsonrpc.kind(m)
    if kind == "notification" then
      local p = type(m.params) == "table" and m.params or nil
      if M.LIST_CHANGED[m.method] then M.mark_stale(c.key)
      elseif m.method == "notifications/progress" and p and token ~= nil and p.progressToken == token then
        if opts.progress then
          local ok, e = pcall(opts.progress, p)
          if not ok then log.debug("mcp: progress callback failed:", tostring(e)) end
        end
        if type(p.progress) == "number" then
          emit(c, { type = "progress", progress = p.progress,
                    total = type(p.total) == "number" and p.total or nil,
                    message = type(p.message) == "string" and p.message:sub(1, 4096) or nil })
        end
      elseif m.method == "notifications/message" and p and LEVELS[p.level] then
        emit(c, { type = "log", level = p.level, logger = type(p.logger) == "string" and p.logger or nil,
                  data = p.data })
      end
    elseif kind == "request" and respond then
      if m.method == "ping" then respond(jsonrpc.result(m.id, json.object())); return false end
      if not input.METHODS[m.method] then
        respond(jsonrpc.error_response(m.id, jsonrpc.METHOD_NOT_FOUND, "Method not found: " .. tostring(m.method)))
        return false
      end
      local how, a, b = input.answer_request(c, m, opts.park)
      if how == "park" then
        opts.parked = m
        return "park"
      elseif how == "result" then respond(jsonrpc.result(m.id, a))
      else respond(jsonrpc.error_response(m.id, a, b)) end
    end
    return false
  end
end

return M
