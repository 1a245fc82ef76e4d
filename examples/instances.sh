#!/bin/sh
# examples/instances.sh: two engine processes on one PostgreSQL database (make demo-instances).
# A throwaway PostgreSQL cluster and an MCP server on loopback; instance A is where the tenant
# admin works, instance B serves a member's tool calls; both are long-running `mcplink repl`
# processes with their own Lua states, connections and caches, sharing the database and key file.
set -eu
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
fx=$top/tests/fixtures
bin=$top/$BUILD/mcplink
dir=$(mktemp -d /tmp/mcplink-instances-XXXXXX)
export FIXTURE_CERTS=$top/$BUILD/certs FIXTURE_PARENT_PID=$$ FIXTURE_MAX_LIFETIME_S=300
pids=""
MCPLINK_TEST_PG_DIR=""
cleanup() {
  exec 7>&- 8>&- 2>/dev/null || true
  [ -n "$pids" ] && sh "$fx/stop.sh" $pids >/dev/null 2>&1
  [ -n "$MCPLINK_TEST_PG_DIR" ] && sh "$top/tests/tools/pg.sh" stop "$MCPLINK_TEST_PG_DIR"
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
field() { echo "$1" | sed "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/"; }

echo "#### a PostgreSQL server (throwaway, unix socket) and an MCP server (SDK v2, API key)"
eval "$(sh "$top/tests/tools/pg.sh" start)"
sh "$top/tests/tools/pg.sh" psql -d postgres -c "CREATE DATABASE mcplink" >/dev/null
DB="postgresql://$MCPLINK_TEST_PG_USER@/mcplink?host=$MCPLINK_TEST_PG_DIR&port=$MCPLINK_TEST_PG_PORT"
echo "db: $DB"
KEY="sk-demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
v2=$(sh "$fx/start.sh" server-v2 --api-key "$KEY") || { echo "demo: no MCP server" >&2; exit 1; }
pids=$(field "$v2" pid)

# two engine processes: the same --db and --key-file, each its own REPL
for n in A B; do
  mkfifo "$dir/in$n"
  "$bin" --db "$DB" --key-file "$dir/mcplink.key" --ca-file "$FIXTURE_CERTS/ca.pem" \
    --policies "$top/policies" repl <"$dir/in$n" >"$dir/out$n" 2>&1 7>&- 8>&- &
done
exec 7>"$dir/inA" 8>"$dir/inB"
mark=0; lastA=0; lastB=0
# on A|B CHUNK: runs a line on that instance's REPL and shows what it printed
on() {
  mark=$((mark + 1))
  fd=7; [ "$1" = B ] && fd=8
  printf '%s\nprint("#mark %s")\n' "$2" "$mark" >&$fd
  i=0; until grep -q "^#mark $mark\$" "$dir/out$1"; do i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.05; done
  echo "[$1] $2"
  eval "last=\$last$1"
  awk -v a="#mark $last" -v b="#mark $mark" 'BEGIN { on = a == "#mark 0" } $0 == b { exit } on { print "      " $0 } $0 == a { on = 1 }' "$dir/out$1"
  eval "last$1=$mark"
}
on A 'engine.info().storage'
on B 'engine.info().storage'

echo "#### the system administrator and the tenant admin set up on instance A"
on A 'settings.set{allow_private_urls = true}.allow_private_urls  -- the MCP server is on 127.0.0.1'
on A 'tenant.create{name = "acme"}.name'
on A 'user.create{tenant = "acme", name = "ann", role = "admin"}.role'
on A 'user.create{tenant = "acme", name = "mo", role = "member"}.role'
on A '.as acme ann'
on A 'srv = server.create{name = "CRM"}'
on A "server.update{id = srv.id, url = \"$(field "$v2" url)\", auth_type = \"api_key\", api_key = \"$KEY\"}.capabilities_status"
on A 'tool.enable{server = "CRM"}.enabled'

echo "#### instance B: mo makes an assistant with the CRM tool and calls it"
on B '.as acme mo'
on B 'mine = assistant.create{name = "mo bot"}'
on B 'assistant.attach{assistant = mine.id, server = "CRM"}.attached'
on B 'tool.call{assistant = mine.id, tool = "CRM__echo", arguments = {text = "hello from B"}}.structuredContent.text'

echo "#### the admin disables the tool on A: B's very next call is refused; enabled again, it works"
on A 'tool.disable{server = "CRM"}.enabled'
on B 'tool.call{assistant = mine.id, tool = "CRM__echo", arguments = {text = "again"}}'
on A 'tool.enable{server = "CRM"}.enabled'
on B 'tool.call{assistant = mine.id, tool = "CRM__echo", arguments = {text = "again"}}.structuredContent.text'

echo "#### the key is rotated on A; B reads the re-sealed API key with the new key at once"
on A '.system'
on A 'keys.rotate{}.kid'
on B 'tool.call{assistant = mine.id, tool = "CRM__echo", arguments = {text = "after rotation"}}.structuredContent.text'
on B '.system'
on B 'for _, k in ipairs(keys.list().items) do if k.current then print("current key on B: " .. k.kid) end end'
