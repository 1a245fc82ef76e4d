-- ops/call: an assistant's use of its MCP servers: tool calls, resource reads
-- and prompts, routed with the server's credentials after every check.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local log = require "log"
local assistant = require "ops.assistant"
local connection = require "connection"

-- attached server usable by this assistant, or raise the precise reason
local function usable_server(a, asst, ref)
  local s = model.ref(a, "servers", ref, "server")
  if not store.find(a, "attachments", { assistant_id = asst.id, server_id = s.id }) then
    errors.raise("not_found", "server '" .. s.name .. "' is not attached to this assistant", "server")
  end
  local ok, code, reason = assistant.usable(a, asst, s)
  if not ok then errors.raise(code, reason, "server") end
  return s
end

-- OAuth servers: a 401 refreshes the user's token once and retries; a 403
-- insufficient_scope marks the connection for step-up (oauth.guard).
local function run(ctx, s, fn)
  return require("oauth.guard").run(ctx, s, function()
    local c, key = connection.open(ctx, s)
    local result = fn(c)
    connection.note_stale(ctx, s, key)
    return result
  end)
end

registry.op {
  name = "tool.call", role = "member", module = "mcp",
  summary = "Call one of an assistant's MCP tools with arguments",
  args = { assistant = { type = "string", required = true, max = 200 },
           tool = { type = "string", required = true, max = 200 },
           arguments = { type = "object" },
           timeout_ms = { type = "integer", min = 100, max = connection.MAX_TIMEOUT_MS } },
  cli = { words = "call", positional = { "assistant", "tool", "arguments" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local asst = assistant.get_assistant(a, args.assistant, "assistant")
    local _, entries = assistant.entries(a, asst)
    local en
    for _, e in ipairs(entries) do if e.name == args.tool then en = e end end
    if not en then
      errors.raise("not_found", "assistant '" .. asst.name .. "' has no tool '" .. args.tool .. "' (see assistant.tools)", "tool")
    end
    if not en.usable then errors.raise(en.code, en.reason, "tool") end
    if en.cap.status == "pending" then
      errors.raise("forbidden", "tool '" .. en.cap.name .. "' on server '" .. en.server.name ..
        "' changed its definition and awaits a tenant admin's approval (tool.approve)", "tool")
    end
    local s = store.get(a, "servers", en.server.id)
    local timeout = connection.timeout_of(s)
    if args.timeout_ms and args.timeout_ms < timeout then timeout = args.timeout_ms end
    log.info("tool.call", asst.id, s.id, en.cap.name)
    return run(ctx, s, function(c)
      return c:call_tool(en.cap.name, args.arguments or json.object(), { timeout_ms = timeout })
    end)
  end,
}

registry.op {
  name = "resource.read", role = "member", module = "mcp",
  summary = "Read a resource from one of an assistant's MCP servers",
  args = { assistant = { type = "string", required = true, max = 200 },
           server = { type = "string", required = true, max = 200 },
           uri = { type = "string", required = true, min = 1, max = 8192 } },
  cli = { positional = { "assistant", "server", "uri" } },
  handler = function(ctx, args)
    local asst = assistant.get_assistant(ctx.actor, args.assistant, "assistant")
    local s = usable_server(ctx.actor, asst, args.server)
    return run(ctx, s, function(c) return c:read_resource(args.uri) end)
  end,
}

registry.op {
  name = "prompt.get", role = "member", module = "mcp",
  summary = "Get a prompt from one of an assistant's MCP servers",
  args = { assistant = { type = "string", required = true, max = 200 },
           server = { type = "string", required = true, max = 200 },
           name = { type = "string", required = true, min = 1, max = 500 },
           arguments = { type = "object" } },
  cli = { positional = { "assistant", "server", "name" } },
  handler = function(ctx, args)
    local asst = assistant.get_assistant(ctx.actor, args.assistant, "assistant")
    local s = usable_server(ctx.actor, asst, args.server)
    local argv = args.arguments or json.object()
    for k, v in pairs(argv) do
      if type(v) ~= "string" then errors.raise("invalid_argument", "prompt arguments must be strings", "arguments." .. tostring(k)) end
    end
    return run(ctx, s, function(c) return c:get_prompt(args.name, argv) end)
  end,
}
