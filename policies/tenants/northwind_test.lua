-- northwind_test: the "northwind" example: only hosts on its allow list pass,
-- and the default's rules still apply to those hosts.
local nw = mcplink.setup { tenant = "northwind", users = { nina = "admin" } }
local other = mcplink.setup { tenant = "elsewhere", users = { eve = "member" } }

local function check(client, url)
  return client:must("url.check", { url = url, resolve = false })
end

ok(check(nw.nina, "https://mcp.northwind.example/mcp").allowed, "exact host allowed")
ok(check(nw.nina, "https://crm.tools.northwind.example/").allowed, "subdomain pattern allowed")
ok(check(nw.nina, "https://login.northwind-idp.example/token").allowed, "identity provider allowed")
local r = check(nw.nina, "https://evil.example/")
ok(not r.allowed, "a host off the list is refused")
is(r.code, "url_blocked", "as url_blocked")
like(r.reason, "^policy: host evil%.example is not on northwind's allow list", "the policy's reason is reported")
ok(not check(nw.nina, "https://tools.northwind.example/").allowed, "*.tools... does not match tools... itself")
ok(not check(nw.nina, "https://mcp.northwind.example.evil.example/").allowed, "suffix tricks do not match")
ok(not check(nw.nina, "https://8.8.8.8/").allowed, "public addresses not on the list are refused")
ok(not check(nw.nina, "http://mcp.northwind.example/").allowed, "the default's https rule still applies")
r = check(nw.nina, "https://MCP.Northwind.Example./x")
ok(r.allowed, "host case and trailing dot are normalised before the policy sees them")
ok(check(other.eve, "https://evil.example/").allowed, "other tenants keep the default policy")
done_testing()
