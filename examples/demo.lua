-- demo: what an operator sees, step by step.
local function show(title, v) print("== " .. title); print(json.encode(v, { pretty = true })) end
show("engine", mcplink.must("engine.info", {}))
local ops = mcplink.must("op.list", {}).ops
print("== " .. #ops .. " ops registered")
for _, op in ipairs(ops) do print(string.format("  %-24s %-7s %s", op.name, op.role, op.summary)) end
