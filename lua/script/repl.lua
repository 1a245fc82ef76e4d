-- script.repl: the REPL's Lua side: evaluation in the operator-script env,
-- op shorthand tables, pretty printing, completion candidates, dot-commands.
local json = require "json"
local core = require "core"

local M = {}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until",
  "while" }

local COMMANDS = {
  { ".help", "this text" },
  { ".ops", "[PREFIX] list ops with their summaries" },
  { ".as", "TENANT USER  act as this tenant user" },
  { ".system", "act as the system administrator" },
  { ".reload", "reload operator policies (also on SIGHUP)" },
  { ".history", "[N] show the last N history entries" },
  { ".quit", "leave (also .exit, Ctrl-D)" },
  { ".exit", "leave" },
}

-- ---- rendering ------------------------------------------------------------

local families = setmetatable({}, { __mode = "k" }) -- proxy table -> family name

local function is_ident(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

local function key_text(k)
  if is_ident(k) then return k end
  if type(k) == "string" then return "[" .. string.format("%q", k) .. "]" end
  return "[" .. tostring(k) .. "]"
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- A readable Lua rendering for values JSON cannot carry (functions, cycles,
-- mixed keys). Bounded in depth and width so a huge table stays printable.
local function lua_render(v, indent, seen, depth)
  local tv = type(v)
  if v == json.null then return "null" end
  if tv == "string" then return string.format("%q", v) end
  if tv ~= "table" then return tostring(v) end
  if families[v] then return "<ops " .. families[v] .. ".*>" end
  if seen[v] then return "<cycle>" end
  if depth > 6 then return "{...}" end
  local keys = sorted_keys(v)
  if #keys == 0 then return "{}" end
  seen[v] = true
  local pad = indent .. "  "
  local out = { "{" }
  local n = #v
  for i, k in ipairs(keys) do
    if i > 200 then out[#out + 1] = pad .. "... (" .. (#keys - 200) .. " more)"; break end
    local lead = (math.type(k) == "integer" and k >= 1 and k <= n) and "" or (key_text(k) .. " = ")
    out[#out + 1] = pad .. lead .. lua_render(v[k], pad, seen, depth + 1) .. ","
  end
  seen[v] = nil
  out[#out + 1] = indent .. "}"
  return table.concat(out, "\n")
end

-- render(v, compact) -> text: tables as indented JSON when they are JSON,
-- everything else as Lua would show it. Strings print raw, like print().
function M.render(v, compact)
  if type(v) == "table" and not families[v] then
    local ok, s = pcall(json.encode, v, { pretty = not compact, sort = true })
    if ok then return s end
    return lua_render(v, "", {}, 0)
  end
  if type(v) == "string" then return v end
  return lua_render(v, "", {}, 0)
end

local function errtext(e)
  if type(e) == "table" then
    if e.code then
      return tostring(e.code) .. ": " .. tostring(e.message) .. (e.field and (" (" .. tostring(e.field) .. ")") or "")
    end
    if e.message then return tostring(e.message) end
    return M.render(e, true)
  end
  return tostring(e)
end

-- ---- the session ------------------------------------------------------------

local Session = {}
Session.__index = Session

-- new(prelude, actor, host) -> session. host: {compact=bool, history=fn,
-- tty=bool, read_line=fn, write=fn}: at a terminal, a server's questions
-- during an op are put to the person there (script.ask; mcplink.on_input
-- replaces that for the session)
function M.new(prelude, actor, host)
  local s = setmetatable({ prelude = prelude, host = host or {}, pending = nil }, Session)
  s.hooks = {}
  if s.host.tty and s.host.read_line then
    local h = require("script.ask").hooks(s.host)
    s.hooks.on_input, s.hooks.on_event = h.on_input, h.on_event
  end
  s.env = prelude.env(actor or "system", nil, s.hooks)
  s.actor = s.env.mcplink.actor
  s.client = prelude.client(s.actor, s.hooks)
  s.admin = prelude.client("system")
  s:load_ops()
  return s
end

function Session:prompt(continuation)
  if continuation then return "   ...> " end
  local a = self.actor
  return "mcplink(" .. (a.system and "system" or (a.tenant .. "/" .. a.user)) .. ")> "
end

-- Op families become tables in the env: engine.info() calls op engine.info.
-- Unknown actions still reach the engine, which answers not_found.
function Session:load_ops()
  local list = self.admin:op("op.list", {})
  self.ops = (list and list.ops) or {}
  self.opnames = {}
  local fams = {}
  for _, op in ipairs(self.ops) do
    self.opnames[op.name] = op
    local fam, action = op.name:match("^([%w_]+)%.([%w_]+)$")
    if fam then fams[fam] = fams[fam] or {}; fams[fam][action] = true end
  end
  self.families = {}
  for fam, actions in pairs(fams) do
    local cur = rawget(self.env, fam)
    if cur == nil or families[cur] then
      local session = self
      local function caller(action)
        local name = fam .. "." .. action
        return function(a, b)
          if a ~= nil and families[a] then a = b end -- server:list{} works too
          local r, e = session.client:op(name, a)
          if r == nil then error(e, 2) end
          return r
        end
      end
      local proxy = {}
      for action in pairs(actions) do proxy[action] = caller(action) end
      setmetatable(proxy, { __index = function(_, action)
        if type(action) == "string" then return caller(action) end
      end })
      families[proxy] = fam
      self.env[fam] = proxy
      self.families[fam] = actions
    end
  end
end

function Session:set_actor(actor)
  self.client = self.prelude.client(actor, self.hooks)
  self.actor = self.client.actor
  local fresh = self.prelude.env(self.actor, nil, self.hooks)
  self.env.mcplink = fresh.mcplink
end

-- compile(src) -> fn | nil, err, incomplete
local function at_eof(err) return err:sub(-5) == "<eof>" end

local function compile(src, env)
  local fn, rerr = load("return " .. src, "=repl", "t", env)
  if fn then return fn end
  local err
  fn, err = load(src, "=repl", "t", env)
  if fn then return fn end
  -- the parser stopped at the end of the text: wait for more lines
  if at_eof(err) or at_eof(rerr) then return nil, err, true end
  -- a short string continued with a backslash at the end of the line
  if err:find("unfinished string", 1, true) and src:find("\\$") then return nil, err, true end
  return nil, err, false
end

local function pack(...) return { n = select("#", ...), ... } end

function Session:run(fn)
  local r = pack(xpcall(fn, function(e)
    if core.interrupted() then return { interrupted = true } end
    return e
  end))
  if not r[1] then
    local e = r[2]
    if core.interrupted() or (type(e) == "table" and e.interrupted) then
      return "error", "error: interrupted"
    end
    return "error", "error: " .. errtext(e)
  end
  if r.n < 2 then return "ok", nil end
  local out = {}
  for i = 2, r.n do out[#out + 1] = M.render(r[i], self.host.compact) end
  self.env._ = r[2]
  return "ok", table.concat(out, "\n")
end

-- reload() -> kind, text: asks the engine to reload operator policies.
function Session:reload()
  self:load_ops()
  local r, e = self.admin:op("policy.reload", {})
  if r == nil then return "error", "error: policy reload failed: " .. errtext(e) end
  local head = "policies reloaded"
  local failed = type(r) == "table" and tonumber(r.failed) or 0
  if failed > 0 then
    head = head .. "; " .. failed .. " file(s) did not load (failed or kept_previous, see below)"
  end
  return "ok", head .. (next(r) and ("\n" .. M.render(r, self.host.compact)) or "")
end

local function ops_text(self, prefix)
  local lines, width = {}, 0
  for _, op in ipairs(self.ops) do
    if not prefix or op.name:sub(1, #prefix) == prefix then width = math.max(width, #op.name) end
  end
  for _, op in ipairs(self.ops) do
    if not prefix or op.name:sub(1, #prefix) == prefix then
      lines[#lines + 1] = string.format("  %-" .. width .. "s  %-6s  %s", op.name, op.role, op.summary)
    end
  end
  if #lines == 0 then return "error", "error: no op matches '" .. tostring(prefix) .. "'" end
  return "ok", table.concat(lines, "\n")
end

local function help_text()
  local lines = {
    "Type Lua; expressions print their value. Every op family is a table:",
    "  engine.info()             calls op engine.info",
    "  server.list{}             calls op server.list with arguments {}",
    "  mcplink.op(name, args)    returns result | nil, err (mcplink.must raises)",
    "An unfinished chunk continues on the next line. Tab completes op names,",
    "globals and dot-commands. Ctrl-C cancels the line or the running op,",
    "Ctrl-D leaves. Lines starting with a space are not saved in the history.",
    "Commands:",
  }
  for _, c in ipairs(COMMANDS) do lines[#lines + 1] = string.format("  %-9s %s", c[1], c[2]) end
  return table.concat(lines, "\n")
end

function Session:command(line)
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  local cmd = words[1]
  if cmd == ".quit" or cmd == ".exit" then return "quit" end
  if cmd == ".help" then return "ok", help_text() end
  if cmd == ".ops" then return ops_text(self, words[2]) end
  if cmd == ".system" then self:set_actor("system"); return "ok", nil end
  if cmd == ".as" then
    if #words ~= 3 then return "error", "error: usage: .as TENANT USER" end
    self:set_actor({ tenant = words[2], user = words[3] })
    return "ok", nil
  end
  if cmd == ".reload" then return self:reload() end
  if cmd == ".history" then
    local h = self.host.history and self.host.history() or {}
    local n = math.tointeger(tonumber(words[2] or "20")) or 20
    local out = {}
    for i = math.max(1, #h - n + 1), #h do
      out[#out + 1] = string.format("%5d  %s", i, (h[i]:gsub("\n", "\n       ")))
    end
    return "ok", #out > 0 and table.concat(out, "\n") or nil
  end
  return "error", "error: unknown command " .. cmd .. " (try .help)"
end

-- feed(line) -> kind, text, chunk. kind: "more" (the chunk continues),
-- "ok" (text = output or nil), "error" (text = message), "quit". chunk is
-- the complete input (for the history) once it is finished.
function Session:feed(line)
  if not self.pending and line:match("^%s*%.%a") then
    local kind, text = self:command(line:match("^%s*(.-)%s*$"))
    return kind, text, line
  end
  local src = self.pending and (self.pending .. "\n" .. line) or line
  if not self.pending and src:match("^%s*$") then return "ok", nil, nil end
  local fn, err, incomplete = compile(src, self.env)
  if incomplete then self.pending = src; return "more" end
  self.pending = nil
  if not fn then return "error", "error: " .. err, src end
  self.current = src
  local kind, text = self:run(fn)
  self.current = nil
  return kind, text, src
end

-- abandon() -> the chunk that was running or pending (after a cancel).
function Session:abandon()
  local src = self.current or self.pending
  self.current, self.pending = nil, nil
  return src
end

-- finish() -> kind, text: end of input with a chunk still open.
function Session:finish()
  if not self.pending then return "ok", nil end
  local src = self.pending
  self.pending = nil
  local _, err = load(src, "=repl", "t", self.env)
  return "error", "error: input ended inside an unfinished chunk: " .. tostring(err)
end

function Session:reset() self.pending = nil end

-- complete(word, line) -> sorted candidates that extend word.
function Session:complete(word, line)
  local seen, out = {}, {}
  local function add(c)
    if type(c) == "string" and c:sub(1, #word) == word and not seen[c] then
      seen[c] = true
      out[#out + 1] = c
    end
  end
  if word:sub(1, 1) == "." then
    if (line or word):match("^%s*%.") then for _, c in ipairs(COMMANDS) do add(c[1]) end end
  else
    for name in pairs(self.opnames) do add(name) end
    local base = word:match("^(.*)[.:][%w_]*$")
    if base then
      local t = self.env
      for part in base:gmatch("[^.:]+") do
        if type(t) ~= "table" then t = nil; break end
        t = rawget(t, part)
      end
      local sep = word:sub(#base + 1, #base + 1)
      if type(t) == "table" then
        local keys = families[t] and self.families[families[t]] or t
        for k in pairs(keys) do if is_ident(k) then add(base .. sep .. k) end end
      end
    else
      for k in pairs(self.env) do if is_ident(k) then add(k) end end
      for _, k in ipairs(KEYWORDS) do add(k) end
    end
  end
  table.sort(out)
  return out
end

return M
