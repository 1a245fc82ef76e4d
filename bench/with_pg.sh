#!/bin/sh
# bench/with_pg.sh CMD [ARGS]: runs CMD ARGS --pg URI with a fresh database in a throwaway
# PostgreSQL cluster (tests/tools/pg.sh), stopped and removed afterwards (make bench-ops).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
MCPLINK_TEST_PG_DIR=""
trap '[ -n "$MCPLINK_TEST_PG_DIR" ] && sh "$top/tests/tools/pg.sh" stop "$MCPLINK_TEST_PG_DIR"' EXIT
trap 'exit 1' INT TERM HUP
eval "$(sh "$top/tests/tools/pg.sh" start)" || { echo "with_pg.sh: cannot start PostgreSQL" >&2; exit 1; }
uri=$(sh "$top/tests/tools/pg.sh" newdb) || exit 1
"$@" --pg "$uri"
st=$?
exit $st
