-- capabilities: where a server's discovered tools, resources, resource
-- templates and prompts are kept; the one module that knows their storage.
-- Callers see capabilities as {kind, name, definition, status,
-- approved_definition?}.
--
-- Storage (store migration 7): per server and kind one row of
-- capability_lists, whose `items` are the definitions' canonical texts as
-- one JSON array, in the server's order. A tool whose changed definition
-- awaits an admin's approval also has a row in capabilities (status
-- "pending", with the approved definition and its pin hash; `hash` is the
-- pending definition's pin, `definition` is not used: the list holds the
-- current one): those rows are the whole approval state. A list is one
-- text to write and to compare, so discovering or refreshing thousands of
-- tools is not the writing of thousands of rows, and an unchanged list is
-- not written at all.
local store = require "store"
local json = require "json"
local crypto = require "crypto"
local core = require "core"

local M = {}

-- A tool's approval pin: the SHA-256 of the canonical encoding of these
-- members of its definition (json.canonical's part). A stored pin must keep
-- matching: never change it.
local PINNED = { "title", "description", "inputSchema", "outputSchema", "annotations" }

-- kind -> the member that names an item, and for a pinned kind what its
-- approval covers: a change there waits for an admin (tools). Another
-- kind's item changes with any member.
M.KINDS = {
  tool = { key = "name", keys = PINNED },
  resource = { key = "uri" },
  resource_template = { key = "uriTemplate" },
  prompt = { key = "name" },
}
local ORDER = { "tool", "resource", "resource_template", "prompt" }

-- the server's stored lists: kind -> row {id, items} (items: the text)
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

-- lazy(items) -> a stored list's text as a lazy array (json.items,
-- json.canonical_items), checked whole but not decoded
local function lazy(items)
  return json.decode(items, { lazy = true })
end

-- scan(list, kind) -> for i, text, part, name in ...: a lazy list's items
-- (never decoded into Lua values) with what a change is judged by: the
-- pinned part of a pinned kind's item (its text is not made), the canonical
-- text of another's; and the name
local function scan(list, kind)
  local k = M.KINDS[kind]
  return json.canonical_items(list, { keys = k.keys, name = k.key, text = k.keys == nil })
end

-- diff_kind(a, sid, kind, old, new, at, d, pending): what changed between
-- the stored list text old (or nil) and the new one (its names' places in
-- at), into d; the approval state follows. A pinned kind's definition that
-- changed in its pinned part waits for an admin's approval unless it went
-- back to the approved one; pins are hashed only here, for the few that
-- changed. The two lists are read side by side: an item with the same name
-- at the same place as before (a server keeps its order) is compared at
-- once, and only the others wait, by name, for their counterpart.
local function diff_kind(a, sid, kind, old, new, at, d, pending)
  local pinned = M.KINDS[kind].keys ~= nil
  old = old and lazy(old)
  local starts, nstarts = {}, 0 -- place in old -> {name, hash, approved hash}
  -- the stored item j and the new one of its name, each as a change is
  -- judged (the pinned part, or the whole text)
  local function compare(j, was, now, name)
    if was == now then return end
    d.changed[#d.changed + 1] = name
    if not pinned then return end
    local p = pending[name]
    local h = crypto.sha256(now)
    if h == (p and p.approved_hash or crypto.sha256(was)) then
      if p then store.delete(a, "capabilities", p.id) end
    else
      d.pending[#d.pending + 1] = name
      if p then store.update(a, "capabilities", p.id, { hash = h }, { returning = false })
      else starts[j], nstarts = { name, h, crypto.sha256(was) }, nstarts + 1 end
    end
  end
  local olds = old and scan(old, kind) or function() end
  local news = scan(lazy(new), kind)
  local was_j, was_v, later = {}, {}, {}
  while true do
    local j, otext, opart, oname = olds()
    local i, ntext, npart, nname = news()
    if j == nil and i == nil then break end
    if j and i and oname and oname == nname then
      compare(j, opart or otext, npart or ntext, nname)
    else
      if j and oname then was_j[oname], was_v[oname] = j, opart or otext end
      if i and nname then later[#later + 1] = { nname, npart or ntext } end
    end
  end
  for _, l in ipairs(later) do
    local name = l[1]
    local j = was_j[name]
    if j then
      compare(j, was_v[name], l[2], name)
      was_j[name] = nil
    else
      d.added[#d.added + 1] = name
    end
  end
  for name in pairs(was_j) do d.removed[#d.removed + 1] = name end
  -- the approved definitions of those that start to await approval: the
  -- stored ones, read again up to the last one needed
  if nstarts > 0 then
    for j, item in json.items(old) do
      local st = starts[j]
      if st then
        store.insert(a, "capabilities", { server_id = sid, kind = kind, name = st[1], hash = st[2],
          approved_definition = item, approved_hash = st[3], status = "pending" }, { returning = false })
        nstarts = nstarts - 1
        if nstarts == 0 then break end
      end
    end
  end
  -- a tool that went no longer awaits anything
  for name, p in pairs(pending) do
    if not at[name] then store.delete(a, "capabilities", p.id) end
  end
end

-- replace(a, sid, lists) -> diff: the server's capabilities become those
-- of lists (kind -> {items, names, at}: the list's text as
-- json.list_builder() joined it, and its items' names, each once, with
-- their places); a kind missing from lists is emptied. A list whose text
-- is the stored one changed nothing and is not written; another is diffed
-- against it and written whole. Run inside the caller's transaction.
-- diff: kind .. "s" -> {added, removed, changed, pending} (sorted names).
function M.replace(a, sid, lists)
  local stored = lists_of(a, sid)
  local diff = {}
  for _, kind in ipairs(ORDER) do
    local d = { added = json.array(), removed = json.array(), changed = json.array(), pending = json.array() }
    diff[kind .. "s"] = d
    local row, new = stored[kind], lists[kind]
    if new and not row then
      -- a first discovery: everything is new, nothing to compare
      for i, name in ipairs(new.names) do d.added[i] = name end
      store.insert(a, "capability_lists", { server_id = sid, kind = kind, items = new.items }, { returning = false })
    elseif row and not (new and row.items == new.items) then
      diff_kind(a, sid, kind, row.items, new and new.items or "[]", new and new.at or {}, d,
                M.KINDS[kind].keys and pending_of(a, sid) or {})
      if new then store.update(a, "capability_lists", row.id, { items = new.items }, { returning = false })
      else store.delete(a, "capability_lists", row.id) end
    end
    for _, l in pairs(d) do core.sort_strings(l) end
  end
  return diff
end

-- each(items, kind, pend, fn): fn(name, definition, status,
-- approved_definition?) for every item of a stored list, pend holding its
-- pending rows by name
local function each(items, kind, pend, fn)
  local key = M.KINDS[kind].key
  for _, def in ipairs(json.decode(items)) do
    local name = type(def) == "table" and def[key]
    if type(name) == "string" then
      local p = pend and pend[name]
      if p then fn(name, def, "pending", p.approved_definition)
      else fn(name, def, "approved") end
    end
  end
end

-- of_server(a, sid) -> every capability of the server: tools, resources,
-- resource templates, prompts, each kind in the server's order
function M.of_server(a, sid)
  local stored = lists_of(a, sid)
  local out = {}
  for _, kind in ipairs(ORDER) do
    if stored[kind] then
      each(stored[kind].items, kind, kind == "tool" and pending_of(a, sid) or nil, function(name, def, status, approved)
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
    each(l.items, "tool", pending[l.server_id], function(name, def, status, approved)
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
    for _, _, _, n in scan(lazy(row.items), "tool") do
      if n == name then return "approved" end
    end
  end
  return nil
end

return M
