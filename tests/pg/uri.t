#!/bin/sh
# tests/pg/uri.t: the db option as a PostgreSQL connection URI: postgresql:// and postgres://,
# TCP on loopback with a password (userinfo and password= forms), a unix socket as ?host=/path;
# the password never appears in op output, errors or logs, also when the connection fails or the
# URI is malformed; a refused or unreachable server is `unavailable`.
set -u
. "$(dirname "$0")/../cli/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MCPLINK_BIN:-$top/build/mcplink}
[ -n "${MCPLINK_TEST_PG_DIR:-}" ] || { echo "Bail out! no PostgreSQL test cluster (tests/run.sh starts one)"; exit 1; }
pg() { sh "$top/tests/tools/pg.sh" "$@"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-uri.XXXXXX")
db=u_$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')
trap 'pg dropdb "$db" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
# a password with characters a URI must percent-encode
pw="Pw@$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')/x:y"
enc=$(printf '%s' "$pw" | sed 's/@/%40/g; s|/|%2F|g; s/:/%3A/g')
pg psql -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mcplink_pw') THEN CREATE ROLE mcplink_pw LOGIN; END IF; END \$\$" >/dev/null
pg psql -d postgres -c "ALTER ROLE mcplink_pw PASSWORD '$pw'" >/dev/null
pg psql -d postgres -c "CREATE DATABASE $db OWNER mcplink_pw" >/dev/null
port=$MCPLINK_TEST_PG_PORT
m() { "$bin" --key-file "$tmp/k.key" --log-file "$tmp/log" --log-level debug --compact "$@" >>"$tmp/all" 2>&1; }
out() { "$bin" --key-file "$tmp/k.key" --log-file "$tmp/log" --log-level debug --compact "$@" 2>&1 | tee -a "$tmp/all"; }

u1="postgresql://mcplink_pw:$enc@127.0.0.1:$port/$db"
r=$(out --db "$u1" op tenant.create '{"name":"acme"}')
case $r in *'"name":"acme"'*) ok 0 "postgresql:// with user:password@127.0.0.1 works";; *) ok 1 "postgresql:// URI: $r";; esac
r=$(out --db "$u1" op engine.info)
case $r in *'"storage":"postgresql://mcplink_pw:***@127.0.0.1:'*) ok 0 "engine.info shows the URI without its password";;
  *) ok 1 "engine.info storage: $r";; esac
r=$(out --db "postgres://mcplink_pw@127.0.0.1:$port/$db?password=$enc" op tenant.list)
case $r in *'"acme"'*) ok 0 "postgres:// with a password= parameter works, same database";; *) ok 1 "password= form: $r";; esac
r=$(out --db "postgres://mcplink_pw@127.0.0.1:$port/$db?password=$enc" op engine.info)
case $r in *'password=***'*) ok 0 "engine.info hides a password= parameter";; *) ok 1 "password= shown as: $r";; esac
r=$(out --db "postgresql://$MCPLINK_TEST_PG_USER@/$db?host=$MCPLINK_TEST_PG_DIR&port=$port" op tenant.list)
case $r in *'"acme"'*) ok 0 "a unix socket directory as ?host=/path";; *) ok 1 "unix socket: $r";; esac
r=$(MCPLINK_DB="$u1" out op tenant.list)
case $r in *'"acme"'*) ok 0 "MCPLINK_DB takes a URI too";; *) ok 1 "MCPLINK_DB: $r";; esac

# failures: wrong password, malformed URI, nobody listening
r=$(out --db "postgresql://mcplink_pw:${enc}WRONG@127.0.0.1:$port/$db" op tenant.list)
case $r in *'"code":"unavailable"'*'password authentication failed'*) ok 0 "a wrong password: unavailable, saying why";;
  *) ok 1 "wrong password: $r";; esac
m --db "postgresql://mcplink_pw:${enc}WRONG@127.0.0.1:$port/$db" op tenant.list
ok $([ $? = 1 ] && echo 0 || echo 1) "and the CLI exits 1"
r=$(out --db "postgresql://mcplink_pw:$enc@[::1/$db" op tenant.list)
case $r in *'"code":"invalid_argument"'*'not a valid PostgreSQL connection URI'*) ok 0 "a malformed URI is invalid_argument";;
  *) ok 1 "malformed URI: $r";; esac
r=$(out --db "postgresql://mcplink_pw:%zz$enc@127.0.0.1:$port/$db" op tenant.list)
case $r in *'"code":"invalid_argument"'*) ok 0 "a bad percent-encoding is invalid_argument";; *) ok 1 "bad encoding: $r";; esac
r=$(out --db "postgresql://mcplink_pw:$enc@127.0.0.1:1/$db?connect_timeout=3" op tenant.list)
case $r in *'"code":"unavailable"'*) ok 0 "nobody listening: unavailable";; *) ok 1 "closed port: $r";; esac

# the password, raw or percent-encoded, is nowhere
check "the log file was written" test -s "$tmp/log"
for f in "$tmp/all" "$tmp/log"; do
  check_not "the password is not in $(basename "$f")" grep -aqF "$pw" "$f"
  check_not "the encoded password is not in $(basename "$f")" grep -aqF "$enc" "$f"
  check_not "no part of it either in $(basename "$f")" grep -aqF "${pw#Pw@}" "$f"
done
done_testing
