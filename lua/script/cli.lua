-- script.cli: friendly subcommands. `mcplink server create --name X` is the
-- op server.create {name="X"}: words and flags come from the op registry.
local json = require "json"
local core = require "core"

local M = {}

local function pretty(s)
  local ok, v = pcall(json.decode, s)
  if not ok then return s end
  local ok2, out = pcall(json.encode, v, { pretty = true })
  return ok2 and out or s
end
M.pretty = pretty

local function words_of(op)
  if op.cli and op.cli.words then return op.cli.words end
  return (op.name:gsub("%.", " "):gsub("_", "-"))
end

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
    if raw == "true" or raw == "yes" or raw == "1" then return true end
    if raw == "false" or raw == "no" or raw == "0" then return false end
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

local function help_for(ops, prefix)
  local lines = {}
  for _, op in ipairs(ops) do
    local w = words_of(op)
    if prefix == nil or w == prefix or w:sub(1, #prefix + 1) == prefix .. " " then
      local pos = ""
      if op.cli and op.cli.positional then
        for _, p in ipairs(op.cli.positional) do pos = pos .. " " .. p:upper() end
      end
      local flags = {}
      local names = {}
      local ispos = {}
      for _, p in ipairs(op.cli and op.cli.positional or {}) do ispos[p] = true end
      for k in pairs(op.args) do if not ispos[k] then names[#names + 1] = k end end
      table.sort(names)
      for _, k in ipairs(names) do
        local a = op.args[k]
        flags[#flags + 1] = (a.required and "" or "[") .. "--" .. k:gsub("_", "-") .. " " ..
          (a.type == "boolean" and "BOOL" or a.type:upper()) .. (a.required and "" or "]")
      end
      lines[#lines + 1] = string.format("  mcplink %s%s %s\n      %s  (op %s, role %s)",
        w, pos, table.concat(flags, " "), op.summary, op.name, op.role)
    end
  end
  return lines
end

-- run(client, compact, argv) -> exit status
function M.run(client, compact, argv)
  local list, err = client:op("op.list", {})
  if not list then core.eprint("mcplink: " .. tostring(err)); return 1 end
  local ops = list.ops
  if argv[1] == "help" then
    local prefix = table.concat(argv, " ", 2)
    local lines = help_for(ops, prefix)
    if #lines == 0 then core.eprint("mcplink: no command '" .. prefix .. "' (run `mcplink help`)"); return 2 end
    print(table.concat(lines, "\n"))
    return 0
  end
  -- longest match of words against the op's words
  local best, bestn
  for _, op in ipairs(ops) do
    local w = {}
    for x in words_of(op):gmatch("%S+") do w[#w + 1] = x end
    local match = #w <= #argv
    for i = 1, #w do if argv[i] ~= w[i] then match = false end end
    if match and (not bestn or #w > bestn) then best, bestn = op, #w end
  end
  if not best then
    core.eprint("mcplink: unknown command '" .. table.concat(argv, " ") .. "' (run `mcplink help`)")
    return 2
  end
  local args = {}
  local positional = (best.cli and best.cli.positional) or {}
  local pi = 1
  local i = bestn + 1
  local ok, perr = pcall(function()
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
          local spec, parts = spec_at(best.args, key)
          if not spec and key:sub(1, 3) == "no_" then
            spec, parts = spec_at(best.args, key:sub(4))
            neg = spec and spec.type == "boolean"
            if not neg then spec = nil end
          end
          if not spec then error("unknown option --" .. name .. " for " .. best.name .. " (see `mcplink help " .. words_of(best) .. "`)", 0) end
          if spec.type == "boolean" and val == nil then
            set_path(args, parts, not neg)
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
        args[field] = parse_value(best.args[field], a, field)
        pi = pi + 1
      end
      i = i + 1
    end
  end)
  if not ok then core.eprint("mcplink: " .. tostring(perr)); return 2 end
  local res, e = client:op(best.name, args)
  if res == nil then
    core.eprint(compact and json.encode({ error = e }) or json.encode({ error = e }, { pretty = true }))
    return 1
  end
  print(compact and json.encode(res) or json.encode(res, { pretty = true }))
  return 0
end

return M
