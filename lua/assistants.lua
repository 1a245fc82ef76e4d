-- assistants: the rules about assistants that several op families share: who
-- sees and changes one, and which attached servers and tools it may use.
local errors = require "errors"
local store = require "store"
local model = require "model"
local toolnames = require "toolnames"
local capabilities = require "capabilities"
local json = require "json"

local M = {}

local function is_set(v) return v ~= nil and v ~= json.null end

-- visible(a, row): space assistants are the tenant's; personal ones only
-- their owner's.
function M.visible(a, row)
  if is_set(row.space_id) then return true end
  return row.owner_user_id == a.user_id
end

-- get(a, ref, field [, shared]) -> an assistant the actor may see | raises
-- not_found; shared: the row shared with later ops (model.shared_row), for
-- callers that only read it
function M.get(a, ref, field, shared)
  local row
  if shared then row = model.shared_row(a, "assistants", ref)
  else row = store.find(a, "assistants", { id = ref }) end
  if not row or not M.visible(a, row) then
    errors.raise("not_found", "assistant '" .. tostring(ref) .. "' not found", field)
  end
  return row
end

-- check_manage(a, row): may the actor change this assistant? Its owner, or a
-- tenant admin for space assistants; raises forbidden otherwise.
function M.check_manage(a, row)
  if row.owner_user_id == a.user_id then return end
  if a.role == "admin" and is_set(row.space_id) then return end
  errors.raise("forbidden", "only the assistant's owner or a tenant admin can change assistant '" .. row.name .. "'")
end

-- requirement(a, assistant) -> nil (personal), or {space, need} where need
-- is the space's classification row (nil: none), or {missing=true}
local function requirement(a, asst)
  if not is_set(asst.space_id) then return nil end
  local sp = store.find(a, "spaces", { id = asst.space_id })
  if not sp then return { missing = true } end
  return { space = sp, need = model.classification_of(a, sp.classification_id) }
end

-- judge(req, s) -> true | false, code, reason ; s = {name, enabled,
-- level, cname}: the same rules at attach time and at every use: enabled for
-- the tenant, and the server's classification meets the space's requirement.
local function judge(req, s)
  if not s.enabled then
    return false, "forbidden", "server '" .. s.name .. "' is not enabled as a tool for this tenant"
  end
  if not req then return true end
  if req.missing then return false, "not_found", "the assistant's space no longer exists" end
  local need, sp = req.need, req.space
  if not need then return true end
  if s.level == nil then
    return false, "forbidden", string.format(
      "server '%s' has no security classification; space '%s' requires '%s' (level %d)",
      s.name, sp.name, need.name, need.level)
  end
  if s.level < need.level then
    return false, "forbidden", string.format(
      "server '%s' is classified '%s' (level %d), below space '%s' requirement '%s' (level %d)",
      s.name, s.cname, s.level, sp.name, need.name, need.level)
  end
  return true
end

-- usable(a, assistant, server_row) -> true | false, code, reason
function M.usable(a, asst, s)
  local have = model.classification_of(a, s.classification_id)
  return judge(requirement(a, asst), {
    name = s.name, enabled = store.find(a, "enablements", { server_id = s.id }) ~= nil,
    level = have and have.level, cname = have and have.name })
end

-- usable_server(a, assistant, ref) -> the attached server the assistant may
-- use, or raises the precise reason (field "server")
function M.usable_server(a, asst, ref)
  local s = model.ref(a, "servers", ref, "server")
  if not store.find(a, "attachments", { assistant_id = asst.id, server_id = s.id }) then
    errors.raise("not_found", "server '" .. s.name .. "' is not attached to this assistant", "server")
  end
  local ok, code, reason = M.usable(a, asst, s)
  if not ok then errors.raise(code, reason, "server") end
  return s
end

-- attached(a, asst) -> list of {server={id, name, capabilities_status},
-- usable, code, reason}; one query for all attached servers
function M.attached(a, asst)
  local req = requirement(a, asst)
  local out = {}
  for _, r in ipairs(store.query(a, "assistant_servers", { assistant_id = asst.id })) do
    local ok, code, reason = judge(req, { name = r.server_name, enabled = r.enabled,
      level = is_set(r.classification_level) and r.classification_level or nil, cname = r.classification_name })
    out[#out + 1] = { server = { id = r.server_id, name = r.server_name,
                                 capabilities_status = r.capabilities_status },
                      usable = ok, code = code, reason = reason }
  end
  return out
end

-- entries(a, asst) -> attached servers and every tool entry {server, cap,
-- usable, code, reason, name}. Names are assigned over all attached servers,
-- usable or not, so a tool keeps its name when another server changes state.
function M.entries(a, asst)
  local servers = M.attached(a, asst)
  local by_id = {}
  for _, e in ipairs(servers) do by_id[e.server.id] = e end
  local entries = {}
  for _, r in ipairs(capabilities.assistant_tools(a, asst.id)) do
    local e = by_id[r.server_id]
    if e then
      entries[#entries + 1] = { server = e.server, usable = e.usable, code = e.code, reason = e.reason,
        cap = { name = r.name, definition = r.definition, status = r.status,
                approved_definition = r.approved_definition } }
    end
  end
  table.sort(entries, function(x, y)
    if x.server.name ~= y.server.name then return x.server.name < y.server.name end
    return x.cap.name < y.cap.name
  end)
  local names = toolnames.assign(entries)
  for i, en in ipairs(entries) do en.name = names[i] end
  return servers, entries
end

-- the entries of an assistant by their names
local function entries_by_name(a, asst)
  local _, entries = M.entries(a, asst)
  local byname = {}
  for _, e in ipairs(entries) do byname[e.name] = e end
  return byname
end

-- entry(a, asst, name) -> the assistant's tool entry with that name | nil.
-- The entries are computed once under the op's change counters and shared
-- with later calls (model.under_counters): read them, do not change them.
function M.entry(a, asst, name)
  return model.under_counters(a, "entries|" .. asst.id, entries_by_name, a, asst)[name]
end

return M
