-- capabilities: where a server's discovered tools, resources, resource
-- templates and prompts are kept; the one module that knows their storage.
-- Callers see capabilities as {kind, name, definition, status,
-- approved_definition?}.
--
-- Storage (store migration 7): per server and kind one row of
-- capability_lists. Its `items` are the definitions' canonical texts as one
-- JSON array, in the server's order; its `digests` are {"names": [...],
-- "hashes": [...]} in the same order, the hash being what a tool's approval
-- pin compares (discovery's PINNED part; other kinds hash their whole text).
-- A tool whose changed definition awaits an admin's approval also has a row
-- in capabilities (status "pending", with the approved definition and
-- hash): those rows are the whole approval state. A list is one text to
-- write and to compare, so discovering or refreshing thousands of tools is
-- not the writing of thousands of rows.
local store = require "store"
local json = require "json"

local M = {}

local KINDS = { "tool", "resource", "resource_template", "prompt" }
local NONE = { names = {}, canons = {}, hashes = {} }

-- the server's stored lists: kind -> row {id, items, digests} (texts)
local function lists_of(a, sid)
  local out = {}
  for _, r in ipairs(store.list(a, "capability_lists", { where = { server_id = sid } }).items) do out[r.kind] = r end
  return out
end

-- the server's tools awaiting approval: name -> capabilities row
local function pending_of(a, sid)
  local out, cursor = {}, nil
  repeat
    local page = store.list(a, "capabilities", { where = { server_id = sid, kind = "tool", status = "pending" },
                                                 limit = 500, cursor = cursor })
    for _, c in ipairs(page.items) do out[c.name] = c end
    cursor = page.next_cursor
  until cursor == nil or cursor == json.null
  return out
end

-- a list's records without repeated names (the first of a name stays), and
-- name -> its position
local function unique(recs)
  local at, dup = {}, false
  for i, name in ipairs(recs.names) do
    if at[name] then dup = true else at[name] = i end
  end
  if not dup then return recs, at end
  local out = { names = {}, canons = {}, hashes = {} }
  at = {}
  for i, name in ipairs(recs.names) do
    if not at[name] then
      local n = #out.names + 1
      out.names[n], out.canons[n], out.hashes[n] = name, recs.canons[i], recs.hashes[i]
      at[name] = n
    end
  end
  return out, at
end

-- diff_kind(a, sid, k, row, new, at, d, pending): what changed between the
-- stored list (row, or none) and new, into d; the approval state follows.
-- A pinned kind's changed definition waits for an admin's approval unless it
-- went back to the approved one.
local function diff_kind(a, sid, k, row, new, at, d, pending)
  local old = row and json.decode(row.digests) or NONE
  local was = {}
  for j, name in ipairs(old.names) do was[name] = j end
  local olditems -- decoded only for a tool that starts to await approval
  for i, name in ipairs(new.names) do
    local j, h = was[name], new.hashes[i]
    if not j then
      d.added[#d.added + 1] = name
    elseif old.hashes[j] ~= h then
      d.changed[#d.changed + 1] = name
      if k.pinned then
        local p = pending[name]
        if h == (p and p.approved_hash or old.hashes[j]) then
          if p then store.delete(a, "capabilities", p.id) end
        else
          d.pending[#d.pending + 1] = name
          if p then
            store.update(a, "capabilities", p.id, { hash = h }, { returning = false })
          else
            olditems = olditems or json.decode(row.items)
            store.insert(a, "capabilities", { server_id = sid, kind = k.kind, name = name, hash = h,
              approved_definition = olditems[j], approved_hash = old.hashes[j], status = "pending" },
              { returning = false })
          end
        end
      end
    end
  end
  for _, name in ipairs(old.names) do
    if not at[name] then d.removed[#d.removed + 1] = name end
  end
  -- a tool that went no longer awaits anything
  for name, p in pairs(pending) do
    if not at[name] then store.delete(a, "capabilities", p.id) end
  end
end

-- replace(a, sid, kinds, lists) -> diff: the server's capabilities become
-- those of lists (kind -> {names, canons, hashes}: each item's name, its
-- canonical text and the hash of its pinned part), for each kind of kinds
-- ({kind, pinned}: discovery.KINDS); a kind missing from lists is emptied.
-- A list whose text is the stored one changed nothing and is not written;
-- another is diffed against the stored digests and written whole. Run
-- inside the caller's transaction.
-- diff: kind .. "s" -> {added, removed, changed, pending} (sorted names).
function M.replace(a, sid, kinds, lists)
  local stored = lists_of(a, sid)
  local diff = {}
  for _, k in ipairs(kinds) do
    local d = { added = json.array(), removed = json.array(), changed = json.array(), pending = json.array() }
    diff[k.kind .. "s"] = d
    local row, recs = stored[k.kind], lists[k.kind]
    local new, at, items
    if recs then
      new, at = unique(recs)
      items = "[" .. table.concat(new.canons, ",") .. "]"
    end
    if (recs or row) and not (row and row.items == items) then
      diff_kind(a, sid, k, row, new or NONE, at or {}, d, k.pinned and pending_of(a, sid) or {})
      if not recs then
        store.delete(a, "capability_lists", row.id)
      else
        local f = { items = items,
                    digests = json.encode({ names = json.array(new.names), hashes = json.array(new.hashes) }) }
        if row then store.update(a, "capability_lists", row.id, f, { returning = false })
        else
          f.server_id, f.kind = sid, k.kind
          store.insert(a, "capability_lists", f, { returning = false })
        end
      end
      for _, l in pairs(d) do table.sort(l) end
    end
  end
  return diff
end

-- each(row, pend, fn): fn(name, definition, status, approved_definition?)
-- for every item of a stored list, pend holding its pending rows by name
local function each(row, pend, fn)
  local items, dg = json.decode(row.items), json.decode(row.digests)
  for i, name in ipairs(dg.names) do
    local p = pend and pend[name]
    if p then fn(name, items[i], "pending", p.approved_definition)
    else fn(name, items[i], "approved") end
  end
end

-- of_server(a, sid) -> every capability of the server: tools, resources,
-- resource templates, prompts, each kind in the server's order
function M.of_server(a, sid)
  local stored = lists_of(a, sid)
  local out = {}
  for _, kind in ipairs(KINDS) do
    if stored[kind] then
      each(stored[kind], kind == "tool" and pending_of(a, sid) or nil, function(name, def, status, approved)
        out[#out + 1] = { kind = kind, name = name, definition = def, status = status, approved_definition = approved }
      end)
    end
  end
  return out
end

-- assistant_tools(a, asst_id) -> every tool of every server attached to the
-- assistant: {server_id, name, definition, status, approved_definition?}
-- (the last only while the tool awaits approval). Two queries.
function M.assistant_tools(a, asst_id)
  local pending = {}
  for _, r in ipairs(store.query(a, "assistant_pending_tools", { assistant_id = asst_id })) do
    local of = pending[r.server_id]
    if not of then of = {}; pending[r.server_id] = of end
    of[r.name] = r
  end
  local out = {}
  for _, l in ipairs(store.query(a, "assistant_tool_lists", { assistant_id = asst_id })) do
    each(l, pending[l.server_id], function(name, def, status, approved)
      out[#out + 1] = { server_id = l.server_id, name = name, definition = def, status = status,
                        approved_definition = approved }
    end)
  end
  return out
end

-- approve(a, sid, name) -> the tool's status after ("approved"), or nil
-- when the server has no such tool. Its current definition becomes the
-- approved one.
function M.approve(a, sid, name)
  local p = store.find(a, "capabilities", { server_id = sid, kind = "tool", name = name, status = "pending" })
  if p then
    store.delete(a, "capabilities", p.id)
    return "approved"
  end
  local row = store.find(a, "capability_lists", { server_id = sid, kind = "tool" })
  if row then
    for _, n in ipairs(json.decode(row.digests).names) do
      if n == name then return "approved" end
    end
  end
  return nil
end

return M
