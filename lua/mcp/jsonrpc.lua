-- mcp.jsonrpc: JSON-RPC 2.0 messages for the MCP client: building requests,
-- classifying what a server sends, and mapping errors onto engine codes.
local json = require "json"
local errors = require "errors"

local M = {}

-- Error codes the 2026-07-28 revision defines; a 4xx carrying one of these
-- comes from a modern server (never fall back to the handshake).
M.HEADER_MISMATCH = -32020
M.MISSING_CAPABILITY = -32021
M.UNSUPPORTED_VERSION = -32022
M.METHOD_NOT_FOUND = -32601
M.MODERN_ERRORS = { [-32020] = true, [-32021] = true, [-32022] = true }

local function is_set(v) return v ~= nil and v ~= json.null end
M.is_set = is_set

-- Request ids: unique across the Lua states sharing a legacy session.
local id_base, id_n = math.random(1, 1 << 40), 0
function M.next_id()
  id_n = id_n + 1
  return id_base + id_n
end

function M.request(id, method, params)
  return { jsonrpc = "2.0", id = id, method = method, params = params or json.object() }
end

function M.notification(method, params)
  return { jsonrpc = "2.0", method = method, params = params }
end

function M.result(id, result)
  return { jsonrpc = "2.0", id = id, result = result }
end

function M.error_response(id, code, message)
  return { jsonrpc = "2.0", id = id, error = { code = code, message = message } }
end

-- kind(msg) -> "response" | "request" | "notification" | nil (not a message)
function M.kind(msg)
  if type(msg) ~= "table" or json.is_array(msg) then return nil end
  local id = msg.id
  local id_ok = type(id) == "string" or math.type(id) == "integer"
  if type(msg.method) == "string" then
    if id == nil then return "notification" end
    return id_ok and "request" or nil
  end
  if msg.result ~= nil or type(msg.error) == "table" then
    if id_ok or id == json.null or id == nil then return "response" end
  end
  return nil
end

-- parse(text [, lazy]) -> list of messages, their kinds (kind() of each, at
-- the same index) | raises upstream_error. A batch (array) is split;
-- anything that is not a JSON-RPC message is refused.
-- lazy: a path of object keys (json.decode's lazy option) whose array is
-- left as a lazy array, its items decoded as they are read (json.items): a
-- list page's items need not all exist at once (mcp.paging).
-- M.bytes_parsed: the JSON text this Lua state has parsed from servers so
-- far (mcp.paging bounds a whole list by it without encoding it again)
M.bytes_parsed = 0

-- (json.messages decodes and classifies in one pass, as kind() does)
function M.parse(text, lazy)
  if type(text) ~= "string" then errors.raise("upstream_error", "expected a JSON-RPC message") end
  M.bytes_parsed = M.bytes_parsed + #text
  local ok, list, kinds = pcall(json.messages, text, lazy and { lazy = lazy } or nil)
  if not ok then
    errors.raise("upstream_error", "the server sent invalid JSON", nil, { reason = "invalid_json" })
  end
  if kinds == "empty" then
    errors.raise("upstream_error", "the server sent an empty JSON-RPC batch", nil, { reason = "invalid_message" })
  elseif not list then
    errors.raise("upstream_error", "the server sent something that is not a JSON-RPC message", nil, { reason = "invalid_message" })
  end
  return list, kinds
end

-- same_id(a, b): ids compare by type and value (1 and "1" differ).
function M.same_id(a, b)
  return a ~= nil and a ~= json.null and math.type(a) == math.type(b) and a == b
end

-- rpc_error(err, http_status) -> raises upstream_error with extra.rpc_error
function M.raise_rpc(e, status, method)
  local code = math.type(e.code) == "integer" and e.code or nil
  local msg = type(e.message) == "string" and e.message or "error"
  local data = e.data
  if data == json.null then data = nil end
  errors.raise("upstream_error", (method and (method .. ": ") or "") .. "server error " ..
    tostring(code) .. ": " .. msg:sub(1, 500), nil, {
    reason = "rpc_error",
    rpc_error = { code = code, message = msg, data = data },
    http_status = status,
  })
end

-- body_error(text) -> error object when the text is a JSON-RPC error response
function M.body_error(text)
  if type(text) ~= "string" or text == "" then return nil end
  local ok, v = pcall(json.decode, text)
  if not ok or type(v) ~= "table" or json.is_array(v) then return nil end
  if type(v.error) == "table" and math.type(v.error.code) == "integer" then return v.error end
  return nil
end

return M
