-- demo: the connect-your-own-MCP-server flow as an operator and a user see
-- it, against real MCP servers on loopback (started by demo.sh, which passes
-- their URLs as arguments). Run by `make demo`.
local A = {}
for _, a in ipairs(arg) do local k, v = a:match("^([%w_]+)=(.*)$"); if k then A[k] = v end end
local function say(fmt, ...) print(string.format(fmt, ...)) end
local function show(title, v)
  say("\n== %s", title)
  print(json.encode(v, { pretty = true }))
end
local function step(title) say("\n#### %s", title) end
local function names(list) local n = {} for _, x in ipairs(list) do n[#n + 1] = x.name or x end return table.concat(n, ", ") end

local info = mcplink.must("engine.info", {})
say("mcplink %s  (MCP revisions: %s)", info.version, table.concat(info.protocol_versions, ", "))

step("Set up (system administrator): a tenant with an admin and a member")
local t = mcplink.setup { tenant = "demo-corp", users = { ada = "admin", max = "member" } }
local ada, max = t.ada, t.max
-- the demo's servers run on this machine: the system administrator allows
-- private URLs (by default only public HTTPS addresses are allowed)
mcplink.must("settings.set", { allow_private_urls = true })
ada:must("classification.set", { name = "Public", level = 0 })
ada:must("classification.set", { name = "Internal", level = 1 })
local space = ada:must("space.create", { name = "Sales", classification = "Internal" })
say("tenant demo-corp; ada (admin), max (member); space Sales requires 'Internal'")

step("Step 1: create the MCP server record")
local crm = ada:must("server.create", { name = "Internal CRM Tools" })
say("created %s (%s): url %s, capabilities %s", crm.name, crm.id, tostring(crm.url_set), crm.capabilities_status)

step("Step 2: configure the URL and authentication (saving discovers capabilities)")
local _, e = ada:op("server.update", { id = crm.id, url = "http://" .. A.v1:match("^https://(.*)$") })
say("plain http is refused: %s: %s", e.code, e.message)
_, e = ada:op("server.update", { id = crm.id, url = "https://admin:pw@" .. A.v1:match("^https://(.*)$") })
say("credentials in the URL are refused: %s: %s", e.code, e.message)
local r = ada:must("server.update", { id = crm.id, url = A.v1, auth_type = "api_key", api_key = A.key,
  classification = "Internal" })
say("saved %s with an API key (api_key_set=%s; the key itself is never shown)", r.url, tostring(r.api_key_set))
say("discovered: era %s, protocol %s", r.discovery.era, r.discovery.protocol_version)
for kind, d in pairs(r.discovery.diff) do
  if type(d) == "table" and #d.added > 0 then say("  %-18s %s", kind, table.concat(d.added, ", ")) end
end
local docs = ada:must("server.create", { name = "Document Search" })
r = ada:must("server.update", { id = docs.id, url = A.v2, classification = "Internal" })
say("saved %s (no auth): era %s, protocol %s, description from the server: %q",
  docs.name, r.discovery.era, r.discovery.protocol_version, r.description)

step("Validate")
local bad = ada:must("server.create", { name = "Wrong key" })
ada:must("server.update", { id = bad.id, url = A.v1, auth_type = "api_key", api_key = "not-the-key" })
local nourl = ada:must("server.create", { name = "Not configured" })
local dead = ada:must("server.create", { name = "Offline" })
ada:must("server.update", { id = dead.id, url = "https://127.0.0.1:1/mcp" })
for _, s in ipairs({ crm, docs, bad, nourl, dead }) do
  local v = ada:must("server.validate", { id = s.id })
  say("  %-20s %-24s %s", s.name, v.status, v.detail)
end

step("Step 3: enable the MCP servers as tools for the tenant")
_, e = max:op("tool.enable", { server = crm.id })
say("a member cannot: %s: %s", e.code, e.message)
ada:must("tool.enable", { server = "Internal CRM Tools" })
ada:must("tool.enable", { server = "Document Search" })
for _, it in ipairs(max:must("tool.list", {}).items) do
  say("  %-20s enabled=%-5s capabilities=%s", it.name, tostring(it.enabled), it.capabilities_status)
end

step("Step 4: attach the tools to an assistant; the assistant calls them")
local bot = ada:must("assistant.create", { name = "Sales bot", space = space.id })
ada:must("assistant.attach", { assistant = bot.id, server = crm.id })
ada:must("assistant.attach", { assistant = bot.id, server = docs.id })
local tools = max:must("assistant.tools", { assistant = bot.id }).tools
say("Sales bot has %d tools: %s", #tools, names(tools))
local echo
for _, tl in ipairs(tools) do if tl.tool == "echo" and tl.server.name == "Internal CRM Tools" then echo = tl.name end end
show("tool.call " .. echo .. " {text = 'hello from the assistant'}",
  max:must("tool.call", { assistant = bot.id, tool = echo, arguments = { text = "hello from the assistant" } }))
show("resource.read fixture://static/hello",
  max:must("resource.read", { assistant = bot.id, server = docs.id, uri = "fixture://static/hello" }))

step("Security classification")
local pub = ada:must("server.create", { name = "Public search" })
ada:must("server.update", { id = pub.id, url = A.v2, classification = "Public" })
ada:must("tool.enable", { server = pub.id })
_, e = ada:op("assistant.attach", { assistant = bot.id, server = pub.id })
say("%s: %s", e.code, e.message)

step("Tenant isolation")
local other = mcplink.setup { tenant = "other-corp", users = { oz = "admin" } }
_, e = other.oz:op("server.get", { id = crm.id })
say("another tenant's admin asking for %s: %s: %s", crm.id, e.code, e.message)

step("OAuth 2.0: a server behind a real authorization server")
local pd = ada:must("server.create", { name = "Partner Docs" })
ada:must("server.update", { id = pd.id, url = A.oauth, auth_type = "oauth" })
local d = ada:must("oauth.discover", { server = pd.id })
say("discovered issuer %s", tostring(d.issuer or (d.oauth and d.oauth.issuer)))
ada:must("tool.enable", { server = pd.id })
local pbot = max:must("assistant.create", { name = "Max's helper" })
max:must("assistant.attach", { assistant = pbot.id, server = pd.id })
say("Validate as max before connecting: %s", max:must("server.validate", { id = pd.id }).status)

step("Audit trail (ada's tenant)")
for _, a in ipairs(ada:must("audit.list", { limit = 200 }).items) do
  say("  %-16s %-18s %-16s %s", a.actor, a.op, a.outcome, a.target ~= json.null and a.target or "")
end
