-- registry: op.list, argument validation and error shapes, via the op API.

-- op.list's command: the ops one of whose commands starts with the word (what the
-- friendly command line reads), asked first, while no op family has been used
local function names_of(l) local n = {} for _, op in ipairs(l.ops) do n[#n + 1] = op.name end return n end
local srv = names_of(mcplink.must("op.list", { command = "server" }))
local only_server = #srv > 0
for _, n in ipairs(srv) do only_server = only_server and n:match("^server%.") ~= nil end
ok(only_server, "op.list command=server lists only server ops")
is_deeply(names_of(mcplink.must("op.list", { command = "call" })), { "tool.call" },
  "command=call lists tool.call, whose alias is `call`")
is(#mcplink.must("op.list", { command = "nosuch" }).ops, 0, "an unknown command word lists nothing")
is(#mcplink.must("op.list", { command = "op" }).ops, 1, "command=op lists op.list")
-- with more words typed, only the ops whose commands agree with them as far as both go
is_deeply(names_of(mcplink.must("op.list", { command = "server list" })), { "server.list" },
  "command='server list' lists server.list alone")
is_deeply(names_of(mcplink.must("op.list", { command = "server set srv_1 x" })), { "server.update" },
  "command='server set srv_1 x' lists the op whose alias is `server set`")
is_deeply(names_of(mcplink.must("op.list", { command = "call ast_1 echo {}" })), { "tool.call" },
  "command='call ast_1 echo {}' lists tool.call")
is(#mcplink.must("op.list", { command = "server frobnicate" }).ops, 0, "words no command agrees with list nothing")
is(#mcplink.must("op.list", { command = " " }).ops, 0, "no word lists nothing")

local list = mcplink.must("op.list", {})
ok(#list.ops >= 2, "op.list returns ops")
local names = {}
for _, op in ipairs(list.ops) do names[op.name] = op end
local nserver = 0
for n in pairs(names) do if n:match("^server%.") then nserver = nserver + 1 end end
is(#srv, nserver, "command=server lists every server op")
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
