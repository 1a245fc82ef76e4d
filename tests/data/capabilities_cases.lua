-- capabilities_cases.lua: lua/capabilities.lua's replace, read back and approve, run by
-- tests/unit/test_capabilities.c in an engine state on a fresh database. Each case: {name, fn},
-- fn() -> true or what went wrong. Lists are made as discovery makes them (json.canonical_items
-- joining each item's canonical text into a json.list_builder()).
local store = require "store"
local json = require "json"
local caps = require "capabilities"

local SYS = { system = true }
local n = 0
-- a tenant with a server of its own, its admin actor and the server's id
local function server()
  n = n + 1
  local t = store.insert(SYS, "tenants", { name = "caps-" .. n })
  local a = { tenant_id = t.id, user_id = "u", role = "admin" }
  return a, store.insert(a, "servers", { name = "s" }).id
end

-- a tool definition: name, description (pinned), _meta (not pinned)
local function tool(name, desc, meta)
  return { name = name, description = desc or ("Tool " .. name .. "."), inputSchema = { type = "object" },
           _meta = meta and { rev = meta } or nil }
end

-- list(defs, key) -> what discovery's records give for a list of definitions
local function list(defs, key)
  local b, names, at = json.list_builder(), {}, {}
  for _, _, _, name in json.canonical_items(defs, { name = key or "name", into = b }) do
    names[#names + 1] = name
    at[name] = #names
  end
  return { items = b:text(), names = names, at = at }
end

local function replace(a, sid, lists)
  return store.tx(function() return caps.replace(a, sid, lists) end)
end

local function same(got, want, what)
  local g = table.concat(got, ",")
  local w = table.concat(want, ",")
  if g ~= w then error(what .. ": [" .. g .. "] for [" .. w .. "]", 0) end
end

-- the diff's tools against {added, removed, changed, pending}
local function diff_is(d, want, what)
  for _, k in ipairs({ "added", "removed", "changed", "pending" }) do
    same(d.tools[k], want[k] or {}, what .. " " .. k)
  end
end

-- name -> {status, description, approved description} of the server's tools
local function tools_of(a, sid)
  local out, order = {}, {}
  for _, c in ipairs(caps.of_server(a, sid)) do
    if c.kind == "tool" then
      out[c.name] = { c.status, c.definition.description, c.approved_definition and c.approved_definition.description,
                      c.definition._meta and c.definition._meta.rev }
      order[#order + 1] = c.name
    end
  end
  return out, order
end

local function pending_rows(a, sid)
  return store.count(a, "capabilities", { server_id = sid, status = "pending" })
end

-- a server whose tool a (approved as v1) changed to v2 and awaits approval, beside b
local function a_pending()
  local a, sid = server()
  replace(a, sid, { tool = list({ tool("a", "v1"), tool("b") }) })
  replace(a, sid, { tool = list({ tool("a", "v2"), tool("b") }) })
  return a, sid
end

local C = {}

C[#C + 1] = { "a first list is stored whole, in the server's order; the same text again writes nothing", function()
  local a, sid = server()
  local d = replace(a, sid, { tool = list({ tool("b"), tool("a"), tool("c") }) })
  diff_is(d, { added = { "a", "b", "c" } }, "first")
  local _, order = tools_of(a, sid)
  same(order, { "b", "a", "c" }, "order")
  local row = store.find(a, "capability_lists", { server_id = sid, kind = "tool" })
  require("core").sleep_ms(3) -- a write now would move updated_at
  d = replace(a, sid, { tool = list({ tool("b"), tool("a"), tool("c") }) })
  diff_is(d, {}, "again")
  local again = store.find(a, "capability_lists", { server_id = sid, kind = "tool" })
  if again.updated_at ~= row.updated_at or again.items ~= row.items then return "the unchanged list was written again" end
  return true
end }

C[#C + 1] = { "a pin changed in place waits for approval; approving it makes it the approved one", function()
  local a, sid = server()
  replace(a, sid, { tool = list({ tool("a"), tool("b", "one"), tool("c") }) })
  local d = replace(a, sid, { tool = list({ tool("a"), tool("b", "two"), tool("c") }) })
  diff_is(d, { changed = { "b" }, pending = { "b" } }, "changed")
  local t = tools_of(a, sid)
  if t.b[1] ~= "pending" or t.b[2] ~= "two" or t.b[3] ~= "one" then return "b: " .. json.encode(t.b) end
  if caps.approve(a, sid, "b") ~= "approved" then return "approve" end
  if pending_rows(a, sid) ~= 0 then return "a pending row after approval" end
  t = tools_of(a, sid)
  if t.b[1] ~= "approved" or t.b[2] ~= "two" or t.b[3] ~= nil then return "after approval: " .. json.encode(t.b) end
  if caps.approve(a, sid, "b") ~= "approved" or caps.approve(a, sid, "zz") ~= nil then return "approve twice / missing" end
  return true
end }

C[#C + 1] = { "reordered, grown and shrunk: each tool compared with its own", function()
  local a, sid = server()
  replace(a, sid, { tool = list({ tool("a"), tool("b"), tool("c"), tool("d"), tool("e") }) })
  -- new order, one inserted, one dropped, d's pin changed, e's _meta only
  local d = replace(a, sid, { tool = list({ tool("e", nil, 2), tool("x"), tool("d", "new d"), tool("a"), tool("c") }) })
  diff_is(d, { added = { "x" }, removed = { "b" }, changed = { "d" }, pending = { "d" } }, "mixed")
  local t, order = tools_of(a, sid)
  same(order, { "e", "x", "d", "a", "c" }, "order")
  if t.e[1] ~= "approved" or t.e[4] ~= 2 then return "e: the new _meta stored without approval: " .. json.encode(t.e) end
  if t.d[1] ~= "pending" or t.d[3] ~= "Tool d." then return "d: " .. json.encode(t.d) end
  if pending_rows(a, sid) ~= 1 then return "pending rows" end
  return true
end }

C[#C + 1] = { "changed while pending keeps the approved one; changed back needs no approval", function()
  local a, sid = a_pending()
  -- changed again, and moved: the approved definition is still v1
  local d = replace(a, sid, { tool = list({ tool("b"), tool("a", "v3") }) })
  diff_is(d, { changed = { "a" }, pending = { "a" } }, "again")
  local t = tools_of(a, sid)
  if t.a[2] ~= "v3" or t.a[3] ~= "v1" then return "a: " .. json.encode(t.a) end
  d = replace(a, sid, { tool = list({ tool("a", "v1"), tool("b") }) })
  diff_is(d, { changed = { "a" } }, "back")
  t = tools_of(a, sid)
  if t.a[1] ~= "approved" or pending_rows(a, sid) ~= 0 then return "a after going back: " .. json.encode(t.a) end
  return true
end }

C[#C + 1] = { "a pending tool dropped takes its row; one that comes back is new", function()
  local a, sid = a_pending()
  local d = replace(a, sid, { tool = list({ tool("b") }) })
  diff_is(d, { removed = { "a" } }, "dropped")
  if pending_rows(a, sid) ~= 0 then return "the dropped tool's row stayed" end
  d = replace(a, sid, { tool = list({ tool("b"), tool("a", "v3") }) })
  diff_is(d, { added = { "a" } }, "back")
  if tools_of(a, sid).a[1] ~= "approved" then return "a came back pending" end
  return true
end }

C[#C + 1] = { "other kinds change with any member and never wait; a kind gone is emptied", function()
  local a, sid = server()
  local function res(uri, name) return { uri = uri, name = name } end
  replace(a, sid, { tool = list({ tool("a", "v1") }), resource = list({ res("file:///1", "one"), res("file:///2", "two") }, "uri") })
  replace(a, sid, { tool = list({ tool("a", "v2") }) , resource = list({ res("file:///1", "one") }, "uri") })
  local d = replace(a, sid, { resource = list({ res("file:///1", "uno"), res("file:///3", "three") }, "uri") })
  same(d.resources.changed, { "file:///1" }, "resource changed")
  same(d.resources.pending, {}, "resources never wait")
  same(d.resources.added, { "file:///3" }, "resource added")
  diff_is(d, { removed = { "a" } }, "tools gone")
  if store.find(a, "capability_lists", { server_id = sid, kind = "tool" }) then return "the tool list stayed" end
  if pending_rows(a, sid) ~= 0 then return "the pending row stayed" end
  local kinds = {}
  for _, c in ipairs(caps.of_server(a, sid)) do kinds[#kinds + 1] = c.kind .. ":" .. c.name end
  same(kinds, { "resource:file:///1", "resource:file:///3" }, "what is left")
  return true
end }

C[#C + 1] = { "a long list changed in two places, one of them moved", function()
  local a, sid = server()
  local defs = {}
  for i = 1, 2000 do defs[i] = tool(string.format("t%04d", i)) end
  replace(a, sid, { tool = list(defs) })
  local new = {}
  for i = 1, 2000 do new[i] = defs[i] end
  new[10] = tool("t0010", "changed")
  table.remove(new, 1500)                       -- t1500 dropped: the rest shift by one
  new[#new + 1] = tool("t1500", "moved and changed")
  local d = replace(a, sid, { tool = list(new) })
  diff_is(d, { changed = { "t0010", "t1500" }, pending = { "t0010", "t1500" } }, "long")
  local t = tools_of(a, sid)
  if t.t1500[3] ~= "Tool t1500." or t.t0010[3] ~= "Tool t0010." then return "approved definitions" end
  return true
end }

return C
