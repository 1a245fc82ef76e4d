-- script.tap: the TAP helpers of `mcplink test` (ok, is, like, is_deeply,
-- plan, ...): loaded by a test script, not by every script, REPL or command.
local core = require "core"
local json = require "json"

local M = {}

-- new() -> T (the counts and plan), env (the helpers a test script sees)
function M.new()
  local T = { n = 0, failed = 0, planned = nil, out = print }
  local env = {}

  local function where()
    -- the caller's line, found from a traceback (no debug library here)
    local tb = core.traceback()
    for line in tb:gmatch("[^\n]+") do
      local loc = line:match("^%s*([^%s:]+:%d+):")
      if loc and not loc:match("^@?lua/script/") and not loc:match("^%[C%]") and not loc:match("prelude") then
        return loc
      end
    end
    return "?"
  end

  local function diag(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    local msg = table.concat(parts, " ")
    for line in (msg .. "\n"):gmatch("([^\n]*)\n") do T.out("# " .. line) end
  end

  local function show(v)
    if type(v) == "table" then
      local ok, s = pcall(json.encode, v, { sort = true })
      if ok then return s end
    elseif type(v) == "string" then return string.format("%q", v) end
    return tostring(v)
  end

  function env.ok(v, name)
    T.n = T.n + 1
    name = name and (" - " .. tostring(name)) or ""
    if v then T.out("ok " .. T.n .. name)
    else
      T.failed = T.failed + 1
      T.out("not ok " .. T.n .. name)
      diag("  Failed test at " .. where())
    end
    return v and true or false
  end

  function env.is(got, exp, name)
    local r = env.ok(got == exp, name)
    if not r then diag("         got: " .. show(got)); diag("    expected: " .. show(exp)) end
    return r
  end

  function env.isnt(got, exp, name)
    local r = env.ok(got ~= exp, name)
    if not r then diag("    got: " .. show(got) .. " (expected anything else)") end
    return r
  end

  function env.like(got, pat, name)
    local r = env.ok(type(got) == "string" and got:find(pat) ~= nil, name)
    if not r then diag("    " .. show(got) .. " does not match " .. show(pat)) end
    return r
  end

  function env.unlike(got, pat, name)
    local r = env.ok(type(got) ~= "string" or got:find(pat) == nil, name)
    if not r then diag("    " .. show(got) .. " matches " .. show(pat)) end
    return r
  end

  function env.is_deeply(got, exp, name)
    local a = select(2, pcall(json.encode, got, { sort = true }))
    local b = select(2, pcall(json.encode, exp, { sort = true }))
    local r = env.ok(type(a) == "string" and a == b, name)
    if not r then diag("         got: " .. tostring(a)); diag("    expected: " .. tostring(b)) end
    return r
  end

  -- err_is(res, err, code, name): an op result that failed with this code
  function env.err_is(res, err, code, name)
    local r = env.ok(res == nil and type(err) == "table" and err.code == code, name)
    if not r then diag("    expected error " .. code .. ", got " .. (res ~= nil and ("result " .. show(res)) or show(err))) end
    return r
  end

  -- dies(fn, pattern, name): fn raises an error whose text matches pattern
  function env.dies(fn, pat, name)
    local ok, e = pcall(fn)
    local msg = tostring(type(e) == "table" and (e.message or e.code) or e)
    local r = env.ok(not ok and (pat == nil or msg:find(pat) ~= nil), name)
    if not r then diag(ok and "    did not raise" or ("    raised: " .. msg)) end
    return r
  end

  function env.plan(n) T.planned = n; T.out("1.." .. n) end
  env.diag = diag
  env.note = diag
  function env.skip(reason, n)
    for _ = 1, (n or 1) do T.n = T.n + 1; T.out("ok " .. T.n .. " # skip " .. tostring(reason)) end
  end
  function env.bail_out(msg) T.out("Bail out! " .. tostring(msg)); error({ bail = true }, 0) end
  function env.subtest(name, fn)
    diag("subtest: " .. name)
    local ok, e = pcall(fn)
    if not ok then env.ok(false, name .. " (died: " .. tostring(type(e) == "table" and (e.message or e.code) or e) .. ")") end
  end
  return T, env
end

return M
