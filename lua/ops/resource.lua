-- ops/resource: an assistant reads a resource from one of its MCP servers,
-- after the same checks as a tool call, with the server's credentials.
local registry = require "registry"
local assistants = require "assistants"
local connection = require "connection"
local continuations = require "continuations"

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
    local r = connection.run(ctx, s, function(c) return c:read_resource(args.uri, { resumable = true }) end)
    return continuations.finish(ctx, s, "resource", asst.id, args.uri, r)
  end,
}

-- resource.continue: a resources/read that waits for the user's answers carries on
registry.op {
  name = "resource.continue", role = "member", module = "mcp",
  summary = "Carry on reading a resource that waits for the user's answers (its continuation)",
  args = { continuation = { type = "string", required = true, min = 1, max = 200 },
           input_responses = { type = "object", required = true } },
  cli = { positional = { "continuation", "input_responses" } },
  handler = function(ctx, args)
    local row, state = continuations.take(ctx, "resource", args.continuation)
    local asst = assistants.get(ctx.actor, row.assistant_id, "continuation")
    local s = assistants.usable_server(ctx.actor, asst, row.server_id)
    local answers = continuations.answers(state, args.input_responses)
    continuations.consume(ctx, row)
    local r = connection.run(ctx, s, function(c) return c:resume(state, answers) end)
    return continuations.finish(ctx, s, "resource", asst.id, row.target, r)
  end,
}
