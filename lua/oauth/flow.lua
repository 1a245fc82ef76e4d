-- oauth/flow: one user's authorization code flow with PKCE: begin (discover,
-- register, build the authorization URL) and complete (check, redeem, store).
local errors = require "errors"
local store = require "store"
local json = require "json"
local core = require "core"
local crypto = require "crypto"
local log = require "log"
local util = require "oauth.util"
local discovery = require "oauth.discovery"
local registration = require "oauth.registration"
local tokens = require "oauth.tokens"

local M = {}

M.STATE_TTL_MS = 10 * 60 * 1000

local function oauth_server(s)
  if s.auth_type ~= "oauth" then
    errors.raise("invalid_argument", "server '" .. s.name .. "' does not use OAuth (auth_type is " ..
      tostring(s.auth_type) .. ")", "server")
  end
  if not util.is_set(s.url) then
    errors.raise("invalid_argument", "Server URL is not set: edit the MCP server and provide an HTTPS URL", "server")
  end
end

-- redirect_uri(arg): the host's callback, or a loopback one (the CLI's
-- listener, RFC 8252). Anything else would send codes elsewhere.
function M.redirect_uri(arg)
  if arg ~= nil then
    if not registration.is_loopback_redirect(arg) or not arg:match("^http://127%.0%.0%.1:%d+/[%w/_%-]*$") then
      errors.raise("invalid_argument", "redirect_uri may only name a loopback listener " ..
        "(http://127.0.0.1:PORT/PATH); the host's callback is the engine option oauth_redirect_uri", "redirect_uri")
    end
    return arg
  end
  local r = core.option("oauth_redirect_uri")
  if not r then
    errors.raise("invalid_argument", "the engine option oauth_redirect_uri (the host's OAuth callback URL) is not set")
  end
  return r
end

-- config(ctx, s) -> cfg with meta (as discovery returns it). Automatic mode
-- discovers and records the result on the server; manual mode reads the
-- admin's settings.
function M.config(ctx, s)
  if s.oauth_registration_mode == "manual" then
    return {
      manual = true,
      issuer = util.is_set(s.oauth_issuer) and s.oauth_issuer or nil,
      resource = discovery.canonical_resource(s.url),
      meta = { authorization_endpoint = s.oauth_authorization_url, token_endpoint = s.oauth_token_url,
               revocation_endpoint = util.is_set(s.oauth_revocation_url) and s.oauth_revocation_url or nil },
    }
  end
  return discovery.discover(ctx, s)
end

-- record(ctx, s, cfg) -> updated server row (automatic mode only)
local function record(ctx, s, cfg)
  local rec = discovery.record(cfg)
  rec.discovered_at = core.now_ms()
  rec.attempted_at = rec.discovered_at
  local f = { oauth_issuer = cfg.issuer, oauth_metadata = rec,
              oauth_authorization_url = cfg.meta.authorization_endpoint,
              oauth_token_url = cfg.meta.token_endpoint,
              oauth_revocation_url = cfg.meta.revocation_endpoint or json.null }
  return store.update(ctx.actor, "servers", s.id, f)
end

-- failure(e) -> {code, message, reason}: a discovery error as recorded and
-- shown (a bug is logged, not shown).
local function failure(e)
  if type(e) ~= "table" or not errors.is(e) or e.code == "internal" then
    log.error("oauth: discovery failed:", type(e) == "table" and tostring(e.message) or tostring(e))
    return { code = "internal", message = "internal error (see log)", reason = json.null }
  end
  return { code = e.code, message = e.message, reason = e.reason or json.null }
end

-- record_failure(ctx, s, err, keep) -> updated server row. keep: the last
-- good discovery of this same URL stays in force beside the error; else the
-- discovered endpoints (of another URL, or none) are cleared.
local function record_failure(ctx, s, err, keep)
  local rec = {}
  if keep and util.is_set(s.oauth_metadata) then
    for k, v in pairs(s.oauth_metadata) do rec[k] = v end
  end
  rec.error = err
  rec.attempted_at = core.now_ms()
  local f = { oauth_metadata = rec }
  if not keep then
    f.oauth_issuer, f.oauth_authorization_url, f.oauth_token_url, f.oauth_revocation_url =
      json.null, json.null, json.null, json.null
  end
  return store.update(ctx.actor, "servers", s.id, f)
end

-- url_cleared(ctx, s): the server's URL was removed; what automatic
-- discovery found for the old one goes (manual endpoints are the admin's).
function M.url_cleared(ctx, s)
  if s.oauth_registration_mode == "manual" or util.is_set(s.url) then return end
  store.update(ctx.actor, "servers", s.id, { oauth_metadata = json.null, oauth_issuer = json.null,
    oauth_authorization_url = json.null, oauth_token_url = json.null, oauth_revocation_url = json.null })
end

-- discover_and_record(ctx, s) -> cfg, server: what oauth.discover shows. A
-- failure is recorded on the server (server.get shows it) and raised.
function M.discover_and_record(ctx, s)
  oauth_server(s)
  if s.oauth_registration_mode == "manual" then
    errors.raise("invalid_argument", "server '" .. s.name .. "' uses manual OAuth configuration", "server")
  end
  local ok, cfg = pcall(discovery.discover, ctx, s)
  if not ok then
    pcall(record_failure, ctx, s, failure(cfg), true)
    error(cfg, 0)
  end
  return cfg, record(ctx, s, cfg)
end

-- on_save(ctx, s, opts) -> {status, error?} | nil. Saving an OAuth server's
-- URL (and server.refresh) discovers its authorization server at once, so an
-- admin sees the endpoints, scopes and registration path before any user
-- connects. Never raises: a failure is recorded on the server beside the
-- saved configuration. opts.url_changed: endpoints found for the previous URL
-- are dropped on failure; opts.client_changed: the admin also entered the
-- client id, so a new issuer is expected.
function M.on_save(ctx, s, opts)
  opts = opts or {}
  if s.auth_type ~= "oauth" or not util.is_set(s.url) then return nil end
  if s.oauth_registration_mode == "manual" then return { status = "manual" } end
  local ok, cfg = pcall(discovery.discover, ctx, s)
  if not ok then
    local err = failure(cfg)
    log.info("oauth: discovery for server", s.id, "failed:", err.message)
    record_failure(ctx, s, err, not opts.url_changed)
    return { status = "failed", error = err }
  end
  -- a configured client id belongs to the authorization server it was
  -- entered for (see registration.client_for): a new one is not recorded
  -- silently; entering the new client id (or oauth.discover) accepts it
  if util.is_set(s.oauth_client_id) and util.is_set(s.oauth_issuer) and cfg.issuer ~= s.oauth_issuer
     and not opts.url_changed and not opts.client_changed then
    local err = { code = "upstream_error", reason = "issuer_changed",
      message = "the server's authorization server changed from " .. s.oauth_issuer .. " to " ..
        tostring(cfg.issuer) .. ": the configured client id belongs to the old one; enter the new " ..
        "server's client id (or run oauth.discover to accept it)" }
    record_failure(ctx, s, err, true)
    return { status = "failed", error = err }
  end
  record(ctx, s, cfg)
  return { status = cfg.meta.defaulted and "defaulted" or "ok" }
end

-- scope selection (MCP 2025-11-25): a pending step-up, the challenged
-- scope, the resource metadata's scopes_supported, the configured scopes.
local function choose_scopes(s, cfg, row)
  if row and util.is_set(row.step_up) and type(row.step_up.scopes) == "table" then
    local merged, seen = json.array(), {}
    local granted = util.is_set(row.scopes) and row.scopes or {}
    for _, list in ipairs({ granted, row.step_up.scopes }) do
      for _, v in ipairs(list) do if not seen[v] then seen[v] = true; merged[#merged + 1] = v end end
    end
    return merged
  end
  if util.is_set(cfg.challenge_scope) then return util.scope_list(cfg.challenge_scope) end
  if type(cfg.scopes_supported) == "table" and #cfg.scopes_supported > 0 then
    return util.scope_list(cfg.scopes_supported)
  end
  if util.is_set(s.oauth_scopes) and #s.oauth_scopes > 0 then return util.scope_list(s.oauth_scopes) end
  return json.array()
end

-- begin(ctx, s, args) -> {authorization_url, state, expires_at, ...}
function M.begin(ctx, s, args)
  oauth_server(s)
  local a = ctx.actor
  if not a.user_id then errors.raise("forbidden", "only a tenant user can connect to an OAuth server") end
  local redirect = M.redirect_uri(args.redirect_uri)
  local cfg = M.config(ctx, s)
  -- the client is chosen against the issuer recorded before this discovery,
  -- so pre-registered credentials are never used with a new server
  local client = registration.client_for(ctx, s, cfg, redirect)
  if not cfg.manual then s = record(ctx, s, cfg) end
  local row = tokens.row(ctx, s)
  local scopes = choose_scopes(s, cfg, row)
  if row and util.is_set(row.step_up) and type(row.step_up.scopes) == "table" then
    local su = row.step_up
    store.update(a, "oauth_tokens", row.id, { step_up = { scopes = su.scopes,
      attempts = (type(su.attempts) == "number" and su.attempts or 0) + 1, at = core.now_ms() } })
  end
  local verifier, challenge = crypto.pkce()
  local state = crypto.random_token(32)
  local expires = core.now_ms() + M.STATE_TTL_MS
  store.insert(a, "oauth_pending", {
    server_id = s.id, user_id = a.user_id, state_hash = crypto.sha256(state), verifier = verifier,
    redirect_uri = redirect, scopes = scopes, resource = cfg.resource, issuer = cfg.issuer or json.null,
    expires_at = expires,
  })
  local url = util.with_query(cfg.meta.authorization_endpoint, {
    { "response_type", "code" }, { "client_id", client.client_id }, { "redirect_uri", redirect },
    { "scope", util.scope_text(scopes) }, { "state", state },
    { "code_challenge", challenge }, { "code_challenge_method", "S256" },
    { "resource", cfg.resource },
  })
  log.info("oauth: authorization started for server", s.id)
  return { authorization_url = url, state = state, expires_at = expires, redirect_uri = redirect,
           scopes = scopes, issuer = cfg.issuer or json.null, client = client.kind }
end

local function refuse(msg, reason)
  errors.raise("invalid_argument", msg, "state", { reason = reason })
end

-- parse(args) -> {state, code, error, error_description, iss}
function M.callback_params(args)
  local p = {}
  if util.is_set(args.callback_url) then
    local u = util.split(args.callback_url)
    if not u then errors.raise("invalid_argument", "callback_url is not an absolute http(s) URL", "callback_url") end
    p = util.parse_query(u.query)
  end
  for _, k in ipairs({ "state", "code", "error", "error_description", "iss" }) do
    if args[k] ~= nil then
      if p[k] ~= nil and p[k] ~= args[k] then
        errors.raise("invalid_argument", "'" .. k .. "' differs from the callback URL's", k)
      end
      p[k] = args[k]
    end
  end
  return p
end

-- complete(ctx, args) -> {server, connected, expires_at, scopes}
function M.complete(ctx, args)
  local a = ctx.actor
  if not a.user_id then errors.raise("forbidden", "only a tenant user can complete an OAuth flow") end
  local p = M.callback_params(args)
  if type(p.state) ~= "string" or p.state == "" then refuse("the callback has no state", "no_state") end
  local pend = store.find(a, "oauth_pending", { state_hash = crypto.sha256(p.state) })
  if not pend then
    refuse("unknown or already used OAuth state: start again (oauth.begin)", "unknown_state")
  end
  if pend.user_id ~= a.user_id then
    -- another user's flow: refused, and left alone (it is not ours to end)
    refuse("this OAuth state belongs to another user's authorization", "foreign_state")
  end
  local verifier = store.reveal(a, "oauth_pending", pend.id, "verifier")
  -- single use: whoever deletes it first owns it; a concurrent replay fails here
  local okdel = pcall(store.delete, a, "oauth_pending", pend.id)
  if not okdel then refuse("this OAuth state was already used", "replayed_state") end
  if type(pend.expires_at) ~= "number" or pend.expires_at < core.now_ms() then
    refuse("the OAuth authorization expired (10 minutes): start again", "expired_state")
  end
  local s = store.find(a, "servers", { id = pend.server_id })
  if not s then errors.raise("not_found", "the server of this authorization no longer exists", "state") end
  oauth_server(s)
  if util.is_set(p.error) then
    errors.raise("unauthorized", "the authorization server refused: " .. tostring(p.error):sub(1, 100) ..
      (util.is_set(p.error_description) and (" (" .. tostring(p.error_description):sub(1, 300) .. ")") or ""),
      nil, { reason = "authorization_error", oauth_error = p.error })
  end
  if type(p.code) ~= "string" or p.code == "" then refuse("the callback has no authorization code", "no_code") end
  -- RFC 9207: a present iss must be the recorded issuer, byte for byte; an
  -- advertised iss must be present.
  local issuer = util.is_set(pend.issuer) and pend.issuer or nil
  local meta = util.is_set(s.oauth_metadata) and s.oauth_metadata or {}
  if p.iss ~= nil and not issuer and s.oauth_registration_mode == "manual" then
    -- manual mode records no issuer: accept one at the configured
    -- authorization endpoint's origin only
    local au, iu = util.split(s.oauth_authorization_url), util.split(p.iss)
    if au and iu and au.origin == iu.origin then issuer = p.iss end
  end
  if p.iss ~= nil then
    if p.iss ~= issuer then
      errors.raise("invalid_argument", "the authorization response comes from issuer '" .. tostring(p.iss) ..
        "', not the one this flow started with" .. (issuer and (" (" .. issuer .. ")") or "") ..
        ": refused (RFC 9207 mix-up protection)", "iss", { reason = "issuer_mismatch" })
    end
  elseif meta.authorization_response_iss_parameter_supported == true and issuer == meta.issuer then
    errors.raise("invalid_argument", "the authorization response lacks the iss parameter its server " ..
      "advertises: refused (RFC 9207)", "iss", { reason = "issuer_missing" })
  end
  -- the server must still use the same authorization server
  if issuer and util.is_set(s.oauth_issuer) and s.oauth_issuer ~= issuer then
    errors.raise("invalid_argument", "the server's authorization server changed during the flow: start again",
      "state", { reason = "issuer_changed" })
  end
  local ep = tokens.endpoints(s)
  local key = registration.client_key(issuer, pend.redirect_uri)
  local client = registration.existing_client(ctx, s, key, meta)
  if not client then errors.raise("invalid_argument", "the OAuth client of this flow is gone: start again", "state") end
  if verifier == nil then errors.raise("internal", "PKCE verifier unavailable") end
  local form = { { "grant_type", "authorization_code" }, { "code", p.code },
                 { "redirect_uri", pend.redirect_uri }, { "code_verifier", verifier } }
  if util.is_set(pend.resource) then form[#form + 1] = { "resource", pend.resource } end
  local doc = tokens.token_request(ctx, ep.token, client, form)
  -- the token row records the registration it belongs to (see client_key)
  local row = tokens.save(ctx, s, doc, util.is_set(pend.scopes) and pend.scopes or nil, key)
  log.info("oauth: user connected to server", s.id)
  return { server = s.id, connected = true, expires_at = row.expires_at or json.null,
           scopes = util.is_set(row.scopes) and row.scopes or json.array() }
end

return M
