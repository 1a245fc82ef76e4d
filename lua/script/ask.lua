-- script.ask: a server's questions put to the person at a terminal (the REPL, `mcplink call`):
-- form fields one by one, checked as they are typed; URLs shown, never opened; progress lines.
local json = require "json"
local input = require "mcp.input"

local M = {}

local YES = { [""] = true, y = true, yes = true }

local function describe_field(k, ps, required)
  local t = ps.type
  local what
  if t == "array" then
    local vals = {}
    for _, v in ipairs(ps.items.enum or {}) do vals[#vals + 1] = v end
    for _, o in ipairs(ps.items.anyOf or ps.items.oneOf or {}) do vals[#vals + 1] = o.const end
    what = "choose from " .. table.concat(vals, ", ") .. ", separated by commas"
  elseif ps.enum or ps.oneOf or ps.anyOf then
    local vals = {}
    for _, v in ipairs(ps.enum or {}) do vals[#vals + 1] = v end
    for _, o in ipairs(ps.oneOf or ps.anyOf or {}) do vals[#vals + 1] = o.const .. (o.title and (" (" .. o.title .. ")") or "") end
    what = "one of " .. table.concat(vals, ", ")
  elseif t == "boolean" then what = "yes or no"
  elseif t == "integer" or t == "number" then
    what = t == "integer" and "a whole number" or "a number"
    if ps.minimum and ps.maximum then what = what .. " from " .. ps.minimum .. " to " .. ps.maximum
    elseif ps.minimum then what = what .. " >= " .. ps.minimum
    elseif ps.maximum then what = what .. " <= " .. ps.maximum end
  else
    what = ps.format and ("a " .. ps.format) or "text"
  end
  local label = type(ps.title) == "string" and ps.title or k
  local def = ps.default
  local shown = def == nil and "" or (" [" .. (type(def) == "boolean" and (def and "yes" or "no") or
    (type(def) == "table" and table.concat(def, ",") or tostring(def))) .. "]")
  return label .. " (" .. what .. (required and ", required" or "") .. ")" .. shown .. ": "
end

-- parse(ps, line) -> a value | nil, why: what was typed, as the field's type
local function parse(ps, line)
  local t = ps.type
  if t == "boolean" then
    local l = line:lower()
    if l == "y" or l == "yes" or l == "true" then return true end
    if l == "n" or l == "no" or l == "false" then return false end
    return nil, "type yes or no"
  elseif t == "integer" or t == "number" then
    local n = tonumber(line)
    if not n then return nil, "type a number" end
    if t == "integer" then
      n = math.tointeger(n)
      if not n then return nil, "type a whole number" end
    end
    return n
  elseif t == "array" then
    local out = json.array()
    for item in line:gmatch("[^,]+") do out[#out + 1] = item:match("^%s*(.-)%s*$") end
    return out
  end
  return line
end

local function fields_in_order(schema)
  local req = {}
  for _, r in ipairs(schema.required or {}) do req[r] = true end
  local names = {}
  for k in pairs(schema.properties or {}) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    if req[a] ~= req[b] then return req[a] == true end
    return a < b
  end)
  return names, req
end

-- form(host, req) -> answer: every field asked, checked as typed (Enter keeps
-- the default or leaves the field out, "-" leaves it out); then send, decline
-- or cancel. End of input (Ctrl-D) cancels.
local function form(host, req)
  local schema = req.schema
  local names, req_set = fields_in_order(schema)
  local content = json.object()
  for _, k in ipairs(names) do
    local ps = schema.properties[k]
    while true do
      local line = host.read_line(describe_field(k, ps, req_set[k]))
      if line == nil then return { action = "cancel" } end
      line = line:match("^%s*(.-)%s*$")
      if line == "" or line == "-" then
        if req_set[k] and ps.default == nil then host.write("  " .. k .. " is required\n")
        else break end
      else
        local v, why = parse(ps, line)
        if v ~= nil then
          local ok, e = pcall(input.form_content, { type = "object", properties = { [k] = ps } }, { [k] = v }, "")
          if ok then content[k] = v; break end
          why = tostring(type(e) == "table" and e.message or e):gsub("^'[^']*' ", "")
        end
        host.write("  " .. why .. "\n")
      end
    end
  end
  while true do
    local a = host.read_line("Send this answer? [Y]es, [n]o (decline), [c]ancel: ")
    if a == nil then return { action = "cancel" } end
    a = a:lower():match("^%s*(.-)%s*$")
    if YES[a] then return { action = "accept", content = content } end
    if a == "n" or a == "no" then return { action = "decline" } end
    if a == "c" or a == "cancel" then return { action = "cancel" } end
  end
end

-- url(host, req) -> answer: the URL is shown with its host, for the person
-- to open themselves; the engine never opens or fetches it
local function url(host, req)
  host.write("  open this URL in your browser (mcplink does not open it):\n    " .. req.url .. "\n" ..
    "  its host: " .. tostring(req.url_host) .. "\n")
  while true do
    local a = host.read_line("Open it and continue? [Y]es, [n]o (decline), [c]ancel: ")
    if a == nil then return { action = "cancel" } end
    a = a:lower():match("^%s*(.-)%s*$")
    if YES[a] then return { action = "accept" } end
    if a == "n" or a == "no" then return { action = "decline" } end
    if a == "c" or a == "cancel" then return { action = "cancel" } end
  end
end

-- hooks(host) -> the op hooks of a terminal: host = {read_line(prompt) ->
-- line | nil, write(text)} (both on the terminal, not on the results'
-- stdout). Elicitation is asked; sampling and roots are not answered here.
function M.hooks(host)
  return {
    on_input = function(req)
      local who = req.server and (req.server.name or req.server.url) or "the server"
      local from = req.server and req.server.url and req.server.url:match("^%a[%w+.-]*://([^/?#]+)") or nil
      host.write("\n" .. "server '" .. tostring(who) .. "'" .. (from and (" (" .. from .. ")") or "") .. " asks: " ..
        tostring(req.message) .. "\n")
      if req.mode == "url" then return url(host, req) end
      return form(host, req)
    end,
    on_event = function(ev)
      if ev.type == "progress" then
        host.write("progress " .. tostring(ev.progress) .. (ev.total and ("/" .. tostring(ev.total)) or "") ..
          (ev.message and (": " .. ev.message) or "") .. "\n")
      elseif ev.type == "log" then
        host.write("server log (" .. tostring(ev.level) .. "): " .. (type(ev.data) == "string" and ev.data or json.encode(ev.data)) .. "\n")
      end
    end,
  }
end

return M
