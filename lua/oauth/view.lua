-- oauth/view: the oauth object of a server record (server.get, server.list):
-- the endpoints and client in force, what discovery found, the user's status.
local json = require "json"
-- registration and tokens load with the first OAuth server's view: a record of
-- another auth type shows the oauth object empty without them
local function registration() return require "oauth.registration" end
local function tokens() return require "oauth.tokens" end

local M = {}

local function nullable(v) if v == nil then return json.null end return v end

local DEFAULTED = "no OAuth metadata found (RFC 9728 protected resource metadata, RFC 8414 or OpenID " ..
  "Connect authorization server metadata): the 2025-03-26 default endpoints at the server's origin are " ..
  "assumed; enter the endpoints (manual mode) if they are wrong"

-- What saving (or refreshing) an OAuth server found out about its
-- authorization server: status ok | defaulted | failed | manual | not_run.
local function oauth_discovery(s, m)
  local d = { status = "not_run", discovered_at = nullable(m.discovered_at),
              attempted_at = nullable(m.attempted_at), error = json.null, detail = json.null }
  if s.oauth_registration_mode == "manual" then
    d.status = "manual"
    d.detail = "manual configuration: the endpoints and client are the admin's; nothing is discovered"
  elseif m.error ~= nil and m.error ~= json.null then
    d.status, d.error = "failed", m.error
    d.detail = "the authorization server could not be discovered: " .. tostring(m.error.message) ..
      (m.discovered_at and "; the endpoints discovered before stay in force" or "") ..
      ". Fix the server's URL or metadata and save or refresh it, or enter the endpoints (manual mode)"
  elseif m.defaulted == true then
    d.status, d.detail = "defaulted", DEFAULTED
  elseif m.discovered_at then
    d.status = "ok"
  end
  return d
end

-- of(actor, s) -> the oauth object (every server has one; a server of
-- another auth type shows it empty)
function M.of(actor, s)
  local m = (s.oauth_metadata ~= nil and s.oauth_metadata ~= json.null) and s.oauth_metadata or {}
  local scopes = m.scopes_supported
  if scopes == nil or scopes == json.null then scopes = m.as_scopes_supported end
  local found = m.token_endpoint ~= nil
  local cimd = json.null
  if found then cimd = m.client_id_metadata_document_supported == true end
  local path = s.auth_type == "oauth" and registration().path(s, found and m or nil) or nil
  return {
    client_id = nullable(s.oauth_client_id),
    client_secret_set = s.oauth_client_secret_set == true,
    authorization_url = nullable(s.oauth_authorization_url),
    token_url = nullable(s.oauth_token_url),
    revocation_url = nullable(s.oauth_revocation_url),
    registration_url = nullable(m.registration_endpoint),
    scopes = s.oauth_scopes ~= nil and s.oauth_scopes ~= json.null and s.oauth_scopes or json.array(),
    scopes_supported = (scopes ~= nil and scopes ~= json.null) and scopes or json.array(),
    client_id_metadata_document_supported = cimd,
    -- how the engine will identify itself: preregistered, metadata_document, dynamic, none
    registration_path = nullable(path),
    registration_mode = nullable(s.oauth_registration_mode),
    issuer = nullable(s.oauth_issuer),
    discovery = oauth_discovery(s, m),
    discovered = nullable(s.oauth_metadata),
    -- the spec's status indicator: is the calling user connected?
    user_connected = s.auth_type == "oauth" and tokens().connected(actor, s),
  }
end

return M
