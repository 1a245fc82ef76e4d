-- ops/mcp: the system administrator's MCP protocol console: runs client steps
-- against a URL (diagnostics, scenario tests, the conformance client).
local registry = require "registry"
local errors = require "errors"
local json = require "json"
local crypto = require "crypto"

local STEPS = { discover = true, list = true, call_tool = true, read_resource = true, get_prompt = true,
                ping = true, close = true, listen = true, stale = true, evict = true }

local function err_table(e)
  if errors.is(e) then
    local out = {}
    for k, v in pairs(e) do if type(v) ~= "function" then out[k] = v end end
    return out
  end
  return { code = "internal", message = tostring(e) }
end

-- run_steps(ctx, args) -> {results = [{step, result|error, ...}]}
local function run_steps(ctx, args)
  local client = require "mcp.client"
  local key = args.key or ("debug:" .. crypto.sha256(args.url .. "\0" .. json.encode(args.headers or json.object(), { sort = true })))
  local c = client.new(ctx, { key = key, url = args.url, headers = args.headers, era = args.era,
    timeout_ms = args.timeout_ms or 30000, max_bytes = args.max_bytes })
  local out = json.array()
  for i, st in ipairs(args.steps) do
    if type(st) ~= "table" or not STEPS[st.step] then
      errors.raise("invalid_argument", "steps[" .. i .. "].step must be one of discover, list, call_tool, read_resource, get_prompt, ping, close, listen, stale, evict", "steps")
    end
    local progress = json.array()
    local ok, r, meta = pcall(function()
      if st.step == "discover" then return c:discover()
      elseif st.step == "list" then return c:list(st.kind or "tools")
      elseif st.step == "call_tool" then
        return c:call_tool(st.name, st.arguments, { timeout_ms = st.timeout_ms,
          progress = st.progress and function(p) progress[#progress + 1] = p end or nil })
      elseif st.step == "read_resource" then return c:read_resource(st.uri)
      elseif st.step == "get_prompt" then return c:get_prompt(st.name, st.arguments)
      elseif st.step == "ping" then c:ping(); return json.object()
      elseif st.step == "close" then c:close(); return json.object()
      elseif st.step == "listen" then return c:listen({ duration_ms = st.timeout_ms, until_first = st.until_first })
      elseif st.step == "stale" then return { stale = client.stale(key) }
      elseif st.step == "evict" then client.evict(key); return json.object()
      end
    end)
    local row = { step = st.step, era = c.era, protocol_version = c.version }
    if ok then row.result = r; row.meta = meta else row.error = err_table(r) end
    if #progress > 0 then row.progress = progress end
    out[#out + 1] = row
    if not ok and args.stop_on_error then break end
  end
  return { results = out }
end

registry.op {
  name = "mcp.session", role = "system",
  summary = "Run MCP client steps against a server URL (protocol diagnostics)",
  args = {
    url = { type = "string", required = true, max = 2048 },
    headers = { type = "object" },
    era = { type = "string", enum = { "modern", "legacy", "sse" } },
    key = { type = "string", max = 300 },
    timeout_ms = { type = "integer", min = 100, max = 600000 },
    max_bytes = { type = "integer", min = 1024, max = 16 * 1024 * 1024 },
    steps = { type = "array", required = true },
    stop_on_error = { type = "boolean" },
  },
  handler = run_steps,
}

return { run_steps = run_steps }
