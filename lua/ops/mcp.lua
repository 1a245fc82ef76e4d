-- ops/mcp: the system administrator's MCP protocol console: runs client steps
-- against a URL, or against a stored server as a tenant user (diagnostics, conformance).
local registry = require "registry"
local json = require "json"
local crypto = require "crypto"
local client = require "mcp.client"
local steps = require "mcp.steps"
local auth = require "auth"
local model = require "model"
local connection = require "connection"

local SESSION_STEPS = { "discover", "list", "call_tool", "read_resource", "get_prompt", "ping", "close", "listen", "stale", "evict" }

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
    return steps.run(args, SESSION_STEPS, function(fn) return fn(c) end)
  end,
}

local USER_STEPS = { "discover", "list", "call_tool", "read_resource", "get_prompt", "close" }

registry.op {
  name = "mcp.user_session", role = "system",
  summary = "Run MCP client steps against a stored server as a tenant user, with that user's credentials (conformance and diagnostics)",
  args = {
    tenant = { type = "string", required = true, max = 200 },
    user = { type = "string", required = true, max = 200 },
    server = { type = "string", required = true, max = 200 },
    steps = { type = "array", required = true },
    stop_on_error = { type = "boolean" },
  },
  handler = function(ctx, args)
    local uctx = { op = ctx.op, actor = auth.resolve({ tenant = args.tenant, user = args.user }) }
    local s = model.ref(uctx.actor, "servers", args.server, "server")
    -- each step on a connection opened with the user's credentials, through
    -- the call runner tool.call uses (its auth type's guard: for OAuth, refresh
    -- once on 401, step-up marking on 403)
    return steps.run(args, USER_STEPS, function(fn) return connection.run(uctx, s, fn) end)
  end,
}
