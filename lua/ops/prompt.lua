-- ops/prompt: an assistant gets a prompt from one of its MCP servers, after
-- the same checks as a tool call, with the server's credentials.
local registry = require "registry"
local errors = require "errors"
local json = require "json"
local assistants = require "assistants"
local connection = require "connection"

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
    return connection.run(ctx, s, function(c) return c:get_prompt(args.name, argv) end)
  end,
}
