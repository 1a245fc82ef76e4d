-- roles: each op is refused with forbidden for the roles that may not call it.
local t = mcplink.setup { tenant = "acme", users = { admin = "admin", member = "member" } }
local sys = t.system

-- op -> who may call it
local matrix = {
  ["tenant.create"]       = { system = true },
  ["tenant.list"]         = { system = true },
  ["tenant.update"]       = { system = true },
  ["tenant.get"]          = { system = true },
  ["settings.set"]        = { system = true },
  ["user.create"]         = { system = true, admin = true },
  ["user.list"]           = { system = true, admin = true },
  ["classification.set"]  = { admin = true },
  ["classification.list"] = { admin = true, member = true },
  ["space.create"]        = { admin = true },
  ["space.update"]        = { admin = true },
  ["space.list"]          = { admin = true, member = true },
  ["server.create"]       = { admin = true },
  ["server.update"]       = { admin = true },
  ["server.delete"]       = { admin = true },
  ["server.get"]          = { admin = true, member = true },
  ["server.list"]         = { admin = true, member = true },
  ["tool.enable"]         = { admin = true },
  ["tool.disable"]        = { admin = true },
  ["tool.list"]           = { admin = true, member = true },
  ["assistant.create"]    = { admin = true, member = true },
  ["assistant.list"]      = { admin = true, member = true },
  ["assistant.attach"]    = { admin = true, member = true },
  ["audit.list"]          = { system = true, admin = true },
  ["keys.rotate"]         = { system = true },
  ["keys.list"]           = { system = true },
  ["keys.retire"]         = { system = true },
  ["policy.reload"]       = { system = true },
  ["policy.status"]       = { system = true },
  ["mcp.session"]         = { system = true },
  ["mcp.user_session"]    = { system = true },
  ["oauth.headless_authorize"] = { system = true },
  ["assistant.detach"]    = { admin = true, member = true },
  ["assistant.get"]       = { admin = true, member = true },
  ["assistant.tools"]     = { admin = true, member = true },
  ["server.refresh"]      = { admin = true },
  ["server.capabilities"] = { admin = true, member = true },
  ["server.validate"]     = { admin = true, member = true },
  ["tool.approve"]        = { admin = true },
  ["tool.call"]           = { admin = true, member = true },
  ["resource.read"]       = { admin = true, member = true },
  ["prompt.get"]          = { admin = true, member = true },
  ["tool.continue"]       = { admin = true, member = true },
  ["resource.continue"]   = { admin = true, member = true },
  ["prompt.continue"]     = { admin = true, member = true },
  ["oauth.discover"]      = { admin = true },
  ["oauth.begin"]         = { admin = true, member = true },
  ["oauth.complete"]      = { admin = true, member = true },
  ["oauth.status"]        = { admin = true, member = true },
  ["oauth.refresh"]       = { admin = true, member = true },
  ["oauth.disconnect"]    = { admin = true, member = true },
  ["oauth.client_metadata"] = { system = true, admin = true, member = true },
  ["settings.get"]        = { system = true, admin = true, member = true },
  ["url.check"]           = { system = true, admin = true, member = true },
  ["engine.info"]         = { system = true, admin = true, member = true },
  ["op.list"]             = { system = true, admin = true, member = true },
}
local clients = { system = sys, admin = t.admin, member = t.member }
local registered = {}
for _, op in ipairs(sys:must("op.list", {}).ops) do registered[op.name] = op end
for name, allowed in pairs(matrix) do
  if registered[name] then
    for who, c in pairs(clients) do
      local _, e = c:op(name, {})
      local code = e and e.code
      if allowed[who] then
        ok(code ~= "forbidden", name .. " allowed for " .. who .. " (got " .. tostring(code or "ok") .. ")")
      else
        is(code, "forbidden", name .. " refused for " .. who)
      end
    end
  else
    ok(false, name .. " is registered")
  end
end
-- every op in the registry is in the matrix, so a new op cannot skip it
for name, op in pairs(registered) do
  ok(matrix[name] ~= nil, name .. " is covered by the role matrix")
  ok(op.role == "any" or op.role == "member" or op.role == "admin" or op.role == "system", name .. " has a known role")
end
done_testing()
