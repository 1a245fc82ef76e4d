-- tests/data/schema_cases.lua: cases for the engine's JSON Schema checks, run by test_schemas in an
-- engine Lua state: output schemas (lua/jsonschema.lua) and elicitation forms (lua/mcp/input.lua).
local json = require "json"
local null = json.null
local arr = json.array
local obj = json.object

local M = {}

-- output schemas: {name, schema, value, valid, paths = error paths (some), unchecked = keyword}
M.validate = {
  { "boolean schema true", true, { a = 1 }, true },
  { "boolean schema false", false, 1, false, { "/" } },
  { "type integer", { type = "integer" }, 3, true },
  { "type integer refuses a fraction", { type = "integer" }, 3.5, false, { "/" } },
  { "type number takes an integer", { type = "number" }, 3, true },
  { "type list", { type = { "string", "null" } }, null, true },
  { "type list refuses", { type = { "string", "null" } }, 1, false },
  { "object vs array", { type = "object" }, arr({ 1 }), false },
  { "array vs object", { type = "array" }, obj({}), false },
  { "empty array is an array", { type = "array" }, arr(), true },
  { "required", { type = "object", required = { "count" } }, obj({}), false, { "/count" } },
  { "properties", { type = "object", properties = { count = { type = "integer", minimum = 0 } } },
    { count = -1 }, false, { "/count" } },
  { "additionalProperties false", { type = "object", properties = { a = {} }, additionalProperties = false },
    { a = 1, b = 2 }, false, { "/b" } },
  { "additionalProperties schema", { type = "object", additionalProperties = { type = "string" } },
    { a = "x", b = 2 }, false, { "/b" } },
  { "patternProperties", { type = "object", patternProperties = { ["^x_"] = { type = "integer" } },
    additionalProperties = false }, { x_a = 1, x_b = "no" }, false, { "/x_b" } },
  { "min/maxProperties", { type = "object", minProperties = 2 }, { a = 1 }, false },
  { "dependentRequired", { dependentRequired = { card = { "cvv" } } }, { card = "1" }, false, { "/cvv" } },
  { "propertyNames", { propertyNames = { maxLength = 3 } }, { long_name = 1 }, false },
  { "enum", { enum = { "a", "b", 3 } }, 3, true },
  { "enum refuses", { enum = { "a", "b" } }, "c", false },
  { "const object", { const = { x = 1 } }, { x = 1 }, true },
  { "const object refuses", { const = { x = 1 } }, { x = 2 }, false },
  { "min/max", { minimum = 1, maximum = 3 }, 4, false },
  { "exclusive", { exclusiveMinimum = 1 }, 1, false },
  { "multipleOf", { multipleOf = 0.5 }, 1.5, true },
  { "multipleOf refuses", { multipleOf = 2 }, 3, false },
  { "minLength counts characters", { minLength = 3 }, "héé", true },
  { "maxLength", { maxLength = 2 }, "abc", false },
  { "pattern", { pattern = "^[a-z]+_%d?$" }, "abc_", false },
  { "pattern with classes", { pattern = "^\\d{3}-[A-Z]{2}$" }, "123-AB", true },
  { "pattern refuses", { pattern = "^\\d{3}-[A-Z]{2}$" }, "12-AB", false },
  { "pattern unanchored", { pattern = "b+" }, "abbc", true },
  { "pattern not expressible is not checked", { pattern = "^(a|b)$" }, "c", true, nil, "pattern" },
  { "items", { type = "array", items = { type = "integer" } }, arr({ 1, "x" }), false, { "/1" } },
  { "prefixItems", { prefixItems = { { type = "string" }, { type = "integer" } } }, arr({ "a", "b" }), false, { "/1" } },
  { "min/maxItems", { minItems = 2 }, arr({ 1 }), false },
  { "uniqueItems", { uniqueItems = true }, arr({ { a = 1 }, { a = 1 } }), false },
  { "contains", { contains = { const = 5 } }, arr({ 1, 2 }), false },
  { "contains ok", { contains = { const = 5 }, maxContains = 1 }, arr({ 5, 1 }), true },
  { "allOf", { allOf = { { type = "integer" }, { minimum = 10 } } }, 5, false },
  { "anyOf", { anyOf = { { type = "string" }, { type = "integer" } } }, 5, true },
  { "anyOf refuses", { anyOf = { { type = "string" }, { type = "boolean" } } }, 5, false },
  { "oneOf exactly one", { oneOf = { { type = "integer" }, { minimum = 0 } } }, 5, false },
  { "not", { ["not"] = { type = "string" } }, "x", false },
  { "if/then/else", { ["if"] = { properties = { kind = { const = "a" } } }, ["then"] = { required = { "a" } },
    ["else"] = { required = { "b" } } }, { kind = "b" }, false, { "/b" } },
  { "local $ref to $defs", { ["$defs"] = { pos = { type = "integer", minimum = 1 } },
    type = "object", properties = { n = { ["$ref"] = "#/$defs/pos" } } }, { n = 0 }, false, { "/n" } },
  { "local $ref to definitions", { definitions = { s = { type = "string" } }, items = { ["$ref"] = "#/definitions/s" } },
    arr({ "a", 1 }), false, { "/1" } },
  { "recursive $ref", { type = "object", properties = { child = { ["$ref"] = "#" }, v = { type = "integer" } } },
    { child = { child = { v = "x" } } }, false, { "/child/child/v" } },
  { "remote $ref is not followed", { ["$ref"] = "https://example.com/schema.json" }, 1, true, nil, "$ref" },
  { "a $ref loop stops", { ["$defs"] = { a = { ["$ref"] = "#/$defs/a" } }, ["$ref"] = "#/$defs/a" }, 1, true, nil,
    "(the schema is too large or deep to check further)" },
  { "escaped pointer", { ["$defs"] = { ["a/b"] = { type = "string" } }, ["$ref"] = "#/$defs/a~1b" }, 1, false },
  { "unknown keywords are annotations", { title = "x", format = "email", ["x-extra"] = true }, "not an email", true },
}

-- elicitation forms: {name, schema, ok (the schema is a valid form)}
M.forms = {
  { "flat primitives", { type = "object", properties = { a = { type = "string" }, b = { type = "integer" },
    c = { type = "number" }, d = { type = "boolean" } } }, true },
  { "enums and multi-select", { type = "object", properties = {
    e = { type = "string", enum = { "x", "y" } },
    t = { type = "string", oneOf = { { const = "r", title = "Red" }, { const = "g", title = "Green" } } },
    m = { type = "array", items = { type = "string", enum = { "x", "y" } } },
    n = { type = "array", items = { anyOf = { { const = "x", title = "X" } } } } } }, true },
  { "no properties", { type = "object" }, true },
  { "not an object schema", { type = "string" }, false },
  { "a nested object", { type = "object", properties = { o = { type = "object" } } }, false },
  { "an array of objects", { type = "object", properties = { o = { type = "array", items = { type = "object" } } } }, false },
  { "required not a list", { type = "object", properties = {}, required = "a" }, false },
}

-- form answers: {name, schema, content, ok, result | error field}
local PROFILE = { type = "object", required = { "name" }, properties = {
  name = { type = "string", minLength = 1, maxLength = 5 },
  age = { type = "integer", minimum = 0, maximum = 150, default = 30 },
  score = { type = "number", default = 95.5 },
  color = { type = "string", enum = { "red", "green" }, default = "green" },
  ok = { type = "boolean", default = true },
  tags = { type = "array", items = { type = "string", enum = { "a", "b", "c" } }, minItems = 1, maxItems = 2 },
  email = { type = "string", format = "email" }, site = { type = "string", format = "uri" },
  day = { type = "string", format = "date" }, at = { type = "string", format = "date-time" } } }
M.answers = {
  { "defaults fill what is left out (SEP-1034)", PROFILE, { name = "Ann" }, true,
    { name = "Ann", age = 30, score = 95.5, color = "green", ok = true } },
  { "given values win over defaults", PROFILE, { name = "Bo", age = 40, ok = false }, true,
    { name = "Bo", age = 40, score = 95.5, color = "green", ok = false } },
  { "required missing", PROFILE, { age = 3 }, false, "c.name" },
  { "unknown field", PROFILE, { name = "A", x = 1 }, false, "c.x" },
  { "too long", PROFILE, { name = "Annabel" }, false, "c.name" },
  { "not an integer", PROFILE, { name = "A", age = 1.5 }, false, "c.age" },
  { "out of range", PROFILE, { name = "A", age = 151 }, false, "c.age" },
  { "not in the enum", PROFILE, { name = "A", color = "blue" }, false, "c.color" },
  { "a boolean is a boolean", PROFILE, { name = "A", ok = "yes" }, false, "c.ok" },
  { "multi-select", PROFILE, { name = "A", tags = arr({ "a", "c" }) }, true },
  { "multi-select out of the enum", PROFILE, { name = "A", tags = arr({ "d" }) }, false, "c.tags[1]" },
  { "multi-select too many", PROFILE, { name = "A", tags = arr({ "a", "b", "c" }) }, false, "c.tags" },
  { "multi-select twice", PROFILE, { name = "A", tags = arr({ "a", "a" }) }, false, "c.tags" },
  { "email", PROFILE, { name = "A", email = "a@b.example" }, true },
  { "not an email", PROFILE, { name = "A", email = "a@b" }, false, "c.email" },
  { "uri", PROFILE, { name = "A", site = "https://x.example/p" }, true },
  { "not a uri", PROFILE, { name = "A", site = "not a uri" }, false, "c.site" },
  { "date", PROFILE, { name = "A", day = "2024-02-29" }, true },
  { "not a date", PROFILE, { name = "A", day = "2023-02-29" }, false, "c.day" },
  { "date-time", PROFILE, { name = "A", at = "2024-02-29T10:20:30.5+01:00" }, true },
  { "not a date-time", PROFILE, { name = "A", at = "2024-02-29 10:20" }, false, "c.at" },
  { "content must be an object", PROFILE, arr({ 1 }), false, "c" },
}

return M
