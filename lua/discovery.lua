-- discovery: learns what a server offers (era, identity, tools, resources,
-- resource templates, prompts) and stores it in one transaction, pinning
-- tool definitions: a changed definition waits for an admin's approval.
local store = require "store"
local json = require "json"
local core = require "core"
local log = require "log"
local connection = require "connection"
local authtypes = require "authtypes"
local capabilities = require "capabilities"

local M = {}

-- kind -> how the server advertises it and the list call (what names an
-- item, and what a tool's approval covers: capabilities.KINDS)
M.KINDS = {
  { kind = "tool", list = "tools", cap = "tools" },
  { kind = "resource", list = "resources", cap = "resources" },
  { kind = "resource_template", list = "resource_templates", cap = "resources" },
  { kind = "prompt", list = "prompts", cap = "prompts" },
}

local function is_set(v) return v ~= nil and v ~= json.null end

-- records(c, k) -> {items, names, at}: the list as stored, one text (the
-- canonical texts of its items, joined as they are read: no Lua value or
-- string is made of an item), and the names of the items it holds, each
-- name once (an item without a usable name, or with the name of one before
-- it, is left out), with their places.
local function records(c, k)
  local into = json.list_builder()
  local names, at, n = {}, {}, 0
  c:canonical(k.list, nil, { name = capabilities.KINDS[k.kind].key, into = into }, function(_, _, name)
    if not name or name == "" or at[name] then return false end
    n = n + 1
    names[n], at[name] = name, n
  end)
  return { items = into:text(), names = names, at = at }
end

-- fetch(ctx, s) -> info, lists (kind -> records) ; network only, no writes
function M.fetch(ctx, s)
  local c = connection.open(ctx, s, { fresh = true })
  local info = c:discover()
  local caps = info.capabilities or {}
  local lists = {}
  for _, k in ipairs(M.KINDS) do
    if caps[k.cap] ~= nil and caps[k.cap] ~= json.null then lists[k.kind] = records(c, k) end
  end
  return info, lists
end

-- apply(a, s, info, lists) -> diff ; one transaction: the server's
-- capabilities replaced (lua/capabilities.lua: tool definitions pinned) and
-- what discovery learnt recorded on its record.
function M.apply(a, s, info, lists)
  return store.tx(function()
    local diff = capabilities.replace(a, s.id, lists)
    local f = {
      capabilities_status = "ok", discovered_at = core.now_ms(),
      server_info = info.server_info or json.object(),
      protocol_era = info.era or json.null,
      protocol_version = info.protocol_version or json.null,
      discovery_error = json.null,
    }
    local si = info.server_info or {}
    local server_desc = (is_set(si.description) and si.description) or (is_set(info.instructions) and info.instructions) or nil
    if (not is_set(s.description) or s.description_source == "server") and type(server_desc) == "string" then
      f.description = server_desc:sub(1, 4000)
      f.description_source = "server"
      diff.description_from_server = true
    end
    store.update(a, "servers", s.id, f)
    return diff
  end)
end

-- refresh(ctx, s) -> {ok=true, diff=...} | {ok=false, error={code, message, reason?}}
-- A failure is recorded on the record (capabilities_status "error") and
-- returned, never raised: the admin's saved configuration stands.
local function fetch_apply(ctx, s)
  local info, lists = M.fetch(ctx, s)
  -- the pages read are garbage now: collected before the lists are joined
  -- and written, their memory holds those (10,001 tools: peak RSS -3 MB,
  -- and no slower: the collector had to get to them anyway)
  collectgarbage()
  return info, M.apply(ctx.actor, s, info, lists)
end

function M.refresh(ctx, s)
  -- States collect generationally (core/luastate.c): right for an op's
  -- short-lived garbage, wrong for a list of 10,001 tools made and dropped
  -- in one op, which would be promoted and kept (and after a full
  -- collection Lua 5.4.4 waits for twice the heap): discovery runs under
  -- the incremental collector (10,001 tools, the third refresh's peak RSS:
  -- 38.2 MB generational, 29.9 MB so).
  collectgarbage("incremental")
  local ok, info, diff = pcall(fetch_apply, ctx, s)
  -- The decoded pages, records and stored rows of a long list are garbage
  -- now: collected here, the next op (a refresh, another discovery) reuses
  -- their memory instead of growing the process beside them (10,001 tools:
  -- the next refresh's peak RSS 35.4 -> 33.5 MB, for ~1% more instructions)
  collectgarbage()
  collectgarbage("generational")
  if ok then return { ok = true, diff = diff, era = info.era, protocol_version = info.protocol_version } end
  local e = info
  local code = type(e) == "table" and e.code or "internal"
  local msg = type(e) == "table" and e.message or tostring(e)
  local reason = type(e) == "table" and type(e.reason) == "string" and e.reason or nil
  if code == "internal" then log.error("discovery failed for", s.id, msg); msg, reason = "internal error (see log)", nil end
  local err = { code = code, message = msg, reason = reason }
  pcall(store.update, ctx.actor, "servers", s.id, { capabilities_status = "error", discovery_error = err })
  return { ok = false, error = err }
end

-- A server whose credential is the user's (OAuth) has its capabilities
-- discovered with a user's. Until a user has connected they await one, which
-- is not an error.
local AWAITING = "awaiting_user"

-- Marks s as awaiting a user unless its capabilities came in already (or a
-- discovery with a user's token failed: that error stands).
-- reconfigured: server.update saved a new URL, auth type or credentials, so an
-- error recorded under the old configuration no longer says anything
local function mark_awaiting(ctx, s, detail, reconfigured)
  local st = s.capabilities_status or "not_discovered"
  local legacy = st == "error" and is_set(s.discovery_error) and s.discovery_error.code == "user_not_authenticated"
  if st == "not_discovered" or st == AWAITING or legacy or (reconfigured and st == "error") then
    s = store.update(ctx.actor, "servers", s.id, { capabilities_status = AWAITING, discovery_error = json.null })
  end
  return { ok = false, status = s.capabilities_status, detail = detail }
end

-- on_save(ctx, s, saved) -> capabilities result, the auth type's own outcome
-- (nil when it has none). What saving a URL or credentials (server.update)
-- and server.refresh discover: first what the auth type discovers of its own
-- (OAuth: the authorization server, at once), then the capabilities: now, or
-- for a per-user credential only when the calling user has one for this
-- URL. saved = {url_changed, args} (server.update's arguments).
function M.on_save(ctx, s, saved)
  local t = authtypes.of(s)
  local outcome
  if t.on_save then
    outcome = t.on_save(ctx, s, saved)
    s = store.get(ctx.actor, "servers", s.id)
  end
  if t.connected and (saved.url_changed or not t.connected(ctx.actor, s)) then
    return mark_awaiting(ctx, s, t.awaiting, saved.args ~= nil), outcome
  end
  return M.refresh(ctx, s), outcome
end

return M
