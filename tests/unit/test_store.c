/* test_store.c: the store and crypto bindings, case by case (the cases are
 * Lua in tests/data/store_cases.lua), each on a fresh database and key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "store.h"
#include "test_store_harness.h"

#define CASES "tests/data/store_cases.lua"

static void run_case(const char *name) {
  sh_env env;
  sh_setup(&env);
  char *err = sh_run_case(&env, CASES, name);
  if (err) fprintf(stderr, "case %s failed: %s\n", name, err);
  sh_teardown(&env);
  if (err) { free(err); fail_msg("case %s failed", name); }
}

#define CASE(n) static void test_##n(void **st) { (void)st; run_case(#n); }
CASE(migrations_fresh)
CASE(migration_upgrade_v1)
CASE(migration_auth_type_v4)
CASE(migration_capability_lists_v6)
CASE(newer_version_while_open)
CASE(newer_version_refused)
CASE(crud_and_types)
CASE(conflicts_and_refs)
CASE(tenant_scoping)
CASE(secrets_canary)
CASE(aad_binding)
CASE(key_missing_and_wrong)
CASE(rotation)
CASE(opened_secrets)
CASE(pagination)
CASE(pagination_100k)
CASE(insert_many)
CASE(canonical_json)
CASE(tx)
CASE(settings_leases_resolve)
CASE(resolve_actor_changes)
CASE(named_queries)
CASE(audit_append_only)
CASE(read_cache)
CASE(crypto_module)

/* One pragma of the store's own connection, as an integer (or text in buf). */
static long long conn_pragma(sqlite3 *db, const char *pragma, char *buf, size_t cap) {
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA %s", pragma);
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
    if (buf) snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return v;
}

/* One setting of a PostgreSQL connection (SHOW), as text in buf. */
static const char *pg_setting(PGconn *pg, const char *name, char *buf, size_t cap) {
  char sql[128];
  snprintf(sql, sizeof sql, "SHOW %s", name);
  PGresult *r = PQexec(pg, sql);
  snprintf(buf, cap, "%s", PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?");
  PQclear(r);
  return buf;
}

/* The connection the store works on carries the settings the README
 * promises: read back from that connection itself (pragmas and session
 * settings are per connection, so another connection would not show them).
 * SQLite: FULL sync, foreign keys, secure delete, WAL; PostgreSQL: the
 * statement, lock and idle-transaction timeouts, synchronous commit. */
static void test_connection_pragmas(void **st) {
  (void)st;
  sh_env env;
  sh_setup(&env);
  assert_int_equal(luaL_dostring(env.L, "store.insert({system=true}, 'tenants', {name='p'})"), LUA_OK);
  store_conn *c = store_conn_of(env.L);
  assert_non_null(c);
  assert_non_null(c->db);
  char mode[32] = "";
  if (sh_is_uri(env.db)) {
    assert_string_equal(pg_setting(c->db, "statement_timeout", mode, sizeof mode), "30s");
    assert_string_equal(pg_setting(c->db, "lock_timeout", mode, sizeof mode), "10s");
    assert_string_equal(pg_setting(c->db, "idle_in_transaction_session_timeout", mode, sizeof mode), "1min");
    assert_string_equal(pg_setting(c->db, "synchronous_commit", mode, sizeof mode), "on");
    sh_teardown(&env);
    return;
  }
  assert_int_equal(conn_pragma(c->db, "synchronous", NULL, 0), 2); /* FULL */
  assert_int_equal(conn_pragma(c->db, "foreign_keys", NULL, 0), 1);
  assert_int_equal(conn_pragma(c->db, "secure_delete", NULL, 0), 1);
  assert_int_equal(conn_pragma(c->db, "trusted_schema", NULL, 0), 0);
  assert_int_equal(conn_pragma(c->db, "temp_store", NULL, 0), 2); /* MEMORY */
  assert_int_equal(conn_pragma(c->db, "busy_timeout", NULL, 0), 5000);
  conn_pragma(c->db, "journal_mode", mode, sizeof mode);
  assert_string_equal(mode, "wal");
  sh_teardown(&env);
}

/* MCPL_MAKE_V1_DB=path: writes the schema-version-1 fixture for the upgrade
 * test (kept in tests/data/v1.db; regenerate only if it is lost: version 1
 * is frozen). */
static int make_v1(const char *path) {
  sqlite3 *db = NULL;
  char *err = NULL;
  remove(path);
  if (sqlite3_open(path, &db) != SQLITE_OK) return 1;
  if (store_sqlite_migrate(db, 1, &err) != MCPL_OK) { fprintf(stderr, "%s\n", err); return 1; }
  if (sqlite3_exec(db, SH_V1_ROWS, NULL, NULL, &err) != SQLITE_OK) { fprintf(stderr, "%s\n", err); return 1; }
  sqlite3_exec(db, "VACUUM", NULL, NULL, NULL);
  sqlite3_close(db);
  return 0;
}

int main(void) {
  const char *v1 = getenv("MCPL_MAKE_V1_DB");
  if (v1) return make_v1(v1);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_migrations_fresh),
    cmocka_unit_test(test_migration_upgrade_v1),
    cmocka_unit_test(test_migration_auth_type_v4),
    cmocka_unit_test(test_migration_capability_lists_v6),
    cmocka_unit_test(test_newer_version_while_open),
    cmocka_unit_test(test_newer_version_refused),
    cmocka_unit_test(test_crud_and_types),
    cmocka_unit_test(test_conflicts_and_refs),
    cmocka_unit_test(test_tenant_scoping),
    cmocka_unit_test(test_secrets_canary),
    cmocka_unit_test(test_aad_binding),
    cmocka_unit_test(test_key_missing_and_wrong),
    cmocka_unit_test(test_rotation),
    cmocka_unit_test(test_opened_secrets),
    cmocka_unit_test(test_pagination),
    cmocka_unit_test(test_pagination_100k),
    cmocka_unit_test(test_insert_many),
    cmocka_unit_test(test_canonical_json),
    cmocka_unit_test(test_tx),
    cmocka_unit_test(test_settings_leases_resolve),
    cmocka_unit_test(test_resolve_actor_changes),
    cmocka_unit_test(test_named_queries),
    cmocka_unit_test(test_audit_append_only),
    cmocka_unit_test(test_read_cache),
    cmocka_unit_test(test_crypto_module),
    cmocka_unit_test(test_connection_pragmas),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
