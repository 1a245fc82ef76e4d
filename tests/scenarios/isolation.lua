-- isolation: every op that takes an id, called by another tenant's admin and
-- member, gets not_found and changes nothing.
local a = mcplink.setup { tenant = "tenant-a", users = { admin_a = "admin", member_a = "member" } }
local b = mcplink.setup { tenant = "tenant-b", users = { admin_b = "admin", member_b = "member" } }
-- servers in these tests live on closed loopback ports: nothing leaves the machine
mcplink.must("settings.set", { allow_private_urls = true })

a.admin_a:must("classification.set", { name = "Internal", level = 1 })
local space = a.admin_a:must("space.create", { name = "S", classification = "Internal" })
local srv = a.admin_a:must("server.create", { name = "A server" })
a.admin_a:must("server.update", { id = srv.id, url = "https://127.0.0.1:1/mcp", classification = "Internal",
  auth_type = "api_key", api_key = "secret-a" })
a.admin_a:must("tool.enable", { server = srv.id })
local asst = a.admin_a:must("assistant.create", { name = "A bot", space = space.id })
a.admin_a:must("assistant.attach", { assistant = asst.id, server = srv.id })
b.admin_b:must("classification.set", { name = "Internal", level = 1 })

local before = json.encode(a.admin_a:must("server.get", { id = srv.id }), { sort = true })

local calls = {
  { "server.get", { id = srv.id } },
  { "server.get", { id = "A server" } },
  { "server.update", { id = srv.id, name = "stolen" } },
  { "server.update", { id = srv.id, url = "https://127.0.0.1:2/" } },
  { "server.delete", { id = srv.id } },
  { "tool.enable", { server = srv.id } },
  { "tool.disable", { server = srv.id } },
  { "assistant.get", { id = asst.id } },
  { "assistant.tools", { assistant = asst.id } },
  { "assistant.attach", { assistant = asst.id, server = srv.id } },
  { "assistant.detach", { assistant = asst.id, server = srv.id } },
  { "space.update", { id = space.id, name = "stolen" } },
  { "assistant.create", { name = "x", space = space.id } },
  { "server.refresh", { id = srv.id } },
  { "server.validate", { id = srv.id } },
  { "server.capabilities", { id = srv.id } },
  { "tool.approve", { server = srv.id, tool = "echo" } },
  { "tool.call", { assistant = asst.id, tool = "x", arguments = {} } },
  { "resource.read", { assistant = asst.id, server = srv.id, uri = "fixture://x" } },
  { "prompt.get", { assistant = asst.id, server = srv.id, name = "p" } },
  { "oauth.begin", { server = srv.id } },
  { "oauth.status", { server = srv.id } },
  { "oauth.disconnect", { server = srv.id } },
  { "oauth.discover", { server = srv.id } },
  { "oauth.refresh", { server = srv.id } },
}
local role = {}
for _, op in ipairs(mcplink.must("op.list", {}).ops) do role[op.name] = op.role end
for _, who in ipairs({ "admin_b", "member_b" }) do
  for _, c in ipairs(calls) do
    local r, e = b[who]:op(c[1], c[2])
    -- a member is refused an admin op by role, before any lookup: that says
    -- nothing about tenant-a; every op a member may call must answer not_found
    local want = (who == "member_b" and role[c[1]] == "admin") and "forbidden" or "not_found"
    ok(role[c[1]] ~= nil, c[1] .. " is a registered op")
    err_is(r, e, want, who .. " " .. c[1] .. " on tenant-a's record: " .. want)
  end
end
-- b's own attach of a's server from b's assistant
local bb = b.admin_b:must("assistant.create", { name = "B bot" })
local r, e = b.admin_b:op("assistant.attach", { assistant = bb.id, server = srv.id })
err_is(r, e, "not_found", "cannot attach another tenant's server to an own assistant")

is(json.encode(a.admin_a:must("server.get", { id = srv.id }), { sort = true }), before, "tenant-a's server unchanged")
is(#b.admin_b:must("server.list", {}).items, 0, "tenant-b lists none of tenant-a's servers")
is(#b.admin_b:must("tool.list", {}).items, 0, "tenant-b's Tools section is empty")
is(#b.admin_b:must("assistant.list", {}).items, 1, "tenant-b sees only its own assistant")
is(#b.admin_b:must("audit.list", {}).items > 0, true, "tenant-b has its own audit")
for _, rec in ipairs(b.admin_b:must("audit.list", { limit = 500 }).items) do
  if rec.target == srv.id and rec.outcome == "ok" then ok(false, "tenant-b audit shows a change to tenant-a's server") end
end
for _, rec in ipairs(b.admin_b:must("audit.list", { limit = 500 }).items) do
  if rec.actor:match("^tenant%-a/") then ok(false, "tenant-b sees tenant-a's audit") end
end
-- same names in two tenants do not clash
ok(b.admin_b:must("server.create", { name = "A server" }).id ~= srv.id, "names are per tenant")
-- unknown actors
local ghost = mcplink.as { tenant = "tenant-a", user = "nobody" }
r, e = ghost:op("server.list", {})
err_is(r, e, "unauthorized", "unknown user refused")
ghost = mcplink.as { tenant = "no-such-tenant", user = "admin_a" }
r, e = ghost:op("server.list", {})
err_is(r, e, "unauthorized", "unknown tenant refused")
done_testing()
