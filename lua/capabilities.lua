-- capabilities: where a server's discovered tools, resources, resource
-- templates and prompts are kept. The one module that knows their storage
-- (a row per capability, with its approved copy): discovery replaces a
-- server's lists, the ops read them and approve a changed tool. Callers see
-- capabilities as {kind, name, definition, status, approved_definition?}.
local store = require "store"
local json = require "json"

local M = {}

-- digests(a, sid) -> map kind -> name -> {hash, definition}: one named query
-- reads only what the diff of every row needs; the definition as its stored
-- canonical text (compared, never decoded: a refresh of thousands of
-- unchanged tools decodes nothing). The few rows that change or go are read
-- whole (row_of), so the stored side held beside the new list stays small.
local function digests(a, sid)
  local out = {}
  for _, r in ipairs(store.query(a, "capability_digests", { server_id = sid })) do
    local of = out[r.kind]
    if not of then of = {}; out[r.kind] = of end
    of[r.name] = r
  end
  return out
end

local function row_of(a, sid, kind, name)
  return store.find(a, "capabilities", { server_id = sid, kind = kind, name = name })
end

-- replace(a, sid, kinds, lists) -> diff: the server's capabilities become
-- those of lists (kind -> {names, canons, hashes}: each item's name, its
-- canonical text and the hash of its pinned part), for each kind of kinds
-- ({kind, pinned}: discovery.KINDS); a kind missing from lists is emptied.
-- New definitions go in with one bulk insert (as their canonical text,
-- encoded once); only changed and removed ones are written one by one. A pinned kind's changed
-- definition waits for an admin's approval (status "pending") unless it
-- went back to the approved one. Run inside the caller's transaction.
-- diff: kind .. "s" -> {added, removed, changed, pending} (sorted names).
function M.replace(a, sid, kinds, lists)
  local old = digests(a, sid)
  local diff = {}
  local new = {}
  for _, k in ipairs(kinds) do
    local d = { added = json.array(), removed = json.array(), changed = json.array(), pending = json.array() }
    local seen = {}
    local recs = lists[k.kind] or { names = {} }
    local was = old[k.kind] or {}
    for i, name in ipairs(recs.names) do
      if not seen[name] then
        seen[name] = true
        -- the canonical text is what the store keeps: for kinds without a
        -- pinned part it is also what the hash covers
        local canon, h = recs.canons[i], recs.hashes[i]
        local dg = was[name]
        if not dg then
          new[#new + 1] = { server_id = sid, kind = k.kind, name = name,
            definition = canon, hash = h, approved_definition = canon, approved_hash = h, status = "approved" }
          d.added[#d.added + 1] = name
        elseif dg.hash ~= h then
          -- the few changed ones: their definition again from its canonical text
          local row = row_of(a, sid, k.kind, name)
          local item = json.decode(canon)
          local fields = { definition = item, hash = h }
          if k.pinned then
            -- pinned: a change to what the model sees needs an admin's approval
            if h == row.approved_hash then fields.status = "approved"
            else fields.status = "pending"; d.pending[#d.pending + 1] = name end
          else
            fields.approved_definition, fields.approved_hash, fields.status = item, h, "approved"
          end
          store.update(a, "capabilities", row.id, fields)
          d.changed[#d.changed + 1] = name
        elseif canon ~= dg.definition then
          -- same pinned part, other fields (e.g. _meta) changed: keep current
          store.update(a, "capabilities", row_of(a, sid, k.kind, name).id, { definition = json.decode(canon) })
        end
      end
    end
    for name in pairs(was) do
      if not seen[name] then
        store.delete(a, "capabilities", row_of(a, sid, k.kind, name).id)
        d.removed[#d.removed + 1] = name
      end
    end
    for _, l in pairs(d) do table.sort(l) end
    diff[k.kind .. "s"] = d
  end
  if #new > 0 then store.insert_many(a, "capabilities", new, { json_text = true }) end
  return diff
end

-- view(row) -> what callers see of a stored capability
local function view(c)
  local v = { kind = c.kind, name = c.name, definition = c.definition, status = c.status }
  if c.status == "pending" then v.approved_definition = c.approved_definition end
  return v
end

-- of_server(a, sid) -> every capability of the server, in discovery order
function M.of_server(a, sid)
  local out, cursor = {}, nil
  repeat
    local page = store.list(a, "capabilities", { where = { server_id = sid }, limit = 500, cursor = cursor })
    for _, c in ipairs(page.items) do out[#out + 1] = view(c) end
    cursor = page.next_cursor
  until cursor == nil or cursor == json.null
  return out
end

-- assistant_tools(a, asst_id) -> every tool of every server attached to the
-- assistant, each with at least {server_id, name, definition, status}: one query
function M.assistant_tools(a, asst_id)
  return store.query(a, "assistant_tools", { assistant_id = asst_id })
end

-- approved_definition(a, sid, name) -> the definition of a tool awaiting
-- approval that the model keeps seeing meanwhile (nil: none)
function M.approved_definition(a, sid, name)
  local row = row_of(a, sid, "tool", name)
  return row and row.approved_definition or nil
end

-- approve(a, sid, name) -> the tool's status after ("approved"), or nil
-- when the server has no such tool. Its current definition becomes the
-- approved one.
function M.approve(a, sid, name)
  local c = row_of(a, sid, "tool", name)
  if not c then return nil end
  if c.status ~= "pending" then return c.status end
  store.update(a, "capabilities", c.id, { approved_definition = c.definition, approved_hash = c.hash, status = "approved" })
  return "approved"
end

return M
