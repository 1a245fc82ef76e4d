-- tests/cli/interactive_session.lua: a handshake-era server that asks on its session's own
-- stream (the client's GET), run by interactive_session.t in phases on one database.
local A = {}
for _, a in ipairs(arg) do local k, v = a:match("^([%w_]+)=(.*)$"); if k then A[k] = v end end
local phase = A.phase

local function world()
  local ann = mcplink.as { tenant = "acme", user = "ann" }
  local w = { ann = ann }
  for _, a in ipairs(ann:must("assistant.list", {}).items) do if a.name == "Desk" then w.bot = a end end
  local tools = ann:must("assistant.tools", { assistant = w.bot.id }).tools
  w.tool = function(server, name)
    for _, t in ipairs(tools) do if t.tool == name and t.server.name == server then return t.name end end
  end
  return w
end

if phase == "setup" then
  mcplink.must("settings.set", { allow_private_urls = true })
  local t = mcplink.setup { tenant = "acme", users = { ann = "admin" } }
  t.ann:must("classification.set", { name = "Internal", level = 1 })
  t.ann:must("space.create", { name = "Desk", classification = "Internal" })
  for _, sv in ipairs({ { "get", A.get, 20000 }, { "noget", A.noget, 2500 } }) do
    local s = t.ann:must("server.create", { name = sv[1] })
    local r = t.ann:must("server.update", { id = s.id, url = sv[2], auth_type = "api_key", api_key = A.key,
                                            classification = "Internal", timeout_ms = sv[3] })
    ok(r.discovery and r.discovery.ok, sv[1] .. " discovered")
    t.ann:must("tool.enable", { server = s.id })
  end
  local bot = t.ann:must("assistant.create", { name = "Desk", space = "Desk" })
  t.ann:must("assistant.attach", { assistant = bot.id, server = "get" })
  t.ann:must("assistant.attach", { assistant = bot.id, server = "noget" })
  done_testing()

elseif phase == "answered" then
  -- the question arrives on the session's stream; the handler answers it, by POST
  local w = world()
  local asked = 0
  local hooks = { on_input = function(req)
    asked = asked + 1
    is(req.message, "Name, please (session stream)", "the handler sees the question from the session's stream")
    return { action = "accept", content = { name = "Ann" } }
  end }
  local res = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool("get", "ask_session") }, hooks)
  is_deeply(res.structuredContent, { action = "accept", content = { name = "Ann", color = "blue" } },
    "the answer, with the form's default, reaches the server")
  -- the server allows one such stream per session: the second call takes the one the first kept
  res = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool("get", "ask_session") }, hooks)
  is(res.structuredContent and res.structuredContent.action, "accept", "a second call listens on the stream the first one kept")
  is(asked, 2, "asked once per call")
  -- without a handler: a continuation, answered later
  local r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool("get", "ask_session") })
  is(r.resultType, "input_required", "without a handler the call waits for its user")
  is(r.input_requests[1] and r.input_requests[1].server.name, "get", "marked with its server")
  local d = w.ann:must("tool.continue", { continuation = r.continuation,
    input_responses = { [r.input_requests[1].key] = { action = "decline" } } })
  is(d.structuredContent and d.structuredContent.action, "decline", "the late answer reaches the server")
  done_testing()

elseif phase == "never" then
  -- nobody answers: the held call ends with timeout at the server's timeout_ms
  local w = world()
  local get = w.ann:must("server.get", { id = "get" })
  w.ann:must("server.update", { id = get.id, timeout_ms = 2000 })
  local r = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool("get", "ask_session") })
  is(r.resultType, "input_required", "a question held until the call's timeout")
  ok(r.expires_at - mcplink.now_ms() <= 2000, "its continuation expires with the call")
  -- a server that offers no stream of its own (405): its question never reaches the client,
  -- the call ends at its timeout (2.5 s, which also lets the held call above expire)
  local x, e = w.ann:op("tool.call", { assistant = w.bot.id, tool = w.tool("noget", "ask_session") },
    { on_input = function() return { action = "accept", content = { name = "Never" } } end })
  err_is(x, e, "timeout", "a question that never reaches the client: the call ends with timeout")
  x, e = w.ann:op("tool.continue", { continuation = r.continuation,
    input_responses = { [r.input_requests[1].key] = { action = "accept", content = { name = "Late" } } } })
  err_is(x, e, "timeout", "an answer after the call's timeout is a timeout")
  -- the 405 is remembered for the session: the next call does not ask again
  local echo = w.ann:must("tool.call", { assistant = w.bot.id, tool = w.tool("noget", "echo"), arguments = { text = "hi" } })
  is(echo.structuredContent and echo.structuredContent.text, "hi", "plain calls go on")
  x, e = w.ann:op("tool.call", { assistant = w.bot.id, tool = w.tool("noget", "ask_session") })
  err_is(x, e, "timeout", "again a timeout")
  w.ann:must("server.update", { id = get.id, timeout_ms = 20000 })
  done_testing()
end
