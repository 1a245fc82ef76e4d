-- script_env: operator scripts get the op API, json, log and test helpers,
-- and nothing that reaches files, processes or the network by itself.
is(io, nil, "no io")
is(debug, nil, "no debug")
is(package, nil, "no package")
is(require, nil, "no require")
is(dofile, nil, "no dofile")
is(loadfile, nil, "no loadfile")
is(collectgarbage, nil, "no collectgarbage")
is(os.execute, nil, "no os.execute")
is(os.getenv, nil, "no os.getenv")
is(os.remove, nil, "no os.remove")
is(os.exit, nil, "no os.exit")
is(string.dump, nil, "no string.dump")
ok(type(os.time()) == "number", "os.time is there")
ok(type(mcplink.op) == "function" and type(mcplink.as) == "function", "the op API is there")
ok(type(json.encode) == "function" and type(log.info) == "function", "json and log are there")
is(load, nil, "no load (so no bytecode either)")
-- changing the environment's tables does not reach the engine: the test
-- helpers, string methods on values and the op API keep the engine's own
string.rep, string.find = nil, nil
table.concat = nil
json.encode = nil
is(("ab"):rep(3), "ababab", "string methods on values still reach string.rep")
like("helpers still match", "^helpers", "like() still finds patterns (string.find)")
is_deeply({ 1, { a = 2 } }, { 1, { a = 2 } }, "is_deeply still encodes (json.encode)")
diag("diag still joins", "its parts (table.concat)")
local r = mcplink.must("engine.info", {})
like(r.version, "^%d+%.%d+%.%d+$", "ops still encode their arguments (json.encode) and answer")
-- an op name is not code: no way into engine Lua from here
local res, e = mcplink.op("registry.dispatch", {})
err_is(res, e, "not_found", "only registered ops are reachable")
done_testing()
