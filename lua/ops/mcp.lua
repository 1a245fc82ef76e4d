-- ops/mcp: the system administrator's MCP protocol console: runs client steps
-- against a URL (diagnostics, scenario tests, the conformance client).
local registry = require "registry"
local json = require "json"
local crypto = require "crypto"
local client = require "mcp.client"
local steps = require "mcp.steps"

local STEPS = { "discover", "list", "call_tool", "read_resource", "get_prompt", "ping", "close", "listen", "stale", "evict" }

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
  handler = function(ctx, args)
    local key = args.key or ("debug:" .. crypto.sha256(args.url .. "\0" .. json.encode(args.headers or json.object(), { sort = true })))
    local c = client.new(ctx, { key = key, url = args.url, headers = args.headers, era = args.era,
      timeout_ms = args.timeout_ms or 30000, max_bytes = args.max_bytes })
    return steps.run(args, STEPS, function(fn) return fn(c) end)
  end,
}
