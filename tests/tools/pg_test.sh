#!/bin/sh
# tests/tools/pg_test.sh FILE: runs one test file on PostgreSQL: a fresh database in the test cluster
# (MCPLINK_TEST_DB, dropped afterwards) and a fresh key file (MCPLINK_KEY_FILE), with
# MCPLINK_TEST_BACKEND=pg; the test itself runs through tests/tap-exec as usual.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
f=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-pgt.XXXXXX")
MCPLINK_TEST_DB=$(sh "$top/tests/tools/pg.sh" newdb) || { echo "Bail out! cannot create a test database"; exit 1; }
name=$(echo "$MCPLINK_TEST_DB" | sed 's|.*@/\([^?]*\)?.*|\1|')
MCPLINK_TEST_BACKEND=pg MCPLINK_KEY_FILE=$work/test.key
export MCPLINK_TEST_DB MCPLINK_TEST_BACKEND MCPLINK_KEY_FILE
"$top/tests/tap-exec" "$f"
st=$?
sh "$top/tests/tools/pg.sh" dropdb "$name" || true
rm -rf "$work"
exit $st
