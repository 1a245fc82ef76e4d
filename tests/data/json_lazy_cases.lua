-- tests/data/json_lazy_cases.lua: cases for json.decode's deferred arrays ({lazy = path}) and
-- json.items, and for mcp.paging reading list pages through them; run by test_json in an engine
-- Lua state.
local json = require "json"

local M = {}

local RT = { "result", "tools" }

-- nested(n): an array n levels deep, innermost empty
local function nested(n) return string.rep("[", n) .. string.rep("]", n) end

-- many(n): a page of n small tools
local function many(n, pad)
  local parts = {}
  for i = 1, n do
    parts[i] = '{"name":"t' .. i .. '","description":"' .. string.rep("x", (i * 7) % (pad or 40)) ..
      ' \\u00e9\\ud83d\\ude00","inputSchema":{"type":"object","properties":{"n":{"type":"integer"}}}}'
  end
  return '{"jsonrpc":"2.0","id":1,"result":{"tools":[' .. table.concat(parts, ",") .. '],"nextCursor":"c"}}'
end
M.many = many

-- lazy: {name, text, path}: the array at path is deferred; its items, and the
-- rest of the value, equal what a full decode gives
M.lazy = {
  { "empty array", '{"result":{"tools":[]}}', RT },
  { "empty array with spaces", '{"result":{"tools":[ \n\t ]}}', RT },
  { "one item", '{"result":{"tools":[1]}}', RT },
  { "scalars of every kind", '{"result":{"tools":[0,-1,1.5,-2.5e-3,1e2,1.0,9007199254740993,' ..
    '123456789012345678901234567890,true,false,null,"s",""]}}', RT },
  { "strings with escapes", '{"result":{"tools":["a\\"b\\\\c\\/d\\b\\f\\n\\r\\t","\\u00e9\\u20ac\\ud83d\\ude00",' ..
    '"\\u0000","caf\xc3\xa9","plain"]}}', RT },
  { "nested objects and arrays", '{"result":{"tools":[{"a":{"b":[1,[2,[]],{}]},"c":[]},[],{},[[[{"d":null}]]]]}}', RT },
  { "whitespace everywhere", ' { "result" : { "tools" : [ 1 ,\n 2 ,\t{ "a" : [ 3 , 4 ] } ] , "x" : 1 } } ', RT },
  { "members around the array", '{"id":7,"result":{"before":[1],"tools":[{"name":"a"}],"after":{"tools":[9]}},"z":[1]}',
    RT },
  { "a repeated name: the last one counts", '{"result":{"tools":[1],"tools":[2,3]}}', RT },
  { "a one-key path", '{"tools":[{"a":1},{"b":2}]}', { "tools" } },
  { "a three-key path", '{"a":{"b":{"c":[1,{"d":[2]}]}}}', { "a", "b", "c" } },
  { "keys with escapes", '{"r\\u00e9s":{"to\\"ols":[1,2]}}', { "r\xc3\xa9s", 'to"ols' } },
  { "nesting up to the limit inside", '{"a":[' .. nested(198) .. ']}', { "a" } },
  { "nesting up to the limit below a long path", string.rep('{"a":', 7) .. "[" .. nested(192) .. "]" ..
    string.rep("}", 7), { "a", "a", "a", "a", "a", "a", "a" } },
  { "a page of tools", many(500), RT },
  { "a long array", '{"result":{"tools":[' .. string.rep("1,", 99999) .. '1]}}', RT },
  { "a very long number in an item", '{"result":{"tools":[0.' .. string.rep("0", 150) .. '1]}}', RT },
  -- for json.canonical_items: members out of order and repeated, the pinned
  -- and name members (b, a, name, x) of every kind, found's key 'a' deep and shallow
  { "members to sort, repeated names, names of every kind", '{"result":{"tools":[' ..
    '{"z":1,"name":"n1","b":{"y":2,"x":[3,{"d":1,"c":2}]},"a":null},' ..
    '{"name":"first","x":1,"name":"last","x":{"q":1},"a":0,"a":[1]},' ..
    '{"name":7},{"name":null},{"name":["n"]},{"name":""},{},[],[{"name":"in an array"}],"name",' ..
    '{"b":{"c":{"d":{"a":1}}}},{"x":[[[[1]]]]},{"p":{},"q":{},"r":{},"s":{}},' ..
    '{"":1,"\\u0000":2,"\\u0000a":3,"a\\u0000":4,"A":5,"\\u00e9":6,"e":7}' ..
    ']}}', RT },
  { "strings and numbers as the encoder writes them", '{"result":{"tools":[{"name":"s",' ..
    '"a":"tab\\tnl\\ncr\\rquote\\"back\\\\slash\\/ctl\\u0001\\u001f del\\u007f","b":"\\u00e9\\u20ac\\ud83d\\ude00",' ..
    '"x":"raw \xc3\xa9 bad \xff\xfe \xed\xa0\x80 \xf0\x9f\x98\x80 cut \xe2\x82","n":[0,-0,-0.0,1.0,1e2,1E+2,-1e-2,' ..
    '0.1,1.5e300,9007199254740992,9007199254740993,-9007199254740993,123456789012345678,' ..
    '1234567890123456789,2.5e-308,1e-320]}]}}', RT },
  { "an object of more than 64 members", '{"result":{"tools":[{' .. (function()
    local m = {}
    for i = 100, 1, -1 do m[#m + 1] = '"k' .. i .. '":' .. i end
    m[#m + 1] = '"name":"wide","a":{"k1":1}'
    return table.concat(m, ",")
  end)() .. '}]}}', RT },
}

-- plain: {name, text, path}: nothing is deferred (the path leads to no array):
-- the value equals a full decode's
M.plain = {
  { "no such key", '{"result":{"other":[1]}}', RT },
  { "an object at the path", '{"result":{"tools":{"a":[1]}}}', RT },
  { "a string at the path", '{"result":{"tools":"[1]"}}', RT },
  { "null at the path", '{"result":{"tools":null}}', RT },
  { "a number at the path", '{"result":{"tools":1}}', RT },
  { "the path's parent is an array", '{"result":[{"tools":[1]}]}', RT },
  { "a batch at the top", '[{"result":{"tools":[1]}}]', RT },
  { "the path one level down", '{"x":{"result":{"tools":[1]}}}', RT },
  { "a prefix of the path", '{"result":[1]}', RT },
  { "a scalar text", '"result"', RT },
  { "a key that only starts like the path", '{"result":{"toolsx":[1],"tool":[2]}}', RT },
}

-- bad: {name, text, path}: refused by json.decode with the lazy path exactly
-- as without it (the same code and message)
M.bad = {
  { "an unclosed item", '{"result":{"tools":[{"a":1},{"b":]}}}', RT },
  { "a trailing comma", '{"result":{"tools":[1,2,]}}', RT },
  { "a missing comma", '{"result":{"tools":[1 2]}}', RT },
  { "a bad escape inside", '{"result":{"tools":["\\x"]}}', RT },
  { "a lone surrogate inside", '{"result":{"tools":["\\udc00"]}}', RT },
  { "a cut \\u escape inside", '{"result":{"tools":["\\u12"]}}', RT },
  { "a number out of range inside", '{"result":{"tools":[1e999]}}', RT },
  { "a very long number out of range", '{"result":{"tools":[1' .. string.rep("0", 400) .. 'e999]}}', RT },
  { "a bad literal inside", '{"result":{"tools":[tru]}}', RT },
  { "a bad member name inside", '{"result":{"tools":[{1:2}]}}', RT },
  { "the array not closed", '{"result":{"tools":[1,2', RT },
  { "a string not closed", '{"result":{"tools":["abc', RT },
  { "the text cut after the array", '{"result":{"tools":[1]', RT },
  { "text after the value", '{"result":{"tools":[1]}} x', RT },
  { "an error after the array", '{"result":{"tools":[1],"x":[1,]}}', RT },
  { "an error before the array", '{"result":{"x":01,"tools":[1]}}', RT },
  { "nesting too deep inside", '{"a":[' .. nested(199) .. ']}', { "a" } },
  { "nesting too deep below a long path", string.rep('{"a":', 7) .. "[" .. nested(193) .. "]" .. string.rep("}", 7),
    { "a", "a", "a", "a", "a", "a", "a" } },
  { "an error deep in a long page", many(300):gsub('"t250"', '"t250\\q"'), RT },
  { "empty text", "", RT },
}

-- checks: {name, fn}: fn() -> true | what went wrong
M.checks = {
  { "core.sort_strings (discovery's diffs) sorts as Lua's < does in the C locale, in place", function()
    local core = require "core"
    local t, want = {}, {}
    for i = 1, 2000 do
      local s = string.format("%x", (i * 7919) % 4099) .. (i % 3 == 0 and "\0z" or "") .. (i % 5 == 0 and "\xc3\xa9" or "")
      t[i], want[i] = s, s
    end
    t[#t + 1], want[#want + 1] = "", ""
    t[#t + 1], want[#want + 1] = "a", "a"
    t[#t + 1], want[#want + 1] = "a", "a"
    t[#t + 1], want[#want + 1] = "B", "B"
    table.sort(want)
    if core.sort_strings(t) ~= t then return "not the same table" end
    for i = 1, #want do if t[i] ~= want[i] then return "item " .. i .. ": " .. t[i] .. " for " .. want[i] end end
    local ok, e = pcall(core.sort_strings, { "a", 1, "b" })
    if ok or e.code ~= "invalid_argument" or not e.message:find("item 2") then return "a number is refused" end
    local one = { "x" }
    return (#core.sort_strings({}) == 0 and core.sort_strings(one)[1] == "x") or "empty and one"
  end },
  { "json.list_builder: drop takes out only the last item, once; text empties it", function()
    local b = json.list_builder()
    if b:text() ~= "[]" then return "an empty builder's text" end
    for _ in json.canonical_items({ { b = 1, a = 2 }, "x", 3 }, { into = b }) do end
    if b:count() ~= 3 then return "count " .. b:count() end
    b:drop()
    if b:count() ~= 2 then return "count after drop " .. b:count() end
    local ok, e = pcall(b.drop, b)
    if ok or type(e) ~= "table" or e.code ~= "invalid_argument" then return "a second drop is refused" end
    local t = b:text()
    if t ~= '[{"a":2,"b":1},"x"]' then return "text " .. t end
    for _ in json.canonical_items({ 1 }, { into = b }) do b:drop() end
    if b:text() ~= "[]" then return "the only item dropped" end
    ok, e = pcall(json.canonical_items, { 1 }, { into = {} })
    if ok or e.code ~= "invalid_argument" or not e.message:find("list_builder") then return "into must be a builder" end
    ok = pcall(b.text, {})
    if ok then return "a method on something else" end
    return getmetatable(b) == false or "the metatable is hidden"
  end },
  { "the text is kept alive while items are read (full collections between steps)", function()
    local text = many(3000, 200)
    local want = #text
    -- after this line only the lazy array references the text, and only the
    -- iterator references the lazy array
    local it = json.items(json.decode(text, { lazy = RT }).result.tools)
    text = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    local n, filler = 0, {} -- luacheck: ignore 241 (kept only to take memory)
    for i, item in it do
      collectgarbage()
      -- what a freed text's memory would be reused for
      filler[i % 4] = string.rep(string.char(65 + i % 26), want)
      if type(item) ~= "table" or item.name ~= "t" .. i then return "item " .. i .. " is wrong" end
      n = i
    end
    return n == 3000 or ("items: " .. n)
  end },
  { "each json.items has its own position; the end stays the end", function()
    local z = json.decode('{"a":[1,2,3]}', { lazy = { "a" } }).a
    local a, b = json.items(z), json.items(z)
    local _, x = a()
    local _, y = a()
    local _, w = b()
    if x ~= 1 or y ~= 2 or w ~= 1 then return "positions shared" end
    a()
    if a() ~= nil or a() ~= nil then return "past the end" end
    return #z == 3 or "#z"
  end },
  { "json.items over a Lua array is ipairs", function()
    local got = {}
    for i, v in json.items({ "a", json.null, "c", nil, "e" }) do got[#got + 1] = i .. "=" .. (v == json.null and "null" or v) end
    if table.concat(got, ",") ~= "1=a,2=null,3=c" then return table.concat(got, ",") end
    local f, t, i = json.items(json.array())
    return f(t, i) == nil or "an empty array has items"
  end },
  { "json.items refuses what is not an array", function()
    for _, v in ipairs({ "x", 1, true, json.null }) do
      local ok, e = pcall(json.items, v)
      if ok or e.code ~= "invalid_argument" then return "accepted " .. tostring(v) end
    end
    return true
  end },
  { "json.is_lazy", function()
    local z = json.decode('{"a":[]}', { lazy = { "a" } }).a
    if not json.is_lazy(z) then return "a lazy array" end
    for _, v in ipairs({ {}, json.array(), "x", 1, json.null }) do
      if json.is_lazy(v) then return "is_lazy(" .. tostring(v) .. ")" end
    end
    if json.is_lazy() then return "is_lazy()" end
    return getmetatable(z) == false or "its metatable is reachable"
  end },
  { "a lazy array is not encoded as something else", function()
    local z = json.decode('{"a":[1]}', { lazy = { "a" } })
    local ok, e = pcall(json.encode, z)
    return (not ok and e.code == "invalid_argument") or "encoded"
  end },
  { "json.canonical and json.encode share the state's buffers: each result is whole", function()
    local big = { s = string.rep("z", 300 * 1024), a = 1 } -- past what the buffers keep
    for i = 1, 3 do
      pcall(json.canonical, { a = string.rep("q", 1000), f = function() end }, { "a" })
      local text, part = json.canonical({ b = i, a = { 1, 2 }, c = "x" }, { "a", "c" })
      if text ~= '{"a":[1,2],"b":' .. i .. ',"c":"x"}' or part ~= '{"a":[1,2],"c":"x"}' then return text .. " " .. part end
      if json.encode({ k = i }) ~= '{"k":' .. i .. "}" then return "encode after canonical" end
      local t2 = json.canonical(big)
      if #t2 ~= 300 * 1024 + 14 or json.canonical({ x = 1 }) ~= '{"x":1}' then return "after a large one" end
    end
    return true
  end },
  { "lazy = true: the text itself is the array", function()
    local z = json.decode(' [1,{"a":[2]},"x"] ', { lazy = true })
    if not json.is_lazy(z) or #z ~= 3 then return "not a lazy array of 3" end
    local got = {}
    for i, v in json.items(z) do got[i] = json.encode(v) end
    if table.concat(got, " ") ~= '1 {"a":[2]} "x"' then return "items: " .. table.concat(got, " ") end
    local o = json.decode('{"a":[1]}', { lazy = true })
    if json.is_lazy(o) or not json.is_array(o.a) then return "an object is decoded as usual" end
    if json.decode("7", { lazy = true }) ~= 7 then return "a scalar" end
    local ok, e = pcall(json.decode, "[1,]", { lazy = true })
    if ok or e.code ~= "invalid_argument" then return "the text is still checked whole" end
    local ok2 = pcall(json.decode, "[1]", { lazy = false })
    return (not ok2) or "lazy = false is refused"
  end },
  { "bad options are refused", function()
    for _, o in ipairs({ { lazy = {} }, { lazy = "result" }, { lazy = { 1 } }, { lazy = { "a", true } },
                         { lazy = { "a", "b", "c", "d", "e", "f", "g", "h", "i" } } }) do
      local ok, e = pcall(json.decode, '{"a":[1]}', o)
      if ok or e.code ~= "invalid_argument" then return "accepted " .. tostring(o.lazy) end
    end
    local v = json.decode('{"a":[1]}', {})
    if not (json.is_array(v.a) and v.a[1] == 1) then return "no lazy option: a plain decode" end
    -- the options are read raw: no metamethod runs inside the decoder
    local o = setmetatable({}, { __index = function() error("a metamethod ran") end })
    v = json.decode('{"a":[1]}', o)
    return json.is_array(v.a) or "options read through __index"
  end },
}

-- pager(pages [, era [, whole]]) -> a client whose calls answer with the
-- JSON-RPC responses in pages, one per call, parsed as the transport parses
-- them (with the call's lazy option, unless whole: as Lua arrays); c.lazy:
-- whether every page's list came lazy
local function pager(pages, era, whole)
  local c = { era = era or "legacy", key = "test-paging", n = 0, lazy = true }
  function c.call(self, method, params, opts)
    self.n = self.n + 1
    self.method, self.cursor = method, params.cursor
    local m = require("mcp.jsonrpc").parse(pages[self.n], not whole and opts.lazy or nil)[1]
    local list = type(m.result) == "table" and m.result[method == "tools/list" and "tools" or "prompts"]
    self.lazy = self.lazy and json.is_lazy(list)
    return m.result
  end
  return c
end

local function page(items, cursor, field)
  return '{"jsonrpc":"2.0","id":1,"result":{"' .. (field or "tools") .. '":[' .. table.concat(items, ",") .. "]" ..
    (cursor and (',"nextCursor":"' .. cursor .. '"') or "") .. "}}"
end

local function tools(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = '{"name":"t' .. i .. '","inputSchema":{"type":"object"}}' end
  return t
end

-- raises(fn, code, reason) -> true | what happened instead
local function raises(fn, code, reason)
  local ok, e = pcall(fn)
  if ok then return "no error" end
  if type(e) ~= "table" or e.code ~= code or (reason and e.reason ~= reason) then
    return "raised " .. tostring(type(e) == "table" and (e.code .. " " .. tostring(e.reason) .. ": " .. e.message) or e)
  end
  return true
end

-- with_limit(name, value, fn) -> fn()'s answer, with mcp.paging's limit name
-- set to value meanwhile (restored even when fn raises)
local function with_limit(name, value, fn)
  local paging = require "mcp.paging"
  local was = paging[name]
  paging[name] = value
  local ok, r = pcall(fn)
  paging[name] = was
  if not ok then error(r, 0) end
  return r
end

-- paging: {name, fn} as checks: mcp.paging's lists over lazy pages
M.paging = {
  { "a page's list comes lazy; every item is mapped, in order", function()
    local paging = require "mcp.paging"
    local c = pager({ many(3000), page({}) }) -- many's page names a next one
    local seen = 0
    local items, meta = paging.list(c, "tools", nil, function(item)
      seen = seen + 1
      return item.name
    end)
    if not c.lazy then return "the list was decoded whole" end
    if seen ~= 3000 or #items ~= 3000 or meta.pages ~= 2 then return "items: " .. #items end
    for i = 1, 3000 do if items[i] ~= "t" .. i then return "item " .. i .. ": " .. tostring(items[i]) end end
    return true
  end },
  { "pages follow the cursor; without map the items are kept whole", function()
    local paging = require "mcp.paging"
    local c = pager({ page(tools(1, 5), "a", "prompts"), page(tools(6, 7), nil, "prompts") })
    local items, meta = paging.list(c, "prompts")
    if not c.lazy or c.n ~= 2 or c.cursor ~= "a" or c.method ~= "prompts/list" then return "the calls" end
    if #items ~= 7 or meta.pages ~= 2 or items[7].name ~= "t7" or items[7].inputSchema.type ~= "object" then
      return "items: " .. json.encode(items)
    end
    return json.is_array(items) or "not an array"
  end },
  { "a repeated cursor is refused", function()
    local paging = require "mcp.paging"
    local c = pager({ page(tools(1, 2), "a"), page(tools(3, 4), "a") })
    return raises(function() paging.list(c, "tools") end, "upstream_error", "repeated_cursor")
  end },
  { "more than MAX_ITEMS items are refused", function()
    local paging = require "mcp.paging"
    return with_limit("MAX_ITEMS", 10, function()
      local r = raises(function() paging.list(pager({ page(tools(1, 11)) }), "tools") end, "too_large", "items")
      if r ~= true then return r end
      return #paging.list(pager({ page(tools(1, 10)) }), "tools") == 10 or "10 items refused"
    end)
  end },
  { "more than MAX_BYTES are refused", function()
    local paging = require "mcp.paging"
    return with_limit("MAX_BYTES", 1000, function()
      return raises(function() paging.list(pager({ page(tools(1, 40)) }), "tools") end, "too_large", "bytes")
    end)
  end },
  { "a list that is not an array", function()
    local paging = require "mcp.paging"
    local text = '{"jsonrpc":"2.0","id":1,"result":{"tools":"x"}}'
    local r = raises(function() paging.list(pager({ text }), "tools") end, "upstream_error", "invalid_result")
    if r ~= true then return r end
    for _, v in ipairs({ "null", "{}", "{\"a\":1}" }) do
      local n = #paging.list(pager({ '{"jsonrpc":"2.0","id":1,"result":{"tools":' .. v .. '}}' }), "tools")
      if n ~= 0 then return v .. ": " .. n .. " items" end
    end
    return #paging.list(pager({ '{"jsonrpc":"2.0","id":1,"result":{}}' }), "tools") == 0 or "no list"
  end },
  { "a modern server's tools pass the x-mcp-header screen", function()
    local paging = require "mcp.paging"
    local bad = '{"name":"bad","inputSchema":{"type":"object","properties":{"o":{"type":"object",' ..
      '"x-mcp-header":"X-O"}}}}'
    local good = '{"name":"good","inputSchema":{"type":"object","properties":{"r":{"type":"string",' ..
      '"x-mcp-header":"X-R"}}}}'
    local items = paging.list(pager({ page({ bad, good }) }, "modern"), "tools", nil, function(t) return t.name end)
    return (#items == 1 and items[1] == "good") or json.encode(items)
  end },
  -- paging.canonical: the same pages and guards, each item as canonical text
  { "canonical: every item of every page, as json.canonical gives it", function()
    local paging = require "mcp.paging"
    local PIN = { "inputSchema", "description" }
    for _, whole in ipairs({ false, true }) do
      local pages = { many(700), page(tools(1, 3), nil) }
      local want = {}
      for i, item in ipairs(paging.list(pager(pages, nil, whole), "tools")) do
        local t, p = json.canonical(item, PIN)
        want[i] = { t, p, item.name }
      end
      local c, got = pager(pages, nil, whole), {}
      local n, meta = paging.canonical(c, "tools", nil, { keys = PIN, name = "name" }, function(t, p, name)
        got[#got + 1] = { t, p, name }
      end)
      if c.lazy == whole then return "lazy: " .. tostring(c.lazy) end
      if n ~= 703 or #got ~= 703 or #want ~= 703 or meta.pages ~= 2 then return "items: " .. n .. " " .. #got end
      for i = 1, 703 do
        for k = 1, 3 do
          if got[i][k] ~= want[i][k] then return "item " .. i .. ": " .. tostring(got[i][k]) .. " for " .. tostring(want[i][k]) end
        end
      end
    end
    return true
  end },
  { "canonical: more than MAX_ITEMS items are refused", function()
    local paging = require "mcp.paging"
    return with_limit("MAX_ITEMS", 10, function()
      local spec = { name = "name" }
      local r = raises(function() paging.canonical(pager({ page(tools(1, 11)) }), "tools", nil, spec, function() end) end,
        "too_large", "items")
      if r ~= true then return r end
      return paging.canonical(pager({ page(tools(1, 10)) }), "tools", nil, spec, function() end) == 10 or "10 refused"
    end)
  end },
  { "canonical: a modern server's tools pass the screen, whose specs are remembered", function()
    local paging, headers = require "mcp.paging", require "mcp.headers"
    local bad = '{"name":"bad","inputSchema":{"type":"object","properties":{"o":{"type":"object",' ..
      '"x-mcp-header":"X-O"}}}}'
    local good = '{"name":"good","inputSchema":{"type":"object","properties":{"r":{"type":"string",' ..
      '"x-mcp-header":"X-R"}}}}'
    -- past the screen's depth bound: the screen looks, and refuses it
    local deep = '{"name":"deep","inputSchema":' .. string.rep('{"a":', 40) .. "1" .. string.rep("}", 40) .. "}"
    for _, whole in ipairs({ false, true }) do
      local names = {}
      local c = pager({ page({ bad, good, deep, '{"name":"plain"}', "3" }) }, "modern", whole)
      c.key = "test-paging-canonical-" .. tostring(whole)
      local n = paging.canonical(c, "tools", nil, { name = "name" }, function(_, _, name) names[#names + 1] = tostring(name) end)
      if n ~= 3 or table.concat(names, ",") ~= "good,plain,nil" then return n .. ": " .. table.concat(names, ",") end
      local sp = headers.of_tool(c.key, "good")
      if #sp ~= 1 or sp[1].header ~= "X-R" then return "specs: " .. json.encode(sp) end
      -- the same joined into a builder: what the screen refuses and what fn does not keep
      -- (returns false) are taken out again; text only where the screen had to look
      local b, texts = json.list_builder(), {}
      c = pager({ page({ bad, good, deep, '{"name":"plain"}', "3", '{"name":"x"}' }) }, "modern", whole)
      c.key = "test-paging-canonical-into-" .. tostring(whole)
      n = paging.canonical(c, "tools", nil, { name = "name", into = b }, function(t, _, name)
        texts[#texts + 1] = tostring(t)
        if name == "x" then return false end
      end)
      local joined = b:text()
      if n ~= 4 or joined ~= '[' .. json.canonical(json.decode(good)) .. ',{"name":"plain"},3]' then return "into: " .. n .. " " .. joined end
      if table.concat(texts, ",") ~= "nil,nil,nil,nil" then return "into texts: " .. table.concat(texts, ",") end
    end
    return true
  end },
}

return M
