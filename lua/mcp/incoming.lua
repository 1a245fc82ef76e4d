-- mcp.incoming: what a server sends during a call besides the response, in every era:
-- notifications (list changed, progress) and its requests to the client.
local mcp = require "mcp"
local json = require "json"
local log = require "log"
local jsonrpc = require "mcp.jsonrpc"

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

-- The server's requests this client answers, by method: (params) -> result.
-- Any other (sampling, elicitation, roots) is not offered: "Method not found".
local ANSWERS = {
  ping = function() return json.object() end,
}

-- handler(c, respond, progress_token, progress) -> on_message(msg)
-- respond(msg) sends an answer back on the era's channel; without it (the
-- modern era, initialize) the server's requests go unanswered.
-- progress(params) sees the notifications/progress of progress_token.
function M.handler(c, respond, token, progress)
  return function(m)
    local kind = jsonrpc.kind(m)
    if kind == "notification" then
      if M.LIST_CHANGED[m.method] then M.mark_stale(c.key)
      elseif m.method == "notifications/progress" and progress and type(m.params) == "table"
        and token ~= nil and m.params.progressToken == token then
        local ok, e = pcall(progress, m.params)
        if not ok then log.debug("mcp: progress callback failed:", tostring(e)) end
      end
    elseif kind == "request" and respond then
      local answer = ANSWERS[m.method]
      if answer then respond(jsonrpc.result(m.id, answer(m.params)))
      else respond(jsonrpc.error_response(m.id, jsonrpc.METHOD_NOT_FOUND, "Method not found: " .. tostring(m.method))) end
    end
    return false
  end
end

return M
