-- tests/cli/workflows.lua: run by workflows.t in phases on one database;
-- between them the v2 fixture changes a tool's description and drops a tool
-- (phase 2), then changes echo again and again (phases 3 to 8: pinning).
local A = {}
for _, a in ipairs(arg) do local k, v = a:match("^([%w_]+)=(.*)$"); if k then A[k] = v end end
local phase = A.phase

local function find(list, name) for _, x in ipairs(list) do if x.name == name then return x end end end

-- a later phase's start: its users, the v2 fixture's record, the assistant, and a refresh of
-- the server (what the fixture changed since the phase before)
local function refreshed()
  local ann = mcplink.as { tenant = "acme", user = "ann" }
  local mo = mcplink.as { tenant = "acme", user = "mo" }
  local s = ann:must("server.get", { id = "Fixture v2" })
  local bot
  for _, a in ipairs(ann:must("assistant.list", {}).items) do if a.name == "Ops bot" then bot = a end end
  return ann, mo, s, bot, ann:must("server.refresh", { id = s.id })
end

if phase == "1" then
  local t = mcplink.setup { tenant = "acme", users = { ann = "admin", mo = "member" } }
  mcplink.must("settings.set", { allow_private_urls = true }) -- fixtures on 127.0.0.1
  local ann, mo = t.ann, t.mo
  ann:must("classification.set", { name = "Internal", level = 1 })
  ann:must("space.create", { name = "Ops", classification = "Internal" })

  -- Step 2: saving the URL discovers capabilities
  local s = ann:must("server.create", { name = "Fixture v2" })
  local r = ann:must("server.update", { id = s.id, url = A.v2, auth_type = "api_key", api_key = A.key,
                                         classification = "Internal" })
  ok(r.discovery and r.discovery.ok, "saving the URL discovered capabilities")
  is(r.capabilities_status, "ok", "status ok")
  is(r.discovery.era, "modern", "v2 server speaks the modern era")
  is(r.discovery.protocol_version, "2026-07-28", "protocol 2026-07-28")
  is(r.description_source, "server", "description filled from server metadata")
  ok(type(r.description) == "string" and #r.description > 0, "description present")
  local added = r.discovery.diff.tools.added
  ok(#added >= 6, "tools added on first discovery: " .. #added)
  local caps = mo:must("server.capabilities", { id = s.id })
  ok(find(caps.tools, "echo") and find(caps.tools, "whoami"), "tools stored")
  ok(find(caps.resources, "fixture://static/hello"), "resources stored")
  ok(find(caps.resource_templates, "fixture://items/{id}"), "resource templates stored")
  ok(find(caps.prompts, "greet"), "prompts stored")
  is(find(caps.tools, "echo").definition.name, "echo", "full definition kept")

  -- Validate
  is(ann:must("server.validate", { id = s.id }).status, "OK", "Validate: OK with the right key")
  local bad = ann:must("server.create", { name = "wrong key" })
  ann:must("server.update", { id = bad.id, url = A.v2, auth_type = "api_key", api_key = "wrong" })
  local v = ann:must("server.validate", { id = bad.id })
  is(v.status, "Unauthorized", "Validate: Unauthorized with a wrong key")
  is(v.reachable, true, "a 401 with a challenge is reachable")
  is(ann:must("server.get", { id = bad.id }).capabilities_status, "error", "discovery failed with the wrong key")
  local fixed = ann:must("server.update", { id = bad.id, api_key = A.key })
  ok(fixed.discovery and fixed.discovery.ok, "a corrected key discovers again without re-entering the URL")
  is(fixed.capabilities_status, "ok", "status ok after the key was fixed")
  ann:must("server.update", { id = bad.id, api_key = "wrong" })
  local nourl = ann:must("server.create", { name = "no url" })
  is(ann:must("server.validate", { id = nourl.id }).status, "Server URL not set", "Validate: Server URL not set")
  local dead = ann:must("server.create", { name = "dead" })
  local dr = ann:must("server.update", { id = dead.id, url = "https://127.0.0.1:1/mcp" })
  is(dr.discovery.ok, false, "discovery failure is reported, the URL is kept")
  is(dr.capabilities_status, "error", "status error after failed discovery")
  v = ann:must("server.validate", { id = dead.id })
  is(v.status, "Failed", "Validate: Failed when unreachable")
  is(v.reachable, false, "not reachable")
  local oa = ann:must("server.create", { name = "oauth one" })
  ann:must("server.update", { id = oa.id, url = A.v2, auth_type = "oauth" })
  is(mo:must("server.validate", { id = oa.id }).status, "User not authenticated", "Validate: User not authenticated")

  -- legacy era server
  local s1 = ann:must("server.create", { name = "Fixture v1" })
  r = ann:must("server.update", { id = s1.id, url = A.v1, auth_type = "api_key", api_key = A.key,
                                  classification = "Internal" })
  is(r.discovery.era, "legacy", "v1 server speaks the handshake era")
  is(ann:must("server.validate", { id = s1.id }).status, "OK", "Validate v1: OK")

  -- Steps 3 and 4
  ann:must("tool.enable", { server = s.id })
  ann:must("tool.enable", { server = s1.id })
  local bot = ann:must("assistant.create", { name = "Ops bot", space = "Ops" })
  ann:must("assistant.attach", { assistant = bot.id, server = s.id })
  ann:must("assistant.attach", { assistant = bot.id, server = s1.id })
  local tools = mo:must("assistant.tools", { assistant = bot.id }).tools
  local seen, echo2, echo1 = {}, nil, nil
  local all_ok = true
  for _, tl in ipairs(tools) do
    if seen[tl.name] or #tl.name > 64 or not tl.name:match("^[A-Za-z0-9_-]+$") then all_ok = false end
    seen[tl.name] = true
    if tl.tool == "echo" and tl.server.id == s.id then echo2 = tl.name end
    if tl.tool == "echo" and tl.server.id == s1.id then echo1 = tl.name end
  end
  ok(all_ok, "tool names unique, <= 64 chars, [A-Za-z0-9_-]")
  ok(echo1 and echo2 and echo1 ~= echo2, "the same tool on two servers gets two names")
  is(mo:must("assistant.tools", { assistant = bot.id }).tools[1].name, tools[1].name, "names are stable")

  -- tool calls with the key applied
  local res = mo:must("tool.call", { assistant = bot.id, tool = echo2, arguments = { text = "hi" } })
  ok(res.content and res.content[1] and res.content[1].text, "echo content")
  is(res.structuredContent and res.structuredContent.text, "hi", "structuredContent unchanged")
  local who
  for _, tl in ipairs(tools) do if tl.tool == "whoami" and tl.server.id == s.id then who = tl.name end end
  res = mo:must("tool.call", { assistant = bot.id, tool = who, arguments = {} })
  like(json.encode(res), A.keyhash, "the server saw the API key as a bearer token")
  -- the key's headers are kept between calls (lua/credentials.lua), under the change counters:
  -- a key changed after a call is what the very next call sends
  ann:must("server.update", { id = s.id, api_key = "wrong" })
  local rk, ek = mo:op("tool.call", { assistant = bot.id, tool = who, arguments = {} })
  err_is(rk, ek, "unauthorized", "a key changed after a call: the next call sends the new (wrong) one")
  ann:must("server.update", { id = s.id, api_key = A.key })
  res = mo:must("tool.call", { assistant = bot.id, tool = who, arguments = {} })
  like(json.encode(res), A.keyhash, "the right key again: the next call sends it")
  res = mo:must("tool.call", { assistant = bot.id, tool = echo1, arguments = { text = "legacy" } })
  is(res.structuredContent and res.structuredContent.text, "legacy", "tool call through a legacy session")
  local failname
  for _, tl in ipairs(tools) do if tl.tool == "fail" and tl.server.id == s.id then failname = tl.name end end
  res = mo:must("tool.call", { assistant = bot.id, tool = failname, arguments = {} })
  is(res.isError, true, "a tool error comes back as isError, not as an engine error")
  local thr
  for _, tl in ipairs(tools) do if tl.tool == "throw" and tl.server.id == s.id then thr = tl.name end end
  local r2, e2 = mo:op("tool.call", { assistant = bot.id, tool = thr, arguments = {} })
  err_is(r2, e2, "upstream_error", "a JSON-RPC error is upstream_error")
  r2, e2 = mo:op("tool.call", { assistant = bot.id, tool = "no_such_tool", arguments = {} })
  err_is(r2, e2, "not_found", "unknown tool name")
  local rd = mo:must("resource.read", { assistant = bot.id, server = s.id, uri = "fixture://static/hello" })
  ok(rd.contents and rd.contents[1] and rd.contents[1].text, "resource.read returns contents")
  local pg = mo:must("prompt.get", { assistant = bot.id, server = s.id, name = "greet", arguments = { name = "Ada" } })
  ok(pg.messages and #pg.messages > 0, "prompt.get returns messages")
  like(json.encode(pg), "Ada", "prompt arguments applied")

  -- a call past its timeout ends with timeout, and the server is told to
  -- cancel it (workflows.t reads the fixture's log of cancelled calls)
  local slow1
  for _, tl in ipairs(tools) do if tl.tool == "slow" and tl.server.id == s1.id then slow1 = tl.name end end
  r2, e2 = mo:op("tool.call", { assistant = bot.id, tool = slow1, arguments = { ms = 5000 }, timeout_ms = 300 })
  err_is(r2, e2, "timeout", "a tool call past its timeout ends with timeout")
  -- a server changed between calls is seen by the very next call (the rows calls share
  -- are keyed by the store's change counters): here the server's own timeout
  local slow2
  for _, tl in ipairs(tools) do if tl.tool == "slow" and tl.server.id == s.id then slow2 = tl.name end end
  mo:must("tool.call", { assistant = bot.id, tool = slow2, arguments = { ms = 10 } })
  ann:must("server.update", { id = s.id, timeout_ms = 300 })
  r2, e2 = mo:op("tool.call", { assistant = bot.id, tool = slow2, arguments = { ms = 3000 } })
  err_is(r2, e2, "timeout", "the server's new timeout applies from the next call on")
  ann:must("server.update", { id = s.id, timeout_ms = json.null })
  mo:must("tool.call", { assistant = bot.id, tool = slow2, arguments = { ms = 10 } })
  -- disabled tools are refused at call time
  ann:must("tool.disable", { server = s1.id })
  r2, e2 = mo:op("tool.call", { assistant = bot.id, tool = echo1, arguments = { text = "x" } })
  err_is(r2, e2, "forbidden", "a disabled server's tools cannot be called")
  ann:must("tool.enable", { server = s1.id })
  -- another tenant cannot route calls through this assistant
  local other = mcplink.setup { tenant = "other", users = { oz = "admin" } }
  r2, e2 = other.oz:op("tool.call", { assistant = bot.id, tool = echo2, arguments = { text = "x" } })
  err_is(r2, e2, "not_found", "another tenant's assistant is not found")
  -- list_changed during a call marks the capabilities stale
  local add
  for _, tl in ipairs(tools) do if tl.tool == "add_tool" and tl.server.id == s1.id then add = tl.name end end
  mo:must("tool.call", { assistant = bot.id, tool = add, arguments = { name = "fresh_tool" } })
  is(ann:must("server.get", { id = s1.id }).capabilities_status, "stale", "list_changed marks the server stale")
  local rf = ann:must("server.refresh", { id = s1.id })
  ok(find({ { name = rf.diff.tools.added[1] } }, "fresh_tool"), "refresh finds the added tool")
  is(ann:must("server.get", { id = s1.id }).capabilities_status, "ok", "refresh clears stale")
  done_testing()
elseif phase == "2" then
  local ann, mo, s, bot, r = refreshed()
  is_deeply(r.diff.tools.changed, { "echo" }, "refresh reports echo changed")
  is_deeply(r.diff.tools.pending, { "echo" }, "the change waits for approval")
  is_deeply(r.diff.tools.removed, { "slow" }, "refresh reports slow removed")
  local caps = ann:must("server.capabilities", { id = s.id })
  is_deeply(caps.pending, { "echo" }, "capabilities list the pending tool")
  local echo = find(caps.tools, "echo")
  is(echo.status, "pending", "echo pending")
  like(echo.definition.description, "changed description", "new definition shown")
  ok(echo.approved_definition and not tostring(echo.approved_definition.description):find("changed"), "approved definition shown beside it")
  ok(not find(caps.tools, "slow"), "removed tool is gone")
  local who = find(caps.tools, "whoami")
  is(who and who.status, "approved", "a tool whose _meta alone changed needs no approval")
  is(who and type(who.definition._meta) == "table" and who.definition._meta.rev, 2, "and its stored definition has the new _meta")
  local tools = mo:must("assistant.tools", { assistant = bot.id }).tools
  local name, seen
  for _, tl in ipairs(tools) do if tl.tool == "echo" and tl.server.id == s.id then name, seen = tl.name, tl end end
  is(seen and seen.pending_approval, true, "the assistant's tool list marks echo pending")
  ok(seen and seen.description and not tostring(seen.description):find("changed"),
    "and the model keeps seeing its approved definition")
  local r2, e2 = mo:op("tool.call", { assistant = bot.id, tool = name, arguments = { text = "x" } })
  err_is(r2, e2, "forbidden", "a changed tool is refused until approved")
  like(e2 and e2.message or "", "approval", "the error says why")
  r2, e2 = mo:op("tool.approve", { server = s.id, tool = "echo" })
  err_is(r2, e2, "forbidden", "members cannot approve")
  is(ann:must("tool.approve", { server = s.id, tool = "echo" }).status, "approved", "admin approves")
  seen = nil
  for _, tl in ipairs(mo:must("assistant.tools", { assistant = bot.id }).tools) do
    if tl.tool == "echo" and tl.server.id == s.id then seen = tl end
  end
  ok(seen and not seen.pending_approval and tostring(seen.description):find("changed description"),
    "once approved, the model sees the new definition")
  local res = mo:must("tool.call", { assistant = bot.id, tool = name, arguments = { text = "after" } })
  is(res.structuredContent and res.structuredContent.text, "after", "calls work after approval")
  r = ann:must("server.refresh", { id = s.id })
  is(#r.diff.tools.changed + #r.diff.tools.added + #r.diff.tools.removed, 0, "a second refresh finds nothing new")
  -- a server record pointed at a server of another era: the cached era and
  -- sessions are dropped and the era is probed again
  local s1 = ann:must("server.get", { id = "Fixture v1" })
  r = ann:must("server.update", { id = s1.id, url = A.v2 })
  is(r.discovery and r.discovery.era, "modern", "moving a record to a modern server re-detects the era")
  r = ann:must("server.update", { id = s1.id, url = A.v1 })
  is(r.discovery and r.discovery.era, "legacy", "and back to a handshake server")
  local tl = mo:must("assistant.tools", { assistant = bot.id }).tools
  local e1
  for _, t in ipairs(tl) do if t.tool == "echo" and t.server.id == s1.id then e1 = t.name end end
  local res2 = mo:must("tool.call", { assistant = bot.id, tool = e1, arguments = { text = "again" } })
  is(res2.structuredContent and res2.structuredContent.text, "again", "calls work after the move")
  done_testing()
else
  -- pinning across refreshes: echo (approved in phase 2) is changed by the fixture before each
  -- of these phases; what the admin, the model and a call see after each refresh
  local ann, mo, s, bot, r = refreshed()
  local caps = ann:must("server.capabilities", { id = s.id })
  local echo = find(caps.tools, "echo")
  local seen
  for _, tl in ipairs(mo:must("assistant.tools", { assistant = bot.id }).tools) do
    if tl.tool == "echo" and tl.server.id == s.id then seen = tl end
  end
  local function call()
    return mo:op("tool.call", { assistant = bot.id, tool = seen and seen.name or "?", arguments = { text = "p" .. phase } })
  end
  local approved_desc = "Echoes text back (now with a changed description)."
  if phase == "3" then
    is_deeply(r.diff.tools.changed, { "echo" }, "an approved tool changed again")
    is_deeply(r.diff.tools.pending, { "echo" }, "waits for approval again")
    is(echo.definition.description, "v3", "the admin sees the new definition")
    is(echo.approved_definition and echo.approved_definition.description, approved_desc, "beside the approved one")
    is(seen and seen.description, approved_desc, "the model sees the approved one")
    local r2, e2 = call()
    err_is(r2, e2, "forbidden", "and calls are refused")
  elseif phase == "4" then
    is_deeply(r.diff.tools.changed, { "echo" }, "a pending tool changed once more")
    is_deeply(r.diff.tools.pending, { "echo" }, "still waits for approval")
    is(echo.definition.description, "v4", "the admin sees the newest definition")
    is(echo.approved_definition and echo.approved_definition.description, approved_desc,
       "the approved definition is still the one an admin approved, not the unapproved one in between")
    is(seen and seen.description, approved_desc, "so is what the model sees")
    is_deeply(caps.pending, { "echo" }, "one pending tool")
  elseif phase == "5" then
    is_deeply(r.diff.tools.changed, { "echo" }, "the tool went back to its approved definition")
    is_deeply(r.diff.tools.pending, json.array(), "which needs no approval")
    is(echo.status, "approved", "approved again")
    is(echo.approved_definition, nil, "nothing shown beside it")
    is_deeply(caps.pending, json.array(), "nothing pending")
    ok(seen and not seen.pending_approval, "the model's list no longer marks it")
    local res = call()
    is(res and res.structuredContent and res.structuredContent.text, "p5", "calls work again without an approval")
  elseif phase == "6" then
    is_deeply(r.diff.tools.pending, { "echo" }, "changed: pending")
  elseif phase == "7" then
    is_deeply(r.diff.tools.removed, { "echo" }, "a pending tool the server dropped is removed")
    is(echo, nil, "and gone from the capabilities")
    is_deeply(caps.pending, json.array(), "with its approval state")
    is(seen, nil, "and from the model's list")
  elseif phase == "8" then
    is_deeply(r.diff.tools.added, { "echo" }, "a tool that comes back is a new tool")
    is(echo and echo.status, "approved", "not pending: an admin's earlier approval state is not held for it")
    is(echo and echo.definition.description, "v8")
    is(seen and seen.description, "v8", "the model sees it")
    local res = call()
    is(res and res.structuredContent and res.structuredContent.text, "p8", "and calls it")
    -- approving a tool that awaits nothing changes nothing; one the server lacks is not found
    is(ann:must("tool.approve", { server = s.id, tool = "echo" }).status, "approved", "approving an approved tool")
    local r2, e2 = ann:op("tool.approve", { server = s.id, tool = "no_such_tool" })
    err_is(r2, e2, "not_found", "a tool the server does not list cannot be approved")
    is(e2 and e2.field, "tool", "the error names the tool")
  end
  done_testing()
end
