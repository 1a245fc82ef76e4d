#!/bin/sh
# cli.t: the command line as a person uses it: exit codes, usage errors,
# environment defaults, the key file beside the database, friendly commands,
# --lua-dir, help and version.
. "$(dirname "$0")/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MCPLINK_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
"$bin" version > out 2>&1; ok $? "version exits 0"
check "version prints the version" grep -q '^mcplink [0-9]' out
"$bin" > out 2>&1; st=$?; check "no command: usage, exit 2" test $st = 2
"$bin" --bogus op engine.info > out 2>&1; st=$?
check "unknown option exits 2" test $st = 2
check "unknown option is named" grep -q -- '--bogus' out
"$bin" --tenant acme op engine.info > out 2>&1; st=$?
check "--tenant without --user exits 2" test $st = 2
"$bin" --db "$tmp/a.db" op no.such.op > out 2> err; st=$?
check "op error exits 1" test $st = 1
check "op error JSON on stderr" grep -q '"not_found"' err
"$bin" --db "$tmp/a.db" --compact op engine.info > out 2>&1; ok $? "op engine.info exits 0"
check "--compact prints one line" test "$(wc -l < out)" = 1
"$bin" --db "$tmp/a.db" op engine.info --compact > out 2>&1
check "--compact after the op name works too" test "$(wc -l < out)" = 1
echo '{"name":"acme"}' | "$bin" --db "$tmp/a.db" op tenant.create - > out 2>&1; ok $? "op reads arguments from stdin with -"
MCPLINK_DB="$tmp/env.db" "$bin" op tenant.create '{"name":"x"}' > out 2>&1
check "MCPLINK_DB names the database" test -f "$tmp/env.db"
"$bin" --db "$tmp/a.db" op user.create '{"tenant":"acme","name":"ann","role":"admin"}' >/dev/null 2>&1
"$bin" --db "$tmp/a.db" --tenant acme --user ann server create --name "CRM Tools" > out 2>&1; ok $? "friendly: server create"
check "friendly command prints the record" grep -q '"api_key_set": false' out
"$bin" --db "$tmp/a.db" --tenant acme --user ann server list --limit 1 > out 2>&1; ok $? "friendly: server list --limit"
"$bin" --db "$tmp/a.db" --tenant acme --user ann server show "CRM Tools" > out 2>&1; ok $? "friendly: positional argument (name)"
"$bin" --db "$tmp/a.db" --tenant acme --user ann server set "CRM Tools" --auth-type api_key --api-key s3cr3t-key > out 2>&1
ok $? "friendly: server set with flags"
check_not "the key is not echoed" grep -q s3cr3t-key out
check "key file created beside the database" test -f "$tmp/mcplink.key"
check "key file is mode 0600" test "$(stat -c %a "$tmp/mcplink.key")" = 600
"$bin" --db "$tmp/a.db" --tenant acme --user ann server list --limit notanumber > out 2>&1; st=$?
check "bad flag value exits 2" test $st = 2
check "bad flag value is explained" grep -q 'integer' out
"$bin" --db "$tmp/a.db" --tenant acme --user ann server frobnicate > out 2>&1; st=$?
check "unknown friendly command exits 2" test $st = 2
"$bin" --db "$tmp/a.db" help server > out 2>&1; ok $? "help server"
check "help lists server create" grep -q 'mcplink server create' out
"$bin" --db "$tmp/a.db" --lua-dir "$top/lua" op engine.info > out 2>&1
check "--lua-dir loads engine Lua from a directory" grep -q "\"lua\": \"$top/lua\"" out
"$bin" --db "$tmp/a.db" --lua-dir "$tmp/nowhere" op engine.info > out 2>&1; st=$?
check "--lua-dir without the sources fails clearly" test $st != 0
"$bin" --db "$tmp/a.db" test "$tmp/missing.lua" > out 2>&1; st=$?
check "test on a missing file exits 2" test $st = 2
printf 'ok(true, "a")\ndone_testing()\n' > t.lua
"$bin" test t.lua > out 2>&1; ok $? "mcplink test passes a passing script"
check "mcplink test left no database behind" test ! -e "$tmp/mcplink.db"
printf 'ok(false, "a")\ndone_testing()\n' > f.lua
"$bin" test f.lua > out 2>&1; st=$?
check "mcplink test fails a failing script" test $st = 1
printf 'print("ran with " .. #arg .. " args: " .. arg[1])\n' > r.lua
"$bin" --db "$tmp/a.db" run r.lua hello > out 2>&1
check "run passes arguments" grep -q 'ran with 1 args: hello' out
# network failures say why: "reason" in the error JSON, in discovery and validation results, and
# in what scripts see (port 1 on loopback: nothing listens, the connection is refused)
"$bin" --db "$tmp/a.db" op settings.set '{"allow_private_urls":true}' >/dev/null 2>&1
A="--db $tmp/a.db --tenant acme --user ann --compact"
"$bin" $A op server.update '{"id":"CRM Tools","url":"https://127.0.0.1:1/mcp","auth_type":"none"}' > out 2>&1
check "server.update: the failed discovery's reason" grep -q '"discovery":{[^}]*"reason":"connect_failed"' out
"$bin" $A op server.refresh '{"id":"CRM Tools"}' > out 2> err; st=$?
check "server.refresh fails (exit 1)" test $st = 1
check "server.refresh: upstream_error" grep -q '"code":"upstream_error"' err
check "server.refresh: reason connect_failed" grep -q '"reason":"connect_failed"' err
printf 'local r, e = mcplink.op("server.refresh", { id = "CRM Tools" })\nprint("reason=" .. tostring(e and e.reason))\n' > reason.lua
"$bin" --db "$tmp/a.db" --tenant acme --user ann run reason.lua > out 2>&1
check "scripts see the reason" grep -q '^reason=connect_failed$' out
"$bin" $A op server.capabilities '{"id":"CRM Tools"}' > out 2>&1
check "server.capabilities: the recorded error keeps its reason" grep -q '"reason":"connect_failed"' out
"$bin" $A op server.validate '{"id":"CRM Tools"}' > out 2>&1
check "server.validate: Failed" grep -q '"status":"Failed"' out
check "server.validate: reason connect_failed" grep -q '"reason":"connect_failed"' out
"$bin" $A op server.update '{"id":"CRM Tools","auth_type":"oauth"}' > /dev/null 2>&1
"$bin" $A op oauth.discover '{"server":"CRM Tools"}' > out 2> err; st=$?
check "oauth.discover fails (exit 1)" test $st = 1
check "oauth.discover: reason connect_failed" grep -q '"reason":"connect_failed"' err
done_testing
