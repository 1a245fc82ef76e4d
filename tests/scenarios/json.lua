-- json: the engine's JSON module (what every op's arguments, results and every
-- server message go through): exact text out, exact values in, clear errors.

-- encoding: strings, escapes in the middle of plain runs, UTF-8
is(json.encode("plain text"), '"plain text"', "a plain string")
is(json.encode('a"b\\c'), '"a\\"b\\\\c"', "quote and backslash escaped inside a run")
is(json.encode("line\nnext\r\ttab\1end"), '"line\\nnext\\r\\ttab\\u0001end"', "control characters escaped between runs")
is(json.encode("\127 del"), '"\127 del"', "DEL passes as is")
is(json.encode("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), '"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"', "valid UTF-8 kept")
is(json.encode("a\xc3b"), '"a\\ufffdb"', "a cut UTF-8 sequence is replaced")
is(json.encode("\xed\xa0\x80"), '"\\ufffd\\ufffd\\ufffd"', "an encoded surrogate is not UTF-8")
is(json.encode(string.rep("x", 5000) .. '"'), '"' .. string.rep("x", 5000) .. '\\""', "a long run, then an escape")
-- long strings are written a slice (4,096 bytes) at a time: what falls on a
-- slice's edge is whole (a UTF-8 sequence across it, an escape on it, a cut
-- sequence at the end), and a long plain string comes out as it went in
for _, at in ipairs({ 4093, 4094, 4095, 4096, 8190, 8191 }) do
  local pre = string.rep("a", at)
  is(json.encode(pre .. "\xf0\x9f\x98\x80z"), '"' .. pre .. '\xf0\x9f\x98\x80z"', "a 4-byte sequence after " .. at .. " bytes")
  is(json.encode(pre .. '"\n'), '"' .. pre .. '\\"\\n"', "escapes after " .. at .. " bytes")
  is(json.encode(pre .. "\xe2\x82"), '"' .. pre .. '\\ufffd\\ufffd"', "a cut sequence at the end after " .. at .. " bytes")
end
local long = string.rep("0123456789abcdef", 65536)
is(json.encode(long), '"' .. long .. '"', "a plain string of 1 MiB")
is(json.decode(json.encode(string.rep("\1\"\xc3\xa9", 3000))), string.rep("\1\"\xc3\xa9", 3000), "escapes and UTF-8 over many slices round-trip")

-- numbers
is(json.encode(0), "0", "zero")
is(json.encode(-7), "-7", "a negative integer")
is(json.encode(math.maxinteger), "9223372036854775807", "the largest integer")
is(json.encode(math.mininteger), "-9223372036854775808", "the smallest integer")
is(json.encode(1.5), "1.5", "a float")
is(json.encode(2.0), "2", "an integral float")
dies(function() json.encode(0 / 0) end, "NaN", "NaN refused")

-- objects and arrays
is(json.encode({}), "{}", "an empty unmarked table is an object")
is(json.encode(json.array()), "[]", "a marked empty array")
is(json.encode({ 1, 2, 3 }), "[1,2,3]", "a sequence is an array")
is(json.encode({ [1] = "a", [3] = "c" }), '{"1":"a","3":"c"}', "integer keys with a hole make an object")
is(json.encode({ b = 1, a = { c = json.array(), d = json.object() } }, { sort = true }),
   '{"a":{"c":[],"d":{}},"b":1}', "sorted keys, nested")
local big, keys = {}, {}
for i = 1, 100 do big["k" .. string.format("%03d", i)] = i; keys[#keys + 1] = string.format('"k%03d":%d', i, i) end
is(json.encode(big, { sort = true }), "{" .. table.concat(keys, ",") .. "}", "an object of 100 members, sorted")
local back = json.decode(json.encode(big))
local same = true
for k, v in pairs(big) do same = same and back[k] == v end
for k in pairs(back) do same = same and big[k] ~= nil end
ok(same, "an object of 100 members round-trips unsorted")
local exactly = {}
for i = 1, 64 do exactly["m" .. i] = true end
local n = 0
for _ in pairs(json.decode(json.encode(exactly))) do n = n + 1 end
is(n, 64, "an object of exactly 64 members")
local mixed = { a = 1 }
for i = 1, 70 do mixed["x" .. i] = i end
mixed[true] = 1
dies(function() json.encode(mixed) end, "key of type boolean", "a bad key in a large object is refused")
dies(function() json.encode({ a = 1, [false] = 2 }) end, "key of type boolean", "a bad key in a small object is refused")
dies(function() json.encode({ f = function() end }) end, "cannot encode a function", "functions refused")
is(json.encode({ a = "x" }, { pretty = true }), '{\n  "a": "x"\n}', "pretty output")

-- many encodes in a row (one buffer per state is reused): each result is whole
local parts = {}
for i = 1, 50 do parts[i] = json.encode({ i = i, s = string.rep("y", i * 300) }) end
local whole = true
for i = 1, 50 do
  local v = json.decode(parts[i])
  whole = whole and v.i == i and #v.s == i * 300
end
ok(whole, "50 encodes of growing size, each whole")
-- an error halfway leaves the next encode clean
pcall(json.encode, { a = string.rep("z", 1000), b = function() end })
is(json.encode({ ok = true }), '{"ok":true}', "an encode after a failed one starts empty")
-- decoding: values, marks, numbers, strings
local v = json.decode('{"a":[],"b":{},"c":[1,[2,[]]],"d":null,"e":true,"f":false}')
ok(json.is_array(v.a) and next(v.a) == nil, "[] is an empty array")
ok(not json.is_array(v.b) and next(v.b) == nil, "{} is an empty object")
is(v.c[2][1], 2, "nested arrays")
ok(json.is_array(v.c[2][2]), "an empty array deep inside keeps its mark")
is(v.d, json.null, "null is json.null")
is(v.e, true, "true")
is(v.f, false, "false")
is(json.encode(v, { sort = true }), '{"a":[],"b":{},"c":[1,[2,[]]],"d":null,"e":true,"f":false}', "round trip")
is(math.type(json.decode("7")), "integer", "an integer")
is(math.type(json.decode("-0")), "integer", "-0 is the integer 0")
is(json.decode("-123456789012345"), -123456789012345, "15 digits")
is(json.decode("9007199254740992"), 9007199254740992, "2^53 is still an integer")
is(json.decode("9007199254740993"), 9007199254740993, "an integer past 2^53 is exact")
is(json.encode(json.decode("-999999999999999999")), "-999999999999999999", "18 digits round-trip exactly")
is(math.type(json.decode("9223372036854775808")), "float", "past 2^63 a float")
is(math.type(json.decode("1.0")), "integer", "an integral fraction is an integer")
is(json.decode("1e2"), 100, "an exponent")
is(json.decode("-2.5E-1"), -0.25, "a negative fraction with an exponent")
is(json.decode("0.1") + json.decode("0.2"), 0.1 + 0.2, "decimal fractions as Lua reads them")
is(json.decode("123456789012345678901234567890"), 1.2345678901234568e29, "a long integer as a float")
is(json.decode('"' .. string.rep("9", 200) .. '"'), string.rep("9", 200), "a long string of digits stays a string")
is(json.decode("0." .. string.rep("0", 150) .. "1"), 1e-151, "a number longer than the short buffer")
is(json.decode('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"'), 'a"b\\c/d\b\f\n\r\t', "every short escape")
is(json.decode('"\\u00e9\\u20ac\\ud83d\\ude00"'), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\\u escapes and a surrogate pair")
is(json.decode('"\\u0000"'), "\0", "an escaped NUL")
is(json.decode('"caf\xc3\xa9"'), "caf\xc3\xa9", "raw UTF-8")
is(#json.decode(' \t\r\n[ 1 , 2 ]\n '), 2, "whitespace around and inside")
is(json.decode('{"k":1,"k":2}').k, 2, "a repeated name: the last counts")
-- objects and arrays of every size around the decoder's batch (members wait on
-- the stack up to 32, then the table is made and the rest set as they come):
-- every member and item in place, a repeated name's last value counts wherever
-- the two fall, nested values whole
local sizes_ok, dup_ok = true, true
for size = 0, 70 do
  local members, items = {}, {}
  for i = 1, size do
    members[i] = string.format('"m%d":{"i":%d,"a":[%d,"s%d"]}', i, i, i, i)
    items[i] = string.format('{"i":%d}', i)
  end
  local o = json.decode("{" .. table.concat(members, ",") .. "}")
  local a = json.decode("[" .. table.concat(items, ",") .. "]")
  local count = 0
  for k, m in pairs(o) do
    count = count + 1
    local i = tonumber(k:sub(2))
    sizes_ok = sizes_ok and m.i == i and json.is_array(m.a) and m.a[1] == i and m.a[2] == "s" .. i
  end
  sizes_ok = sizes_ok and count == size and not json.is_array(o) and json.is_array(a) and #a == size
  for i = 1, size do sizes_ok = sizes_ok and a[i].i == i end
  sizes_ok = sizes_ok and a[size + 1] == nil
  -- the first member repeated as the last: its second value counts
  if size > 0 then
    local d = json.decode("{" .. table.concat(members, ",") .. ',"m1":"again"}')
    local dn = 0
    for _ in pairs(d) do dn = dn + 1 end
    dup_ok = dup_ok and d.m1 == "again" and dn == size and (size < 2 or d["m" .. size].i == size)
  end
end
ok(sizes_ok, "objects and arrays of 0 to 70 members and items decode whole")
ok(dup_ok, "a repeated name counts last, before and after the 32nd member")
local wide = {}
for i = 1, 5000 do wide[i] = '"w' .. i .. '":' .. i end
local w, wn, wok = json.decode("{" .. table.concat(wide, ",") .. "}"), 0, true
for k, x in pairs(w) do wn = wn + 1; wok = wok and k == "w" .. x end
ok(wok and wn == 5000, "an object of 5,000 members")
-- a script reads a deferred array as the engine does: json.items, one item per step
local page = json.decode('{"result":{"tools":[{"name":"a"},{"name":"b","x":[1,2]}],"nextCursor":"c"}}',
  { lazy = { "result", "tools" } })
ok(json.is_lazy(page.result.tools) and not json.is_lazy(page.result), "the array at the path is deferred")
is(#page.result.tools, 2, "its length without decoding it")
local names = {}
for i, t in json.items(page.result.tools) do names[i] = t.name .. (t.x and #t.x or 0) end
is(table.concat(names, ","), "a0,b2", "its items, decoded in order")
is(page.result.nextCursor, "c", "the rest of the value as usual")
local seen = 0
for _, x in json.items({ 10, 20, 30 }) do seen = seen + x end
is(seen, 60, "json.items walks a plain array too")
dies(function() json.encode(page) end, "cannot encode", "a deferred array is not encoded")
local deep = string.rep("[", 200) .. string.rep("]", 200)
ok(json.decode(deep), "200 levels")
for _, bad in ipairs({ "", " ", "{", "[1,]", "[1 2]", '{"a" 1}', '{"a":1,}', "{1:2}", "tru", "nul", "01", "1.", ".5",
                       "-", "1e", "+1", "NaN", "Infinity", "0x10", '"abc', '"\\x"', '"\\u12"', '"\\ud800"',
                       '"\\udc00"', '"\\ud800\\u0041"', "[1]]", "1 2", "1e999", "//c\n1", "'a'" }) do
  dies(function() json.decode(bad) end, "invalid JSON", "refused: " .. bad)
end
dies(function() json.decode(string.rep("[", 201) .. string.rep("]", 201)) end, "nesting too deep", "201 levels refused")
dies(function() json.decode('{"a":1') end, "at the end of the text", "the error says where")
dies(function() json.decode('[1,x]') end, "byte 4", "the error names the byte")
done_testing()
