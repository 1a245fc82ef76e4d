-- ops/conformance: system-only ops behind `mcplink conformance-client`: the
-- headless authorization step, and MCP steps run as a user on a stored server.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local crypto = require "crypto"
local auth = require "auth"
local net = require "net"
local util = require "oauth.util"
local guard = require "oauth.guard"
local connection = require "connection"
local steps = require "mcp.steps"

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- Location resolved against the URL it came from (absolute, or origin-relative).
local function absolute(loc, base)
  if loc:match("^%a[%w+.-]*://") then return loc end
  local b = util.split(base)
  if loc:sub(1, 1) == "/" and loc:sub(2, 2) ~= "/" then return b.origin .. loc end
  errors.raise("upstream_error", "the authorization endpoint redirected to an unusable Location", nil,
    { reason = "bad_location" })
end

-- A user agent without a browser: only an authorization URL this engine issued
-- (its state is a pending flow, its endpoint the one recorded for that flow's
-- server) is requested, once, without following the redirect.
registry.op {
  name = "oauth.headless_authorize", role = "system",
  summary = "Request an authorization URL from oauth.begin without a browser and return the redirect's Location (conformance and tests)",
  args = { authorization_url = { type = "string", required = true, max = 8192 } },
  handler = function(ctx, args)
    local url = args.authorization_url
    local u = util.split(url)
    if not u or not u.query then
      errors.raise("invalid_argument", "not an authorization URL (no query)", "authorization_url")
    end
    local q = util.parse_query(u.query)
    local pend = type(q.state) == "string" and store.find(ctx.actor, "oauth_pending", { state_hash = crypto.sha256(q.state) })
    if not pend then
      errors.raise("invalid_argument", "this URL carries no state of a pending OAuth flow of this engine", "authorization_url")
    end
    local s = store.find(ctx.actor, "servers", { id = pend.server_id })
    local ep = s and util.is_set(s.oauth_authorization_url) and s.oauth_authorization_url or nil
    if not ep or url:sub(1, #ep + 1) ~= ep .. (ep:find("?", 1, true) and "&" or "?") then
      errors.raise("invalid_argument", "the URL is not at the authorization endpoint recorded for the flow's server", "authorization_url")
    end
    local r = net.request(ctx, { method = "GET", url = url, purpose = "oauth_metadata",
      headers = { Accept = "text/html, */*" }, timeout_ms = 15000, max_bytes = 64 * 1024, follow_redirects = false })
    local loc = r.headers and r.headers.location
    if not REDIRECT[r.status] or type(loc) ~= "string" or loc == "" then
      errors.raise("upstream_error", "the authorization endpoint answered " .. tostring(r.status) ..
        " without a redirect (a login page needs a browser)", nil, { reason = "no_redirect", http_status = r.status })
    end
    return { status = r.status, location = absolute(loc, url) }
  end,
}

local STEPS = { "discover", "list", "call_tool", "read_resource", "get_prompt", "close" }

registry.op {
  name = "mcp.user_session", role = "system",
  summary = "Run MCP client steps against a stored server as a tenant user, with that user's credentials (conformance and diagnostics)",
  args = {
    tenant = { type = "string", required = true, max = 200 },
    user = { type = "string", required = true, max = 200 },
    server = { type = "string", required = true, max = 200 },
    steps = { type = "array", required = true },
    stop_on_error = { type = "boolean" },
  },
  handler = function(ctx, args)
    local uctx = { op = ctx.op, actor = auth.resolve({ tenant = args.tenant, user = args.user }) }
    local s = model.ref(uctx.actor, "servers", args.server, "server")
    -- each step on a connection opened with the user's credentials, inside
    -- the OAuth guard (refresh once on 401, step-up marking on 403), as
    -- tool.call does
    return steps.run(args, STEPS, function(fn)
      return guard.run(uctx, s, function() return fn(connection.open(uctx, s)) end)
    end)
  end,
}
