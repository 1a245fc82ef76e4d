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

local validate

-- The path of a value is (path, key): key nil means path itself. The joined
-- string is only built when a check fails or a nested value is descended into.
local function where(path, key)
  if key == nil then return path end
  return join(path, key)
end

local function check_fields(fields, v, path)
  local out = {}
  for k in pairs(v) do
    if type(k) ~= "string" or not fields[k] then
      fail(join(path, tostring(k)), "is not a known field")
    end
  end
  for k, fs in pairs(fields) do
    local fv = v[k]
    if fv == nil then
      if fs.required then fail(join(path, k), "is required") end
      if fs.default ~= nil then out[k] = fs.default end
    else
      out[k] = validate(fs, fv, path, k)
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

-- validate(spec, v, path[, key]) -> cleaned value; the value's path is
-- path.key (or path when key is nil).
validate = function(spec, v, path, key)
  if v == json.null then
    if spec.nullable then return json.null end
    fail(where(path, key), "must not be null")
  end
  local t = spec.type
  if t == "any" then return v end
  if t == "string" then
    if type(v) ~= "string" then fail(where(path, key), "must be a string") end
    if spec.min and #v < spec.min then fail(where(path, key), "must be at least " .. spec.min .. " characters") end
    if spec.max and #v > spec.max then fail(where(path, key), "must be at most " .. spec.max .. " characters") end
    if not utf8.len(v) then fail(where(path, key), "must be valid UTF-8") end
    if spec.enum then
      local okv = false
      for _, e in ipairs(spec.enum) do if e == v then okv = true end end
      if not okv then fail(where(path, key), "must be one of: " .. table.concat(spec.enum, ", ")) end
    end
    if spec.pattern and not v:match(spec.pattern) then
      fail(where(path, key), spec.pattern_doc or ("does not match " .. spec.pattern))
    end
    return v
  elseif t == "integer" then
    if math.type(v) ~= "integer" then fail(where(path, key), "must be an integer") end
    if spec.min and v < spec.min then fail(where(path, key), "must be >= " .. spec.min) end
    if spec.max and v > spec.max then fail(where(path, key), "must be <= " .. spec.max) end
    return v
  elseif t == "number" then
    if type(v) ~= "number" then fail(where(path, key), "must be a number") end
    if spec.min and v < spec.min then fail(where(path, key), "must be >= " .. spec.min) end
    if spec.max and v > spec.max then fail(where(path, key), "must be <= " .. spec.max) end
    return v
  elseif t == "boolean" then
    if type(v) ~= "boolean" then fail(where(path, key), "must be a boolean") end
    return v
  elseif t == "object" then
    return check_object(spec, v, path, key)
  elseif t == "array" then
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
    for i = 1, n do out[i] = items and validate(items, v[i], path, i) or v[i] end
    return out
  end
  fail(where(path, key), "has an unknown type in its schema")
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

M.validate = validate

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
