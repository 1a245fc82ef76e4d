-- ops/oauth: the OAuth ops (client metadata, discovery, a user's connect flow,
-- status, refresh, disconnect, and the conformance client's headless authorization).
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local core = require "core"
local discovery = require "discovery"
local util = require "oauth.util"
local flow = require "oauth.flow"
local tokens = require "oauth.tokens"
local registration = require "oauth.registration"
local crypto = require "crypto"
local net = require "net"

registry.op {
  name = "oauth.client_metadata", role = "any",
  summary = "The engine's OAuth Client ID Metadata Document, for the host to serve at oauth_client_metadata_url",
  handler = function() return registration.client_metadata() end,
}

local function oauth_server(ctx, ref)
  local s = model.ref(ctx.actor, "servers", ref, "server")
  if s.auth_type ~= "oauth" then
    errors.raise("invalid_argument", "server '" .. s.name .. "' does not use OAuth", "server")
  end
  return s
end

registry.op {
  name = "oauth.discover", role = "admin", mutating = true, module = "mcp",
  summary = "Discover a server's authorization server and record its endpoints and scopes",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args)
    local s = oauth_server(ctx, args.server)
    ctx.target = s.id
    local _, s2 = flow.discover_and_record(ctx, s)
    return { server = s2.id, issuer = s2.oauth_issuer, metadata = s2.oauth_metadata,
             oauth = model.server_view(ctx.actor, s2).oauth }
  end,
}

registry.op {
  name = "oauth.begin", role = "member", module = "mcp",
  summary = "Start connecting the calling user to an OAuth server: returns the authorization URL",
  args = { server = { type = "string", required = true, max = 200 },
           redirect_uri = { type = "string", max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args)
    local s = oauth_server(ctx, args.server)
    local r = flow.begin(ctx, s, args)
    r.server = s.id
    return r
  end,
}

registry.op {
  name = "oauth.complete", role = "member", mutating = true, module = "mcp",
  summary = "Finish the calling user's OAuth flow with the callback (state and code, or the callback URL)",
  args = { state = { type = "string", max = 1000 }, code = { type = "string", max = 4096 },
           iss = { type = "string", max = 2048 }, error = { type = "string", max = 200 },
           error_description = { type = "string", max = 2000 },
           callback_url = { type = "string", max = 8192 } },
  cli = { positional = { "callback_url" } },
  handler = function(ctx, args)
    local out = flow.complete(ctx, args)
    ctx.target = out.server
    -- An OAuth server can only be discovered with a user's token: the first
    -- user to connect brings its capabilities in (later: Refresh capabilities).
    local s = store.get(ctx.actor, "servers", out.server)
    if s.capabilities_status ~= "ok" then out.discovery = discovery.refresh(ctx, s) end
    return out
  end,
}

-- status(ctx, s) -> the calling user's connection to s
local function status(ctx, s)
  local row = ctx.actor.user_id and tokens.row(ctx, s) or nil
  local out = { server = s.id, connected = row ~= nil and row.access_token_set == true,
                expires_at = json.null, scopes = json.array(), refreshable = false,
                needs_reauthorization = false }
  if row then
    out.expires_at = row.expires_at or json.null
    out.scopes = util.is_set(row.scopes) and row.scopes or json.array()
    out.refreshable = row.refresh_token_set == true
    out.expired = type(row.expires_at) == "number" and row.expires_at <= core.now_ms()
    local su = util.is_set(row.step_up) and row.step_up or nil
    if su and type(su.scopes) == "table" then
      out.needs_reauthorization = true
      out.requested_scopes = su.scopes
    end
  end
  return out
end

registry.op {
  name = "oauth.status", role = "member", module = "mcp",
  summary = "Is the calling user connected to an OAuth server (expiry, granted scopes)?",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args) return status(ctx, oauth_server(ctx, args.server)) end,
}

registry.op {
  name = "oauth.refresh", role = "member", module = "mcp",
  summary = "Make sure the calling user's token for a server is fresh (refresh it if it expires soon, or always with force)",
  args = { server = { type = "string", required = true, max = 200 }, force = { type = "boolean" } },
  cli = { positional = { "server" } },
  handler = function(ctx, args)
    local s = oauth_server(ctx, args.server)
    if args.force then
      local row = tokens.row(ctx, s)
      if not row then
        errors.raise("user_not_authenticated", "you have not connected to server '" .. s.name .. "' yet (oauth.begin)")
      end
      tokens.refresh(ctx, s, { stale_fp = tokens.fp(store.reveal(ctx.actor, "oauth_tokens", row.id, "access_token")) })
    else
      tokens.access_token(ctx, s)
    end
    return status(ctx, s)
  end,
}

registry.op {
  name = "oauth.disconnect", role = "member", mutating = true, module = "mcp",
  summary = "Disconnect the calling user from an OAuth server: revoke and delete their tokens",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args)
    local a = ctx.actor
    local s = oauth_server(ctx, args.server)
    ctx.target = s.id
    if not a.user_id then errors.raise("forbidden", "only a tenant user has OAuth connections") end
    local row = tokens.row(ctx, s)
    local revoked = { refresh_token = false, access_token = false }
    if row then
      local tok = row.access_token_set and store.reveal(a, "oauth_tokens", row.id, "access_token") or nil
      revoked = tokens.revoke(ctx, s, row)
      store.delete(a, "oauth_tokens", row.id)
      if tok then tokens.evict(s, tok) end
    end
    -- flows this user left unfinished end too
    local page = store.list(a, "oauth_pending", { where = { server_id = s.id, user_id = a.user_id }, limit = 500 })
    for _, p in ipairs(page.items) do pcall(store.delete, a, "oauth_pending", p.id) end
    return { server = s.id, disconnected = row ~= nil, revoked = revoked }
  end,
}

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
