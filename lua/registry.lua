-- registry: the one operation registry. Every front end (C API, CLI, REPL,
-- scripts) reaches an op through dispatch(); ops declare role and schema.
local errors = require "errors"
local schema = require "schema"
local json = require "json"
local log = require "log"
local core = require "core"
local auth = require "auth"

local M = { ops = {} }

local ROLES = { any = true, member = true, admin = true, system = true }

-- op{name=, role=, system=bool, mutating=bool, summary=, args={field=spec}, handler=fn}
function M.op(def)
  assert(type(def.name) == "string" and def.name:match("^[a-z_]+%.[a-z_]+$"), "bad op name " .. tostring(def.name))
  assert(ROLES[def.role], def.name .. ": role must be any, member, admin or system")
  assert(type(def.handler) == "function", def.name .. ": handler required")
  assert(type(def.summary) == "string", def.name .. ": summary required")
  assert(not M.ops[def.name], "duplicate op " .. def.name)
  def.args = def.args or {}
  for k, spec in pairs(def.args) do schema.check_spec(spec, def.name .. "." .. k) end
  M.ops[def.name] = def
  return def
end

-- May this actor call an op of this role? System is its own role; a tenant
-- admin can do what a member can.
function M.allowed(def, actor)
  local r = def.role
  if r == "any" then return true end
  if actor.system then return r == "system" or def.system == true end
  if r == "member" then return actor.role == "member" or actor.role == "admin" end
  if r == "admin" then return actor.role == "admin" end
  return false
end

-- ---- op families, loaded on first use ---------------------------------------------
-- lua/ops/<family>.lua registers exactly the <family>.* ops, so an op is found
-- by its name (README "Layout"): its family's file is loaded when one of its ops
-- is first dispatched or listed, not when a state starts. A one-shot command
-- (`mcplink server list`) then loads only the files it uses.
local families            -- sorted family names, from core.modules()
local loaded = {}         -- family -> true once its file has run

-- Command words that are not their op's family (cli.words), with the family
-- that declares them, so a command finds its file without loading every one;
-- load_family refuses an alias missing here.
local ALIASES = { call = "tool" }

local function family_names()
  if not families then
    families = {}
    for _, name in ipairs(core.modules()) do
      local fam = name:match("^ops%.([%w_]+)$")
      if fam then families[#families + 1] = fam end
    end
    table.sort(families)
  end
  return families
end

-- Loads lua/ops/<fam>.lua once; false when there is no such family.
function M.load_family(fam)
  if loaded[fam] then return true end
  local known = false
  for _, f in ipairs(family_names()) do if f == fam then known = true; break end end
  if not known then return false end
  local before = {}
  for op in pairs(M.ops) do before[op] = true end
  require("ops." .. fam)
  for op, def in pairs(M.ops) do
    assert(before[op] or op:match("^[^.]+") == fam,
      "op " .. op .. " is registered by lua/ops/" .. fam .. ".lua, not by its family's file")
    local w = not before[op] and def.cli and def.cli.words and def.cli.words:match("^%S+")
    assert(not w or w == fam:gsub("_", "-") or ALIASES[w] == fam,
      "op " .. op .. ": the command word '" .. tostring(w) .. "' needs an entry in registry.lua's ALIASES")
  end
  loaded[fam] = true
  return true
end

function M.load_all()
  for _, fam in ipairs(family_names()) do M.load_family(fam) end
end

-- The op of this name, its family loaded first.
function M.get(name)
  if type(name) ~= "string" then return nil end
  local def = M.ops[name]
  if def then return def end
  local fam = name:match("^([%w_]+)%.[%w_]+$")
  if fam and M.load_family(fam) then return M.ops[name] end
  return nil
end

-- The command-line forms of an op (README "Command line"): its own
-- (server.update -> "server update") and the alias it declares (cli.words:
-- `call` for tool.call).
local function forms(def)
  return (def.name:gsub("%.", " "):gsub("_", "-")), def.cli and def.cli.words
end

-- Does a form agree with the typed words as far as both go? ("server list"
-- with "server", with "server list" and with "server list srv_1", not with
-- "server get")
local function agrees(form, typed)
  local i = 0
  for w in form:gmatch("%S+") do
    i = i + 1
    if typed[i] == nil then return true end
    if typed[i] ~= w then return false end
  end
  return true
end

-- list(command): every op, or only the friendly command line's candidates
-- for the words typed (command: "server", or "server list srv_1"): the ops
-- one of whose forms agrees with them as far as both go. The family of the
-- first word is loaded first, every family only when none of its ops is one.
function M.list(command)
  local out = json.array()
  local pick
  if command then
    local typed = {}
    for w in command:gmatch("%S+") do typed[#typed + 1] = w end
    local function scan()
      local found = {}
      if not typed[1] then return nil end
      for name, def in pairs(M.ops) do
        local own, alias = forms(def)
        if agrees(own, typed) or (alias and agrees(alias, typed)) then found[name] = def end
      end
      return next(found) and found or nil
    end
    local first = typed[1] or ""
    M.load_family(ALIASES[first] or (first:gsub("-", "_")))
    pick = scan()
    if not pick then M.load_all(); pick = scan() or {} end
  else
    M.load_all()
    pick = M.ops
  end
  for name, def in pairs(pick) do
    local args = {}
    for k, spec in pairs(def.args) do args[k] = schema.describe(spec) end
    out[#out + 1] = { name = name, role = def.role, system = def.system or false,
                      mutating = def.mutating or false, summary = def.summary,
                      cli = def.cli, module = def.module,
                      args = json.object(args) }
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function traceback(e)
  if errors.is(e) then return e end
  return { internal = true, message = core.traceback(tostring(e)) }
end

-- {"error":{code, message, field?, reason?, rpc_error?, detail?}}: reason is the
-- machine-readable why (README "Errors"), e.g. connect_failed, cancelled; rpc_error the
-- JSON-RPC error's code and message (never its data: the server's, unbounded).
local function error_json(e)
  local reason = e.reason
  if type(reason) ~= "string" or reason == "" then reason = nil end
  local rpc = type(e.rpc_error) == "table" and e.rpc_error or nil
  if rpc then rpc = { code = rpc.code, message = tostring(rpc.message):sub(1, 1000) } end
  return json.encode({ error = { code = e.code, message = e.message, field = e.field,
                                 reason = reason, rpc_error = rpc, detail = e.detail } }), e.code
end

-- run(ctx, raw_actor, name, args_json) -> the handler's result; raises. Run
-- under xpcall with its arguments (no closure made per op); ctx.def is the
-- op once found.
local function run(ctx, raw_actor, name, args_json)
  local def = M.get(name)
  ctx.def = def
  if not def then errors.raise("not_found", "unknown op '" .. tostring(name) .. "'", "op") end
  local args = {}
  if args_json ~= nil and args_json ~= "" then
    local okd, v = pcall(json.decode, args_json)
    if not okd then errors.raise("invalid_argument", "arguments are not valid JSON: " .. tostring(v.message or v)) end
    if type(v) ~= "table" or json.is_array(v) then errors.raise("invalid_argument", "arguments must be a JSON object") end
    args = v
  end
  ctx.actor = auth.resolve(raw_actor)
  if not M.allowed(def, ctx.actor) then
    local why = "op '" .. name .. "' needs role " .. def.role .. (def.system and " (or the system actor)" or "")
    if ctx.actor.system then
      why = "op '" .. name .. "' is for tenant users (role " .. def.role .. "): the system actor is not in a tenant"
    elseif def.role == "system" then
      why = "op '" .. name .. "' is for the system actor only"
    end
    errors.raise("forbidden", why)
  end
  if def.module and not ctx.actor.system and not auth.module_enabled(ctx.actor, def.module) then
    errors.raise("forbidden", "the " .. def.module:upper() .. " module is not enabled for tenant '" ..
      tostring(ctx.actor.tenant) .. "': contact your system administrator")
  end
  args = schema.validate_args(def.args, args)
  ctx.args = args
  local r = def.handler(ctx, args)
  if r == nil then r = json.object() end
  return r
end

-- dispatch(actor, name, args_json) -> json, code|nil: the actor is resolved
-- (auth.resolve), its role and the tenant's module checked, the arguments
-- validated, the handler run, the op's cached reads ended (auth.finish) and a
-- mutating op audited (auth.audit).
function M.dispatch(raw_actor, name, args_json)
  local ctx = { op = name, actor = nil, args = nil, def = nil }
  local ok, res = xpcall(run, traceback, ctx, raw_actor, name, args_json)
  local def = ctx.def
  auth.finish(ctx)
  if ok then
    if def and def.mutating then auth.audit(ctx, def, ctx.args, "ok") end
    local okj, out = pcall(json.encode, res)
    if okj then return out, nil end
    log.error("op", name, "returned a value that is not JSON:", tostring(out.message or out))
    return error_json(errors.new("internal", "internal error (see log)"))
  end
  local e = res
  if not errors.is(e) then
    log.error("op", name, "failed:", tostring(e.message))
    e = errors.new("internal", "internal error (see log)")
  end
  if def and def.mutating and ctx.actor then
    pcall(auth.audit, ctx, def, ctx.args, e.code)
  end
  return error_json(e)
end

return M
