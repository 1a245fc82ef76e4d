#!/bin/sh
# tests/cli/conformance.t: the official MCP conformance suite drives `mcplink conformance-client`
# through its client scenarios that need no OAuth: handshake-era and 2026-07-28 ones.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
bin=${MCPLINK_BIN:-$top/build/mcplink}
. "$top/tests/cli/tap.sh"
if [ ! -d "$fx/node_modules/conformance-next" ]; then
  echo "Bail out! conformance suite not installed (make fixtures)"
  exit 1
fi
export CONFORMANCE_TIMEOUT_MS=${CONFORMANCE_TIMEOUT_MS:-30000}
tmp_err=$(mktemp)
# scenario [suite args]: one run; its output is kept only when it fails
run() {
  s=$1; shift
  out=$(timeout 90 sh "$fx/conformance.sh" "$@" "$s" "$bin" conformance-client 2>&1)
  rc=$?
  # sse-retry times the reconnect on the suite's side, in wall time: on a loaded machine (ASan, a
  # busy CI) a reconnect can come late by scheduling alone; a late one is run once more, an early
  # one (the client not waiting for the retry field) never is
  if [ $rc != 0 ] && [ "$s" = sse-retry ] && echo "$out" | grep -q 'reconnected [a-z ]*late'; then
    echo "$out" | grep -o 'Client reconnected [^.]*' | head -n 1 | sed 's/^/# first run: /'
    out=$(timeout 90 sh "$fx/conformance.sh" "$@" "$s" "$bin" conformance-client 2>&1)
    rc=$?
  fi
  ok $rc "conformance $s $*"
  [ $rc = 0 ] || echo "$out" | grep -E "FAILURE|WARNING|Error|late|conformance-client|OVERALL" | sed 's/^/# /' | head -30
}
# handshake era (stable suite)
for s in initialize tools_call sse-retry; do run $s; done
# 2026-07-28 client scenarios without OAuth (pre-release suite)
for s in tools_call request-metadata http-standard-headers http-custom-headers \
         http-invalid-tool-headers json-schema-ref-no-deref json-schema-2020-12-preservation; do
  run $s --spec-version 2026-07-28
done
# the command itself: a usage error without a URL
"$bin" conformance-client >/dev/null 2>"$tmp_err"; st=$?
[ $st = 2 ] && grep -q '^usage: mcplink conformance-client URL' "$tmp_err"
ok $? "conformance-client without a URL is a usage error (exit 2, usage on stderr)"
rm -f "$tmp_err"
done_testing
