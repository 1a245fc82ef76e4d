-- script.prelude: the operator-script environment (REPL, `mcplink run`,
-- `mcplink test`): the op API, json, log and TAP test helpers, nothing else.
local core = require "core"
local json = require "json"
local log = require "log"
local call = require "call"

local M = {}

-- ---- the op API ---------------------------------------------------------

local Client = {}
Client.__index = Client

local function norm_actor(a)
  if a == "system" or (type(a) == "table" and a.system) then return { system = true } end
  if type(a) == "table" and type(a.tenant) == "string" and type(a.user) == "string" then
    return { tenant = a.tenant, user = a.user }
  end
  error("actor must be \"system\" or {tenant=..., user=...}", 3)
end

local errmt = { __tostring = function(e)
  return tostring(e.code) .. ": " .. tostring(e.message) .. (e.field and (" (" .. e.field .. ")") or "")
end }

local KINDS = { elicitation = true, sampling = true, roots = true }

-- The hooks of a call as call.op takes them: the script's functions see and
-- answer Lua tables (decoded JSON); an error in one is the engine's to log.
local function c_hooks(h)
  if not h or (not h.on_input and not h.on_event) then return nil end
  local out = {}
  if h.on_input then
    local kinds = {}
    for _, k in ipairs(h.answers or { "elicitation" }) do
      if not KINDS[k] then error("answers lists elicitation, sampling or roots, not " .. tostring(k), 3) end
      kinds[k] = true
    end
    out.methods = kinds
    out.input = function(text)
      local ok, ans = pcall(h.on_input, json.decode(text))
      if not ok then error(type(ans) == "table" and tostring(ans.message or ans.code) or tostring(ans), 0) end
      if ans == nil then return nil end
      return json.encode(ans)
    end
  end
  if h.on_event then out.event = function(text) h.on_event(json.decode(text)) end end
  return out
end

-- client:op(name, args [, hooks]) -> result | nil, err{code,message,field}
-- hooks = {on_input = fn(request) -> answer|nil, answers = {"elicitation",
-- "sampling", "roots"} (what on_input answers; elicitation by default),
-- on_event = fn(event)}: this call's host (README "Interactive calls");
-- without them, the client's own (mcplink.on_input, mcplink.on_event).
function Client:op(name, args, hooks)
  local ok, body = pcall(json.encode, args == nil and json.object() or args)
  if not ok then
    return nil, setmetatable({ code = "invalid_argument", message = tostring(body.message or body) }, errmt)
  end
  local h = c_hooks(hooks or self.hooks)
  local res, code
  if h then res, code = call.op(self.actor, name, body, h)
  else res, code = core.op(self.actor, name, body) end
  local v = json.decode(res)
  if code then return nil, setmetatable(v.error or { code = code }, errmt) end
  return v
end

-- client:must(name, args [, hooks]) -> result, or raises the error
function Client:must(name, args, hooks)
  local r, e = self:op(name, args, hooks)
  if r == nil then error(e, 2) end
  return r
end

-- client(actor [, hooks]): hooks is shared, not copied (mcplink.on_input
-- sets it for every client of a script)
function M.client(actor, hooks)
  return setmetatable({ actor = norm_actor(actor), hooks = hooks }, Client)
end

-- setup{tenant=NAME, users={name=role,...}} -> table of clients by user name
-- (plus .system): creates the tenant and users through the ops, for
-- scenario scripts and demos.
function M.setup(spec)
  local sys = M.client("system")
  local t = sys:must("tenant.create", { name = spec.tenant })
  local out = { system = sys, tenant = t }
  for name, role in pairs(spec.users or {}) do
    sys:must("user.create", { tenant = spec.tenant, name = name, role = role })
    out[name] = M.client({ tenant = spec.tenant, user = name })
  end
  return out
end

-- ---- environments -------------------------------------------------------

local SAFE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
  "tostring", "type", "xpcall" }

local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end

-- env(actor, script_args [, hooks]): hooks is the script's host (on_input,
-- on_event), shared by all its clients; the REPL passes its terminal's
function M.env(actor, script_args, hooks)
  local env = {}
  for _, k in ipairs(SAFE) do env[k] = _G[k] end
  env.string, env.table, env.math, env.utf8, env.coroutine, env.os =
    copy(string), copy(table), copy(math), copy(utf8), copy(coroutine), copy(os)
  -- items and is_lazy: what a script that asks decode for a lazy array reads it with
  env.json = { encode = json.encode, decode = json.decode, null = json.null,
               array = json.array, object = json.object, is_array = json.is_array,
               items = json.items, is_lazy = json.is_lazy }
  env.log = copy(log)
  -- the script's host: its input handler and event hook, for every client
  hooks = hooks or {}
  local default = M.client(actor, hooks)
  env.mcplink = {
    version = core.version,
    actor = default.actor,
    op = function(name, args, h) return default:op(name, args, h) end,
    must = function(name, args, h) return default:must(name, args, h) end,
    as = function(a) return M.client(a, hooks) end,
    setup = function(spec)
      local t = M.setup(spec)
      for _, v in pairs(t) do if getmetatable(v) == Client then v.hooks = hooks end end
      return t
    end,
    now_ms = core.now_ms,
    -- on_input(fn [, answers]): fn(request) -> answer | nil answers the
    -- input requests of every call the script makes (answers: the kinds,
    -- {"elicitation"} by default); on_input(nil) removes it
    on_input = function(fn, answers)
      if fn ~= nil and type(fn) ~= "function" then error("on_input needs a function (or nil)", 2) end
      hooks.on_input, hooks.answers = fn, answers
    end,
    -- on_event(fn): fn(event) sees progress and log events of every call
    on_event = function(fn)
      if fn ~= nil and type(fn) ~= "function" then error("on_event needs a function (or nil)", 2) end
      hooks.on_event = fn
    end,
  }
  env.arg = script_args or {}
  env._G = env
  return env
end

local function load_in(src, chunkname, env)
  local fn, err = load(src, chunkname, "t", env)
  if not fn then return nil, err end
  return fn
end

local function errtext(e)
  if type(e) == "table" then
    if e.code then return tostring(e.code) .. ": " .. tostring(e.message) end
    return tostring(e.message or e)
  end
  return tostring(e)
end

-- run(src, chunkname, actor, args) -> exit status
function M.run(src, chunkname, actor, args)
  local env = M.env(actor, args)
  local fn, err = load_in(src, chunkname, env)
  -- a script's own output is stdout; why it failed goes to stderr, like every CLI error
  if not fn then core.eprint("error: " .. err); return 1 end
  local ok, e = xpcall(fn, function(m) return core.traceback(errtext(m)) end, table.unpack(args or {}))
  if not ok then core.eprint("error: " .. tostring(e)); return 1 end
  return 0
end

-- test(src, chunkname, actor) -> exit status; prints TAP
function M.test(src, chunkname, actor, args)
  local T, tap = require("script.tap").new()
  local env = M.env(actor, args or {})
  for k, v in pairs(tap) do env[k] = v end
  local done = false
  env.done_testing = function(n)
    if not T.planned then T.out("1.." .. (n or T.n)) end
    done = true
  end
  local fn, err = load_in(src, chunkname, env)
  if not fn then
    T.out("1..1"); T.out("not ok 1 - script compiles"); T.out("# " .. err)
    return 1
  end
  local ok, e = xpcall(fn, function(m)
    if type(m) == "table" and m.bail then return m end
    return core.traceback(errtext(m))
  end)
  if not ok then
    if type(e) == "table" and e.bail then return 255 end
    tap.ok(false, "script ran to the end")
    tap.diag(e)
  end
  if not T.planned and not done then T.out("1.." .. T.n) end
  if T.planned and T.planned ~= T.n then
    tap.diag(string.format("planned %d tests but ran %d", T.planned, T.n))
    return 1
  end
  if T.n == 0 then tap.diag("no tests ran"); return 1 end
  return T.failed > 0 and 1 or 0
end

-- cli(compact, actor, argv [, host]) -> exit status (friendly subcommands and
-- their help); host = {tty, read_line, write}: a terminal to put a server's
-- questions to (script.ask)
function M.cli(compact, actor, argv, host)
  local hooks
  if host and host.tty then hooks = require("script.ask").hooks(host) end
  return require("script.cli").run(M.client(actor, hooks), M.client("system"), compact, argv)
end

M.pretty = function(s) return require("script.cli").pretty(s) end

return M
