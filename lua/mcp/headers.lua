-- mcp.headers: the 2026-07-28 request metadata headers: Mcp-Name value encoding, and
-- x-mcp-header tool parameters (screened, remembered per server) mirrored into Mcp-Param-*.
local mcp = require "mcp"
local json = require "json"
local crypto = require "crypto"
local log = require "log"

local M = {}

local MAX_DEPTH, MAX_NODES = 32, 5000

-- json.find_key's arguments for the screen's fast path (specs): a tool
-- without the key within these bounds is one the screen keeps and
-- remembers nothing of (mcp.paging reads a list's items as text with them)
M.FIND = { "x-mcp-header", MAX_DEPTH, MAX_NODES }

-- encode(v) -> header value | nil (nil, json.null, tables: no header)
function M.encode(v)
  local s
  if type(v) == "string" then s = v
  elseif type(v) == "boolean" then s = v and "true" or "false"
  elseif math.type(v) == "integer" then s = string.format("%d", v)
  elseif math.type(v) == "float" and v == math.floor(v) and v > -2^53 and v < 2^53 then s = string.format("%d", math.tointeger(v))
  else return nil end
  -- Plain only when every byte is visible ASCII or an inner space; the
  -- sentinel form itself is always encoded so it stays unambiguous.
  -- An empty value is sent in the encoded form: the HTTP layer (libcurl)
  -- cannot send an empty header, and "=?base64??=" decodes to "".
  local plain = s ~= "" and not s:find("[%z\1-\31\127-\255]") and not s:find("^ ") and not s:find(" $")
    and not (s:sub(1, 9) == "=?base64?" and s:sub(-2) == "?=")
  if plain then return s end
  return "=?base64?" .. crypto.base64_encode(s) .. "?="
end

local TCHAR = "^[!#$%%&'*+%-.^_`|~%w]+$"

-- specs(tool) -> list of {path={...}, header=NAME} | nil, reason
-- Valid only when every x-mcp-header sits on a primitive property reached
-- by a chain of `properties` keys, is a non-empty token, and unique.
function M.specs(tool)
  local schema = type(tool) == "table" and tool.inputSchema
  if type(schema) ~= "table" then return {} end
  -- Fast path (most tools declare no header): a schema with no x-mcp-header
  -- key in any table, of at most MAX_NODES tables none deeper than MAX_DEPTH,
  -- is what the walk below answers {} for. json.find_key counts every table
  -- it walks (also a properties map, which the walk does not count), so it
  -- answers false only where the walk could not have stopped on a bound
  -- either; anything else (true, or nil: a bound met) takes the walk.
  if json.find_key(schema, "x-mcp-header", MAX_DEPTH, MAX_NODES) == false then return {} end
  local out, seen, nodes, bad = {}, {}, 0, nil
  local function walk(node, chain, depth)
    if bad then return end
    nodes = nodes + 1
    if depth > MAX_DEPTH or nodes > MAX_NODES then bad = "schema too deep or too large"; return end
    for k, v in pairs(node) do
      if bad then return end
      if k == "x-mcp-header" then
        if not chain then bad = "x-mcp-header outside a properties chain"; return end
        if type(v) ~= "string" or v == "" then bad = "x-mcp-header must be a non-empty string"; return end
        if not v:find(TCHAR) then bad = "x-mcp-header '" .. v .. "' is not a header token"; return end
        local t = node.type
        if t ~= "string" and t ~= "integer" and t ~= "boolean" then
          bad = "x-mcp-header on a non-primitive parameter"; return
        end
        if #chain == 0 then bad = "x-mcp-header on the schema root"; return end
        if seen[v:lower()] then bad = "duplicate x-mcp-header '" .. v .. "'"; return end
        seen[v:lower()] = true
        out[#out + 1] = { path = chain, header = v }
      elseif k == "properties" and type(v) == "table" and not json.is_array(v) then
        for pname, sub in pairs(v) do
          if type(sub) == "table" then
            local c2 = nil
            if chain then
              c2 = {}
              for i, p in ipairs(chain) do c2[i] = p end
              c2[#c2 + 1] = pname
            end
            walk(sub, c2, depth + 1)
          end
        end
      elseif type(v) == "table" then
        walk(v, nil, depth + 1) -- items, anyOf, $defs...: no headers allowed below
      end
    end
  end
  walk(schema, {}, 0)
  if bad then return nil, bad end
  table.sort(out, function(a, b) return a.header < b.header end)
  return out
end

-- params(specs, arguments) -> {["Mcp-Param-X"] = value, ...}
function M.params(specs, args)
  local h = {}
  for _, s in ipairs(specs or {}) do
    local v = args
    for _, p in ipairs(s.path) do
      if type(v) ~= "table" then v = nil; break end
      v = v[p]
    end
    local enc = v ~= nil and v ~= json.null and M.encode(v) or nil
    if enc then h["Mcp-Param-" .. s.header] = enc end
  end
  return h
end

-- ---- the specs of a server's tools (engine-wide, per client cache key) ---------

-- screen(key) -> keep(tool) -> bool, done(): a tools list passes through
-- keep (tools with invalid x-mcp-header annotations are left out and logged);
-- done() remembers the specs of the tools kept, for tools/call.
function M.screen(key)
  local specs = {}
  local function keep(item)
    if type(item) ~= "table" then return true end
    local sp, why = M.specs(item)
    if not sp then
      log.warn("mcp: tool", tostring(item.name), "excluded:", why)
      return false
    end
    -- only tools with headers: of_tool answers {} for the others, and
    -- every tools/call reads this (for most servers: "{}")
    if #sp > 0 then specs[tostring(item.name)] = sp end
    return true
  end
  local function done() mcp.cache_put("xhdr:" .. key, json.encode(json.object(specs))) end
  return keep, done
end

-- the specs' texts as decoded: a server's entry is read on every
-- tools/call and changes only when its tools are listed again
local specs_of = require("mcp.protocol").memo(json.decode, 64)
local NONE = {}

-- of_tool(key, name) -> the specs of the tool as last listed ({} if
-- unknown); shared with later calls: read them, never change them
function M.of_tool(key, name)
  local v = mcp.cache_get("xhdr:" .. key)
  if not v then return NONE end
  return specs_of(v)[name] or NONE
end

return M
