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
done_testing()
