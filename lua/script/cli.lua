-- script.cli: friendly subcommands. `mcplink server create --name X` is the
-- op server.create {name="X"}: words and flags come from the op registry.
local json = require "json"
local core = require "core"

local M = {}

local function pretty(s)
  local ok, v = pcall(json.decode, s)
  if not ok then return s end
  local ok2, out = pcall(json.encode, v, { pretty = true, sort = true })
  return ok2 and out or s
end
M.pretty = pretty

-- Built-in commands of core/cli/main.c: their names are not op families.
local BUILTIN = { op = true, repl = true, run = true, test = true, version = true, help = true,
                  ["conformance-client"] = true }

local function split(s)
  local w = {}
  for x in s:gmatch("%S+") do w[#w + 1] = x end
  return w
end

-- The word forms of an op: its own (server.update -> "server update") and
-- the alias it declares (cli.words, "server set"), both accepted.
local function forms_of(op)
  local own = (op.name:gsub("%.", " "):gsub("_", "-"))
  local out = { own }
  if op.cli and op.cli.words and op.cli.words ~= own then out[2] = op.cli.words end
  return out
end

local function flag_name(k) return (k:gsub("_", "-")) end

-- usage error: one line naming the problem, one pointing to the help
local function usage(msg, words)
  core.eprint("mcplink: " .. msg .. "\n(run `mcplink help" .. (words and (" " .. words) or "") .. "` for usage)")
  return 2
end

local BOOL = { ["true"] = true, ["false"] = false }

local function parse_value(spec, raw, flag)
  local t = spec and spec.type or "string"
  if t == "string" then return raw end
  if t == "integer" then
    local n = math.tointeger(tonumber(raw))
    if not n then error("--" .. flag .. " needs an integer, got '" .. raw .. "'", 0) end
    return n
  end
  if t == "number" then
    local n = tonumber(raw)
    if not n then error("--" .. flag .. " needs a number, got '" .. raw .. "'", 0) end
    return n
  end
  if t == "boolean" then
    if BOOL[raw] ~= nil then return BOOL[raw] end
    error("--" .. flag .. " needs true or false, got '" .. raw .. "'", 0)
  end
  if t == "array" and raw:sub(1, 1) ~= "[" then
    local out = json.array()
    for item in raw:gmatch("[^,]+") do out[#out + 1] = parse_value(spec.items, item, flag) end
    return out
  end
  local ok, v = pcall(json.decode, raw)
  if not ok then error("--" .. flag .. " needs JSON: " .. tostring(v.message or v), 0) end
  return v
end

-- Finds the spec for a dotted flag path ("oauth.client_id") in op args.
local function spec_at(args, path)
  local spec = { type = "object", fields = args }
  local parts = {}
  for p in path:gmatch("[^.]+") do parts[#parts + 1] = p end
  for _, p in ipairs(parts) do
    if not spec or spec.type ~= "object" or not spec.fields then return nil, parts end
    spec = spec.fields[p]
  end
  return spec, parts
end

local function set_path(t, parts, v)
  for i = 1, #parts - 1 do
    t[parts[i]] = t[parts[i]] or {}
    t = t[parts[i]]
  end
  t[parts[#parts]] = v
end

-- ---- help --------------------------------------------------------------------

-- One op's help: its command with positional arguments and flags, the
-- alias, what it does, the op name and role.
local function op_help(op)
  local forms = forms_of(op)
  local pos = ""
  local ispos = {}
  for _, p in ipairs(op.cli and op.cli.positional or {}) do
    pos = pos .. " " .. p:upper()
    ispos[p] = true
  end
  local names = {}
  for k in pairs(op.args) do if not ispos[k] then names[#names + 1] = k end end
  table.sort(names)
  local flags = {}
  for _, k in ipairs(names) do
    local a = op.args[k]
    local f = a.type == "boolean" and ("--[no-]" .. flag_name(k)) or ("--" .. flag_name(k) .. " " .. a.type:upper())
    flags[#flags + 1] = a.required and f or ("[" .. f .. "]")
  end
  local lines = { string.format("  mcplink %s%s%s", forms[1], pos, #flags > 0 and (" " .. table.concat(flags, " ")) or "") }
  if forms[2] then lines[#lines + 1] = "      (also: mcplink " .. forms[2] .. pos .. " ...)" end
  lines[#lines + 1] = string.format("      %s  (op %s, role %s)", op.summary, op.name, op.role)
  return table.concat(lines, "\n")
end

-- The ops whose command (either form) starts with these words.
local function ops_under(ops, words)
  local out = {}
  for _, op in ipairs(ops) do
    for _, f in ipairs(forms_of(op)) do
      local w = split(f)
      local match = #words <= #w
      for i = 1, #words do if words[i] ~= w[i] then match = false end end
      if match and not BUILTIN[w[1]] then out[#out + 1] = op; break end
    end
  end
  return out
end

-- One line per op family: the family and its actions (aliases in brackets).
local function families(ops)
  local fams, order = {}, {}
  for _, op in ipairs(ops) do
    local fam, action = op.name:match("^([%w_]+)%.([%w_]+)$")
    if fam and not BUILTIN[fam] then
      if not fams[fam] then fams[fam] = {}; order[#order + 1] = fam end
      local forms = forms_of(op)
      local a = flag_name(action)
      local alias = forms[2] and forms[2]:match("^" .. fam:gsub("%p", "%%%0") .. " (%S+)$")
      fams[fam][#fams[fam] + 1] = alias and (a .. " (" .. alias .. ")") or a
    end
  end
  table.sort(order)
  local lines = { "", "Op families (`mcplink help FAMILY` lists their commands and flags):" }
  for _, fam in ipairs(order) do
    lines[#lines + 1] = string.format("  %-15s %s", fam, table.concat(fams[fam], ", "))
  end
  return table.concat(lines, "\n")
end

-- help(ops, words): the families, an op by name (`help op server.get`), or
-- the commands under some words; trailing words that are arguments
-- (`help server update ID`) are dropped until commands match.
local function help(ops, words)
  if #words == 0 then print(families(ops)); return 0 end
  if words[1] == "op" then
    for _, op in ipairs(ops) do
      if op.name == words[2] then print(op_help(op)); return 0 end
    end
    return usage("no op '" .. tostring(words[2]) .. "' (`mcplink op op.list` lists them)", "op")
  end
  local asked = table.concat(words, " ")
  local found = {}
  for n = #words, 1, -1 do
    found = ops_under(ops, table.move(words, 1, n, 1, {}))
    if #found > 0 then break end
  end
  if #found == 0 then return usage("no command '" .. asked .. "'") end
  local out = {}
  for _, op in ipairs(found) do out[#out + 1] = op_help(op) end
  print(table.concat(out, "\n"))
  return 0
end

-- ---- running a friendly command -------------------------------------------------

-- The op whose words (either form) are the longest prefix of argv.
local function match(ops, argv)
  local best, bestn
  for _, op in ipairs(ops) do
    for _, f in ipairs(forms_of(op)) do
      local w = split(f)
      local ok = #w <= #argv and not BUILTIN[w[1]]
      for i = 1, #w do if argv[i] ~= w[i] then ok = false end end
      if ok and (not bestn or #w > bestn) then best, bestn = op, #w end
    end
  end
  return best, bestn
end

-- Parses the arguments after the command words into the op's argument table.
local function parse_args(op, argv, i)
  local args = {}
  local positional = (op.cli and op.cli.positional) or {}
  local pi = 1
  while i <= #argv do
    local a = argv[i]
    if a:sub(1, 2) == "--" then
      local name, val = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if name == "json" then
        val = val or argv[i + 1]; if not val then error("--json needs a value", 0) end
        if not a:find("=") then i = i + 1 end
        local v = parse_value({ type = "object" }, val, "json")
        for k, x in pairs(v) do args[k] = x end
      else
        local neg = false
        local key = name:gsub("-", "_")
        local spec, parts = spec_at(op.args, key)
        if not spec and key:sub(1, 3) == "no_" then
          spec, parts = spec_at(op.args, key:sub(4))
          neg = spec and spec.type == "boolean"
          if not neg then spec = nil end
        end
        if not spec then error("unknown option --" .. name .. " for " .. op.name, 0) end
        if spec.type == "boolean" then
          -- --flag, --no-flag, --flag true|false, --flag=true|false
          if neg then
            if val ~= nil then error("--" .. name .. " takes no value", 0) end
            set_path(args, parts, false)
          elseif val ~= nil then
            set_path(args, parts, parse_value(spec, val, name))
          elseif BOOL[argv[i + 1]] ~= nil then
            set_path(args, parts, BOOL[argv[i + 1]])
            i = i + 1
          else
            set_path(args, parts, true)
          end
        else
          if val == nil then
            val = argv[i + 1]
            if val == nil then error("--" .. name .. " needs a value", 0) end
            i = i + 1
          end
          set_path(args, parts, parse_value(spec, val, name))
        end
      end
    else
      local field = positional[pi]
      if not field then error("unexpected argument '" .. a .. "'", 0) end
      args[field] = parse_value(op.args[field], a, field)
      pi = pi + 1
    end
    i = i + 1
  end
  return args
end

-- The words typed before the first option or argument with a space in it,
-- at most 200 bytes: op.list's command, which then returns only the ops
-- whose commands agree with them (`server list` reads server.list alone,
-- not every server.* op with its schema).
local function typed_words(argv)
  local words = argv[1]
  if #words > 200 then return nil end
  for i = 2, #argv do
    local a = argv[i]
    if a:sub(1, 1) == "-" or a:find("%s") or #words + 1 + #a > 200 then break end
    words = words .. " " .. a
  end
  return words
end

-- run(client, system_client, compact, argv) -> exit status. The registry is
-- read as the system actor (op.list is open to all, and an unknown user then
-- meets its error from the op itself, after the command line is checked). A
-- command reads only its candidates (op.list's command: the ops whose
-- commands agree with the words typed), help the whole registry.
function M.run(client, sys, compact, argv)
  local first = argv[1] ~= "help" and typed_words(argv) or nil
  local list, err = sys:op("op.list", { command = first })
  if not list then
    core.eprint(json.encode({ error = err }, { pretty = not compact, sort = true }))
    return 1
  end
  local ops = list.ops
  if argv[1] == "help" then return help(ops, table.move(argv, 2, #argv, 1, {})) end
  local best, bestn = match(ops, argv)
  if not best then return usage("unknown command '" .. table.concat(argv, " ") .. "'") end
  local words = forms_of(best)[1]
  -- --compact is also accepted after the command, where people type it
  if best.args.compact == nil then
    local kept = {}
    for k, a in ipairs(argv) do
      if k > bestn and a == "--compact" then compact = true else kept[#kept + 1] = a end
    end
    argv = kept
  end
  local ok, args = pcall(parse_args, best, argv, bestn + 1)
  if not ok then return usage(tostring(args), words) end
  local res, e = client:op(best.name, args)
  if res == nil then
    -- the engine's error object, every field of it
    core.eprint(json.encode({ error = e }, { pretty = not compact, sort = true }))
    return 1
  end
  print(json.encode(res, { pretty = not compact, sort = true }))
  return 0
end

return M
