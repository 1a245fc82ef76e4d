-- ops/validate: the Validate action: can the engine reach the server and
-- authenticate, as the calling user? Statuses are the spec's.
local registry = require "registry"
local store = require "store"
local model = require "model"
local json = require "json"
local validation = require "validation"
local connection = require "connection"

registry.op {
  name = "server.validate", role = "member", module = "mcp",
  summary = "Validate a server: OK, Unauthorized, User not authenticated, Server URL not set, Failed",
  args = { id = { type = "string", required = true, max = 200 } },
  cli = { positional = { "id" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.id, "id")
    local r = { auth_type = s.auth_type or "none" }
    if s.url == nil or s.url == json.null then
      r.ok, r.code, r.message = false, "url_not_set", nil
    else
      local ok, e = pcall(function()
        local c = connection.open(ctx, s)
        local info = c:discover()
        c:ping()
        r.era, r.protocol_version = info.era, info.protocol_version
      end)
      r.ok = ok
      if not ok then
        if type(e) ~= "table" then e = { code = "internal", message = tostring(e) } end
        r.code = e.code
        r.message = e.code ~= "internal" and e.message or "internal error (see log)"
        r.reason = e.code ~= "internal" and type(e.reason) == "string" and e.reason or nil
        r.http_status = e.http_status
        r.www_authenticate = e.www_authenticate
        -- a server that answered at all (401 with a challenge, 403) is reachable
        r.reachable = e.http_status ~= nil
      else
        r.reachable = true
      end
    end
    local out = validation.decide(ctx, r)
    out.server = s.id
    if r.era then out.era, out.protocol_version = r.era, r.protocol_version end
    return out
  end,
}
