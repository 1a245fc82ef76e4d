-- ops/capabilities: Refresh capabilities, what a server offers, and the
-- approval of changed tool definitions (definition pinning).
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local discovery = require "discovery"

local function server_saved(ctx, s)
  local r = discovery.refresh(ctx, s)
  local v = model.server_view(ctx.actor, store.get(ctx.actor, "servers", s.id))
  v.discovery = r
  return v
end
-- saving a URL runs discovery (spec step 2)
registry.hooks.server_saved = server_saved

registry.op {
  name = "server.refresh", role = "admin", mutating = true, module = "mcp",
  summary = "Refresh capabilities: re-discover tools, resources, templates and prompts",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    ctx.target = s.id
    if s.url == nil or s.url == json.null then
      errors.raise("invalid_argument", "Server URL is not set: edit the MCP server and provide a valid HTTPS URL", "id")
    end
    local r = discovery.refresh(ctx, s)
    if not r.ok then errors.raise(r.error.code, "refresh failed: " .. r.error.message, nil, { reason = r.error.reason }) end
    return r
  end,
}

local function cap_view(c)
  local v = { name = c.name, definition = c.definition, status = c.status }
  if c.status == "pending" then v.approved_definition = c.approved_definition end
  return v
end

registry.op {
  name = "server.capabilities", role = "member", module = "mcp",
  summary = "The server's discovered tools, resources, resource templates and prompts",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    local out = { server = s.id, status = s.capabilities_status or "not_discovered",
                  discovered_at = model.nullable(s.discovered_at),
                  error = model.nullable(s.discovery_error),
                  tools = json.array(), resources = json.array(),
                  resource_templates = json.array(), prompts = json.array(), pending = json.array() }
    local cursor
    repeat
      local page = store.list(ctx.actor, "capabilities", { where = { server_id = s.id }, limit = 500, cursor = cursor })
      for _, c in ipairs(page.items) do
        local list = out[c.kind .. "s"]
        list[#list + 1] = cap_view(c)
        if c.status == "pending" then out.pending[#out.pending + 1] = c.name end
      end
      cursor = page.next_cursor
    until cursor == nil or cursor == json.null
    for _, k in ipairs({ "tools", "resources", "resource_templates", "prompts" }) do
      table.sort(out[k], function(x, y) return x.name < y.name end)
    end
    return out
  end,
}

registry.op {
  name = "tool.approve", role = "admin", mutating = true, module = "mcp",
  summary = "Approve a tool's changed definition so calls to it are allowed again",
  args = { server = { type = "string", required = true, max = 200 },
           tool = { type = "string", required = true, max = 500 } },
  cli = { positional = { "server", "tool" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.server, "server")
    ctx.target = s.id
    local c = store.find(ctx.actor, "capabilities", { server_id = s.id, kind = "tool", name = args.tool })
    if not c then errors.raise("not_found", "tool '" .. args.tool .. "' not found on server '" .. s.name .. "'", "tool") end
    if c.status ~= "pending" then return { server = s.id, tool = c.name, status = c.status } end
    store.update(ctx.actor, "capabilities", c.id,
      { approved_definition = c.definition, approved_hash = c.hash, status = "approved" })
    return { server = s.id, tool = c.name, status = "approved" }
  end,
}
