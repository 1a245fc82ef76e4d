-- mcp_module: the MCP module is enabled per tenant by the system
-- administrator (spec prerequisites); switched off, every MCP op of the
-- tenant is refused with a message saying whom to ask, and nothing changes.
local t = mcplink.setup { tenant = "acme", users = { ann = "admin", mo = "member" } }
local other = mcplink.setup { tenant = "globex", users = { gil = "admin" } }
local sys = t.system
local s = t.ann:must("server.create", { name = "crm" })
local bot = t.mo:must("assistant.create", { name = "bot" })

local r, e = sys:op("tenant.update", { id = "acme", settings = { mcp_enabled = "no" } })
err_is(r, e, "invalid_argument", "mcp_enabled must be a boolean")
r, e = sys:op("tenant.update", { id = "acme", settings = { colour = "blue" } })
err_is(r, e, "invalid_argument", "unknown tenant settings are refused")
is(sys:must("tenant.update", { id = "acme", settings = { mcp_enabled = false } }).settings.mcp_enabled, false,
   "the system administrator switches the module off")
r, e = t.ann:op("tenant.update", { id = "acme", settings = { mcp_enabled = true } })
err_is(r, e, "forbidden", "a tenant admin cannot switch it back on")

local calls = {
  { t.ann, "server.create", { name = "x" } },
  { t.ann, "server.update", { id = s.id, description = "changed" } },
  { t.ann, "server.list", {} },
  { t.mo, "server.get", { id = s.id } },
  { t.ann, "tool.enable", { server = s.id } },
  { t.mo, "tool.list", {} },
  { t.mo, "assistant.attach", { assistant = bot.id, server = s.id } },
  { t.mo, "assistant.tools", { assistant = bot.id } },
  { t.mo, "tool.call", { assistant = bot.id, tool = "x", arguments = {} } },
  { t.mo, "server.validate", { id = s.id } },
  { t.mo, "oauth.status", { server = s.id } },
}
for _, c in ipairs(calls) do
  r, e = c[1]:op(c[2], c[3])
  ok(r == nil and e.code == "forbidden" and tostring(e.message):find("not enabled for tenant 'acme'") ~= nil,
     c[2] .. " refused while the module is off")
end
like(e and e.message or "", "system administrator", "the message says whom to ask")
-- the rest of the tenant works, and other tenants are unaffected
ok(t.mo:must("assistant.create", { name = "still fine" }).id, "assistants are not part of the module")
ok(other.gil:must("server.create", { name = "crm" }).id, "another tenant keeps its module")
-- nothing changed while it was off
sys:must("tenant.update", { id = "acme", settings = { mcp_enabled = true } })
local got = t.ann:must("server.get", { id = s.id })
is(got.description, json.null, "the refused update changed nothing")
is(#t.ann:must("server.list", {}).items, 1, "the refused create made nothing")
ok(t.ann:must("server.create", { name = "y" }).id, "switched on again, MCP ops work")
done_testing()
