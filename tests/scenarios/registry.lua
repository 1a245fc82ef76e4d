-- registry: op.list, argument validation and error shapes, via the op API.
local list = mcplink.must("op.list", {})
ok(#list.ops >= 2, "op.list returns ops")
local names = {}
for _, op in ipairs(list.ops) do names[op.name] = op end
ok(names["engine.info"], "engine.info is registered")
is(names["op.list"].role, "any", "op.list is open to any actor")

local info = mcplink.must("engine.info", {})
like(info.version, "^%d+%.%d+%.%d+$", "version is semver")
is(info.protocol_versions[1], "2026-07-28", "current protocol revision first")
is(info.protocol_versions[#info.protocol_versions], "2024-11-05", "oldest revision last")

local r, e = mcplink.op("engine.info", { unknown_field = 1 })
err_is(r, e, "invalid_argument", "unknown field refused")
is(e.field, "unknown_field", "the error names the field")

r, e = mcplink.op("nope.nope", {})
err_is(r, e, "not_found", "unknown op is not_found")

-- JSON round trip through the engine: empty arrays stay arrays
is(json.encode(json.decode('{"a":[],"b":{},"c":[1,2],"d":1.5,"e":3}'), { sort = true }),
   '{"a":[],"b":{},"c":[1,2],"d":1.5,"e":3}', "json keeps empty arrays, objects and integers")
is(json.encode(json.decode('[]')), '[]', "top-level empty array")
is(json.encode(json.decode('"[]"')), '"[]"', "a string that looks like [] stays a string")
is(json.encode(json.decode('{"s":"a[]b [ ] \\"[]\\""}')), '{"s":"a[]b [ ] \\"[]\\""}', "brackets inside strings untouched")
dies(function() json.decode('{"a":') end, "invalid JSON", "bad JSON raises a clear error")
is(json.encode("\1\0x"), '"\\u0001\\u0000x"', "control characters escaped")
is(json.encode("\xff"), '"\\ufffd"', "invalid UTF-8 replaced")
dies(function() local t = {}; t.t = t; json.encode(t) end, "too deep", "cycles are refused")
done_testing()
