-- mcp.paging: the list calls of every era, followed page after page within guards
-- (pages, items, bytes, no repeated cursor), with the pages' cache hints merged.
local json = require "json"
local errors = require "errors"
local jsonrpc = require "mcp.jsonrpc"
local headers = require "mcp.headers"

local M = {}

M.MAX_PAGES, M.MAX_ITEMS, M.MAX_BYTES = 1000, 100000, 16 * 1024 * 1024

M.KINDS = {
  tools = { method = "tools/list", field = "tools" },
  resources = { method = "resources/list", field = "resources" },
  resource_templates = { method = "resources/templates/list", field = "resourceTemplates" },
  prompts = { method = "prompts/list", field = "prompts" },
}
-- each page's list is left undecoded by the call (a lazy array): its items
-- are decoded one at a time below, so a page of thousands never exists
-- whole as Lua values, only as its text
for _, k in pairs(M.KINDS) do k.lazy = { "result", k.field } end

local is_set = jsonrpc.is_set

-- walk(c, kind, opts, each) -> meta: the list's pages, each page's list
-- (a lazy array or a Lua array) given to each(list, keep, L) as it comes;
-- keep: the tools screen (nil: every item is kept)
local function walk(c, kind, opts, each)
  local L = M.KINDS[kind]
  if not L then errors.raise("invalid_argument", "unknown list kind '" .. tostring(kind) .. "'", "kind") end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.lazy = L.lazy
  local seen, pages, bytes = {}, 0, 0
  local meta = { pages = 0 }
  local cursor, keep, done
  repeat
    pages = pages + 1
    if pages > M.MAX_PAGES then
      errors.raise("too_large", L.method .. ": more than " .. M.MAX_PAGES .. " pages", nil, { reason = "pages" })
    end
    local params = json.object()
    if cursor then params.cursor = cursor end
    local before = jsonrpc.bytes_parsed
    local res = c:call(L.method, params, o)
    -- the era is known once a page came back; a modern server's tools pass
    -- the x-mcp-header screen
    if kind == "tools" and c.era == "modern" and not keep then keep, done = headers.screen(c.key) end
    local list = res[L.field]
    if not is_set(list) then list = {} end
    if type(list) ~= "table" and not json.is_lazy(list) then errors.raise("upstream_error", L.method .. ": '" .. L.field .. "' is not a list", nil, { reason = "invalid_result" }) end
    -- the page's size as it came (its response and anything else the call
    -- read meanwhile): never less than the list's own text
    bytes = bytes + (jsonrpc.bytes_parsed - before)
    if bytes > M.MAX_BYTES then errors.raise("too_large", L.method .. ": the list exceeds " .. M.MAX_BYTES .. " bytes", nil, { reason = "bytes" }) end
    each(list, keep, L)
    if math.type(res.ttlMs) == "integer" then
      meta.ttl_ms = meta.ttl_ms and math.min(meta.ttl_ms, res.ttlMs) or res.ttlMs
    end
    if type(res.cacheScope) == "string" then
      if meta.cache_scope ~= "private" then meta.cache_scope = res.cacheScope end
    end
    cursor = res.nextCursor
    if is_set(cursor) then
      if type(cursor) ~= "string" then errors.raise("upstream_error", L.method .. ": nextCursor is not a string", nil, { reason = "invalid_cursor" }) end
      if seen[cursor] then errors.raise("upstream_error", L.method .. ": the server repeated a cursor", nil, { reason = "repeated_cursor" }) end
      seen[cursor] = true
    else
      cursor = nil
    end
  until not cursor
  meta.pages = pages
  if done then done() end
  return meta
end

local function too_many(L)
  errors.raise("too_large", L.method .. ": more than " .. M.MAX_ITEMS .. " items", nil, { reason = "items" })
end

-- list(c, kind [, opts [, map]]) -> items, meta {ttl_ms?, cache_scope?, pages};
-- each page is a c:call of its own unless opts = {deadline, timeout_ms} bounds
-- them all. map(item) -> what the list keeps of an item (default: the item),
-- called as each item is decoded: a decoded item need not outlive map.
function M.list(c, kind, opts, map)
  local items = json.array()
  local meta = walk(c, kind, opts, function(list, keep, L)
    for i, item in json.items(list) do
      if #items >= M.MAX_ITEMS then too_many(L) end
      if not keep or keep(item) then
        if map then item = map(item) end
        items[#items + 1] = item
      end
      -- mapped: the decoded item is no longer referenced (a lazy array holds
      -- none; a Lua array's next read is i + 1)
      if map and type(list) == "table" then list[i] = false end
    end
  end)
  return items, meta
end

-- canonical(c, kind, opts, spec, fn) -> count, meta: the items of the list
-- as canonical text, never decoded into Lua values (json.canonical_items):
-- fn(text, part, name) for each item the list keeps, where text is
-- json.canonical(item), part its pinned part for spec.keys (objects only)
-- and name the item's spec.name member when a string. With spec.into (a
-- json.list_builder()) the kept items' texts are joined there instead
-- (text is then nil) and fn says whether it keeps the item (false: it is
-- taken out again). The same pages, guards and screen as list; count: the
-- items the screen kept.
function M.canonical(c, kind, opts, spec, fn)
  local n = 0
  local into = spec.into
  local o = { keys = spec.keys, name = spec.name, into = into }
  local meta = walk(c, kind, opts, function(list, keep, L)
    o.find = keep and headers.FIND or nil
    for _, text, part, name, found in json.canonical_items(list, o) do
      if n >= M.MAX_ITEMS then too_many(L) end
      -- the screen sees the item only where it may have something to say
      if not keep or found == false or keep(json.decode(text)) then
        n = n + 1
        if into then
          if fn(nil, part, name) == false then into:drop() end
        else
          fn(text, part, name)
        end
      elseif into then
        into:drop()
      end
    end
  end)
  return n, meta
end

return M
