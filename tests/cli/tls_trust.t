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
# --ca-file is checked when the engine opens (it can be read, it holds a PEM certificate block) and
# parsed at the first TLS connection: a block OpenSSL cannot parse fails every request, and says why
"$bin" --db "$tmp/t.db" --ca-file "$tmp/nonexistent.pem" tenant list > "$tmp/out7" 2>&1
check "a --ca-file that cannot be read stops the engine from opening" grep -q "ca_file '$tmp/nonexistent.pem' cannot be read" "$tmp/out7"
echo "not a bundle" > "$tmp/plain.pem"
"$bin" --db "$tmp/t.db" --ca-file "$tmp/plain.pem" tenant list > "$tmp/out8" 2>&1
check "a --ca-file without a certificate block stops it too" grep -q "holds no PEM certificate" "$tmp/out8"
timeout 20 "$bin" --db "$tmp/t.db" --ca-file /dev/zero tenant list > "$tmp/out8b" 2>&1
check "an endless --ca-file (/dev/zero) is refused within its bound, not read for ever" grep -q "holds no PEM certificate" "$tmp/out8b"
printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n' > "$tmp/broken.pem"
"$bin" --db "$tmp/t.db" --ca-file "$tmp/broken.pem" --compact tenant list > "$tmp/out9" 2>&1
check "a block OpenSSL cannot parse: a command that sends no request runs" grep -q '"items"' "$tmp/out9"
SSL_CERT_FILE="$FIXTURE_CERTS/ca.pem" "$bin" --db "$tmp/t.db" --ca-file "$tmp/broken.pem" --compact op mcp.session "$steps" > "$tmp/out10" 2>&1
check "a request fails its TLS set-up rather than trust without the bundle" grep -q '"tls_error"' "$tmp/out10"
check_not "... nothing is discovered" grep -q '"server_info"' "$tmp/out10"
check "... and the log names the bundle" grep -q "ca_file '$tmp/broken.pem' holds no certificate OpenSSL can parse" "$tmp/out10"
# OpenSSL's TLS side and the trust store are loaded on the first TLS connection, not when the
# engine opens: a command that sends no request reads neither the OpenSSL configuration nor the
# system bundle. Seen through named pipes (no tracing needed): OPENSSL_CONF and SSL_CERT_FILE name
# FIFOs whose writer records that a reader opened them; a request reads both, so the check can see.
# probes: a fresh pair of FIFOs fed with an empty configuration and the test CA
probes() {
  for w in ${wcnf:-} ${wpem:-}; do kill "$w" 2>/dev/null; done
  rm -f "$tmp/p.cnf" "$tmp/p.pem" "$tmp/p.cnf.read" "$tmp/p.pem.read"
  mkfifo "$tmp/p.cnf" "$tmp/p.pem"
  (: > "$tmp/p.cnf" && : > "$tmp/p.cnf.read") & wcnf=$!
  (cat "$FIXTURE_CERTS/ca.pem" > "$tmp/p.pem" && : > "$tmp/p.pem.read") & wpem=$!
}
read_probe() { i=0; while [ $i -lt 20 ] && [ ! -e "$tmp/p.$1.read" ]; do sleep 0.05; i=$((i + 1)); done; [ -e "$tmp/p.$1.read" ]; }
probed() { OPENSSL_CONF="$tmp/p.cnf" SSL_CERT_FILE="$tmp/p.pem" timeout 30 "$bin" --db "$tmp/t.db" --compact "$@"; }
probes
probed op mcp.session "$steps" > "$tmp/out4" 2>&1
check "a request (with the probes as configuration and bundle) is served" grep -q '"server_info"' "$tmp/out4"
check "a request reads the OpenSSL configuration" read_probe cnf
check "a request reads the system trust store" read_probe pem
probes
probed tenant list > "$tmp/out5" 2>&1
check "tenant list runs with the probes" grep -q '"items"' "$tmp/out5"
check_not "a command that sends no request (tenant list) does not read the OpenSSL configuration" read_probe cnf
check_not "a command that sends no request (tenant list) does not read the system trust store" read_probe pem
# the system bundle is read when a chain needs it: not when --ca-file completes the chain
probes
probed --ca-file "$FIXTURE_CERTS/ca.pem" op mcp.session "$steps" > "$tmp/out6" 2>&1
check "a chain --ca-file completes is trusted" grep -q '"server_info"' "$tmp/out6"
check_not "... without reading the system bundle" read_probe pem
for w in $wcnf $wpem; do kill "$w" 2>/dev/null; done
done_testing
