#!/bin/sh
# tests/tools/pg.sh: a throwaway PostgreSQL cluster for the tests (Debian's postgresql package):
# initdb + pg_ctl in a new temporary directory, a unix socket there and a loopback TCP port.
#   pg.sh start          creates and starts one; prints shell assignments to eval
#                        (MCPLINK_TEST_PG_DIR, _HOST (the socket directory), _PORT, _USER)
#   pg.sh stop [DIR]     stops it (immediately) and removes DIR, whatever state it is in
#   pg.sh newdb [NAME]   a new empty database; prints its URI (unix socket)
#   pg.sh dropdb NAME    drops a database (its connections are ended first)
#   pg.sh psql [ARGS]    psql as the cluster's superuser (default database: postgres)
#   pg.sh server stop|start   stops (fast) or starts the server of the running cluster
# The commands after start read MCPLINK_TEST_PG_* from the environment. When run as root (CI),
# the server runs as an unprivileged user (postgres, else nobody): PostgreSQL refuses root.
set -eu
PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    [ -x "$d/initdb" ] && { PGBIN=$d; break; }
  done
fi
[ -n "$PGBIN" ] && [ -x "$PGBIN/pg_ctl" ] || {
  echo "pg.sh: PostgreSQL server binaries not found (Debian package postgresql; make deps)" >&2; exit 2; }
SUPER=mcplink_test

runas=""
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then runas=postgres; else runas=nobody; fi
fi
# as_server CMD...: runs CMD as the user that owns the cluster
as_server() {
  if [ -n "$runas" ]; then
    setpriv --reuid="$runas" --regid="$(id -g "$runas")" --clear-groups -- "$@"
  else
    "$@"
  fi
}

need_env() {
  [ -n "${MCPLINK_TEST_PG_DIR:-}" ] && [ -n "${MCPLINK_TEST_PG_PORT:-}" ] || {
    echo "pg.sh: no cluster in the environment (eval \"\$(pg.sh start)\")" >&2; exit 2; }
}

psql_() {
  need_env
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$MCPLINK_TEST_PG_DIR" -p "$MCPLINK_TEST_PG_PORT" \
    -U "$SUPER" "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  start)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-pg.XXXXXX")
    chmod 755 "$dir"
    [ -n "$runas" ] && chown "$runas" "$dir"
    cd "$dir"
    if ! as_server "$PGBIN/initdb" -D "$dir/data" -U "$SUPER" --auth=trust -E UTF8 --no-locale \
        --no-sync >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1
    fi
    # loopback TCP for the tests that need a password (role mcplink_pw); trust elsewhere
    cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host all mcplink_pw 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
    tries=0
    while :; do
      port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000 ))
      cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
      if as_server "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
        break
      fi
      tries=$((tries + 1))
      if [ $tries -ge 5 ]; then
        echo "pg.sh: the server did not start:" >&2; tail -20 "$dir/server.log" >&2
        rm -rf "$dir"; exit 1
      fi
    done
    echo "MCPLINK_TEST_PG_DIR='$dir'; MCPLINK_TEST_PG_HOST='$dir'; MCPLINK_TEST_PG_PORT='$port';" \
         "MCPLINK_TEST_PG_USER='$SUPER'; MCPLINK_TEST_PG_BIN='$PGBIN';" \
         "export MCPLINK_TEST_PG_DIR MCPLINK_TEST_PG_HOST MCPLINK_TEST_PG_PORT MCPLINK_TEST_PG_USER MCPLINK_TEST_PG_BIN"
    ;;
  stop)
    dir=${1:-${MCPLINK_TEST_PG_DIR:-}}
    [ -n "$dir" ] || exit 0
    case $dir in *mcplink-pg.*) ;; *) echo "pg.sh: refusing to remove $dir" >&2; exit 2 ;; esac
    if [ -f "$dir/data/postmaster.pid" ]; then
      (cd "$dir" && as_server "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1) || true
      pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  newdb)
    need_env
    name=${1:-t_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}
    psql_ -d postgres -c "CREATE DATABASE \"$name\"" >/dev/null
    echo "postgresql://$SUPER@/$name?host=$MCPLINK_TEST_PG_DIR&port=$MCPLINK_TEST_PG_PORT"
    ;;
  dropdb)
    need_env
    psql_ -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
    ;;
  psql)
    psql_ "$@"
    ;;
  server)
    need_env
    case ${1:-} in
      stop) (cd "$MCPLINK_TEST_PG_DIR" && as_server "$PGBIN/pg_ctl" -D "$MCPLINK_TEST_PG_DIR/data" -m fast -w -t 60 stop >/dev/null) ;;
      start) (cd "$MCPLINK_TEST_PG_DIR" && as_server "$PGBIN/pg_ctl" -D "$MCPLINK_TEST_PG_DIR/data" -l "$MCPLINK_TEST_PG_DIR/server.log" -w -t 60 start >/dev/null) ;;
      *) echo "usage: pg.sh server stop|start" >&2; exit 2 ;;
    esac
    ;;
  *)
    echo "usage: pg.sh start | stop [DIR] | newdb [NAME] | dropdb NAME | psql [ARGS] | server stop|start" >&2
    exit 2 ;;
esac
