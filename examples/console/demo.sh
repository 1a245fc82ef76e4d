#!/bin/sh
# examples/console/demo.sh BUILD [PORT]: `make console`: the reference console on a demo database
# in BUILD/console-demo (tenant acme: ann, an admin; alice and bob, members), over HTTPS with the
# test CA's certificate (BUILD/certs), on https://127.0.0.1:PORT (default 8443).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
port=${2:-${CONSOLE_PORT:-8443}}
case $build in /*) ;; *) build=$top/$build ;; esac
py=/usr/bin/python3
[ -x "$py" ] || py=python3
dir=$build/console-demo
export MCPLINK_LIBRARY=$build/libmcplink.so
if [ ! -f "$dir/console.db" ]; then
  "$py" "$top/examples/console/console.py" demo "$dir"
fi
echo "mcplink console demo: https://127.0.0.1:$port/"
echo "  sign in to tenant acme with (from $dir/passwords.txt):"
sed 's/^acme /    /' "$dir/passwords.txt"
echo "  the certificate is signed by the test CA $build/certs/ca.pem (trust it, or accept the warning)"
echo "  a local MCP server to connect to: tests/fixtures/start.sh server-v2 (loopback is allowed here)"
echo "  Ctrl-C stops the console"
exec "$py" "$top/examples/console/console.py" serve --db "$dir/console.db" --key-file "$dir/console.key" \
  --accounts "$dir/accounts.json" --cert "$build/certs/server.pem" --cert-key "$build/certs/server-key.pem" \
  --ca-file "$build/certs/ca.pem" --port "$port" --log-level info
