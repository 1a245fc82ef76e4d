-- net: the engine's request layer. Every outbound request runs the URL policy
-- and the system settings on every hop, then the guarded C client (http).
local http = require "http"
local errors = require "errors"
local settings = require "settings"
local log = require "log"
local core = require "core"

local M = {}

local KiB, MiB = 1024, 1024 * 1024

-- Per-purpose limits; a request may lower them, never raise them.
M.LIMITS = {
  mcp             = { connect_timeout_ms = 10000, timeout_ms = 60000, max_bytes = 16 * MiB, max_header_bytes = 64 * KiB },
  oauth_metadata  = { connect_timeout_ms = 5000, timeout_ms = 15000, max_bytes = 1 * MiB, max_header_bytes = 32 * KiB },
  token           = { connect_timeout_ms = 5000, timeout_ms = 15000, max_bytes = 256 * KiB, max_header_bytes = 32 * KiB },
  revocation      = { connect_timeout_ms = 5000, timeout_ms = 15000, max_bytes = 64 * KiB, max_header_bytes = 32 * KiB },
  registration    = { connect_timeout_ms = 5000, timeout_ms = 15000, max_bytes = 256 * KiB, max_header_bytes = 32 * KiB },
  client_metadata = { connect_timeout_ms = 5000, timeout_ms = 10000, max_bytes = 64 * KiB, max_header_bytes = 32 * KiB },
}
M.MAX_HOPS = 5
M.MAX_CIDRS = 32

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

local function blocked(reason, message, field)
  errors.raise("url_blocked", message, field, { reason = reason })
end

-- URLs as parsed, by their text, and their parts, by URL (per Lua state;
-- a URL value never changes, and parsing depends on the text alone). A
-- server's URL is parsed once, not on every call; the decision on it
-- (settings, policy, the C check on the address) is still made every time.
local parsed, nparsed, PARSED_MAX = {}, 0, 256
local parts_of = setmetatable({}, { __mode = "k" })

-- parse(text|url) -> url userdata | raises url_blocked / invalid_argument
function M.parse(url, field)
  if type(url) == "userdata" then return url end
  if type(url) ~= "string" then errors.raise("invalid_argument", "URL must be a string", field) end
  local known = parsed[url]
  if known then return known end
  local u, reason, msg = http.url(url)
  if u then
    if nparsed >= PARSED_MAX then parsed, nparsed = {}, 0 end
    parsed[url], nparsed = u, nparsed + 1
    return u
  end
  if reason == "invalid_url" then errors.raise("invalid_argument", msg, field, { reason = reason }) end
  if reason == "unavailable" then errors.raise("unavailable", msg) end -- libcurl did not load
  blocked(reason, msg, field)
end

local policy_mod -- the policy runner, once loaded
local function policy_call(tenant, req, key)
  local policy = policy_mod
  if not policy then
    local ok, p = pcall(require, "policy")
    if not ok or type(p) ~= "table" or type(p.call) ~= "function" then
      return nil, "policy runner unavailable"
    end
    policy, policy_mod = p, p
  end
  local res, why = policy.call(tenant, "url", req, key)
  if res == nil and why == "no_function" and tenant ~= nil then
    res, why = policy.call(nil, "url", req, key) -- a tenant file without url(): the default decides
  end
  if res == nil and why == "no_function" then
    return { allow = true } -- no url() anywhere: the settings and the C check decide
  end
  return res, why
end

-- The guards of the results without allow_cidrs, one per combination of
-- the two flags, shared (read, never changed: the C binding copies them).
local PLAIN_GUARDS = {}
for _, private in ipairs({ true, false }) do
  PLAIN_GUARDS[private] = {}
  for _, plain in ipairs({ true, false }) do
    PLAIN_GUARDS[private][plain] = { allow_private = private, allow_http = plain, allow_cidrs = {} }
  end
end

-- Turns a policy result into a decision; anything malformed is a deny.
local function interpret(res, why, set)
  if res == nil then return nil, "policy: " .. tostring(why or "error") end
  if type(res) ~= "table" then return nil, "policy: url() returned " .. type(res) .. ", not a table" end
  if res.allow ~= true then
    local r = res.reason
    return nil, "policy: " .. ((type(r) == "string" and r ~= "") and r or "denied")
  end
  -- The policy narrows allow_private_urls (allow_private=false) but
  -- cannot turn it on; per-range widening goes through allow_cidrs.
  local private = set.allow_private_urls == true and res.allow_private ~= false
  local plain = set.allow_http == true or res.allow_http == true
  if res.allow_cidrs == nil then return PLAIN_GUARDS[private][plain] end
  if type(res.allow_cidrs) ~= "table" or #res.allow_cidrs > M.MAX_CIDRS then
    return nil, "policy: allow_cidrs must be a list of at most " .. M.MAX_CIDRS .. " CIDRs"
  end
  local cidrs = {}
  for i, c in ipairs(res.allow_cidrs) do
    if not http.cidr_valid(c) then
      return nil, "policy: allow_cidrs[" .. i .. "] is not a valid address or CIDR"
    end
    cidrs[i] = c
  end
  return { allow_private = private, allow_http = plain, allow_cidrs = cidrs }
end

-- The url() policy's input for a URL, tenant, purpose and the two settings
-- it shows, made once per Lua state (by URL, weakly) and handed to the
-- policy with its key: the sandbox keeps its frozen copy by that key
-- instead of walking the input on every call. The policy still runs on
-- every decision. Shared: read, never changed.
local reqs_of = setmetatable({}, { __mode = "k" })
local REQS_MAX = 64

local function policy_input(u, p, tenant, purpose, set)
  local private, plain = set.allow_private_urls == true, set.allow_http == true
  local k = (tenant or "") .. "\0" .. purpose .. (private and "\0p" or "\0-") .. (plain and "h" or "-")
  local by = reqs_of[u]
  if not by or by.n >= REQS_MAX then by = { n = 0 }; reqs_of[u] = by end
  local r = by[k]
  if not r then
    r = { {
      url = p.url, scheme = p.scheme, host = p.host, port = p.port, path = p.path,
      tenant = tenant, purpose = purpose,
      settings = { allow_private_urls = private, allow_http = plain },
    }, k .. "\0" .. p.url }
    by[k], by.n = r, by.n + 1
  end
  return r[1], r[2]
end

-- decide(ctx, url, purpose) -> decision {allow, reason, message, url, guard, req}
-- Runs settings and policy for one URL (one hop); never raises for a deny.
function M.decide(ctx, url, purpose)
  purpose = purpose or "mcp"
  if not M.LIMITS[purpose] then errors.raise("invalid_argument", "unknown purpose '" .. tostring(purpose) .. "'", "purpose") end
  local u = M.parse(url)
  local p = parts_of[u]
  if not p then p = u:parts(); parts_of[u] = p end
  local set = settings.current()
  local tenant = ctx and ctx.actor and ctx.actor.tenant or nil
  local req, key = policy_input(u, p, tenant, purpose, set)
  local res, why = policy_call(tenant, req, key)
  local guard, reason = interpret(res, why, set)
  local d = { url = u, req = req, guard = guard }
  if not guard then
    if res == nil then log.debug("net: url policy failed for tenant", tostring(tenant), "-", tostring(why)) end
    d.allow, d.reason, d.message = false, reason, p.url .. ": blocked by " .. reason
    return d
  end
  if p.scheme ~= "https" and not guard.allow_http then
    d.allow, d.reason = false, "scheme"
    d.message = p.url .. ": only https URLs are allowed (plain http is not enabled by the system administrator)"
    return d
  end
  d.allow = true
  return d
end

local function decide_or_raise(ctx, url, purpose, field)
  local d = M.decide(ctx, url, purpose)
  if not d.allow then blocked(d.reason, d.message, field) end
  return d
end

-- check_static(ctx, url, purpose, field) -> true | raises url_blocked:
-- policy, scheme and literal addresses, without any lookup (saving URLs).
function M.check_static(ctx, url, purpose, field)
  local okp, u = pcall(M.parse, url, field)
  if not okp then
    -- say which setting is wrong: "'oauth.token_url': URL must not contain ..."
    if errors.is(u) and field then u.message = "'" .. field .. "': " .. tostring(u.message) end
    error(u, 0)
  end
  local d = decide_or_raise(ctx, u, purpose, field)
  if d.url:parts().host_is_ip then
    local j = http.judge(d.url, d.guard, 0)
    if not j.allowed then blocked(j.reason, d.req.url .. ": " .. j.message, field) end
  end
  return true
end

-- check(ctx, url, purpose, resolve) -> {allowed, code, reason, message, addresses}
-- (the url.check op): resolves and judges every answer, never connects.
function M.check(ctx, url, purpose, resolve)
  local okp, u = pcall(M.parse, url, "url")
  if not okp then
    if not errors.is(u) then error(u, 0) end
    return { allowed = false, code = u.code, reason = u.reason or u.code, message = u.message, addresses = {} }
  end
  local d = M.decide(ctx, u, purpose)
  if not d.allow then
    return { allowed = false, code = "url_blocked", reason = d.reason, message = d.message, addresses = {} }
  end
  if resolve == false and not u:parts().host_is_ip then
    return { allowed = true, addresses = {}, resolved = false }
  end
  local j = http.judge(u, d.guard, M.LIMITS[purpose or "mcp"].connect_timeout_ms)
  j.resolved = true
  return j
end

-- ---- requests -------------------------------------------------------------

local function limits_for(purpose, req)
  local base = M.LIMITS[purpose]
  local function pick(k, v)
    if v == nil then return base[k] end
    if math.type(v) ~= "integer" or v <= 0 then errors.raise("invalid_argument", k .. " must be a positive integer", k) end
    return math.min(v, base[k])
  end
  return {
    connect_timeout_ms = base.connect_timeout_ms,
    timeout_ms = pick("timeout_ms", req.timeout_ms),
    max_bytes = pick("max_bytes", req.max_bytes),
    max_header_bytes = pick("max_header_bytes", req.max_header_bytes),
  }
end

-- One request's state across its hops.
local function start(ctx, req)
  if type(req) ~= "table" then errors.raise("invalid_argument", "request must be a table") end
  local purpose = req.purpose or "mcp"
  if not M.LIMITS[purpose] then errors.raise("invalid_argument", "unknown purpose '" .. tostring(purpose) .. "'", "purpose") end
  local follow = req.follow_redirects
  if follow == nil then follow = purpose ~= "token" end
  local sensitive = { authorization = true, cookie = true, ["proxy-authorization"] = true }
  for _, h in ipairs(req.sensitive_headers or {}) do sensitive[tostring(h):lower()] = true end
  local headers = {}
  for k, v in pairs(req.headers or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then errors.raise("invalid_argument", "headers must map names to strings", "headers") end
    headers[k] = v
  end
  local limits = limits_for(purpose, req)
  return {
    ctx = ctx, purpose = purpose, follow = follow, sensitive = sensitive, headers = headers,
    method = req.method or (req.body and "POST" or "GET"), body = req.body,
    url = M.parse(req.url, "url"), limits = limits, hops = 0, raise_status = req.raise_status,
    deadline = core.mono_ms() + limits.timeout_ms,
  }
end

-- The next hop's spec for http.request: runs the policy (raises on deny).
local function hop_spec(st)
  local d = decide_or_raise(st.ctx, st.url, st.purpose)
  local left = math.floor(st.deadline - core.mono_ms())
  if left <= 0 then errors.raise("timeout", "request timed out", nil, { reason = "timeout" }) end
  local l = {}
  for k, v in pairs(st.limits) do l[k] = v end
  l.timeout_ms = left
  return { url = st.url, method = st.method, headers = st.headers, body = st.body, guard = d.guard, limits = l }
end

-- Takes one hop's outcome: returns the final response, or nil to go on.
local function hop_done(st, resp, err)
  if not resp then
    errors.raise(err.code, st.url:text() .. ": " .. err.message, nil, { reason = err.reason })
  end
  local loc = resp.headers.location
  if st.follow and REDIRECT[resp.status] and loc then
    if st.hops >= M.MAX_HOPS then
      errors.raise("upstream_error", "too many redirects (more than " .. M.MAX_HOPS .. ")", nil, { reason = "too_many_redirects" })
    end
    local nu, reason, msg = st.url:join(loc)
    if not nu then blocked(reason == "invalid_url" and "redirect" or reason, "redirect refused: " .. msg) end
    if not nu:same_origin(st.url) then
      -- Credentials never follow a redirect to another origin, and stay
      -- dropped for the rest of the chain.
      for k in pairs(st.headers) do
        if st.sensitive[k:lower()] then st.headers[k] = nil end
      end
    end
    if resp.status == 303 or ((resp.status == 301 or resp.status == 302) and st.method == "POST") then
      st.method, st.body = "GET", nil
      for k in pairs(st.headers) do
        if k:lower() == "content-type" or k:lower() == "content-length" then st.headers[k] = nil end
      end
    end
    st.url = nu
    st.hops = st.hops + 1
    return nil
  end
  resp.url = st.url:text()
  resp.redirects = st.hops
  if st.raise_status and resp.status >= 400 then
    errors.raise("upstream_error", resp.url .. ": HTTP status " .. resp.status, nil,
      { reason = "http_status " .. resp.status, status = resp.status })
  end
  return resp
end

-- request(ctx, req) -> response | raises {code, message, reason}
-- req = {method, url, headers, body, purpose, timeout_ms, max_bytes,
--        max_header_bytes, follow_redirects, sensitive_headers, raise_status}
-- response = {status, headers (lower-case names), header_list, body, url,
--             redirects, primary_ip, http_version}
function M.request(ctx, req)
  local st = start(ctx, req)
  while true do
    local resp, err = http.request(hop_spec(st))
    local final = hop_done(st, resp, err)
    if final then return final end
  end
end

-- request_many(ctx, reqs) -> { {ok=true, response=} | {ok=false, error=}, ... }
-- Runs the requests concurrently (one libcurl multi handle per round of hops).
function M.request_many(ctx, reqs)
  local out, live = {}, {}
  for i, req in ipairs(reqs) do
    local ok, st = pcall(start, ctx, req)
    if ok then live[#live + 1] = { i = i, st = st } else out[i] = { ok = false, error = st } end
  end
  while #live > 0 do
    local specs, idx = {}, {}
    for _, item in ipairs(live) do
      local ok, spec = pcall(hop_spec, item.st)
      if ok then specs[#specs + 1] = spec; idx[#idx + 1] = item
      else out[item.i] = { ok = false, error = spec } end
    end
    local results = #specs > 0 and http.request_many(specs) or {}
    local next_live = {}
    for k, r in ipairs(results) do
      local item = idx[k]
      local ok, final = pcall(hop_done, item.st, r.response, r.error)
      if not ok then out[item.i] = { ok = false, error = final }
      elseif final then out[item.i] = { ok = true, response = final }
      else next_live[#next_live + 1] = item end
    end
    live = next_live
  end
  return out
end

return M
