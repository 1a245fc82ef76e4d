-- northwind: example tenant policy: tenant "northwind" may only connect to
-- hosts on its allow list (its MCP servers and its identity provider).
local ALLOWED = {
  "mcp.northwind.example",       -- exactly this host
  "*.tools.northwind.example",   -- any subdomain of tools.northwind.example
  "login.northwind-idp.example",
}

return {
  url = function(req)
    for _, pattern in ipairs(ALLOWED) do
      if net.host_matches(req.host, pattern) then return default.url(req) end
    end
    return { allow = false, reason = "host " .. req.host .. " is not on northwind's allow list" }
  end,
}
