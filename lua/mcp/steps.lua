-- mcp.steps: the MCP step runner behind ops mcp.session and mcp.user_session: named
-- client steps run in order, each answered by a row with its result or its error.
local errors = require "errors"
local json = require "json"
local client = require "mcp.client"

local M = {}

-- step name -> function(c, st, progress) -> result [, meta]
local STEP = {
  discover = function(c) return c:discover() end,
  list = function(c, st) return c:list(st.kind or "tools") end,
  call_tool = function(c, st, progress)
    return c:call_tool(st.name, st.arguments, { timeout_ms = st.timeout_ms, progress = progress })
  end,
  read_resource = function(c, st) return c:read_resource(st.uri) end,
  get_prompt = function(c, st) return c:get_prompt(st.name, st.arguments) end,
  ping = function(c) c:ping(); return json.object() end,
  close = function(c) c:close(); return json.object() end,
  listen = function(c, st) return c:listen({ duration_ms = st.timeout_ms, until_first = st.until_first }) end,
  stale = function(c) return { stale = client.stale(c.key) } end,
  evict = function(c) client.evict(c.key); return json.object() end,
}

local function err_table(e)
  if errors.is(e) then
    local out = {}
    for k, v in pairs(e) do if type(v) ~= "function" then out[k] = v end end
    return out
  end
  return { code = "internal", message = tostring(e) }
end

-- run(args, names, with) -> {results = [{step, era?, protocol_version?,
-- result|error, meta?, progress?}]}
-- args = {steps, stop_on_error?}; names: the steps the op offers, in order;
-- with(fn) -> fn(client): runs a step on the op's client (opened how and as
-- whom the op decides) and returns its result.
function M.run(args, names, with)
  local offered = {}
  for _, n in ipairs(names) do offered[n] = true end
  local out = json.array()
  for i, st in ipairs(args.steps) do
    if type(st) ~= "table" or not offered[st.step] then
      errors.raise("invalid_argument", "steps[" .. i .. "].step must be one of " .. table.concat(names, ", "), "steps")
    end
    local row = { step = st.step }
    local progress = json.array()
    local on_progress = st.progress and function(p) progress[#progress + 1] = p end or nil
    local used
    local ok, r = pcall(with, function(c)
      used = c
      local res, meta = STEP[st.step](c, st, on_progress)
      row.meta = meta
      return res
    end)
    if used then row.era, row.protocol_version = used.era, used.version end
    if ok then row.result = r else row.error = err_table(r) end
    if #progress > 0 then row.progress = progress end
    out[#out + 1] = row
    if not ok and args.stop_on_error then break end
  end
  return { results = out }
end

return M
