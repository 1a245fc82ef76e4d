-- script.conformance: the scenario driver behind `mcplink conformance-client`:
-- exercises the engine's MCP client (op mcp.session) as each scenario expects.
local call = require "call"
local core = require "core"
local json = require "json"

local M = {}

local SYSTEM = { system = true }

local function eprint(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  core.eprint("conformance-client: " .. table.concat(parts, " "))
end

-- The client's host, as a person who says yes would be: a form is accepted as
-- the server offered it (the engine fills in the schema's defaults, SEP-1034,
-- and checks the answer), a URL declined (nobody here can open it).
local HOST = {
  methods = { elicitation = true },
  input = function(text)
    local req = json.decode(text)
    if req.mode == "url" then return json.encode({ action = "decline" }) end
    return json.encode({ action = "accept", content = json.object() })
  end,
}

-- op(actor, name, args_json) -> result_json, code|nil, with the client's host
local function op(actor, name, args_json) return call.op(actor, name, args_json, HOST) end

-- Runs steps through the op; returns the result rows.
local function steps(url, list)
  local res, code = op(SYSTEM, "mcp.session", json.encode({ url = url, steps = list, timeout_ms = 20000 }))
  local v = json.decode(res)
  if code then error("mcp.session: " .. tostring(v.error and v.error.message or code), 0) end
  for _, row in ipairs(v.results) do
    if row.error then eprint(row.step, "failed:", row.error.code, row.error.message) end
  end
  return v.results
end

-- Arguments that satisfy a simple input schema (numbers, strings, booleans).
local function sample_args(schema)
  local args = json.object()
  local props = type(schema) == "table" and schema.properties
  if type(props) ~= "table" then return args end
  local n = 1
  local names = {}
  for k in pairs(props) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local t = type(props[k]) == "table" and props[k].type
    if t == "number" or t == "integer" then n = n + 1; args[k] = n
    elseif t == "string" then args[k] = "test"
    elseif t == "boolean" then args[k] = true end
  end
  return args
end

local function ok_rows(rows)
  for _, r in ipairs(rows) do if r.error then return false end end
  return true
end

-- ---- OAuth: a tenant user connects headlessly, then runs the steps ----------

local USER = { tenant = "conformance", user = "client" }
M.MAX_AUTHORIZATIONS = 3 -- in one run, the first one included (scope-retry-limit)

-- op(actor, name, args) -> value | raises a readable message
local function must(actor, name, args)
  local res, code = op(actor, name, json.encode(args))
  local v = json.decode(res)
  if code then error(name .. ": " .. tostring(v.error and v.error.message or code), 0) end
  return v
end

-- connect(server_id): oauth.begin, the authorization endpoint's redirect read
-- without a browser, oauth.complete with it.
local function connect(sid)
  local b = must(USER, "oauth.begin", { server = sid })
  local h = must(SYSTEM, "oauth.headless_authorize", { authorization_url = b.authorization_url })
  must(USER, "oauth.complete", { callback_url = h.location })
end

-- An executor of steps as the user; a step the engine answers with "connect
-- again" is re-authorized and retried, a bounded number of times.
local function oauth_exec(sid)
  local authorizations = 1
  return function(list)
    local out = {}
    for _, st in ipairs(list) do
      local row
      while true do
        local v = must(SYSTEM, "mcp.user_session", { tenant = USER.tenant, user = USER.user, server = sid, steps = { st } })
        row = v.results[1]
        local e = row.error
        -- what a host does when told to reconnect: step-up, or tokens dropped
        -- (a 401 that no refresh could cure, e.g. a new authorization server)
        if not (e and e.code == "user_not_authenticated" and authorizations < M.MAX_AUTHORIZATIONS) then break end
        eprint(st.step, "needs authorization (", tostring(e.message), "): authorizing again")
        authorizations = authorizations + 1
        local ok, ce = pcall(connect, sid)
        if not ok then row = { step = st.step, error = { code = "unauthorized", message = tostring(ce) } }; break end
      end
      if row.error then eprint(row.step, "failed:", row.error.code, row.error.message) end
      out[#out + 1] = row
    end
    return out
  end
end

-- oauth_setup(url, ctx) -> executor: a tenant, an admin user, the server
-- (pre-registered client credentials from the suite's context), connected.
local function oauth_setup(url, ctx)
  must(SYSTEM, "tenant.create", { name = USER.tenant })
  must(SYSTEM, "user.create", { tenant = USER.tenant, name = USER.user, role = "admin" })
  local s = must(USER, "server.create", { name = "scenario" })
  local upd = { id = s.id, url = url, auth_type = "oauth", timeout_ms = 20000 }
  if type(ctx.client_id) == "string" then
    upd.oauth = { client_id = ctx.client_id, client_secret = type(ctx.client_secret) == "string" and ctx.client_secret or nil }
  end
  must(USER, "server.update", upd)
  connect(s.id)
  return oauth_exec(s.id)
end

-- run(url, scenario, context_json) -> exit status (conformance.c passes the suite's protocol
-- version too: the client finds the server's era itself)
function M.run(url, scenario, context_json)
  local ctx = {}
  if type(context_json) == "string" and context_json ~= "" then
    local ok, v = pcall(json.decode, context_json)
    if ok and type(v) == "table" then ctx = v end
  end
  scenario = scenario or ""
  local exec = function(list) return steps(url, list) end
  local rows
  if not scenario:match("^auth/") then
    rows = exec({ { step = "discover" } })
    if rows[1].error and rows[1].error.code == "unauthorized" then rows = nil end
  end
  if not rows then
    -- a server that wants OAuth
    local ok, e = pcall(oauth_setup, url, ctx)
    if not ok then eprint(tostring(e)); return 1 end
    exec = e
    rows = exec({ { step = "discover" } })
  end
  if rows[1].error then return 1 end
  local info = rows[1].result
  local caps = info.capabilities or {}
  rows = exec({ { step = "list", kind = "tools" } })
  if rows[1].error then return 1 end
  local tools = rows[1].result
  if scenario == "json-schema-ref-no-deref" then return 0 end
  local calls = {}
  if scenario == "json-schema-2020-12-preservation" then
    for _, t in ipairs(tools) do
      if t.name == "json_schema_2020_12_tool" then
        calls[1] = { step = "call_tool", name = "json_schema_echo", arguments = { schema = t.inputSchema } }
      end
    end
  elseif type(ctx.toolCalls) == "table" then
    for _, tc in ipairs(ctx.toolCalls) do
      calls[#calls + 1] = { step = "call_tool", name = tc.name, arguments = tc.arguments or json.object() }
    end
  else
    for i, t in ipairs(tools) do
      if i > 10 then break end
      calls[#calls + 1] = { step = "call_tool", name = t.name, arguments = sample_args(t.inputSchema) }
    end
  end
  local status = 0
  if #calls > 0 and not ok_rows(exec(calls)) then status = 1 end
  if caps.resources ~= nil and caps.resources ~= json.null then
    local r = exec({ { step = "list", kind = "resources" } })[1]
    if r.result then
      local reads = {}
      for i, res in ipairs(r.result) do
        if i <= 5 then reads[#reads + 1] = { step = "read_resource", uri = res.uri } end
      end
      if #reads > 0 then exec(reads) end
    end
  end
  if caps.prompts ~= nil and caps.prompts ~= json.null then
    local r = exec({ { step = "list", kind = "prompts" } })[1]
    if r.result then
      local gets = {}
      for i, p in ipairs(r.result) do
        if i <= 5 then
          local a = json.object()
          for _, pa in ipairs(p.arguments or {}) do a[pa.name] = "test" end
          gets[#gets + 1] = { step = "get_prompt", name = p.name, arguments = a }
        end
      end
      if #gets > 0 then exec(gets) end
    end
  end
  exec({ { step = "close" } })
  return status
end

return M
