-- ops/tool: the Tools section (spec step 3): a tenant enables or disables an
-- MCP server as a tool; assistants call its tools; an admin approves changed ones.
local registry = require "registry"
local errors = require "errors"
local store = require "store"
local model = require "model"
local json = require "json"
local log = require "log"
local assistants = require "assistants"
local function capabilities() return require "capabilities" end
local connection = require "connection"
local continuations = require "continuations"
-- the JSON Schema validator loads with the first tool that declares an outputSchema
local function jsonschema() return require "jsonschema" end

local function set_enabled(ctx, args, on)
  local a = ctx.actor
  local s = model.ref(a, "servers", args.server, "server")
  ctx.target = s.id
  return store.tx(function()
    local e = store.find(a, "enablements", { server_id = s.id })
    if on and not e then
      if s.url == nil or s.url == json.null then
        errors.raise("invalid_argument", "server '" .. s.name .. "' has no URL yet: configure it first (server.update)", "server")
      end
      store.insert(a, "enablements", { server_id = s.id, enabled_by = a.user_id })
    elseif not on and e then
      store.delete(a, "enablements", e.id)
    end
    return { server = s.id, name = s.name, enabled = on }
  end)
end

registry.op {
  name = "tool.enable", role = "admin", mutating = true, module = "mcp",
  summary = "Enable an MCP server as a tool for the tenant",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args) return set_enabled(ctx, args, true) end,
}

registry.op {
  name = "tool.disable", role = "admin", mutating = true, module = "mcp",
  summary = "Disable an MCP server tool for the tenant (assistants stop using it)",
  args = { server = { type = "string", required = true, max = 200 } },
  cli = { positional = { "server" } },
  handler = function(ctx, args) return set_enabled(ctx, args, false) end,
}

registry.op {
  name = "tool.list", role = "member", module = "mcp",
  summary = "The Tools section: the tenant's MCP servers with their enabled flag",
  args = { limit = model.LIMIT, cursor = model.CURSOR },
  handler = function(ctx, args)
    return model.list(ctx.actor, "servers", args, nil, function(s)
      local v = model.server_view(ctx.actor, s)
      return { server = v.id, name = v.name, enabled = v.enabled, url_set = v.url_set,
               capabilities_status = v.capabilities_status, classification = v.classification }
    end)
  end,
}

-- checks(a, assistant_ref, tool, field) -> {asst, entry, server row, its
-- timeout}: the attachment, enablement, classification and approval
local function checks(a, assistant_ref, tool, field)
  -- the assistant and server rows are shared under the op's change counters
  -- (model.shared_row): read here and by the call, never changed
  local asst = assistants.get(a, assistant_ref, field or "assistant", true)
  local en = assistants.entry(a, asst, tool)
  if not en then
    errors.raise("not_found", "assistant '" .. asst.name .. "' has no tool '" .. tool .. "' (see assistant.tools)", field or "tool")
  end
  if not en.usable then errors.raise(en.code, en.reason, field or "tool") end
  if en.cap.status == "pending" then
    errors.raise("forbidden", "tool '" .. en.cap.name .. "' on server '" .. en.server.name ..
      "' changed its definition and awaits a tenant admin's approval (tool.approve)", field or "tool")
  end
  local s = model.shared_row(a, "servers", en.server.id) or store.get(a, "servers", en.server.id)
  return { asst, en, s, connection.timeout_of(s) }
end

-- usable_tool(a, assistant_ref, tool, timeout_ms, field) -> asst, entry,
-- server row, timeout: the checks, at every call and at every continuation
-- of one. What they read is the tenant's rows under the op's change
-- counters, so a pass is kept under those counters for the user, assistant
-- and tool (model.under_counters), as the rows are: any change to the
-- tenant's rows or the settings, on any instance, makes the next call check
-- again. A refusal is never kept: it raises each time.
local function new_passes() return { n = 0, by = {} } end
local PASSES_MAX = 1024

local function usable_tool(a, assistant_ref, tool, timeout_ms, field)
  -- by user, assistant reference and tool, in tables (no key text to build);
  -- without counters to keep them under, under_counters hands out a new set
  local passes = model.under_counters(a, "usable", new_passes)
  local uid = a.user_id or ""
  local by_u = passes.by[uid]
  local by_a = by_u and by_u[assistant_ref]
  local plan = by_a and by_a[tool]
  if not plan then
    plan = checks(a, assistant_ref, tool, field)
    if passes.n >= PASSES_MAX then passes.by, passes.n, by_u = {}, 0, nil end
    if not by_u then by_u = {}; passes.by[uid] = by_u end
    by_a = by_u[assistant_ref]
    if not by_a then by_a = {}; by_u[assistant_ref] = by_a end
    by_a[tool], passes.n = plan, passes.n + 1
  end
  local timeout = plan[4]
  if timeout_ms and timeout_ms < timeout then timeout = timeout_ms end
  return plan[1], plan[2], plan[3], timeout
end

-- checked(en, r) -> r: a complete result of a tool that declares an
-- outputSchema (its approved definition) gets output_validation = {valid,
-- errors?, unchecked?}: its structuredContent checked against the schema
-- (JSON Schema 2020-12, no remote $ref followed). The result is kept whole
-- either way; the host decides what a mismatch means.
local function checked(en, r)
  if type(r) ~= "table" or r.resultType == "input_required" or r.isError == true then return r end
  local def = en.cap.definition
  local schema = type(def) == "table" and def.outputSchema or nil
  if type(schema) ~= "table" and type(schema) ~= "boolean" then return r end
  local sc = r.structuredContent
  local v
  if sc == nil or sc == json.null then
    v = { valid = false, errors = { { path = "/", message = "structuredContent is missing (the tool declares an outputSchema)" } } }
  else
    local ok, errs, un = jsonschema().validate(schema, sc)
    v = { valid = ok, errors = #errs > 0 and errs or nil, unchecked = #un > 0 and un or nil }
  end
  if not v.valid then log.info("tool.call: structuredContent of", en.cap.name, "does not match its outputSchema") end
  r.output_validation = v
  return r
end

local function call_tool(c, name, arguments, timeout)
  return c:call_tool(name, arguments, { timeout_ms = timeout, resumable = true })
end

-- tool.call checks the attachment, enablement, classification and approval,
-- then routes the call with the server's credentials (connection.run). A
-- call that waits for its user's answers (an elicitation nobody answered
-- now) answers {resultType = "input_required", input_requests,
-- continuation, expires_at}: tool.continue carries it on.
registry.op {
  name = "tool.call", role = "member", module = "mcp",
  summary = "Call one of an assistant's MCP tools with arguments",
  args = { assistant = { type = "string", required = true, max = 200 },
           tool = { type = "string", required = true, max = 200 },
           arguments = { type = "object" },
           timeout_ms = { type = "integer", min = 100, max = connection.MAX_TIMEOUT_MS } },
  cli = { words = "call", positional = { "assistant", "tool", "arguments" } },
  handler = function(ctx, args)
    local asst, en, s, timeout = usable_tool(ctx.actor, args.assistant, args.tool, args.timeout_ms)
    log.info("tool.call", asst.id, s.id, en.cap.name)
    local r = connection.run(ctx, s, call_tool, en.cap.name, args.arguments or json.object(), timeout)
    return checked(en, continuations.finish(ctx, s, "tool", asst.id, args.tool, r))
  end,
}

-- tool.continue carries on a tool call that answered input_required, with
-- the user's answers; the tool must still be usable.
registry.op {
  name = "tool.continue", role = "member", module = "mcp",
  summary = "Carry on a tool call that waits for the user's answers (its continuation)",
  args = { continuation = { type = "string", required = true, min = 1, max = 200 },
           input_responses = { type = "object", required = true },
           timeout_ms = { type = "integer", min = 100, max = connection.MAX_TIMEOUT_MS } },
  cli = { positional = { "continuation", "input_responses" } },
  handler = function(ctx, args)
    local row, state = continuations.take(ctx, "tool", args.continuation)
    local asst, en, s, timeout = usable_tool(ctx.actor, row.assistant_id, row.target, args.timeout_ms, "continuation")
    if s.id ~= row.server_id then
      errors.raise("not_found", "the tool of this continuation now belongs to another server", "continuation")
    end
    local answers = continuations.answers(state, args.input_responses)
    continuations.consume(ctx, row)
    log.info("tool.continue", asst.id, s.id, en.cap.name)
    local r = connection.run(ctx, s, function(c) return c:resume(state, answers, { timeout_ms = timeout }) end)
    return checked(en, continuations.finish(ctx, s, "tool", asst.id, row.target, r))
  end,
}

-- Definition pinning: a tool whose definition changed on refresh is refused
-- until an admin approves the new one.
registry.op {
  name = "tool.approve", role = "admin", mutating = true, module = "mcp",
  summary = "Approve a tool's changed definition so calls to it are allowed again",
  args = { server = { type = "string", required = true, max = 200 },
           tool = { type = "string", required = true, max = 500 } },
  cli = { positional = { "server", "tool" } },
  handler = function(ctx, args)
    local s = model.ref(ctx.actor, "servers", args.server, "server")
    ctx.target = s.id
    local status = capabilities().approve(ctx.actor, s.id, args.tool)
    if not status then errors.raise("not_found", "tool '" .. args.tool .. "' not found on server '" .. s.name .. "'", "tool") end
    return { server = s.id, tool = args.tool, status = status }
  end,
}
