-- lab: example tenant policy: tenant "lab" may reach its own MCP servers in
-- one internal range (10.20.0.0/16); everything else follows the default.
local LAB_RANGE = "10.20.0.0/16"

return {
  url = function(req)
    local d = default.url(req)
    if not d.allow then return d end
    -- Only MCP endpoints and their OAuth servers live in the lab range;
    -- widening is per request, the connect-time check enforces it.
    return { allow = true, allow_cidrs = { LAB_RANGE } }
  end,
}
