-- validation: the Validate action: a connection check as the calling user,
-- mapped to the spec's statuses; a tenant policy's validation() may override.
local json = require "json"
local log = require "log"
local connection = require "connection"
local authtypes = require "authtypes"

local M = {}

M.OK = "OK"
M.UNAUTHORIZED = "Unauthorized"
M.USER_NOT_AUTHENTICATED = "User not authenticated"
M.URL_NOT_SET = "Server URL not set"
M.FAILED = "Failed"

local ADVICE = {
  [M.OK] = "Server is reachable and authentication is working.",
  [M.UNAUTHORIZED] = "Server is reachable but the provided credentials were rejected. Check your API key or OAuth configuration.",
  [M.USER_NOT_AUTHENTICATED] = "The server uses OAuth and you have not completed the OAuth flow yet.",
  [M.URL_NOT_SET] = "Server URL is not set: edit the MCP server and provide a valid HTTPS URL.",
  [M.FAILED] = "The server could not be reached. Verify the URL is correct and publicly accessible.",
}

-- The status of a failed check by its error code, whatever the auth type;
-- an auth type adds its own (authtypes.lua: OAuth's user_not_authenticated).
local BY_CODE = { unauthorized = M.UNAUTHORIZED, forbidden = M.UNAUTHORIZED }
for _, t in ipairs(authtypes.ORDER) do
  for code, status in pairs(t.statuses or {}) do
    assert(ADVICE[status], "auth type " .. t.name .. " maps " .. code .. " to an unknown status " .. tostring(status))
  end
end

-- check(ctx, s) -> result: can the engine reach the server and authenticate,
-- as the calling user (discovery and a ping with the server's credentials)?
function M.check(ctx, s)
  local r = { auth_type = s.auth_type or "none" }
  if s.url == nil or s.url == json.null then
    r.ok, r.code, r.message = false, "url_not_set", nil
    return r
  end
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
  return r
end

-- map(result) -> {status, code, reason?, detail, reachable}
-- result = {ok=bool, code=error code|nil, reason (e.g. connect_failed), message,
--           http_status, reachable, www_authenticate, auth_type}
function M.map(r)
  local status
  if r.ok then status = M.OK
  elseif r.code == "url_not_set" then status = M.URL_NOT_SET
  else
    local t = authtypes.TYPES[r.auth_type or "none"]
    status = (t and t.statuses and t.statuses[r.code]) or BY_CODE[r.code] or M.FAILED
  end
  local detail = ADVICE[status]
  if not r.ok and r.message then detail = detail .. " (" .. r.message .. ")" end
  return { status = status, code = r.code or "ok", reason = (not r.ok) and r.reason or nil,
           detail = detail, reachable = r.reachable == true }
end

-- decide(ctx, result) -> mapped, letting the tenant policy override.
function M.decide(ctx, r)
  local mapped = M.map(r)
  local okp, policy = pcall(require, "policy")
  if okp and type(policy) == "table" and policy.call then
    local input = { result = r, proposed = mapped, tenant = ctx.actor.tenant }
    local out, reason = policy.call(ctx.actor.tenant, "validation", input)
    if type(out) == "table" then
      local valid = { [M.OK] = true, [M.UNAUTHORIZED] = true, [M.USER_NOT_AUTHENTICATED] = true,
                      [M.URL_NOT_SET] = true, [M.FAILED] = true }
      if out.status ~= nil and not valid[out.status] then
        log.warn("validation policy returned an unknown status; keeping", mapped.status)
      else
        if out.status then mapped.status = out.status end
        if type(out.detail) == "string" then mapped.detail = out.detail:sub(1, 2000) end
      end
    elseif reason and reason ~= "no_function" then
      log.warn("validation policy failed:", reason)
    end
  end
  return mapped
end

return M
