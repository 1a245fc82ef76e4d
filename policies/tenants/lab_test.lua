-- lab_test: the "lab" example: one private range (10.20.0.0/16) is allowed for
-- tenant lab only; other private ranges and other tenants stay blocked.
local lab = mcplink.setup { tenant = "lab", users = { li = "member" } }
local other = mcplink.setup { tenant = "other", users = { oz = "member" } }

local function allowed(client, url)
  local r = client:must("url.check", { url = url, resolve = false })
  return r.allowed, r.reason
end

ok(allowed(lab.li, "https://10.20.1.5/mcp"), "lab reaches 10.20.1.5")
ok(allowed(lab.li, "https://10.20.255.254/"), "upper end of the range")
ok(allowed(lab.li, "https://[::ffff:10.20.0.9]/"), "the range also in IPv4-mapped form")
local a, why = allowed(lab.li, "https://10.21.0.1/")
ok(not a, "10.21.0.1 is outside the lab range")
is(why, "private_address 10.21.0.1", "with the address as the reason")
ok(not allowed(lab.li, "https://127.0.0.1/"), "loopback stays blocked for lab")
ok(not allowed(lab.li, "http://10.20.1.5/"), "the range does not unlock plain http")
ok(allowed(lab.li, "https://8.8.8.8/"), "public addresses as in the default")
ok(not allowed(other.oz, "https://10.20.1.5/"), "another tenant does not get lab's range")
ok(not allowed(lab.system, "https://10.20.1.5/"), "nor does the system actor")
done_testing()
