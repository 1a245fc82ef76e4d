-- jsonschema: checks a value against a JSON Schema (2020-12: types, numbers, strings, arrays,
-- objects, enums, combinators, local $ref), bounded in work, never fetching a remote $ref.
local json = require "json"

local M = {}

M.MAX_STEPS = 100000   -- schema nodes visited for one value
M.MAX_DEPTH = 100      -- nesting of schemas and values
M.MAX_ERRORS = 20      -- errors reported

local null = json.null

local function is_array(v) return type(v) == "table" and (json.is_array(v) or (next(v) ~= nil and #v > 0)) end
local function is_object(v) return type(v) == "table" and not is_array(v) end

local function type_of(v)
  if v == null then return "null" end
  local t = type(v)
  if t == "table" then return is_array(v) and "array" or "object" end
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  return t -- string, boolean
end

-- equal(a, b): JSON equality (numbers by value, objects by keys)
local function equal(a, b)
  if type(a) == "number" and type(b) == "number" then return a == b end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if is_array(a) ~= is_array(b) then return false end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.equal = equal

-- ---- patterns: ECMA regular expressions translated to Lua patterns where they
-- mean the same (atoms, classes, anchors, quantifiers on one atom); others are
-- not checked (and said so)

local ESC_CLASS = { d = "%d", D = "%D", w = "[%w_]", W = "[^%w_]", s = "%s", S = "%S" }

local function lua_escape(c)
  if c:match("^[%^%$%(%)%%%.%[%]%*%+%-%?]$") then return "%" .. c end
  return c
end

-- translate(re) -> Lua pattern | nil (not expressible)
local function translate(re)
  if #re > 1000 then return nil end
  local out, i, n = {}, 1, #re
  local anchored_start = re:sub(1, 1) == "^"
  if anchored_start then i = 2; out[1] = "^" end
  local last_atom -- index in out of the last atom (quantifiable)
  while i <= n do
    local c = re:sub(i, i)
    if c == "$" and i == n then out[#out + 1] = "$"; i = i + 1; last_atom = nil
    elseif c == "\\" then
      local d = re:sub(i + 1, i + 1)
      if d == "" then return nil end
      if ESC_CLASS[d] then out[#out + 1] = ESC_CLASS[d]
      elseif d:match("%w") then return nil -- \b, \u..., backreferences
      else out[#out + 1] = lua_escape(d) end
      last_atom = #out
      i = i + 2
    elseif c == "[" then
      local j = i + 1
      local cls = { "[" }
      if re:sub(j, j) == "^" then cls[2] = "^"; j = j + 1 end
      local closed = false
      while j <= n do
        local x = re:sub(j, j)
        if x == "]" and j > i + 1 + (cls[2] and 1 or 0) then closed = true; break end
        if x == "\\" then
          local d = re:sub(j + 1, j + 1)
          local inner = { d = "%d", w = "%w_", s = "%s" }
          if inner[d] then cls[#cls + 1] = inner[d]
          elseif d:match("%w") or d == "" then return nil
          else cls[#cls + 1] = "%" .. d end
          j = j + 2
        elseif x == "[" then return nil
        else
          cls[#cls + 1] = (x == "%" or x == "]") and ("%" .. x) or x
          j = j + 1
        end
      end
      if not closed then return nil end
      cls[#cls + 1] = "]"
      out[#out + 1] = table.concat(cls)
      last_atom = #out
      i = j + 1
    elseif c == "." then out[#out + 1] = "."; last_atom = #out; i = i + 1
    elseif c == "*" or c == "+" or c == "?" then
      if not last_atom or re:sub(i + 1, i + 1) == "?" then return nil end
      out[last_atom] = out[last_atom] .. (c == "*" and "*" or c == "+" and "+" or "?")
      last_atom = nil
      i = i + 1
    elseif c == "{" then
      local a, b, close = re:match("^{(%d+),?(%d*)}()", i)
      local exact = re:match("^{%d+}", i)
      if not last_atom or not a then return nil end
      a = tonumber(a)
      local atom = out[last_atom]
      local rep = {}
      if exact then b = a elseif b == "" then b = nil else b = tonumber(b) end
      if a > 50 or (b and (b > 50 or b < a)) then return nil end
      for _ = 1, a do rep[#rep + 1] = atom end
      if b then for _ = a + 1, b do rep[#rep + 1] = atom .. "?" end
      else rep[#rep + 1] = atom .. "*" end
      out[last_atom] = table.concat(rep)
      last_atom = nil
      i = close
    elseif c == "(" or c == ")" or c == "|" or c == "^" or c == "$" then return nil
    else out[#out + 1] = lua_escape(c); last_atom = #out; i = i + 1 end
  end
  return table.concat(out)
end

local compiled = setmetatable({}, { __mode = "k" })
local function pattern_of(re)
  local p = compiled[re]
  if p == nil then p = translate(re) or false; compiled[re] = p end
  return p or nil
end
M.translate = translate

-- ---- the walk ---------------------------------------------------------------------

local check

local function fail(st, path, msg)
  st.valid = false
  if #st.errors < M.MAX_ERRORS then st.errors[#st.errors + 1] = { path = path == "" and "/" or path, message = msg } end
  return false
end

local function unchecked(st, path, what)
  if #st.unchecked < M.MAX_ERRORS then st.unchecked[#st.unchecked + 1] = { path = path == "" and "/" or path, keyword = what } end
end

local function ptr_escape(k) return (tostring(k):gsub("~", "~0"):gsub("/", "~1")) end

-- resolve(st, ref) -> schema | nil: "#" and "#/json/pointer" within the root
-- (and its $defs/definitions); anything else is remote or relative: not followed
local function resolve(st, ref)
  if ref == "#" then return st.root end
  local ptr = ref:match("^#(/.*)$")
  if not ptr then return nil end
  local node = st.root
  for part in ptr:gmatch("/([^/]*)") do
    part = part:gsub("~1", "/"):gsub("~0", "~"):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    if type(node) ~= "table" then return nil end
    local nxt = node[part]
    if nxt == nil and math.tointeger(tonumber(part)) then nxt = node[math.tointeger(tonumber(part)) + 1] end
    node = nxt
  end
  return node
end

-- a sub-check that may fail without failing the whole (anyOf, oneOf, not, if)
local function probe(st, schema, v, path, depth)
  local saved_valid, saved_errors = st.valid, #st.errors
  st.valid = true
  local ok = check(st, schema, v, path, depth)
  local res = st.valid and ok
  st.valid = saved_valid
  for i = #st.errors, saved_errors + 1, -1 do st.errors[i] = nil end
  return res
end

local TYPES = { null = true, boolean = true, object = true, array = true, number = true, integer = true, string = true }

local function type_ok(want, have, v)
  if want == have then return true end
  if want == "number" and have == "integer" then return true end
  if want == "integer" and have == "number" and v == math.floor(v) then return true end
  return false
end

local function check_number(st, s, v, path)
  if type(s.minimum) == "number" and v < s.minimum then fail(st, path, "must be >= " .. s.minimum) end
  if type(s.maximum) == "number" and v > s.maximum then fail(st, path, "must be <= " .. s.maximum) end
  if type(s.exclusiveMinimum) == "number" and v <= s.exclusiveMinimum then fail(st, path, "must be > " .. s.exclusiveMinimum) end
  if type(s.exclusiveMaximum) == "number" and v >= s.exclusiveMaximum then fail(st, path, "must be < " .. s.exclusiveMaximum) end
  if type(s.multipleOf) == "number" and s.multipleOf > 0 then
    local q = v / s.multipleOf
    if math.abs(q - math.floor(q + 0.5)) > 1e-9 then fail(st, path, "must be a multiple of " .. s.multipleOf) end
  end
end

local function check_string(st, s, v, path)
  local len = utf8.len(v) or #v
  if math.type(s.minLength) == "integer" and len < s.minLength then fail(st, path, "must be at least " .. s.minLength .. " characters") end
  if math.type(s.maxLength) == "integer" and len > s.maxLength then fail(st, path, "must be at most " .. s.maxLength .. " characters") end
  if type(s.pattern) == "string" then
    local p = pattern_of(s.pattern)
    if not p then unchecked(st, path, "pattern")
    elseif not v:find(p) then fail(st, path, "does not match the pattern " .. s.pattern:sub(1, 100)) end
  end
end

local function check_array(st, s, v, path, depth)
  local n = #v
  if math.type(s.minItems) == "integer" and n < s.minItems then fail(st, path, "needs at least " .. s.minItems .. " items") end
  if math.type(s.maxItems) == "integer" and n > s.maxItems then fail(st, path, "allows at most " .. s.maxItems .. " items") end
  local first = 1
  if type(s.prefixItems) == "table" then
    for i, ps in ipairs(s.prefixItems) do
      if i > n then break end
      check(st, ps, v[i], path .. "/" .. (i - 1), depth + 1)
    end
    first = #s.prefixItems + 1
  end
  if s.items ~= nil and not is_array(s.items) then
    for i = first, n do check(st, s.items, v[i], path .. "/" .. (i - 1), depth + 1) end
  end
  if s.contains ~= nil then
    local hits = 0
    for i = 1, n do if probe(st, s.contains, v[i], path .. "/" .. (i - 1), depth + 1) then hits = hits + 1 end end
    local min = math.type(s.minContains) == "integer" and s.minContains or 1
    if hits < min then fail(st, path, "needs at least " .. min .. " item(s) matching contains") end
    if math.type(s.maxContains) == "integer" and hits > s.maxContains then fail(st, path, "allows at most " .. s.maxContains .. " item(s) matching contains") end
  end
  if s.uniqueItems == true and n <= 1000 then
    for i = 1, n do
      for j = i + 1, n do
        if equal(v[i], v[j]) then fail(st, path, "items " .. (i - 1) .. " and " .. (j - 1) .. " are equal"); return end
      end
    end
  end
  if s.unevaluatedItems ~= nil then unchecked(st, path, "unevaluatedItems") end
end

local function check_object(st, s, v, path, depth)
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  if math.type(s.minProperties) == "integer" and count < s.minProperties then fail(st, path, "needs at least " .. s.minProperties .. " properties") end
  if math.type(s.maxProperties) == "integer" and count > s.maxProperties then fail(st, path, "allows at most " .. s.maxProperties .. " properties") end
  if type(s.required) == "table" then
    for _, k in ipairs(s.required) do
      if type(k) == "string" and v[k] == nil then fail(st, path .. "/" .. ptr_escape(k), "is required") end
    end
  end
  if is_object(s.dependentRequired) then
    for k, deps in pairs(s.dependentRequired) do
      if v[k] ~= nil and type(deps) == "table" then
        for _, d in ipairs(deps) do
          if v[d] == nil then fail(st, path .. "/" .. ptr_escape(d), "is required when " .. k .. " is present") end
        end
      end
    end
  end
  local props = is_object(s.properties) and s.properties or nil
  local pprops = is_object(s.patternProperties) and s.patternProperties or nil
  for k, val in pairs(v) do
    local sub = path .. "/" .. ptr_escape(k)
    local matched = false
    if props and props[k] ~= nil then matched = true; check(st, props[k], val, sub, depth + 1) end
    if pprops then
      for re, ps in pairs(pprops) do
        local p = pattern_of(re)
        if not p then unchecked(st, sub, "patternProperties")
        elseif tostring(k):find(p) then matched = true; check(st, ps, val, sub, depth + 1) end
      end
    end
    if not matched and s.additionalProperties ~= nil then
      if s.additionalProperties == false then fail(st, sub, "is not allowed (additionalProperties)")
      else check(st, s.additionalProperties, val, sub, depth + 1) end
    end
    if s.propertyNames ~= nil and not probe(st, s.propertyNames, k, sub, depth + 1) then
      fail(st, sub, "has a name the schema does not allow")
    end
  end
  if s.unevaluatedProperties ~= nil then unchecked(st, path, "unevaluatedProperties") end
end

check = function(st, s, v, path, depth)
  st.steps = st.steps + 1
  if st.steps > M.MAX_STEPS or depth > M.MAX_DEPTH then
    if not st.stopped then st.stopped = true; unchecked(st, path, "(the schema is too large or deep to check further)") end
    return true
  end
  if s == true or s == nil then return true end
  if s == false then return fail(st, path, "no value is allowed here") end
  if type(s) ~= "table" then return true end
  if type(s["$ref"]) == "string" then
    local target = resolve(st, s["$ref"])
    if target == nil then unchecked(st, path, "$ref " .. s["$ref"]:sub(1, 200) .. " (not followed)")
    else check(st, target, v, path, depth + 1) end
  end
  if type(s["$dynamicRef"]) == "string" then unchecked(st, path, "$dynamicRef") end
  local have = type_of(v)
  if s.type ~= nil then
    local wants = type(s.type) == "table" and s.type or { s.type }
    local okt = false
    for _, w in ipairs(wants) do if TYPES[w] and type_ok(w, have, v) then okt = true end end
    if not okt then
      return fail(st, path, "must be " .. (type(s.type) == "table" and table.concat(s.type, " or ") or tostring(s.type)) ..
        " (is " .. have .. ")")
    end
  end
  if s.const ~= nil and not equal(s.const, v) then fail(st, path, "must be " .. json.encode(s.const):sub(1, 100)) end
  if type(s.enum) == "table" then
    local found = false
    for _, e in ipairs(s.enum) do if equal(e, v) then found = true; break end end
    if not found then fail(st, path, "must be one of the schema's enum values") end
  end
  if have == "number" or have == "integer" then check_number(st, s, v, path)
  elseif have == "string" then check_string(st, s, v, path)
  elseif have == "array" then check_array(st, s, v, path, depth)
  elseif have == "object" then check_object(st, s, v, path, depth) end
  if type(s.allOf) == "table" then for _, sub in ipairs(s.allOf) do check(st, sub, v, path, depth + 1) end end
  if type(s.anyOf) == "table" then
    local any = false
    for _, sub in ipairs(s.anyOf) do if probe(st, sub, v, path, depth + 1) then any = true; break end end
    if not any then fail(st, path, "matches none of anyOf") end
  end
  if type(s.oneOf) == "table" then
    local hits = 0
    for _, sub in ipairs(s.oneOf) do if probe(st, sub, v, path, depth + 1) then hits = hits + 1 end end
    if hits ~= 1 then fail(st, path, "matches " .. hits .. " of oneOf (exactly one expected)") end
  end
  if s["not"] ~= nil and probe(st, s["not"], v, path, depth + 1) then fail(st, path, "matches the schema under not") end
  if s["if"] ~= nil then
    if probe(st, s["if"], v, path, depth + 1) then
      if s["then"] ~= nil then check(st, s["then"], v, path, depth + 1) end
    elseif s["else"] ~= nil then check(st, s["else"], v, path, depth + 1) end
  end
  return true
end

-- validate(schema, value) -> valid, errors, unchecked: errors = [{path, message}]
-- (JSON Pointer paths); unchecked = [{path, keyword}], what this validator
-- does not check (a remote $ref, a pattern Lua cannot express, ...)
function M.validate(schema, value)
  local st = { root = schema, steps = 0, errors = {}, unchecked = {}, valid = true }
  check(st, schema, value, "", 0)
  return st.valid, st.errors, st.unchecked
end

return M
