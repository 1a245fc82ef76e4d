-- oauth/registration: which client the engine is at an authorization server,
-- in the MCP order: pre-registered, Client ID Metadata Document, RFC 7591.
local errors = require "errors"
local store = require "store"
local json = require "json"
local core = require "core"
local log = require "log"
local util = require "oauth.util"

local M = {}

M.CLIENT_NAME = "mcplink"

-- is_loopback_redirect(uri): http on 127.0.0.1 / [::1] (RFC 8252 §7.3)
function M.is_loopback_redirect(uri)
  local u = util.split(uri)
  if not u or u.scheme ~= "http" then return false end
  local host = u.authority:gsub(":%d+$", "")
  return host == "127.0.0.1" or host == "[::1]" or host == "localhost"
end

-- without the port, for loopback comparison (any port is the same URI)
local function portless(uri)
  if not M.is_loopback_redirect(uri) then return uri end
  return (uri:gsub("^(http://[^/:]+%]?):%d+", "%1"))
end

-- client_key(issuer, redirect_uri): registrations are kept per issuer and per
-- kind of redirect: a native one for loopback listeners (any port, RFC 8252)
-- and a web one for the host's callback, so connecting through one never
-- re-registers the client the other kind's tokens belong to. "#native" can
-- never be part of a real issuer (issuers have no fragment, RFC 8414).
function M.client_key(issuer, redirect_uri)
  if issuer and redirect_uri and M.is_loopback_redirect(redirect_uri) then return issuer .. "#native" end
  return issuer
end

-- The client metadata document the host publishes at oauth_client_metadata_url.
function M.client_metadata()
  local url = core.option("oauth_client_metadata_url")
  local redirect = core.option("oauth_redirect_uri")
  if not url then
    errors.raise("invalid_argument", "the engine option oauth_client_metadata_url is not set")
  end
  local uris = json.array()
  if redirect then uris[#uris + 1] = redirect end
  -- the CLI's loopback listener (RFC 8252: any port on the loopback address)
  uris[#uris + 1] = "http://127.0.0.1/callback"
  return {
    client_id = url, client_name = M.CLIENT_NAME,
    redirect_uris = uris,
    grant_types = { "authorization_code", "refresh_token" },
    response_types = { "code" },
    token_endpoint_auth_method = "none",
  }
end

local function supports(list, v)
  if type(list) ~= "table" then return false end
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- The authentication method to use at the token endpoint for a client with
-- (or without) a secret, given what the server advertises (RFC 8414 default:
-- client_secret_basic).
function M.auth_method(meta, has_secret, registered)
  if not has_secret then return "none" end
  if registered and registered ~= "none" then return registered end
  local list = meta.token_endpoint_auth_methods_supported
  if type(list) ~= "table" then return "client_secret_basic" end
  if supports(list, "client_secret_basic") then return "client_secret_basic" end
  if supports(list, "client_secret_post") then return "client_secret_post" end
  return "client_secret_basic"
end

local function bad_registration(msg)
  errors.raise("upstream_error", "dynamic client registration failed: " .. msg ..
    "; enter a client id (and secret) in the server's OAuth settings (manual mode)", "oauth",
    { reason = "registration_failed" })
end

-- dcr(ctx, s, cfg, redirect_uri) -> client. RFC 7591, with the OIDC
-- application_type the 2026-07-28 revision asks for.
local function dcr(ctx, s, cfg, redirect_uri, old)
  local meta = cfg.meta
  local methods = meta.token_endpoint_auth_methods_supported
  local method = "client_secret_basic"
  if type(methods) == "table" then
    if supports(methods, "client_secret_basic") then method = "client_secret_basic"
    elseif supports(methods, "client_secret_post") then method = "client_secret_post"
    elseif supports(methods, "none") then method = "none" end
  end
  local native = M.is_loopback_redirect(redirect_uri)
  local uris = json.array()
  if old and type(old.redirect_uris) == "table" then
    for _, u in ipairs(old.redirect_uris) do
      if M.is_loopback_redirect(u) == native then uris[#uris + 1] = u end
    end
  end
  local have = false
  for _, u in ipairs(uris) do if portless(u) == portless(redirect_uri) then have = true end end
  if not have then uris[#uris + 1] = redirect_uri end
  local req = {
    client_name = M.CLIENT_NAME, redirect_uris = uris,
    grant_types = { "authorization_code", "refresh_token" }, response_types = { "code" },
    token_endpoint_auth_method = method,
    application_type = native and "native" or "web",
  }
  local r = util.request(ctx, { method = "POST", url = meta.registration_endpoint, purpose = "registration",
    headers = { ["Content-Type"] = "application/json", Accept = "application/json" },
    body = json.encode(req), timeout_ms = 15000, max_bytes = 256 * 1024, follow_redirects = false })
  if r.status ~= 201 and r.status ~= 200 then
    bad_registration("the registration endpoint answered " .. tostring(r.status) ..
      ((util.oauth_error_text(r.body)) and (" (" .. util.oauth_error_text(r.body) .. ")") or ""))
  end
  local ok, doc = pcall(json.decode, r.body or "")
  if not ok or type(doc) ~= "table" or type(doc.client_id) ~= "string" or doc.client_id == "" then
    bad_registration("the answer has no client_id")
  end
  local used = doc.token_endpoint_auth_method or method
  local secret = type(doc.client_secret) == "string" and doc.client_secret ~= "" and doc.client_secret or nil
  -- what we keep, without the secret or the registration access token
  local keep = { redirect_uris = uris, token_endpoint_auth_method = used, registered_at = core.now_ms(),
                 application_type = req.application_type,
                 client_secret_expires_at = doc.client_secret_expires_at or json.null }
  local key = M.client_key(cfg.issuer, redirect_uri)
  local row = store.find(ctx.actor, "oauth_clients", { server_id = s.id, issuer = key })
  local fields = { client_id = doc.client_id, client_secret = secret or json.null, registration = keep }
  if row then store.update(ctx.actor, "oauth_clients", row.id, fields)
  else
    fields.server_id, fields.issuer = s.id, key
    store.insert(ctx.actor, "oauth_clients", fields)
  end
  log.info("oauth: registered client for server", s.id, "at", cfg.issuer)
  return { client_id = doc.client_id, secret = secret, method = secret and used or "none", kind = "dynamic" }
end

-- client_for(ctx, s, cfg, redirect_uri) -> {client_id, secret|nil, method, kind}
-- Credentials are bound to the issuer they came from and never reused with
-- another authorization server.
function M.client_for(ctx, s, cfg, redirect_uri)
  local a = ctx.actor
  if s.oauth_registration_mode == "manual" or util.is_set(s.oauth_client_id) then
    if s.oauth_registration_mode ~= "manual" and util.is_set(s.oauth_issuer) and cfg.issuer
       and s.oauth_issuer ~= cfg.issuer and util.is_set(s.oauth_client_id) then
      errors.raise("upstream_error", "the server's authorization server changed from " .. s.oauth_issuer ..
        " to " .. cfg.issuer .. ": the configured client id belongs to the old one; an admin must enter " ..
        "new credentials", "oauth", { reason = "issuer_changed" })
    end
    local secret = s.oauth_client_secret_set and store.reveal(a, "servers", s.id, "oauth_client_secret") or nil
    return { client_id = s.oauth_client_id, secret = secret, kind = "preregistered",
             method = M.auth_method(cfg.meta, secret ~= nil) }
  end
  local meta = cfg.meta
  local cimd = core.option("oauth_client_metadata_url")
  if meta.client_id_metadata_document_supported == true and cimd then
    return { client_id = cimd, method = "none", kind = "metadata_document" }
  end
  local row = store.find(a, "oauth_clients", { server_id = s.id, issuer = M.client_key(cfg.issuer, redirect_uri) })
  if row then
    local reg = util.is_set(row.registration) and row.registration or {}
    local covered = false
    for _, u in ipairs(reg.redirect_uris or {}) do
      if portless(u) == portless(redirect_uri) then covered = true end
    end
    local exp = reg.client_secret_expires_at
    local expired = type(exp) == "number" and exp > 0 and exp * 1000 <= core.now_ms()
    if covered and not expired then
      local secret = row.client_secret_set and store.reveal(a, "oauth_clients", row.id, "client_secret") or nil
      return { client_id = row.client_id, secret = secret, kind = "dynamic",
               method = secret and (reg.token_endpoint_auth_method or "client_secret_basic") or "none" }
    end
    if util.is_set(meta.registration_endpoint) then return dcr(ctx, s, cfg, redirect_uri, reg) end
  end
  if util.is_set(meta.registration_endpoint) then return dcr(ctx, s, cfg, redirect_uri, nil) end
  errors.raise("invalid_argument", "the authorization server " .. tostring(cfg.issuer) ..
    " supports neither Client ID Metadata Documents nor dynamic client registration: an admin must " ..
    "enter a client id (and secret) in the server's OAuth settings (manual mode)", "oauth",
    { reason = "no_registration" })
end

-- path(s, meta) -> how the engine will identify itself at the server's
-- authorization server, in client_for's order: "preregistered",
-- "metadata_document", "dynamic", or "none" (an admin must enter a client
-- id); nil while nothing is discovered. Registers nothing.
function M.path(s, meta)
  if s.oauth_registration_mode == "manual" or util.is_set(s.oauth_client_id) then return "preregistered" end
  if type(meta) ~= "table" or not util.is_set(meta.token_endpoint) then return nil end
  if meta.client_id_metadata_document_supported == true and core.option("oauth_client_metadata_url") then
    return "metadata_document"
  end
  if util.is_set(meta.registration_endpoint) then return "dynamic" end
  return "none"
end

-- existing_client(ctx, s, key, meta) -> client without registering (for
-- refresh, revocation and code redemption); key is client_key(issuer,
-- redirect_uri), which token rows record as their issuer
function M.existing_client(ctx, s, issuer, meta)
  local a = ctx.actor
  if s.oauth_registration_mode == "manual" or util.is_set(s.oauth_client_id) then
    local secret = s.oauth_client_secret_set and store.reveal(a, "servers", s.id, "oauth_client_secret") or nil
    return { client_id = s.oauth_client_id, secret = secret, kind = "preregistered",
             method = M.auth_method(meta or {}, secret ~= nil) }
  end
  if meta and meta.client_id_metadata_document_supported == true and core.option("oauth_client_metadata_url") then
    return { client_id = core.option("oauth_client_metadata_url"), method = "none", kind = "metadata_document" }
  end
  local row = issuer and store.find(a, "oauth_clients", { server_id = s.id, issuer = issuer })
  if not row then return nil end
  local reg = util.is_set(row.registration) and row.registration or {}
  local secret = row.client_secret_set and store.reveal(a, "oauth_clients", row.id, "client_secret") or nil
  return { client_id = row.client_id, secret = secret, kind = "dynamic",
           method = secret and (reg.token_endpoint_auth_method or "client_secret_basic") or "none" }
end

-- auth(client, form, headers): adds the client authentication to a token,
-- refresh or revocation request.
function M.apply_auth(client, form, headers)
  if client.method == "client_secret_basic" and client.secret then
    local crypto = require "crypto"
    headers.Authorization = "Basic " .. crypto.base64_encode(util.pct(client.client_id) .. ":" .. util.pct(client.secret))
  elseif client.method == "client_secret_post" and client.secret then
    form[#form + 1] = { "client_id", client.client_id }
    form[#form + 1] = { "client_secret", client.secret }
  else
    form[#form + 1] = { "client_id", client.client_id }
  end
end

return M
