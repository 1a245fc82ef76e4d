-- default_test: the default URL policy (spec: HTTPS to public addresses only)
-- through url.check, for the system actor and a tenant without a policy file.
local t = mcplink.setup { tenant = "plain", users = { ann = "admin", mo = "member" } }

local function check(client, url, extra)
  local args = { url = url, resolve = false }
  for k, v in pairs(extra or {}) do args[k] = v end
  return client:must("url.check", args)
end

-- literal addresses are judged without a lookup and never contacted
local r = check(t.system, "https://8.8.8.8/mcp")
ok(r.allowed, "public address allowed")
is(r.addresses[1], "8.8.8.8", "the address judged is reported")
r = check(t.mo, "https://[2606:4700:4700::1111]/")
ok(r.allowed, "public IPv6 allowed for a member")

for _, u in ipairs { "https://10.0.0.5/", "https://127.0.0.1/", "https://0x7f.1/", "https://2130706433/",
                     "https://[::ffff:10.0.0.5]/", "https://[64:ff9b::a00:5]/", "https://[2002:a00:5::]/",
                     "https://169.254.169.254/", "https://[fd00::1]/", "https://100.64.0.1/" } do
  r = check(t.ann, u)
  ok(not r.allowed and r.code == "url_blocked" and r.reason:match("^private_address "), u .. " blocked (" .. tostring(r.reason) .. ")")
end
r = check(t.ann, "https://10.0.0.5/")
is(r.reason, "private_address 10.0.0.5", "reason names the address")

r = check(t.system, "http://8.8.8.8/")
is(r.reason, "scheme", "plain http refused by default")
r = check(t.system, "https://user:pw@example.com/")
is(r.reason, "userinfo", "userinfo refused")
r = check(t.system, "gopher://example.com/")
is(r.reason, "scheme", "other schemes refused")
r = check(t.system, "https://mcp.example.com/", {})
ok(r.allowed and r.resolved == false, "a public name passes the policy (not resolved here)")

-- the system settings relax the connect-time check, and only they do
mcplink.must("settings.set", { allow_private_urls = true, allow_http = true })
ok(check(t.mo, "https://10.0.0.5/").allowed, "allow_private_urls unlocks RFC 1918")
ok(check(t.mo, "https://127.0.0.1/").allowed, "and loopback")
ok(check(t.mo, "http://8.8.8.8/").allowed, "allow_http unlocks plain http")
r = check(t.mo, "https://169.254.169.254/")
ok(not r.allowed, "link-local (cloud metadata) stays blocked with allow_private_urls")
ok(not check(t.mo, "https://224.0.0.1/").allowed, "multicast stays blocked")
mcplink.must("settings.set", { allow_private_urls = false, allow_http = false })
ok(not check(t.mo, "https://10.0.0.5/").allowed, "settings back off: blocked again")

-- only the system actor reloads policies; the reload keeps working
local rr, e = t.ann:op("policy.reload", {})
err_is(rr, e, "forbidden", "a tenant admin cannot reload policies")
local before = mcplink.must("policy.status", {}).generation
local info = mcplink.must("policy.reload", {})
is(info.generation, before + 1, "policy.reload loads a new generation of the policy set")
done_testing()
