/* store_schema.c: the tables the store knows (columns, types, references,
 * scoping) and the versioned migrations that create them, per dialect. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store.h"

#define T(n, ty) {n, ty, NULL}
#define R(n, ref) {n, ST_TEXT, ref}
#define END {NULL, ST_TEXT, NULL}

static const store_col tenants_cols[] = {T("name", ST_TEXT), T("settings", ST_JSON), END};
static const store_col users_cols[] = {T("name", ST_TEXT), T("role", ST_TEXT), END};
static const store_col classifications_cols[] = {
  T("name", ST_TEXT), T("level", ST_INT), T("description", ST_TEXT), END};
static const store_col spaces_cols[] = {
  T("name", ST_TEXT), R("classification_id", "classifications"), END};
static const store_col assistants_cols[] = {
  T("name", ST_TEXT), R("space_id", "spaces"), R("owner_user_id", "users"), END};
static const store_col servers_cols[] = {
  T("name", ST_TEXT), T("description", ST_TEXT), T("description_source", ST_TEXT),
  T("url", ST_TEXT), T("auth_type", ST_TEXT), T("api_key", ST_SECRET),
  T("oauth_client_id", ST_TEXT), T("oauth_client_secret", ST_SECRET),
  T("oauth_authorization_url", ST_TEXT), T("oauth_token_url", ST_TEXT),
  T("oauth_revocation_url", ST_TEXT), T("oauth_scopes", ST_JSON),
  T("oauth_registration_mode", ST_TEXT), T("oauth_issuer", ST_TEXT),
  T("oauth_metadata", ST_JSON), R("classification_id", "classifications"),
  T("timeout_ms", ST_INT), T("capabilities_status", ST_TEXT), T("discovered_at", ST_INT),
  T("server_info", ST_JSON), T("created_by", ST_TEXT),
  /* added by migration 2 */
  T("protocol_era", ST_TEXT), T("protocol_version", ST_TEXT), T("discovery_error", ST_JSON),
  END};
static const store_col capabilities_cols[] = {
  R("server_id", "servers"), T("kind", ST_TEXT), T("name", ST_TEXT), T("definition", ST_JSON),
  T("hash", ST_TEXT), T("approved_definition", ST_JSON), T("approved_hash", ST_TEXT),
  T("status", ST_TEXT), END};
/* added by migration 7: a server's list of one kind, as text (lua/capabilities.lua) */
static const store_col capability_lists_cols[] = {
  R("server_id", "servers"), T("kind", ST_TEXT), T("items", ST_TEXT), END};
static const store_col enablements_cols[] = {R("server_id", "servers"), T("enabled_by", ST_TEXT), END};
static const store_col attachments_cols[] = {
  R("assistant_id", "assistants"), R("server_id", "servers"), END};
static const store_col oauth_tokens_cols[] = {
  R("server_id", "servers"), R("user_id", "users"), T("access_token", ST_SECRET),
  T("refresh_token", ST_SECRET), T("expires_at", ST_INT), T("scopes", ST_JSON),
  T("issuer", ST_TEXT), T("token_type", ST_TEXT),
  /* added by migration 3 */
  T("step_up", ST_JSON), END};
static const store_col oauth_pending_cols[] = {
  R("server_id", "servers"), R("user_id", "users"), T("state_hash", ST_TEXT),
  T("verifier", ST_SECRET), T("redirect_uri", ST_TEXT), T("scopes", ST_JSON),
  T("resource", ST_TEXT), T("issuer", ST_TEXT), T("expires_at", ST_INT), END};
static const store_col oauth_clients_cols[] = {
  R("server_id", "servers"), T("issuer", ST_TEXT), T("client_id", ST_TEXT),
  T("client_secret", ST_SECRET), T("registration", ST_JSON), END};
static const store_col continuations_cols[] = {
  R("server_id", "servers"), R("user_id", "users"), R("assistant_id", "assistants"),
  T("kind", ST_TEXT), T("target", ST_TEXT), T("token_hash", ST_TEXT), T("state", ST_SECRET),
  T("expires_at", ST_INT), END};
static const store_col audit_cols[] = {
  T("at", ST_INT), T("actor", ST_TEXT), T("op", ST_TEXT), T("target", ST_TEXT),
  T("outcome", ST_TEXT), T("detail", ST_JSON), END};

/*  name, noun, prefix, scoped, null_tenant, system_only, append_only, cols */
static store_table tables[] = {
  {"tenants", "tenant", "ten_", 0, 0, 1, 0, tenants_cols, "", 0},
  {"users", "user", "usr_", 1, 0, 0, 0, users_cols, "", 0},
  {"classifications", "classification", "cls_", 1, 0, 0, 0, classifications_cols, "", 0},
  {"spaces", "space", "spc_", 1, 0, 0, 0, spaces_cols, "", 0},
  {"assistants", "assistant", "ast_", 1, 0, 0, 0, assistants_cols, "", 0},
  {"servers", "server", "srv_", 1, 0, 0, 0, servers_cols, "", 0},
  {"capabilities", "capability", "cap_", 1, 0, 0, 0, capabilities_cols, "", 0},
  {"capability_lists", "capability list", "cpl_", 1, 0, 0, 0, capability_lists_cols, "", 0},
  {"enablements", "enablement", "enb_", 1, 0, 0, 0, enablements_cols, "", 0},
  {"attachments", "attachment", "att_", 1, 0, 0, 0, attachments_cols, "", 0},
  {"oauth_tokens", "OAuth token", "otk_", 1, 0, 0, 0, oauth_tokens_cols, "", 0},
  {"oauth_pending", "pending OAuth authorization", "opa_", 1, 0, 0, 0, oauth_pending_cols, "", 0},
  {"oauth_clients", "OAuth client", "ocl_", 1, 0, 0, 0, oauth_clients_cols, "", 0},
  {"audit", "audit record", "aud_", 1, 1, 0, 1, audit_cols, "", 0},
  {"continuations", "continuation", "cnt_", 1, 0, 0, 0, continuations_cols, "", 0},
};
#define NTABLES ((int)(sizeof tables / sizeof tables[0]))

static pthread_once_t schema_once = PTHREAD_ONCE_INIT;

/* Secrets are selected as 0/1 ("is it set"): the sealed text never even
 * reaches the row-building code. CASE gives an integer in every dialect. */
static void build_select_lists(void) {
  for (int i = 0; i < NTABLES; i++) {
    store_table *t = &tables[i];
    size_t n = (size_t)snprintf(t->select_list, sizeof t->select_list, "id,%screated_at,updated_at",
                                t->scoped ? "tenant_id," : "");
    for (const store_col *c = t->cols; c->name; c++, t->ncols++) {
      if (c->type == ST_SECRET)
        n += (size_t)snprintf(t->select_list + n, sizeof t->select_list - n,
                              ",CASE WHEN %s IS NULL THEN 0 ELSE 1 END", c->name);
      else
        n += (size_t)snprintf(t->select_list + n, sizeof t->select_list - n, ",%s", c->name);
    }
  }
}

void store_schema_init(void) { pthread_once(&schema_once, build_select_lists); }

store_table *store_table_find(const char *name) {
  for (int i = 0; name && i < NTABLES; i++)
    if (strcmp(tables[i].name, name) == 0) return &tables[i];
  return NULL;
}

const store_col *store_col_find(const store_table *t, const char *name) {
  for (const store_col *c = t->cols; name && c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

store_table *store_tables(int *n) { *n = NTABLES; return tables; }

/* ---- migrations ---------------------------------------------------------------
 * Append only: never edit a released step; add a new one. Each step is one
 * text written for both dialects (the same tables, columns, constraints and
 * indexes; only types and trigger syntax differ) and runs inside the
 * migration transaction. SQLite records the step reached in PRAGMA
 * user_version, PostgreSQL in mcplink_meta (store_pg.c). Every entity has
 * seq (integer key, keyset pagination), id (random text, what callers see),
 * created_at and updated_at (unix ms). */

#define SQ_ENTITY "seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
#define PG_ENTITY "seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
#define TENANT "tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE, "
#define STAMPS_OF(INT) "created_at " INT " NOT NULL, updated_at " INT " NOT NULL"
#define TSEQ(t) "CREATE INDEX " t "_tenant_seq ON " t "(tenant_id, seq);\n"

/* 1: every table. ENTITY, STAMPS and INT (INTEGER in SQLite, BIGINT in
 * PostgreSQL: unix milliseconds need 64 bits) come from the dialect. */
#define MIGRATION_1(ENTITY, STAMPS, INT) \
  "CREATE TABLE tenants (" ENTITY "name TEXT NOT NULL UNIQUE, settings TEXT, " STAMPS ");\n" \
  "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at " INT " NOT NULL);\n" \
  "CREATE TABLE users (" ENTITY TENANT "name TEXT NOT NULL, " \
  "  role TEXT NOT NULL DEFAULT 'member' CONSTRAINT role CHECK (role IN ('admin','member')), " \
  STAMPS ", UNIQUE (tenant_id, name));\n" TSEQ("users") \
  "CREATE TABLE classifications (" ENTITY TENANT "name TEXT NOT NULL, level " INT " NOT NULL, " \
  "  description TEXT, " STAMPS ", UNIQUE (tenant_id, name), UNIQUE (tenant_id, level));\n" \
  TSEQ("classifications") \
  "CREATE TABLE spaces (" ENTITY TENANT "name TEXT NOT NULL, " \
  "  classification_id TEXT NOT NULL REFERENCES classifications(id) ON DELETE RESTRICT, " \
  STAMPS ", UNIQUE (tenant_id, name));\n" TSEQ("spaces") \
  "CREATE INDEX spaces_classification ON spaces(classification_id);\n" \
  "CREATE TABLE assistants (" ENTITY TENANT "name TEXT NOT NULL, " \
  "  space_id TEXT REFERENCES spaces(id) ON DELETE RESTRICT, " \
  "  owner_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, " STAMPS ");\n" \
  TSEQ("assistants") \
  "CREATE INDEX assistants_space ON assistants(space_id);\n" \
  "CREATE INDEX assistants_owner ON assistants(owner_user_id);\n" \
  "CREATE TABLE servers (" ENTITY TENANT "name TEXT NOT NULL, description TEXT, " \
  "  description_source TEXT CONSTRAINT description_source CHECK (description_source IN ('admin','server')), " \
  "  url TEXT, auth_type TEXT NOT NULL DEFAULT 'none' " \
  "    CONSTRAINT auth_type CHECK (auth_type IN ('none','api_key','oauth')), " \
  "  api_key TEXT, oauth_client_id TEXT, oauth_client_secret TEXT, oauth_authorization_url TEXT, " \
  "  oauth_token_url TEXT, oauth_revocation_url TEXT, oauth_scopes TEXT, " \
  "  oauth_registration_mode TEXT, oauth_issuer TEXT, oauth_metadata TEXT, " \
  "  classification_id TEXT REFERENCES classifications(id) ON DELETE RESTRICT, " \
  "  timeout_ms " INT ", capabilities_status TEXT NOT NULL DEFAULT 'not_discovered', " \
  "  discovered_at " INT ", server_info TEXT, created_by TEXT, " STAMPS ", " \
  "  UNIQUE (tenant_id, name));\n" TSEQ("servers") \
  "CREATE INDEX servers_classification ON servers(classification_id);\n" \
  "CREATE TABLE capabilities (" ENTITY TENANT \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " \
  "  kind TEXT NOT NULL CONSTRAINT kind CHECK (kind IN ('tool','resource','resource_template','prompt')), " \
  "  name TEXT NOT NULL, definition TEXT, hash TEXT, approved_definition TEXT, approved_hash TEXT, " \
  "  status TEXT NOT NULL DEFAULT 'approved' CONSTRAINT status CHECK (status IN ('approved','pending')), " \
  STAMPS ", UNIQUE (server_id, kind, name));\n" TSEQ("capabilities") \
  "CREATE TABLE enablements (" ENTITY TENANT \
  "  server_id TEXT NOT NULL UNIQUE REFERENCES servers(id) ON DELETE CASCADE, " \
  "  enabled_by TEXT, " STAMPS ");\n" TSEQ("enablements") \
  "CREATE TABLE attachments (" ENTITY TENANT \
  "  assistant_id TEXT NOT NULL REFERENCES assistants(id) ON DELETE CASCADE, " \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " STAMPS ", " \
  "  UNIQUE (assistant_id, server_id));\n" TSEQ("attachments") \
  "CREATE INDEX attachments_server ON attachments(server_id);\n" \
  "CREATE TABLE oauth_tokens (" ENTITY TENANT \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " \
  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, " \
  "  access_token TEXT, refresh_token TEXT, expires_at " INT ", scopes TEXT, issuer TEXT, " \
  "  token_type TEXT, " STAMPS ", UNIQUE (server_id, user_id));\n" TSEQ("oauth_tokens") \
  "CREATE INDEX oauth_tokens_user ON oauth_tokens(user_id);\n" \
  "CREATE TABLE oauth_pending (" ENTITY TENANT \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " \
  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, " \
  "  state_hash TEXT NOT NULL UNIQUE, verifier TEXT, redirect_uri TEXT, scopes TEXT, " \
  "  resource TEXT, issuer TEXT, expires_at " INT ", " STAMPS ");\n" TSEQ("oauth_pending") \
  "CREATE INDEX oauth_pending_server ON oauth_pending(server_id);\n" \
  "CREATE INDEX oauth_pending_user ON oauth_pending(user_id);\n" \
  "CREATE TABLE oauth_clients (" ENTITY TENANT \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " \
  "  issuer TEXT NOT NULL, client_id TEXT, client_secret TEXT, registration TEXT, " STAMPS ", " \
  "  UNIQUE (server_id, issuer));\n" TSEQ("oauth_clients") \
  /* audit: no foreign keys, so records outlive what they describe */ \
  "CREATE TABLE audit (" ENTITY "tenant_id TEXT, at " INT " NOT NULL, actor TEXT NOT NULL, " \
  "  op TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, detail TEXT, " STAMPS ");\n" \
  TSEQ("audit")

/* The audit log is append-only in the database itself. */
static const char MIGRATION_1_SQLITE[] = MIGRATION_1(SQ_ENTITY, STAMPS_OF("INTEGER"), "INTEGER")
  "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
  "  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;\n"
  "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
  "  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;\n";
static const char MIGRATION_1_PG[] = MIGRATION_1(PG_ENTITY, STAMPS_OF("BIGINT"), "BIGINT")
  "CREATE FUNCTION mcplink_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
  "  BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;\n"
  "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
  "  FOR EACH ROW EXECUTE FUNCTION mcplink_append_only();\n"
  "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
  "  FOR EACH STATEMENT EXECUTE FUNCTION mcplink_append_only();\n";

/* 2: what discovery records about the protocol, and database leases for
 * single-flight work across processes (OAuth refresh). */
#define MIGRATION_2(INT) \
  "ALTER TABLE servers ADD COLUMN protocol_era TEXT;\n" \
  "ALTER TABLE servers ADD COLUMN protocol_version TEXT;\n" \
  "ALTER TABLE servers ADD COLUMN discovery_error TEXT;\n" \
  "CREATE TABLE leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at " INT " NOT NULL);\n"

/* 3: a user's pending OAuth step-up (scopes a 403 insufficient_scope asked
 * for, and how many re-authorizations were tried). */
#define MIGRATION_3 "ALTER TABLE oauth_tokens ADD COLUMN step_up TEXT;\n"

/* 4: change counters for the read cache (store_cache.c): tenants.version
 * counts committed changes to the tenant's records (every table an op may
 * read through the cache), store_versions 'settings' those to the system
 * settings. Triggers keep them, so a change made by any instance, process
 * or hand-written SQL moves them; an op reads both with its actor (one
 * query) and uses cached rows only when they match. PostgreSQL bumps once
 * per transaction, at commit (a deferred trigger), so the tenant row is
 * locked last and briefly. */
#define VERSIONED(X) X("users") X("classifications") X("spaces") X("assistants") X("servers") \
  X("capabilities") X("enablements") X("attachments") X("oauth_tokens") X("oauth_clients")
/* tables added later get their triggers in their own step */
#define VERSIONED_SINCE_7(X) X("capability_lists")
#define SQ_BUMP(t) \
  "CREATE TRIGGER " t "_v_ins AFTER INSERT ON " t \
  " BEGIN UPDATE tenants SET version = version + 1 WHERE id = NEW.tenant_id; END;\n" \
  "CREATE TRIGGER " t "_v_upd AFTER UPDATE ON " t \
  " BEGIN UPDATE tenants SET version = version + 1 WHERE id = NEW.tenant_id; END;\n" \
  "CREATE TRIGGER " t "_v_del AFTER DELETE ON " t \
  " BEGIN UPDATE tenants SET version = version + 1 WHERE id = OLD.tenant_id; END;\n"
#define PG_BUMP(t) \
  "CREATE CONSTRAINT TRIGGER " t "_version AFTER INSERT OR UPDATE OR DELETE ON " t \
  " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mcplink_bump_tenant();\n"
#define SETTINGS_VERSION(INT) \
  "ALTER TABLE tenants ADD COLUMN version " INT " NOT NULL DEFAULT 0;\n" \
  "CREATE TABLE store_versions (name TEXT PRIMARY KEY, n " INT " NOT NULL);\n" \
  "INSERT INTO store_versions (name, n) VALUES ('settings', 0);\n"
static const char MIGRATION_4_SQLITE[] = SETTINGS_VERSION("INTEGER") VERSIONED(SQ_BUMP)
  "CREATE TRIGGER settings_v_ins AFTER INSERT ON settings"
  " BEGIN UPDATE store_versions SET n = n + 1 WHERE name = 'settings'; END;\n"
  "CREATE TRIGGER settings_v_upd AFTER UPDATE ON settings"
  " BEGIN UPDATE store_versions SET n = n + 1 WHERE name = 'settings'; END;\n"
  "CREATE TRIGGER settings_v_del AFTER DELETE ON settings"
  " BEGIN UPDATE store_versions SET n = n + 1 WHERE name = 'settings'; END;\n";
static const char MIGRATION_4_PG[] = SETTINGS_VERSION("BIGINT")
  "CREATE FUNCTION mcplink_bump_tenant() RETURNS trigger LANGUAGE plpgsql AS $$\n"
  "DECLARE tid text; flag text;\n"
  "BEGIN\n"
  "  IF TG_OP = 'DELETE' THEN tid := OLD.tenant_id; ELSE tid := NEW.tenant_id; END IF;\n"
  "  flag := 'mcplink.bumped_' || md5(tid);\n"
  "  IF current_setting(flag, true) IS DISTINCT FROM '1' THEN\n"
  "    UPDATE tenants SET version = version + 1 WHERE id = tid;\n"
  "    PERFORM set_config(flag, '1', true);\n"
  "  END IF;\n"
  "  RETURN NULL;\n"
  "END $$;\n"
  VERSIONED(PG_BUMP)
  "CREATE FUNCTION mcplink_bump_settings() RETURNS trigger LANGUAGE plpgsql AS $$\n"
  "BEGIN UPDATE store_versions SET n = n + 1 WHERE name = 'settings'; RETURN NULL; END $$;\n"
  "CREATE TRIGGER settings_version AFTER INSERT OR UPDATE OR DELETE ON settings"
  " FOR EACH STATEMENT EXECUTE FUNCTION mcplink_bump_settings();\n";

/* 6: calls that wait for their user's answers (tool.continue and its kin):
 * bound to the tenant, user, assistant, server and target, found by the
 * hash of the token the host holds, the call's state sealed, expiring. */
#define MIGRATION_6(ENTITY, INT) \
  "CREATE TABLE continuations (" ENTITY TENANT \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " \
  "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, " \
  "  assistant_id TEXT NOT NULL REFERENCES assistants(id) ON DELETE CASCADE, " \
  "  kind TEXT NOT NULL CONSTRAINT kind CHECK (kind IN ('tool','prompt','resource')), " \
  "  target TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, state TEXT, expires_at " INT " NOT NULL, " \
  "  created_at " INT " NOT NULL, updated_at " INT " NOT NULL);\n" TSEQ("continuations") \
  "CREATE INDEX continuations_user ON continuations(user_id);\n" \
  "CREATE INDEX continuations_server ON continuations(server_id);\n" \
  "CREATE INDEX continuations_assistant ON continuations(assistant_id);\n"

/* The tables whose changes move tenants.version: the only ones the read
 * cache may keep rows of (the same list as the triggers). */
#define NAME_OF(t) t,
static const char *const versioned[] = {VERSIONED(NAME_OF) VERSIONED_SINCE_7(NAME_OF) NULL};

int store_table_cached(const store_table *t) {
  for (int i = 0; versioned[i]; i++)
    if (strcmp(versioned[i], t->name) == 0) return 1;
  return 0;
}

/* 5: auth_type's CHECK is the shape of a name (lowercase letters, digits and
 * underscores, a letter first, at most 32) instead of a list, so adding an
 * auth type (lua/authtypes.lua, the authority on which exist) needs no table
 * rebuild again. PostgreSQL replaces the constraint. SQLite cannot change a
 * CHECK in place: the table is rebuilt as sqlite.org/lang_altertable.html
 * ("Making Other Kinds Of Table Schema Changes") says, inside the migration
 * transaction, with foreign keys off so dropping the old table cascades
 * nothing, and every reference checked before commit (store_sqlite.c);
 * the rows keep their seq and id, so every reference to them still holds.
 * The new table is servers as steps 1 and 2 left it, column for column. */
#define SERVER_COLUMNS \
  "seq, id, tenant_id, name, description, description_source, url, auth_type, api_key, " \
  "oauth_client_id, oauth_client_secret, oauth_authorization_url, oauth_token_url, " \
  "oauth_revocation_url, oauth_scopes, oauth_registration_mode, oauth_issuer, oauth_metadata, " \
  "classification_id, timeout_ms, capabilities_status, discovered_at, server_info, created_by, " \
  "created_at, updated_at, protocol_era, protocol_version, discovery_error"
static const char MIGRATION_5_SQLITE[] =
  "CREATE TABLE servers_new (" SQ_ENTITY TENANT "name TEXT NOT NULL, description TEXT, "
  "  description_source TEXT CONSTRAINT description_source CHECK (description_source IN ('admin','server')), "
  "  url TEXT, auth_type TEXT NOT NULL DEFAULT 'none' "
  "    CONSTRAINT auth_type CHECK (length(auth_type) <= 32 AND auth_type GLOB '[a-z]*' "
  "      AND auth_type NOT GLOB '*[^a-z0-9_]*'), "
  "  api_key TEXT, oauth_client_id TEXT, oauth_client_secret TEXT, oauth_authorization_url TEXT, "
  "  oauth_token_url TEXT, oauth_revocation_url TEXT, oauth_scopes TEXT, "
  "  oauth_registration_mode TEXT, oauth_issuer TEXT, oauth_metadata TEXT, "
  "  classification_id TEXT REFERENCES classifications(id) ON DELETE RESTRICT, "
  "  timeout_ms INTEGER, capabilities_status TEXT NOT NULL DEFAULT 'not_discovered', "
  "  discovered_at INTEGER, server_info TEXT, created_by TEXT, " STAMPS_OF("INTEGER") ", "
  "  protocol_era TEXT, protocol_version TEXT, discovery_error TEXT, "
  "  UNIQUE (tenant_id, name));\n"
  "INSERT INTO servers_new (" SERVER_COLUMNS ") SELECT " SERVER_COLUMNS " FROM servers;\n"
  "DROP TABLE servers;\n"
  "ALTER TABLE servers_new RENAME TO servers;\n"
  /* what dropping the old table took with it: its indexes and triggers */
  TSEQ("servers")
  "CREATE INDEX servers_classification ON servers(classification_id);\n"
  SQ_BUMP("servers");
static const char MIGRATION_5_PG[] =
  "ALTER TABLE servers DROP CONSTRAINT auth_type, ADD CONSTRAINT auth_type "
  "  CHECK ((auth_type COLLATE \"C\") ~ '^[a-z][a-z0-9_]{0,31}$');\n";

/* 7: a server's capabilities of one kind as one row (lua/capabilities.lua):
 * items, the definitions as one JSON array of their canonical texts in the
 * server's order. A row per capability made a first discovery of thousands
 * of tools mostly the writing of rows. capabilities keeps rows only for
 * tools awaiting an admin's approval (status 'pending': the approved
 * definition and hash). The stored rows become lists, the pending ones
 * staying as well: no approval is lost. Items keep their stored order
 * (SQLite: the aggregate reads the ordered subquery). */
#define CAPABILITY_LISTS(ENTITY, INT) \
  "CREATE TABLE capability_lists (" ENTITY TENANT \
  "  server_id TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE, " \
  "  kind TEXT NOT NULL CONSTRAINT kind CHECK (kind IN ('tool','resource','resource_template','prompt')), " \
  "  items TEXT NOT NULL, " STAMPS_OF(INT) ", UNIQUE (server_id, kind));\n" \
  TSEQ("capability_lists")
#define CAPABILITY_LISTS_INTO \
  "INSERT INTO capability_lists (id, tenant_id, server_id, kind, items, created_at, updated_at) "
#define CAPABILITY_ROWS_GONE "DELETE FROM capabilities WHERE status <> 'pending';\n"
static const char MIGRATION_7_SQLITE[] = CAPABILITY_LISTS(SQ_ENTITY, "INTEGER") SQ_BUMP("capability_lists")
  CAPABILITY_LISTS_INTO
  "SELECT 'cpl_' || lower(hex(randomblob(10))), tenant_id, server_id, kind, "
  "  '[' || group_concat(definition, ',') || ']', min(created_at), max(updated_at) "
  "FROM (SELECT * FROM capabilities WHERE definition IS NOT NULL ORDER BY server_id, kind, seq) "
  "GROUP BY tenant_id, server_id, kind;\n" CAPABILITY_ROWS_GONE;
static const char MIGRATION_7_PG[] = CAPABILITY_LISTS(PG_ENTITY, "BIGINT") PG_BUMP("capability_lists")
  CAPABILITY_LISTS_INTO
  "SELECT 'cpl_' || substr(md5(random()::text || clock_timestamp()::text || server_id || kind), 1, 20), "
  "  tenant_id, server_id, kind, '[' || string_agg(definition, ',' ORDER BY seq) || ']', "
  "  min(created_at), max(updated_at) "
  "FROM capabilities WHERE definition IS NOT NULL GROUP BY tenant_id, server_id, kind;\n" CAPABILITY_ROWS_GONE;

static const char *const sqlite_steps[] = {MIGRATION_1_SQLITE, MIGRATION_2("INTEGER"), MIGRATION_3,
                                           MIGRATION_4_SQLITE, MIGRATION_5_SQLITE, MIGRATION_6(SQ_ENTITY, "INTEGER"),
                                           MIGRATION_7_SQLITE};
static const char *const pg_steps[] = {MIGRATION_1_PG, MIGRATION_2("BIGINT"), MIGRATION_3, MIGRATION_4_PG,
                                       MIGRATION_5_PG, MIGRATION_6(PG_ENTITY, "BIGINT"), MIGRATION_7_PG};
#define NMIGRATIONS ((int)(sizeof sqlite_steps / sizeof sqlite_steps[0]))
_Static_assert(sizeof sqlite_steps == sizeof pg_steps, "every step in both dialects");

int store_schema_latest(void) { return NMIGRATIONS; }

int store_schema_read(store_conn *c, const char *sql, int *version) {
  store_rows r;
  if (c->be->exec(c, sql, NULL, 0, &r, NULL) != 0) return -1;
  int rc = r.ops->next(&r);
  if (rc == 1) *version = (int)r.ops->get_int(&r, 0);
  r.ops->done(&r);
  if (rc == 0) store_err_set(&c->err, SE_INTERNAL, NULL, "the schema version row is missing");
  return rc == 1 ? 0 : -1;
}

int store_schema_newer(store_conn *c, long long v) {
  if (v <= NMIGRATIONS) return 0;
  store_err_set(&c->err, SE_UNAVAILABLE, NULL,
                "it has schema version %lld, newer than this mcplink supports (%d): another instance "
                "upgraded it; restart this one with the newer mcplink", v, NMIGRATIONS);
  return 1;
}

const char *store_migration(const char *dialect, int step) {
  if (step < 1 || step > NMIGRATIONS) return NULL;
  if (strcmp(dialect, "sqlite") == 0) return sqlite_steps[step - 1];
  if (strcmp(dialect, "postgresql") == 0) return pg_steps[step - 1];
  return NULL;
}
