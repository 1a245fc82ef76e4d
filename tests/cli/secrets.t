#!/bin/sh
# secrets.t: a canary API key and client secret are stored, then the database,
# its WAL, every op output and the logs are scanned: the canary is nowhere.
# On PostgreSQL (MCPLINK_TEST_DB), a pg_dump of the database and the cluster's
# files (its heap and WAL, after a checkpoint) are scanned instead.
. "$(dirname "$0")/tap.sh"
bin=${MCPLINK_BIN:?}
tmp=$(mktemp -d)
reader=""
cleanup() { exec 3>&- 2>/dev/null; [ -n "$reader" ] && kill "$reader" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
canary="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
secret2="CLIENTSECRET-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
db=${MCPLINK_TEST_DB:-$tmp/m.db}
m() { "$bin" --db "$db" --log-file "$tmp/log" --log-level debug --compact "$@" >>"$tmp/out" 2>&1; }
m op tenant.create '{"name":"acme"}'
if [ -z "${MCPLINK_TEST_DB:-}" ]; then
  # a concurrent reader, as a host's would be, keeps the database open: the
  # writers below then leave their pages in the WAL (the last connection to
  # close would move them into the database file and delete the WAL)
  mkfifo "$tmp/reader.in"
  "$bin" --db "$db" repl < "$tmp/reader.in" > "$tmp/reader.out" 2>&1 &
  reader=$!
  exec 3> "$tmp/reader.in"
  echo '#tenant.list{}.items' >&3
  i=0; while [ $i -lt 100 ] && ! grep -q '^1$' "$tmp/reader.out"; do sleep 0.1; i=$((i + 1)); done
  check "a reader holds the database open" grep -q '^1$' "$tmp/reader.out"
fi
m op settings.set '{"allow_private_urls":true}'   # servers on closed loopback ports only
m op user.create '{"tenant":"acme","name":"ann","role":"admin"}'
m --tenant acme --user ann op server.create '{"name":"s1"}'
id=$(sed -n 's/.*"id":"\(srv_[^"]*\)".*/\1/p' "$tmp/out" | head -1)
check "server created" test -n "$id"
m --tenant acme --user ann op server.update "{\"id\":\"$id\",\"url\":\"https://127.0.0.1:1/mcp\",\"auth_type\":\"api_key\",\"api_key\":\"$canary\"}"
check "update reports api_key_set" grep -q '"api_key_set":true' "$tmp/out"
m --tenant acme --user ann op server.create '{"name":"s2"}'
id2=$(sed -n 's/.*"id":"\(srv_[^"]*\)".*/\1/p' "$tmp/out" | tail -1)
m --tenant acme --user ann op server.update "{\"id\":\"$id2\",\"url\":\"https://127.0.0.1:2/mcp\",\"auth_type\":\"oauth\",\"oauth\":{\"registration_mode\":\"manual\",\"client_id\":\"cid\",\"client_secret\":\"$secret2\",\"authorization_url\":\"https://127.0.0.1:2/authorize\",\"token_url\":\"https://127.0.0.1:2/token\"}}"
check "client_secret_set reported" grep -q '"client_secret_set":true' "$tmp/out"
# a failing update carrying the canary must not echo it either
m --tenant acme --user ann op server.update "{\"id\":\"$id\",\"auth_type\":\"none\",\"api_key\":\"$canary\"}"
m --tenant acme --user ann op server.get "{\"id\":\"$id\"}"
m --tenant acme --user ann op server.list '{}'
m --tenant acme --user ann op audit.list '{}'
m --tenant acme --user ann server show "$id"
m op keys.rotate '{}'
m --tenant acme --user ann op server.get "{\"id\":\"$id\"}"
check "the log file was written" test -s "$tmp/log"
if [ -n "${MCPLINK_TEST_DB:-}" ]; then
  pg() { sh "$(dirname "$0")/../tools/pg.sh" "$@"; }
  dbname=$(echo "$db" | sed 's|.*@/\([^?]*\)?.*|\1|')
  pg psql -d "$dbname" -c CHECKPOINT >/dev/null
  oid=$(pg psql -d "$dbname" -tA -c "SELECT oid FROM pg_database WHERE datname = current_database()")
  "$MCPLINK_TEST_PG_BIN/pg_dump" -d "$db" > "$tmp/m.db"
  cat "$MCPLINK_TEST_PG_DIR/data/base/$oid"/* "$MCPLINK_TEST_PG_DIR"/data/pg_wal/0* > "$tmp/m.db-wal" 2>/dev/null
  check "the database holds the sealed key (the scan reads what is stored)" \
    sh -c 'cat "$@" 2>/dev/null | grep -aq "v1:k-"' _ "$tmp/m.db" "$tmp/m.db-wal"
else
  # the server rows (with their sealed secrets) are in the WAL, so scanning it means something
  check "the WAL holds the server rows" grep -aq "$id2" "$tmp/m.db-wal"
fi
check "the database file (or dump) exists" test -s "$tmp/m.db"
for f in "$tmp/m.db" "$tmp/m.db-wal" "$tmp/out" "$tmp/log"; do
  check_not "canary API key absent from $(basename "$f")" grep -aq "$canary" "$f"
  check_not "canary client secret absent from $(basename "$f")" grep -aq "$secret2" "$f"
done
if [ -z "${MCPLINK_TEST_DB:-}" ]; then
  # the reader goes away; the last connection moves the WAL into the database file
  exec 3>&-
  wait "$reader"; reader=""
  "$bin" --db "$db" op engine.info >/dev/null 2>&1
  check "the checkpoint moved the server rows into the database file" grep -aq "$id2" "$tmp/m.db"
  check_not "canary API key absent after the checkpoint" grep -aq "$canary" "$tmp/m.db"
  check_not "canary client secret absent after the checkpoint" grep -aq "$secret2" "$tmp/m.db"
fi
done_testing
