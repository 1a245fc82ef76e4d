-- demo_oauth: after `mcplink oauth connect`, max's assistant uses the OAuth
-- server with max's own token; ada has none. Run by demo.sh.
local function say(fmt, ...) print(string.format(fmt, ...)) end
local max = mcplink.as { tenant = "demo-corp", user = "max" }
local ada = mcplink.as { tenant = "demo-corp", user = "ada" }
local st = max:must("oauth.status", { server = "Partner Docs" })
say("oauth status for max: connected=%s, scopes %s", tostring(st.connected), json.encode(st.scopes or st.scope or {}))
say("Validate as max: %s", max:must("server.validate", { id = "Partner Docs" }).status)
say("Validate as ada: %s (each user authorizes individually)", ada:must("server.validate", { id = "Partner Docs" }).status)
local pbot
for _, a in ipairs(max:must("assistant.list", {}).items) do if a.name == "Max's helper" then pbot = a end end
local tools = max:must("assistant.tools", { assistant = pbot.id }).tools
local who
for _, t in ipairs(tools) do if t.tool == "whoami" or t.tool == "echo" then who = who or t.name end end
if who then
  local r = max:must("tool.call", { assistant = pbot.id, tool = who, arguments = { text = "via OAuth" } })
  say("tool.call %s with max's token: %s", who, json.encode(r.structuredContent or r.content))
end
local d = max:must("oauth.disconnect", { server = "Partner Docs" })
say("disconnect: %s", json.encode(d))
say("Validate as max after disconnect: %s", max:must("server.validate", { id = "Partner Docs" }).status)
