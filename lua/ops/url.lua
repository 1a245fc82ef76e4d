-- ops/url: url.check, which resolves and judges a URL the way an outbound
-- request would (settings, the caller's tenant policy, every address), without connecting.
local registry = require "registry"
local net = require "net"
local json = require "json"

local PURPOSES = { "mcp", "oauth_metadata", "token", "revocation", "registration", "client_metadata" }

registry.op {
  name = "url.check", role = "any",
  summary = "Judge a URL against the settings and URL policy without connecting",
  args = {
    url = { type = "string", required = true, max = 8192 },
    purpose = { type = "string", enum = PURPOSES, default = "mcp" },
    resolve = { type = "boolean", default = true },
  },
  cli = { positional = { "url" } },
  handler = function(ctx, args)
    local r = net.check(ctx, args.url, args.purpose, args.resolve)
    return {
      allowed = r.allowed,
      code = r.code or json.null,
      reason = r.reason or json.null,
      message = r.message or json.null,
      addresses = json.array(r.addresses or {}),
      resolved = r.resolved == true,
    }
  end,
}
