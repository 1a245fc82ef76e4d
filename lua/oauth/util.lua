-- oauth/util: small pieces the OAuth modules share: URL splitting, form and
-- query encoding, JSON over the net binding, and the expected-error helper.
local errors = require "errors"
local json = require "json"

local M = {}

-- split(url) -> {scheme, authority, origin, path, query} or nil. Only
-- absolute http(s) URLs without fragments are accepted here.
function M.split(url)
  if type(url) ~= "string" then return nil end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  if scheme ~= "https" and scheme ~= "http" then return nil end
  local authority, tail = rest:match("^([^/?#]*)(.*)$")
  if authority == "" or authority:find("@", 1, true) then return nil end
  tail = tail:gsub("#.*$", "")
  local path, query = tail:match("^([^?]*)%??(.*)$")
  if path == "" then path = "/" end
  return { scheme = scheme, authority = authority:lower(), origin = scheme .. "://" .. authority:lower(),
           path = path, query = query ~= "" and query or nil }
end

local function pct(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.pct = pct

local function unpct(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unpct = unpct

-- form(list of {k, v}) -> application/x-www-form-urlencoded text (order kept;
-- nil values skipped)
function M.form(pairs_list)
  local out = {}
  for _, kv in ipairs(pairs_list) do
    if kv[2] ~= nil and kv[2] ~= json.null then out[#out + 1] = pct(kv[1]) .. "=" .. pct(kv[2]) end
  end
  return table.concat(out, "&")
end

-- parse_query(text) -> map name -> first value; duplicates are refused (a
-- repeated state or code in a callback is an attack, not a convenience).
function M.parse_query(q)
  local out = {}
  if not q or q == "" then return out end
  for part in q:gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    k = unpct(k)
    if out[k] ~= nil then
      errors.raise("invalid_argument", "the callback repeats the parameter '" .. k .. "'", "callback_url")
    end
    out[k] = unpct(v)
  end
  return out
end

-- with_query(url, list of {k, v}) -> url with the parameters appended
function M.with_query(url, params)
  local q = M.form(params)
  if q == "" then return url end
  return url .. (url:find("?", 1, true) and "&" or "?") .. q
end

-- scope_list("a b") -> {"a","b"}; scope_text({...}) -> "a b"
function M.scope_list(s)
  local out = json.array()
  if type(s) == "table" then
    for _, v in ipairs(s) do out[#out + 1] = v end
  elseif type(s) == "string" then
    for w in s:gmatch("%S+") do out[#out + 1] = w end
  end
  return out
end

function M.scope_text(list)
  if type(list) ~= "table" or #list == 0 then return nil end
  return table.concat(list, " ")
end

function M.is_set(v) return v ~= nil and v ~= json.null end

-- request(ctx, opts) -> response; net errors pass through unchanged
function M.request(ctx, opts)
  local net = require "net"
  return net.request(ctx, opts)
end

-- get_json(ctx, url, purpose) -> status, body table | nil, response
-- A non-JSON or non-object body yields nil; network failures raise.
function M.get_json(ctx, url, purpose)
  local r = M.request(ctx, { method = "GET", url = url, purpose = purpose,
                             headers = { Accept = "application/json" },
                             timeout_ms = 15000, max_bytes = 1024 * 1024, follow_redirects = false })
  if r.status ~= 200 then return r.status, nil, r end
  local ok, v = pcall(json.decode, r.body or "")
  if not ok or type(v) ~= "table" or json.is_array(v) then return r.status, nil, r end
  return r.status, v, r
end

-- The secret-free description of an OAuth error answer for messages.
function M.oauth_error_text(body)
  local ok, v = pcall(json.decode, body or "")
  if ok and type(v) == "table" and type(v.error) == "string" then
    local d = type(v.error_description) == "string" and (": " .. v.error_description:sub(1, 300)) or ""
    return v.error:sub(1, 100) .. d, v.error
  end
  return nil
end

return M
