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
# a --ca-file that does not complete the chain leaves the system trust store in use
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=mcplink unrelated test CA" -days 2 \
  -keyout "$tmp/other.key" -out "$tmp/other.pem" >/dev/null 2>&1
SSL_CERT_FILE="$FIXTURE_CERTS/ca.pem" "$bin" --db "$tmp/t.db" --ca-file "$tmp/other.pem" --compact op mcp.session "$steps" > "$tmp/out3b" 2>&1
check "an unrelated --ca-file still lets the system trust store complete the chain" grep -q '"server_info"' "$tmp/out3b"
SSL_CERT_FILE=/dev/null SSL_CERT_DIR=/nonexistent "$bin" --db "$tmp/t.db" --ca-file "$tmp/other.pem" --compact op mcp.session "$steps" > "$tmp/out3c" 2>&1
check "an unrelated --ca-file and an empty system store: refused" grep -q '"tls_error"' "$tmp/out3c"
# OpenSSL's TLS side and the trust store are loaded on the first TLS connection, not when the
# engine opens: a command that sends no request reads neither the OpenSSL configuration nor the
# system bundle (seen with strace; skipped where strace is missing or cannot trace). The same
# trace of a request shows both read, so the check can see them.
if command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true >/dev/null 2>&1; then
  : > "$tmp/probe.cnf"
  cat "$FIXTURE_CERTS/ca.pem" > "$tmp/probe.pem"
  OPENSSL_CONF="$tmp/probe.cnf" SSL_CERT_FILE="$tmp/probe.pem" strace -f -e trace=open,openat -o "$tmp/trace1" \
    "$bin" --db "$tmp/t.db" --compact op mcp.session "$steps" > "$tmp/out4" 2>&1
  check "a request is traced: it reads the OpenSSL configuration" grep -q 'probe\.cnf' "$tmp/trace1"
  check "a request is traced: it reads the system trust store" grep -q 'probe\.pem' "$tmp/trace1"
  OPENSSL_CONF="$tmp/probe.cnf" SSL_CERT_FILE="$tmp/probe.pem" strace -f -e trace=open,openat -o "$tmp/trace2" \
    "$bin" --db "$tmp/t.db" --compact tenant list > "$tmp/out5" 2>&1
  check "tenant list runs under strace" grep -q '"items"' "$tmp/out5"
  check_not "a command that sends no request (tenant list) does not read the OpenSSL configuration" grep -q 'probe\.cnf' "$tmp/trace2"
  check_not "a command that sends no request (tenant list) does not read the system trust store" grep -q 'probe\.pem' "$tmp/trace2"
  # the system bundle is read when a chain needs it: not when --ca-file completes the chain
  OPENSSL_CONF="$tmp/probe.cnf" SSL_CERT_FILE="$tmp/probe.pem" strace -f -e trace=open,openat -o "$tmp/trace3" \
    "$bin" --db "$tmp/t.db" --ca-file "$FIXTURE_CERTS/ca.pem" --compact op mcp.session "$steps" > "$tmp/out6" 2>&1
  check "a chain --ca-file completes is trusted" grep -q '"server_info"' "$tmp/out6"
  check_not "... without reading the system bundle" grep -q 'probe\.pem' "$tmp/trace3"
else
  echo "# skipped the lazy TLS checks: strace is missing or cannot trace here"
fi
done_testing
