-- ops/policy: reload the operator policies without a restart (also what the
-- REPL's SIGHUP and .reload run) and show which policy files are in force.
local registry = require "registry"
local errors = require "errors"
local json = require "json"

local function runner()
  local ok, policy = pcall(require, "policy")
  if not ok or type(policy) ~= "table" or type(policy.reload) ~= "function" then
    errors.raise("internal", "the policy runner is not available in this build")
  end
  return policy
end

-- The runner's status as op output: every file with what happened to it at
-- the last (re)load, and what that means for whom.
local function view(st)
  local files = json.array()
  for i, f in ipairs(st.files or {}) do
    local v = { file = f.file, tenant = f.tenant or json.null, status = f.status,
                error = f.error or json.null, builtin = f.builtin == true }
    if f.status == "failed" then
      v.effect = f.tenant and ("tenant " .. f.tenant .. " fails closed: every outbound request is denied")
        or "the system actor and every tenant without a file of its own fail closed: every outbound request is denied"
    elseif f.status == "kept_previous" then
      v.effect = "the previous version stays in force"
    end
    files[i] = v
  end
  return {
    dir = st.dir or json.null,
    generation = st.generation,
    loaded_at = st.loaded_at,
    builtin_default = st.builtin_default == true,
    failed = st.failed or 0,
    files = files,
  }
end

registry.op {
  name = "policy.reload", role = "system", mutating = true,
  summary = "Reload the policy files one by one; a file that fails keeps its previous version",
  args = {},
  handler = function(ctx, args)
    local policy = runner()
    ctx.target = "policies"
    local st, err = policy.reload()
    if not st then
      errors.raise("invalid_argument", "policies not reloaded, the previous ones stay in force: " .. tostring(err))
    end
    return view(st)
  end,
}

registry.op {
  name = "policy.status", role = "system",
  summary = "Show the policy directory and, per file, whether it is loaded, failed or kept at its previous version",
  args = {},
  handler = function(ctx, args) return view(runner().status()) end,
}
