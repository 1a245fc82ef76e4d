-- .luacheckrc: luacheck's view of mcplink's Lua (make lint): Lua 5.4, and for each kind of
-- file the globals its environment really has (luastate.c, script/prelude.lua, the sandbox).
std = "lua54"
codes = true
-- Handlers and hooks have fixed signatures (ctx, args; actor; a policy's req): an argument a
-- handler does not need is not a finding.
ignore = { "212/ctx", "212/args", "212/actor", "212/req" }
-- Lines are wrapped by judgment, as in the C; what luacheck is for here is names: globals
-- that do not exist, unused or shadowed locals, unreachable code.
max_line_length = false
-- `self` is implicit in methods; an unused one says nothing.
self = false

-- Engine Lua (lua/): the allow-listed standard library of luastate.c: no io, debug, package,
-- dofile or loadfile; require and load are the engine's own. (os keeps only its clocks there;
-- luacheck cannot take fields away from a standard global, so the state is what enforces it.)
files["lua/"] = { not_globals = { "io", "debug", "package", "dofile", "loadfile" } }

-- Operator scripts (mcplink run/test, the REPL; script/prelude.lua's M.env and TAP helpers).
stds.script = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
    "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring",
    "type", "xpcall", "string", "table", "math", "utf8", "coroutine", "_G", "arg",
    os = { fields = { "time", "clock", "date", "difftime" } },
    json = { fields = { "encode", "decode", "null", "array", "object", "is_array", "items", "is_lazy" } },
    log = { other_fields = true },
    mcplink = { fields = { "version", "actor", "op", "must", "as", "setup", "now_ms" } },
    "ok", "is", "isnt", "like", "unlike", "is_deeply", "err_is", "dies", "plan",
    "done_testing", "diag", "note", "skip", "bail_out", "subtest",
  },
}
files["tests/scenarios/"] = { std = "script" }
-- script_env.lua checks that what a script must not have is missing, and that the copies it
-- has can be changed without harm: it touches them on purpose.
files["tests/scenarios/script_env.lua"] = { std = "script", ignore = { "113", "143", "122" } }
files["tests/cli/"] = { std = "script" }
files["examples/"] = { std = "script" }
files["policies/**/*_test.lua"] = { std = "script" }

-- Policies: the sandbox's allow list (policy_sandbox.c), the net helpers, and the
-- read-only `default` policy; globals may be defined while a file loads.
stds.policy = {
  read_globals = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal",
    "rawget", "rawlen", "select", "tonumber", "tostring", "type", "xpcall", "setmetatable",
    "_VERSION",
    string = { fields = { "byte", "char", "len", "lower", "reverse", "sub", "upper", "rep",
                          "format", "find", "match", "gmatch", "gsub" } },
    table = { fields = { "pack", "concat", "unpack", "insert", "remove", "sort" } },
    math = { fields = { "abs", "ceil", "floor", "fmod", "huge", "max", "maxinteger", "min",
                        "mininteger", "modf", "pi", "sqrt", "tointeger", "type", "ult", "exp",
                        "log", "sin", "cos", "tan", "asin", "acos", "atan" } },
    coroutine = { fields = { "create", "resume", "running", "status", "wrap", "yield",
                             "isyieldable", "close" } },
    os = { fields = { "time" } },
    net = { fields = { "in_cidr", "host_matches" } },
    default = { other_fields = true },
  },
}
files["policies/default.lua"] = { std = "policy", allow_defined_top = true }
files["policies/tenants/*.lua"] = { std = "policy", allow_defined_top = true }
files["policies/tenants/*_test.lua"] = { std = "script" }

-- The store cases (tests/unit/test_store_harness.h): the full standard library and the
-- harness's globals.
files["tests/data/store_cases.lua"] = {
  read_globals = { "store", "crypto", "json", "reopen", "sql", "dump", "snapshot", "newdb",
                   "v1_fixture", "db_at", "BACKEND", "now_ms", "opened_count", "DIR", "DB", "KEY" },
}

-- Escape and abuse attempts against the sandbox: wrong on purpose.
exclude_files = { "tests/fixtures/", "build/", "build-asan/", "build-tsan/" }
