-- ops/assistant: assistants (in a space or personal) and their MCP tools
-- (spec step 4), with security classification enforced on attach and use.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local toolnames = require "toolnames"
local json = require "json"

local M = {}

-- An assistant the actor may see: space assistants are the tenant's;
-- personal ones only their owner's.
local function visible(a, row)
  if row.space_id ~= nil and row.space_id ~= json.null then return true end
  return row.owner_user_id == a.user_id
end

function M.get_assistant(a, ref, field)
  local row = store.find(a, "assistants", { id = ref })
  if not row or not visible(a, row) then
    errors.raise("not_found", "assistant '" .. tostring(ref) .. "' not found", field)
  end
  return row
end

-- May the actor change this assistant? Its owner, or a tenant admin for
-- space assistants.
local function check_manage(a, row)
  if row.owner_user_id == a.user_id then return end
  if a.role == "admin" and row.space_id ~= nil and row.space_id ~= json.null then return end
  errors.raise("forbidden", "only the assistant's owner or a tenant admin can change assistant '" .. row.name .. "'")
end

-- requirement(a, assistant) -> nil (personal), or {space, need} where need
-- is the space's classification row (nil: none), or {missing=true}
local function requirement(a, asst)
  if asst.space_id == nil or asst.space_id == json.null then return nil end
  local sp = store.find(a, "spaces", { id = asst.space_id })
  if not sp then return { missing = true } end
  return { space = sp, need = model.classification_of(a, sp.classification_id) }
end

-- judge(req, s) -> true | false, code, reason ; s = {name, enabled,
-- level, cname}: the same rules at attach time and at every use: enabled for
-- the tenant, and the server's classification meets the space's requirement.
local function judge(req, s)
  if not s.enabled then
    return false, "forbidden", "server '" .. s.name .. "' is not enabled as a tool for this tenant"
  end
  if not req then return true end
  if req.missing then return false, "not_found", "the assistant's space no longer exists" end
  local need, sp = req.need, req.space
  if not need then return true end
  if s.level == nil then
    return false, "forbidden", string.format(
      "server '%s' has no security classification; space '%s' requires '%s' (level %d)",
      s.name, sp.name, need.name, need.level)
  end
  if s.level < need.level then
    return false, "forbidden", string.format(
      "server '%s' is classified '%s' (level %d), below space '%s' requirement '%s' (level %d)",
      s.name, s.cname, s.level, sp.name, need.name, need.level)
  end
  return true
end

-- usable(a, assistant, server_row) -> true | false, code, reason
function M.usable(a, asst, s)
  local have = model.classification_of(a, s.classification_id)
  return judge(requirement(a, asst), {
    name = s.name, enabled = store.find(a, "enablements", { server_id = s.id }) ~= nil,
    level = have and have.level, cname = have and have.name })
end

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
    return model.assistant_view(ctx.actor, M.get_assistant(ctx.actor, args.id, "id"))
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
      if visible(a, row) then items[#items + 1] = model.assistant_view(a, row) end
    end
    return { items = items, next_cursor = page.next_cursor or json.null }
  end,
}

-- managed_pair(ctx, args) -> actor, assistant, server for attach/detach:
-- an assistant the actor may change, and a server of the tenant
local function managed_pair(ctx, args)
  local a = ctx.actor
  local asst = M.get_assistant(a, args.assistant, "assistant")
  check_manage(a, asst)
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
    local ok, code, reason = M.usable(a, asst, s)
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

local function is_set(v) return v ~= nil and v ~= json.null end

-- attached(a, asst) -> list of {server={id, name, capabilities_status},
-- usable, code, reason}; one query for all attached servers
function M.attached(a, asst)
  local req = requirement(a, asst)
  local out = {}
  for _, r in ipairs(store.query(a, "assistant_servers", { assistant_id = asst.id })) do
    local ok, code, reason = judge(req, { name = r.server_name, enabled = r.enabled,
      level = is_set(r.classification_level) and r.classification_level or nil, cname = r.classification_name })
    out[#out + 1] = { server = { id = r.server_id, name = r.server_name,
                                 capabilities_status = r.capabilities_status },
                      usable = ok, code = code, reason = reason }
  end
  return out
end

-- entries(a, asst) -> attached servers and every tool entry {server, cap,
-- usable, code, reason, name}. Names are assigned over all attached servers,
-- usable or not, so a tool keeps its name when another server changes state.
function M.entries(a, asst)
  local servers = M.attached(a, asst)
  local by_id = {}
  for _, e in ipairs(servers) do by_id[e.server.id] = e end
  local entries = {}
  for _, r in ipairs(store.query(a, "assistant_tools", { assistant_id = asst.id })) do
    local e = by_id[r.server_id]
    if e then
      entries[#entries + 1] = { server = e.server, usable = e.usable, code = e.code, reason = e.reason,
        cap = { id = r.capability_id, name = r.name, definition = r.definition, status = r.status } }
    end
  end
  table.sort(entries, function(x, y)
    if x.server.name ~= y.server.name then return x.server.name < y.server.name end
    return x.cap.name < y.cap.name
  end)
  local names = toolnames.assign(entries)
  for i, en in ipairs(entries) do en.name = names[i] end
  return servers, entries
end

-- tools_of(a, asst) -> usable tools (engine-unique names), servers summary
function M.tools_of(a, asst)
  local attached, entries = M.entries(a, asst)
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
        local row = store.find(a, "capabilities", { id = en.cap.id })
        def = row and row.approved_definition or def
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
    local asst = M.get_assistant(ctx.actor, args.assistant, "assistant")
    local tools, servers = M.tools_of(ctx.actor, asst)
    return { assistant = asst.id, tools = tools, servers = servers }
  end,
}

return M
