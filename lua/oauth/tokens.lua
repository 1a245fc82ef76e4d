-- oauth/tokens: a user's tokens for a server: the token endpoint (code and
-- refresh grants), encrypted storage, single-flight refresh, revocation.
local errors = require "errors"
local store = require "store"
local json = require "json"
local core = require "core"
local crypto = require "crypto"
local log = require "log"
local util = require "oauth.util"
local registration = require "oauth.registration"

local M = {}

M.REFRESH_SKEW_MS = 60000       -- refresh this long before expiry
M.LEASE_MS = 30000              -- a refresh holds its lease at most this long
M.WAIT_MS = 35000               -- a waiter gives up after this long

local function actor_user(ctx)
  local u = ctx.actor and ctx.actor.user_id
  if not u then errors.raise("forbidden", "OAuth tokens belong to a tenant user; the system actor has none") end
  return u
end

function M.row(ctx, s)
  return store.find(ctx.actor, "oauth_tokens", { server_id = s.id, user_id = actor_user(ctx) })
end

-- connected(actor, s): does this user hold tokens for s? (server.get's
-- user_connected; saving discovers capabilities with them.) Never raises.
function M.connected(actor, s)
  return actor.user_id ~= nil and
    store.find(actor, "oauth_tokens", { server_id = s.id, user_id = actor.user_id }) ~= nil
end

-- drop_all(ctx, s): every user's tokens and pending authorizations for s.
-- A server's URL is the RFC 8707 resource its tokens were issued for: a token
-- for the old URL must never reach the new one, so users connect again.
function M.drop_all(ctx, s)
  for _, tbl in ipairs({ "oauth_tokens", "oauth_pending" }) do
    repeat
      local page = store.list(ctx.actor, tbl, { where = { server_id = s.id }, limit = 500 })
      for _, row in ipairs(page.items) do store.delete(ctx.actor, tbl, row.id) end
    until #page.items == 0
  end
end

-- fingerprint of a token: what session keys and comparisons hold instead
function M.fp(token) return crypto.sha256(token):sub(1, 16) end

-- The endpoints and issuer in force for a server: the discovered record
-- (automatic mode) or the admin's settings (manual mode).
function M.endpoints(s)
  local m = util.is_set(s.oauth_metadata) and s.oauth_metadata or {}
  return {
    issuer = util.is_set(s.oauth_issuer) and s.oauth_issuer or nil,
    token = util.is_set(s.oauth_token_url) and s.oauth_token_url or m.token_endpoint,
    revocation = util.is_set(s.oauth_revocation_url) and s.oauth_revocation_url or
      (util.is_set(m.revocation_endpoint) and m.revocation_endpoint or nil),
    resource = m.resource,
    meta = m,
  }
end

-- token_request(ctx, s, client, form) -> parsed token response | raises.
-- Redirects are never followed (a token endpoint that redirects is refused)
-- and nothing of the answer is logged.
function M.token_request(ctx, url, client, form)
  if not util.is_set(url) then errors.raise("invalid_argument", "the server has no OAuth token endpoint configured", "oauth.token_url") end
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/json" }
  registration.apply_auth(client, form, headers)
  local r = util.request(ctx, { method = "POST", url = url, purpose = "token", headers = headers,
    body = util.form(form), timeout_ms = 30000, max_bytes = 256 * 1024, follow_redirects = false })
  if r.status >= 300 and r.status < 400 then
    errors.raise("upstream_error", "the token endpoint answered with a redirect (" .. r.status ..
      "): refused, token requests never follow redirects", nil, { reason = "token_redirect" })
  end
  local ok, doc = pcall(json.decode, r.body or "")
  if r.status ~= 200 then
    local text, code = util.oauth_error_text(r.body)
    errors.raise(code == "invalid_grant" and "unauthorized" or "upstream_error",
      "the token endpoint refused the request (" .. r.status .. (text and (": " .. text) or "") .. ")",
      nil, { oauth_error = code or json.null, http_status = r.status })
  end
  if not ok or type(doc) ~= "table" or type(doc.access_token) ~= "string" or doc.access_token == "" then
    errors.raise("upstream_error", "the token endpoint's answer has no access_token")
  end
  if type(doc.token_type) ~= "string" or doc.token_type:lower() ~= "bearer" then
    errors.raise("upstream_error", "the token endpoint issued a '" .. tostring(doc.token_type) ..
      "' token; only Bearer tokens are supported")
  end
  return doc
end

-- fields(doc, requested_scopes, issuer) -> oauth_tokens columns
local function fields(doc, requested, issuer, old_refresh_kept)
  local f = { access_token = doc.access_token, token_type = "Bearer",
              issuer = issuer or json.null }
  if type(doc.expires_in) == "number" and doc.expires_in > 0 then
    f.expires_at = core.now_ms() + math.floor(doc.expires_in * 1000)
  else
    f.expires_at = json.null
  end
  if type(doc.refresh_token) == "string" and doc.refresh_token ~= "" then f.refresh_token = doc.refresh_token
  elseif not old_refresh_kept then f.refresh_token = json.null end
  if type(doc.scope) == "string" then f.scopes = util.scope_list(doc.scope)
  elseif requested then f.scopes = requested end
  return f
end

-- save(ctx, s, doc, scopes, issuer) -> row. One row per server and user.
function M.save(ctx, s, doc, scopes, issuer)
  local a = ctx.actor
  local f = fields(doc, scopes, issuer, false)
  local old = M.row(ctx, s)
  local row
  if old then
    local okold, oldtok = pcall(store.reveal, a, "oauth_tokens", old.id, "access_token")
    -- the tokens this connection replaces are revoked, not left alive at the AS
    pcall(M.revoke, ctx, s, old)
    -- a granted step-up keeps its attempt count (the bound), not its request
    if util.is_set(old.step_up) then
      f.step_up = { attempts = type(old.step_up.attempts) == "number" and old.step_up.attempts or 0 }
    end
    row = store.update(a, "oauth_tokens", old.id, f)
    if okold and oldtok then M.evict(s, oldtok) end
  else
    f.server_id, f.user_id = s.id, actor_user(ctx)
    row = store.insert(a, "oauth_tokens", f)
  end
  return row
end

-- evict(s, token): end the cached MCP sessions opened with that token (their
-- key is the one connection.open builds: server id and the fingerprint
-- credentials.for_server makes of the token).
function M.evict(s, token)
  require("mcp.client").evict(s.id .. ":oauth:" .. M.fp(token))
end

-- ---- leases: single flight across threads and processes --------------------

local function sleep_ms(ms) core.sleep_ms(ms) end

local function lease_key(s, user_id) return "oauth_refresh:" .. s.id .. ":" .. user_id end

-- refresh(ctx, s, opts) -> access token. opts.stale_fp: the fingerprint of
-- the token that failed (a 401); refresh only if it is still the stored one.
-- Exactly one caller per server and user talks to the token endpoint; the
-- others wait for its result, so a rotated refresh token is used once.
function M.refresh(ctx, s, opts)
  opts = opts or {}
  local a = ctx.actor
  local user = actor_user(ctx)
  local key = lease_key(s, user)
  local holder = crypto.random_token(16)
  local deadline = core.mono_ms() + M.WAIT_MS
  local first = M.row(ctx, s)
  if not first then
    errors.raise("user_not_authenticated", "you have not connected to server '" .. s.name ..
      "' yet (oauth.begin)")
  end
  local seen = M.fp(store.reveal(a, "oauth_tokens", first.id, "access_token"))
  local delay = 5
  while true do
    if store.lease_acquire(key, holder, M.LEASE_MS) then
      local ok, res = pcall(M.refresh_locked, ctx, s, opts, seen)
      store.lease_release(key, holder)
      if not ok then error(res, 0) end
      return res
    end
    -- someone else refreshes: wait for the row to change, then use it
    sleep_ms(delay)
    if delay < 100 then delay = delay * 2 end
    local now = M.row(ctx, s)
    if not now then
      errors.raise("user_not_authenticated", "your connection to server '" .. s.name ..
        "' ended; connect again (oauth.begin)")
    end
    local tok = store.reveal(a, "oauth_tokens", now.id, "access_token")
    if M.fp(tok) ~= seen then return tok end
    if core.mono_ms() > deadline then
      errors.raise("timeout", "waiting for another OAuth token refresh for server '" .. s.name .. "' timed out")
    end
  end
end

-- With the lease held: re-read, decide, call the token endpoint, store.
function M.refresh_locked(ctx, s, opts, seen)
  local a = ctx.actor
  local row = M.row(ctx, s)
  if not row then
    errors.raise("user_not_authenticated", "you have not connected to server '" .. s.name .. "' yet (oauth.begin)")
  end
  local access = store.reveal(a, "oauth_tokens", row.id, "access_token")
  -- another holder refreshed since we looked, or the failing token is gone
  if M.fp(access) ~= seen and not M.needs_refresh(row) then return access end
  if opts.stale_fp and M.fp(access) ~= opts.stale_fp then return access end
  if not opts.stale_fp and not M.needs_refresh(row) then return access end
  if not row.refresh_token_set then
    store.delete(a, "oauth_tokens", row.id)
    errors.raise("user_not_authenticated", "your OAuth token for server '" .. s.name ..
      "' expired and cannot be refreshed: connect again (oauth.begin)")
  end
  local ep = M.endpoints(s)
  local client = registration.existing_client(ctx, s, row.issuer ~= json.null and row.issuer or ep.issuer, ep.meta)
  if not client then
    errors.raise("user_not_authenticated", "the OAuth client for server '" .. s.name ..
      "' is no longer registered: connect again (oauth.begin)")
  end
  local refresh = store.reveal(a, "oauth_tokens", row.id, "refresh_token")
  local form = { { "grant_type", "refresh_token" }, { "refresh_token", refresh } }
  if ep.resource then form[#form + 1] = { "resource", ep.resource } end
  local ok, doc = pcall(M.token_request, ctx, ep.token, client, form)
  if not ok then
    if type(doc) == "table" and doc.oauth_error == "invalid_grant" then
      store.delete(a, "oauth_tokens", row.id)
      M.evict(s, access)
      errors.raise("user_not_authenticated", "the authorization server no longer accepts your " ..
        "connection to server '" .. s.name .. "' (invalid_grant): connect again (oauth.begin)")
    end
    error(doc, 0)
  end
  local f = fields(doc, util.is_set(row.scopes) and row.scopes or nil, row.issuer, true)
  store.update(a, "oauth_tokens", row.id, f)
  M.evict(s, access)
  log.info("oauth: refreshed token for server", s.id)
  return doc.access_token
end

-- Refresh when less than a minute (or a tenth of the token's life, for
-- short-lived tokens) is left.
function M.needs_refresh(row)
  local exp = row.expires_at
  if type(exp) ~= "number" then return false end
  local skew = M.REFRESH_SKEW_MS
  if type(row.updated_at) == "number" and exp > row.updated_at then
    skew = math.min(skew, (exp - row.updated_at) // 10)
  end
  return core.now_ms() + skew >= exp
end

-- access_token(ctx, s) -> token for the calling user (through guard.token).
function M.access_token(ctx, s)
  local a = ctx.actor
  if not a or not a.user_id then
    errors.raise("user_not_authenticated", "server '" .. s.name .. "' uses OAuth: only a signed-in user has a token")
  end
  local row = M.row(ctx, s)
  if not row or not row.access_token_set then
    errors.raise("user_not_authenticated", "you have not connected to server '" .. s.name ..
      "' yet: complete the OAuth flow (oauth.begin)")
  end
  if M.needs_refresh(row) then return M.refresh(ctx, s, {}) end
  return store.reveal(a, "oauth_tokens", row.id, "access_token")
end

-- revoke(ctx, s, row) -> {refresh=bool, access=bool}: RFC 7009, best effort.
function M.revoke(ctx, s, row)
  local out = { refresh_token = false, access_token = false }
  local ep = M.endpoints(s)
  if not ep.revocation then return out end
  local client = registration.existing_client(ctx, s, row.issuer ~= json.null and row.issuer or ep.issuer, ep.meta)
  if not client then return out end
  for _, kind in ipairs({ "refresh_token", "access_token" }) do
    if row[kind .. "_set"] then
      local tok = store.reveal(ctx.actor, "oauth_tokens", row.id, kind)
      local form = { { "token", tok }, { "token_type_hint", kind } }
      local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
      registration.apply_auth(client, form, headers)
      local ok, r = pcall(util.request, ctx, { method = "POST", url = ep.revocation, purpose = "revocation",
        headers = headers, body = util.form(form), timeout_ms = 15000, max_bytes = 64 * 1024,
        follow_redirects = false })
      out[kind] = ok and r.status == 200
      if not out[kind] then
        log.warn("oauth: revocation of a", kind, "for server", s.id, "failed:",
          ok and ("HTTP " .. r.status) or tostring(type(r) == "table" and r.message or r))
      end
    end
  end
  return out
end

return M
