#!/bin/sh
# cli.t: the command line as a person types it: exit codes, usage errors and
# JSON errors (each printed once), environment defaults, the key file beside
# the database, friendly commands in the op's own words and in their aliases,
# boolean flags, help for every command, stable key order, --lua-dir, version.
. "$(dirname "$0")/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MCPLINK_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/db" "$tmp/work" "$tmp/empty"
# the commands run from a directory of their own, never the database's
cd "$tmp/work" || exit 1
db=$tmp/db/a.db
# jv FILE PATH: a value of the JSON document in FILE (PATH: error.code, items.0.name; "" the whole);
# objects and arrays come back as canonical JSON (sorted keys), a missing value as "missing"
jv() {
  perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit 1; my $v = JSON::PP->new->decode(<$f>);
    for my $k (grep { length } split /\./, $ARGV[1]) {
      if (ref $v eq "ARRAY" && $k =~ /^\d+$/ && $k < @$v) { $v = $v->[$k] } elsif (ref $v eq "HASH" && exists $v->{$k}) { $v = $v->{$k} }
      else { print "missing"; exit 0 } }
    print !defined $v ? "null" : JSON::PP::is_bool($v) ? ($v ? "true" : "false")
      : ref $v ? JSON::PP->new->canonical->encode($v) : $v' "$1" "$2" 2>/dev/null || echo "(not JSON)"
}
# canonical FILE: the document re-encoded with sorted keys (compact or indented like ours)
canonical() { perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit 1; my $j = JSON::PP->new->canonical;
  $j = $j->pretty->indent_length(2)->space_before(0) if $ARGV[1]; my $s = $j->encode($j->decode(<$f>)); $s =~ s/\n\z//; print "$s\n"' "$1" "${2:-}"; }
M() { "$bin" --db "$db" "$@"; }
A="--tenant acme --user ann"

# ---- basics ---------------------------------------------------------------------------
"$bin" version > out 2>&1; ok $? "version exits 0"
check "version prints the version" grep -q '^mcplink [0-9]' out
"$bin" > out 2> err; st=$?
is "$st" 2 "no command: exit 2"
check "no command: the usage on stderr names the commands" grep -q '^  repl ' err
"$bin" --bogus op engine.info > out 2> err; st=$?
is "$st" 2 "unknown option exits 2"
is "$(head -n 1 err)" "mcplink: unknown option --bogus" "a usage error is one line naming the option"
check "and points to the help" grep -q '^(run `mcplink help` for usage)$' err
"$bin" --tenant acme op engine.info > out 2>&1; st=$?
is "$st" 2 "--tenant without --user exits 2"
"$bin" --db "$db" --log-level loud op engine.info > out 2> err; st=$?
is "$st" 2 "a bad option value is a usage error"
check "naming the option and the value" grep -q '^mcplink: invalid value for --log-level: loud$' err

# ---- op -----------------------------------------------------------------------------------
M op no.such.op > out 2> err; st=$?
is "$st" 1 "op error exits 1"
is "$(jv err error.code)" not_found "op error: the error JSON on stderr"
check "and nothing on stdout" test ! -s out
M --compact op engine.info > out 2>&1; ok $? "op engine.info exits 0"
is "$(wc -l < out)" 1 "--compact prints one line"
M op engine.info --compact > out 2>&1
is "$(wc -l < out)" 1 "--compact after the op name works too"
M op engine.info --bogus > out 2> err; st=$?
is "$st" 2 "an unknown option after the op name is a usage error"
echo '{"name":"acme"}' | M op tenant.create - > out 2>&1; ok $? "op reads arguments from stdin with -"
is "$(jv out name)" acme "the tenant from stdin was created"
MCPLINK_DB="$tmp/db/env.db" "$bin" op tenant.create '{"name":"x"}' > out 2>&1
check "MCPLINK_DB names the database" test -f "$tmp/db/env.db"

# ---- friendly commands ------------------------------------------------------------------
M op user.create '{"tenant":"acme","name":"ann","role":"admin"}' >/dev/null 2>&1
M $A server create --name "CRM Tools" > out 2>&1; ok $? "friendly: server create"
is "$(jv out name)/$(jv out api_key_set)" "CRM Tools/false" "friendly command prints the record"
M $A server create --name "Docs" > /dev/null 2>&1
M $A server list --limit 1 > out 2>&1; ok $? "friendly: server list --limit"
is "$(jv out items.0.name)" "CRM Tools" "--limit 1: the first server"
check "--limit 1: one server and a cursor to the next" test "$(jv out items.1)" = missing -a "$(jv out next_cursor)" != null
M $A server show "CRM Tools" > out 2>&1; ok $? "friendly: server show NAME (alias)"
is "$(jv out name)" "CRM Tools" "server show prints the named server"
M $A server get "CRM Tools" > out 2>&1; ok $? "friendly: server get NAME (the op's own words)"
is "$(jv out name)" "CRM Tools" "server get prints the named server"
M $A server update "CRM Tools" --description "first" > out 2>&1; ok $? "friendly: server update (the op's own words)"
is "$(jv out description)" first "server update changed the description"
M $A server set "CRM Tools" --auth-type api_key --api-key s3cr3t-key > out 2>&1; ok $? "friendly: server set (alias) with flags"
is "$(jv out auth_type)/$(jv out api_key_set)/$(jv out description)" "api_key/true/first" "server set saved the key and kept the rest"
check_not "the key is not echoed" grep -q s3cr3t-key out
# the key file goes beside the database, wherever the command runs from
check "key file created beside the database" test -f "$tmp/db/mcplink.key"
check_not "and not in the current directory" test -e "$tmp/work/mcplink.key"
is "$(stat -c %a "$tmp/db/mcplink.key")" 600 "key file is mode 0600"
M $A server list --limit notanumber > out 2> err; st=$?
is "$st" 2 "bad flag value exits 2"
check "bad flag value is explained" grep -q 'needs an integer' err
M $A server frobnicate > out 2> err; st=$?
is "$st" 2 "unknown friendly command exits 2"
check "and is named" grep -q "unknown command 'server frobnicate'" err
M $A server get "CRM Tools" --bogus > out 2> err; st=$?
is "$st" 2 "an unknown flag exits 2"
check "naming the flag and the command's help" grep -q 'help server get' err

# booleans: --flag, --no-flag, --flag true|false, --flag=VALUE (localhost: /etc/hosts, no DNS traffic)
U=https://localhost/mcp
M url check "$U" --resolve false --compact > out 2>&1; ok $? "--resolve false is accepted"
is "$(jv out resolved)" false "--resolve false: no lookup"
M url check "$U" --no-resolve --compact > out 2>&1
is "$(jv out resolved)" false "--no-resolve: no lookup"
M url check "$U" --resolve=false --compact > out 2>&1
is "$(jv out resolved)" false "--resolve=false: no lookup"
M url check "$U" --resolve true --compact > out 2>&1
is "$(jv out resolved)/$(jv out reason)" "true/private_address 127.0.0.1" "--resolve true: looked up"
M url check "$U" --resolve --compact > out 2>&1
is "$(jv out resolved)" true "--resolve: looked up"
M url check "$U" --resolve=maybe > out 2> err; st=$?
is "$st" 2 "a boolean flag refuses other values"
check "saying what it needs" grep -q 'needs true or false' err

# ---- one error, once, in one format -----------------------------------------------------------
M --compact $A server get nosuch > out 2> err; st=$?
is "$st" 1 "friendly: an op error exits 1"
check "and prints nothing on stdout" test ! -s out
M --compact $A op server.get '{"id":"nosuch"}' > out2 2> err2
check "the friendly command's error JSON is the op's, field for field" cmp -s err err2
is "$(jv err error.code)/$(jv err error.field)" "not_found/id" "with the engine's code and field"
M $A server get nosuch > out 2> err
is "$(canonical err pretty)" "$(cat err)" "without --compact: indented, keys sorted"
# a database written by a newer mcplink: the user_version field of the SQLite header set to 99
M op engine.info > /dev/null 2>&1
cp "$db" "$tmp/db/newer.db"
printf '\000\000\000\143' | dd of="$tmp/db/newer.db" bs=1 seek=60 conv=notrunc 2>/dev/null
"$bin" --db "$tmp/db/newer.db" op engine.info > out 2> err; st=$?
is "$st" 1 "a newer database: exit 1"
is "$(grep -c 'newer than this mcplink' err)" 1 "the newer-schema error is printed once"
is "$(jv err error.code)" invalid_argument "as the error JSON (stderr is that JSON only)"
"$bin" --db "$tmp/db/newer.db" $A server list > out 2> err
is "$(grep -c 'newer than this mcplink' err)/$(jv err error.field)" "1/db" "a friendly command: the same, once"

# ---- stable key order -------------------------------------------------------------------
M --compact $A server get "CRM Tools" > out 2>&1
is "$(cat out)" "$(canonical out)" "--compact: keys sorted at every level"
M $A server get "CRM Tools" > out 2>&1
is "$(cat out)" "$(canonical out pretty)" "indented output: keys sorted too"
M --compact op engine.info > out 2>&1
is "$(cat out)" "$(canonical out)" "op --compact: keys sorted"

# ---- help ---------------------------------------------------------------------------------
cd "$tmp/empty" || exit 1
"$bin" help > out 2>&1; ok $? "help exits 0"
for c in 'op NAME' 'repl ' 'run FILE' 'test FILE' 'oauth connect SERVER' 'version ' 'help '; do
  check "help lists the command: $c" grep -q "^  $c" out
done
M op op.list --compact > "$tmp/ops.json" 2>&1
fams=$(perl -MJSON::PP -e 'local $/; my $d = JSON::PP->new->decode(<STDIN>); my %f;
  $f{(split /\./, $_->{name})[0]} = 1 for @{$d->{ops}}; print join(" ", grep { $_ ne "op" } sort keys %f)' < "$tmp/ops.json")
missing=""
for f in $fams; do [ "$(grep -c "^  $f  " out)" = 1 ] || missing="$missing $f"; done
is "$missing" "" "help lists every op family on one line of its own"
check "help lists the server family's actions" grep -q '^  server .* update (set)' out
check_not "help does not offer the op family (op op.list runs as \`op op.list\`)" grep -q '^  op  ' out
check "help creates no database" test ! -e "$tmp/empty/mcplink.db"
for c in repl run test op oauth version help conformance-client; do
  "$bin" help "$c" > out 2>&1; st=$?
  is "$st/$(grep -c "usage: mcplink .*$c" out)" 0/1 "help $c prints its usage"
done
"$bin" help oauth > out 2>&1
check "help oauth lists oauth connect" grep -q 'oauth connect SERVER \[--timeout-ms MS\]' out
check "and the oauth commands" grep -q '^  mcplink oauth status SERVER' out
"$bin" help op > out 2>&1
check_not "help op does not advertise 'mcplink op list'" grep -q 'mcplink op list' out
check "help op names op.list" grep -q 'mcplink op op.list' out
"$bin" help server > out 2>&1; ok $? "help server"
check "help server lists server create" grep -q '^  mcplink server create' out
"$bin" help server update > out 2>&1
check "help server update shows its flags" grep -q '^  mcplink server update ID .*\[--url STRING\]' out
check "and its alias" grep -q 'also: mcplink server set ID' out
"$bin" help url check > out 2>&1
check "a boolean flag is shown as --[no-]flag" grep -q '\[--\[no-\]resolve\]' out
"$bin" help op server.get > out 2>&1
check "help op NAME describes that op" grep -q '^  mcplink server get ID' out
"$bin" help nosuch > out 2> err; st=$?
is "$st" 2 "help for an unknown command exits 2"
# --help after any command: its help, nothing run, nothing created
"$bin" help server update > want 2>&1
"$bin" --db "$tmp/empty/h.db" $A server update "CRM Tools" --url https://x.example/ --help > out 2>&1; st=$?
is "$st" 0 "server update ... --help exits 0"
check "and prints the command's help" cmp -s out want
check "without opening a database" test ! -e "$tmp/empty/h.db"
"$bin" --db "$tmp/empty/h.db" op --help > out 2>&1; st=$?
is "$st" 0 "op --help exits 0"
check "op --help is the op command's help" grep -q '^usage: mcplink \[global options\] op NAME' out
check_not "op --help runs no op called --help" grep -q 'unknown op' out
"$bin" --db "$tmp/empty/h.db" op server.get --help > out 2>&1
check "op NAME --help describes the op" grep -q '^  mcplink server get ID' out
for c in repl run test version; do
  "$bin" --db "$tmp/empty/h.db" $c --help > out 2>&1 < /dev/null; st=$?
  is "$st/$(grep -c "^usage: mcplink .*$c" out)" 0/1 "$c --help prints its usage"
done
"$bin" --db "$tmp/empty/h.db" oauth connect --help > out 2>&1
check "oauth connect --help prints its usage" grep -q '^usage: mcplink .*oauth connect SERVER' out
"$bin" --db "$tmp/empty/h.db" --help server > out 2>&1
check "mcplink --help server lists the server commands" grep -q '^  mcplink server create' out
check "no --help created a database" test ! -e "$tmp/empty/h.db"
cd "$tmp/work" || exit 1

# ---- oauth connect: one timeout unit (ms); usage errors before anything opens ----------------
"$bin" --db "$tmp/empty/o.db" $A oauth connect > out 2> err; st=$?
is "$st" 2 "oauth connect without SERVER is a usage error"
"$bin" --db "$tmp/empty/o.db" $A oauth connect fx --timeout 5 > out 2> err; st=$?
is "$st" 2 "oauth connect --timeout (seconds) is gone"
check "the error points to --timeout-ms" grep -q 'is now --timeout-ms' err
"$bin" --db "$tmp/empty/o.db" $A oauth connect fx --timeout-ms soon > out 2> err; st=$?
is "$st" 2 "--timeout-ms needs milliseconds"
check "no usage error opened a database" test ! -e "$tmp/empty/o.db"

# ---- --lua-dir, scripts --------------------------------------------------------------------
# the embedded modules are loaded precompiled, with their debug information:
# an error's traceback still names their files and lines
printf 'nosuch()\n' > tb.lua
M run tb.lua > out 2> err; st=$?
is "$st" 1 "a script that fails exits 1"
check "a traceback names an embedded module's file and line" grep -Eq 'lua/script/prelude\.lua:[0-9]+:' err
check "the error goes to stderr, not to the script's output" test ! -s out
printf 'print("before")\nlocal x = \n' > syn.lua
M run syn.lua > out 2> err; st=$?
is "$st" 1 "a script that does not compile exits 1"
check "the syntax error goes to stderr" grep -q 'syn.lua' err
check "and nothing to stdout" test ! -s out
# a failed check of a test script names the script's own line, not the TAP helpers'
printf 'ok(true, "fine")\nis(1, 2, "one is two")\n' > failing.lua
M test failing.lua > out 2> err; st=$?
is "$st" 1 "a test script with a failed check exits 1"
check "its diagnostic names the script's line" grep -q '^#   Failed test at failing.lua:2$' out
M --lua-dir "$top/lua" op engine.info > out 2>&1
is "$(jv out lua)" "$top/lua" "--lua-dir loads engine Lua from a directory"
M --lua-dir "$tmp/nowhere" op engine.info > out 2>&1; st=$?
is "$st" 1 "--lua-dir without the sources fails"
check "with an error JSON naming the directory" grep -q "$tmp/nowhere" out
# an auth type whose name the servers table's CHECK would refuse stops the engine at open
cp -r "$top/lua" "$tmp/badlua"
sed -i 's/^local none = { name = "none" }$/local none = { name = "None" }/' "$tmp/badlua/authtypes.lua"
M --lua-dir "$tmp/badlua" op engine.info > out 2>&1; st=$?
is "$st" 1 "an auth type not named as authtypes.NAME says stops the engine at open"
check "naming it" grep -q "auth type name None is not a lowercase name" out
M test "$tmp/missing.lua" > out 2>&1; st=$?
is "$st" 2 "test on a missing file exits 2"
printf 'ok(true, "a")\ndone_testing()\n' > t.lua
"$bin" test t.lua > out 2>&1; ok $? "mcplink test passes a passing script"
check "mcplink test left no database behind" test ! -e "$tmp/work/mcplink.db"
printf 'ok(false, "a")\ndone_testing()\n' > f.lua
"$bin" test f.lua > out 2>&1; st=$?
is "$st" 1 "mcplink test fails a failing script"
printf 'print("ran with " .. #arg .. " args: " .. arg[1])\n' > r.lua
M run r.lua hello > out 2>&1
check "run passes arguments" grep -q 'ran with 1 args: hello' out
M run r.lua --help > out 2>&1
check "run FILE --help passes --help to the script" grep -q 'ran with 1 args: --help' out
# network failures say why: "reason" in the error JSON, in discovery and validation results, and
# in what scripts see (port 1 on loopback: nothing listens, the connection is refused)
M op settings.set '{"allow_private_urls":true}' >/dev/null 2>&1
M $A server create --name "Refused" >/dev/null 2>&1
A="--db $db --tenant acme --user ann --compact"
"$bin" $A op server.update '{"id":"Refused","url":"https://127.0.0.1:1/mcp","auth_type":"none"}' > out 2>&1
check "server.update: the failed discovery's reason" grep -q '"discovery":{[^}]*"reason":"connect_failed"' out
"$bin" $A op server.refresh '{"id":"Refused"}' > out 2> err; st=$?
check "server.refresh fails (exit 1)" test $st = 1
check "server.refresh: upstream_error" grep -q '"code":"upstream_error"' err
check "server.refresh: reason connect_failed" grep -q '"reason":"connect_failed"' err
printf 'local r, e = mcplink.op("server.refresh", { id = "Refused" })\nprint("reason=" .. tostring(e and e.reason))\n' > reason.lua
M --tenant acme --user ann run reason.lua > out 2>&1
check "scripts see the reason" grep -q '^reason=connect_failed$' out
"$bin" $A op server.capabilities '{"id":"Refused"}' > out 2>&1
check "server.capabilities: the recorded error keeps its reason" grep -q '"reason":"connect_failed"' out
"$bin" $A op server.validate '{"id":"Refused"}' > out 2>&1
check "server.validate: Failed" grep -q '"status":"Failed"' out
check "server.validate: reason connect_failed" grep -q '"reason":"connect_failed"' out
"$bin" $A op server.update '{"id":"Refused","auth_type":"oauth"}' > out 2>&1
check "switched to OAuth, the error of the unauthenticated discovery is gone" \
  grep -q '"capabilities_status":"awaiting_user"' out
"$bin" $A op server.get '{"id":"Refused"}' > out 2>&1
check "server.get: awaiting_user, no discovery error" grep -q '"capabilities_status":"awaiting_user"' out
"$bin" $A op oauth.discover '{"server":"Refused"}' > out 2> err; st=$?
check "oauth.discover fails (exit 1)" test $st = 1
check "oauth.discover: reason connect_failed" grep -q '"reason":"connect_failed"' err

# ---- exit: a command leaves its memory to the exit, not its database ------------------
# (core/cli/main.c: mcpl_close_exiting). Its connection is closed, so SQLite checkpoints the
# write-ahead log and removes it, the friendly commands (on a state of their own) included.
x=$tmp/db/exit.db
"$bin" --db "$x" op tenant.create '{"name":"exiting"}' > out 2>&1
check "an op writes and exits" grep -q '"name": "exiting"' out
check "its write-ahead log is checkpointed and gone: the connection was closed" test ! -e "$x-wal"
"$bin" --db "$x" tenant list > out 2>&1
check "a friendly command reads what it wrote" grep -q '"name": "exiting"' out
check "and leaves no write-ahead log either" test ! -e "$x-wal"
# output that cannot be written (a full device) is an error, said once on stderr, exit 1,
# whether the command succeeded or not; the database is left as it was
"$bin" --db "$x" tenant list > /dev/full 2> err; st=$?
is "$st" 1 "a successful command whose output cannot be written exits 1"
is "$(cat err)" "mcplink: cannot write the output" "and says so on stderr"
"$bin" --db "$x" op tenant.create '{"name":"full"}' > /dev/full 2> err; st=$?
is "$st" 1 "an op whose answer cannot be written exits 1"
"$bin" --db "$x" tenant list > out 2>&1
check "what it did is stored, no write-ahead log is left" sh -c "grep -q '\"name\": \"full\"' out && test ! -e '$x-wal'"
done_testing
