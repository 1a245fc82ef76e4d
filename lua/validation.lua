-- validation: maps the low-level result of a connection check to the spec's
-- statuses. A tenant policy's validation(result) may override the mapping.
local json = require "json"
local log = require "log"

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

-- map(result) -> {status, code, reason?, detail, reachable}
-- result = {ok=bool, code=error code|nil, reason (e.g. connect_failed), message,
--           http_status, reachable, www_authenticate, auth_type}
function M.map(r)
  local status
  if r.ok then status = M.OK
  elseif r.code == "url_not_set" then status = M.URL_NOT_SET
  elseif r.code == "user_not_authenticated" then status = M.USER_NOT_AUTHENTICATED
  elseif r.code == "unauthorized" or r.code == "forbidden" then status = M.UNAUTHORIZED
  else status = M.FAILED end
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
