-- schema: argument schemas for ops, and the validator that runs before every
-- handler. A failure names the field: invalid_argument with field "oauth.scopes".
local errors = require "errors"
local json = require "json"

local M = {}

local TYPES = { string = true, integer = true, number = true, boolean = true,
                object = true, array = true, any = true }

local function fail(path, msg)
  errors.raise("invalid_argument", (path ~= "" and ("'" .. path .. "' ") or "") .. msg, path ~= "" and path or nil)
end

local function join(path, k)
  if path == "" then return tostring(k) end
  if math.type(k) == "integer" then return path .. "[" .. k .. "]" end
  return path .. "." .. k
end

-- The path of a value is (path, key): key nil means path itself. The joined
-- string is only built when a check fails or a nested value is descended into.
local function where(path, key)
  if key == nil then return path end
  return join(path, key)
end

-- Each spec is turned once (per Lua state, weakly by the spec table) into a
-- checker, fn(v, path, key) -> cleaned value, that holds its limits as
-- upvalues, and each set of fields into a list sorted by name (so the first
-- missing field reported is always the same one): an op's arguments are
-- validated on every call, without walking each spec's keys again.
local checkers = setmetatable({}, { __mode = "k" })
local lists = setmetatable({}, { __mode = "k" })

local function checker_of(spec)
  local fn = checkers[spec]
  if not fn then
    fn = M.compile(spec)
    checkers[spec] = fn
  end
  return fn
end

-- How json.check_fields (core/bind_json.c) checks a field: natively for a
-- spec of one of these kinds, else (0) through the field's Lua checker.
local function is_int(x) return x == nil or math.type(x) == "integer" end
local function kind_of(spec)
  local t = spec.type
  if t == "string" and spec.enum == nil and spec.pattern == nil and is_int(spec.min) and is_int(spec.max) then return 1 end
  if t == "integer" and is_int(spec.min) and is_int(spec.max) then return 2 end
  if t == "boolean" then return 3 end
  if t == "any" then return 4 end
  if t == "object" and spec.fields == nil then return 5 end
  return 0
end

-- fields -> {n, fields, names..., specs..., kinds..., checkers...} (names[i]
-- at i, specs at n + i, kinds at 2n + i, checkers at 3n + i)
local function list_of(fields)
  local l = lists[fields]
  if not l then
    local names = {}
    for k in pairs(fields) do names[#names + 1] = k end
    table.sort(names)
    local n = #names
    l = { n = n, fields = fields }
    for i, k in ipairs(names) do
      local fs = fields[k]
      l[i], l[n + i], l[2 * n + i], l[3 * n + i] = k, fs, kind_of(fs), checker_of(fs)
    end
    lists[fields] = l
  end
  return l
end

local fast = json.check_fields
M.list_of = list_of -- (what json.check_fields reads; the tests call it with it)

local function check_fields(fields, v, path)
  local l = list_of(fields)
  local done = fast(l, v, path)
  if done then return done end
  -- the fast path refused something: this one names it
  for k in pairs(v) do
    if type(k) ~= "string" or not fields[k] then
      fail(join(path, tostring(k)), "is not a known field")
    end
  end
  local out, n = {}, l.n
  for i = 1, n do
    local k, fs = l[i], l[n + i]
    local fv = v[k]
    if fv == nil then
      if fs.required then fail(join(path, k), "is required") end
      if fs.default ~= nil then out[k] = fs.default end
    else
      out[k] = checker_of(fs)(fv, path, k)
    end
  end
  return out
end

local function check_object(spec, v, path, key)
  if type(v) ~= "table" or json.is_array(v) or (next(v) ~= nil and #v > 0) then
    fail(where(path, key), "must be an object")
  end
  if not spec.fields then return v end -- free-form object
  return check_fields(spec.fields, v, where(path, key))
end

local function null_or(spec, v, path, key, msg)
  if v == json.null then
    if spec.nullable then return json.null end
    fail(where(path, key), "must not be null")
  end
  fail(where(path, key), msg)
end

-- compile(spec) -> fn(v, path, key) -> cleaned value | raises
function M.compile(spec)
  local t = spec.type
  if t == "any" then
    return function(v, path, key)
      if v == json.null and not spec.nullable then fail(where(path, key), "must not be null") end
      return v
    end
  elseif t == "string" then
    local min, max, enum, pattern = spec.min, spec.max, spec.enum, spec.pattern
    return function(v, path, key)
      if type(v) ~= "string" then return null_or(spec, v, path, key, "must be a string") end
      if min and #v < min then fail(where(path, key), "must be at least " .. min .. " characters") end
      if max and #v > max then fail(where(path, key), "must be at most " .. max .. " characters") end

      if not utf8.len(v) then fail(where(path, key), "must be valid UTF-8") end
      if enum then
        local okv = false
        for _, e in ipairs(enum) do if e == v then okv = true end end
        if not okv then fail(where(path, key), "must be one of: " .. table.concat(enum, ", ")) end
      end
      if pattern and not v:match(pattern) then
        fail(where(path, key), spec.pattern_doc or ("does not match " .. pattern))
      end
      return v
    end
  elseif t == "integer" then
    local min, max = spec.min, spec.max
    return function(v, path, key)
      if math.type(v) ~= "integer" then return null_or(spec, v, path, key, "must be an integer") end
      if min and v < min then fail(where(path, key), "must be >= " .. min) end
      if max and v > max then fail(where(path, key), "must be <= " .. max) end
      return v
    end
  elseif t == "number" then
    local min, max = spec.min, spec.max
    return function(v, path, key)
      if type(v) ~= "number" then return null_or(spec, v, path, key, "must be a number") end
      if min and v < min then fail(where(path, key), "must be >= " .. min) end
      if max and v > max then fail(where(path, key), "must be <= " .. max) end
      return v
    end
  elseif t == "boolean" then
    return function(v, path, key)
      if type(v) ~= "boolean" then return null_or(spec, v, path, key, "must be a boolean") end
      return v
    end
  elseif t == "object" then
    return function(v, path, key)
      if v == json.null then return null_or(spec, v, path, key) end
      return check_object(spec, v, path, key)
    end
  elseif t == "array" then
    return function(v, path, key)
      if v == json.null then return null_or(spec, v, path, key) end
      path = where(path, key)
      if type(v) ~= "table" then fail(path, "must be an array") end
      local n = #v
      for k in pairs(v) do
        if math.type(k) ~= "integer" or k < 1 or k > n then fail(path, "must be an array") end
      end
      if n == 0 and next(v) == nil and not json.is_array(v) and getmetatable(v) ~= nil then
        fail(path, "must be an array")
      end
      if spec.max_items and n > spec.max_items then fail(path, "must have at most " .. spec.max_items .. " items") end
      local out = json.array()
      local items = spec.items
      local item = items and checker_of(items)
      for i = 1, n do out[i] = item and item(v[i], path, i) or v[i] end
      return out
    end
  end
  return function(v, path, key)
    if v == json.null then return null_or(spec, v, path, key) end
    fail(where(path, key), "has an unknown type in its schema")
  end
end

-- validate(spec, v, path[, key]) -> cleaned value; the value's path is
-- path.key (or path when key is nil).
function M.validate(spec, v, path, key)
  return checker_of(spec)(v, path, key)
end

-- Checks a schema definition itself (at op registration).
function M.check_spec(spec, path)
  assert(type(spec) == "table", path .. ": schema must be a table")
  assert(TYPES[spec.type], path .. ": unknown schema type " .. tostring(spec.type))
  if spec.fields then
    for k, fs in pairs(spec.fields) do M.check_spec(fs, path .. "." .. k) end
  end
  if spec.items then M.check_spec(spec.items, path .. "[]") end
end

-- validate(args_spec_fields, args) -> cleaned args (unknown fields refused)
function M.validate_args(fields, args)
  if type(args) ~= "table" or json.is_array(args) or (next(args) ~= nil and #args > 0) then
    fail("", "must be an object")
  end
  return check_fields(fields, args, "")
end


-- describe(spec): a JSON-friendly copy of a schema for op.list.
function M.describe(spec)
  local d = {}
  for k, v in pairs(spec) do
    if k == "fields" then
      d.fields = {}
      for fk, fv in pairs(v) do d.fields[fk] = M.describe(fv) end
    elseif k == "items" then d.items = M.describe(v)
    elseif type(v) ~= "function" then d[k] = v end
  end
  return d
end

return M
