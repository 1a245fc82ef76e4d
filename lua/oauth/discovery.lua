-- oauth/discovery: finds a server's authorization server the MCP way: the
-- 401 challenge, protected resource metadata (RFC 9728), then AS metadata.
local errors = require "errors"
local json = require "json"
local log = require "log"
local util = require "oauth.util"

local M = {}

-- parse_challenge(header) -> params of the Bearer challenge (lower-case
-- names), or nil. Handles several challenges and quoted strings.
function M.parse_challenge(h)
  if type(h) ~= "string" then return nil end
  local i, n = 1, #h
  local found, params
  while i <= n do
    local s, e, word = h:find("^[%s,]*([%w!#$%%&'*+%-.^_`|~]+)", i)
    if not s then break end
    i = e + 1
    local after = h:sub(i)
    if after:match("^%s*=") then
      -- an auth-param of the current challenge
      local _, e2 = h:find("^%s*=%s*", i)
      i = e2 + 1
      local val
      if h:sub(i, i) == '"' then
        local buf, j = {}, i + 1
        while j <= n do
          local c = h:sub(j, j)
          if c == "\\" then buf[#buf + 1] = h:sub(j + 1, j + 1); j = j + 2
          elseif c == '"' then break
          else buf[#buf + 1] = c; j = j + 1 end
        end
        val = table.concat(buf)
        i = j + 1
      else
        local _, e3, tok = h:find("^([^%s,]*)", i)
        val = tok
        i = e3 + 1
      end
      if params and params[word:lower()] == nil then params[word:lower()] = val end
    else
      -- a new challenge (scheme name), maybe followed by a token68
      local p = {}
      if word:lower() == "bearer" and not found then found = p end
      params = p
    end
  end
  return found
end

-- Same origin, and the metadata's resource is the server URL or one of its
-- parent paths (at a segment boundary), the way the official SDKs accept it.
function M.resource_matches(resource, server_url)
  local r, s = util.split(resource), util.split(server_url)
  if not r or not s or r.origin ~= s.origin or r.query then return false end
  local rp = r.path:gsub("/+$", "")
  local sp = s.path:gsub("/+$", "")
  return rp == "" or sp == rp or sp:sub(1, #rp + 1) == rp .. "/"
end

-- The server URL as the RFC 8707 resource: no fragment, lower-case scheme
-- and host, no trailing slash on a bare origin.
function M.canonical_resource(url)
  local u = util.split(url)
  if not u then return url end
  local path = u.path == "/" and "" or u.path
  return u.origin .. path .. (u.query and ("?" .. u.query) or "")
end

-- discover_probe(ctx, s) -> response: an unauthenticated server/discover,
-- the first request of a 2026-07-28 client, which such a server challenges
local function discover_probe(ctx, s)
  local info = { name = "mcplink", version = require("core").version }
  local body = json.encode({ jsonrpc = "2.0", id = 1, method = "server/discover", params = { _meta = {
    ["io.modelcontextprotocol/protocolVersion"] = "2026-07-28",
    ["io.modelcontextprotocol/clientInfo"] = info,
    ["io.modelcontextprotocol/clientCapabilities"] = json.object() } } })
  return util.request(ctx, { method = "POST", url = s.url, purpose = "oauth_metadata", body = body,
    headers = { ["Content-Type"] = "application/json", Accept = "application/json, text/event-stream",
                ["MCP-Protocol-Version"] = "2026-07-28", ["Mcp-Method"] = "server/discover" },
    timeout_ms = 15000, max_bytes = 256 * 1024, follow_redirects = false })
end

-- probe(ctx, s) -> challenge params | nil, http status. One unauthenticated
-- initialize request: a protected server answers 401 with its challenge (its
-- scope is what the first authorization asks for). A server that refuses
-- initialize outright speaks 2026-07-28: its first request, server/discover,
-- is asked instead.
function M.probe(ctx, s)
  local body = json.encode({ jsonrpc = "2.0", id = 1, method = "initialize", params = {
    protocolVersion = "2025-11-25", capabilities = json.object(),
    clientInfo = { name = "mcplink", version = require("core").version } } })
  local r = util.request(ctx, { method = "POST", url = s.url, purpose = "oauth_metadata", body = body,
    headers = { ["Content-Type"] = "application/json", Accept = "application/json, text/event-stream" },
    timeout_ms = 15000, max_bytes = 256 * 1024, follow_redirects = false })
  if r.status >= 400 and r.status < 500 and r.status ~= 401 and r.status ~= 403 then
    local r2 = discover_probe(ctx, s)
    if r2.status == 401 or r2.status == 403 then r = r2 end
  end
  local h = r.headers and r.headers["www-authenticate"]
  if r.status == 401 or r.status == 403 then return M.parse_challenge(h) or {}, r.status end
  if r.status >= 200 and r.status < 300 then
    -- some servers let initialize through and challenge the first real
    -- request: ask for the tool list once, in that session, to see its scope
    local sid = r.headers and r.headers["mcp-session-id"]
    local r2 = util.request(ctx, { method = "POST", url = s.url, purpose = "oauth_metadata",
      body = json.encode({ jsonrpc = "2.0", id = 2, method = "tools/list" }),
      headers = { ["Content-Type"] = "application/json", Accept = "application/json, text/event-stream",
                  ["Mcp-Session-Id"] = sid, ["MCP-Protocol-Version"] = "2025-11-25" },
      timeout_ms = 15000, max_bytes = 256 * 1024, follow_redirects = false })
    if r2.status == 401 or r2.status == 403 then
      return M.parse_challenge(r2.headers and r2.headers["www-authenticate"]) or {}, r2.status
    end
  end
  return nil, r.status
end

-- well-known candidates for protected resource metadata (path first)
local function prm_candidates(server_url)
  local u = util.split(server_url)
  local out = {}
  local path = u.path:gsub("/+$", "")
  if path ~= "" then out[#out + 1] = u.origin .. "/.well-known/oauth-protected-resource" .. path end
  out[#out + 1] = u.origin .. "/.well-known/oauth-protected-resource"
  return out
end

-- resource_metadata(ctx, server_url, hint) -> doc, url | nil
function M.resource_metadata(ctx, server_url, hint)
  local tried = {}
  local cands = {}
  if util.is_set(hint) then
    if not util.split(hint) then
      errors.raise("upstream_error", "the server's resource_metadata URL is not a valid http(s) URL")
    end
    cands[1] = hint
  else
    cands = prm_candidates(server_url)
  end
  for _, url in ipairs(cands) do
    local status, doc = util.get_json(ctx, url, "oauth_metadata")
    tried[#tried + 1] = url .. " (" .. tostring(status) .. ")"
    if doc then
      if type(doc.resource) ~= "string" or not M.resource_matches(doc.resource, server_url) then
        errors.raise("upstream_error", "protected resource metadata at " .. url .. " names resource '" ..
          tostring(doc.resource) .. "', not this server (" .. server_url .. "): refusing to use it",
          nil, { reason = "resource_mismatch" })
      end
      return doc, url
    end
  end
  log.debug("oauth: no protected resource metadata:", table.concat(tried, ", "))
  return nil
end

-- AS metadata URLs in the order MCP 2025-11-25 gives.
function M.as_candidates(issuer)
  local u = util.split(issuer)
  if not u then return {} end
  local path = u.path:gsub("/+$", "")
  if path == "" then
    return { u.origin .. "/.well-known/oauth-authorization-server",
             u.origin .. "/.well-known/openid-configuration" }
  end
  return { u.origin .. "/.well-known/oauth-authorization-server" .. path,
           u.origin .. "/.well-known/openid-configuration" .. path,
           u.origin .. path .. "/.well-known/openid-configuration" }
end

-- check_as(meta, issuer): the RFC 8414 §3.3 issuer check and PKCE S256.
function M.check_as(meta, issuer, url)
  if meta.issuer ~= issuer then
    errors.raise("upstream_error", "authorization server metadata at " .. url .. " names issuer '" ..
      tostring(meta.issuer) .. "', expected '" .. issuer .. "': refusing to use it", nil,
      { reason = "issuer_mismatch" })
  end
  local methods = meta.code_challenge_methods_supported
  local s256 = false
  if type(methods) == "table" then for _, m in ipairs(methods) do if m == "S256" then s256 = true end end end
  if not s256 then
    errors.raise("upstream_error", "the authorization server " .. issuer ..
      " does not advertise PKCE S256 (code_challenge_methods_supported): refusing to proceed", nil,
      { reason = "no_pkce" })
  end
  for _, k in ipairs({ "authorization_endpoint", "token_endpoint" }) do
    if type(meta[k]) ~= "string" or not util.split(meta[k]) then
      errors.raise("upstream_error", "authorization server metadata of " .. issuer .. " lacks a valid " .. k)
    end
  end
end

-- as_metadata(ctx, issuer) -> meta | nil when no document was found
function M.as_metadata(ctx, issuer)
  for _, url in ipairs(M.as_candidates(issuer)) do
    local _, doc = util.get_json(ctx, url, "oauth_metadata")
    if doc then
      M.check_as(doc, issuer, url)
      return doc
    end
  end
  return nil
end

-- discover(ctx, s) -> cfg
-- cfg = {resource, issuer, meta (AS metadata), prm, challenge_scope, scopes_supported, legacy}
function M.discover(ctx, s)
  local ch = M.probe(ctx, s)
  ch = ch or {}
  local prm = M.resource_metadata(ctx, s.url, ch.resource_metadata)
  local cfg = { challenge_scope = ch.scope, resource = M.canonical_resource(s.url) }
  if prm then
    cfg.prm = prm
    cfg.resource = prm.resource
    local servers = prm.authorization_servers
    if type(servers) ~= "table" or type(servers[1]) ~= "string" then
      errors.raise("upstream_error", "the server's protected resource metadata names no authorization server")
    end
    cfg.issuer = servers[1]
    cfg.meta = M.as_metadata(ctx, cfg.issuer)
    if not cfg.meta then
      errors.raise("upstream_error", "no authorization server metadata found for " .. cfg.issuer ..
        " (tried RFC 8414 and OpenID Connect discovery)")
    end
    if type(prm.scopes_supported) == "table" then cfg.scopes_supported = prm.scopes_supported end
    return cfg
  end
  -- 2025-03-26 fallback: the MCP origin is the authorization server
  local u = util.split(s.url)
  cfg.legacy = true
  cfg.issuer = u.origin
  for _, url in ipairs({ u.origin .. "/.well-known/oauth-authorization-server" }) do
    local _, doc = util.get_json(ctx, url, "oauth_metadata")
    if doc then
      -- the document comes from the MCP origin itself (2025-03-26): it may
      -- name an issuer under that origin (e.g. /oauth), never another origin
      local du = util.split(doc.issuer)
      local iss = (du and du.origin == u.origin) and doc.issuer or u.origin
      M.check_as(doc, iss, url)
      cfg.issuer = doc.issuer
      cfg.meta = doc
      return cfg
    end
  end
  cfg.meta = { issuer = u.origin, authorization_endpoint = u.origin .. "/authorize",
               token_endpoint = u.origin .. "/token", registration_endpoint = u.origin .. "/register",
               code_challenge_methods_supported = { "S256" }, defaulted = true }
  return cfg
end

-- The part of the discovery result kept on the server record.
function M.record(cfg)
  local m = cfg.meta
  return {
    resource = cfg.resource, issuer = cfg.issuer,
    authorization_endpoint = m.authorization_endpoint, token_endpoint = m.token_endpoint,
    revocation_endpoint = m.revocation_endpoint or json.null,
    registration_endpoint = m.registration_endpoint or json.null,
    token_endpoint_auth_methods_supported = m.token_endpoint_auth_methods_supported or json.null,
    client_id_metadata_document_supported = m.client_id_metadata_document_supported == true,
    authorization_response_iss_parameter_supported = m.authorization_response_iss_parameter_supported == true,
    scopes_supported = cfg.scopes_supported or json.null,
    as_scopes_supported = type(m.scopes_supported) == "table" and m.scopes_supported or json.null,
    challenge_scope = cfg.challenge_scope or json.null,
    legacy = cfg.legacy == true, defaulted = m.defaulted == true,
  }
end

return M
