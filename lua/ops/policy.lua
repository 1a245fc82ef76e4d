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

local function info(policy)
  local i = type(policy.info) == "function" and policy.info() or {}
  return {
    dir = i.dir or json.null,
    generation = i.generation or json.null,
    builtin_default = i.builtin_default == true,
    files = json.array(i.files or {}),
  }
end

registry.op {
  name = "policy.reload", role = "system", mutating = true,
  summary = "Reload the policy directory; a broken file keeps the old policies",
  args = {},
  handler = function(ctx, args)
    local policy = runner()
    ctx.target = "policies"
    local ok, err = policy.reload()
    if not ok then
      errors.raise("invalid_argument", "policies not reloaded, the previous ones stay in force: " .. tostring(err))
    end
    return info(policy)
  end,
}

registry.op {
  name = "policy.info", role = "system",
  summary = "Show the policy directory, its files and the reload generation",
  args = {},
  handler = function(ctx, args) return info(runner()) end,
}
