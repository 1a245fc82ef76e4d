-- ops/assistant: assistants (in a space or personal) and their MCP tools
-- (spec step 4), with security classification enforced on attach and use.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local assistants = require "assistants"

registry.op {
  name = "assistant.create", role = "member", mutating = true,
  summary = "Create an assistant in a space, or a personal one when no space is given",
  args = { name = { type = "string", required = true, min = 1, max = 200 },
           space = { type = "string", max = 200 } },
  cli = { positional = { "name" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local space_id = json.null
    if args.space then space_id = model.ref(a, "spaces", args.space, "space").id end
    local row = store.insert(a, "assistants", { name = args.name, space_id = space_id, owner_user_id = a.user_id })
    ctx.target = row.id
    return model.assistant_view(a, row)
  end,
}

registry.op {
  name = "assistant.get", role = "member",
  summary = "Show an assistant",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { words = "assistant show", positional = { "id" } },
  handler = function(ctx, args)
    return model.assistant_view(ctx.actor, assistants.get(ctx.actor, args.id, "id"))
  end,
}

registry.op {
  name = "assistant.list", role = "member",
  summary = "List the assistants the caller can see (space assistants and their own)",
  args = { limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    local a = ctx.actor
    local page = store.list(a, "assistants", model.paging(args))
    local items = json.array()
    for _, row in ipairs(page.items) do
      if assistants.visible(a, row) then items[#items + 1] = model.assistant_view(a, row) end
    end
    return { items = items, next_cursor = page.next_cursor or json.null }
  end,
}

-- managed_pair(ctx, args) -> actor, assistant, server for attach/detach:
-- an assistant the actor may change, and a server of the tenant
local function managed_pair(ctx, args)
  local a = ctx.actor
  local asst = assistants.get(a, args.assistant, "assistant")
  assistants.check_manage(a, asst)
  local s = model.ref(a, "servers", args.server, "server")
  ctx.target = asst.id
  return a, asst, s
end

registry.op {
  name = "assistant.attach", role = "member", mutating = true, module = "mcp",
  summary = "Attach an enabled MCP server tool to an assistant",
  args = { assistant = { type = "string", required = true, max = 200 },
           server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "assistant", "server" } },
  handler = function(ctx, args)
    local a, asst, s = managed_pair(ctx, args)
    local ok, code, reason = assistants.usable(a, asst, s)
    if not ok then errors.raise(code, reason, "server") end
    return store.tx(function()
      if not store.find(a, "attachments", { assistant_id = asst.id, server_id = s.id }) then
        store.insert(a, "attachments", { assistant_id = asst.id, server_id = s.id })
      end
      return { assistant = asst.id, server = s.id, attached = true }
    end)
  end,
}

registry.op {
  name = "assistant.detach", role = "member", mutating = true, module = "mcp",
  summary = "Detach an MCP server tool from an assistant",
  args = { assistant = { type = "string", required = true, max = 200 },
           server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "assistant", "server" } },
  handler = function(ctx, args)
    local a, asst, s = managed_pair(ctx, args)
    local att = store.find(a, "attachments", { assistant_id = asst.id, server_id = s.id })
    if not att then errors.raise("not_found", "server '" .. s.name .. "' is not attached to this assistant", "server") end
    store.delete(a, "attachments", att.id)
    return { assistant = asst.id, server = s.id, attached = false }
  end,
}

-- tools_of(a, asst) -> usable tools (engine-unique names), servers summary
local function tools_of(a, asst)
  local attached, entries = assistants.entries(a, asst)
  local servers = json.array()
  for _, e in ipairs(attached) do
    local s = e.server
    servers[#servers + 1] = { id = s.id, name = s.name, usable = e.usable,
                              reason = model.nullable(e.reason),
                              capabilities_status = s.capabilities_status or "not_discovered" }
  end
  local tools = json.array()
  for _, en in ipairs(entries) do
    if en.usable then
      local def = en.cap.definition
      if en.cap.status == "pending" then
        -- the model keeps seeing the approved definition until an admin approves
        def = en.cap.approved_definition or def
      end
      def = def or {}
      tools[#tools + 1] = {
        name = en.name, tool = en.cap.name,
        server = { id = en.server.id, name = en.server.name },
        title = model.nullable(def.title),
        description = model.nullable(def.description),
        input_schema = def.inputSchema or json.object(),
        output_schema = model.nullable(def.outputSchema),
        annotations = model.nullable(def.annotations),
        pending_approval = en.cap.status == "pending",
      }
    end
  end
  return tools, servers
end

registry.op {
  name = "assistant.tools", role = "member", module = "mcp",
  summary = "The MCP tools an assistant may use, with names unique across its servers",
  args = { assistant = { type = "string", required = true, max = 200 } },
  cli = { positional = { "assistant" } },
  handler = function(ctx, args)
    local asst = assistants.get(ctx.actor, args.assistant, "assistant")
    local tools, servers = tools_of(ctx.actor, asst)
    return { assistant = asst.id, tools = tools, servers = servers }
  end,
}
