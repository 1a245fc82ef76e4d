-- default: the URL policy for the system actor and every tenant without a
-- file of its own. The spec's default: HTTPS to publicly routable addresses.
--
-- url(req) receives a frozen table:
--   req.url, req.scheme ("https"/"http"), req.host (lower case, no brackets),
--   req.port, req.path, req.tenant (nil for the system actor),
--   req.purpose ("mcp", "oauth_metadata", "token", "revocation",
--                "registration", "client_metadata"),
--   req.settings = {allow_private_urls = bool, allow_http = bool}
-- and returns {allow = true [, allow_cidrs = {...}] [, allow_http = true]}
-- or {allow = false, reason = "..."}. Whatever it returns, the engine's
-- connect-time check still refuses plain http unless allowed, and every
-- private or special-purpose address unless allow_private_urls (private
-- ranges only) or allow_cidrs covers it.
local P = {}

function P.url(req)
  -- Nothing to add to the built-in rules: https only (unless the system
  -- administrator allows http), public addresses only (unless the system
  -- administrator allows private URLs). Those are enforced at connect time
  -- on the address actually used, so the policy need not repeat them.
  return { allow = true }
end

return P
