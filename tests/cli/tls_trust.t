#!/bin/sh
# tls_trust.t: the engine verifies TLS against the system trust store (which
# OpenSSL reads from SSL_CERT_FILE when set) plus --ca-file, and refuses a
# certificate neither trusts. Runs against the SDK v2 fixture on 127.0.0.1.
set -u
. "$(dirname "$0")/fixture_lib.sh"
. "$top/tests/cli/tap.sh"
export FIXTURE_MAX_LIFETIME_S=120
fx_start server-v2
url=$(field "$FX_LINE" url)
"$bin" --db "$tmp/t.db" op settings.set '{"allow_private_urls":true}' >/dev/null 2>&1
steps="{\"url\":\"$url\",\"steps\":[{\"step\":\"discover\"}]}"
# an empty system store: nothing trusts the fixture's CA
SSL_CERT_FILE=/dev/null SSL_CERT_DIR=/nonexistent "$bin" --db "$tmp/t.db" --compact op mcp.session "$steps" > "$tmp/out1" 2>&1
check "an untrusted certificate is refused" grep -q '"tls_error"' "$tmp/out1"
check_not "nothing was discovered over an untrusted connection" grep -q '"server_info"' "$tmp/out1"
SSL_CERT_FILE=/dev/null SSL_CERT_DIR=/nonexistent "$bin" --db "$tmp/t.db" --ca-file "$FIXTURE_CERTS/ca.pem" --compact op mcp.session "$steps" > "$tmp/out2" 2>&1
check "--ca-file adds a trusted CA" grep -q '"server_info"' "$tmp/out2"
SSL_CERT_FILE="$FIXTURE_CERTS/ca.pem" "$bin" --db "$tmp/t.db" --compact op mcp.session "$steps" > "$tmp/out3" 2>&1
check "the system trust store is used without --ca-file" grep -q '"server_info"' "$tmp/out3"
done_testing
