-- ops/resource: an assistant reads a resource from one of its MCP servers,
-- after the same checks as a tool call, with the server's credentials.
local registry = require "registry"
local assistants = require "assistants"
local connection = require "connection"

registry.op {
  name = "resource.read", role = "member", module = "mcp",
  summary = "Read a resource from one of an assistant's MCP servers",
  args = { assistant = { type = "string", required = true, max = 200 },
           server = { type = "string", required = true, max = 200 },
           uri = { type = "string", required = true, min = 1, max = 8192 } },
  cli = { positional = { "assistant", "server", "uri" } },
  handler = function(ctx, args)
    local asst = assistants.get(ctx.actor, args.assistant, "assistant")
    local s = assistants.usable_server(ctx.actor, asst, args.server)
    return connection.run(ctx, s, function(c) return c:read_resource(args.uri) end)
  end,
}
