-- oauth/guard: what a call to an OAuth server does on 401 (refresh once and
-- retry) and on 403 insufficient_scope (mark the connection for step-up).
local errors = require "errors"
local store = require "store"
local json = require "json"
local log = require "log"
local util = require "oauth.util"
local tokens = require "oauth.tokens"
local discovery = require "oauth.discovery"

local M = {}

M.MAX_STEP_UP = 3

-- token(ctx, s): the oauth auth type's credential (authtypes.lua); remembers
-- which token this call used (its fingerprint) so a 401 refreshes only that one.
function M.token(ctx, s)
  local t = tokens.access_token(ctx, s)
  ctx.oauth_used = ctx.oauth_used or {}
  ctx.oauth_used[s.id] = tokens.fp(t)
  return t
end

local function www(e) return type(e) == "table" and e.www_authenticate or nil end

-- mark_step_up(ctx, s, scope_text) -> step_up record or nil when exhausted
function M.mark_step_up(ctx, s, scope)
  local row = tokens.row(ctx, s)
  if not row then return nil end
  local prev = util.is_set(row.step_up) and row.step_up or {}
  local attempts = (type(prev.attempts) == "number" and prev.attempts or 0)
  local rec = { scopes = util.scope_list(scope), attempts = attempts, at = require("core").now_ms() }
  store.update(ctx.actor, "oauth_tokens", row.id, { step_up = rec })
  return rec
end

-- run(ctx, s, fn) -> fn's result. fn opens the connection itself, so a retry
-- picks up the refreshed token.
function M.run(ctx, s, fn)
  if s.auth_type ~= "oauth" then return fn() end
  local ok, res = pcall(fn)
  if ok then return res end
  local e = res
  if type(e) == "table" and e.code == "unauthorized" and (e.http_status == 401 or e.http_status == nil) then
    local used = ctx.oauth_used and ctx.oauth_used[s.id]
    if used then
      log.info("oauth: 401 from server", s.id, "- refreshing the token once")
      tokens.refresh(ctx, s, { stale_fp = used })
      return fn()
    end
  elseif type(e) == "table" and e.code == "forbidden" and www(e) then
    local ch = discovery.parse_challenge(www(e))
    if ch and ch.error == "insufficient_scope" then
      local rec = M.mark_step_up(ctx, s, ch.scope)
      local scopes = ch.scope and (" (" .. ch.scope .. ")") or ""
      -- MAX_STEP_UP bounds the authorizations in all, the first one included
      if rec and rec.attempts + 1 >= M.MAX_STEP_UP then
        errors.raise("forbidden", "server '" .. s.name .. "' still needs more scope" .. scopes .. " after " ..
          (rec.attempts + 1) .. " authorizations; ask an admin to check the server's OAuth scopes", nil,
          { reason = "insufficient_scope", step_up = false })
      end
      errors.raise("user_not_authenticated", "server '" .. s.name .. "' needs more permission" .. scopes ..
        ": connect again to grant it (oauth.begin)", nil, { reason = "insufficient_scope", step_up = true,
        scope = ch.scope or json.null })
    end
  end
  error(e, 0)
end

return M
