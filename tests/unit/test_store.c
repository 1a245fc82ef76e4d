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
CASE(newer_version_refused)
CASE(crud_and_types)
CASE(conflicts_and_refs)
CASE(tenant_scoping)
CASE(secrets_canary)
CASE(aad_binding)
CASE(key_missing_and_wrong)
CASE(rotation)
CASE(pagination)
CASE(pagination_100k)
CASE(tx)
CASE(settings_leases_resolve)
CASE(named_queries)
CASE(audit_append_only)
CASE(read_cache)
CASE(crypto_module)

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
    cmocka_unit_test(test_newer_version_refused),
    cmocka_unit_test(test_crud_and_types),
    cmocka_unit_test(test_conflicts_and_refs),
    cmocka_unit_test(test_tenant_scoping),
    cmocka_unit_test(test_secrets_canary),
    cmocka_unit_test(test_aad_binding),
    cmocka_unit_test(test_key_missing_and_wrong),
    cmocka_unit_test(test_rotation),
    cmocka_unit_test(test_pagination),
    cmocka_unit_test(test_pagination_100k),
    cmocka_unit_test(test_tx),
    cmocka_unit_test(test_settings_leases_resolve),
    cmocka_unit_test(test_named_queries),
    cmocka_unit_test(test_audit_append_only),
    cmocka_unit_test(test_read_cache),
    cmocka_unit_test(test_crypto_module),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
