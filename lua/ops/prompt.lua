-- ops/prompt: an assistant gets a prompt from one of its MCP servers, after
-- the same checks as a tool call, with the server's credentials.
local registry = require "registry"
local errors = require "errors"
local json = require "json"
local assistants = require "assistants"
local connection = require "connection"
local continuations = require "continuations"

registry.op {
  name = "prompt.get", role = "member", module = "mcp",
  summary = "Get a prompt from one of an assistant's MCP servers",
  args = { assistant = { type = "string", required = true, max = 200 },
           server = { type = "string", required = true, max = 200 },
           name = { type = "string", required = true, min = 1, max = 500 },
           arguments = { type = "object" } },
  cli = { positional = { "assistant", "server", "name" } },
  handler = function(ctx, args)
    local asst = assistants.get(ctx.actor, args.assistant, "assistant")
    local s = assistants.usable_server(ctx.actor, asst, args.server)
    local argv = args.arguments or json.object()
    for k, v in pairs(argv) do
      if type(v) ~= "string" then errors.raise("invalid_argument", "prompt arguments must be strings", "arguments." .. tostring(k)) end
    end
    local r = connection.run(ctx, s, function(c) return c:get_prompt(args.name, argv, { resumable = true }) end)
    return continuations.finish(ctx, s, "prompt", asst.id, args.name, r)
  end,
}

-- prompt.continue: a prompts/get that waits for the user's answers carries on
registry.op {
  name = "prompt.continue", role = "member", module = "mcp",
  summary = "Carry on getting a prompt that waits for the user's answers (its continuation)",
  args = { continuation = { type = "string", required = true, min = 1, max = 200 },
           input_responses = { type = "object", required = true } },
  cli = { positional = { "continuation", "input_responses" } },
  handler = function(ctx, args)
    local row, state = continuations.take(ctx, "prompt", args.continuation)
    local asst = assistants.get(ctx.actor, row.assistant_id, "continuation")
    local s = assistants.usable_server(ctx.actor, asst, row.server_id)
    local answers = continuations.answers(state, args.input_responses)
    continuations.consume(ctx, row)
    local r = connection.run(ctx, s, function(c) return c:resume(state, answers) end)
    return continuations.finish(ctx, s, "prompt", asst.id, row.target, r)
  end,
}
