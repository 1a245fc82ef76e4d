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

local function check_object(spec, v, path)
  if type(v) ~= "table" or json.is_array(v) or (next(v) ~= nil and #v > 0) then
    fail(path, "must be an object")
  end
  if not spec.fields then return v end -- free-form object
  local out = {}
  for k in pairs(v) do
    if type(k) ~= "string" or not spec.fields[k] then
      fail(join(path, tostring(k)), "is not a known field")
    end
  end
  for k, fs in pairs(spec.fields) do
    local fv = v[k]
    if fv == nil then
      if fs.required then fail(join(path, k), "is required") end
      if fs.default ~= nil then out[k] = fs.default end
    else
      out[k] = validate(fs, fv, join(path, k))
    end
  end
  return out
end

validate = function(spec, v, path)
  if v == json.null then
    if spec.nullable then return json.null end
    if spec.required then fail(path, "must not be null") end
    fail(path, "must not be null")
  end
  local t = spec.type
  if t == "any" then return v end
  if t == "string" then
    if type(v) ~= "string" then fail(path, "must be a string") end
    if spec.min and #v < spec.min then fail(path, "must be at least " .. spec.min .. " characters") end
    if spec.max and #v > spec.max then fail(path, "must be at most " .. spec.max .. " characters") end
    if not utf8.len(v) then fail(path, "must be valid UTF-8") end
    if spec.enum then
      local okv = false
      for _, e in ipairs(spec.enum) do if e == v then okv = true end end
      if not okv then fail(path, "must be one of: " .. table.concat(spec.enum, ", ")) end
    end
    if spec.pattern and not v:match(spec.pattern) then
      fail(path, spec.pattern_doc or ("does not match " .. spec.pattern))
    end
    return v
  elseif t == "integer" then
    if math.type(v) ~= "integer" then fail(path, "must be an integer") end
    if spec.min and v < spec.min then fail(path, "must be >= " .. spec.min) end
    if spec.max and v > spec.max then fail(path, "must be <= " .. spec.max) end
    return v
  elseif t == "number" then
    if type(v) ~= "number" then fail(path, "must be a number") end
    if spec.min and v < spec.min then fail(path, "must be >= " .. spec.min) end
    if spec.max and v > spec.max then fail(path, "must be <= " .. spec.max) end
    return v
  elseif t == "boolean" then
    if type(v) ~= "boolean" then fail(path, "must be a boolean") end
    return v
  elseif t == "object" then
    return check_object(spec, v, path)
  elseif t == "array" then
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
    for i = 1, n do out[i] = spec.items and validate(spec.items, v[i], join(path, i)) or v[i] end
    return out
  end
  fail(path, "has an unknown type in its schema")
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
  return check_object({ type = "object", fields = fields }, args, "")
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
