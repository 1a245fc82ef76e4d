-- store_cases.lua: the store and crypto binding tests, run one case per fresh
-- engine by tests/unit/test_store.c on SQLite and on PostgreSQL (globals:
-- store, crypto, json, reopen, sql, dump, snapshot, newdb, v1_fixture,
-- db_at, BACKEND).
local C = {}
local SYS = { system = true }

local function eq(a, b, msg)
  if a ~= b then error((msg or "values differ") .. ": expected " .. tostring(b) .. ", got " .. tostring(a), 2) end
end
local function ok(v, msg) if not v then error(msg or "not ok", 2) end end
local function err(code, fn, ...)
  local okk, e = pcall(fn, ...)
  if okk then error("expected error " .. code .. " but the call succeeded", 2) end
  if type(e) ~= "table" or e.code ~= code then
    error("expected " .. code .. ", got " .. (type(e) == "table" and (tostring(e.code) .. ": " .. tostring(e.message)) or tostring(e)), 2)
  end
  return e
end
local function slurp(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local function spit(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
local function has(s, sub) return s ~= nil and s:find(sub, 1, true) ~= nil end
local PG = BACKEND == "pg"

-- raw inspection that differs between the databases, the same question each
local function has_table(db, t)
  if PG then return sql(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '" .. t .. "'") == t end
  return sql(db, "SELECT name FROM sqlite_master WHERE type='table' AND name='" .. t .. "'") == t
end
local function has_column(db, t, c)
  if PG then return sql(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = '" .. t .. "' AND column_name = '" .. c .. "'") == "1" end
  return sql(db, "SELECT count(*) FROM pragma_table_info('" .. t .. "') WHERE name='" .. c .. "'") == "1"
end
local function version_of(db)
  return tonumber(sql(db, PG and "SELECT schema_version FROM mcplink_meta" or "PRAGMA user_version"))
end
local function set_version(db, v)
  sql(db, PG and ("UPDATE mcplink_meta SET schema_version = " .. v) or ("PRAGMA user_version = " .. v))
end
-- every table readable to its end and no dangling reference (SQLite also runs integrity_check)
local function intact(db)
  if not PG then
    eq(sql(db, "PRAGMA integrity_check"), "ok", "integrity_check")
    eq(sql(db, "SELECT count(*) FROM pragma_foreign_key_check"), "0", "foreign keys")
  end
  for _, t in ipairs({ "users", "classifications", "spaces", "servers", "capabilities", "capability_lists" }) do
    ok(tonumber(sql(db, "SELECT count(*) FROM " .. t)), t .. " readable")
  end
  eq(sql(db, "SELECT count(*) FROM servers s WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.tenant_id)"), "0", "servers have tenants")
end
local function checkpoint(db)
  if PG then sql(db, "CHECKPOINT") else sql(db, "PRAGMA wal_checkpoint(TRUNCATE)") end
end

local function tenant(name)
  local t = store.insert(SYS, "tenants", { name = name, settings = json.object() })
  local ad = store.insert(SYS, "users", { tenant_id = t.id, name = "admin", role = "admin" })
  local me = store.insert(SYS, "users", { tenant_id = t.id, name = "member", role = "member" })
  return t, { tenant_id = t.id, user_id = ad.id, role = "admin" }, { tenant_id = t.id, user_id = me.id, role = "member" }
end

local function classification(a, name, level)
  return store.insert(a, "classifications", { name = name, level = level })
end

-- ---- migrations -----------------------------------------------------------

function C.migrations_fresh()
  local cur, latest = store.schema_version()
  ok(latest >= 2, "at least two migrations")
  eq(cur, latest, "fresh database is at the latest version")
  eq(version_of(DB), latest, "the database records it")
  for _, t in ipairs({ "tenants", "settings", "users", "classifications", "spaces", "assistants", "servers",
                        "capabilities", "capability_lists", "enablements", "attachments", "oauth_tokens",
                        "oauth_pending", "oauth_clients", "leases", "audit", "continuations" }) do
    ok(has_table(DB, t), "table " .. t)
  end
  ok(has_column(DB, "servers", "protocol_era"), "v2 column")
  if not PG then
    eq(sql(DB, "PRAGMA journal_mode"), "wal", "WAL mode")
    -- the file is private
    local p = io.popen("stat -c %a " .. DB):read("l")
    eq(p, "600", "database file mode")
  end
end

function C.migration_upgrade_v1()
  local old = v1_fixture()
  eq(version_of(old), 1, "fixture is version 1")
  assert(reopen({ db = old }))
  local cur, latest = store.schema_version()
  eq(cur, latest, "upgraded to the latest version")
  local t = store.find(SYS, "tenants", { name = "legacy" })
  ok(t, "tenant kept")
  local a = store.resolve_actor("legacy", "root")
  eq(a.role, "admin", "user kept")
  local s = store.find(a, "servers", { name = "old-server" })
  ok(s, "server kept")
  eq(s.description, "kept across upgrade")
  eq(s.url, "https://mcp.example.com/")
  eq(s.protocol_era, nil, "new column starts empty")
  s = store.update(a, "servers", s.id, { protocol_era = "2025", discovery_error = { code = "x" } })
  eq(s.protocol_era, "2025", "new column writable")
  eq(s.discovery_error.code, "x")
  -- the capability rows became the server's tool list (migration 7)
  local list = store.find(a, "capability_lists", { server_id = s.id, kind = "tool" })
  local items = json.decode(list.items)
  eq(#items, 1); eq(items[1].name, "echo")
  ok(json.is_array(items[1].tags), "json empty array survives")
  eq(store.count(a, "capabilities"), 0, "an approved tool has no row of its own any more")
  ok(store.lease_acquire("k", "me", 1000), "leases table from v2 works")
  intact(old)
end

-- A database at schema version 4 (the release before auth_type's CHECK became a name's shape)
-- with a row in every table that refers to servers, or that servers refer to.
local V4_ROWS = {
  "INSERT INTO tenants (id, name, settings, created_at, updated_at) VALUES ('ten_m5', 'm5', '{}', 1, 2)",
  "INSERT INTO users (id, tenant_id, name, role, created_at, updated_at) VALUES ('usr_m5', 'ten_m5', 'ann', 'admin', 1, 2)",
  "INSERT INTO classifications (id, tenant_id, name, level, description, created_at, updated_at) VALUES ('cls_m5', 'ten_m5', 'internal', 10, 'd', 1, 2)",
  "INSERT INTO spaces (id, tenant_id, name, classification_id, created_at, updated_at) VALUES ('spc_m5', 'ten_m5', 'sales', 'cls_m5', 1, 2)",
  "INSERT INTO assistants (id, tenant_id, name, space_id, owner_user_id, created_at, updated_at) VALUES ('ast_m5', 'ten_m5', 'bot', 'spc_m5', 'usr_m5', 1, 2)",
  "INSERT INTO servers (id, tenant_id, name, description, description_source, url, auth_type, classification_id, " ..
    "timeout_ms, capabilities_status, discovered_at, server_info, created_by, protocol_era, protocol_version, " ..
    "discovery_error, created_at, updated_at) VALUES ('srv_none', 'ten_m5', 'plain', 'p', 'server', " ..
    "'https://a.example/mcp', 'none', 'cls_m5', 5000, 'ok', 3, '{\"name\":\"a\"}', 'ann', 'modern', '2026-07-28', " ..
    "'{\"code\":\"x\"}', 1, 2)",
  "INSERT INTO servers (id, tenant_id, name, url, auth_type, api_key, capabilities_status, created_at, updated_at) " ..
    "VALUES ('srv_key', 'ten_m5', 'keyed', 'https://b.example/mcp', 'api_key', 'v1:k-old:c2VhbGVk', 'ok', 1, 2)",
  "INSERT INTO servers (id, tenant_id, name, url, auth_type, oauth_client_id, oauth_client_secret, " ..
    "oauth_authorization_url, oauth_token_url, oauth_revocation_url, oauth_scopes, oauth_registration_mode, " ..
    "oauth_issuer, oauth_metadata, capabilities_status, created_at, updated_at) VALUES ('srv_oauth', 'ten_m5', " ..
    "'docs', 'https://c.example/mcp', 'oauth', 'cid', 'v1:k-old:c2VjcmV0', 'https://as.example/authorize', " ..
    "'https://as.example/token', 'https://as.example/revoke', '[\"read\"]', 'dynamic', 'https://as.example', " ..
    "'{\"issuer\":\"https://as.example\"}', 'awaiting_user', 1, 2)",
  "INSERT INTO capabilities (id, tenant_id, server_id, kind, name, definition, hash, approved_definition, " ..
    "approved_hash, status, created_at, updated_at) VALUES ('cap_m5', 'ten_m5', 'srv_key', 'tool', 'echo', " ..
    "'{\"name\":\"echo\"}', 'h2', '{\"name\":\"echo\"}', 'h1', 'pending', 1, 2)",
  "INSERT INTO enablements (id, tenant_id, server_id, enabled_by, created_at, updated_at) VALUES ('enb_m5', 'ten_m5', 'srv_key', 'ann', 1, 2)",
  "INSERT INTO attachments (id, tenant_id, assistant_id, server_id, created_at, updated_at) VALUES ('att_m5', 'ten_m5', 'ast_m5', 'srv_key', 1, 2)",
  "INSERT INTO oauth_tokens (id, tenant_id, server_id, user_id, access_token, refresh_token, expires_at, scopes, " ..
    "issuer, token_type, step_up, created_at, updated_at) VALUES ('otk_m5', 'ten_m5', 'srv_oauth', 'usr_m5', " ..
    "'v1:k-old:YQ', 'v1:k-old:cg', 99, '[\"read\"]', 'https://as.example', 'Bearer', '{\"tries\":1}', 1, 2)",
  "INSERT INTO oauth_pending (id, tenant_id, server_id, user_id, state_hash, verifier, redirect_uri, scopes, resource, " ..
    "issuer, expires_at, created_at, updated_at) VALUES ('opa_m5', 'ten_m5', 'srv_oauth', 'usr_m5', 'sh', " ..
    "'v1:k-old:dg', 'https://app.example/cb', '[]', 'https://c.example/mcp', 'https://as.example', 99, 1, 2)",
  "INSERT INTO oauth_clients (id, tenant_id, server_id, issuer, client_id, client_secret, registration, created_at, " ..
    "updated_at) VALUES ('ocl_m5', 'ten_m5', 'srv_oauth', 'https://as.example', 'dyn', 'v1:k-old:cw', '{}', 1, 2)",
  "INSERT INTO audit (id, tenant_id, at, actor, op, target, outcome, detail, created_at, updated_at) " ..
    "VALUES ('aud_m5', 'ten_m5', 1, 'ann', 'server.update', 'srv_key', 'ok', '{}', 1, 2)",
}
-- every row of the tables above, in a stable order: what the migration must keep (but the
-- tenants' change counter, which a later step's writes move)
local function all_rows(db)
  local out = { "tenants:\n" .. tostring(sql(db, "SELECT seq, id, name, settings, created_at, updated_at FROM tenants ORDER BY seq")) }
  for _, t in ipairs({ "users", "classifications", "spaces", "assistants", "servers", "capabilities",
                       "enablements", "attachments", "oauth_tokens", "oauth_pending", "oauth_clients", "audit" }) do
    out[#out + 1] = t .. ":\n" .. tostring(sql(db, "SELECT * FROM " .. t .. " ORDER BY seq"))
  end
  return table.concat(out, "\n")
end
local function has_index(db, name)
  if PG then return sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = '" .. name .. "'") == "1" end
  return sql(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '" .. name .. "'") == "1"
end

-- 5: auth_type's CHECK is a name's shape. From version 4 every row and reference is kept
-- (SQLite rebuilds the table: ids, seq, indexes, triggers and the tables that refer to it
-- must survive), a name the old CHECK refused is stored, and one of the wrong shape is not.
function C.migration_auth_type_v4()
  local old = db_at(4)
  eq(version_of(old), 4, "fixture is version 4")
  for _, q in ipairs(V4_ROWS) do sql(old, q) end
  ok(not pcall(sql, old, "UPDATE servers SET auth_type = 'client_credentials' WHERE id = 'srv_none'"),
     "version 4 refuses an auth type it does not list")
  local before = all_rows(old)
  assert(reopen({ db = old }))
  local cur, latest = store.schema_version()
  eq(cur, latest, "migrated to the latest version")
  eq(version_of(old), latest, "and the database records it")
  eq(all_rows(old), before, "every row of every table kept, column for column")
  intact(old)
  ok(has_index(old, "servers_tenant_seq") and has_index(old, "servers_classification"), "the servers indexes")
  -- the rows through the store, references included
  local a = store.resolve_actor("m5", "ann")
  local s = store.get(a, "servers", "srv_key")
  eq(s.api_key_set, true, "a sealed secret is still set")
  eq(store.find(a, "attachments", { server_id = "srv_key" }).assistant_id, "ast_m5", "attachment kept")
  eq(store.get(a, "servers", "srv_none").discovery_error.code, "x", "JSON columns kept")
  -- a name the old CHECK refused is stored now; a name of the wrong shape is still refused
  local v = sql(old, "SELECT version FROM tenants WHERE id = 'ten_m5'")
  s = store.update(a, "servers", "srv_none", { auth_type = "client_credentials" })
  eq(s.auth_type, "client_credentials", "a new auth type is stored")
  ok(sql(old, "SELECT version FROM tenants WHERE id = 'ten_m5'") ~= v, "the servers triggers still move the tenant's counter")
  for _, bad in ipairs({ "Client", "2fa", "header key", "", "x-key", string.rep("a", 33) }) do
    local e = err("invalid_argument", store.update, a, "servers", "srv_none", { auth_type = bad })
    eq(e.field, "auth_type", "the CHECK names auth_type for '" .. bad .. "'")
  end
  store.update(a, "servers", "srv_none", { auth_type = string.rep("a", 32) })
  -- the tables that refer to servers refer to the new one: deleting a server cascades
  store.delete(a, "servers", "srv_key")
  for _, t in ipairs({ "capabilities", "capability_lists", "enablements", "attachments" }) do
    eq(sql(old, "SELECT count(*) FROM " .. t .. " WHERE server_id = 'srv_key'"), "0", t .. " cascaded")
  end
  store.delete(a, "servers", "srv_oauth")
  for _, t in ipairs({ "oauth_tokens", "oauth_pending", "oauth_clients" }) do
    eq(sql(old, "SELECT count(*) FROM " .. t), "0", t .. " cascaded")
  end
  eq(sql(old, "SELECT count(*) FROM audit"), "1", "the audit log has no references to cascade")
  intact(old)
  if not PG then
    -- SQLite lets hand-written SQL leave a reference dangling (foreign keys are per connection):
    -- such a row does not stop the migration, which checks only that it breaks none itself
    local dangling = db_at(4)
    for _, q in ipairs(V4_ROWS) do sql(dangling, q) end
    sql(dangling, "INSERT INTO enablements (id, tenant_id, server_id, created_at, updated_at) " ..
                  "VALUES ('enb_gone', 'ten_m5', 'srv_gone', 1, 2)")
    assert(reopen({ db = dangling }))
    eq(version_of(dangling), latest, "a database with a dangling reference is migrated")
    eq(sql(dangling, "SELECT server_id FROM enablements WHERE id = 'enb_gone'"), "srv_gone", "and the row left as it was")
  end
end

-- 7: a server's capability rows become one list per kind. From version 6 every definition goes
-- into its server's list in the stored order, with its name and hash beside it; a tool awaiting
-- approval keeps its row (no approval is lost) and the others' rows go.
local V6_ROWS = {
  "INSERT INTO tenants (id, name, settings, created_at, updated_at) VALUES ('ten_m7', 'm7', '{}', 1, 2)",
  "INSERT INTO tenants (id, name, settings, created_at, updated_at) VALUES ('ten_o7', 'o7', '{}', 1, 2)",
  "INSERT INTO users (id, tenant_id, name, role, created_at, updated_at) VALUES ('usr_m7', 'ten_m7', 'ann', 'admin', 1, 2)",
  "INSERT INTO servers (id, tenant_id, name, created_at, updated_at) VALUES ('srv_a7', 'ten_m7', 'a', 1, 2)",
  "INSERT INTO servers (id, tenant_id, name, created_at, updated_at) VALUES ('srv_b7', 'ten_m7', 'b', 1, 2)",
  "INSERT INTO servers (id, tenant_id, name, created_at, updated_at) VALUES ('srv_o7', 'ten_o7', 'o', 1, 2)",
}
local function cap_row(id, tid, sid, kind, name, def, hash, adef, ahash, status)
  local function q(v) return v and ("'" .. v .. "'") or "NULL" end
  return "INSERT INTO capabilities (id, tenant_id, server_id, kind, name, definition, hash, approved_definition, " ..
    "approved_hash, status, created_at, updated_at) VALUES (" .. table.concat({ q(id), q(tid), q(sid), q(kind),
    q(name), q(def), q(hash), q(adef), q(ahash), q(status) }, ", ") .. ", 1, 2)"
end
function C.migration_capability_lists_v6()
  local old = db_at(6)
  eq(version_of(old), 6, "fixture is version 6")
  local rows = { table.unpack(V6_ROWS) }
  rows[#rows + 1] = cap_row("cap_1", "ten_m7", "srv_a7", "tool", "zeta", '{"name":"zeta","tags":[]}', "hz", '{"name":"zeta","tags":[]}', "hz", "approved")
  rows[#rows + 1] = cap_row("cap_2", "ten_m7", "srv_a7", "resource", "file:///r", '{"name":"r","uri":"file:///r"}', "hr", '{"name":"r","uri":"file:///r"}', "hr", "approved")
  rows[#rows + 1] = cap_row("cap_3", "ten_m7", "srv_a7", "tool", "alpha", '{"name":"alpha"}', "ha", '{"name":"alpha"}', "ha", "approved")
  rows[#rows + 1] = cap_row("cap_4", "ten_m7", "srv_a7", "tool", "pend", '{"description":"new","name":"pend"}', "hp2",
                            '{"description":"old","name":"pend"}', "hp1", "pending")
  rows[#rows + 1] = cap_row("cap_5", "ten_m7", "srv_b7", "prompt", "greet", '{"name":"greet"}', "hg", '{"name":"greet"}', "hg", "approved")
  rows[#rows + 1] = cap_row("cap_6", "ten_o7", "srv_o7", "tool", "other", '{"name":"other"}', "ho", '{"name":"other"}', "ho", "approved")
  for _, q in ipairs(rows) do sql(old, q) end
  assert(reopen({ db = old }))
  local cur, latest = store.schema_version()
  eq(cur, latest, "migrated to the latest version")
  eq(version_of(old), latest, "and the database records it")
  intact(old)
  local a = store.resolve_actor("m7", "ann")
  local function list(sid, kind)
    local r = store.find(a, "capability_lists", { server_id = sid, kind = kind })
    ok(r, sid .. " has a " .. kind .. " list")
    return json.decode(r.items), r
  end
  local items = list("srv_a7", "tool")
  eq(#items, 3, "the server's three tools")
  eq(items[1].name .. "," .. items[2].name .. "," .. items[3].name, "zeta,alpha,pend", "in their stored order")
  ok(json.is_array(items[1].tags), "an empty array stays one")
  eq(items[3].description, "new", "a pending tool's list item is its current definition")
  items = list("srv_a7", "resource")
  eq(#items, 1); eq(items[1].uri, "file:///r")
  items = list("srv_b7", "prompt")
  eq(#items, 1); eq(items[1].name, "greet")
  eq(store.find(a, "capability_lists", { server_id = "srv_b7", kind = "tool" }), nil, "no list of a kind it had none of")
  eq(sql(old, "SELECT tenant_id FROM capability_lists WHERE server_id = 'srv_o7'"), "ten_o7", "each list in its server's tenant")
  eq(store.count(a, "capability_lists"), 3, "a tenant sees only its own lists")
  -- the approval state: the pending row is kept as it was, the others are gone
  eq(sql(old, "SELECT count(*) FROM capabilities"), "1", "only the tool awaiting approval keeps a row")
  local p = store.find(a, "capabilities", { server_id = "srv_a7", name = "pend" })
  eq(p.id, "cap_4"); eq(p.status, "pending"); eq(p.approved_hash, "hp1")
  eq(p.approved_definition.description, "old", "with its approved definition")
  -- the new table's triggers move the tenant's counter; deleting a server cascades its lists
  local v = sql(old, "SELECT version FROM tenants WHERE id = 'ten_m7'")
  local r = store.find(a, "capability_lists", { server_id = "srv_b7", kind = "prompt" })
  store.update(a, "capability_lists", r.id, { items = "[]" })
  ok(sql(old, "SELECT version FROM tenants WHERE id = 'ten_m7'") ~= v, "a list's change moves the tenant's counter")
  store.delete(a, "servers", "srv_a7")
  eq(sql(old, "SELECT count(*) FROM capability_lists WHERE server_id = 'srv_a7'"), "0", "lists cascaded")
  eq(sql(old, "SELECT count(*) FROM capabilities"), "0", "the pending row cascaded")
  ok(has_index(old, "capability_lists_tenant_seq"), "the tenant-seq index")
  intact(old)
end

-- An instance whose database another instance upgraded (a newer release's migration, which may
-- have moved data this code would read or write wrongly) refuses every op's actor and every
-- transaction, saying why, and works again when the version is its own.
function C.newer_version_while_open()
  local _, ad = tenant("acme")
  local _, latest = store.schema_version()
  store.insert(ad, "classifications", { name = "before", level = 1 })
  set_version(DB, latest + 1)
  local e = err("unavailable", store.resolve_actor, "acme", "admin")
  ok(has(e.message, "schema version " .. (latest + 1)) and has(e.message, "(" .. latest .. ")") and
     has(e.message, "another instance upgraded it"), "the error says why: " .. tostring(e.message))
  e = err("unavailable", store.tx, function() store.insert(ad, "classifications", { name = "during", level = 2 }) end)
  ok(has(e.message, "newer than this mcplink supports"), e.message)
  eq(sql(DB, "SELECT count(*) FROM classifications WHERE name = 'during'"), "0", "the transaction wrote nothing")
  set_version(DB, latest)
  eq(store.resolve_actor("acme", "admin").role, "admin", "at its own version again: the actor")
  store.tx(function() store.insert(ad, "classifications", { name = "after", level = 3 }) end)
  eq(store.count(ad, "classifications"), 2, "and transactions")
end

function C.newer_version_refused()
  local newer = newdb("newer")
  assert(reopen({ db = newer }))
  store.insert(SYS, "tenants", { name = "x" })
  assert(reopen({}))
  set_version(newer, 99)
  checkpoint(newer)
  local before = snapshot(newer)
  local r, e = reopen({ db = newer })
  ok(not r, "newer database refused")
  ok(has(e, "newer") and has(e, "99"), "clear error: " .. tostring(e))
  checkpoint(newer)
  ok(snapshot(newer) == before, "database unchanged (SQLite: byte for byte, and no WAL written)")
  eq(version_of(newer), 99, "version left as it was")
  assert(reopen({}))
end

-- ---- records --------------------------------------------------------------

function C.crud_and_types()
  local t, ad = tenant("acme")
  local c = classification(ad, "internal", 10)
  local s = store.insert(ad, "servers", { name = "gh", description = "GitHub", description_source = "admin",
    oauth_scopes = json.array(), timeout_ms = 5000, classification_id = c.id, server_info = { name = "x", list = json.array() } })
  ok(s.id:match("^srv_[a-z2-7]+$") and #s.id == 24, "id with prefix: " .. s.id)
  eq(s.tenant_id, t.id, "tenant filled in")
  eq(math.type(s.created_at), "integer")
  ok(s.created_at > 1.6e12, "unix ms")
  eq(s.api_key_set, false)
  eq(s.oauth_client_secret_set, false)
  eq(s.api_key, nil, "secret never returned")
  ok(json.is_array(s.oauth_scopes), "empty array preserved")
  eq(json.encode(s.server_info.list), "[]")
  eq(s.timeout_ms, 5000)
  eq(s.capabilities_status, "not_discovered", "default")
  eq(s.auth_type, "none", "default")
  local g = store.get(ad, "servers", s.id)
  eq(g.name, "gh")
  eq(store.find(ad, "servers", { name = "gh" }).id, s.id)
  eq(store.find(ad, "servers", { name = "nope" }), nil)
  eq(store.find(ad, "servers", { url = json.null }).id, s.id, "IS NULL match")
  local u = store.update(ad, "servers", s.id, { description = json.null, timeout_ms = 7000 })
  eq(u.description, nil, "json.null clears")
  eq(u.name, "gh", "other columns unchanged")
  eq(u.timeout_ms, 7000)
  ok(u.updated_at >= s.updated_at)
  eq(store.count(ad, "servers", {}), 1)
  local e = err("not_found", store.get, ad, "servers", "srv_nope")
  eq(e.message, "server not found")
  e = err("invalid_argument", store.insert, ad, "servers", { name = "x", bogus = 1 })
  eq(e.field, "bogus")
  e = err("invalid_argument", store.insert, ad, "servers", { name = "x", timeout_ms = "soon" })
  eq(e.field, "timeout_ms")
  e = err("invalid_argument", store.insert, ad, "servers", { name = 42 })
  eq(e.field, "name")
  e = err("invalid_argument", store.insert, ad, "nothing", {})
  eq(e.field, "table")
  e = err("invalid_argument", store.update, ad, "servers", s.id, { id = "srv_x" })
  eq(e.field, "id")
  err("invalid_argument", store.find, ad, "servers", { api_key = "x" })
  store.delete(ad, "servers", s.id)
  err("not_found", store.delete, ad, "servers", s.id)
  eq(store.count(ad, "servers"), 0)
  err("forbidden", store.find, ad, "tenants", { id = t.id })
end

function C.conflicts_and_refs()
  local _, ad = tenant("acme")
  local c = classification(ad, "public", 0)
  store.insert(ad, "servers", { name = "x" })
  local e = err("conflict", store.insert, ad, "servers", { name = "x" })
  eq(e.message, "a server named 'x' already exists")
  eq(e.field, "name")
  e = err("conflict", classification, ad, "other", 0)
  eq(e.field, "level")
  e = err("not_found", store.insert, ad, "spaces", { name = "sp", classification_id = "cls_missing" })
  eq(e.field, "classification_id")
  e = err("invalid_argument", store.insert, ad, "spaces", { name = "sp" })
  eq(e.field, "classification_id")
  e = err("invalid_argument", store.insert, ad, "users", { name = "bob", role = "owner" })
  eq(e.field, "role")
  local sp = store.insert(ad, "spaces", { name = "sp", classification_id = c.id })
  err("conflict", store.delete, ad, "classifications", c.id)
  -- cascades: a server's capabilities, enablement, attachments, tokens
  local s = store.insert(ad, "servers", { name = "casc" })
  local asst = store.insert(ad, "assistants", { name = "a", space_id = sp.id, owner_user_id = ad.user_id })
  store.insert(ad, "capabilities", { server_id = s.id, kind = "tool", name = "t", definition = {} })
  store.insert(ad, "enablements", { server_id = s.id, enabled_by = ad.user_id })
  store.insert(ad, "attachments", { assistant_id = asst.id, server_id = s.id })
  store.insert(ad, "oauth_tokens", { server_id = s.id, user_id = ad.user_id, access_token = "tok" })
  e = err("conflict", store.insert, ad, "attachments", { assistant_id = asst.id, server_id = s.id })
  eq(e.field, "server_id")
  e = err("conflict", store.insert, ad, "capabilities", { server_id = s.id, kind = "tool", name = "t" })
  eq(e.message, "a capability named 't' already exists")
  store.delete(ad, "servers", s.id)
  for _, tb in ipairs({ "capabilities", "enablements", "attachments", "oauth_tokens" }) do
    eq(store.count(ad, tb), 0, tb .. " cascaded")
  end
  eq(store.count(ad, "assistants"), 1, "the assistant stays")
end

function C.tenant_scoping()
  local ta, aa, ma = tenant("a")
  local tb, ab, mb = tenant("b")
  local c = classification(aa, "c", 1)
  local s = store.insert(aa, "servers", { name = "secret-srv", api_key = "k-a" })
  local asst = store.insert(ma, "assistants", { name = "x", owner_user_id = ma.user_id })
  store.insert(aa, "enablements", { server_id = s.id })
  store.insert(ma, "attachments", { assistant_id = asst.id, server_id = s.id })
  local before = store.get(aa, "servers", s.id)
  for _, actor in ipairs({ ab, mb }) do
    local e = err("not_found", store.get, actor, "servers", s.id)
    eq(e.message, "server not found")
    eq(store.find(actor, "servers", { id = s.id }), nil)
    eq(store.find(actor, "servers", { name = "secret-srv" }), nil)
    err("not_found", store.update, actor, "servers", s.id, { name = "stolen" })
    err("not_found", store.delete, actor, "servers", s.id)
    err("not_found", store.reveal, actor, "servers", s.id, "api_key")
    eq(#store.list(actor, "servers").items, 0)
    eq(store.count(actor, "servers"), 0)
    eq(store.count(actor, "servers", { tenant_id = ta.id }), 0, "where tenant_id cannot widen")
    eq(#store.query(actor, "assistant_tool_lists", { assistant_id = asst.id }), 0)
    eq(#store.query(actor, "assistant_pending_tools", { assistant_id = asst.id }), 0)
    eq(#store.query(actor, "assistant_servers", { assistant_id = asst.id }), 0)
    local e2 = err("not_found", store.insert, actor, "spaces", { name = "sp", classification_id = c.id })
    eq(e2.field, "classification_id")
    e2 = err("not_found", store.insert, actor, "enablements", { server_id = s.id })
    eq(e2.field, "server_id")
    e2 = err("invalid_argument", store.insert, actor, "servers", { name = "y", tenant_id = ta.id })
    eq(e2.field, "tenant_id")
  end
  local after = store.get(aa, "servers", s.id)
  eq(after.name, before.name, "unchanged")
  eq(after.updated_at, before.updated_at, "unchanged")
  eq(store.reveal(aa, "servers", s.id, "api_key"), "k-a")
  -- the same name in another tenant is fine
  store.insert(ab, "servers", { name = "secret-srv" })
  -- the system actor sees all and must name the tenant
  eq(store.count(SYS, "servers"), 2)
  local e = err("invalid_argument", store.insert, SYS, "servers", { name = "z" })
  eq(e.field, "tenant_id")
  e = err("not_found", store.insert, SYS, "servers", { name = "z", tenant_id = "ten_none" })
  eq(e.field, "tenant_id")
  eq(store.insert(SYS, "servers", { name = "z", tenant_id = tb.id }).tenant_id, tb.id)
  err("forbidden", store.insert, aa, "tenants", { name = "evil" })
end

-- ---- secrets ----------------------------------------------------------------

function C.secrets_canary()
  local _, ad = tenant("acme")
  local K1, K2, K3, K4 = "CANARY-api-key-7f3a9c", "CANARY-client-secret-41be", "CANARY-rotated-api-key-0d1", "CANARY-access-tok-99"
  local s = store.insert(ad, "servers", { name = "gh", auth_type = "api_key", api_key = K1, oauth_client_secret = K2 })
  local out = json.encode(s)
  ok(not has(out, "CANARY"), "insert result holds no secret")
  eq(s.api_key_set, true)
  eq(s.oauth_client_secret_set, true)
  eq(store.reveal(ad, "servers", s.id, "api_key"), K1)
  eq(store.reveal(ad, "servers", s.id, "oauth_client_secret"), K2)
  s = store.update(ad, "servers", s.id, { api_key = K3 })
  ok(not has(json.encode(s), "CANARY"))
  eq(store.reveal(ad, "servers", s.id, "api_key"), K3)
  store.insert(ad, "oauth_tokens", { server_id = s.id, user_id = ad.user_id, access_token = K4, refresh_token = K4 .. "r" })
  ok(not has(json.encode(store.list(ad, "servers")), "CANARY"), "list holds no secret")
  ok(not has(json.encode(store.list(ad, "oauth_tokens")), "CANARY"))
  local sealed = sql(DB, "SELECT api_key FROM servers")
  ok(sealed:match("^v1:k%-%x+:[%w_-]+$"), "sealed format records the key id: " .. sealed)
  -- the scan must read where the rows are: the recent writes sit in the WAL
  -- (this state's connection keeps it open) until a checkpoint moves them
  -- into the database file; the stored ciphertext proves each place was read
  for _, when in ipairs({ "before checkpoint", "after checkpoint" }) do
    local places = { key = slurp(KEY) or "" }
    if PG then places.database = dump(DB)
    else
      local where = when == "before checkpoint" and DB .. "-wal" or DB
      for _, f in ipairs({ DB, DB .. "-wal" }) do
        local bytes = slurp(f)
        ok(bytes, f .. " exists " .. when)
        if f == where then ok(has(bytes, sealed), "the sealed value is in " .. f .. " " .. when) end
        places[f] = bytes or ""
      end
    end
    for what, bytes in pairs(places) do
      for _, k in ipairs({ K1, K2, K3, K4, "CANARY" }) do
        ok(not has(bytes, k), k .. " found in the " .. what .. " " .. when)
      end
    end
    checkpoint(DB)
  end
  if PG then ok(has(dump(DB), sealed), "the dump does hold the sealed value (it reads what is stored)") end
  s = store.update(ad, "servers", s.id, { api_key = json.null })
  eq(s.api_key_set, false, "json.null clears a secret")
  eq(store.reveal(ad, "servers", s.id, "api_key"), nil)
  err("invalid_argument", store.reveal, ad, "servers", s.id, "name")
  err("invalid_argument", store.insert, ad, "servers", { name = "n", api_key = 12 })
end

function C.aad_binding()
  local _, aa = tenant("a")
  local _, ab = tenant("b")
  local s1 = store.insert(aa, "servers", { name = "one", api_key = "first-secret" })
  local s2 = store.insert(aa, "servers", { name = "two", api_key = "second-secret" })
  local s3 = store.insert(ab, "servers", { name = "three", api_key = "third-secret" })
  local c1 = sql(DB, "SELECT api_key FROM servers WHERE id='" .. s1.id .. "'")
  local kid = c1:match("^v1:([^:]+):")
  sql(DB, "UPDATE servers SET api_key='" .. c1 .. "' WHERE id='" .. s2.id .. "'")
  local e = err("key_unavailable", store.reveal, aa, "servers", s2.id, "api_key")
  ok(has(e.message, kid), "names the key id: " .. e.message)
  sql(DB, "UPDATE servers SET api_key='" .. c1 .. "' WHERE id='" .. s3.id .. "'")
  err("key_unavailable", store.reveal, ab, "servers", s3.id, "api_key")
  sql(DB, "UPDATE servers SET oauth_client_secret='" .. c1 .. "' WHERE id='" .. s1.id .. "'")
  err("key_unavailable", store.reveal, aa, "servers", s1.id, "oauth_client_secret")
  eq(store.reveal(aa, "servers", s1.id, "api_key"), "first-secret", "the original still opens")
  -- a flipped byte fails too
  local flipped = c1:sub(1, -3) .. (c1:sub(-2, -2) == "A" and "B" or "A") .. c1:sub(-1)
  sql(DB, "UPDATE servers SET api_key='" .. flipped .. "' WHERE id='" .. s1.id .. "'")
  err("key_unavailable", store.reveal, aa, "servers", s1.id, "api_key")
end

function C.key_missing_and_wrong()
  local _, ad = tenant("acme")
  local s = store.insert(ad, "servers", { name = "gh", api_key = "the-secret" })
  local kid = store.keys_list()[1].kid
  local sealed = sql(DB, "SELECT api_key FROM servers")
  -- missing key file
  local missing = DIR .. "/missing.key"
  assert(reopen({ key = missing }))
  local e = err("key_unavailable", store.reveal, ad, "servers", s.id, "api_key")
  ok(has(e.message, kid), "names the key id: " .. e.message)
  e = err("key_unavailable", store.update, ad, "servers", s.id, { api_key = "new" })
  ok(has(e.message, kid), "writes refused too, naming the key: " .. e.message)
  eq(slurp(missing), nil, "no new key file made while the database holds secrets")
  eq(sql(DB, "SELECT api_key FROM servers"), sealed, "nothing destroyed")
  eq(store.get(ad, "servers", s.id).name, "gh", "plain reads still work")
  -- another key ring
  local other = DIR .. "/other.key"
  assert(reopen({ db = newdb("other"), key = other }))
  local _, ao = tenant("o")
  store.insert(ao, "servers", { name = "o", api_key = "x" })
  assert(reopen({ key = other }))
  e = err("key_unavailable", store.reveal, ad, "servers", s.id, "api_key")
  ok(has(e.message, kid), "names the key id: " .. e.message)
  -- same key id, wrong key material
  local text = slurp(KEY)
  local b64 = text:match("key " .. kid:gsub("%-", "%%-") .. " %d+ ([%w_-]+)")
  ok(b64, "key line found")
  local wrong = DIR .. "/wrong.key"
  local repl = (b64:sub(1, 1) == "A" and "B" or "A") .. b64:sub(2)
  spit(wrong, (text:gsub(b64:gsub("%-", "%%-"), repl)))
  os.execute("chmod 600 " .. wrong)
  assert(reopen({ key = wrong }))
  e = err("key_unavailable", store.reveal, ad, "servers", s.id, "api_key")
  ok(has(e.message, kid) and has(e.message, "cannot decrypt"), e.message)
  -- a key file others can read is refused
  local loose = DIR .. "/loose.key"
  spit(loose, text)
  os.execute("chmod 644 " .. loose)
  local r, je = reopen({ key = loose })
  ok(not r and has(je, "key_unavailable") and has(je, "chmod 600"), "loose key file refused: " .. tostring(je))
  -- the right key again: nothing was lost
  assert(reopen({}))
  eq(store.reveal(ad, "servers", s.id, "api_key"), "the-secret")
  eq(sql(DB, "SELECT api_key FROM servers WHERE id='" .. s.id .. "'"), sealed)
  eq(io.popen("stat -c %a " .. KEY):read("l"), "600", "key file mode")
end

function C.rotation()
  local _, ad = tenant("acme")
  local s = store.insert(ad, "servers", { name = "gh", api_key = "s-api", oauth_client_secret = "s-cs" })
  store.insert(ad, "oauth_tokens", { server_id = s.id, user_id = ad.user_id, access_token = "s-at", refresh_token = "s-rt" })
  store.insert(ad, "oauth_pending", { server_id = s.id, user_id = ad.user_id, state_hash = "h", verifier = "s-v" })
  store.insert(ad, "oauth_clients", { server_id = s.id, issuer = "https://as", client_secret = "s-dcs" })
  local keys = store.keys_list()
  eq(#keys, 1)
  local old = keys[1].kid
  eq(keys[1].secrets, 6)
  eq(keys[1].current, true)
  local r = store.keys_rotate()
  eq(r.previous, old)
  eq(r.reencrypted, 6)
  ok(r.kid ~= old)
  keys = store.keys_list()
  eq(#keys, 2)
  for _, k in ipairs(keys) do
    if k.kid == old then eq(k.secrets, 0); eq(k.current, false)
    else eq(k.kid, r.kid); eq(k.secrets, 6); eq(k.current, true) end
  end
  eq(sql(DB, "SELECT count(*) FROM servers WHERE api_key LIKE 'v1:" .. r.kid .. ":%'"), "1")
  eq(store.reveal(ad, "servers", s.id, "api_key"), "s-api")
  eq(store.reveal(ad, "servers", s.id, "oauth_client_secret"), "s-cs")
  local tok = store.find(ad, "oauth_tokens", { server_id = s.id })
  eq(store.reveal(ad, "oauth_tokens", tok.id, "refresh_token"), "s-rt")
  local e = err("conflict", store.keys_retire, r.kid)
  ok(has(e.message, "current"), e.message)
  err("not_found", store.keys_retire, "k-nope")
  store.keys_retire(old)
  eq(#store.keys_list(), 1)
  ok(not has(slurp(KEY), old), "retired key gone from the file")
  eq(store.reveal(ad, "servers", s.id, "api_key"), "s-api", "still readable")
  -- a secret no key can open: rotation fails and changes nothing
  local r2 = store.keys_rotate()
  local before = sql(DB, "SELECT api_key FROM servers ORDER BY seq")
  local s2 = store.insert(ad, "servers", { name = "bad", api_key = "z" })
  sql(DB, "UPDATE servers SET api_key = 'v1:k-deadbeef0000:AAAA' WHERE id='" .. s2.id .. "'")
  local snap = sql(DB, "SELECT coalesce(api_key,'') || coalesce(oauth_client_secret,'') FROM servers ORDER BY seq")
  e = err("key_unavailable", store.keys_rotate)
  ok(has(e.message, "k-deadbeef0000") and has(e.message, "nothing changed"), e.message)
  eq(sql(DB, "SELECT coalesce(api_key,'') || coalesce(oauth_client_secret,'') FROM servers ORDER BY seq"), snap, "rolled back")
  -- the old current key still seals the good rows, so it cannot be retired
  err("conflict", store.keys_retire, r2.kid)
  -- with the bad row gone, the good rows hold the ciphertexts from before it
  store.delete(ad, "servers", s2.id)
  eq(sql(DB, "SELECT api_key FROM servers ORDER BY seq"), before, "the failed rotation re-sealed nothing")
  -- inside a transaction, rotation is a savepoint of it: rolled back with it
  local ok2 = pcall(store.tx, function() store.keys_rotate(); error({ code = "internal", message = "abort" }) end)
  ok(not ok2)
  eq(sql(DB, "SELECT api_key FROM servers ORDER BY seq"), before, "the rolled-back rotation re-sealed nothing")
  eq(store.reveal(ad, "servers", s.id, "api_key"), "s-api", "rollback left readable secrets")
end

-- secrets opened a moment ago are kept for the next use (keyring.c), never
-- past a change: a value written here or by another writer, a deleted row,
-- a rotated, retired or rewritten key file, another tenant
function C.opened_secrets()
  local _, ad = tenant("acme")
  local _, ob = tenant("other")
  local s = store.insert(ad, "servers", { name = "gh", api_key = "one" })
  eq(opened_count(), 0)
  eq(store.reveal(ad, "servers", s.id, "api_key"), "one")
  eq(opened_count(), 1, "kept once opened")
  eq(store.reveal(ad, "servers", s.id, "api_key"), "one", "and answered from there")
  eq(opened_count(), 1)
  err("not_found", store.reveal, ob, "servers", s.id, "api_key")
  local sealed_one = sql(DB, "SELECT api_key FROM servers WHERE id = '" .. s.id .. "'")
  store.update(ad, "servers", s.id, { api_key = "two" })
  eq(opened_count(), 0, "a value written here wipes the row's kept secret")
  eq(store.reveal(ad, "servers", s.id, "api_key"), "two")
  -- another writer (another instance) puts the first value back: a different sealed text
  sql(DB, "UPDATE servers SET api_key = '" .. sealed_one .. "' WHERE id = '" .. s.id .. "'")
  eq(store.reveal(ad, "servers", s.id, "api_key"), "one", "a value changed elsewhere is opened afresh")
  store.update(ad, "servers", s.id, { api_key = json.null })
  eq(opened_count(), 0, "a value cleared here is wiped")
  eq(store.reveal(ad, "servers", s.id, "api_key"), nil)
  store.update(ad, "servers", s.id, { api_key = "three" })
  eq(store.reveal(ad, "servers", s.id, "api_key"), "three")
  store.delete(ad, "servers", s.id)
  eq(opened_count(), 0, "a deleted row's secret is wiped")
  local s2 = store.insert(ad, "servers", { name = "gh2", api_key = "four" })
  eq(store.reveal(ad, "servers", s2.id, "api_key"), "four")
  local r = store.keys_rotate()
  eq(opened_count(), 0, "rotation wipes them")
  eq(store.reveal(ad, "servers", s2.id, "api_key"), "four")
  store.keys_retire(r.previous)
  eq(opened_count(), 0, "retirement wipes them")
  eq(store.reveal(ad, "servers", s2.id, "api_key"), "four")
  eq(opened_count(), 1)
  -- the key file replaced behind the engine's back (another instance, an operator): the kept
  -- secret is not answered without the key that opens it
  local keyfile = slurp(KEY)
  os.remove(KEY)
  err("key_unavailable", store.reveal, ad, "servers", s2.id, "api_key")
  eq(opened_count(), 0, "a key file that changed wipes them")
  spit(KEY, keyfile)
  os.execute("chmod 600 " .. KEY)
  eq(store.reveal(ad, "servers", s2.id, "api_key"), "four")
  eq(store.reveal(ad, "servers", s2.id, "api_key"), "four")
  eq(opened_count(), 1, "kept again once the key file is read again")
  reopen()
  eq(opened_count(), 0, "a new engine starts with none")
end

-- ---- lists and transactions -------------------------------------------------------

function C.pagination()
  local _, ad = tenant("acme")
  local _, ab = tenant("other")
  for i = 1, 120 do store.insert(ad, "servers", { name = ("s%03d"):format(i), timeout_ms = i % 3 }) end
  for i = 1, 10 do store.insert(ab, "servers", { name = ("o%03d"):format(i) }) end
  local seen, cursor, pages, n = {}, nil, 0, 0
  repeat
    local p = store.list(ad, "servers", { cursor = cursor })
    pages = pages + 1
    ok(json.is_array(p.items))
    for _, s in ipairs(p.items) do
      n = n + 1
      eq(s.name, ("s%03d"):format(n), "creation order")
      ok(not seen[s.id]); seen[s.id] = true
    end
    cursor = p.next_cursor
  until not cursor
  eq(n, 120)
  eq(pages, 3, "50 + 50 + 20")
  local p = store.list(ad, "servers", { limit = 500, where = { timeout_ms = 0 } })
  eq(#p.items, 40, "where filter")
  eq(p.next_cursor, nil)
  eq(#store.list(ad, "servers", { limit = 1 }).items, 1)
  eq(json.encode(store.list(ad, "attachments").items), "[]", "empty list is an array")
  local e = err("invalid_argument", store.list, ad, "servers", { cursor = "xyz" })
  eq(e.field, "cursor")
  err("invalid_argument", store.list, ad, "servers", { cursor = "s12a" })
  e = err("invalid_argument", store.list, ad, "servers", { limit = 0 })
  eq(e.field, "limit")
  err("invalid_argument", store.list, ad, "servers", { limit = 501 })
  -- a cursor from another tenant's list only skips: it never widens the scope
  local bp = store.list(ab, "servers", { limit = 5 })
  for _, s in ipairs(store.list(ad, "servers", { cursor = bp.next_cursor, limit = 500 }).items) do
    eq(s.tenant_id, ad.tenant_id)
  end
end

function C.pagination_100k()
  local t0 = now_ms()
  -- standard SQL (zero padding without printf), so both databases take it
  sql(DB, [[WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
    INSERT INTO tenants (id, name, settings, created_at, updated_at)
    SELECT 'ten_' || substr(CAST(10000 + i AS TEXT), 2), 'tenant' || substr(CAST(10000 + i AS TEXT), 2), '{}', 0, 0 FROM n]])
  -- interleaved: each tenant's servers are spread over the whole table
  sql(DB, [[WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
    INSERT INTO servers (id, tenant_id, name, auth_type, capabilities_status, created_at, updated_at)
    SELECT 'srv_' || substr(CAST(1000000 + i AS TEXT), 2), 'ten_' || substr(CAST(10000 + i % 1000 AS TEXT), 2),
           's' || substr(CAST(1000000 + i AS TEXT), 2), 'none', 'not_discovered', 0, 0 FROM n]])
  io.write(("# seeded 100,000 servers over 1,000 tenants in %.0f ms\n"):format(now_ms() - t0))
  local q = "SELECT id FROM servers WHERE tenant_id = 'ten_0500' AND seq > 10 ORDER BY seq LIMIT 51"
  local plan
  if PG then sql(DB, "ANALYZE servers"); plan = sql(DB, "EXPLAIN " .. q)
  else plan = sql(DB, "EXPLAIN QUERY PLAN " .. q) end
  ok(has(plan, "servers_tenant_seq"), "tenant page uses the (tenant_id, seq) index: " .. tostring(plan))
  local a = { tenant_id = "ten_0500" }
  local times = {}
  for rep = 1, 20 do
    local t1 = now_ms()
    local n, cursor = 0, nil
    repeat
      local p = store.list(a, "servers", { cursor = cursor, limit = 50 })
      for _, s in ipairs(p.items) do
        n = n + 1
        eq(s.tenant_id, "ten_0500")
      end
      cursor = p.next_cursor
    until not cursor
    eq(n, 100, "a tenant's 100 servers")
    times[rep] = now_ms() - t1
  end
  table.sort(times)
  io.write(("# tenant walk (100 servers, 2 pages): median %.3f ms\n"):format(times[10]))
  local t2 = now_ms()
  local p = store.list(a, "servers", { limit = 50 })
  for _ = 1, 1000 do p = store.list(a, "servers", { limit = 50, cursor = p.next_cursor or nil }) end
  io.write(("# 1000 page fetches: %.2f ms each\n"):format((now_ms() - t2) / 1000))
  local t3 = now_ms()
  eq(store.count(a, "servers"), 100)
  io.write(("# tenant count: %.3f ms\n"):format(now_ms() - t3))
  -- the system actor pages the whole table
  local t4 = now_ms()
  local cur, pages = nil, 0
  for _ = 1, 50 do
    local sp = store.list(SYS, "servers", { limit = 500, cursor = cur })
    cur = sp.next_cursor
    pages = pages + 1
  end
  io.write(("# system actor: 50 pages of 500 in %.1f ms\n"):format(now_ms() - t4))
  ok(cur)
  local t5 = now_ms()
  eq(store.find(a, "servers", { name = "s000500" }).id, "srv_000500")
  io.write(("# find by name: %.3f ms\n"):format(now_ms() - t5))
end

-- store.insert_many: many rows per statement, all or none, every check of
-- store.insert (tenant, references, columns, conflicts) still made
function C.insert_many()
  local ta, aa = tenant("a")
  local _, ab = tenant("b")
  local s = store.insert(aa, "servers", { name = "s" })
  local sb = store.insert(ab, "servers", { name = "other" })
  local rows = {}
  for i = 1, 300 do -- several batches and statements
    local def = { name = "t" .. i, inputSchema = { type = "object", properties = { n = { type = "integer" } } }, z = 1, a = json.array() }
    rows[i] = { server_id = s.id, kind = "tool", name = "t" .. i, definition = def, hash = "h" .. i,
                approved_definition = def, approved_hash = "h" .. i, status = "approved" }
  end
  eq(store.insert_many(aa, "capabilities", rows), 300)
  eq(store.count(aa, "capabilities", { server_id = s.id }), 300)
  eq(store.count(ab, "capabilities"), 0, "nothing in the other tenant")
  local ids, cursor, n = {}, nil, 0
  repeat
    local p = store.list(aa, "capabilities", { where = { server_id = s.id }, limit = 100, cursor = cursor })
    for _, r in ipairs(p.items) do
      n = n + 1
      ok(r.id:match("^cap_[a-z2-7]+$"), "id with prefix: " .. r.id)
      ok(not ids[r.id], "ids unique")
      ids[r.id] = true
      eq(r.tenant_id, ta.id)
      ok(json.is_array(r.definition.a), "empty array kept")
      eq(r.approved_definition.inputSchema.properties.n.type, "integer", "the shared table written to both columns")
      ok(r.created_at > 1.6e12)
    end
    cursor = p.next_cursor
  until not cursor
  eq(n, 300)
  -- raw_json: the stored canonical text, keys sorted, not decoded
  local raw = store.list(aa, "capabilities", { where = { server_id = s.id, name = "t7" }, raw_json = true }).items[1]
  eq(type(raw.definition), "string")
  eq(raw.definition, json.encode(rows[7].definition, { sort = true }))
  eq(raw.definition:sub(1, 7), '{"a":[]', "keys sorted")
  -- all or none: a conflict, a foreign reference, other columns, a secret
  local function batch(extra)
    local out = {}
    for i = 1, 100 do out[i] = { server_id = s.id, kind = "tool", name = "u" .. i, definition = {} } end
    for k, v in pairs(extra) do out[k] = v end
    return out
  end
  local e = err("conflict", store.insert_many, aa, "capabilities", batch({ [90] = { server_id = s.id, kind = "tool", name = "t5", definition = {} } }))
  eq(e.message, "a capability with this name already exists")
  e = err("not_found", store.insert_many, aa, "capabilities", batch({ [70] = { server_id = sb.id, kind = "tool", name = "x", definition = {} } }))
  eq(e.field, "server_id", "another tenant's server is as absent as none")
  err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [80] = { server_id = s.id, kind = "tool", name = "y" } }))
  err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [2] = { server_id = s.id, kind = "tool", name = "y", definition = {}, status = "x" } }))
  e = err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [3] = { server_id = s.id, kind = "tool", name = "y", tenant_id = ta.id } }))
  eq(e.field, "tenant_id")
  -- a key that is no column is named, whether the row has more keys than the
  -- first or as many (one of the first row's missing); a row short of one is
  -- the row's error
  e = err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [4] = { server_id = s.id, kind = "tool", name = "y", definition = {}, bogus = 1 } }))
  eq(e.field, "bogus")
  eq(e.message, "store: table 'capabilities' has no column 'bogus'")
  e = err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [5] = { server_id = s.id, kind = "tool", name = "y", bogus = 1 } }))
  eq(e.field, "bogus", "as many keys as the first row, one of them no column")
  e = err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [6] = { server_id = s.id, kind = "tool", name = "y", [7] = 1 } }))
  eq(e.message, "store: column names must be strings")
  e = err("invalid_argument", store.insert_many, aa, "capabilities", batch({ [7] = { server_id = s.id, kind = "tool", name = "y", hash = "h" } }))
  eq(e.message, "store: insert_many row 7 has other columns than the first", "other columns, each of them writable")
  err("invalid_argument", store.insert_many, aa, "servers", { { name = "k", api_key = "secret" } })
  err("invalid_argument", store.insert_many, SYS, "capabilities", { rows[1] })
  eq(store.count(aa, "capabilities"), 300, "no failed batch left a row")
  -- inside a transaction: undone with it
  pcall(store.tx, function()
    store.insert_many(aa, "capabilities", batch({}))
    eq(store.count(aa, "capabilities"), 400)
    error("undo")
  end)
  eq(store.count(aa, "capabilities"), 300, "rolled back with the transaction")
  eq(store.insert_many(aa, "capabilities", {}), 0)
  -- json_text: JSON columns given as their canonical text, stored as they are
  local text = json.canonical({ z = 1, a = json.array(), name = "j1" })
  eq(store.insert_many(aa, "capabilities", {
    { server_id = s.id, kind = "tool", name = "j1", definition = text, approved_definition = json.null, hash = "h" },
  }, { json_text = true }), 1)
  raw = store.list(aa, "capabilities", { where = { server_id = s.id, name = "j1" }, raw_json = true }).items[1]
  eq(raw.definition, text, "the text as given")
  eq(raw.approved_definition, nil, "json.null is NULL")
  local got = store.list(aa, "capabilities", { where = { server_id = s.id, name = "j1" } }).items[1]
  ok(json.is_array(got.definition.a) and got.definition.z == 1, "read back decoded")
  e = err("invalid_argument", store.insert_many, aa, "capabilities",
    { { server_id = s.id, kind = "tool", name = "j2", definition = { a = 1 } } }, { json_text = true })
  eq(e.field, "definition", "a table where text is promised is refused")
  eq(store.count(aa, "capabilities"), 301)
end

-- json.canonical: the canonical text (json.encode with sorted keys) and the
-- part of chosen members cut out of it, equal to encoding that part on its
-- own: what discovery stores and hashes for the approval pin. The hashes
-- below were made by encoding the pinned part on its own (M.hash before
-- json.canonical existed): a stored pin must still match.
local function nasty_defs()
  local big = { name = "big" }
  for i = 1, 70 do big["k" .. string.format("%03d", i)] = i end
  big.title = "T"
  big.inputSchema = { type = "object" }
  return {
    name = "n\0ame",
    title = "ti\"tle\\ \n\r\t\1\31 \127 \195\169 \240\159\152\128 \255\254 bad \237\160\128 end",
    description = json.null,
    inputSchema = { type = "object", required = json.array({ "a" }),
      properties = { b = { type = "integer", default = 1.5 }, a = { enum = json.array(), ["x-mcp-header"] = "X" },
        ["\195\169"] = 1, Z = 2, ["a\0"] = 3, [""] = { { {} } } } },
    annotations = json.object(),
    outputSchema = { 1, {}, json.array(), "s" },
    _meta = { z = 1e300, y = -0.0, x = 2.0 ^ 53, w = 3, v = -7, u = 0.1 },
    extra = "x",
  }, big
end

function C.canonical_json()
  local PIN = { "title", "description", "inputSchema", "outputSchema", "annotations" }
  local function part_of(def, keys) local p = {} for _, k in ipairs(keys) do p[k] = def[k] end return p end
  local function check(def, keys, what)
    local text, part = json.canonical(def, keys)
    eq(text, json.encode(def, { sort = true }), what .. ": the text is the sorted encoding")
    eq(part, json.encode(part_of(def, keys), { sort = true }), what .. ": the part is its own sorted encoding")
    return text, part
  end
  local d, big = nasty_defs()
  local text, part = check(d, PIN, "nasty")
  eq(crypto.sha256(text), "6fdd11eb45a6959adc768c6ced5749e32c3b08e799c66f3c49d5d259b8ddeb1f", "text as before")
  eq(crypto.sha256(part), "da7e5b21cb02443a525985c03f7cedff40b39918e7efdea6d3ede71b9bf19fc0", "pin as before")
  ok(has(text, '"outputSchema":[1,{},[],"s"]'), "empty object and empty array told apart")
  ok(has(text, '\\u0000'), "NUL escaped")
  text, part = check(big, PIN, "more than 64 members")
  eq(crypto.sha256(text), "7392244c66069751161a080e13ddfebcadd097f97469f593ad1af95a84131165")
  eq(crypto.sha256(part), "a06f16ae9c78e5d4adc9a4e2093a74cb7c27b61ba380c21e75cc10c9c067d4c0")
  -- no pinned member, members whose values hold the keys' names, keys in any order and twice
  check({ name = "x", _meta = { title = "not me" } }, PIN, "none pinned")
  eq(select(2, json.canonical({ name = "x" }, PIN)), "{}")
  check({ title = { title = 1, description = "d" }, description = "inner" }, { "title", "description" }, "nested names")
  check(d, { "title", "annotations", "title", "_meta", "name" }, "unsorted keys, repeated")
  check(d, {}, "no keys")
  check(json.object(), PIN, "empty object")
  -- the keys' own table is all that keeps long keys alive: the call holds it
  -- while it encodes, however often the collector runs meanwhile
  local long = string.rep("k", 60)
  local obj = { [long .. "1"] = { 1, 2 }, [long .. "2"] = "v", z = 0 }
  collectgarbage("incremental", 1, 1000)
  for _ = 1, 300 do
    local _, p = json.canonical(obj, { string.rep("k", 60) .. "2", string.rep("k", 60) .. "1" })
    eq(p, '{"' .. long .. '1":[1,2],"' .. long .. '2":"v"}', "long keys kept while encoding")
  end
  collectgarbage("incremental", 200, 100)
  -- without keys: the text alone
  eq(select("#", json.canonical({ b = 1, a = { 2, 3 } })), 1)
  eq(json.canonical({ b = 1, a = { 2, 3 } }), '{"a":[2,3],"b":1}')
  eq(json.canonical("s\n"), '"s\\n"')
  -- keys need an object; bad keys and values are refused, not guessed
  err("invalid_argument", json.canonical, { 1, 2 }, PIN)
  err("invalid_argument", json.canonical, json.array(), PIN)
  err("invalid_argument", json.canonical, "s", PIN)
  err("invalid_argument", json.canonical, { a = 1 }, { 1 })
  err("invalid_argument", json.canonical, { a = 1 }, { "a\0b" })
  err("invalid_argument", json.canonical, { a = 0 / 0 }, PIN)
  err("invalid_argument", json.canonical, { [true] = 1 }, PIN)
end

function C.tx()
  local _, ad = tenant("acme")
  local x, y = store.tx(function(a, b) return a + b, "two" end, 1, 2)
  eq(x, 3); eq(y, "two")
  eq(store.in_tx(), false)
  local raised = { code = "conflict", message = "boom" }
  local okk, e = pcall(store.tx, function()
    eq(store.in_tx(), true)
    store.insert(ad, "servers", { name = "gone" })
    error(raised)
  end)
  ok(not okk)
  ok(e == raised, "the error is raised again unchanged")
  eq(store.find(ad, "servers", { name = "gone" }), nil, "rolled back")
  store.tx(function()
    store.insert(ad, "servers", { name = "kept" })
    local ok2 = pcall(store.tx, function()
      store.insert(ad, "servers", { name = "inner" })
      store.insert(ad, "servers", { name = "kept" }) -- conflict
    end)
    ok(not ok2)
    eq(store.find(ad, "servers", { name = "inner" }), nil, "savepoint rolled back")
  end)
  ok(store.find(ad, "servers", { name = "kept" }), "outer committed")
  eq(store.count(ad, "servers"), 1)
  -- a Lua runtime error rolls back too
  pcall(store.tx, function() store.insert(ad, "servers", { name = "rt" }); local z = nil; return z.x end)
  eq(store.find(ad, "servers", { name = "rt" }), nil)
  eq(store.in_tx(), false)
end

function C.settings_leases_resolve()
  eq(store.setting_get("allow_http"), nil)
  store.setting_set("allow_http", true)
  eq(store.setting_get("allow_http"), true)
  store.setting_set("complex", { a = json.array(), n = 3 })
  local v = store.setting_get("complex")
  ok(json.is_array(v.a)); eq(v.n, 3)
  store.setting_set("allow_http", json.null)
  eq(store.setting_get("allow_http"), nil)
  local t, ad = tenant("acme")
  local r = store.resolve_actor("acme", "admin")
  eq(r.tenant_id, t.id); eq(r.user_id, ad.user_id); eq(r.role, "admin"); eq(r.tenant, "acme"); eq(r.user, "admin")
  eq(store.resolve_actor("acme", "nobody"), nil)
  eq(store.resolve_actor("nope", "admin"), nil)
  ok(store.lease_acquire("refresh:x", "p1", 60000))
  ok(not store.lease_acquire("refresh:x", "p2", 60000), "held by another")
  ok(store.lease_acquire("refresh:x", "p1", 60000), "re-entrant for its holder")
  store.lease_release("refresh:x", "p2")
  ok(not store.lease_acquire("refresh:x", "p2", 60000), "only the holder releases")
  store.lease_release("refresh:x", "p1")
  ok(store.lease_acquire("refresh:x", "p2", 1))
  sql(DB, "UPDATE leases SET expires_at = 0")
  ok(store.lease_acquire("refresh:x", "p3", 1000), "expired lease taken over")
end

-- An op's actor row is read again whenever the database changed since it
-- was last read: by another writer (here a raw connection) or by this one.
function C.resolve_actor_changes()
  local t, ad = tenant("acme")
  local function op() store.op_end(); return store.resolve_actor("acme", "admin") end
  eq(op().role, "admin")
  eq(op().role, "admin", "read twice, unchanged")
  sql(DB, "UPDATE users SET role = 'member' WHERE id = '" .. ad.user_id .. "'")
  eq(op().role, "member", "another writer's change is seen by the next op")
  store.update(SYS, "users", ad.user_id, { role = "admin" })
  eq(op().role, "admin", "this connection's own change too")
  sql(DB, "UPDATE tenants SET settings = '{\"mcp_enabled\":false}' WHERE id = '" .. t.id .. "'")
  eq(op().mcp_enabled, false, "the tenant's row too")
  sql(DB, "DELETE FROM users WHERE id = '" .. ad.user_id .. "'")
  eq(op(), nil, "a removed user is gone at once")
  store.insert(SYS, "users", { tenant_id = t.id, name = "admin", role = "member" })
  eq(op().role, "member", "and one made again is found")
  -- inside a transaction the row is read from the database each time
  store.tx(function()
    store.update(SYS, "users", store.resolve_actor("acme", "admin").user_id, { role = "admin" })
    eq(store.resolve_actor("acme", "admin").role, "admin")
  end)
  eq(op().role, "admin")
end

function C.named_queries()
  local _, ad, me = tenant("acme")
  local lo = classification(ad, "public", 0)
  local hi = classification(ad, "secret", 50)
  local sp = store.insert(ad, "spaces", { name = "sp", classification_id = hi.id })
  local asst = store.insert(me, "assistants", { name = "helper", space_id = sp.id, owner_user_id = me.user_id })
  local s1 = store.insert(ad, "servers", { name = "one", url = "https://one", classification_id = hi.id })
  local s2 = store.insert(ad, "servers", { name = "two", classification_id = lo.id })
  store.insert(ad, "enablements", { server_id = s1.id })
  store.insert(ad, "capability_lists", { server_id = s1.id, kind = "tool", items = '[{"name":"t1"}]' })
  store.insert(ad, "capability_lists", { server_id = s1.id, kind = "prompt", items = '[{"name":"p1"}]' })
  store.insert(ad, "capability_lists", { server_id = s2.id, kind = "tool", items = '[{"name":"t2"}]' })
  store.insert(ad, "capabilities", { server_id = s2.id, kind = "tool", name = "t2", hash = "h2",
                                     approved_definition = { name = "t2", inputSchema = { type = "object" } }, approved_hash = "h1", status = "pending" })
  store.insert(ad, "capabilities", { server_id = s1.id, kind = "tool", name = "gone", status = "approved" })
  store.insert(me, "attachments", { assistant_id = asst.id, server_id = s1.id })
  store.insert(me, "attachments", { assistant_id = asst.id, server_id = s2.id })
  local rows = store.query(me, "assistant_servers", { assistant_id = asst.id })
  eq(#rows, 2)
  eq(rows[1].server_id, s1.id); eq(rows[1].enabled, true); eq(rows[1].url_set, true)
  eq(rows[1].classification_level, 50); eq(rows[1].classification_name, "secret")
  eq(rows[2].enabled, false); eq(rows[2].url_set, false); eq(rows[2].classification_level, 0)
  local lists = store.query(me, "assistant_tool_lists", { assistant_id = asst.id })
  eq(#lists, 2, "tool lists only, of both servers, in attachment order")
  eq(lists[1].server_id, s1.id); eq(lists[1].items, '[{"name":"t1"}]', "the text, not decoded")
  eq(lists[2].server_id, s2.id); eq(lists[2].items, '[{"name":"t2"}]')
  eq(#store.query(SYS, "assistant_tool_lists", { assistant_id = asst.id }), 2)
  local pend = store.query(me, "assistant_pending_tools", { assistant_id = asst.id })
  eq(#pend, 1, "only the tools awaiting approval")
  eq(pend[1].server_id, s2.id); eq(pend[1].name, "t2"); eq(pend[1].approved_definition.inputSchema.type, "object")
  local _, other = tenant("other")
  eq(#store.query(other, "assistant_tool_lists", { assistant_id = asst.id }), 0, "another tenant's are not seen")
  eq(#store.query(other, "assistant_pending_tools", { assistant_id = asst.id }), 0)
  err("conflict", store.insert, ad, "capability_lists", { server_id = s1.id, kind = "tool", items = "[]" })
  err("invalid_argument", store.insert, ad, "capability_lists", { server_id = s1.id, kind = "widget", items = "[]" })
  err("invalid_argument", store.query, me, "nope", {})
  local e = err("invalid_argument", store.query, me, "assistant_tool_lists", {})
  eq(e.field, "assistant_id")
end

function C.audit_append_only()
  local t = tenant("acme")
  local r = store.insert(SYS, "audit", { tenant_id = json.null, at = 1, actor = "system", op = "tenant.create",
                                         outcome = "ok", detail = { fields = json.array({ "name" }) } })
  eq(r.tenant_id, nil)
  store.insert(SYS, "audit", { tenant_id = t.id, at = 2, actor = "acme/admin", op = "server.create", outcome = "ok" })
  eq(store.count(SYS, "audit"), 2)
  eq(store.count(SYS, "audit", { tenant_id = t.id }), 1)
  eq(store.count(SYS, "audit", { tenant_id = json.null }), 1)
  err("invalid_argument", store.update, SYS, "audit", r.id, { outcome = "forged" })
  err("invalid_argument", store.delete, SYS, "audit", r.id)
  local okk = pcall(sql, DB, "UPDATE audit SET outcome = 'forged'")
  ok(not okk, "append-only below the binding too")
  okk = pcall(sql, DB, "DELETE FROM audit")
  ok(not okk)
  eq(store.count(SYS, "audit"), 2)
end

-- ---- read cache ------------------------------------------------------------------

-- The cache keeps rows under the change counters an op read with its actor
-- (store.resolve_actor); store.op_end ends an op. A raw UPDATE here is
-- another writer; putting the counter back by hand shows the cache is used.
function C.read_cache()
  local ta, aa = tenant("acme")
  local _, ab = tenant("other")
  local s = store.insert(aa, "servers", { name = "one", api_key = "k1" })
  local function version() return sql(DB, "SELECT version FROM tenants WHERE id = '" .. ta.id .. "'") end
  local function op() store.op_end(); return store.resolve_actor("acme", "admin") end
  -- another writer's commit moves the counter: the next op sees the change
  local a = op()
  eq(store.get(a, "servers", s.id).name, "one")
  local v = version()
  sql(DB, "UPDATE servers SET name = 'two' WHERE id = '" .. s.id .. "'")
  ok(version() ~= v, "a change made outside the store moves the tenant's counter")
  a = op()
  eq(store.get(a, "servers", s.id).name, "two", "the next op reads the change")
  eq(store.find(a, "servers", { name = "two" }).id, s.id)
  eq(#store.list(a, "servers").items, 1)
  eq(#store.query(a, "assistant_servers", { assistant_id = "ast_none" }), 0)
  -- the same counter: rows come from the cache (the counter put back by hand)
  v = version()
  sql(DB, "UPDATE servers SET name = 'three' WHERE id = '" .. s.id .. "'")
  sql(DB, "UPDATE tenants SET version = " .. v .. " WHERE id = '" .. ta.id .. "'")
  a = op()
  eq(store.get(a, "servers", s.id).name, "two", "an unchanged counter: the cached row")
  eq(store.find(a, "servers", { name = "two" }).id, s.id, "find too")
  eq(store.list(a, "servers").items[1].name, "two", "list too")
  -- rows are rebuilt on every use: a caller's change stays its own
  local g = store.get(a, "servers", s.id)
  g.name = "mine"
  eq(store.get(a, "servers", s.id).name, "two", "cached rows are copies")
  -- never across tenants, never for the system actor, never for the audit log
  err("not_found", store.get, ab, "servers", s.id)
  eq(store.get(SYS, "servers", s.id).name, "three", "the system actor reads the database")
  -- a write, a transaction or a lease ends the cache for the rest of the op
  for _, stop in ipairs({
    function() store.update(a, "servers", s.id, { description = "d" }) end,
    function() store.tx(function() end) end,
    function() store.lease_acquire("k", "h", 1000) end,
  }) do
    sql(DB, "UPDATE servers SET name = 'three' WHERE id = '" .. s.id .. "'")
    v = version()
    sql(DB, "UPDATE servers SET name = 'two' WHERE id = '" .. s.id .. "'")
    sql(DB, "UPDATE tenants SET version = " .. v .. " WHERE id = '" .. ta.id .. "'")
    a = op()
    eq(store.get(a, "servers", s.id).name, "two")
    sql(DB, "UPDATE servers SET name = 'three' WHERE id = '" .. s.id .. "'")
    sql(DB, "UPDATE tenants SET version = " .. v .. " WHERE id = '" .. ta.id .. "'")
    stop()
    eq(store.get(a, "servers", s.id).name, "three", "after a write, transaction or lease the op reads afresh")
  end
  -- without store.resolve_actor in this op, nothing is cached
  store.op_end()
  sql(DB, "UPDATE servers SET name = 'four' WHERE id = '" .. s.id .. "'")
  eq(store.get(aa, "servers", s.id).name, "four", "no resolved actor: the database")
  -- settings: their own counter
  store.setting_set("allow_http", true)
  a = op()
  eq(store.setting_get("allow_http"), true)
  sql(DB, "UPDATE settings SET value = 'false' WHERE key = 'allow_http'")
  a = op()
  eq(store.setting_get("allow_http"), false, "a settings change moves the settings counter")
  local sv = sql(DB, "SELECT n FROM store_versions WHERE name = 'settings'")
  sql(DB, "UPDATE settings SET value = 'true' WHERE key = 'allow_http'")
  sql(DB, "UPDATE store_versions SET n = " .. sv .. " WHERE name = 'settings'")
  a = op()
  eq(store.setting_get("allow_http"), false, "an unchanged settings counter: cached")
  store.op_end()
  eq(store.setting_get("allow_http"), true, "outside a resolved op: the database")
  -- every versioned table moves the counter (a cascade too)
  v = version()
  store.delete(aa, "servers", s.id)
  ok(version() ~= v, "a delete moves the counter")
end

-- ---- crypto module --------------------------------------------------------------

function C.crypto_module()
  eq(crypto.sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  eq(crypto.hmac_sha256("Jefe", "what do ya want for nothing?"),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC 4231 case 2")
  eq(#crypto.hmac_sha256("k", "s", "raw"), 32)
  eq(crypto.base64url_encode(""), "")
  eq(crypto.base64url_encode("\251\255"), "-_8")
  eq(crypto.base64_encode("\251\255"), "+/8=")
  local all = {}
  for i = 0, 255 do all[#all + 1] = string.char(i) end
  all = table.concat(all)
  for n = 0, 7 do
    local s = all:sub(1, 250 + n)
    eq(crypto.base64url_decode(crypto.base64url_encode(s)), s, "round trip " .. n)
  end
  eq(crypto.base64url_decode("YQ=="), "a", "padding tolerated")
  eq(crypto.base64url_decode("a+b/"), nil, "standard alphabet refused")
  eq(crypto.base64url_decode("YR"), nil, "non-canonical trailing bits refused")
  local v, ch = crypto.pkce()
  eq(#v, 43)
  ok(v:match("^[%w_-]+$"))
  eq(ch, crypto.sha256_b64url(v), "S256 challenge")
  -- RFC 7636 appendix B
  eq(crypto.sha256_b64url("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
  eq(#crypto.random_token(), 43)
  eq(#crypto.random_token(16), 22)
  eq(#crypto.random(16), 16)
  ok(crypto.random(16) ~= crypto.random(16))
  ok(crypto.constant_time_equal("abc", "abc"))
  ok(not crypto.constant_time_equal("abc", "abd"))
  ok(not crypto.constant_time_equal("abc", "ab"))
  err("invalid_argument", crypto.random, 0)
end

return C
