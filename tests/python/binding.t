#!/bin/sh
# tests/python/binding.t: the Python binding's pytest suite (bindings/python/tests) with Debian's
# CPython against this build's libmcplink.so and the SDK fixture servers, as TAP.
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MCPLINK_BUILD:-$top/build}
py=${MCPLINK_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || { echo "Bail out! $py is missing (make deps installs python3)"; exit 1; }
"$py" -c 'import pytest' 2>/dev/null || { echo "Bail out! pytest is missing for $py (make deps installs python3-pytest)"; exit 1; }
export MCPLINK_LIBRARY=$build/libmcplink.so FIXTURE_CERTS=${FIXTURE_CERTS:-$build/certs} MCPLINK_BUILD=$build
. "$top/tests/python/san.sh"
exec "$py" "$top/tests/python/pytest_tap.py" "$top/bindings/python/tests"
