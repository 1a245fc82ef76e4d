-- ops/settings: system settings (allow_private_urls, allow_http). Only the
-- system administrator changes them; everyone can see them.
local registry = require "registry"
local settings = require "settings"
local store = require "store"

registry.op {
  name = "settings.get", role = "any",
  summary = "Show the system settings",
  args = {},
  handler = function(ctx, args) return settings.get_all() end,
}

registry.op {
  name = "settings.set", role = "system", mutating = true,
  summary = "Change system settings (allow_private_urls, allow_http)",
  args = { allow_private_urls = { type = "boolean" }, allow_http = { type = "boolean" } },
  handler = function(ctx, args)
    store.tx(function()
      for k, v in pairs(args) do store.setting_set(k, v) end
    end)
    ctx.target = "settings"
    return settings.get_all()
  end,
}
