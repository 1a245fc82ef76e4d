-- tests/cli/mcp_protocol.lua: the MCP client against the real fixture servers
-- (run by mcp_protocol.t with NAME=URL arguments; prints TAP).
local n, failed = 0, 0
local function ok(v, name)
  n = n + 1
  print((v and "ok " or "not ok ") .. n .. " - " .. name)
  if not v then failed = failed + 1 end
  return v
end
local function show(v) local s, r = pcall(json.encode, v); return s and r or tostring(v) end
local function is(got, want, name)
  if not ok(got == want, name) then print("#   got:  " .. show(got)); print("#   want: " .. show(want)) end
end

local URL = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.+)$")
  if k then URL[k] = v end
end
-- every fixture is needed: a missing one is a failure, never a smaller run
for _, k in ipairs({ "v2", "v2json", "v1", "v1json", "v1old", "v1sse", "v2paged", "v1paged", "v1ttl",
                     "v1resume", "misbehaving" }) do
  if not URL[k] then print("Bail out! no URL for the fixture " .. k); return end
end
-- the plan, stated before anything runs (a block that stops early shows as missing tests):
-- 19 checks per server shape, plus structured output from 2025-06-18 on and progress on streams
local PLAN = 0
for _, s in ipairs({ { "2026-07-28", true }, { "2026-07-28", false }, { "2025-11-25", true },
                     { "2025-11-25", false }, { "2025-03-26", true }, { "2024-11-05", true } }) do
  PLAN = PLAN + 19 + (s[1] >= "2025-06-18" and 1 or 0) + (s[2] and 1 or 0)
end
PLAN = PLAN + 6 + 2 + 6 + 1 + 26 + 4 -- pagination, session expiry, stale and timeout, resume, misbehaviours, redirects
print("1.." .. PLAN)

-- run(url, steps, opts) -> result rows
local function run(url, steps, opts)
  local args = { url = url, steps = steps }
  for k, v in pairs(opts or {}) do args[k] = v end
  local r, e = mcplink.op("mcp.session", args)
  if not r then error("mcp.session failed: " .. show(e)) end
  return r.results
end
local function one(url, step, opts) return run(url, { step }, opts)[1] end
local function names(list, field)
  local out = {}
  for _, t in ipairs(list or {}) do out[t[field or "name"]] = true end
  return out
end

mcplink.must("settings.set", { allow_private_urls = true })

-- ---- the same scenarios against every SDK server shape ----------------------
local SERVERS = {
  { "v2", "modern", "2026-07-28", true }, { "v2json", "modern", "2026-07-28", false },
  { "v1", "legacy", "2025-11-25", true }, { "v1json", "legacy", "2025-11-25", false },
  { "v1old", "legacy", "2025-03-26", true }, { "v1sse", "sse", "2024-11-05", true },
}
for _, s in ipairs(SERVERS) do
  local name, era, version, streams = s[1], s[2], s[3], s[4]
  local url = URL[name]
  do
    local rows = run(url, {
      { step = "discover" },
      { step = "list", kind = "tools" },
      { step = "list", kind = "resources" },
      { step = "list", kind = "resource_templates" },
      { step = "list", kind = "prompts" },
      { step = "call_tool", name = "echo", arguments = { text = "hi", n = 3 } },
      { step = "call_tool", name = "fail", arguments = { message = "nope" } },
      { step = "call_tool", name = "throw", arguments = { message = "boom", code = -32099 } },
      { step = "read_resource", uri = "fixture://static/hello" },
      { step = "get_prompt", name = "greet", arguments = { name = "Ada" } },
      { step = "call_tool", name = "progress", arguments = { steps = 3, interval_ms = 10 }, progress = true },
      { step = "call_tool", name = "large", arguments = { bytes = 300000 } },
      { step = "ping" },
      { step = "call_tool", name = "nosuch", arguments = {} },
    })
    local d = rows[1]
    is(d.result and d.result.era, era, name .. ": era detected")
    is(d.result and d.result.protocol_version, version, name .. ": protocol version")
    is(d.result and d.result.server_info and d.result.server_info.name,
      era == "modern" and "mcplink-fixture-v2" or "mcplink-fixture-v1", name .. ": server identity")
    ok(d.result and d.result.capabilities and d.result.capabilities.tools, name .. ": capabilities")
    local tools = names(rows[2].result)
    ok(tools.echo and tools.fail and tools.throw and tools.large and tools.progress, name .. ": tools listed")
    ok(names(rows[3].result, "uri")["fixture://static/hello"], name .. ": resources listed")
    ok(names(rows[4].result, "uriTemplate")["fixture://items/{id}"], name .. ": resource templates listed")
    ok(names(rows[5].result).greet, name .. ": prompts listed")
    local echo = rows[6].result
    if version >= "2025-06-18" then -- structured tool output arrived with 2025-06-18
      is(echo and echo.structuredContent and echo.structuredContent.text, "hi", name .. ": echo structuredContent")
    end
    ok(echo and echo.content and echo.content[1].text:find('"text":"hi"', 1, true), name .. ": echo text content")
    is(echo and echo.content and echo.content[1].type, "text", name .. ": echo content block")
    is(rows[7].result and rows[7].result.isError, true, name .. ": tool error keeps isError")
    is(rows[8].error and rows[8].error.code, "upstream_error", name .. ": a throwing tool is upstream_error")
    is(rows[8].error and rows[8].error.rpc_error and rows[8].error.rpc_error.code, -32099, name .. ": rpc_error code kept")
    is(rows[9].result and rows[9].result.contents and rows[9].result.contents[1].text, "Hello from the fixture.", name .. ": resource read")
    ok(rows[10].result and rows[10].result.messages and rows[10].result.messages[1].content.text:find("Ada", 1, true), name .. ": prompt get")
    is(rows[11].result and rows[11].result.content[1].text, "done after 3 steps", name .. ": progress tool answered")
    if streams then
      is(rows[11].progress and #rows[11].progress, 3, name .. ": progress notifications delivered")
    end
    is(rows[12].result and #rows[12].result.content[1].text, 300000, name .. ": large result intact")
    ok(rows[13].result and not rows[13].error, name .. ": ping")
    ok(rows[14].error and rows[14].error.code == "upstream_error", name .. ": unknown tool is upstream_error")
  end
end

-- ---- pagination ------------------------------------------------------------
for _, name in ipairs({ "v2paged", "v1paged" }) do
  do
    local r = one(URL[name], { step = "list", kind = "tools" })
    is(r.result and #r.result, 135, name .. ": 120 generated + 15 base tools over pages")
    ok(r.meta and r.meta.pages >= 5, name .. ": several pages fetched (" .. tostring(r.meta and r.meta.pages) .. ")")
    local seen, dup = {}, false
    for _, t in ipairs(r.result or {}) do if seen[t.name] then dup = true end; seen[t.name] = true end
    ok(not dup, name .. ": no tool twice")
  end
end

-- ---- session expiry, list_changed, resumable streams -----------------------
do
  local a = one(URL.v1ttl, { step = "call_tool", name = "echo", arguments = { text = "one" } })
  ok(a.result, "v1ttl: first call on a new session")
  one(URL.v2, { step = "call_tool", name = "slow", arguments = { ms = 1600 } }) -- let the session expire
  local b = one(URL.v1ttl, { step = "call_tool", name = "echo", arguments = { text = "two" } })
  is(b.result and b.result.structuredContent.text, "two", "v1ttl: expired session (404) re-initialized once and retried")
end
do
  local rows = run(URL.v1, { { step = "discover" }, { step = "stale" },
    { step = "call_tool", name = "add_tool", arguments = { name = "added_one" } }, { step = "stale" },
    { step = "discover" }, { step = "stale" }, { step = "list", kind = "tools" } })
  is(rows[2].result.stale, false, "v1: not stale after discover")
  is(rows[4].result.stale, true, "v1: tools/list_changed during a call marks stale")
  is(rows[6].result.stale, false, "v1: discover clears stale")
  ok(names(rows[7].result).added_one, "v1: the added tool is listed")
  -- the tool would take 10 s: ending well before that shows the 500 ms timeout cut it
  local t = mcplink.now_ms()
  local r = one(URL.v1, { step = "call_tool", name = "slow", arguments = { ms = 10000 }, timeout_ms = 500 })
  is(r.error and r.error.code, "timeout", "v1: a slow call times out")
  local ms = mcplink.now_ms() - t
  ok(ms < 6000, "v1: cut by its timeout, not by the tool's end (" .. ms .. " ms)")
end
do
  local r = one(URL.v1resume, { step = "call_tool", name = "drop_stream", arguments = { ms = 300 } })
  is(r.result and r.result.content[1].text, "answered after the stream was dropped",
    "v1resume: answer after the stream was resumed with Last-Event-ID")
end

-- ---- the misbehaving server --------------------------------------------------
local M = URL.misbehaving
do
  local base = M:gsub("/ok$", "")
  local function bad(mode, q, opts)
    local t = mcplink.now_ms()
    local o = { era = "legacy", timeout_ms = 3000 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local r = one(base .. "/" .. mode .. "?only=tools/call" .. (q or ""), { step = "call_tool", name = "echo", arguments = { x = 1 } }, o)
    return r, mcplink.now_ms() - t
  end
  local r = bad("invalid-json")
  is(r.error and r.error.reason, "invalid_json", "invalid JSON is a clear upstream_error")
  r = bad("wrong-id")
  is(r.error and r.error.reason, "wrong_id", "a wrong id is refused")
  r = bad("missing-id")
  is(r.error and r.error.reason, "missing_id", "a missing id is refused")
  -- the stream never ends and the trickle takes over 10 s: ending well before shows the
  -- 1.5 s timeout cut them
  local ms
  r, ms = bad("endless-sse", nil, { timeout_ms = 1500 })
  is(r.error and r.error.code, "timeout", "an endless SSE stream times out")
  ok(ms < 6000, "endless SSE: cut by the timeout (" .. ms .. " ms)")
  r, ms = bad("trickle", nil, { timeout_ms = 1500 })
  is(r.error and r.error.code, "timeout", "a trickling body times out")
  ok(ms < 6000, "trickle: cut by the timeout (" .. ms .. " ms)")
  -- one call, one deadline: initialize (about 1.9 s) and the answer (about 1.1 s) each fit in
  -- 2.5 s, together they do not; the call ends at its timeout, not after both
  local t0 = mcplink.now_ms()
  r = one(base .. "/trickle?delay_ms=12", { step = "call_tool", name = "echo", arguments = { x = 1 } },
    { era = "legacy", timeout_ms = 2500 })
  ms = mcplink.now_ms() - t0
  is(r.error and r.error.code, "timeout", "a session set up slowly and a slow answer share the call's timeout")
  ok(ms < 2500 + 2500, "slow initialize + slow answer: within the call's timeout (" .. ms .. " ms)")
  r = bad("huge", "&mb=8", { max_bytes = 1024 * 1024 })
  is(r.error and r.error.code, "too_large", "a huge body is too_large")
  r = bad("http-500")
  is(r.error and r.error.http_status, 500, "HTTP 500 is upstream_error with http_status")
  r = one(base .. "/redirect-loop", { step = "discover" }, { timeout_ms = 3000 })
  is(r.error and r.error.reason, "too_many_redirects", "a redirect loop stops")
  -- a redirect keeps the credentials within the origin only: every credential header the
  -- client was given (here a bearer token and an API key header) is dropped for another origin
  local function enc(u) return (u:gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end)) end
  local H = { Authorization = "Bearer s3cret", ["X-Api-Key"] = "k3y" }
  local other = base:gsub("127%.0%.0%.1", "localhost")
  local function who(target)
    local w = one(base .. "/redirect-to?to=" .. enc(target .. "/whoami?only=tools/call"),
      { step = "call_tool", name = "echo", arguments = {} }, { era = "legacy", headers = H, timeout_ms = 5000 })
    local text = w.result and w.result.content and w.result.content[1] and w.result.content[1].text
    return text and json.decode(text) or { error = w.error }
  end
  local same = who(base)
  is(same.authorization, "Bearer s3cret", "a same-origin redirect keeps the bearer token")
  is(same.apikey, "k3y", "and the API key header")
  local cross = who(other)
  is(cross.authorization, json.null, "a redirect to another origin drops the bearer token")
  is(cross.apikey, json.null, "and the API key header")
  r = bad("close-mid")
  is(r.error and r.error.code, "upstream_error", "a connection closed mid-response is upstream_error")
  r = bad("error-response")
  is(r.error and r.error.rpc_error and r.error.rpc_error.code, -32603, "a JSON-RPC error keeps its code")
  r = one(base .. "/cursor-loop?only=tools/list", { step = "list", kind = "tools" }, { era = "legacy", timeout_ms = 3000 })
  is(r.error and r.error.reason, "repeated_cursor", "a list whose server repeats a cursor stops with an error")
  -- pages of 1 MiB that never end: the whole list is bounded (16 MiB), not only each page
  r = one(base .. "/fat-pages?only=tools/list", { step = "list", kind = "tools" }, { era = "legacy", timeout_ms = 20000 })
  is(r.error and r.error.code, "too_large", "a list whose pages add up past 16 MiB is too_large")
  is(r.error and r.error.reason, "bytes", "naming the list's size as the reason")
  for _, crlf in ipairs({ "0", "1" }) do
    r = one(base .. "/sse-features?only=tools/call&crlf=" .. crlf,
      { step = "call_tool", name = "echo", arguments = { x = 1 }, progress = true }, { era = "legacy", timeout_ms = 3000 })
    ok(r.result and r.result.content and r.result.content[1].text == '{"x":1}', "SSE features (crlf=" .. crlf .. "): multi-line data, comments, interleaved messages")
    is(r.progress and #r.progress, 1, "SSE features (crlf=" .. crlf .. "): interleaved progress delivered")
  end
  r = one(base .. "/unauthorized", { step = "discover" }, { timeout_ms = 3000 })
  is(r.error and r.error.code, "unauthorized", "401 is unauthorized")
  is(r.error and r.error.http_status, 401, "401: http_status")
  ok(r.error and type(r.error.www_authenticate) == "string" and r.error.www_authenticate:find("resource_metadata", 1, true),
    "401: WWW-Authenticate kept")
  r = one(base .. "/unauthorized-bare", { step = "discover" }, { timeout_ms = 3000 })
  is(r.error and r.error.code, "unauthorized", "a bare 401 is unauthorized")
  r = one(base .. "/legacy-400", { step = "discover" }, { timeout_ms = 3000 })
  is(r.result and r.result.era, "legacy", "a plain 400 to the modern probe falls back to initialize")
end

if n ~= PLAN then print("# planned " .. PLAN .. " tests but ran " .. n) end
return failed == 0 and 0 or 1
