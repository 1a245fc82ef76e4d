-- auth: resolves the caller to a tenant user with a role (through the store),
-- says whether the tenant's module is on, and writes the audit trail.
local errors = require "errors"
local store = require "store"
local core = require "core"
local json = require "json"
local log = require "log"

local M = {}

local SYSTEM = { system = true, role = "system" }

function M.resolve(actor)
  if actor.system then return SYSTEM end
  if type(actor.tenant) ~= "string" or actor.tenant == "" or type(actor.user) ~= "string" or actor.user == "" then
    errors.raise("unauthorized", "a tenant actor needs a tenant and a user")
  end
  -- {tenant, user, tenant_id, user_id, role, mcp_enabled}, made for this op
  local a = store.resolve_actor(actor.tenant, actor.user)
  if not a then
    errors.raise("unauthorized", "unknown user '" .. actor.user .. "' in tenant '" .. actor.tenant .. "'")
  end
  return a
end

local function actor_text(a)
  if not a or a.system then return "system" end
  return a.tenant .. "/" .. a.user
end

-- Field names only, never values: the audit log must not hold secrets.
local function changed_fields(args)
  local names = json.array()
  for k, v in pairs(args or {}) do
    if type(k) == "string" and k ~= "id" then
      if type(v) == "table" and not json.is_array(v) then
        for k2 in pairs(v) do names[#names + 1] = k .. "." .. tostring(k2) end
      else
        names[#names + 1] = k
      end
    end
  end
  table.sort(names)
  return names
end

function M.audit(ctx, def, args, outcome)
  local a = ctx.actor
  if not a then return end
  local tenant_id = a.tenant_id or ctx.audit_tenant_id or json.null
  local ok, err = pcall(store.insert, SYSTEM, "audit", {
    tenant_id = tenant_id,
    at = core.now_ms(),
    actor = actor_text(a),
    op = def.name,
    target = ctx.target or (args and type(args.id) == "string" and args.id) or json.null,
    outcome = outcome,
    detail = { fields = changed_fields(args) },
  })
  if not ok then log.error("audit write failed for", def.name, tostring(err and err.message or err)) end
end

-- The system administrator switches a tenant's MCP module off with the
-- tenant setting mcp_enabled = false (spec prerequisites); on by default.
function M.module_enabled(actor, module)
  if module ~= "mcp" then return true end
  return actor.mcp_enabled ~= false -- read with the actor (store.resolve_actor)
end

-- An op is over: its cached reads end with it (store.op_end); the next op
-- reads the change counters again with its actor.
function M.finish(ctx) store.op_end() end

return M
