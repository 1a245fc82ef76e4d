-- continuations: calls that wait for their user's answers (tool.call and its kin answered
-- input_required): stored sealed, bound to tenant, user, assistant and target, single use.
local json = require "json"
local core = require "core"
local crypto = require "crypto"
local errors = require "errors"
local store = require "store"
local settings = require "settings"
local mcp = require "mcp"
local input = require "mcp.input"

local M = {}

M.MAX_STATE = 4 * 1024 * 1024      -- what a continuation may hold (the call's arguments included)
M.PER_USER = 100                   -- open continuations of one user; the oldest go first

-- sweep(a): a user's expired continuations are deleted, and the oldest
-- beyond PER_USER
local function sweep(a)
  local rows = store.list(a, "continuations", { where = { user_id = a.user_id }, limit = 500 }).items
  local now = core.now_ms()
  local live = #rows
  for _, r in ipairs(rows) do
    if r.expires_at < now or live > M.PER_USER then
      if pcall(store.delete, a, "continuations", r.id) and r.expires_at >= now then live = live - 1 end
    end
  end
end

-- create(ctx, s, bind, sus) -> the op's result {resultType = "input_required",
-- input_requests, continuation, expires_at}. bind = {kind = "tool"|"prompt"|
-- "resource", assistant_id, target}; sus: the suspended call (mcp.input),
-- whose state is sealed in the store: the token the host gets is the only
-- way back to it, and only its hash is stored.
function M.create(ctx, s, bind, sus)
  local a = ctx.actor
  if not a.user_id then errors.raise("forbidden", "only a tenant user's call can wait for answers") end
  local token = crypto.random_token(32)
  -- a 2026-07-28 call waits as long as the system allows (input_timeout_ms);
  -- a handshake-era one as long as its server holds the request (ttl_ms)
  local ttl = math.min(sus.ttl_ms or math.huge, settings.get("input_timeout_ms"))
  local expires = core.now_ms() + ttl
  -- what is stored: everything but the live parts (fields named _...)
  local state = {}
  for k, v in pairs(sus) do if type(k) == "string" and k:sub(1, 1) ~= "_" then state[k] = v end end
  local ok, e = pcall(function()
    if sus._hold then
      -- a handshake-era call's stream is held by this engine under a key of its own
      state.park_key = crypto.random_token(24)
      if not sus._hold(state.park_key, ttl) then
        errors.raise("unavailable", "too many calls wait for their users' answers on this engine instance; try again later",
          nil, { reason = "too_many_waiting" })
      end
    end
    local text = json.encode(state)
    if #text > M.MAX_STATE then
      errors.raise("too_large", "the call is too large to wait for answers (" .. #text .. " bytes)", nil, { reason = "too_large" })
    end
    pcall(sweep, a)
    store.insert(a, "continuations", {
      server_id = s.id, user_id = a.user_id, assistant_id = bind.assistant_id, kind = bind.kind, target = bind.target,
      token_hash = crypto.sha256(token), state = text, expires_at = expires,
    })
  end)
  if not ok then
    -- the call cannot wait: it ends, and its server is told
    if sus._drop then
      local held = state.park_key and mcp.unpark(state.park_key)
      if held then held:close() end
      pcall(sus._drop)
    end
    error(e, 0)
  end
  local shown = json.array()
  for i, d in ipairs(sus.requests) do shown[i] = d end
  return { resultType = "input_required", input_requests = shown, continuation = token, expires_at = expires }
end

-- take(ctx, kind, token) -> row, state: the caller's own continuation of this
-- kind. Anyone else's, an unknown or a used one is not_found (no existence
-- leak); an expired one is timeout (and gone).
function M.take(ctx, kind, token)
  local a = ctx.actor
  if not a.user_id then errors.raise("forbidden", "only a tenant user can continue a call") end
  local row = store.find(a, "continuations", { token_hash = crypto.sha256(token) })
  if not row or row.user_id ~= a.user_id or row.kind ~= kind then
    errors.raise("not_found", "unknown continuation: it was used already, expired, or belongs to someone else",
      "continuation")
  end
  if row.expires_at < core.now_ms() then
    pcall(store.delete, a, "continuations", row.id)
    errors.raise("timeout", "the continuation expired: the call waited " .. tostring(math.floor((row.expires_at -
      row.created_at) / 1000)) .. " s for its answers", "continuation", { reason = "expired" })
  end
  local text = store.reveal(a, "continuations", row.id, "state")
  local ok, state = pcall(json.decode, text or "")
  if not ok or type(state) ~= "table" or type(state.requests) ~= "table" then
    errors.raise("internal", "a continuation's state could not be read")
  end
  return row, state
end

-- answers(state, given) -> the host's answers checked against the requests
-- the continuation waits for (invalid_argument names the field; the
-- continuation stays usable)
function M.answers(state, given)
  return input.responses(state.requests, given, "input_responses")
end

-- finish(ctx, s, kind, assistant_id, target, r) -> the op's result: r, or,
-- for a call that waits for its user's answers, a continuation of it
-- (create, bound to {kind, assistant_id, target})
function M.finish(ctx, s, kind, assistant_id, target, r)
  if input.is_suspended(r) then
    return M.create(ctx, s, { kind = kind, assistant_id = assistant_id, target = target }, r)
  end
  return r
end

-- consume(ctx, row): single use: whoever deletes it first carries the call on
function M.consume(ctx, row)
  if not pcall(store.delete, ctx.actor, "continuations", row.id) then
    errors.raise("not_found", "this continuation was used already", "continuation", { reason = "replayed" })
  end
end

return M
