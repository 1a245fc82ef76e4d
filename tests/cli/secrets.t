#!/bin/sh
# secrets.t: a canary API key and client secret are stored, then the database,
# its WAL, every op output and the logs are scanned: the canary is nowhere.
# On PostgreSQL (MCPLINK_TEST_DB), a pg_dump of the database and the cluster's
# files (its heap and WAL, after a checkpoint) are scanned instead.
. "$(dirname "$0")/tap.sh"
bin=${MCPLINK_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
canary="CANARY-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
secret2="CLIENTSECRET-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
db=${MCPLINK_TEST_DB:-$tmp/m.db}
m() { "$bin" --db "$db" --log-file "$tmp/log" --log-level debug --compact "$@" >>"$tmp/out" 2>&1; }
m op tenant.create '{"name":"acme"}'
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
files="$tmp/m.db $tmp/m.db-wal"
if [ -n "${MCPLINK_TEST_DB:-}" ]; then
  pg() { sh "$(dirname "$0")/../tools/pg.sh" "$@"; }
  dbname=$(echo "$db" | sed 's|.*@/\([^?]*\)?.*|\1|')
  pg psql -d "$dbname" -c CHECKPOINT
  oid=$(pg psql -d "$dbname" -tA -c "SELECT oid FROM pg_database WHERE datname = current_database()")
  "$MCPLINK_TEST_PG_BIN/pg_dump" -d "$db" > "$tmp/m.db"
  cat "$MCPLINK_TEST_PG_DIR/data/base/$oid"/* "$MCPLINK_TEST_PG_DIR"/data/pg_wal/0* > "$tmp/m.db-wal" 2>/dev/null
fi
check "the database dump exists" test -s "$tmp/m.db"
check "the database holds the sealed key (the scan reads what is stored)" \
  sh -c 'cat "$@" 2>/dev/null | grep -aq "v1:k-"' _ $files
for f in $files "$tmp/out" "$tmp/log"; do
  [ -e "$f" ] || continue
  check_not "canary API key absent from $(basename "$f")" grep -aq "$canary" "$f"
  check_not "canary client secret absent from $(basename "$f")" grep -aq "$secret2" "$f"
done
# same after a checkpoint moved WAL pages into the main file
"$bin" --db "$db" op engine.info >/dev/null 2>&1
[ -n "${MCPLINK_TEST_DB:-}" ] || check_not "canary absent after reopen" grep -aq "$canary" "$tmp/m.db"
done_testing
