-- ops/settings: system settings (allow_private_urls, allow_http,
-- input_timeout_ms). Only the system administrator changes them; everyone can see them.
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
  summary = "Change system settings (allow_private_urls, allow_http, input_timeout_ms)",
  args = { allow_private_urls = { type = "boolean" }, allow_http = { type = "boolean" },
           input_timeout_ms = { type = "integer", min = 1000, max = 24 * 60 * 60 * 1000 } },
  handler = function(ctx, args)
    store.tx(function()
      for k, v in pairs(args) do store.setting_set(k, v) end
    end)
    ctx.target = "settings"
    return settings.get_all()
  end,
}
