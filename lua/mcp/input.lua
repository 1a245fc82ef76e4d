-- mcp.input: what a server asks the user during a call (elicitation: a form or a URL;
-- sampling and roots), in every era: answered now, left for a continuation, or refused.
local json = require "json"
local errors = require "errors"
local call = require "call"

local M = {}

-- the server requests a client may be asked, by method, and the kind of
-- handler that answers them (call.host, call.ask)
M.METHODS = { ["elicitation/create"] = "elicitation", ["sampling/createMessage"] = "sampling",
              ["roots/list"] = "roots" }
-- operations a 2026-07-28 server may answer with input_required
M.RESUMABLE = { ["tools/call"] = true, ["prompts/get"] = true, ["resources/read"] = true }
M.MAX_ROUNDS = 16        -- input_required rounds in one call
M.MAX_REQUESTS = 32      -- input requests in one round
M.MAX_FIELDS = 100       -- fields of one form
M.MAX_TEXT = 8192        -- a message shown to the user
M.FORMATS = { email = true, uri = true, date = true, ["date-time"] = true }

local function is_set(v) return v ~= nil and v ~= json.null end
local function is_object(v) return type(v) == "table" and not json.is_array(v) and (next(v) == nil or #v == 0) end

-- capabilities(resumable [, engine_only]) -> the ClientCapabilities a request
-- declares: elicitation (form and URL) when the host answers it now or the
-- op can hand it over in a continuation; sampling and roots only when a
-- handler answers them. engine_only: a session shared by every caller
-- (handshake era) counts the engine's default handler alone.
-- The value is shared (one per combination, made once per Lua state): a
-- caller reads or encodes it, never changes it.
local caps_made = {}
function M.capabilities(resumable, engine_only)
  local h = call.host(engine_only)
  local elicit, sampling, roots = (h.elicitation or resumable) and true or false, h.sampling, h.roots
  local k = (elicit and 1 or 0) + (sampling and 2 or 0) + (roots and 4 or 0)
  local caps = caps_made[k]
  if caps then return caps end
  caps = json.object()
  if elicit then caps.elicitation = { form = json.object(), url = json.object() } end
  if sampling then caps.sampling = json.object() end
  if roots then caps.roots = json.object() end
  caps_made[k] = caps
  return caps
end

-- ---- elicitation forms: the restricted schema, defaults, answers ---------------

local function enum_values(ps)
  if type(ps.enum) == "table" then return ps.enum end
  local list = ps.oneOf or ps.anyOf
  if type(list) == "table" then
    local out = {}
    for _, o in ipairs(list) do
      if type(o) ~= "table" or type(o.const) ~= "string" then return nil end
      out[#out + 1] = o.const
    end
    return out
  end
  return nil
end

-- check_form(schema) -> true | nil, why: the flat object of primitive fields
-- (string, number, integer, boolean, single and multi-select enums) that
-- form elicitation allows
function M.check_form(schema)
  if not is_object(schema) or schema.type ~= "object" then return nil, "requestedSchema must be an object schema" end
  local props = schema.properties
  if props == nil or props == json.null then props = {} end
  if not is_object(props) then return nil, "requestedSchema.properties must be an object" end
  local n = 0
  for name, ps in pairs(props) do
    n = n + 1
    if n > M.MAX_FIELDS then return nil, "the form has more than " .. M.MAX_FIELDS .. " fields" end
    if type(name) ~= "string" or not is_object(ps) then return nil, "field " .. tostring(name) .. " is not a schema" end
    local t = ps.type
    if t == "array" then
      if not is_object(ps.items) or not enum_values(ps.items) then
        return nil, "field " .. name .. ": an array field must be a multi-select of string values"
      end
    elseif t ~= "string" and t ~= "number" and t ~= "integer" and t ~= "boolean" then
      return nil, "field " .. name .. " has type " .. tostring(t) .. " (forms hold strings, numbers, booleans and enums)"
    end
    if (ps.enum ~= nil or ps.oneOf ~= nil or ps.anyOf ~= nil) and not enum_values(ps) then
      return nil, "field " .. name .. ": bad enum"
    end
  end
  if schema.required ~= nil and schema.required ~= json.null then
    if type(schema.required) ~= "table" then return nil, "requestedSchema.required must be an array" end
    for _, r in ipairs(schema.required) do
      if type(r) ~= "string" then return nil, "requestedSchema.required must list field names" end
    end
  end
  return true
end

local function valid_date(y, m, d)
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return false end
  local days = { 31, (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  return d <= days[m]
end

local FORMAT_CHECK = {
  email = function(v) return v:match("^[^@%s]+@[^@%s]+$") ~= nil and not v:match("@%.") and v:match("%.[^.@]+$") ~= nil end,
  uri = function(v) return v:match("^%a[%w+.-]*:%S+$") ~= nil end,
  date = function(v)
    local y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    return y ~= nil and valid_date(y, m, d)
  end,
  ["date-time"] = function(v)
    local y, m, d, hh, mm, ss, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
    if not y or not valid_date(y, m, d) or tonumber(hh) > 23 or tonumber(mm) > 59 or tonumber(ss) > 60 then return false end
    rest = rest:gsub("^%.%d+", "")
    return rest == "Z" or rest == "z" or rest:match("^[+-]%d%d:%d%d$") ~= nil
  end,
}

local function member(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function bad(path, msg) errors.raise("invalid_argument", "'" .. path .. "' " .. msg, path) end

-- check_value(ps, v, path): one form field's answer against its schema
local function check_value(ps, v, path)
  local t = ps.type
  if t == "string" then
    if type(v) ~= "string" then bad(path, "must be a string") end
    local len = utf8.len(v)
    if not len then bad(path, "must be valid UTF-8") end
    if math.type(ps.minLength) == "integer" and len < ps.minLength then bad(path, "must be at least " .. ps.minLength .. " characters") end
    if math.type(ps.maxLength) == "integer" and len > ps.maxLength then bad(path, "must be at most " .. ps.maxLength .. " characters") end
    local values = enum_values(ps)
    if values and not member(values, v) then bad(path, "must be one of: " .. table.concat(values, ", ")) end
    if type(ps.format) == "string" and FORMAT_CHECK[ps.format] and not FORMAT_CHECK[ps.format](v) then
      bad(path, "must be a valid " .. ps.format)
    end
  elseif t == "number" or t == "integer" then
    if type(v) ~= "number" then bad(path, "must be a number") end
    if t == "integer" and math.type(v) ~= "integer" then bad(path, "must be an integer") end
    if type(ps.minimum) == "number" and v < ps.minimum then bad(path, "must be >= " .. ps.minimum) end
    if type(ps.maximum) == "number" and v > ps.maximum then bad(path, "must be <= " .. ps.maximum) end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then bad(path, "must be true or false") end
  elseif t == "array" then
    if type(v) ~= "table" or (next(v) ~= nil and #v == 0) then bad(path, "must be a list of choices") end
    local values = enum_values(ps.items)
    local seen = {}
    for i, x in ipairs(v) do
      if not member(values, x) then bad(path .. "[" .. i .. "]", "must be one of: " .. table.concat(values, ", ")) end
      if seen[x] then bad(path, "lists '" .. tostring(x) .. "' twice") end
      seen[x] = true
    end
    if math.type(ps.minItems) == "integer" and #v < ps.minItems then bad(path, "needs at least " .. ps.minItems .. " choices") end
    if math.type(ps.maxItems) == "integer" and #v > ps.maxItems then bad(path, "allows at most " .. ps.maxItems .. " choices") end
  end
end

-- form_content(schema, content, path) -> the content to send: the user's
-- fields checked, missing ones filled from their defaults (SEP-1034),
-- required ones present, unknown ones refused
function M.form_content(schema, content, path)
  if content == nil or content == json.null then content = json.object() end
  if not is_object(content) then bad(path, "must be an object of form fields") end
  local props = is_object(schema.properties) and schema.properties or {}
  local out = json.object()
  for k, v in pairs(content) do
    if type(k) ~= "string" or not props[k] then bad(path .. "." .. tostring(k), "is not a field of this form") end
    if v ~= json.null then
      check_value(props[k], v, path .. "." .. k)
      out[k] = v
    end
  end
  for k, ps in pairs(props) do
    if out[k] == nil and is_set(ps.default) then out[k] = ps.default end
  end
  for _, r in ipairs(type(schema.required) == "table" and schema.required or {}) do
    if out[r] == nil then bad(path .. "." .. r, "is required") end
  end
  return out
end

-- ---- requests as the host sees them, answers as the server gets them ----------------

local function server_tag(c)
  return c.server or { url = c.url }
end

-- describe(key, req, c) -> what the host is shown | nil, why (a request the
-- client cannot take: the server's fault). The URL of URL mode is data: the
-- engine never opens or fetches it.
function M.describe(key, req, c)
  local method = type(req) == "table" and req.method
  local kind = M.METHODS[method]
  if not kind then return nil, "unknown method " .. tostring(method) end
  local p = is_object(req.params) and req.params or {}
  local out = { key = key, method = method, server = server_tag(c) }
  if kind == "elicitation" then
    local mode = is_set(p.mode) and p.mode or "form"
    out.message = type(p.message) == "string" and p.message:sub(1, M.MAX_TEXT) or ""
    if mode == "form" then
      local ok, why = M.check_form(p.requestedSchema)
      if not ok then return nil, why end
      out.mode, out.schema = "form", p.requestedSchema
    elseif mode == "url" then
      if type(p.url) ~= "string" or #p.url > 8192 or not p.url:match("^%a[%w+.-]*://[^%s]+$") then
        return nil, "a URL elicitation needs a valid url"
      end
      out.mode, out.url = "url", p.url
      out.url_host = p.url:match("^%a[%w+.-]*://([^/?#]+)")
      if type(p.elicitationId) == "string" then out.elicitation_id = p.elicitationId:sub(1, 512) end
    else
      return nil, "unknown elicitation mode " .. tostring(mode)
    end
  else
    out.params = p
  end
  return out
end

-- check_answer(desc, v, path) -> the result the server gets, from the
-- host's answer v to the request desc; raises invalid_argument naming path
function M.check_answer(desc, v, path)
  if not is_object(v) then bad(path, "must be an object") end
  local kind = M.METHODS[desc.method]
  if kind == "elicitation" then
    local action = v.action
    if action ~= "accept" and action ~= "decline" and action ~= "cancel" then
      bad(path .. ".action", "must be accept, decline or cancel")
    end
    if action ~= "accept" then return { action = action } end
    if desc.mode == "url" then return { action = "accept" } end
    return { action = "accept", content = M.form_content(desc.schema, v.content, path .. ".content") }
  elseif kind == "sampling" then
    if type(v.role) ~= "string" or type(v.content) ~= "table" or type(v.model) ~= "string" then
      bad(path, "must be a sampling result {role, content, model}")
    end
    return v
  else
    if type(v.roots) ~= "table" then bad(path, "must be a roots result {roots = [...]}") end
    for i, r in ipairs(v.roots) do
      if type(r) ~= "table" or type(r.uri) ~= "string" or not r.uri:match("^file://") then
        bad(path .. ".roots[" .. i .. "]", "must be {uri = \"file://...\", name?}")
      end
    end
    return v
  end
end

-- ask_now(desc) -> result | nil (the handler gave no answer). The host's
-- handler for this kind answers synchronously; a bad answer raises.
function M.ask_now(desc)
  local kind = M.METHODS[desc.method]
  local text = call.ask(kind, json.encode(desc))
  if text == nil then return nil end
  local ok, v = pcall(json.decode, text)
  if not ok then errors.raise("invalid_argument", "the input handler's answer to '" .. desc.key .. "' is not JSON", "input_responses") end
  return M.check_answer(desc, v, "input_responses." .. desc.key)
end

-- ---- the handshake eras: one request on a call's stream --------------------------

M.INVALID_PARAMS = -32602

-- answer_request(c, msg, can_park) -> "result", result | "error", code,
-- message | "park" (can_park: the host answers later, a continuation).
-- Sampling and roots nobody handles are refused with the errors their
-- specs give; an elicitation nobody can answer is cancelled.
function M.answer_request(c, m, can_park)
  local kind = M.METHODS[m.method]
  local desc, why = M.describe(tostring(m.id), m, c)
  if not desc then return "error", M.INVALID_PARAMS, "Invalid params: " .. why end
  local host = call.host()
  if host[kind] then
    local res = M.ask_now(desc)
    if res then return "result", res end
  elseif kind == "elicitation" and can_park then
    return "park"
  end
  return M.refuse(m)
end

-- refuse(msg) -> as answer_request: the answer to a request nobody answers:
-- an elicitation cancelled, sampling and roots refused with their specs' errors
function M.refuse(m)
  local kind = M.METHODS[m.method]
  if kind == "elicitation" then return "result", { action = "cancel" } end
  if kind == "sampling" then return "error", -1, "User rejected sampling request" end
  return "error", -32601, "Roots not supported"
end

-- ---- 2026-07-28: input_required results -------------------------------------------

-- resolve(c, requests, resumable) -> answers, pending | raises. The host
-- answers what it can now; what it would answer later (elicitation, when the
-- op can hand out a continuation) is pending; an elicitation nobody can
-- answer is cancelled. A request for sampling or roots that the client did
-- not declare (deprecated in 2026-07-28) fails the call: the server must not
-- have sent it.
function M.resolve(c, requests, resumable)
  local answers = json.object()
  if requests == nil or requests == json.null then return answers, nil end
  if not is_object(requests) then
    errors.raise("upstream_error", "the server's inputRequests is not an object", nil, { reason = "invalid_input_request" })
  end
  local keys = {}
  for k in pairs(requests) do
    if type(k) ~= "string" then errors.raise("upstream_error", "inputRequests has a key that is not a string", nil, { reason = "invalid_input_request" }) end
    keys[#keys + 1] = k
  end
  if #keys > M.MAX_REQUESTS then
    errors.raise("upstream_error", "the server asked " .. #keys .. " questions at once (at most " .. M.MAX_REQUESTS .. ")", nil,
      { reason = "too_many_input_requests" })
  end
  table.sort(keys)
  local host = call.host()
  local pending
  for _, key in ipairs(keys) do
    local req = requests[key]
    local desc, why = M.describe(key, req, c)
    if not desc then
      errors.raise("upstream_error", "input request '" .. key .. "': " .. why, nil, { reason = "invalid_input_request" })
    end
    local kind = M.METHODS[desc.method]
    if host[kind] then
      answers[key] = M.ask_now(desc) or (kind == "elicitation" and { action = "cancel" }) or nil
    elseif kind == "elicitation" and resumable then
      pending = pending or {}
      pending[#pending + 1] = desc
    elseif kind == "elicitation" then
      answers[key] = { action = "cancel" }
    else
      errors.raise("upstream_error", "the server asked for " .. desc.method .. " (deprecated in 2026-07-28), which this " ..
        "client did not declare and nobody answers", nil, { reason = "unsupported_input_request" })
    end
  end
  return answers, pending
end

-- A call that waits for its host's answers (a continuation holds it):
-- {era, requests = [desc...], ...era state}. The ops turn it into
-- {resultType = "input_required", input_requests, continuation}.
local Suspended = {}
function M.suspend(t) return setmetatable(t, Suspended) end
function M.is_suspended(v) return getmetatable(v) == Suspended end

-- responses(requests, given, path) -> the checked answers to requests (the
-- descs a continuation waits for) from the host's input_responses
function M.responses(requests, given, path)
  if not is_object(given) then bad(path, "must be an object: request key -> answer") end
  local want = {}
  for _, d in ipairs(requests) do want[d.key] = d end
  for k in pairs(given) do
    if not want[k] then bad(path .. "." .. tostring(k), "answers no request of this continuation") end
  end
  local out = json.object()
  for _, d in ipairs(requests) do
    if given[d.key] == nil then bad(path .. "." .. d.key, "is required (an answer, or {action = \"decline\"} or \"cancel\")") end
    out[d.key] = M.check_answer(d, given[d.key], path .. "." .. d.key)
  end
  return out
end

return M
