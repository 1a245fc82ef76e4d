-- demo: the connect-your-own-MCP-server flow as an operator sees it, step by
-- step, on a fresh database. Run by `make demo`.
local function say(fmt, ...) print(string.format(fmt, ...)) end
local function show(title, v)
  say("\n== %s", title)
  print(json.encode(v, { pretty = true }))
end
local function step(title) say("\n#### %s", title) end

local info = mcplink.must("engine.info", {})
say("mcplink %s  (MCP revisions: %s)", info.version, table.concat(info.protocol_versions, ", "))
say("database: %s", info.storage)

step("Set up: a tenant with an admin and a member (system administrator)")
local t = mcplink.setup { tenant = "demo-corp", users = { ada = "admin", max = "member" } }
local ada, max = t.ada, t.max
-- the demo's servers live on loopback: the system administrator allows
-- private URLs for it (by default only public HTTPS addresses are allowed)
mcplink.must("settings.set", { allow_private_urls = true })
say("tenant %s (%s); users ada (admin), max (member)", t.tenant.name, t.tenant.id)
ada:must("classification.set", { name = "Public", level = 0 })
ada:must("classification.set", { name = "Internal", level = 1 })
ada:must("classification.set", { name = "Confidential", level = 2 })
local space = ada:must("space.create", { name = "Sales", classification = "Internal" })
say("space %s requires classification %s", space.name, space.classification.name)

step("Step 1: create the MCP server record")
local s = ada:must("server.create", { name = "Internal CRM Tools" })
show("server.create", s)

step("Step 2: configure the URL and authentication")
local r, e = ada:op("server.update", { id = s.id, url = "http://127.0.0.1:1/mcp" })
say("plain http is refused: %s: %s", e.code, e.message)
r, e = ada:op("server.update", { id = s.id, url = "https://admin:pw@127.0.0.1:1/mcp" })
say("credentials in the URL are refused: %s: %s", e.code, e.message)
s = ada:must("server.update", { id = s.id, url = "https://127.0.0.1:1/mcp", auth_type = "api_key",
  api_key = "sk-demo-not-a-real-key", classification = "Internal", description = "CRM lookups" })
show("server.update (the API key is stored encrypted; only api_key_set is shown)", s)

step("Step 3: enable the MCP server as a tool for the tenant")
r, e = max:op("tool.enable", { server = s.id })
say("a member cannot: %s: %s", e.code, e.message)
show("tool.enable", ada:must("tool.enable", { server = "Internal CRM Tools" }))
show("tool.list (the Tools section)", max:must("tool.list", {}))

step("Step 4: attach the tool to assistants")
local bot = ada:must("assistant.create", { name = "Sales bot", space = space.id })
show("assistant.attach (space assistant)", ada:must("assistant.attach", { assistant = bot.id, server = s.id }))
local mine = max:must("assistant.create", { name = "Max's helper" })
show("assistant.attach (personal assistant)", max:must("assistant.attach", { assistant = mine.id, server = s.id }))
local pub = ada:must("server.create", { name = "Public search" })
ada:must("server.update", { id = pub.id, url = "https://127.0.0.1:2/mcp", classification = "Public" })
ada:must("tool.enable", { server = pub.id })
r, e = ada:op("assistant.attach", { assistant = bot.id, server = pub.id })
say("\nsecurity classification: %s: %s", e.code, e.message)
show("assistant.tools", ada:must("assistant.tools", { assistant = bot.id }))

step("Tenant isolation")
local other = mcplink.setup { tenant = "other-corp", users = { oz = "admin" } }
r, e = other.oz:op("server.get", { id = s.id })
say("another tenant's admin asking for %s: %s: %s", s.id, e.code, e.message)

step("Audit trail")
for _, a in ipairs(ada:must("audit.list", { limit = 100 }).items) do
  say("  %-22s %-18s %-14s %s", a.actor, a.op, a.outcome, a.target ~= json.null and a.target or "")
end
