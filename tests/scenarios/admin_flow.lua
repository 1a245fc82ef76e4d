-- admin_flow: spec steps 1, 3 and 4 as an admin and a member walk them:
-- create a server, configure it, enable it, attach it to assistants.
local acme = mcplink.setup { tenant = "acme", users = { alice = "admin", bob = "member" } }
local alice, bob = acme.alice, acme.bob
-- servers in these tests live on closed loopback ports: nothing leaves the machine
mcplink.must("settings.set", { allow_private_urls = true })

-- classifications and a space
alice:must("classification.set", { name = "Public", level = 0 })
alice:must("classification.set", { name = "Internal", level = 1 })
alice:must("classification.set", { name = "Secret", level = 3 })
local cl = alice:must("classification.list", {}).items
is(#cl, 3, "three classifications")
is(cl[1].name, "Public", "lowest level first")
local space = alice:must("space.create", { name = "Sales", classification = "Internal" })
is(space.classification.name, "Internal", "space has its classification")

-- Step 1: create the record
local s = alice:must("server.create", { name = "Internal CRM Tools" })
like(s.id, "^srv_", "server id")
is(s.url, json.null, "no URL yet")
is(s.url_set, false, "url_set false")
is(s.capabilities_status, "not_discovered", "capabilities not yet discovered")
is(s.auth_type, "none", "auth none by default")
is(s.enabled, false, "not enabled yet")
local r, e = alice:op("server.create", { name = "Internal CRM Tools" })
err_is(r, e, "conflict", "name unique per tenant")

-- Step 2: URL and API key (stored, never shown)
s = alice:must("server.update", { id = s.id, url = "https://127.0.0.1:1/mcp",
  auth_type = "api_key", api_key = "sk-test-123", classification = "Internal",
  description = "CRM lookups" })
is(s.url, "https://127.0.0.1:1/mcp", "URL saved")
is(s.api_key_set, true, "api_key_set true")
is(s.api_key, nil, "API key value never returned")
is(s.description_source, "admin", "description came from the admin")
is(s.classification.name, "Internal", "classification set")
r, e = alice:op("server.update", { id = s.id, url = "http://127.0.0.1:1/mcp" })
err_is(r, e, "url_blocked", "plain http refused by default")
r, e = alice:op("server.update", { id = s.id, url = "https://user:pw@127.0.0.1:1/" })
err_is(r, e, "url_blocked", "userinfo refused")
r, e = alice:op("server.update", { id = s.id, url = "not a url" })
err_is(r, e, "invalid_argument", "garbage URL refused")
is(e.field, "url", "names the url field")
r, e = alice:op("server.update", { id = s.id, auth_type = "none", api_key = "x" })
err_is(r, e, "invalid_argument", "api_key without auth_type api_key refused")
r, e = alice:op("server.update", { id = s.id, oauth = { client_id = "x" } })
err_is(r, e, "invalid_argument", "oauth settings need auth_type oauth")
is(alice:must("server.get", { id = s.id }).api_key_set, true, "failed updates changed nothing")

-- Step 3: enable as a tool
local t = alice:must("tool.enable", { server = "Internal CRM Tools" })
is(t.enabled, true, "enabled by name")
local tl = bob:must("tool.list", {}).items
is(#tl, 1, "member sees the Tools section")
is(tl[1].enabled, true, "listed as enabled")
r, e = bob:op("tool.enable", { server = s.id })
err_is(r, e, "forbidden", "members cannot enable tools")

-- Step 4: attach to assistants
local personal = bob:must("assistant.create", { name = "Bob's helper" })
is(personal.personal, true, "no space: personal assistant")
local team = alice:must("assistant.create", { name = "Sales bot", space = space.id })
is(team.space.name, "Sales", "space assistant")
is(bob:must("assistant.attach", { assistant = personal.id, server = s.id }).attached, true, "attach to personal")
is(alice:must("assistant.attach", { assistant = team.id, server = s.id }).attached, true, "attach to space assistant")
local tools = alice:must("assistant.tools", { assistant = team.id })
is(#tools.servers, 1, "one server attached")
is(tools.servers[1].usable, true, "usable")
is(#tools.tools, 0, "no tools until discovery")

-- classification: a server below the space's level cannot be attached, and
-- a downgrade after attachment makes it unusable
local low = alice:must("server.create", { name = "Public search" })
alice:must("server.update", { id = low.id, url = "https://127.0.0.1:2/mcp", classification = "Public" })
alice:must("tool.enable", { server = low.id })
r, e = alice:op("assistant.attach", { assistant = team.id, server = low.id })
err_is(r, e, "forbidden", "classification below the space's requirement refused")
like(e.message, "below space 'Sales'", "the message explains the classification rule")
ok(bob:must("assistant.attach", { assistant = personal.id, server = low.id }).attached, "personal assistants have no space requirement")
alice:must("server.update", { id = s.id, classification = "Public" })
tools = alice:must("assistant.tools", { assistant = team.id })
is(tools.servers[1].usable, false, "downgraded server no longer usable")
alice:must("server.update", { id = s.id, classification = "Internal" })

-- unclassified server into a classified space
local unc = alice:must("server.create", { name = "Unclassified" })
alice:must("server.update", { id = unc.id, url = "https://127.0.0.1:3/mcp" })
alice:must("tool.enable", { server = unc.id })
r, e = alice:op("assistant.attach", { assistant = team.id, server = unc.id })
err_is(r, e, "forbidden", "unclassified server refused in a classified space")

-- disabled tools cannot be attached and stop being usable
alice:must("tool.disable", { server = s.id })
tools = bob:must("assistant.tools", { assistant = personal.id })
local usable = {}
for _, sv in ipairs(tools.servers) do usable[sv.name] = sv.usable end
is(usable["Internal CRM Tools"], false, "disabled server unusable")
alice:must("tool.enable", { server = s.id })

-- management rights
r, e = alice:op("assistant.detach", { assistant = personal.id, server = s.id })
err_is(r, e, "not_found", "another user's personal assistant is invisible, even to an admin")
ok(bob:must("assistant.detach", { assistant = personal.id, server = s.id }).attached == false, "owner detaches")

-- listing and pagination
for i = 1, 7 do alice:must("server.create", { name = "bulk " .. i }) end
local page1 = alice:must("server.list", { limit = 4 })
is(#page1.items, 4, "page of 4")
ok(type(page1.next_cursor) == "string", "next cursor")
local seen, cursor, pages = {}, nil, 0
repeat
  local p = alice:must("server.list", { limit = 4, cursor = cursor })
  for _, it in ipairs(p.items) do seen[it.id] = (seen[it.id] or 0) + 1 end
  cursor = p.next_cursor ~= json.null and p.next_cursor or nil
  pages = pages + 1
until not cursor or pages > 10
local n, dup = 0, false
for _, c in pairs(seen) do n = n + 1; dup = dup or c > 1 end
is(n, 10, "pagination visits every server")
ok(not dup, "no server twice")
r, e = alice:op("server.list", { cursor = "garbage!" })
err_is(r, e, "invalid_argument", "bad cursor refused")

-- delete cascades
alice:must("server.delete", { id = low.id })
r, e = alice:op("server.get", { id = low.id })
err_is(r, e, "not_found", "deleted")

-- audit trail
local audit = alice:must("audit.list", { limit = 500 }).items
ok(#audit >= 10, "mutations are audited")
local ops = {}
for _, a in ipairs(audit) do ops[a.op] = true end
ok(ops["server.create"] and ops["server.update"] and ops["tool.enable"] and ops["assistant.attach"], "each step audited")
local outcomes = {}
for _, a in ipairs(audit) do
  if a.op == "server.create" or a.op == "server.update" then outcomes[a.op .. " " .. a.outcome] = true end
end
ok(outcomes["server.create conflict"], "the refused duplicate create is audited as a conflict")
ok(outcomes["server.update url_blocked"], "the refused plain-http URL is audited as url_blocked")
ok(outcomes["server.update ok"], "and the saved update as ok")
done_testing()
