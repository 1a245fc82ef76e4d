-- model: shared pieces of the admin workflows: name rules, reference
-- resolution (id or name, always tenant-scoped) and the records ops return.
local errors = require "errors"
local store = require "store"
local json = require "json"
local authtypes = require "authtypes"

local M = {}

M.NAME = { type = "string", min = 1, max = 200 }
M.SLUG = { type = "string", min = 1, max = 64, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
           pattern_doc = "must start with a letter or digit and use only letters, digits, '.', '_' and '-'" }
-- required(spec) -> a copy of spec that must be present
function M.required(spec)
  local c = {}
  for k, v in pairs(spec) do c[k] = v end
  c.required = true
  return c
end

M.LIMIT = { type = "integer", min = 1, max = 500 }
M.CURSOR = { type = "string", max = 200 }

-- paging(args) -> opts for store.list
function M.paging(args, where)
  return { where = where or {}, limit = args.limit, cursor = args.cursor }
end

local NOUN = { servers = "server", spaces = "space", assistants = "assistant",
               classifications = "classification", users = "user", tenants = "tenant" }

-- Values made under the change counters the op read with its actor
-- (store.cache_version: any change to the tenant's rows or the settings, on
-- any instance, gives other counters), shared with the later ops of this
-- Lua state that read under the same ones. Per state; dropped whole past
-- SHARED_MAX. A shared value is read, never changed.
local shared, shared_n, SHARED_MAX = {}, 0, 256

-- under_counters(actor, key, make, ...) -> make(...), or what it made for an
-- earlier op under the same counters (key names what make computes; nil is
-- kept too). Without counters to key by (the system actor, a write earlier
-- in the op), make runs every time. (make and its arguments are passed, not
-- a closure, so a hit makes nothing.)
function M.under_counters(actor, key, make, ...)
  local v = actor.tenant_id and store.cache_version(actor.tenant_id)
  if not v then return make(...) end
  -- by counters, then by key (no joined key to build and hash per read)
  local bucket = shared[v]
  local val = bucket and bucket[key]
  if val == nil then
    val = make(...)
    if val == nil then val = false end
    if shared_n >= SHARED_MAX then shared, shared_n, bucket = {}, 0, nil end
    if not bucket then bucket = {}; shared[v] = bucket end
    bucket[key], shared_n = val, shared_n + 1
  end
  if val == false then return nil end
  return val
end

-- shared_row(actor, table, id) -> the row, shared (under_counters) | nil
-- (none, or not visible to the actor's tenant: the read is tenant-scoped
-- like store.find). The ops that call a server's tools use them so a call
-- does not decode the same rows again.
local function find_by_id(actor, tbl, id) return store.find(actor, tbl, { id = id }) end

function M.shared_row(actor, tbl, id)
  return M.under_counters(actor, tbl .. "|" .. id, find_by_id, actor, tbl, id)
end

-- ref(actor, table, ref, field): a row by id, else by unique name.
function M.ref(actor, tbl, ref, field)
  if type(ref) ~= "string" or ref == "" then
    errors.raise("invalid_argument", "'" .. field .. "' must be an id or a name", field)
  end
  local row = store.find(actor, tbl, { id = ref })
  if not row then row = store.find(actor, tbl, { name = ref }) end
  if not row then
    errors.raise("not_found", (NOUN[tbl] or tbl) .. " '" .. ref .. "' not found", field)
  end
  return row
end

local function nullable(v) if v == nil then return json.null end return v end
M.nullable = nullable

function M.classification_view(c)
  if not c then return json.null end
  return { id = c.id, name = c.name, level = c.level, description = nullable(c.description) }
end

-- classification of a row's classification_id, or nil
function M.classification_of(actor, id)
  if id == nil or id == json.null then return nil end
  return store.find(actor, "classifications", { id = id })
end

function M.server_view(actor, s)
  -- enablement and classification in one read
  local m = store.query(actor, "server_meta", { server_id = s.id })[1] or {}
  local cls = json.null
  if m.classification_id ~= nil then
    cls = { id = m.classification_id, name = m.classification_name, level = m.classification_level,
            description = nullable(m.classification_description) }
  end
  local v = {
    id = s.id, name = s.name,
    description = nullable(s.description),
    description_source = nullable(s.description_source),
    url = nullable(s.url),
    url_set = s.url ~= nil and s.url ~= json.null,
    auth_type = s.auth_type or "none",
    classification = cls,
    timeout_ms = nullable(s.timeout_ms),
    capabilities_status = s.capabilities_status or "not_discovered",
    discovered_at = nullable(s.discovered_at),
    enabled = m.enabled == true,
    created_at = s.created_at, updated_at = s.updated_at,
  }
  -- each auth type's own fields (api_key_set, oauth), whatever the server uses
  return authtypes.view(actor, s, v)
end

function M.space_view(actor, sp)
  return { id = sp.id, name = sp.name,
           classification = M.classification_view(M.classification_of(actor, sp.classification_id)),
           created_at = sp.created_at }
end

function M.assistant_view(actor, a)
  local space = json.null
  if a.space_id ~= nil and a.space_id ~= json.null then
    local sp = store.find(actor, "spaces", { id = a.space_id })
    if sp then space = { id = sp.id, name = sp.name } end
  end
  return { id = a.id, name = a.name, space = space, personal = space == json.null,
           owner_user_id = a.owner_user_id, created_at = a.created_at }
end

function M.user_view(u)
  return { id = u.id, name = u.name, role = u.role, created_at = u.created_at }
end

-- list(actor, table, args, where, view) -> {items, next_cursor}
function M.list(actor, tbl, args, where, view)
  local page = store.list(actor, tbl, M.paging(args, where))
  local items = json.array()
  for i, row in ipairs(page.items) do items[i] = view(row) end
  return { items = items, next_cursor = page.next_cursor or json.null }
end

return M
