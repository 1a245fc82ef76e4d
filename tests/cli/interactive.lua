-- tests/cli/interactive.lua: interactive calls against the SDK fixtures, run by interactive.t in
-- phases on one database: continuations (rounds, decline, cancel, replays, other users), hooks.
local A = {}
for _, a in ipairs(arg) do local k, v = a:match("^([%w_]+)=(.*)$"); if k then A[k] = v end end
local phase = A.phase

local function tool_of(tools, server_id, name)
  for _, t in ipairs(tools) do if t.tool == name and t.server.id == server_id then return t.name end end
end

local function text_of(res) return res and res.content and res.content[1] and res.content[1].text or "" end

-- the shared set-up: a tenant with an admin and two members, the two servers, a space assistant
local function world()
  local ann = mcplink.as { tenant = "acme", user = "ann" }
  local bob = mcplink.as { tenant = "acme", user = "bob" }
  local out = { ann = ann, bob = bob, cy = mcplink.as { tenant = "acme", user = "cy" },
                oz = mcplink.as { tenant = "other", user = "oz" } }
  out.v2 = ann:must("server.get", { id = "v2" })
  out.v1 = ann:must("server.get", { id = "v1" })
  for _, a in ipairs(ann:must("assistant.list", {}).items) do if a.name == "Desk" then out.bot = a end end
  out.tools = ann:must("assistant.tools", { assistant = out.bot.id }).tools
  out.tool = function(server, name) return tool_of(out.tools, server.id, name) end
  return out
end

if phase == "setup" then
  mcplink.must("settings.set", { allow_private_urls = true })
  local t = mcplink.setup { tenant = "acme", users = { ann = "admin", bob = "member", cy = "member" } }
  mcplink.setup { tenant = "other", users = { oz = "admin" } }
  t.ann:must("classification.set", { name = "Internal", level = 1 })
  t.ann:must("space.create", { name = "Desk", classification = "Internal" })
  for _, sv in ipairs({ { "v2", A.v2 }, { "v1", A.v1 } }) do
    local s = t.ann:must("server.create", { name = sv[1] })
    local r = t.ann:must("server.update", { id = s.id, url = sv[2], auth_type = "api_key", api_key = A.key,
                                            classification = "Internal", timeout_ms = 20000 })
    ok(r.discovery and r.discovery.ok, sv[1] .. " discovered")
    t.ann:must("tool.enable", { server = s.id })
  end
  local bot = t.ann:must("assistant.create", { name = "Desk", space = "Desk" })
  t.ann:must("assistant.attach", { assistant = bot.id, server = "v2" })
  t.ann:must("assistant.attach", { assistant = bot.id, server = "v1" })
  done_testing()

elseif phase == "modern" then
  local w = world()
  local ann, bob = w.ann, w.bob
  local form = w.tool(w.v2, "ask_form")

  -- no handler: the call waits for its user, and the host gets the question and a continuation
  local r = ann:must("tool.call", { assistant = w.bot.id, tool = form, arguments = { message = "Tell me" } })
  is(r.resultType, "input_required", "without a handler tool.call answers input_required")
  ok(type(r.continuation) == "string" and #r.continuation >= 40, "with a continuation")
  ok(type(r.expires_at) == "number", "that expires")
  local q = r.input_requests and r.input_requests[1]
  is(q and q.key, "profile", "the question keeps the server's key")
  is(q and q.mode, "form", "form mode")
  is(q and q.message, "Tell me", "the server's message")
  is(q and q.server and q.server.name, "v2", "marked with its server")
  is(q and q.schema and q.schema.properties.age.default, 30, "the schema with its defaults")
  unlike(json.encode(r), "requestState", "the server's requestState is not shown")
  -- the continuation is the caller's only
  local x, e = bob:op("tool.continue", { continuation = r.continuation, input_responses = { profile = { action = "decline" } } })
  err_is(x, e, "not_found", "another user cannot use it")
  x, e = w.oz:op("tool.continue", { continuation = r.continuation, input_responses = { profile = { action = "decline" } } })
  err_is(x, e, "not_found", "nor another tenant")
  -- a bad answer is refused and the continuation stays usable
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = { profile = { action = "accept", content = { age = 200 } } } })
  err_is(x, e, "invalid_argument", "an answer outside the schema is refused")
  like(e and e.field or "", "input_responses.profile.content", "naming the field")
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = {} })
  err_is(x, e, "invalid_argument", "an unanswered question is refused")
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = { profile = { action = "decline" }, other = { action = "accept" } } })
  err_is(x, e, "invalid_argument", "an answer to no question is refused")
  local done = ann:must("tool.continue", { continuation = r.continuation,
    input_responses = { profile = { action = "accept", content = { name = "Ann", subscribe = true } } } })
  is(done.resultType, "complete", "the continued call completes")
  is(done.structuredContent and done.structuredContent.action, "accept", "the server got accept")
  local got = done.structuredContent and done.structuredContent.content or {}
  ok(got.name == "Ann" and got.subscribe == true and got.age == 30 and got.color == "green",
    "the answer, with the defaults of fields left out")
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = { profile = { action = "decline" } } })
  err_is(x, e, "not_found", "a used continuation cannot be replayed")
  x, e = ann:op("tool.continue", { continuation = "made-up", input_responses = {} })
  err_is(x, e, "not_found", "a made-up continuation is not found")

  -- decline and cancel reach the server
  for _, action in ipairs({ "decline", "cancel" }) do
    r = ann:must("tool.call", { assistant = w.bot.id, tool = form })
    local d = ann:must("tool.continue", { continuation = r.continuation, input_responses = { profile = { action = action } } })
    is(d.structuredContent and d.structuredContent.action, action, action .. " reaches the server")
  end

  -- several rounds: each answer brings the next question, each with a continuation of its own
  r = ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v2, "ask_twice") })
  is(r.input_requests[1].key, "first", "round 1 asks the first question")
  local r2 = ann:must("tool.continue", { continuation = r.continuation, input_responses = { first = { action = "accept", content = { first = "one" } } } })
  is(r2.resultType, "input_required", "round 2 asks again")
  is(r2.input_requests[1].key, "second", "the second question")
  like(r2.input_requests[1].message, "You said one", "the server saw the first answer")
  isnt(r2.continuation, r.continuation, "a new continuation")
  local r3 = ann:must("tool.continue", { continuation = r2.continuation, input_responses = { second = { action = "accept", content = { second = "two" } } } })
  is_deeply(r3.structuredContent, { first = "one", second = "two" }, "both answers arrived (the state carried the first)")

  -- two questions in one round: both must be answered; a URL is data for the host
  r = ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v2, "ask_both") })
  is(#r.input_requests, 2, "two questions in one round")
  local url
  for _, qq in ipairs(r.input_requests) do if qq.mode == "url" then url = qq end end
  is(url and url.url, "https://auth.example.com/c", "the URL as the server gave it")
  is(url and url.url_host, "auth.example.com", "and its host")
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = { connect = { action = "accept" } } })
  err_is(x, e, "invalid_argument", "every question of the round needs an answer")
  local both = ann:must("tool.continue", { continuation = r.continuation,
    input_responses = { connect = { action = "accept" }, profile = { action = "accept", content = { name = "B" } } } })
  is_deeply(both.structuredContent, { profile = "accept", connect = "accept" }, "both answers reached the server")

  -- a handler answers now, no continuation; events come as the call runs
  local events = {}
  local res = ann:must("tool.call", { assistant = w.bot.id, tool = form }, {
    on_input = function(req) return { action = "accept", content = { name = "Hook" } } end,
    on_event = function(ev) events[#events + 1] = ev end })
  is(res.structuredContent and res.structuredContent.content and res.structuredContent.content.name, "Hook",
    "a script's input hook answers now")
  ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v2, "progress"), arguments = { steps = 2 } },
    { on_event = function(ev) events[#events + 1] = ev end })
  is(#events, 2, "a script's event hook sees the progress")
  is(events[2] and events[2].progress, 2, "in order")
  done_testing()

elseif phase == "legacy" then
  -- a handshake-era server asks on the call's stream: the call is parked with its stream open
  local w = world()
  local ann, bob = w.ann, w.bob
  local form = w.tool(w.v1, "ask_form")
  local r = ann:must("tool.call", { assistant = w.bot.id, tool = form, arguments = { message = "Legacy?" } })
  is(r.resultType, "input_required", "the v1 call waits for its user")
  local q = r.input_requests[1]
  is(q.mode, "form", "form mode")
  is(q.message, "Legacy?", "the server's message")
  is(q.server.name, "v1", "marked with its server")
  local key = q.key
  local x, e = bob:op("tool.continue", { continuation = r.continuation, input_responses = { [key] = { action = "decline" } } })
  err_is(x, e, "not_found", "another user cannot answer it")
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = { [key] = { action = "accept", content = { age = -1 } } } })
  err_is(x, e, "invalid_argument", "a bad answer is refused")
  local d = ann:must("tool.continue", { continuation = r.continuation,
    input_responses = { [key] = { action = "accept", content = { name = "Lee", color = "red" } } } })
  local got = d.structuredContent and d.structuredContent.content or {}
  ok(got.name == "Lee" and got.color == "red" and got.age == 30, "the held call completes with the answer and its defaults")
  x, e = ann:op("tool.continue", { continuation = r.continuation, input_responses = { [key] = { action = "decline" } } })
  err_is(x, e, "not_found", "a used continuation cannot be replayed")
  for _, action in ipairs({ "decline", "cancel" }) do
    r = ann:must("tool.call", { assistant = w.bot.id, tool = form })
    d = ann:must("tool.continue", { continuation = r.continuation, input_responses = { [r.input_requests[1].key] = { action = action } } })
    is(d.structuredContent and d.structuredContent.action, action, action .. " reaches the v1 server")
  end
  -- several questions on one stream: each answer brings the next, the stream held between
  r = ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v1, "ask_twice") })
  local r2 = ann:must("tool.continue", { continuation = r.continuation,
    input_responses = { [r.input_requests[1].key] = { action = "accept", content = { first = "eins" } } } })
  is(r2.resultType, "input_required", "the second question")
  like(r2.input_requests[1].message, "You said eins", "after the first answer")
  local r3 = ann:must("tool.continue", { continuation = r2.continuation,
    input_responses = { [r2.input_requests[1].key] = { action = "accept", content = { second = "zwei" } } } })
  is_deeply(r3.structuredContent, { first = "eins", second = "zwei" }, "both answers arrived")
  -- a URL to open
  r = ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v1, "ask_url") })
  is(r.input_requests[1].url, "https://auth.example.com/connect?flow=42", "the URL, as data")
  is(r.input_requests[1].elicitation_id, "flow-42", "its elicitation id")
  d = ann:must("tool.continue", { continuation = r.continuation, input_responses = { [r.input_requests[1].key] = { action = "accept" } } })
  like(text_of(d), "url: {\"action\":\"accept\"}", "the consent reaches the server")
  -- with a handler, the question is answered on the stream at once
  local res = ann:must("tool.call", { assistant = w.bot.id, tool = form }, {
    on_input = function(req) return { action = "accept", content = { name = "Now" } } end })
  is(res.structuredContent and res.structuredContent.content.name, "Now", "a handler answers on the stream")
  -- sessions keep working for plain calls
  res = ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v1, "echo"), arguments = { text = "still" } })
  is(res.structuredContent and res.structuredContent.text, "still", "plain calls go on")
  done_testing()

elseif phase == "legacy_wait" then
  -- questions left unanswered: one until the server's timeout, one until the engine closes
  local w = world()
  w.ann:must("server.update", { id = w.v1.id, timeout_ms = 2000 })
  local r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v1, "ask_form") })
  is(r.resultType, "input_required", "a question held until the server's timeout")
  ok(r.expires_at - mcplink.now_ms() <= 2000, "the continuation expires with the call")
  -- the user answers after the call's timeout (the v2 server's slow tool passes the time)
  w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v2, "slow"), arguments = { ms = 2500 } })
  local x, e = w.ann:op("tool.continue", { continuation = r.continuation,
    input_responses = { [r.input_requests[1].key] = { action = "accept", content = { name = "Late" } } } })
  err_is(x, e, "timeout", "an answer after the server's timeout is a timeout")
  w.ann:must("server.update", { id = w.v1.id, timeout_ms = 20000 })
  r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v1, "ask_form") })
  is(r.resultType, "input_required", "a question held when the engine closes")
  diag("closed=" .. r.continuation .. " key=" .. r.input_requests[1].key)
  done_testing()

elseif phase == "legacy_late" then
  local w = world()
  local x, e = w.ann:op("tool.continue", { continuation = A.closed, input_responses = { [A.key2] = { action = "accept", content = { name = "Gone" } } } })
  err_is(x, e, "not_found", "a call held by an engine that closed (or by another instance) is gone")
  like(e and e.message or "", "another engine", "the error says where such calls live")
  done_testing()

elseif phase == "output" then
  -- structured output checked against the tool's (approved) outputSchema, the result kept whole
  local w = world()
  for _, sv in ipairs({ w.v2, w.v1 }) do
    local r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(sv, "bad_output") })
    local v = r.output_validation
    is(v and v.valid, false, sv.name .. ": a mismatch is reported")
    local paths = {}
    for _, e in ipairs(v and v.errors or {}) do paths[#paths + 1] = e.path end
    is_deeply(paths, { "/count" }, sv.name .. ": where (count must be an integer)")
    is(r.structuredContent and r.structuredContent.count, "three", sv.name .. ": the result is not dropped")
    r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(sv, "echo"), arguments = { text = "ok" } })
    is(r.output_validation and r.output_validation.valid, true, sv.name .. ": a matching result is valid")
    r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(sv, "progress"), arguments = { steps = 1 } })
    is(r.output_validation, nil, sv.name .. ": a tool without an outputSchema is not checked")
    r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(sv, "ask_form") })
    r = w.ann:must("tool.continue", { continuation = r.continuation, input_responses = { [r.input_requests[1].key] = { action = "cancel" } } })
    is(r.output_validation and r.output_validation.valid, true, sv.name .. ": a continued call's result is checked too")
  end
  done_testing()

elseif phase == "late" then
  -- a call whose user answers after input_timeout_ms: the continuation has expired
  local w = world()
  mcplink.must("settings.set", { input_timeout_ms = 1000 })
  local r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool(w.v2, "ask_form") })
  is(r.resultType, "input_required", "a question")
  ok(r.expires_at - mcplink.now_ms() <= 1000, "that expires within input_timeout_ms")
  diag("continuation=" .. r.continuation)
  done_testing()

elseif phase == "late2" then
  local w = world()
  local x, e = w.ann:op("tool.continue", { continuation = A.continuation,
    input_responses = { profile = { action = "accept", content = { name = "Late" } } } })
  err_is(x, e, "timeout", "an answer after the continuation expired is a timeout")
  is(e and e.reason, "expired", "reason expired")
  x, e = w.ann:op("tool.continue", { continuation = A.continuation, input_responses = { profile = { action = "decline" } } })
  err_is(x, e, "not_found", "and the expired continuation is gone")
  mcplink.must("settings.set", { input_timeout_ms = 600000 })
  done_testing()
end
